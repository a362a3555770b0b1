//! The wasmtime side: the built-in guest is compiled and pre-instantiated once per process;
//! every operation gets a fresh `Store` (so a trap, which poisons its store, never affects the
//! next operation) with WASI granting nothing: no files, no environment, no network, no clock,
//! stdin closed, stdout discarded and stderr captured for the logs and trap reports.

use std::sync::{Arc, OnceLock};

use rusqlite::Connection;
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::bindings::{GuestWorld, GuestWorldPre};
use crate::error::{OpenError, OperationFailure};
use crate::sql::{QueryLimits, SqlAccess};

/// The guest component built from `guest/` by `build.rs`.
const BUILTIN_GUEST: &[u8] = include_bytes!(env!("FF_GUEST_WASM"));

/// How much of the guest's stderr one operation keeps.
const STDERR_CAPACITY: usize = 64 * 1024;

/// The process's one wasmtime `Engine` (compiled code and configuration are shared by all
/// guests).
fn shared_engine() -> wasmtime::Result<&'static Engine> {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    if let Some(engine) = ENGINE.get() {
        return Ok(engine);
    }
    let engine = Engine::new(&Config::new())?;
    Ok(ENGINE.get_or_init(|| engine))
}

/// Store data for one operation.
pub(crate) struct GuestState {
    sql: SqlAccess,
    wasi: WasiCtx,
    table: ResourceTable,
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
    limits: QueryLimits,
}

impl GuestRuntime {
    /// The built-in guest, compiled on first use and shared by every backend in the process.
    pub fn builtin() -> Result<Arc<Self>, OpenError> {
        static BUILTIN: OnceLock<Result<Arc<GuestRuntime>, String>> = OnceLock::new();
        BUILTIN
            .get_or_init(|| {
                Self::load(BUILTIN_GUEST)
                    .map(Arc::new)
                    .map_err(|error| format!("{error:#}"))
            })
            .clone()
            .map_err(OpenError::Guest)
    }

    /// A guest from a component binary: compiled, linked and type-checked against the world.
    pub fn from_component(component: &[u8]) -> Result<Arc<Self>, OpenError> {
        Self::load(component)
            .map(Arc::new)
            .map_err(|error| OpenError::Guest(format!("{error:#}")))
    }

    fn load(component: &[u8]) -> wasmtime::Result<Self> {
        let engine = shared_engine()?;
        let component = Component::new(engine, component)?;
        let mut linker = Linker::new(engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        GuestWorld::add_to_linker::<_, HasSelf<SqlAccess>>(
            &mut linker,
            |state: &mut GuestState| &mut state.sql,
        )?;
        let pre = GuestWorldPre::new(linker.instantiate_pre(&component)?)?;
        Ok(Self {
            pre,
            limits: QueryLimits::default(),
        })
    }

    /// Run `call` on a fresh instance with `connection` bound to the guest's `sql` import, and
    /// hand the connection back whatever the guest did.
    pub fn invoke<R>(
        &self,
        op: &'static str,
        connection: Connection,
        call: impl FnOnce(&GuestWorld, &mut Store<GuestState>) -> wasmtime::Result<R>,
    ) -> (Connection, Result<R, OperationFailure>) {
        let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
        let wasi = WasiCtx::builder().stderr(stderr.clone()).build();
        let state = GuestState {
            sql: SqlAccess::new(connection, self.limits),
            wasi,
            table: ResourceTable::new(),
        };
        let mut store = Store::new(self.pre.engine(), state);
        let outcome = self
            .pre
            .instantiate(&mut store)
            .and_then(|guest| call(&guest, &mut store));
        let connection = store
            .into_data()
            .sql
            .into_connection()
            .expect("only the host unbinds the connection");

        let stderr = String::from_utf8_lossy(&stderr.contents()).into_owned();
        if !stderr.is_empty() {
            tracing::warn!(target: "ff_backend_sqlite_wasm::guest", op, "guest stderr: {}", stderr.trim_end());
        }
        let outcome = outcome.map_err(|error| OperationFailure::GuestTrapped {
            op,
            trap: error.downcast_ref::<wasmtime::Trap>().copied(),
            detail: if stderr.is_empty() {
                format!("{error:#}")
            } else {
                format!("{error:#}; guest stderr: {stderr}")
            },
        });
        (connection, outcome)
    }
}
