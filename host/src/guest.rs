//! The wasmtime side: one `Engine` per process (with an epoch ticker), guests compiled and
//! pre-instantiated once, a fresh `Store` per operation (a trap poisons its store, so it never
//! affects the next operation). WASI grants nothing: no files, no environment, no network,
//! stdin closed, stdout discarded, stderr captured for the logs and trap reports.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::bindings::{GuestWorld, GuestWorldPre};
use crate::component;
use crate::error::{OpenError, OperationFailure};
use crate::limits::{GuestLimits, MemoryLimiter};
use crate::sql::{QueryLimits, SqlAccess};

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

/// The built-in guest, compiled once per process.
pub(crate) fn builtin_component() -> Result<&'static Component, String> {
    static BUILTIN: OnceLock<Result<Component, String>> = OnceLock::new();
    BUILTIN
        .get_or_init(|| {
            Component::new(shared_engine(), BUILTIN_GUEST).map_err(|error| format!("{error:#}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Store data for one operation.
pub(crate) struct GuestState {
    sql: SqlAccess,
    wasi: WasiCtx,
    table: ResourceTable,
    memory: MemoryLimiter,
}

impl WasiView for GuestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// A compiled, linked and type-checked guest, ready to instantiate.
pub(crate) struct GuestRuntime {
    pre: GuestWorldPre<GuestState>,
}

impl GuestRuntime {
    /// The built-in guest, compiled on first use and shared by every backend in the process.
    pub fn builtin() -> Result<Arc<Self>, OpenError> {
        static BUILTIN: OnceLock<Result<Arc<GuestRuntime>, String>> = OnceLock::new();
        BUILTIN
            .get_or_init(|| {
                let component = builtin_component()?;
                Self::link(component)
                    .map(Arc::new)
                    .map_err(|error| format!("{error:#}"))
            })
            .clone()
            .map_err(OpenError::Guest)
    }

    /// A guest from a component binary: compiled, checked against the `engine-backend` world
    /// (every mismatch named), linked and type-checked.
    pub fn from_component(bytes: &[u8]) -> Result<Arc<Self>, OpenError> {
        let component = component::compile(bytes)?;
        component::check(&component).map_err(OpenError::GuestMismatch)?;
        Self::link(&component)
            .map(Arc::new)
            .map_err(|error| OpenError::Guest(format!("{error:#}")))
    }

    /// A guest from an artifact of [`component::precompile_guest_component`]: loaded,
    /// checked against the world, linked.
    pub fn from_precompiled(artifact: &[u8]) -> Result<Arc<Self>, OpenError> {
        let component = component::load_precompiled(artifact)?;
        component::check(&component).map_err(OpenError::GuestMismatch)?;
        Self::link(&component)
            .map(Arc::new)
            .map_err(|error| OpenError::Guest(format!("{error:#}")))
    }

    fn link(component: &Component) -> wasmtime::Result<Self> {
        let mut linker = Linker::new(shared_engine());
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        GuestWorld::add_to_linker::<_, HasSelf<SqlAccess>>(
            &mut linker,
            |state: &mut GuestState| &mut state.sql,
        )?;
        Ok(Self {
            pre: GuestWorldPre::new(linker.instantiate_pre(component)?)?,
        })
    }

    /// Run `call` on a fresh instance with `connection` bound to the guest's `sql` import,
    /// within `limits`, and hand the connection back whatever the guest did.
    pub fn invoke<R>(
        &self,
        op: &'static str,
        connection: Connection,
        limits: &GuestLimits,
        read_only: bool,
        call: impl FnOnce(&GuestWorld, &mut Store<GuestState>) -> wasmtime::Result<R>,
    ) -> (Connection, Result<R, OperationFailure>) {
        let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
        let query_limits = QueryLimits {
            max_rows: limits.query_rows,
            max_bytes: limits.query_bytes,
        };
        let state = GuestState {
            sql: SqlAccess::new(connection, query_limits, read_only),
            wasi: WasiCtx::builder().stderr(stderr.clone()).build(),
            table: ResourceTable::new(),
            memory: MemoryLimiter::new(limits.memory_bytes),
        };
        let mut store = Store::new(self.pre.engine(), state);
        store.limiter(|state| &mut state.memory);
        store.set_epoch_deadline(deadline_ticks(limits.operation_timeout));
        let started = Instant::now();
        let outcome = self
            .pre
            .instantiate(&mut store)
            .and_then(|guest| call(&guest, &mut store));
        let elapsed = started.elapsed();
        let GuestState { sql, memory, .. } = store.into_data();
        let connection = sql
            .into_connection()
            .expect("only the host unbinds the connection");

        let stderr = String::from_utf8_lossy(&stderr.contents()).into_owned();
        if !stderr.is_empty() {
            tracing::warn!(target: "ff_backend_sqlite_wasm::guest", op, "guest stderr: {}", stderr.trim_end());
        }
        let outcome = outcome.map_err(|error| {
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
        });
        (connection, outcome)
    }
}

/// Epoch ticks covering `timeout` (at least one; the deadline counts from the current tick).
fn deadline_ticks(timeout: Duration) -> u64 {
    let ticks = timeout.as_nanos().div_ceil(EPOCH_TICK.as_nanos());
    u64::try_from(ticks).unwrap_or(u64::MAX).saturating_add(1)
}
