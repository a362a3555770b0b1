//! [`SqliteBackend`]: the `EngineBackend` callers hold.
//!
//! Every operation is a job for its database's writer thread ([`crate::storage::writer`]): the
//! guest call runs in a transaction shared with whatever other operations were queued (group
//! commit), and its result reaches the caller only after that transaction committed (and, on a
//! file, reached the disk). An error value, a trap or a timeout rolls back the operation's own writes; a
//! failed `COMMIT` fails the whole batch. Operations on one database are serialized in-process,
//! so no `SQLITE_BUSY` or `SQLITE_LOCKED` can arise between them; across processes SQLite's busy
//! timeout applies.

use std::ops::Deref;
use std::path::PathBuf;
use std::sync::{Arc, MutexGuard};
use std::time::{Duration, Instant};

use ff_core::engine_backend::ReconcileCounts;
use ff_core::engine_error::{EngineError, ValidationKind};
use ff_core::types::TimestampMs;
use rusqlite::Connection;
use tokio::sync::oneshot::error::TryRecvError;
use tokio::sync::watch;
use wasmtime::Store;

use crate::bindings::args::validation;
use crate::bindings::{GuestWorld, operator, types};
use crate::error::OpenError;
use crate::operation::{Answer, GuestJob, HostJob, Tx, writer_gone};
use crate::runtime::{CompiledCache, GuestLimits, GuestRuntime, GuestState};
use crate::storage::{CommitStats, Database, Submitted};
use crate::timers::Timers;

/// How many due budgets one reset pass handles (upstream's batch); more wait for the next pass.
const BUDGET_RESET_BATCH: u32 = 20;
/// How many due executions one expiry pass expires; more wait for the next pass.
const EXPIRY_BATCH: u32 = 100;
/// How many (partition, lane) pairs one retention pass trims, and how many executions it
/// purges in each; more wait for the next pass.
const RETENTION_TARGETS: u32 = 64;
const RETENTION_BATCH: u32 = 1000;
use crate::wake::Wakes;

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
    limits: GuestLimits,
    reuse_instances: bool,
    timers: Timers,
    /// Raised by `shutdown_prepare`: ends this backend's tails and subscriptions.
    shutdown: Arc<watch::Sender<bool>>,
}

impl SqliteBackend {
    /// Open (creating if needed) the database at `uri` and return a backend for it that runs
    /// the built-in guest.
    ///
    /// `uri` is a file path, `:memory:`, or a SQLite URI such as
    /// `file:name?mode=memory&cache=shared`. Files get WAL journaling (every answer waits for the
    /// WAL to be synced: the durability of `synchronous=FULL`) and a 5 s busy timeout. The schema is migrated to this build's version. Requires the
    /// environment variable `FF_DEV_MODE=1`, as upstream's SQLite backend does.
    pub async fn new(uri: &str) -> Result<Arc<Self>, OpenError> {
        Self::builder(uri).open().await
    }

    /// Start configuring a backend for the database at `uri` (see [`SqliteBackend::new`]).
    pub fn builder(uri: impl Into<String>) -> SqliteBackendBuilder {
        SqliteBackendBuilder {
            uri: uri.into(),
            guest: GuestSource::Builtin,
            limits: GuestLimits::default(),
            cache: CacheChoice::Default,
            reuse_instances: true,
            budget_reset_interval: Duration::ZERO,
            worker_sweep_interval: Duration::ZERO,
            expiry_interval: Duration::ZERO,
            retention: None,
        }
    }

    /// One pass of the worker-expiry sweep: delete every worker registration that lapsed at
    /// `now` (`last_heartbeat_ms + liveness_ttl_ms <= now`, in every namespace), recording a
    /// `ttl_swept` event for each, in one transaction; returns how many were deleted.
    ///
    /// Lapsed registrations are already invisible to every worker-registry operation, so the
    /// sweep only reclaims space. The background sweep
    /// ([`SqliteBackendBuilder::worker_sweep_interval`]) runs this with the wall clock; tests
    /// and operators can run it at any `now`.
    pub async fn sweep_expired_workers(&self, now: TimestampMs) -> Result<u32, EngineError> {
        self.run("sweep_expired_workers", Tx::Write, move |guest, store| {
            guest
                .flowfabric_backend_workers()
                .call_sweep_expired_workers(store, now.0)
        })
        .await
    }

    /// One expiry pass at `now`: up to 100 executions whose `deadline_at_ms` passed or whose
    /// running attempt outlived its policy's `attempt_timeout_ms` are each expired by
    /// `expire_execution` in its own operation (which checks again that the timer is due).
    /// `processed` counts the executions looked at and expired, `errors` those whose expiry
    /// failed; only a failure to list the due executions is an `Err`. The background task
    /// ([`SqliteBackendBuilder::expiry_interval`]) runs this with the wall clock.
    pub async fn expiry_pass(&self, now: TimestampMs) -> Result<ReconcileCounts, EngineError> {
        let now = now.0;
        let due = self
            .run("expiry_pass", Tx::Read, move |guest, store| {
                guest
                    .flowfabric_backend_operator()
                    .call_due_expirations(store, now, EXPIRY_BATCH)
            })
            .await?;
        let mut counts = ReconcileCounts::default();
        for item in due {
            let expired = self
                .run("expiry_pass", Tx::Write, move |guest, store| {
                    guest.flowfabric_backend_operator().call_expire_execution(
                        store,
                        &item.execution_id,
                        item.phase,
                        now,
                    )
                })
                .await;
            match expired {
                Ok(()) => counts.processed += 1,
                Err(error) => {
                    tracing::warn!(%error, "expiry pass: an execution's expiry failed");
                    counts.errors += 1;
                }
            }
        }
        Ok(counts)
    }

    /// One retention pass at `now`: for up to 64 (partition, lane) pairs holding terminal
    /// executions finished at least `retention` before `now`, `trim_retention` purges up to
    /// 1000 of them each (no filter), each pair in its own operation. `processed` counts the
    /// executions purged, `errors` the pairs whose trim failed; only a failure to list the pairs
    /// is an `Err`. The background task ([`SqliteBackendBuilder::retention`]) runs this with the
    /// wall clock.
    pub async fn retention_pass(
        &self,
        now: TimestampMs,
        retention: Duration,
    ) -> Result<ReconcileCounts, EngineError> {
        let retention_ms = u64::try_from(retention.as_millis()).unwrap_or(u64::MAX);
        let now = now.0;
        let cutoff = now.saturating_sub(i64::try_from(retention_ms).unwrap_or(i64::MAX));
        let targets = self
            .run("retention_pass", Tx::Read, move |guest, store| {
                guest.flowfabric_backend_operator().call_retention_targets(
                    store,
                    cutoff,
                    RETENTION_TARGETS,
                )
            })
            .await?;
        let mut counts = ReconcileCounts::default();
        for target in targets {
            let args = operator::TrimRetentionArgs {
                partition: target.partition,
                lane_id: target.lane_id,
                retention_ms,
                now,
                batch_size: RETENTION_BATCH,
                filter: operator::ExecutionFilter {
                    namespace: None,
                    tag: None,
                },
            };
            let trimmed = self
                .run("retention_pass", Tx::Write, move |guest, store| {
                    guest
                        .flowfabric_backend_operator()
                        .call_trim_retention(store, &args)
                })
                .await;
            match trimmed {
                Ok(purged) => counts.processed += purged,
                Err(error) => {
                    tracing::warn!(%error, "retention pass: a lane's trim failed");
                    counts.errors += 1;
                }
            }
        }
        Ok(counts)
    }

    /// One budget reset pass at `now`: the budgets whose automatic reset is due
    /// (`next_reset_at <= now`), earliest first and at most 20 (more wait for the next pass),
    /// are each reset in their own short operation, unless a manual reset moved their schedule
    /// meanwhile. `processed` counts the budgets reset, `errors` those whose reset failed; only
    /// a failure to list the due budgets is an `Err`. The background reset task
    /// ([`SqliteBackendBuilder::budget_reset_interval`]) runs this with the wall clock; tests
    /// and operators can run it at any `now`.
    pub async fn budget_reset_pass(
        &self,
        now: TimestampMs,
    ) -> Result<ReconcileCounts, EngineError> {
        let now = now.0;
        let due = self
            .run("budget_reset_pass", Tx::Read, move |guest, store| {
                guest.flowfabric_backend_budgets().call_due_budget_resets(
                    store,
                    now,
                    BUDGET_RESET_BATCH,
                )
            })
            .await?;
        let mut counts = ReconcileCounts::default();
        for budget_id in due {
            let reset = self
                .run("budget_reset_pass", Tx::Write, move |guest, store| {
                    guest
                        .flowfabric_backend_budgets()
                        .call_reset_budget_if_due(store, &budget_id, now)
                })
                .await;
            match reset {
                Ok(true) => counts.processed += 1,
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(%error, "budget reset pass: a budget's reset failed");
                    counts.errors += 1;
                }
            }
        }
        Ok(counts)
    }

    /// Stop the background tasks (see [`crate::timers`]), waiting up to `grace`; returns how many
    /// had to be aborted.
    pub(crate) async fn stop_timers(&self, grace: Duration) -> usize {
        self.timers.stop(grace).await
    }

    /// How many transactions this backend's database committed, carrying how many operations'
    /// writes, and how many batches had to run again with savepoints (all backends on the
    /// database count). With concurrent callers on a file, group commit makes `operations`
    /// exceed `transactions`.
    pub fn commit_stats(&self) -> CommitStats {
        self.database.commit_stats()
    }

    /// `Validation { PayloadTooLarge }` if `payload` (the argument `field`) is larger than this
    /// backend's guest memory: it could never be copied into the guest, so no guest's own size
    /// check would ever see it (the copy would fail as the memory limit instead).
    pub(crate) fn check_payload_fits_guest(
        &self,
        field: &str,
        payload: Option<&[u8]>,
    ) -> Result<(), EngineError> {
        let limit = self.limits.memory_bytes;
        match payload {
            Some(bytes) if bytes.len() > limit => Err(validation(
                ValidationKind::PayloadTooLarge,
                format!(
                    "{field} is {} bytes, more than the guest's memory limit of {} MiB",
                    bytes.len(),
                    limit >> 20
                ),
            )),
            _ => Ok(()),
        }
    }

    /// Another handle on this backend (same database, guest, limits and shutdown signal), for
    /// the tasks of long-lived reads.
    pub(crate) fn handle(&self) -> SqliteBackend {
        SqliteBackend {
            database: Arc::clone(&self.database),
            guest: Arc::clone(&self.guest),
            limits: self.limits,
            reuse_instances: self.reuse_instances,
            // The background tasks stay the original backend's: a handle starts none.
            timers: Timers::new(),
            shutdown: Arc::clone(&self.shutdown),
        }
    }

    /// The wake-ups of this backend's database (see [`crate::wake`]).
    pub(crate) fn wakes(&self) -> &Arc<Wakes> {
        self.database.wakes()
    }

    /// Follow this backend's shutdown signal (`true` once `shutdown_prepare` ran).
    pub(crate) fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// End this backend's tails and subscriptions (`shutdown_prepare`).
    pub(crate) fn begin_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// How many pages `tail_stream` calls on this backend's database have read so far: what
    /// their wake-ups cost (tests check that an append wakes only the tails of its stream).
    #[doc(hidden)]
    pub fn tail_pages_for_test(&self) -> u64 {
        self.database.wakes().tail_pages()
    }

    /// Lend the backend's connection to a test, for seeding and inspecting rows with raw SQL
    /// (upstream's `pool_for_test()`). Operations wait while the guard is held.
    #[doc(hidden)]
    pub fn connection_for_test(&self) -> ConnectionForTest<'_> {
        ConnectionForTest(self.database.lock())
    }

    /// Run one guest operation on the database's writer thread, in the next batch's
    /// transaction; answered once that transaction committed (see
    /// [`crate::storage::writer`]). The guest's value is the answer as it is; an operation
    /// whose value must be parsed uses [`SqliteBackend::run_checked`].
    pub(crate) async fn run<T, F>(
        &self,
        op: &'static str,
        tx: Tx,
        call: F,
    ) -> Result<T, EngineError>
    where
        T: Send + 'static,
        F: Fn(
                &GuestWorld,
                &mut Store<GuestState>,
            ) -> wasmtime::Result<Result<T, types::EngineError>>
            + Send
            + 'static,
    {
        self.run_checked(op, tx, call, Ok).await
    }

    /// [`SqliteBackend::run`], with the guest's value turned into the answer by `check` on the
    /// writer thread, before the batch's transaction commits: a value `check` refuses (a
    /// malformed identifier in a guest's result) fails the operation, and its writes are rolled
    /// back like those of any failed operation. `check` runs once per run of the guest call.
    pub(crate) async fn run_checked<G, T, F, C>(
        &self,
        op: &'static str,
        tx: Tx,
        call: F,
        check: C,
    ) -> Result<T, EngineError>
    where
        G: Send + 'static,
        T: Send + 'static,
        F: Fn(
                &GuestWorld,
                &mut Store<GuestState>,
            ) -> wasmtime::Result<Result<G, types::EngineError>>
            + Send
            + 'static,
        C: Fn(G) -> Result<T, EngineError> + Send + 'static,
    {
        let (job, answer) = GuestJob::new(
            op,
            tx,
            Arc::clone(&self.guest),
            self.limits,
            self.reuse_instances,
            call,
            check,
        );
        let Ok(submitted) = self.database.submit(Box::new(job)) else {
            return Err(writer_gone(op));
        };
        self.await_answer(op, tx == Tx::Write, submitted, answer)
            .await
    }

    /// Run `call` on the database's connection in a host-owned write transaction, with the
    /// host's SQL rights and no guest (for data no guest may see: the waitpoint keystore).
    pub(crate) async fn run_host<T, F>(&self, op: &'static str, call: F) -> Result<T, EngineError>
    where
        T: Send + 'static,
        F: Fn(&Connection) -> Result<T, EngineError> + Send + 'static,
    {
        let (job, answer) = HostJob::new(op, call);
        let Ok(submitted) = self.database.submit(Box::new(job)) else {
            return Err(writer_gone(op));
        };
        self.await_answer(op, true, submitted, answer).await
    }

    /// The answer of a submitted job; a successful one that `writes` tells the database's
    /// waiting tails and subscriptions that something committed.
    async fn await_answer<T>(
        &self,
        op: &'static str,
        writes: bool,
        submitted: Submitted,
        mut answer: Answer<T>,
    ) -> Result<T, EngineError> {
        if self.database.is_memory() && submitted == Submitted::WriterAwake {
            // An operation on a memory database takes tens of microseconds: watch for its answer
            // for a moment instead of parking this thread (a park and a wake-up cost as much).
            // Each look yields the core: if the scheduler put the writer on this core, it runs.
            let until = Instant::now() + SPIN_FOR_ANSWER;
            loop {
                match answer.try_recv() {
                    Ok(result) => {
                        if writes && result.is_ok() {
                            self.database.wakes().committed();
                        }
                        return result;
                    }
                    Err(TryRecvError::Closed) => return Err(writer_gone(op)),
                    Err(TryRecvError::Empty) if Instant::now() < until => {
                        std::thread::yield_now();
                    }
                    Err(TryRecvError::Empty) => break,
                }
            }
        }
        let result = answer.await.unwrap_or_else(|_| Err(writer_gone(op)));
        if writes && result.is_ok() {
            self.database.wakes().committed();
        }
        result
    }
}

/// How long a caller on a memory database polls for its answer before it awaits it.
const SPIN_FOR_ANSWER: std::time::Duration = std::time::Duration::from_micros(200);

/// Where a backend's guest component comes from.
enum GuestSource {
    Builtin,
    Bytes(Vec<u8>),
    File(PathBuf),
    PrecompiledFile(PathBuf),
}

/// Where compiled guest components are cached.
enum CacheChoice {
    /// [`CompiledCache::default_location`].
    Default,
    /// This directory.
    Dir(PathBuf),
    /// Nowhere: compile in every new process.
    Off,
}

/// Configures a [`SqliteBackend`]; made by [`SqliteBackend::builder`].
#[must_use = "a builder does nothing until `open` is called"]
pub struct SqliteBackendBuilder {
    uri: String,
    guest: GuestSource,
    limits: GuestLimits,
    cache: CacheChoice,
    reuse_instances: bool,
    budget_reset_interval: Duration,
    worker_sweep_interval: Duration,
    expiry_interval: Duration,
    retention: Option<(Duration, Duration)>,
}

impl SqliteBackendBuilder {
    /// Run [`SqliteBackend::budget_reset_pass`] in the background every `interval` (the first
    /// pass one interval after `open`), with the wall clock as `now`, until `shutdown_prepare`
    /// or until the backend is dropped. Off by default (and with a zero interval), as upstream's
    /// scanners are. Needs a tokio runtime with the time driver when `open` runs.
    pub fn budget_reset_interval(mut self, interval: Duration) -> Self {
        self.budget_reset_interval = interval;
        self
    }

    /// Run [`SqliteBackend::sweep_expired_workers`] in the background every `interval`, with
    /// the wall clock as `now`, on the same terms as
    /// [`SqliteBackendBuilder::budget_reset_interval`]. Off by default.
    pub fn worker_sweep_interval(mut self, interval: Duration) -> Self {
        self.worker_sweep_interval = interval;
        self
    }

    /// Run [`SqliteBackend::expiry_pass`] in the background every `interval`, with the wall
    /// clock as `now`, on the same terms as [`SqliteBackendBuilder::budget_reset_interval`].
    /// Off by default.
    pub fn expiry_interval(mut self, interval: Duration) -> Self {
        self.expiry_interval = interval;
        self
    }

    /// Run [`SqliteBackend::retention_pass`] with `retention` in the background every
    /// `interval`, with the wall clock as `now`, on the same terms as
    /// [`SqliteBackendBuilder::budget_reset_interval`]: terminal executions are purged once
    /// they finished `retention` ago. Off by default.
    pub fn retention(mut self, interval: Duration, retention: Duration) -> Self {
        self.retention = Some((interval, retention));
        self
    }

    /// The background tasks asked for, as (builder option, period); zero periods start none.
    fn timer_periods(&self) -> [(&'static str, Duration); 4] {
        [
            ("budget_reset_interval", self.budget_reset_interval),
            ("worker_sweep_interval", self.worker_sweep_interval),
            ("expiry_interval", self.expiry_interval),
            (
                "retention",
                self.retention
                    .map_or(Duration::ZERO, |(interval, _)| interval),
            ),
        ]
    }

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

    /// Run the component precompiled into this file by
    /// [`precompile_guest_component`](crate::precompile_guest_component) (`ffwasm guest
    /// compile`): no compilation at start-up. Only load artifacts you made yourself: they
    /// contain machine code.
    pub fn guest_precompiled_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.guest = GuestSource::PrecompiledFile(path.into());
        self
    }

    /// Bound every operation of this backend's guest by `limits` (default:
    /// [`GuestLimits::default`]).
    pub fn limits(mut self, limits: GuestLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Keep compiled guest components in `dir` (default: `$XDG_CACHE_HOME/ff-backend-sqlite-wasm`
    /// or `~/.cache/ff-backend-sqlite-wasm`). A new process then loads the guest's machine code
    /// instead of compiling it. Entries are keyed by the component's and the engine's hashes and
    /// checked against a digest; a damaged or foreign entry is ignored and rewritten; the 16 most
    /// recently written entries are kept. The
    /// directory must be writable only by you: its files are code this process runs.
    pub fn compiled_cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache = CacheChoice::Dir(dir.into());
        self
    }

    /// Give every operation a fresh guest instance, dropped when it returns, so that nothing a
    /// guest keeps in memory (globals, heap) outlives the operation. By default an instance
    /// serves one operation after another until one fails (a trap, a timeout, a memory refusal),
    /// which saves instantiating the guest on every call.
    pub fn fresh_instance_per_operation(mut self) -> Self {
        self.reuse_instances = false;
        self
    }

    /// Compile the guest in every new process; read and write no cache.
    pub fn no_compiled_cache(mut self) -> Self {
        self.cache = CacheChoice::Off;
        self
    }

    /// Check `FF_DEV_MODE=1`, load the guest, open and migrate the database. Inside a Tokio
    /// runtime this work runs on its blocking pool; awaited outside one (another executor, or a
    /// plain `block_on`), it runs on the calling thread. The backend's operations need no
    /// runtime either.
    pub async fn open(self) -> Result<Arc<SqliteBackend>, OpenError> {
        if std::env::var("FF_DEV_MODE").as_deref() != Ok("1") {
            return Err(OpenError::RequiresDevMode);
        }
        let periods = self.timer_periods();
        let retention = self
            .retention
            .map_or(Duration::ZERO, |(_, retention)| retention);
        let needs_runtime = periods.iter().find(|(_, period)| !period.is_zero());
        let backend = if tokio::runtime::Handle::try_current().is_ok() {
            tokio::task::spawn_blocking(move || self.open_blocking())
                .await
                .unwrap_or_else(|join| {
                    Err(OpenError::Guest(format!(
                        "construction task failed: {join}"
                    )))
                })?
        } else if let Some((what, _)) = needs_runtime {
            return Err(OpenError::NeedsRuntime { what });
        } else {
            // No runtime to lend a blocking thread: open on the caller's.
            self.open_blocking()?
        };
        let [budget_resets, worker_sweep, expiry, retention_period] = periods.map(|(_, p)| p);
        start_timer(&backend, budget_resets, |backend, now| async move {
            if let Err(error) = backend.budget_reset_pass(now).await {
                tracing::warn!(%error, "budget reset pass failed");
            }
        });
        start_timer(&backend, worker_sweep, |backend, now| async move {
            if let Err(error) = backend.sweep_expired_workers(now).await {
                tracing::warn!(%error, "worker expiry sweep failed");
            }
        });
        start_timer(&backend, expiry, |backend, now| async move {
            if let Err(error) = backend.expiry_pass(now).await {
                tracing::warn!(%error, "expiry pass failed");
            }
        });
        start_timer(&backend, retention_period, move |backend, now| async move {
            if let Err(error) = backend.retention_pass(now, retention).await {
                tracing::warn!(%error, "retention pass failed");
            }
        });
        Ok(backend)
    }

    fn open_blocking(self) -> Result<Arc<SqliteBackend>, OpenError> {
        let cache = match self.cache {
            CacheChoice::Default => CompiledCache::default_location(),
            CacheChoice::Dir(dir) => Some(CompiledCache::new(dir)),
            CacheChoice::Off => None,
        };
        let cache = cache.as_ref();
        let guest = match self.guest {
            GuestSource::Builtin => GuestRuntime::builtin(cache)?,
            GuestSource::Bytes(bytes) => GuestRuntime::from_component(&bytes, cache)?,
            GuestSource::File(path) => GuestRuntime::from_component(&read_guest(&path)?, cache)?,
            GuestSource::PrecompiledFile(path) => {
                GuestRuntime::from_precompiled(&read_guest(&path)?, cache)?
            }
        };
        let database = Database::open_shared(&self.uri)?;
        Ok(Arc::new(SqliteBackend {
            database,
            guest,
            limits: self.limits,
            reuse_instances: self.reuse_instances,
            timers: Timers::new(),
            shutdown: Arc::new(watch::Sender::new(false)),
        }))
    }
}

/// Start a background task running `pass` every `interval` with the wall clock (a zero
/// interval starts nothing). The task holds the backend weakly: it ends when the backend is
/// dropped.
fn start_timer<F, Fut>(backend: &Arc<SqliteBackend>, interval: Duration, pass: F)
where
    F: Fn(Arc<SqliteBackend>, TimestampMs) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let weak = Arc::downgrade(backend);
    backend.timers.start(interval, move || {
        let weak = weak.clone();
        let pass = pass.clone();
        async move {
            let Some(backend) = weak.upgrade() else {
                return false;
            };
            pass(backend, TimestampMs::now()).await;
            true
        }
    });
}

/// The bytes of a guest file.
fn read_guest(path: &std::path::Path) -> Result<Vec<u8>, OpenError> {
    std::fs::read(path)
        .map_err(|error| OpenError::Guest(format!("cannot read {}: {error}", path.display())))
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
