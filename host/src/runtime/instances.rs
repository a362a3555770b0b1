//! A guest ready to run ([`GuestRuntime`]): compiled and pre-instantiated once, its instances
//! reused across operations until one fails (a trap poisons its store, so the next operation
//! gets a fresh one), each call bound to the operation's connection and limits.

use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use wasmtime::Store;
use wasmtime::component::Component;

use super::blocking::DeadlineReached;
use super::compiled_cache::CompiledCache;
use super::component::{self, builtin_component};
use super::limits::{GuestLimits, MemoryLimiter};
use super::shared_engine::deadline_ticks;
use super::store::{GuestState, host_linker};
use crate::bindings::{GuestWorld, GuestWorldPre};
use crate::error::{OpenError, OperationFailure};
use crate::sql::QueryLimits;
use crate::storage::SqlPolicy;

/// How one guest call runs ([`GuestRuntime::invoke`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Invocation<'a> {
    /// The engine operation, for errors and logs.
    pub op: &'static str,
    /// The limits the call runs under.
    pub limits: &'a GuestLimits,
    /// When the operation ends: the guest's waits in WASI end then (the epoch deadline counts
    /// `limits.operation_timeout` from the call's start).
    pub deadline: Instant,
    /// Whether the guest's SQL may only read.
    pub read_only: bool,
    /// Whether the instance may serve earlier and later operations.
    pub reuse: bool,
}

/// An instantiated guest between operations.
struct IdleInstance {
    store: Store<GuestState>,
    world: GuestWorld,
}

/// A compiled, linked and type-checked guest, ready to instantiate, and its idle instances.
///
/// An instance serves one operation at a time and is kept for the next one as long as every
/// call on it returned (an `Ok` or an engine error value). After a trap, a timeout or a memory
/// refusal its `Store` is dropped and the next operation gets a fresh instance, so a failure
/// never leaks into another operation. Guest memory therefore persists between the operations an
/// instance serves; the host binds the database, limits and stderr anew for each.
pub(crate) struct GuestRuntime {
    pre: GuestWorldPre<GuestState>,
    idle: Mutex<Vec<IdleInstance>>,
}

impl GuestRuntime {
    /// The built-in guest, compiled (or loaded from `cache`) on first use and shared by every
    /// backend in the process.
    pub fn builtin(cache: Option<&CompiledCache>) -> Result<Arc<Self>, OpenError> {
        static BUILTIN: OnceLock<Result<Arc<GuestRuntime>, String>> = OnceLock::new();
        BUILTIN
            .get_or_init(|| {
                let component = builtin_component(cache)?;
                Self::link(component)
                    .map(Arc::new)
                    .map_err(|error| format!("{error:#}"))
            })
            .clone()
            .map_err(OpenError::Guest)
    }

    /// A guest from a component binary: compiled, checked against the `engine-backend` world
    /// (every mismatch named), linked and type-checked.
    pub fn from_component(
        bytes: &[u8],
        cache: Option<&CompiledCache>,
    ) -> Result<Arc<Self>, OpenError> {
        let component = component::compile(bytes, cache)?;
        component::check(&component, cache).map_err(OpenError::GuestMismatch)?;
        Self::link(&component)
            .map(Arc::new)
            .map_err(|error| OpenError::Guest(format!("{error:#}")))
    }

    /// A guest from an artifact of [`component::precompile_guest_component`]: loaded,
    /// checked against the world, linked.
    pub fn from_precompiled(
        artifact: &[u8],
        cache: Option<&CompiledCache>,
    ) -> Result<Arc<Self>, OpenError> {
        let component = component::load_precompiled(artifact)?;
        component::check(&component, cache).map_err(OpenError::GuestMismatch)?;
        Self::link(&component)
            .map(Arc::new)
            .map_err(|error| OpenError::Guest(format!("{error:#}")))
    }

    fn link(component: &Component) -> wasmtime::Result<Self> {
        Ok(Self {
            pre: GuestWorldPre::new(host_linker()?.instantiate_pre(component)?)?,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// An idle instance whose memory is within `memory_bytes`, if there is one.
    fn take_idle(&self, memory_bytes: usize) -> Option<IdleInstance> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some(instance) = idle.pop() {
            if instance.store.data().memory.granted_bytes() <= memory_bytes {
                return Some(instance);
            }
        }
        None
    }

    fn new_store(&self) -> Store<GuestState> {
        let mut store = Store::new(self.pre.engine(), GuestState::new());
        store.limiter(|state| &mut state.memory);
        store
    }

    /// Run `call` with `connection` (and `policy`, which its statements run under) bound to the
    /// guest's `sql` and `waitpoint-tokens` imports, as `invocation` says (limits, deadline,
    /// rights, instance reuse), on an idle instance or a new one (always a new one, and dropped
    /// afterwards, unless `invocation.reuse`), and hand the connection back whatever the guest
    /// did.
    pub fn invoke<R>(
        &self,
        invocation: &Invocation<'_>,
        (connection, policy): (Connection, &SqlPolicy),
        call: impl FnOnce(&GuestWorld, &mut Store<GuestState>) -> wasmtime::Result<R>,
    ) -> (Connection, Result<R, OperationFailure>) {
        let Invocation {
            op,
            limits,
            deadline,
            read_only,
            reuse,
        } = *invocation;
        let idle = if reuse {
            self.take_idle(limits.memory_bytes)
        } else {
            None
        };
        let (mut store, world) = match idle {
            Some(IdleInstance { store, world }) => (store, Some(world)),
            None => (self.new_store(), None),
        };
        let query_limits = QueryLimits {
            max_rows: limits.query_rows,
            max_bytes: limits.query_bytes,
        };
        let state = store.data_mut();
        state.sql.bind(connection, policy, query_limits, read_only);
        state.memory.arm(limits.memory_bytes);
        state.deadline = deadline;
        store.set_epoch_deadline(deadline_ticks(limits.operation_timeout));

        let started = Instant::now();
        let outcome = match world {
            Some(world) => Ok(world),
            None => self.pre.instantiate(&mut store),
        }
        .and_then(|world| call(&world, &mut store).map(|value| (world, value)));
        let elapsed = started.elapsed();

        let state = store.data_mut();
        let connection = state
            .sql
            .unbind()
            .expect("only the host unbinds the connection");
        let stderr = state.stderr.take();
        if !stderr.is_empty() {
            tracing::warn!(target: "ff_backend_sqlite_wasm::guest", op, "guest stderr: {}", stderr.trim_end());
        }
        let outcome = match outcome {
            Ok((world, value)) => {
                if reuse {
                    self.idle
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(IdleInstance { store, world });
                }
                Ok(value)
            }
            Err(error) => Err(classify_failure(
                op,
                &error,
                &store.data().memory,
                elapsed,
                &stderr,
            )),
        };
        (connection, outcome)
    }
}

/// What a failed guest call was: a memory refusal, a timeout (the epoch deadline in guest code,
/// or a wait in WASI cut off at the deadline), or a trap (with the guest's stderr).
fn classify_failure(
    op: &'static str,
    error: &wasmtime::Error,
    memory: &MemoryLimiter,
    elapsed: Duration,
    stderr: &str,
) -> OperationFailure {
    let trap = error.downcast_ref::<wasmtime::Trap>().copied();
    if memory.exceeded() {
        OperationFailure::MemoryExhausted {
            op,
            max_mib: memory.max_mib(),
        }
    } else if trap == Some(wasmtime::Trap::Interrupt)
        || error.downcast_ref::<DeadlineReached>().is_some()
    {
        OperationFailure::TimedOut { op, elapsed }
    } else {
        let detail = if stderr.is_empty() {
            format!("{error:#}")
        } else {
            format!("{error:#}; guest stderr: {stderr}")
        };
        OperationFailure::GuestTrapped { op, trap, detail }
    }
}
