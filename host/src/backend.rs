//! [`SqliteBackend`]: the `EngineBackend` callers hold.
//!
//! Every operation runs on a blocking thread (`spawn_blocking`): it locks the backend's one
//! connection, opens `BEGIN IMMEDIATE`, calls the guest on a fresh instance, and commits only
//! when the guest returned `Ok`. An error value, a trap or a failed `COMMIT` rolls back.
//! Operations on one backend are therefore serialized in-process, so no `SQLITE_BUSY` or
//! `SQLITE_LOCKED` can arise between them; across processes SQLite's busy timeout applies.

use std::ops::Deref;
use std::path::PathBuf;
use std::sync::{Arc, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use ff_core::backend::{
    AppendFrameOutcome, CancelFlowPolicy, CancelFlowWait, CapabilitySet, ClaimPolicy, FailOutcome,
    FailureClass, FailureReason, Frame, Handle, LeaseRenewal, PendingWaitpoint, ResumeSignal,
    ResumeToken, UsageDimensions,
};
use ff_core::capability::{BackendIdentity, Capabilities, Supports, Version};
use ff_core::contracts::{
    CancelFlowResult, ClaimExecutionArgs, ClaimExecutionResult, ExecutionContext,
    ExecutionSnapshot, FlowSnapshot, ReportUsageResult, SuspendArgs, SuspendOutcome,
};
use ff_core::engine_backend::EngineBackend;
use ff_core::engine_error::EngineError;
use ff_core::types::{BudgetId, ExecutionId, FlowId, LaneId, TimestampMs};
use rusqlite::Connection;
use wasmtime::Store;

use crate::BACKEND_LABEL;
use crate::bindings::{self, GuestWorld, wit};
use crate::database::Database;
use crate::error::{OpenError, OperationFailure};
use crate::guest::{GuestRuntime, GuestState};

/// FlowFabric's SQLite engine backend, with the engine logic in a WebAssembly guest.
///
/// Construct with [`SqliteBackend::new`] (the built-in guest) or [`SqliteBackend::builder`]
/// (your own guest component); use as `Arc<dyn EngineBackend>`. Backends built for the same
/// database (the same file, or the same in-memory URI) share one connection while any of them
/// is alive, whichever guest each runs. Dropping the last one closes the database; an in-memory
/// database is then gone.
pub struct SqliteBackend {
    database: Arc<Database>,
    guest: Arc<GuestRuntime>,
}

impl SqliteBackend {
    /// Open (creating if needed) the database at `uri` and return a backend for it that runs
    /// the built-in guest.
    ///
    /// `uri` is a file path, `:memory:`, or a SQLite URI such as
    /// `file:name?mode=memory&cache=shared`. Files get WAL journaling, `synchronous=FULL` and a
    /// 5 s busy timeout. The schema is migrated to this build's version. Requires the
    /// environment variable `FF_DEV_MODE=1`, as upstream's SQLite backend does.
    pub async fn new(uri: &str) -> Result<Arc<Self>, OpenError> {
        Self::builder(uri).open().await
    }

    /// Start configuring a backend for the database at `uri` (see [`SqliteBackend::new`]).
    pub fn builder(uri: impl Into<String>) -> SqliteBackendBuilder {
        SqliteBackendBuilder {
            uri: uri.into(),
            guest: GuestSource::Builtin,
        }
    }

    /// Lend the backend's connection to a test, for seeding and inspecting rows with raw SQL
    /// (upstream's `pool_for_test()`). Operations wait while the guard is held.
    #[doc(hidden)]
    pub fn connection_for_test(&self) -> ConnectionForTest<'_> {
        ConnectionForTest(self.database.lock())
    }

    /// Run one guest operation in its own transaction on a blocking thread.
    async fn run<T, F>(&self, op: &'static str, call: F) -> Result<T, EngineError>
    where
        T: Send + 'static,
        F: FnOnce(
                &GuestWorld,
                &mut Store<GuestState>,
            ) -> wasmtime::Result<Result<T, wit::EngineError>>
            + Send
            + 'static,
    {
        let database = Arc::clone(&self.database);
        let guest = Arc::clone(&self.guest);
        tokio::task::spawn_blocking(move || {
            database
                .with_connection(|connection| run_in_transaction(&guest, connection, op, call))?
        })
        .await
        .unwrap_or_else(|join| {
            Err(OperationFailure::TaskFailed {
                op,
                detail: join.to_string(),
            }
            .into())
        })
    }
}

/// `BEGIN IMMEDIATE`, the guest call, then `COMMIT` on `Ok` or `ROLLBACK` on anything else.
fn run_in_transaction<T>(
    guest: &GuestRuntime,
    connection: Connection,
    op: &'static str,
    call: impl FnOnce(
        &GuestWorld,
        &mut Store<GuestState>,
    ) -> wasmtime::Result<Result<T, wit::EngineError>>,
) -> (Connection, Result<T, EngineError>) {
    if let Err(source) = connection.execute_batch("BEGIN IMMEDIATE") {
        return (
            connection,
            Err(OperationFailure::Database { op, source }.into()),
        );
    }
    let (connection, outcome) = guest.invoke(op, connection, call);
    let result = match outcome {
        Ok(Ok(value)) => connection
            .execute_batch("COMMIT")
            .map(|()| value)
            .map_err(|source| OperationFailure::Database { op, source }.into()),
        Ok(Err(error)) => Err(bindings::engine_error(op, error)),
        Err(failure) => Err(failure.into()),
    };
    // Anything but a successful COMMIT leaves the transaction open: undo it all.
    if !connection.is_autocommit()
        && let Err(error) = connection.execute_batch("ROLLBACK")
    {
        tracing::error!(op, %error, "rollback failed");
    }
    (connection, result)
}

/// Where a backend's guest component comes from.
enum GuestSource {
    Builtin,
    Bytes(Vec<u8>),
    File(PathBuf),
}

/// Configures a [`SqliteBackend`]; made by [`SqliteBackend::builder`].
#[must_use = "a builder does nothing until `open` is called"]
pub struct SqliteBackendBuilder {
    uri: String,
    guest: GuestSource,
}

impl SqliteBackendBuilder {
    /// Run this component (a `wasm32-wasip2` component binary implementing the
    /// `flowfabric:backend/engine-backend` world) instead of the built-in guest.
    pub fn guest_bytes(mut self, component: impl Into<Vec<u8>>) -> Self {
        self.guest = GuestSource::Bytes(component.into());
        self
    }

    /// Run the component in this file instead of the built-in guest.
    pub fn guest_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.guest = GuestSource::File(path.into());
        self
    }

    /// Check `FF_DEV_MODE=1`, load the guest, open and migrate the database.
    pub async fn open(self) -> Result<Arc<SqliteBackend>, OpenError> {
        if std::env::var("FF_DEV_MODE").as_deref() != Ok("1") {
            return Err(OpenError::RequiresDevMode);
        }
        tokio::task::spawn_blocking(move || self.open_blocking())
            .await
            .unwrap_or_else(|join| {
                Err(OpenError::Guest(format!(
                    "construction task failed: {join}"
                )))
            })
    }

    fn open_blocking(self) -> Result<Arc<SqliteBackend>, OpenError> {
        let guest = match self.guest {
            GuestSource::Builtin => GuestRuntime::builtin()?,
            GuestSource::Bytes(bytes) => GuestRuntime::from_component(&bytes)?,
            GuestSource::File(path) => {
                let bytes = std::fs::read(&path).map_err(|error| {
                    OpenError::Guest(format!("cannot read {}: {error}", path.display()))
                })?;
                GuestRuntime::from_component(&bytes)?
            }
        };
        let database = Database::open_shared(&self.uri)?;
        Ok(Arc::new(SqliteBackend { database, guest }))
    }
}

/// The backend's connection, lent to a test by [`SqliteBackend::connection_for_test`].
pub struct ConnectionForTest<'a>(MutexGuard<'a, Option<Connection>>);

impl Deref for ConnectionForTest<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.0
            .as_ref()
            .expect("the connection was lost by an earlier failed operation")
    }
}

impl std::fmt::Debug for SqliteBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteBackend")
            .field("database", &self.database.key())
            .finish()
    }
}

/// `Err(Unavailable { op })` for an operation this backend does not implement yet.
fn unavailable<T>(op: &'static str) -> Result<T, EngineError> {
    Err(EngineError::Unavailable { op })
}

#[async_trait]
impl EngineBackend for SqliteBackend {
    async fn claim_execution(
        &self,
        args: ClaimExecutionArgs,
    ) -> Result<ClaimExecutionResult, EngineError> {
        const OP: &str = "claim_execution";
        let guest_args = bindings::claim_execution_args(&args);
        let claimed = self
            .run(OP, move |guest, store| {
                guest
                    .flowfabric_backend_engine()
                    .call_claim_execution(store, &guest_args)
            })
            .await?;
        Ok(ClaimExecutionResult::Claimed(bindings::claimed_execution(
            OP, claimed, &args,
        )?))
    }

    fn backend_label(&self) -> &'static str {
        BACKEND_LABEL
    }

    fn capabilities(&self) -> Capabilities {
        let mut supports = Supports::none();
        // `prepare` is the trait's no-op: migrations already ran in `new`.
        supports.prepare = true;
        Capabilities::new(
            BackendIdentity::new(BACKEND_LABEL, crate_version(), "unknown"),
            supports,
        )
    }

    async fn claim(
        &self,
        _lane: &LaneId,
        _capabilities: &CapabilitySet,
        _policy: ClaimPolicy,
    ) -> Result<Option<Handle>, EngineError> {
        unavailable("claim")
    }

    async fn renew(&self, _handle: &Handle) -> Result<LeaseRenewal, EngineError> {
        unavailable("renew")
    }

    async fn progress(
        &self,
        _handle: &Handle,
        _percent: Option<u8>,
        _message: Option<String>,
    ) -> Result<(), EngineError> {
        unavailable("progress")
    }

    async fn append_frame(
        &self,
        _handle: &Handle,
        _frame: Frame,
    ) -> Result<AppendFrameOutcome, EngineError> {
        unavailable("append_frame")
    }

    async fn complete(
        &self,
        _handle: &Handle,
        _payload: Option<Vec<u8>>,
    ) -> Result<(), EngineError> {
        unavailable("complete")
    }

    async fn fail(
        &self,
        _handle: &Handle,
        _reason: FailureReason,
        _classification: FailureClass,
    ) -> Result<FailOutcome, EngineError> {
        unavailable("fail")
    }

    async fn cancel(&self, _handle: &Handle, _reason: &str) -> Result<(), EngineError> {
        unavailable("cancel")
    }

    async fn suspend(
        &self,
        _handle: &Handle,
        _args: SuspendArgs,
    ) -> Result<SuspendOutcome, EngineError> {
        unavailable("suspend")
    }

    async fn create_waitpoint(
        &self,
        _handle: &Handle,
        _waitpoint_key: &str,
        _expires_in: Duration,
    ) -> Result<PendingWaitpoint, EngineError> {
        unavailable("create_waitpoint")
    }

    async fn observe_signals(&self, _handle: &Handle) -> Result<Vec<ResumeSignal>, EngineError> {
        unavailable("observe_signals")
    }

    async fn claim_from_resume_grant(
        &self,
        _token: ResumeToken,
    ) -> Result<Option<Handle>, EngineError> {
        unavailable("claim_from_resume_grant")
    }

    async fn delay(&self, _handle: &Handle, _delay_until: TimestampMs) -> Result<(), EngineError> {
        unavailable("delay")
    }

    async fn wait_children(&self, _handle: &Handle) -> Result<(), EngineError> {
        unavailable("wait_children")
    }

    async fn describe_execution(
        &self,
        _id: &ExecutionId,
    ) -> Result<Option<ExecutionSnapshot>, EngineError> {
        unavailable("describe_execution")
    }

    async fn read_execution_context(
        &self,
        _execution_id: &ExecutionId,
    ) -> Result<ExecutionContext, EngineError> {
        unavailable("read_execution_context")
    }

    async fn describe_flow(&self, _id: &FlowId) -> Result<Option<FlowSnapshot>, EngineError> {
        unavailable("describe_flow")
    }

    async fn cancel_flow(
        &self,
        _id: &FlowId,
        _policy: CancelFlowPolicy,
        _wait: CancelFlowWait,
    ) -> Result<CancelFlowResult, EngineError> {
        unavailable("cancel_flow")
    }

    async fn report_usage(
        &self,
        _handle: &Handle,
        _budget: &BudgetId,
        _dimensions: UsageDimensions,
    ) -> Result<ReportUsageResult, EngineError> {
        unavailable("report_usage")
    }
}

/// This crate's version, as ff-core's `Version`.
fn crate_version() -> Version {
    let part = |text: &str| text.parse().unwrap_or(0);
    Version::new(
        part(env!("CARGO_PKG_VERSION_MAJOR")),
        part(env!("CARGO_PKG_VERSION_MINOR")),
        part(env!("CARGO_PKG_VERSION_PATCH")),
    )
}
