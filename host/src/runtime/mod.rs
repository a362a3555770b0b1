//! wasmtime, and nothing of SQLite's storage: the process's engine and epoch ticker
//! ([`shared_engine`]), what a guest's store holds and what is linked into it ([`store`]),
//! checking and compiling components ([`component`], cached on disk by [`compiled_cache`]),
//! running a guest call on a pooled instance ([`instances`]) within [`limits`], WASI's waits
//! bounded by the operation's deadline ([`blocking`]), and the guest's captured stderr
//! ([`stderr`]).

pub(crate) mod blocking;
pub(crate) mod compiled_cache;
pub(crate) mod component;
pub(crate) mod instances;
pub(crate) mod limits;
pub(crate) mod shared_engine;
pub(crate) mod stderr;
pub(crate) mod store;

pub(crate) use compiled_cache::CompiledCache;
pub(crate) use instances::{GuestRuntime, Invocation};
pub(crate) use limits::GuestLimits;
pub(crate) use store::GuestState;
