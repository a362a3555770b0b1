//! The wasmtime side: one `Engine` per process (with an epoch ticker), guests compiled and
//! pre-instantiated once, instances reused across operations until one fails (a trap poisons
//! its store, so the next operation gets a fresh one). WASI grants nothing: no files, no
//! environment, no network, stdin closed, stdout discarded, stderr captured per operation for
//! the logs and trap reports.

use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::bindings::{GuestWorld, GuestWorldPre};
use crate::compiled_cache::CompiledCache;
use crate::component;
use crate::error::{OpenError, OperationFailure};
use crate::limits::{GuestLimits, MemoryLimiter};
use crate::sql::{QueryLimits, SqlAccess};
use crate::stderr::StderrCapture;

/// The guest component built from `guest/` by `build.rs`.
const BUILTIN_GUEST: &[u8] = include_bytes!(env!("FF_GUEST_WASM"));

/// How much the guest may write to stderr in one operation (1 MiB); further writes fail, which
/// a Rust guest's `eprintln!` turns into a trap.
const STDERR_CAPACITY: usize = 1 << 20;

/// How often the engine's epoch advances: the granularity of operation timeouts.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The process's one wasmtime `Engine`, with epoch interruption on and a thread advancing the
/// epoch every [`EPOCH_TICK`] (it holds only a weak reference to the engine).
pub(crate) fn shared_engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut config = Config::new();
        config.epoch_interruption(true);
        let engine = Engine::new(&config).expect("the engine configuration is valid");
        let weak = engine.weak();
        std::thread::Builder::new()
            .name("ff-wasm-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })
            .expect("spawning the epoch thread");
        engine
    })
}

/// Everything the host gives a guest: WASI (io, cli, clocks, random) and the `sql` interface.
pub(crate) fn host_linker() -> wasmtime::Result<Linker<GuestState>> {
    let mut linker = Linker::new(shared_engine());
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    GuestWorld::add_to_linker::<_, HasSelf<SqlAccess>>(&mut linker, |state: &mut GuestState| {
        &mut state.sql
    })?;
    Ok(linker)
}

/// The built-in guest, compiled (or loaded from `cache`) once per process.
pub(crate) fn builtin_component(
    cache: Option<&CompiledCache>,
) -> Result<&'static Component, String> {
    static BUILTIN: OnceLock<Result<Component, String>> = OnceLock::new();
    BUILTIN
        .get_or_init(|| component::compile(BUILTIN_GUEST, cache).map_err(|error| error.to_string()))
        .as_ref()
        .map_err(Clone::clone)
}

/// Store data of one guest instance. The connection is bound only while an operation runs.
pub(crate) struct GuestState {
    sql: SqlAccess,
    wasi: WasiCtx,
    table: ResourceTable,
    memory: MemoryLimiter,
    stderr: StderrCapture,
}

impl GuestState {
    fn new() -> Self {
        let stderr = StderrCapture::new(STDERR_CAPACITY);
        Self {
            sql: SqlAccess::unbound(),
            wasi: WasiCtx::builder().stderr(stderr.clone()).build(),
            table: ResourceTable::new(),
            memory: MemoryLimiter::new(0),
            stderr,
        }
    }
}

impl WasiView for GuestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
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

    /// Run `call` with `connection` bound to the guest's `sql` import, within `limits`, on an
    /// idle instance or a new one (always a new one, and dropped afterwards, unless `reuse`),
    /// and hand the connection back whatever the guest did.
    pub fn invoke<R>(
        &self,
        op: &'static str,
        connection: Connection,
        limits: &GuestLimits,
        read_only: bool,
        reuse: bool,
        call: impl FnOnce(&GuestWorld, &mut Store<GuestState>) -> wasmtime::Result<R>,
    ) -> (Connection, Result<R, OperationFailure>) {
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
        state.sql.bind(connection, query_limits, read_only);
        state.memory.arm(limits.memory_bytes);
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

/// What a failed guest call was: a memory refusal, a timeout, or a trap (with the guest's stderr).
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
    } else if trap == Some(wasmtime::Trap::Interrupt) {
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

/// Epoch ticks covering `timeout` (at least one; the deadline counts from the current tick).
fn deadline_ticks(timeout: Duration) -> u64 {
    let ticks = timeout.as_nanos().div_ceil(EPOCH_TICK.as_nanos());
    u64::try_from(ticks).unwrap_or(u64::MAX).saturating_add(1)
}
