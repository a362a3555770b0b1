//! Helpers shared by the integration tests: backends on fresh databases, raw-SQL seeding with
//! upstream's literals, leases taken through the public API, argument builders, row readers, and
//! a full-database snapshot for "nothing changed" assertions.

use ff_backend_sqlite_wasm::SqliteBackend;
use ff_core::backend::{CapabilitySet, ClaimPolicy, Handle};
use ff_core::contracts::{
    CancelExecutionArgs, ClaimExecutionArgs, ClaimExecutionResult, ClaimedExecution,
    CompleteExecutionArgs, CreateExecutionArgs, CreateExecutionResult, FailExecutionArgs,
    IssueClaimGrantArgs, IssueReclaimGrantArgs, ReclaimExecutionArgs, RenewLeaseArgs,
};
use ff_core::engine_backend::EngineBackend;
use ff_core::engine_error::{ContentionKind, EngineError, ValidationKind};
use ff_core::partition::{Partition, PartitionFamily};
use ff_core::types::{
    AttemptId, AttemptIndex, CancelSource, ExecutionId, LaneId, LeaseEpoch, LeaseFence, LeaseId,
    Namespace, TimestampMs, WorkerId, WorkerInstanceId,
};
use rusqlite::Connection;
use rusqlite::types::Value;
use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use uuid::Uuid;

// ── Backends ────────────────────────────────────────────────────────────────────────────────

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    TimestampMs::now().0
}

/// A named in-memory URI no other test uses.
pub fn memory_uri(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!(
        "file:{prefix}-{}-{n}-{}?mode=memory&cache=shared",
        std::process::id(),
        Uuid::new_v4()
    )
}

/// Set the dev-mode opt-in every construction needs, unless it is set already.
pub fn dev_mode() {
    if std::env::var("FF_DEV_MODE").as_deref() != Ok("1") {
        // SAFETY: written only while the opt-in is missing: by the first tests to get here (these
        // may overlap one another and other tests starting up, which read the environment through
        // std, whose lock orders its reads and writes), and after
        // `construction::refuses_without_dev_mode`, which runs alone (`#[serial(process)]`).
        unsafe { std::env::set_var("FF_DEV_MODE", "1") };
    }
}

/// A backend on a fresh in-memory database.
pub async fn fresh_backend(prefix: &str) -> Arc<SqliteBackend> {
    dev_mode();
    SqliteBackend::new(&memory_uri(prefix))
        .await
        .expect("construct")
}

// ── Ids ─────────────────────────────────────────────────────────────────────────────────────

/// The 16-byte blob form of an execution UUID.
pub fn blob(uuid: Uuid) -> Vec<u8> {
    uuid.as_bytes().to_vec()
}

/// The UUID part of an execution id (`{fp:N}:<uuid>`).
pub fn uuid_of(execution_id: &ExecutionId) -> Uuid {
    Uuid::parse_str(execution_id.as_str().split_once("}:").unwrap().1).unwrap()
}

/// A fresh execution id on partition 0.
pub fn new_execution_id() -> ExecutionId {
    ExecutionId::parse(&format!("{{fp:0}}:{}", Uuid::new_v4())).unwrap()
}

/// The flow partition an execution lives on.
pub fn partition_of(execution_id: &ExecutionId) -> Partition {
    Partition {
        family: PartitionFamily::Flow,
        index: execution_id.partition(),
    }
}

// ── Raw-SQL seeding (upstream's literals) ───────────────────────────────────────────────────

/// A runnable, unowned, eligible execution on partition 0, seeded as upstream's tests do.
pub fn seed_runnable(conn: &Connection) -> (Uuid, ExecutionId) {
    let exec_uuid = Uuid::new_v4();
    let eid = ExecutionId::parse(&format!("{{fp:0}}:{exec_uuid}")).unwrap();
    conn.execute(
        "INSERT INTO ff_exec_core (partition_key, execution_id, flow_id, lane_id, attempt_index, \
             lifecycle_phase, ownership_state, eligibility_state, public_state, attempt_state, \
             priority, created_at_ms, raw_fields) \
         VALUES (0, ?1, NULL, 'default', 0, 'runnable', 'unowned', 'eligible_now', 'waiting', \
             'pending_first_attempt', 0, ?2, '{}')",
        rusqlite::params![blob(exec_uuid), now_ms()],
    )
    .expect("seed exec");
    (exec_uuid, eid)
}

/// A [`seed_runnable`] execution whose row is then changed by `SET <assignment>`: the states
/// upstream's tests seed by hand.
pub fn seed_runnable_as(conn: &Connection, assignment: &str) -> (Uuid, ExecutionId) {
    let (exec_uuid, eid) = seed_runnable(conn);
    update_exec(conn, &eid, assignment);
    (exec_uuid, eid)
}

/// A claim grant for `worker_id`, expiring at `expires_at_ms`.
pub fn seed_grant(conn: &Connection, exec_uuid: Uuid, worker_id: &str, expires_at_ms: i64) {
    conn.execute(
        "INSERT INTO ff_claim_grant (partition_key, grant_id, execution_id, kind, worker_id, \
             worker_instance_id, lane_id, capability_hash, worker_capabilities, route_snapshot_json, \
             admission_summary, grant_ttl_ms, issued_at_ms, expires_at_ms) \
         VALUES (0, ?1, ?2, 'claim', ?3, 'wi', 'default', NULL, '[]', NULL, NULL, 60000, ?4, ?5)",
        rusqlite::params![blob(Uuid::new_v4()), blob(exec_uuid), worker_id, now_ms(), expires_at_ms],
    )
    .expect("seed grant");
}

/// A runnable execution ([`seed_runnable`]) with a claim grant for `worker_id` that lives for
/// another 60 s ([`seed_grant`]).
pub fn seed_granted(conn: &Connection, worker_id: &str) -> (Uuid, ExecutionId) {
    let (exec_uuid, eid) = seed_runnable(conn);
    seed_grant(conn, exec_uuid, worker_id, now_ms() + 60_000);
    (exec_uuid, eid)
}

/// Upstream's typed-test lease, seeded by hand: an active, leased execution whose attempt 0 is
/// held by worker-1 (`wi-1`) at lease epoch 1 until `expires_at`, without recorded lease or
/// attempt ids (so only the epoch fences it; see [`seeded_fence`]).
pub fn seed_active_lease(conn: &Connection, expires_at: i64) -> ExecutionId {
    let (exec_uuid, eid) = seed_runnable_as(
        conn,
        "lifecycle_phase = 'active', ownership_state = 'leased', \
         eligibility_state = 'not_applicable', public_state = 'active', \
         attempt_state = 'running_attempt'",
    );
    conn.execute(
        "INSERT INTO ff_attempt (partition_key, execution_id, attempt_index, worker_id, \
             worker_instance_id, lease_epoch, lease_expires_at_ms, started_at_ms) \
         VALUES (0, ?1, 0, 'worker-1', 'wi-1', 1, ?2, ?3)",
        rusqlite::params![blob(exec_uuid), expires_at, now_ms()],
    )
    .unwrap();
    eid
}

/// A fence for a hand-seeded lease at `epoch`, with fresh ids (seeded rows record none).
pub fn seeded_fence(epoch: u64) -> LeaseFence {
    LeaseFence {
        lease_id: LeaseId::new(),
        lease_epoch: LeaseEpoch(epoch),
        attempt_id: AttemptId::new(),
    }
}

/// A backend on a fresh database with one hand-seeded lease ([`seed_active_lease`]) that is live
/// for another 30 s.
pub async fn seeded_lease_backend(prefix: &str) -> (Arc<SqliteBackend>, ExecutionId) {
    let backend = fresh_backend(prefix).await;
    let eid = seed_active_lease(&backend.connection_for_test(), now_ms() + 30_000);
    (backend, eid)
}

// ── Leases taken through the API ────────────────────────────────────────────────────────────

/// Seed an execution granted to worker-1 ([`seed_granted`]) and lease it to worker-1 through
/// `claim_execution` at `now` (which may lie in the past): attempt 0, a 60 s lease from `now`.
pub async fn seed_leased_at(backend: &SqliteBackend, now: i64) -> (ExecutionId, ClaimedExecution) {
    let (_, eid) = seed_granted(&backend.connection_for_test(), "worker-1");
    let claim = claimed(
        backend
            .claim_execution(claim_args_at(eid.clone(), "worker-1", 0, now))
            .await
            .expect("claim"),
    );
    (eid, claim)
}

/// A backend on a fresh database with one seeded execution leased to worker-1 now
/// ([`seed_leased_at`]).
pub async fn leased_backend(prefix: &str) -> (Arc<SqliteBackend>, ExecutionId, ClaimedExecution) {
    let backend = fresh_backend(prefix).await;
    let (eid, claim) = seed_leased_at(&backend, now_ms()).await;
    (backend, eid, claim)
}

/// Lease `claim.execution_id` through the public API only: `create_execution` on lane `default`
/// at `now` ([`create_args`]), `issue_claim_grant` to `claim.worker_id` at `now`
/// ([`grant_args`]), then `claim_execution` with `claim`.
pub async fn create_and_lease(
    engine: &dyn EngineBackend,
    now: i64,
    claim: ClaimExecutionArgs,
) -> ClaimedExecution {
    let eid = claim.execution_id.clone();
    engine
        .create_execution(create_args(eid.clone(), "default", now))
        .await
        .expect("create");
    engine
        .issue_claim_grant(grant_args(eid, claim.worker_id.as_str(), now))
        .await
        .expect("grant");
    claimed(engine.claim_execution(claim).await.expect("claim"))
}

/// A backend on a fresh database with one execution leased to worker-1 now through the public
/// API only ([`create_and_lease`] with [`claim_args_at`] attempt 0).
pub async fn created_leased_backend(
    prefix: &str,
) -> (Arc<SqliteBackend>, ExecutionId, ClaimedExecution) {
    let backend = fresh_backend(prefix).await;
    let eid = new_execution_id();
    let now = now_ms();
    let claim = create_and_lease(
        &*backend,
        now,
        claim_args_at(eid.clone(), "worker-1", 0, now),
    )
    .await;
    (backend, eid, claim)
}

/// Upstream's `create_and_claim` of the operator, reads and reclaim tests: create an execution
/// ([`upstream_create_args`]) on a lane of its own and lease it through the lane scanner to
/// `worker_id` (instance `<worker_id>-i1`) for 30 s. Upstream then rewrote the created row to a
/// claimable state by hand; ours is claimable as created (semantics Q5).
pub async fn create_and_claim_on_own_lane(
    backend: &SqliteBackend,
    worker_id: &str,
) -> (ExecutionId, LaneId, Handle) {
    let lane = LaneId::new(format!("lane-{}", Uuid::new_v4()));
    let eid = new_execution_id();
    let created = backend
        .create_execution(upstream_create_args(&eid, &lane))
        .await
        .expect("create");
    assert!(matches!(created, CreateExecutionResult::Created { .. }));
    let policy = ClaimPolicy::new(
        WorkerId::new(worker_id),
        WorkerInstanceId::new(format!("{worker_id}-i1")),
        30_000,
        None,
    );
    let handle = backend
        .claim(&lane, &CapabilitySet::default(), policy)
        .await
        .expect("claim")
        .expect("handle");
    (eid, lane, handle)
}

/// The `ClaimedExecution` inside a claim result.
pub fn claimed(result: ClaimExecutionResult) -> ClaimedExecution {
    match result {
        ClaimExecutionResult::Claimed(claimed) => claimed,
        #[allow(unreachable_patterns)]
        other => panic!("expected Claimed, got {other:?}"),
    }
}

/// The fence of a claimed lease.
pub fn fence_of(claimed: &ClaimedExecution) -> LeaseFence {
    LeaseFence {
        lease_id: claimed.lease_id.clone(),
        lease_epoch: claimed.lease_epoch,
        attempt_id: claimed.attempt_id.clone(),
    }
}

// ── Argument builders ───────────────────────────────────────────────────────────────────────

/// Claim arguments for `worker_id` (instance `wi-1`, lane `default`) at attempt 0 with a 60 s
/// lease.
pub fn claim_args(eid: ExecutionId, worker_id: &str) -> ClaimExecutionArgs {
    ClaimExecutionArgs::new(
        eid,
        WorkerId::new(worker_id),
        WorkerInstanceId::new("wi-1"),
        LaneId::new("default"),
        LeaseId::new(),
        60_000,
        AttemptId::new(),
        AttemptIndex::new(0),
        String::new(),
        None,
        None,
        TimestampMs::now(),
    )
}

/// [`claim_args`] at `attempt_index` and `now`.
pub fn claim_args_at(
    eid: ExecutionId,
    worker_id: &str,
    attempt_index: u32,
    now: i64,
) -> ClaimExecutionArgs {
    let mut args = claim_args(eid, worker_id);
    args.expected_attempt_index = AttemptIndex::new(attempt_index);
    args.now = TimestampMs::from_millis(now);
    args
}

/// Upstream's `create_args` of its operator, reads and reclaim tests: namespace `default`, kind
/// `op`, payload `hello`, no tags.
pub fn upstream_create_args(eid: &ExecutionId, lane: &LaneId) -> CreateExecutionArgs {
    let mut args = create_args(eid.clone(), lane.as_str(), now_ms());
    args.namespace = Namespace::new("default");
    args.execution_kind = "op".into();
    args.input_payload = b"hello".to_vec();
    args.payload_encoding = None;
    args.creator_identity = "test".into();
    args.tags = Default::default();
    args
}

/// Upstream's hot-path `ClaimPolicy` for the lane scanner: `test-worker` (instance
/// `test-worker-instance`), a 30 s lease, no waiting.
pub fn claim_policy() -> ClaimPolicy {
    ClaimPolicy::new(
        WorkerId::new("test-worker"),
        WorkerInstanceId::new("test-worker-instance"),
        30_000,
        None,
    )
}

/// A lane-scanner claim policy for `worker_id` (instance `wi-1`) with a 30 s lease.
pub fn scanner_policy(worker_id: &str) -> ClaimPolicy {
    ClaimPolicy::new(
        WorkerId::new(worker_id),
        WorkerInstanceId::new("wi-1"),
        30_000,
        None,
    )
}

/// `CreateExecutionArgs` for `lane` with a small payload, a namespace and one tag.
pub fn create_args(execution_id: ExecutionId, lane: &str, now: i64) -> CreateExecutionArgs {
    CreateExecutionArgs {
        execution_id,
        namespace: Namespace::new("ns1"),
        lane_id: LaneId::new(lane),
        execution_kind: "kind1".into(),
        input_payload: b"input".to_vec(),
        payload_encoding: Some("json".into()),
        priority: 0,
        creator_identity: "tests".into(),
        idempotency_key: None,
        tags: [("cairn.instance_id".to_string(), "inst-1".to_string())]
            .into_iter()
            .collect(),
        policy: None,
        delay_until: None,
        execution_deadline_at: None,
        partition_id: 0,
        now: TimestampMs::from_millis(now),
    }
}

/// `IssueClaimGrantArgs` for `worker_id` with no capabilities and a 60 s grant.
pub fn grant_args(execution_id: ExecutionId, worker_id: &str, now: i64) -> IssueClaimGrantArgs {
    let partition = partition_of(&execution_id);
    IssueClaimGrantArgs::new(
        execution_id,
        LaneId::new("default"),
        WorkerId::new(worker_id),
        WorkerInstanceId::new("wi-1"),
        partition,
        Default::default(),
        60_000,
        TimestampMs::from_millis(now),
    )
}

/// `RenewLeaseArgs` for attempt 0 under `fence`: a 60 s lease and 60 s of lease history.
pub fn renew_args(eid: &ExecutionId, fence: Option<LeaseFence>) -> RenewLeaseArgs {
    RenewLeaseArgs {
        execution_id: eid.clone(),
        attempt_index: AttemptIndex::new(0),
        fence,
        lease_ttl_ms: 60_000,
        lease_history_grace_ms: 60_000,
    }
}

/// `CompleteExecutionArgs` from the lease holder for attempt 0 under `fence`, with the result
/// `b"result"`, now.
pub fn complete_args(eid: &ExecutionId, fence: Option<LeaseFence>) -> CompleteExecutionArgs {
    CompleteExecutionArgs {
        execution_id: eid.clone(),
        fence,
        attempt_index: AttemptIndex::new(0),
        result_payload: Some(b"result".to_vec()),
        result_encoding: None,
        source: CancelSource::LeaseHolder,
        now: TimestampMs::now(),
    }
}

/// `FailExecutionArgs` from the lease holder for attempt 0 under `fence` (reason `boom`,
/// category `test`) with the retry policy JSON `policy` (`""` for none).
pub fn fail_args(eid: &ExecutionId, fence: Option<LeaseFence>, policy: &str) -> FailExecutionArgs {
    FailExecutionArgs {
        execution_id: eid.clone(),
        fence,
        attempt_index: AttemptIndex::new(0),
        failure_reason: "boom".into(),
        failure_category: "test".into(),
        retry_policy_json: policy.into(),
        next_attempt_policy_json: String::new(),
        source: CancelSource::LeaseHolder,
    }
}

/// `CancelExecutionArgs` from `source` (reason `operator said so`), fenced by `lease_epoch` only,
/// now.
pub fn cancel_args(
    eid: &ExecutionId,
    source: CancelSource,
    lease_epoch: Option<u64>,
) -> CancelExecutionArgs {
    CancelExecutionArgs {
        execution_id: eid.clone(),
        reason: "operator said so".into(),
        source,
        lease_id: None,
        lease_epoch: lease_epoch.map(LeaseEpoch::new),
        attempt_id: None,
        now: TimestampMs::now(),
    }
}

/// `IssueReclaimGrantArgs` for `worker_id` (instance `<worker_id>-instance`, capability `gpu`)
/// on lane `default` with a 60 s grant, now.
pub fn reclaim_grant_args(eid: &ExecutionId, worker_id: &str) -> IssueReclaimGrantArgs {
    IssueReclaimGrantArgs::new(
        eid.clone(),
        WorkerId::new(worker_id),
        WorkerInstanceId::new(format!("{worker_id}-instance")),
        LaneId::new("default"),
        None,
        60_000,
        None,
        None,
        ["gpu".to_string()].into_iter().collect(),
        TimestampMs::now(),
    )
}

/// `ReclaimExecutionArgs` for `worker_id` (instance `wi-2`) taking over attempt 0 from `wi-1`
/// with a fresh 60 s lease, capped at `max_reclaim_count`.
pub fn reclaim_args(
    eid: &ExecutionId,
    worker_id: &str,
    max_reclaim_count: Option<u32>,
) -> ReclaimExecutionArgs {
    ReclaimExecutionArgs::new(
        eid.clone(),
        WorkerId::new(worker_id),
        WorkerInstanceId::new("wi-2"),
        LaneId::new("default"),
        None,
        LeaseId::new(),
        60_000,
        AttemptId::new(),
        String::new(),
        max_reclaim_count,
        WorkerInstanceId::new("wi-1"),
        AttemptIndex::new(0),
    )
}

// ── Reading and changing rows ───────────────────────────────────────────────────────────────

/// Every row of every table, as text, in a stable order: equal snapshots mean an unchanged
/// database.
pub fn snapshot(conn: &Connection) -> Vec<String> {
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut out = Vec::new();
    for table in tables {
        let mut stmt = conn.prepare(&format!("SELECT * FROM \"{table}\"")).unwrap();
        let width = stmt.column_count();
        let mut rows: Vec<String> = stmt
            .query_map([], |row| {
                let values: Vec<String> = (0..width)
                    .map(|i| format!("{:?}", row.get::<_, Value>(i).unwrap()))
                    .collect();
                Ok(format!("{table}: {}", values.join(" | ")))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        rows.sort();
        out.extend(rows);
    }
    out
}

/// Await `operation`, assert that it failed and left the database exactly as it was (by
/// [`snapshot`]), and return its error for the caller to match.
pub async fn rejected_without_writes<T: Debug>(
    backend: &SqliteBackend,
    operation: impl Future<Output = Result<T, EngineError>>,
) -> EngineError {
    let before = snapshot(&backend.connection_for_test());
    let error = operation.await.expect_err("the operation must fail");
    assert_eq!(
        snapshot(&backend.connection_for_test()),
        before,
        "a rejected operation writes nothing ({error:?})"
    );
    error
}

/// The detail of a `Validation { kind: InvalidInput }` error; panics on any other error.
pub fn invalid_input_detail(error: EngineError) -> String {
    match error {
        EngineError::Validation {
            kind: ValidationKind::InvalidInput,
            detail,
        } => detail,
        other => panic!("expected Validation(InvalidInput), got {other:?}"),
    }
}

/// The `(terminal_outcome, lease_epoch, lifecycle_phase, attempt_id)` payload of an
/// `ExecutionNotActive` contention; panics on any other error.
pub fn not_active_payload(error: EngineError) -> (String, String, String, String) {
    match error {
        EngineError::Contention(ContentionKind::ExecutionNotActive {
            terminal_outcome,
            lease_epoch,
            lifecycle_phase,
            attempt_id,
        }) => (terminal_outcome, lease_epoch, lifecycle_phase, attempt_id),
        other => panic!("expected ExecutionNotActive, got {other:?}"),
    }
}

/// Assert that `error` is `NotFound { entity: "execution" }`.
pub fn assert_execution_not_found(error: EngineError) {
    assert!(
        matches!(
            error,
            EngineError::NotFound {
                entity: "execution"
            }
        ),
        "{error:?}"
    );
}

/// Apply `SET <assignment>` to the execution's `ff_exec_core` row.
pub fn update_exec(conn: &Connection, execution_id: &ExecutionId, assignment: &str) {
    conn.execute(
        &format!("UPDATE ff_exec_core SET {assignment} WHERE execution_id = ?1"),
        [blob(uuid_of(execution_id))],
    )
    .unwrap();
}

/// One column (or expression) of the execution's row, as text (`NULL` for null).
pub fn exec_column(conn: &Connection, execution_id: &ExecutionId, column: &str) -> String {
    conn.query_row(
        &format!("SELECT COALESCE(CAST({column} AS TEXT), 'NULL') FROM ff_exec_core WHERE execution_id = ?1"),
        [blob(uuid_of(execution_id))],
        |row| row.get(0),
    )
    .unwrap()
}

/// One column (or expression) of the execution's attempt `index`, as text (`NULL` for null).
pub fn attempt_column(
    conn: &Connection,
    execution_id: &ExecutionId,
    index: u32,
    column: &str,
) -> String {
    conn.query_row(
        &format!(
            "SELECT COALESCE(CAST({column} AS TEXT), 'NULL') FROM ff_attempt \
             WHERE execution_id = ?1 AND attempt_index = ?2"
        ),
        rusqlite::params![blob(uuid_of(execution_id)), index],
        |row| row.get(0),
    )
    .unwrap()
}

/// The lease events of an execution, oldest first.
pub fn lease_events(conn: &Connection, execution_id: &ExecutionId) -> Vec<String> {
    let uuid = execution_id
        .as_str()
        .split_once("}:")
        .unwrap()
        .1
        .to_lowercase();
    conn.prepare("SELECT event_type FROM ff_lease_event WHERE execution_id = ?1 ORDER BY event_id")
        .unwrap()
        .query_map([uuid], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// The completion outcomes recorded for an execution, oldest first.
pub fn completion_events(conn: &Connection, execution_id: &ExecutionId) -> Vec<String> {
    conn.prepare(
        "SELECT outcome FROM ff_completion_event WHERE execution_id = ?1 ORDER BY event_id",
    )
    .unwrap()
    .query_map([blob(uuid_of(execution_id))], |row| row.get(0))
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// How many rows `table` holds.
pub fn count_rows(conn: &Connection, table: &str) -> i64 {
    conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |row| {
        row.get(0)
    })
    .unwrap()
}

/// How many outbox rows there are: lease events plus completion events.
pub fn outbox_rows(conn: &Connection) -> i64 {
    count_rows(conn, "ff_lease_event") + count_rows(conn, "ff_completion_event")
}

// ── Scratch directories (races.rs, processes.rs) ────────────────────────────────────────────

/// A fresh directory under `std::env::temp_dir()` for database files, removed with everything
/// in it when dropped (drop the backends using it first).
pub struct ScratchDir(std::path::PathBuf);

impl ScratchDir {
    /// Create `<temp>/ffwasm-<prefix>-<pid>-<uuid>`.
    pub fn new(prefix: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "ffwasm-{prefix}-{}-{}",
            std::process::id(),
            Uuid::new_v4()
        ));
        std::fs::create_dir_all(&path).expect("create a scratch directory");
        Self(path)
    }

    /// The path of `name` inside the directory, as the string `SqliteBackend::new` takes.
    pub fn file(&self, name: &str) -> String {
        self.0
            .join(name)
            .to_str()
            .expect("a UTF-8 temp path")
            .to_owned()
    }
}

impl std::ops::Deref for ScratchDir {
    type Target = std::path::Path;

    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
