//! [`SqliteBackend`]: the `EngineBackend` callers hold.
//!
//! Every operation runs on a blocking thread (`spawn_blocking`): it locks the backend's one
//! connection, opens `BEGIN IMMEDIATE`, calls the guest on a fresh instance, and commits only
//! when the guest returned `Ok`. An error value, a trap or a failed `COMMIT` rolls back.
//! Operations on one backend are therefore serialized in-process, so no `SQLITE_BUSY` or
//! `SQLITE_LOCKED` can arise between them; across processes SQLite's busy timeout applies.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
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
use crate::database::Location;
use crate::error::{OpenError, OperationFailure};
use crate::guest::{GuestRuntime, GuestState};

/// FlowFabric's SQLite engine backend, with the engine logic in a WebAssembly guest.
///
/// Construct with [`SqliteBackend::new`]; use as `Arc<dyn EngineBackend>`. Backends built for
/// the same database (the same file, or the same in-memory URI) share one connection while any
/// of them is alive. Dropping the last one closes the database; an in-memory database is then
/// gone.
pub struct SqliteBackend {
    shared: Arc<Shared>,
}

/// What backends for one database share.
struct Shared {
    key: String,
    connection: Mutex<Option<Connection>>,
    guest: Arc<GuestRuntime>,
}

/// Live backends by database key, so that one database has one connection per process.
static REGISTRY: Mutex<Option<HashMap<String, Weak<Shared>>>> = Mutex::new(None);

impl SqliteBackend {
    /// Open (creating if needed) the database at `uri` and return a backend for it.
    ///
    /// `uri` is a file path, `:memory:`, or a SQLite URI such as
    /// `file:name?mode=memory&cache=shared`. Files get WAL journaling, `synchronous=FULL` and a
    /// 5 s busy timeout. The schema is migrated to this build's version. Requires the
    /// environment variable `FF_DEV_MODE=1`, as upstream's SQLite backend does.
    pub async fn new(uri: &str) -> Result<Arc<Self>, OpenError> {
        if std::env::var("FF_DEV_MODE").as_deref() != Ok("1") {
            return Err(OpenError::RequiresDevMode);
        }
        let uri = uri.to_owned();
        tokio::task::spawn_blocking(move || Self::open_blocking(&uri))
            .await
            .unwrap_or_else(|join| {
                Err(OpenError::Guest(format!(
                    "construction task failed: {join}"
                )))
            })
    }

    fn open_blocking(uri: &str) -> Result<Arc<Self>, OpenError> {
        let location = Location::parse(uri);
        let key = location.key();
        let mut registry = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
        let registry = registry.get_or_insert_with(HashMap::new);
        registry.retain(|_, backend| backend.strong_count() > 0);
        if let Some(shared) = registry.get(&key).and_then(Weak::upgrade) {
            return Ok(Arc::new(Self { shared }));
        }
        let guest = GuestRuntime::builtin()?;
        let connection = location.open(uri)?;
        let shared = Arc::new(Shared {
            key: key.clone(),
            connection: Mutex::new(Some(connection)),
            guest,
        });
        registry.insert(key, Arc::downgrade(&shared));
        tracing::info!(database = %shared.key, "FlowFabric SQLite (wasm) backend opened; dev-only, single machine");
        Ok(Arc::new(Self { shared }))
    }

    /// Lend the backend's connection to a test, for seeding and inspecting rows with raw SQL
    /// (upstream's `pool_for_test()`). Operations wait while the guard is held.
    #[doc(hidden)]
    pub fn connection_for_test(&self) -> ConnectionForTest<'_> {
        ConnectionForTest(
            self.shared
                .connection
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        )
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
        let shared = Arc::clone(&self.shared);
        tokio::task::spawn_blocking(move || shared.run_in_transaction(op, call))
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

impl Shared {
    fn run_in_transaction<T>(
        &self,
        op: &'static str,
        call: impl FnOnce(
            &GuestWorld,
            &mut Store<GuestState>,
        ) -> wasmtime::Result<Result<T, wit::EngineError>>,
    ) -> Result<T, EngineError> {
        let mut slot = self
            .connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let connection = slot.take().ok_or(OperationFailure::ConnectionLost)?;
        if let Err(source) = connection.execute_batch("BEGIN IMMEDIATE") {
            *slot = Some(connection);
            return Err(OperationFailure::Database { op, source }.into());
        }
        let (connection, outcome) = self.guest.invoke(op, connection, call);
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
        *slot = Some(connection);
        result
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
            .field("database", &self.shared.key)
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
