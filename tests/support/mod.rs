//! Helpers shared by the integration tests: backends on fresh databases, raw-SQL seeding with
//! upstream's literals, and a full-database snapshot for "nothing changed" assertions.

#![allow(dead_code)] // each test binary uses a different subset

use ff_backend_sqlite_wasm::SqliteBackend;
use ff_core::contracts::ClaimExecutionArgs;
use ff_core::types::{
    AttemptId, AttemptIndex, ExecutionId, LaneId, LeaseId, TimestampMs, WorkerId, WorkerInstanceId,
};
use rusqlite::Connection;
use rusqlite::types::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use uuid::Uuid;

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

/// Set the dev-mode opt-in every construction needs.
pub fn dev_mode() {
    // SAFETY: tests that change the environment are `#[serial(ff_dev_mode)]`.
    unsafe { std::env::set_var("FF_DEV_MODE", "1") };
}

/// A backend on a fresh in-memory database.
pub async fn fresh_backend(prefix: &str) -> Arc<SqliteBackend> {
    dev_mode();
    SqliteBackend::new(&memory_uri(prefix))
        .await
        .expect("construct")
}

/// The 16-byte blob form of an execution UUID.
pub fn blob(uuid: Uuid) -> Vec<u8> {
    uuid.as_bytes().to_vec()
}

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

/// Claim arguments for `worker_id` at attempt 0 with a 60 s lease.
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

/// The `ClaimedExecution` inside a claim result.
pub fn claimed(
    result: ff_core::contracts::ClaimExecutionResult,
) -> ff_core::contracts::ClaimedExecution {
    match result {
        ff_core::contracts::ClaimExecutionResult::Claimed(claimed) => claimed,
        #[allow(unreachable_patterns)]
        other => panic!("expected Claimed, got {other:?}"),
    }
}

/// A fresh execution id on partition 0.
pub fn new_execution_id() -> ExecutionId {
    ExecutionId::parse(&format!("{{fp:0}}:{}", Uuid::new_v4())).unwrap()
}

/// `CreateExecutionArgs` for `lane` with a small payload, a namespace and one tag.
pub fn create_args(
    execution_id: ExecutionId,
    lane: &str,
    now: i64,
) -> ff_core::contracts::CreateExecutionArgs {
    ff_core::contracts::CreateExecutionArgs {
        execution_id,
        namespace: ff_core::types::Namespace::new("ns1"),
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
pub fn grant_args(
    execution_id: ExecutionId,
    worker_id: &str,
    now: i64,
) -> ff_core::contracts::IssueClaimGrantArgs {
    let partition = ff_core::partition::Partition {
        family: ff_core::partition::PartitionFamily::Flow,
        index: execution_id.partition(),
    };
    ff_core::contracts::IssueClaimGrantArgs::new(
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

/// The fence of a claimed lease.
pub fn fence_of(claimed: &ff_core::contracts::ClaimedExecution) -> ff_core::types::LeaseFence {
    ff_core::types::LeaseFence {
        lease_id: claimed.lease_id.clone(),
        lease_epoch: claimed.lease_epoch,
        attempt_id: claimed.attempt_id.clone(),
    }
}

/// Claim arguments at `attempt_index` and `now`.
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

/// One column of the execution's row, as text (`NULL` for null).
pub fn exec_column(conn: &Connection, execution_id: &ExecutionId, column: &str) -> String {
    let uuid = execution_id.as_str().split_once("}:").unwrap().1;
    conn.query_row(
        &format!("SELECT COALESCE(CAST({column} AS TEXT), 'NULL') FROM ff_exec_core WHERE execution_id = ?1"),
        [blob(Uuid::parse_str(uuid).unwrap())],
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
