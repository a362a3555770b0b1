//! FlowFabric's SQLite [`EngineBackend`](ff_core::engine_backend::EngineBackend), with the
//! engine logic in a sandboxed WebAssembly component.
//!
//! [`SqliteBackend`] looks like any other backend to its callers (`Arc<dyn EngineBackend>`).
//! Inside, every operation runs in a SQLite transaction that this crate opens and that
//! concurrent operations share (group commit; a failed operation's writes are undone alone, by
//! running its batch again with a savepoint per operation); the decisions (validation,
//! state transitions, the SQL) are made by a guest component that reaches the database only
//! through the `flowfabric:backend/sql` interface (`wit/`). The host keeps an operation's
//! writes when the guest returns `Ok` and rolls them back on an error value or a trap, and
//! answers only once the transaction is durable.
//!
//! ```
//! use ff_backend_sqlite_wasm::SqliteBackend;
//! use ff_core::contracts::ClaimExecutionArgs;
//! use ff_core::engine_backend::EngineBackend;
//! use ff_core::engine_error::{ContentionKind, EngineError};
//! use ff_core::types::*;
//! use std::sync::Arc;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // SQLite backends are dev-only upstream; ours keeps the same guard.
//! unsafe { std::env::set_var("FF_DEV_MODE", "1") };
//! let backend = SqliteBackend::new("file:doc-example?mode=memory&cache=shared").await?;
//! let engine: Arc<dyn EngineBackend> = backend.clone();
//!
//! let execution = ExecutionId::parse("{fp:0}:53ad96d2-6b08-4d0c-86e3-36598db2291c")?;
//! let args = ClaimExecutionArgs::new(
//!     execution, WorkerId::new("worker-1"), WorkerInstanceId::new("wi-1"),
//!     LaneId::new("default"), LeaseId::new(), 30_000, AttemptId::new(), AttemptIndex::new(0),
//!     String::new(), None, None, TimestampMs::now(),
//! );
//! // Nothing was created yet, so the guest reports a typed error and the host rolls back.
//! assert!(matches!(engine.claim_execution(args).await, Err(EngineError::NotFound { entity: "execution" })));
//! # let _ = ContentionKind::LeaseConflict;
//! # Ok(())
//! # }
//! ```
//!
//! Layers, bottom to top (each imports only those below it; `docs/architecture.md` draws them
//! and follows one claim through):
//! - `error`: [`OpenError`], [`OperationFailure`] and [`BACKEND_LABEL`];
//! - `wake`: the wake-ups of the long-lived reads (tails and subscriptions), per database;
//! - `bindings`: the generated WIT bindings and the conversions to and from ff-core types;
//! - `storage`: SQLite only — opening a database, its one connection, the guest's SQL rights,
//!   the writer thread (group commit), durability, the schema;
//! - `sql`: the `sql` interface the guest imports, over the operation's connection;
//! - `runtime`: wasmtime — the engine, the guest's store and linker, component checks, the
//!   compiled cache, the instance pool, [`GuestLimits`];
//! - `operation`: one guest call as a job for the writer thread;
//! - `timers`: periodic background tasks (the budget reset pass), owned by a backend;
//! - `backend`: [`SqliteBackend`], its builder and `run`;
//! - `streams`: the long-lived reads — `tail_stream`'s wait, the subscriptions' followers and
//!   the change watcher that wakes them;
//! - `engine`: the `EngineBackend` implementation, one module per operation family.

#![deny(missing_docs)]
// `EngineError` is ff-core's, and the trait makes it the error type of every operation.
#![allow(clippy::result_large_err)]

mod backend;
mod bindings;
mod engine;
mod error;
mod operation;
mod runtime;
mod sql;
mod storage;
mod streams;
mod timers;
mod wake;

pub use backend::{ConnectionForTest, SqliteBackend, SqliteBackendBuilder};
pub use error::{BACKEND_LABEL, GuestMismatch, OpenError, OperationFailure};
pub use runtime::component::{
    BUILTIN_GUEST_COMPONENT, GUEST_WIT, check_guest_component, precompile_guest_component,
};
pub use runtime::limits::GuestLimits;
pub use storage::connection::CommitStats;
pub use storage::schema::{EXEC_CORE_TABLE, SCHEMA_VERSION};
