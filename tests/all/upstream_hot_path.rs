//! Upstream's `hot_path.rs` tests of the lane scanner `claim` and of `claim_from_resume_grant`
//! after a lapsed lease, kept by name with only the set-up changed (sqlx → our backend and
//! `connection_for_test()`). The file's other tests (handle complete, fail, progress, renew,
//! frames) are ported in `completion.rs` and `streams.rs`; `docs/upstream-tests.md` maps them.
//! At the end: `wave9_followups.rs`'s claim test and `producer_flow.rs`'s `create_execution`
//! test.

use crate::support::*;
use ff_backend_sqlite_wasm::SqliteBackend;
use ff_core::backend::{BackendTag, CapabilitySet, ClaimPolicy, Handle, HandleKind, ResumeToken};
use ff_core::contracts::{CreateExecutionResult, ResumeGrant};
use ff_core::engine_backend::EngineBackend;
use ff_core::partition::{Partition, PartitionFamily, PartitionKey};
use ff_core::policy::{ExecutionPolicy, RoutingRequirements};
use ff_core::types::{ExecutionId, LaneId, TimestampMs, WorkerId, WorkerInstanceId};
use rusqlite::Connection;
use serial_test::parallel;
use uuid::Uuid;

// ── Set-up (upstream's helpers, on our backend) ─────────────────────────────────────────────

/// Upstream's `seed_runnable_execution`: a runnable, eligible execution on partition 0, lane
/// `default`, with upstream's literals (`pending`/`initial`, created at 1 ms), `priority`, and
/// the required `capabilities`.
fn seed_runnable_execution(
    conn: &Connection,
    priority: i64,
    capabilities: &[&str],
) -> (ExecutionId, Uuid) {
    let (exec_uuid, eid) = seed_runnable_as(
        conn,
        &format!(
            "public_state = 'pending', attempt_state = 'initial', priority = {priority}, \
             created_at_ms = 1"
        ),
    );
    for capability in capabilities {
        conn.execute(
            "INSERT INTO ff_execution_capabilities (execution_id, capability) VALUES (?1, ?2)",
            rusqlite::params![blob(exec_uuid), capability],
        )
        .expect("seed ff_execution_capabilities");
    }
    (eid, exec_uuid)
}

/// The lane scanner on lane `default` with `capabilities`.
async fn claim(backend: &SqliteBackend, capabilities: &[&str]) -> Option<Handle> {
    backend
        .claim(
            &LaneId::new("default"),
            &CapabilitySet::new(capabilities.iter().copied()),
            claim_policy(),
        )
        .await
        .expect("claim")
}

/// A fresh backend with one seeded execution (no capabilities) leased by the lane scanner.
async fn claimed_backend(prefix: &str) -> (std::sync::Arc<SqliteBackend>, ExecutionId) {
    let backend = fresh_backend(prefix).await;
    let (eid, _) = seed_runnable_execution(&backend.connection_for_test(), 0, &[]);
    claim(&backend, &[]).await.expect("handle");
    (backend, eid)
}

/// Upstream's `make_reclaim_token`: a resume grant for `reclaim-worker` on partition 0.
fn make_reclaim_token(eid: ExecutionId) -> ResumeToken {
    let partition = Partition {
        family: PartitionFamily::Execution,
        index: 0,
    };
    let grant = ResumeGrant::new(
        eid,
        PartitionKey::from(&partition),
        "sqlite:test-grant".into(),
        u64::MAX,
        LaneId::new("default"),
    );
    ResumeToken::new(
        grant,
        WorkerId::new("reclaim-worker"),
        WorkerInstanceId::new("reclaim-worker-instance"),
        30_000,
    )
}

// ── claim ───────────────────────────────────────────────────────────────────────────────────

/// Upstream writes `public_state = 'running'`; ours writes `active` (semantics Q2: every write
/// sets the state vector, `public_state` is ff-core's derived state).
#[tokio::test]
#[parallel(process)]
async fn claim_happy_path_mints_handle_and_transitions_state() {
    let backend = fresh_backend("hot-claim").await;
    let (eid, _) = seed_runnable_execution(&backend.connection_for_test(), 0, &["capA"]);
    let handle = claim(&backend, &["capA"]).await.expect("Some(handle)");
    assert_eq!(handle.backend, BackendTag::Sqlite);
    assert_eq!(handle.kind, HandleKind::Fresh);
    let conn = backend.connection_for_test();
    assert_eq!(exec_column(&conn, &eid, "lifecycle_phase"), "active");
    assert_eq!(exec_column(&conn, &eid, "public_state"), "active");
    assert_eq!(attempt_column(&conn, &eid, 0, "outcome"), "NULL");
}

#[tokio::test]
#[parallel(process)]
async fn claim_returns_none_when_no_eligible_rows() {
    let backend = fresh_backend("hot-claim-none").await;
    assert!(claim(&backend, &[]).await.is_none());
}

#[tokio::test]
#[parallel(process)]
async fn claim_capability_mismatch_skips_and_returns_none() {
    let backend = fresh_backend("hot-claim-mismatch").await;
    let (eid, _) = seed_runnable_execution(&backend.connection_for_test(), 0, &["capA", "capB"]);
    assert!(claim(&backend, &["capA"]).await.is_none());
    let conn = backend.connection_for_test();
    assert_eq!(exec_column(&conn, &eid, "lifecycle_phase"), "runnable");
    assert_eq!(count_rows(&conn, "ff_attempt"), 0, "no attempt row written");
}

/// A higher-priority row the worker cannot serve does not hide a lower-priority match.
#[tokio::test]
#[parallel(process)]
async fn claim_walks_past_capability_mismatch_to_match_lower_priority() {
    let backend = fresh_backend("hot-claim-walk").await;
    let (hi, lo) = {
        let conn = backend.connection_for_test();
        (
            seed_runnable_execution(&conn, 10, &["capB"]).0,
            seed_runnable_execution(&conn, 0, &["capA"]).0,
        )
    };
    let handle = claim(&backend, &["capA"])
        .await
        .expect("claims the matching lower-priority row");
    assert_eq!(handle.backend, BackendTag::Sqlite);
    let conn = backend.connection_for_test();
    assert_eq!(exec_column(&conn, &lo, "lifecycle_phase"), "active");
    assert_eq!(exec_column(&conn, &hi, "lifecycle_phase"), "runnable");
}

// ── claim_from_resume_grant after a lapsed lease ────────────────────────────────────────────

#[tokio::test]
#[parallel(process)]
async fn claim_from_reclaim_expired_lease_mints_resumed_handle() {
    let (backend, eid) = claimed_backend("hot-reclaim-expired").await;
    // Upstream's `expire_current_lease`: the lease lapsed a second ago.
    backend
        .connection_for_test()
        .execute(
            "UPDATE ff_attempt SET lease_expires_at_ms = ?1 \
             WHERE partition_key = 0 AND execution_id = ?2 AND attempt_index = 0",
            rusqlite::params![now_ms() - 1_000, blob(uuid_of(&eid))],
        )
        .expect("expire lease");
    let handle = backend
        .claim_from_resume_grant(make_reclaim_token(eid.clone()))
        .await
        .expect("claim_from_resume_grant")
        .expect("Some(handle)");
    assert_eq!(handle.backend, BackendTag::Sqlite);
    assert_eq!(handle.kind, HandleKind::Resumed);
    let conn = backend.connection_for_test();
    assert_eq!(attempt_column(&conn, &eid, 0, "lease_epoch"), "2");
    assert_eq!(lease_events(&conn, &eid), ["acquired", "reclaimed"]);
}

#[tokio::test]
#[parallel(process)]
async fn claim_from_reclaim_live_lease_returns_none() {
    let (backend, eid) = claimed_backend("hot-reclaim-live").await;
    let result = backend
        .claim_from_resume_grant(make_reclaim_token(eid))
        .await
        .expect("claim_from_resume_grant");
    assert!(result.is_none(), "live lease must block reclaim");
}

// ── wave9_followups.rs (#356): started_at_ms is set once ────────────────────────────────────

/// Upstream's `wave9_followups.rs` test of the claim path: a second claim of the same execution
/// (the row put back to runnable by hand, as upstream does) keeps the first `started_at_ms`.
#[tokio::test]
#[parallel(process)]
async fn sqlite_first_claim_populates_started_at_ms_set_once() {
    let backend = fresh_backend("w9followups-started").await;
    let eid = new_execution_id();
    let lane = LaneId::new(format!("wave9-356-{}", Uuid::new_v4()));
    backend
        .create_execution(upstream_create_args(&eid, &lane))
        .await
        .expect("create");
    let started_at = || {
        let conn = backend.connection_for_test();
        exec_column(&conn, &eid, "started_at_ms")
    };
    assert_eq!(started_at(), "NULL", "NULL on a freshly created row");
    let policy = ClaimPolicy::new(
        WorkerId::new("w356"),
        WorkerInstanceId::new("w356-i1"),
        30_000,
        None,
    );
    let caps = CapabilitySet::default();
    let claim = || backend.claim(&lane, &caps, policy.clone());
    claim().await.expect("claim 1").expect("handle 1");
    let first = started_at();
    assert_ne!(first, "NULL", "populated by the first claim");

    update_exec(
        &backend.connection_for_test(),
        &eid,
        "lifecycle_phase = 'runnable', ownership_state = 'unowned', \
         eligibility_state = 'eligible_now', attempt_state = 'initial', \
         attempt_index = attempt_index + 1",
    );
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    claim().await.expect("claim 2").expect("handle 2");
    assert_eq!(
        started_at(),
        first,
        "set-once: reclaim must not overwrite started_at_ms (#356)"
    );
}

// ── producer_flow.rs: create_execution ──────────────────────────────────────────────────────

/// Upstream's `producer_flow.rs` test of `create_execution` (the hot path's producer): the
/// execution row, its required capabilities in the junction table, the lane registered; a
/// second create of the same id is `Duplicate`.
#[tokio::test]
#[parallel(process)]
async fn create_execution_seeds_exec_core_and_capability_junction() {
    let backend = fresh_backend("producer-create").await;
    let eid = new_execution_id();
    let create = || {
        let mut args = upstream_create_args(&eid, &LaneId::new("default"));
        let policy = ExecutionPolicy {
            routing_requirements: Some(RoutingRequirements {
                required_capabilities: ["capA", "capB"].map(String::from).into_iter().collect(),
                ..Default::default()
            }),
            ..Default::default()
        };
        args.policy = Some(policy);
        args.now = TimestampMs::from_millis(1_000);
        backend.create_execution(args)
    };
    match create().await.expect("create_execution") {
        CreateExecutionResult::Created { execution_id, .. } => assert_eq!(execution_id, eid),
        other => panic!("expected Created, got {other:?}"),
    }
    let replay = create().await.expect("create_execution replay");
    assert!(matches!(replay, CreateExecutionResult::Duplicate { .. }));

    let conn = backend.connection_for_test();
    let capabilities: Vec<String> = conn
        .prepare(
            "SELECT capability FROM ff_execution_capabilities WHERE execution_id = ?1 \
             ORDER BY capability",
        )
        .unwrap()
        .query_map([blob(uuid_of(&eid))], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(capabilities, ["capA", "capB"]);
    let lane: Option<String> = conn
        .query_row(
            "SELECT lane_id FROM ff_lane_registry WHERE lane_id = 'default'",
            [],
            |row| row.get(0),
        )
        .ok();
    assert_eq!(lane.as_deref(), Some("default"));
}
