//! Flows and dependencies through the public `EngineBackend` API.
//!
//! * Upstream's tests (`producer_flow.rs`, `typed_evaluate_flow_eligibility.rs`, the flow parts
//!   of `wave9_operator.rs`, `wave9_followups.rs`, `engine_backend_tags.rs`), with only the
//!   set-up changed (sqlx seeding → `connection_for_test()`); where an assertion differs, the
//!   comment names the decision in `docs/semantics.md`.
//! * A DAG behaves like one: fan-out, fan-in, a failing branch skipping its dependants
//!   transitively, edge groups, cycles, `wait_children`.
//! * Bad input: a typed error and nothing written.

use std::sync::Arc;

use crate::support::*;
use ff_backend_sqlite_wasm::SqliteBackend;
use ff_core::backend::{CancelFlowPolicy, CancelFlowWait};
use ff_core::contracts::{
    AddExecutionToFlowArgs, AddExecutionToFlowResult, ApplyDependencyToChildArgs,
    ApplyDependencyToChildResult, CancelFlowArgs, CancelFlowHeader, CancelFlowResult,
    CreateFlowArgs, CreateFlowResult, EdgeDependencyPolicy, EdgeDirection, EdgeGroupState,
    EvaluateFlowEligibilityArgs, EvaluateFlowEligibilityResult, OnSatisfied,
    SetEdgeGroupPolicyResult, StageDependencyEdgeArgs, StageDependencyEdgeResult,
};
use ff_core::engine_backend::{EngineBackend, SiblingCancelReconcileAction};
use ff_core::engine_error::{ConflictKind, ContentionKind, EngineError, StateKind, ValidationKind};
use ff_core::partition::{Partition, PartitionFamily, PartitionKey};
use ff_core::types::{EdgeId, ExecutionId, FlowId, Namespace, TimestampMs};
use serial_test::parallel;
use uuid::Uuid;

// ── Set-up ──────────────────────────────────────────────────────────────────────────────────

/// Create a flow through the API.
async fn create_flow(backend: &SqliteBackend) -> FlowId {
    let flow_id = FlowId::new();
    backend
        .create_flow(CreateFlowArgs {
            flow_id: flow_id.clone(),
            flow_kind: "dag".into(),
            namespace: Namespace::new("default"),
            now: TimestampMs::now(),
        })
        .await
        .expect("create_flow");
    flow_id
}

/// Create `n` executions on lane `default` and add them to the flow.
async fn members(backend: &SqliteBackend, flow_id: &FlowId, n: usize) -> Vec<ExecutionId> {
    let mut ids = Vec::new();
    for _ in 0..n {
        let eid = new_execution_id();
        backend
            .create_execution(create_args(eid.clone(), "default", now_ms()))
            .await
            .expect("create_execution");
        backend
            .add_execution_to_flow(AddExecutionToFlowArgs {
                flow_id: flow_id.clone(),
                execution_id: eid.clone(),
                now: TimestampMs::now(),
            })
            .await
            .expect("add");
        ids.push(eid);
    }
    ids
}

/// The flow's graph revision.
async fn revision(backend: &SqliteBackend, flow_id: &FlowId) -> u64 {
    backend
        .describe_flow(flow_id)
        .await
        .unwrap()
        .expect("flow")
        .graph_revision
}

fn stage_args(
    flow_id: &FlowId,
    up: &ExecutionId,
    down: &ExecutionId,
    rev: u64,
) -> StageDependencyEdgeArgs {
    StageDependencyEdgeArgs {
        flow_id: flow_id.clone(),
        edge_id: EdgeId::new(),
        upstream_execution_id: up.clone(),
        downstream_execution_id: down.clone(),
        dependency_kind: "success_only".into(),
        data_passing_ref: None,
        expected_graph_revision: rev,
        now: TimestampMs::now(),
    }
}

fn apply_args(
    flow_id: &FlowId,
    edge_id: &EdgeId,
    up: &ExecutionId,
    down: &ExecutionId,
) -> ApplyDependencyToChildArgs {
    ApplyDependencyToChildArgs {
        flow_id: flow_id.clone(),
        edge_id: edge_id.clone(),
        downstream_execution_id: down.clone(),
        upstream_execution_id: up.clone(),
        graph_revision: 0,
        dependency_kind: "success_only".into(),
        data_passing_ref: None,
        now: TimestampMs::now(),
    }
}

/// Stage and apply an edge `up → down`; returns its id.
async fn depend(
    backend: &SqliteBackend,
    flow_id: &FlowId,
    up: &ExecutionId,
    down: &ExecutionId,
) -> EdgeId {
    let rev = revision(backend, flow_id).await;
    let StageDependencyEdgeResult::Staged { edge_id, .. } = backend
        .stage_dependency_edge(stage_args(flow_id, up, down, rev))
        .await
        .expect("stage");
    backend
        .apply_dependency_to_child(apply_args(flow_id, &edge_id, up, down))
        .await
        .expect("apply");
    edge_id
}

/// The execution's `public_state` as stored.
fn public(backend: &SqliteBackend, eid: &ExecutionId) -> String {
    exec_column(&backend.connection_for_test(), eid, "public_state")
}

/// Lease `eid` through a grant and `claim_execution` (worker-1).
async fn lease(backend: &SqliteBackend, eid: &ExecutionId) -> ff_core::contracts::ClaimedExecution {
    backend
        .issue_claim_grant(grant_args(eid.clone(), "worker-1", now_ms()))
        .await
        .expect("grant");
    claimed(
        backend
            .claim_execution(claim_args_at(eid.clone(), "worker-1", 0, now_ms()))
            .await
            .expect("claim"),
    )
}

/// Lease and complete `eid` through the typed API.
async fn complete(backend: &SqliteBackend, eid: &ExecutionId) {
    let claim = lease(backend, eid).await;
    backend
        .complete_execution(complete_args(eid, Some(fence_of(&claim))))
        .await
        .expect("complete");
}

/// Lease and fail `eid` terminally through the typed API (no retry policy).
async fn fail(backend: &SqliteBackend, eid: &ExecutionId) {
    let claim = lease(backend, eid).await;
    backend
        .fail_execution(fail_args(eid, Some(fence_of(&claim)), ""))
        .await
        .expect("fail");
}

async fn eligibility(backend: &SqliteBackend, eid: &ExecutionId) -> String {
    let EvaluateFlowEligibilityResult::Status { status } = backend
        .evaluate_flow_eligibility(EvaluateFlowEligibilityArgs {
            execution_id: eid.clone(),
        })
        .await
        .expect("evaluate");
    status
}

/// A flow row seeded by hand, as upstream's tests do.
fn seed_flow(backend: &SqliteBackend, state: &str, raw_fields: &str) -> FlowId {
    let flow_id = FlowId::new();
    backend
        .connection_for_test()
        .execute(
            "INSERT INTO ff_flow_core (partition_key, flow_id, graph_revision, public_flow_state, \
                 created_at_ms, raw_fields) VALUES (0, ?1, 0, ?2, ?3, ?4)",
            rusqlite::params![blob(flow_id.0), state, now_ms(), raw_fields],
        )
        .unwrap();
    flow_id
}

/// An execution seeded by hand (upstream's `typed_evaluate_flow_eligibility` shape).
fn seed_exec(
    backend: &SqliteBackend,
    lifecycle: &str,
    ownership: &str,
    flow_id: Option<&FlowId>,
    terminal_outcome: &str,
) -> (Uuid, ExecutionId) {
    let exec_uuid = Uuid::new_v4();
    backend
        .connection_for_test()
        .execute(
            "INSERT INTO ff_exec_core (partition_key, execution_id, flow_id, lane_id, attempt_index, \
                 lifecycle_phase, ownership_state, eligibility_state, public_state, attempt_state, \
                 priority, created_at_ms, raw_fields) \
             VALUES (0, ?1, ?2, 'default', 0, ?3, ?4, 'eligible_now', 'waiting', \
                 'pending_first_attempt', 0, ?5, json_set('{}', '$.terminal_outcome', ?6))",
            rusqlite::params![
                blob(exec_uuid),
                flow_id.map(|flow| blob(flow.0)),
                lifecycle,
                ownership,
                now_ms(),
                terminal_outcome
            ],
        )
        .unwrap();
    (
        exec_uuid,
        ExecutionId::parse(&format!("{{fp:0}}:{exec_uuid}")).unwrap(),
    )
}

fn seed_required_edge(backend: &SqliteBackend, flow_id: &FlowId, up: Uuid, down: Uuid) {
    backend
        .connection_for_test()
        .execute(
            "INSERT INTO ff_edge (partition_key, flow_id, edge_id, upstream_eid, downstream_eid, policy) \
             VALUES (0, ?1, ?2, ?3, ?4, '{\"kind\":\"required\"}')",
            rusqlite::params![blob(flow_id.0), blob(Uuid::new_v4()), blob(up), blob(down)],
        )
        .unwrap();
}

fn count(backend: &SqliteBackend, sql: &str) -> i64 {
    backend
        .connection_for_test()
        .query_row(sql, [], |row| row.get(0))
        .unwrap()
}

// ── Upstream: producer_flow.rs ──────────────────────────────────────────────────────────────

#[tokio::test]
#[parallel(process)]
async fn create_flow_idempotent() {
    let backend = fresh_backend("flows-create").await;
    let args = CreateFlowArgs {
        flow_id: FlowId::new(),
        flow_kind: "dag".into(),
        namespace: Namespace::new("default"),
        now: TimestampMs::from_millis(100),
    };
    let first = backend.create_flow(args.clone()).await.unwrap();
    assert!(matches!(first, CreateFlowResult::Created { .. }));
    let again = backend.create_flow(args).await.unwrap();
    assert!(matches!(again, CreateFlowResult::AlreadySatisfied { .. }));
}

#[tokio::test]
#[parallel(process)]
async fn flow_build_cancel_roundtrip() {
    let backend = fresh_backend("flows-roundtrip").await;
    let flow_id = create_flow(&backend).await;
    let members = members(&backend, &flow_id, 3).await;
    let replay = backend
        .add_execution_to_flow(AddExecutionToFlowArgs {
            flow_id: flow_id.clone(),
            execution_id: members[2].clone(),
            now: TimestampMs::now(),
        })
        .await
        .unwrap();
    assert!(matches!(
        replay,
        AddExecutionToFlowResult::AlreadyMember { node_count: 3, .. }
    ));

    let StageDependencyEdgeResult::Staged {
        new_graph_revision: rev1,
        edge_id: edge1,
    } = backend
        .stage_dependency_edge(stage_args(&flow_id, &members[0], &members[2], 3))
        .await
        .unwrap();
    assert_eq!(rev1, 4);
    let StageDependencyEdgeResult::Staged {
        new_graph_revision: rev2,
        edge_id: edge2,
    } = backend
        .stage_dependency_edge(stage_args(&flow_id, &members[1], &members[2], 4))
        .await
        .unwrap();
    assert_eq!(rev2, 5);

    let applied = backend
        .apply_dependency_to_child(apply_args(&flow_id, &edge1, &members[0], &members[2]))
        .await
        .unwrap();
    assert_eq!(
        applied,
        ApplyDependencyToChildResult::Applied {
            unsatisfied_count: 1
        }
    );
    let replay = backend
        .apply_dependency_to_child(apply_args(&flow_id, &edge1, &members[0], &members[2]))
        .await
        .unwrap();
    assert_eq!(replay, ApplyDependencyToChildResult::AlreadyApplied);
    let applied2 = backend
        .apply_dependency_to_child(apply_args(&flow_id, &edge2, &members[1], &members[2]))
        .await
        .unwrap();
    assert_eq!(
        applied2,
        ApplyDependencyToChildResult::Applied {
            unsatisfied_count: 2
        }
    );

    let CancelFlowResult::Cancelled {
        cancellation_policy,
        member_execution_ids,
    } = backend
        .cancel_flow(
            &flow_id,
            CancelFlowPolicy::CancelAll,
            CancelFlowWait::NoWait,
        )
        .await
        .unwrap()
    else {
        panic!("expected Cancelled");
    };
    assert_eq!(cancellation_policy, "cancel_all");
    assert_eq!(member_execution_ids.len(), 3);
    let conn = backend.connection_for_test();
    let state: String = conn
        .query_row(
            "SELECT public_flow_state FROM ff_flow_core WHERE partition_key = 0 AND flow_id = ?1",
            [blob(flow_id.0)],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(state, "cancelled");
    for member in &members {
        // Decision "Flow cancel uses the CANCELLED vector": lifecycle `terminal`, public
        // `cancelled` (upstream writes lifecycle `cancelled`).
        assert_eq!(exec_column(&conn, member, "lifecycle_phase"), "terminal");
        assert_eq!(exec_column(&conn, member, "public_state"), "cancelled");
    }
    let completions: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM ff_completion_event WHERE flow_id = ?1 AND outcome = 'cancelled'",
            [blob(flow_id.0)],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(completions, 3);
    drop(conn);
    // Decision "LE(revoked) only for real leases": none of the three held a lease (upstream
    // writes three).
    assert_eq!(
        count(
            &backend,
            "SELECT COUNT(*) FROM ff_lease_event WHERE event_type = 'revoked'"
        ),
        0
    );
}

#[tokio::test]
#[parallel(process)]
async fn stage_dependency_edge_rejects_stale_revision() {
    let backend = fresh_backend("flows-stale").await;
    let flow_id = create_flow(&backend).await;
    let ids = members(&backend, &flow_id, 2).await;
    let error = rejected_without_writes(
        &backend,
        backend.stage_dependency_edge(stage_args(&flow_id, &ids[0], &ids[1], 99)),
    )
    .await;
    assert!(
        matches!(
            error,
            EngineError::Contention(ContentionKind::StaleGraphRevision)
        ),
        "{:?}",
        error
    );
}

// ── Upstream: typed_evaluate_flow_eligibility.rs ────────────────────────────────────────────

#[tokio::test]
#[parallel(process)]
async fn eligible_when_standalone_runnable_unowned() {
    let backend = fresh_backend("flows-eval").await;
    let (_, eid) = seed_exec(&backend, "runnable", "unowned", None, "none");
    assert_eq!(eligibility(&backend, &eid).await, "eligible");
}

#[tokio::test]
#[parallel(process)]
async fn not_found_without_row() {
    let backend = fresh_backend("flows-eval").await;
    let bogus = ExecutionId::parse("{fp:0}:aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa").unwrap();
    assert_eq!(eligibility(&backend, &bogus).await, "not_found");
}

#[tokio::test]
#[parallel(process)]
async fn not_runnable_when_active() {
    let backend = fresh_backend("flows-eval").await;
    let (_, eid) = seed_exec(&backend, "active", "leased", None, "none");
    assert_eq!(eligibility(&backend, &eid).await, "not_runnable");
}

#[tokio::test]
#[parallel(process)]
async fn owned_when_ownership_not_unowned() {
    let backend = fresh_backend("flows-eval").await;
    let (_, eid) = seed_exec(&backend, "runnable", "leased", None, "none");
    assert_eq!(eligibility(&backend, &eid).await, "owned");
}

#[tokio::test]
#[parallel(process)]
async fn blocked_by_required_edge_with_non_terminal_upstream() {
    let backend = fresh_backend("flows-eval").await;
    let flow_id = seed_flow(&backend, "running", "{}");
    let (up, _) = seed_exec(&backend, "runnable", "unowned", Some(&flow_id), "none");
    let (down, down_eid) = seed_exec(&backend, "runnable", "unowned", Some(&flow_id), "none");
    seed_required_edge(&backend, &flow_id, up, down);
    assert_eq!(
        eligibility(&backend, &down_eid).await,
        "blocked_by_dependencies"
    );
}

#[tokio::test]
#[parallel(process)]
async fn impossible_when_required_upstream_failed() {
    let backend = fresh_backend("flows-eval").await;
    let flow_id = seed_flow(&backend, "running", "{}");
    let (up, _) = seed_exec(&backend, "terminal", "unowned", Some(&flow_id), "failed");
    let (down, down_eid) = seed_exec(&backend, "runnable", "unowned", Some(&flow_id), "none");
    seed_required_edge(&backend, &flow_id, up, down);
    assert_eq!(eligibility(&backend, &down_eid).await, "impossible");
}

// ── Upstream: wave9_followups.rs, wave9_operator.rs (flow parts) ───────────────────────────

#[tokio::test]
#[parallel(process)]
async fn sqlite_cancel_flow_clears_member_attempt_outcome() {
    let backend = fresh_backend("flows-355").await;
    let eid = new_execution_id();
    backend
        .create_execution(create_args(eid.clone(), "wave9-355-cancel-flow", now_ms()))
        .await
        .unwrap();
    let flow_id = seed_flow(&backend, "open", "{}");
    let conn = backend.connection_for_test();
    update_exec(&conn, &eid, &format!("flow_id = X'{}'", flow_id.0.simple()));
    conn.execute(
        "INSERT INTO ff_attempt (partition_key, execution_id, attempt_index, lease_epoch, outcome) \
         VALUES (0, ?1, 0, 1, 'retry')",
        [blob(uuid_of(&eid))],
    )
    .unwrap();
    // The test connection is the writer's: release it before the backend writes.
    drop(conn);
    let result = backend
        .cancel_flow(
            &flow_id,
            CancelFlowPolicy::CancelAll,
            CancelFlowWait::NoWait,
        )
        .await
        .unwrap();
    assert!(
        matches!(result, CancelFlowResult::Cancelled { .. }),
        "{result:?}"
    );
    assert_eq!(
        attempt_column(&backend.connection_for_test(), &eid, 0, "outcome"),
        "NULL"
    );
}

/// A flow with `n` members seeded `active`/`leased` (no attempt rows), as upstream's
/// `seed_flow_with_members`.
fn seed_flow_with_members(backend: &SqliteBackend, n: usize) -> FlowId {
    let flow_id = seed_flow(backend, "open", "{}");
    for _ in 0..n {
        backend
            .connection_for_test()
            .execute(
                "INSERT INTO ff_exec_core (partition_key, execution_id, flow_id, lane_id, attempt_index, \
                     lifecycle_phase, ownership_state, eligibility_state, public_state, attempt_state, \
                     priority, created_at_ms, raw_fields) \
                 VALUES (0, ?1, ?2, 'default', 0, 'active', 'leased', 'eligible_now', 'running', \
                     'running_attempt', 0, ?3, '{}')",
                rusqlite::params![blob(Uuid::new_v4()), blob(flow_id.0), now_ms()],
            )
            .unwrap();
    }
    flow_id
}

fn header_args(flow_id: &FlowId, reason: &str, policy: &str) -> CancelFlowArgs {
    CancelFlowArgs {
        flow_id: flow_id.clone(),
        reason: reason.into(),
        cancellation_policy: policy.into(),
        now: TimestampMs::now(),
    }
}

#[tokio::test]
#[parallel(process)]
async fn cancel_flow_header_happy_path_creates_backlog_and_flips_members() {
    let backend = fresh_backend("flows-header").await;
    let flow_id = seed_flow_with_members(&backend, 3);
    let result = backend
        .cancel_flow_header(header_args(&flow_id, "op-shutdown", "cancel_all"))
        .await
        .unwrap();
    let CancelFlowHeader::Cancelled {
        cancellation_policy,
        member_execution_ids,
    } = result
    else {
        panic!("expected Cancelled, got {result:?}");
    };
    assert_eq!(cancellation_policy, "cancel_all");
    assert_eq!(member_execution_ids.len(), 3);
    assert_eq!(count(&backend, "SELECT COUNT(*) FROM ff_cancel_backlog"), 1);
    assert_eq!(
        count(&backend, "SELECT COUNT(*) FROM ff_cancel_backlog_member"),
        3
    );
    // Decision "Flow cancel uses the CANCELLED vector" (upstream: lifecycle `cancelled`).
    assert_eq!(
        count(
            &backend,
            "SELECT COUNT(*) FROM ff_exec_core WHERE lifecycle_phase = 'terminal' AND public_state = 'cancelled'"
        ),
        3
    );
    assert_eq!(
        count(
            &backend,
            "SELECT COUNT(*) FROM ff_flow_core WHERE public_flow_state = 'cancelled'"
        ),
        1
    );
    let events: i64 = backend
        .connection_for_test()
        .query_row(
            "SELECT COUNT(*) FROM ff_operator_event WHERE event_type = 'flow_cancel_requested' AND execution_id = ?1",
            [flow_id.0.to_string()],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(events, 1);
}

#[tokio::test]
#[parallel(process)]
async fn cancel_flow_header_already_terminal_is_idempotent() {
    let backend = fresh_backend("flows-header-again").await;
    let flow_id = seed_flow(
        &backend,
        "cancelled",
        "{\"cancellation_policy\":\"flow_only\",\"cancel_reason\":\"prior\"}",
    );
    let result = backend
        .cancel_flow_header(header_args(&flow_id, "retry", "cancel_all"))
        .await
        .unwrap();
    assert_eq!(
        result,
        CancelFlowHeader::AlreadyTerminal {
            stored_cancellation_policy: Some("flow_only".into()),
            stored_cancel_reason: Some("prior".into()),
            member_execution_ids: vec![],
        }
    );
}

#[tokio::test]
#[parallel(process)]
async fn ack_cancel_member_drains_and_deletes_parent_when_last() {
    let backend = fresh_backend("flows-ack").await;
    let flow_id = seed_flow_with_members(&backend, 2);
    let CancelFlowHeader::Cancelled {
        member_execution_ids,
        ..
    } = backend
        .cancel_flow_header(header_args(&flow_id, "shutdown", "cancel_all"))
        .await
        .unwrap()
    else {
        panic!("expected Cancelled");
    };
    assert_eq!(member_execution_ids.len(), 2);
    let first = ExecutionId::parse(&member_execution_ids[0]).unwrap();
    let second = ExecutionId::parse(&member_execution_ids[1]).unwrap();
    backend.ack_cancel_member(&flow_id, &first).await.unwrap();
    assert_eq!(count(&backend, "SELECT COUNT(*) FROM ff_cancel_backlog"), 1);
    assert_eq!(
        count(&backend, "SELECT COUNT(*) FROM ff_cancel_backlog_member"),
        1
    );
    backend.ack_cancel_member(&flow_id, &second).await.unwrap();
    assert_eq!(count(&backend, "SELECT COUNT(*) FROM ff_cancel_backlog"), 0);
    assert_eq!(
        count(&backend, "SELECT COUNT(*) FROM ff_cancel_backlog_member"),
        0
    );
}

#[tokio::test]
#[parallel(process)]
async fn ack_cancel_member_idempotent_on_missing() {
    let backend = fresh_backend("flows-ack-missing").await;
    backend
        .ack_cancel_member(&FlowId::new(), &new_execution_id())
        .await
        .unwrap();
}

// ── Upstream: engine_backend_tags.rs (flow tags) ────────────────────────────────────────────

#[tokio::test]
#[parallel(process)]
async fn set_and_get_flow_tag_roundtrips() {
    let backend = fresh_backend("flows-tags").await;
    let flow_id = create_flow(&backend).await;
    assert_eq!(
        backend
            .get_flow_tag(&flow_id, "cairn.archived")
            .await
            .unwrap(),
        None
    );
    backend
        .set_flow_tag(&flow_id, "cairn.archived", "true")
        .await
        .unwrap();
    assert_eq!(
        backend
            .get_flow_tag(&flow_id, "cairn.archived")
            .await
            .unwrap()
            .as_deref(),
        Some("true")
    );
}

#[tokio::test]
#[parallel(process)]
async fn missing_flow_returns_notfound_on_set_and_ok_none_on_get() {
    let backend = fresh_backend("flows-tags-missing").await;
    let flow_id = FlowId::new();
    let error = rejected_without_writes(
        &backend,
        backend.set_flow_tag(&flow_id, "cairn.archived", "true"),
    )
    .await;
    assert!(
        matches!(error, EngineError::NotFound { entity: "flow" }),
        "{:?}",
        error
    );
    assert_eq!(
        backend
            .get_flow_tag(&flow_id, "cairn.archived")
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
#[parallel(process)]
async fn flow_tag_stored_as_flat_key_not_nested() {
    let backend = fresh_backend("flows-tags-flat").await;
    let flow_id = create_flow(&backend).await;
    backend
        .set_flow_tag(&flow_id, "cairn.archived", "true")
        .await
        .unwrap();
    let (flat, nested): (String, Option<String>) = backend
        .connection_for_test()
        .query_row(
            "SELECT json_extract(raw_fields, '$.\"cairn.archived\"'), json_extract(raw_fields, '$.cairn') \
             FROM ff_flow_core WHERE flow_id = ?1",
            [blob(flow_id.0)],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap();
    assert_eq!((flat.as_str(), nested), ("true", None));
    let view = backend.describe_flow(&flow_id).await.unwrap().unwrap();
    assert_eq!(
        view.tags.get("cairn.archived").map(String::as_str),
        Some("true")
    );
}

#[tokio::test]
#[parallel(process)]
async fn invalid_flow_tag_keys_are_rejected_without_writes() {
    let backend = fresh_backend("flows-tags-invalid").await;
    let flow_id = create_flow(&backend).await;
    for key in [
        "",
        "cairn",
        "Cairn.x",
        "1cairn.x",
        "cairn.",
        "cairn..x",
        ".x",
        "cairn.X",
        "cai rn.x",
        "cairn-x.y",
    ] {
        let error =
            rejected_without_writes(&backend, backend.set_flow_tag(&flow_id, key, "v")).await;
        assert!(
            matches!(
                error,
                EngineError::Validation {
                    kind: ValidationKind::InvalidInput,
                    ..
                }
            ),
            "{key:?}: {error:?}"
        );
    }
}

// ── A DAG behaves like one ──────────────────────────────────────────────────────────────────

#[tokio::test]
#[parallel(process)]
async fn a_diamond_runs_in_dependency_order_and_no_claim_path_takes_a_blocked_child() {
    // a → b, a → c (fan-out), b → d, c → d (fan-in).
    let backend = fresh_backend("flows-diamond").await;
    let flow_id = create_flow(&backend).await;
    let ids = members(&backend, &flow_id, 4).await;
    let (a, b, c, d) = (&ids[0], &ids[1], &ids[2], &ids[3]);
    depend(&backend, &flow_id, a, b).await;
    depend(&backend, &flow_id, a, c).await;
    depend(&backend, &flow_id, b, d).await;
    depend(&backend, &flow_id, c, d).await;
    for child in [b, c, d] {
        assert_eq!(public(&backend, child), "waiting_children");
        assert_eq!(
            eligibility(&backend, child).await,
            "blocked_by_dependencies"
        );
        let refused = rejected_without_writes(
            &backend,
            backend.issue_claim_grant(grant_args(child.clone(), "worker-1", now_ms())),
        )
        .await;
        assert!(
            !matches!(refused, EngineError::Transport { .. }),
            "{refused:?}"
        );
    }
    complete(&backend, a).await;
    assert_eq!(public(&backend, b), "waiting");
    assert_eq!(public(&backend, c), "waiting");
    assert_eq!(public(&backend, d), "waiting_children");
    complete(&backend, b).await;
    assert_eq!(
        public(&backend, d),
        "waiting_children",
        "fan-in waits for both parents"
    );
    complete(&backend, c).await;
    assert_eq!(public(&backend, d), "waiting");
    complete(&backend, d).await;
    let view = backend.describe_flow(&flow_id).await.unwrap().unwrap();
    assert!(
        view.edge_groups
            .iter()
            .all(|group| group.group_state == EdgeGroupState::Satisfied)
    );
    let incoming = backend
        .list_edges(&flow_id, EdgeDirection::Incoming { to_node: d.clone() })
        .await
        .unwrap();
    assert_eq!(incoming.len(), 2);
    assert!(incoming.iter().all(|edge| edge.edge_state == "satisfied"));
}

#[tokio::test]
#[parallel(process)]
async fn a_failing_branch_skips_its_dependants_transitively_and_the_other_branch_runs() {
    // a → b → c, a → x; a fails: b, c and x are skipped. y (no parents) runs.
    let backend = fresh_backend("flows-skip").await;
    let flow_id = create_flow(&backend).await;
    let ids = members(&backend, &flow_id, 5).await;
    let (a, b, c, x, y) = (&ids[0], &ids[1], &ids[2], &ids[3], &ids[4]);
    depend(&backend, &flow_id, a, b).await;
    depend(&backend, &flow_id, b, c).await;
    depend(&backend, &flow_id, a, x).await;
    fail(&backend, a).await;
    for skipped in [b, c, x] {
        let snapshot = backend.describe_execution(skipped).await.unwrap().unwrap();
        assert_eq!(
            snapshot.public_state,
            ff_core::state::PublicState::Skipped,
            "{skipped}"
        );
        assert_eq!(eligibility(&backend, skipped).await, "not_runnable");
    }
    assert_eq!(public(&backend, y), "waiting");
    complete(&backend, y).await;
    assert_eq!(
        count(
            &backend,
            "SELECT COUNT(*) FROM ff_completion_event WHERE outcome = 'skipped'"
        ),
        3
    );
}

#[tokio::test]
#[parallel(process)]
async fn a_cancelled_parent_skips_its_child() {
    let backend = fresh_backend("flows-cancel-parent").await;
    let flow_id = create_flow(&backend).await;
    let ids = members(&backend, &flow_id, 2).await;
    depend(&backend, &flow_id, &ids[0], &ids[1]).await;
    backend
        .cancel_execution(cancel_args(
            &ids[0],
            ff_core::types::CancelSource::OperatorOverride,
            None,
        ))
        .await
        .unwrap();
    assert_eq!(public(&backend, &ids[1]), "skipped");
}

#[tokio::test]
#[parallel(process)]
async fn edge_groups_resolve_any_of_and_quorum_as_documented() {
    let backend = fresh_backend("flows-groups").await;
    let flow_id = create_flow(&backend).await;
    let ids = members(&backend, &flow_id, 4).await;
    let policy = EdgeDependencyPolicy::AnyOf {
        on_satisfied: OnSatisfied::LetRun,
    };
    assert_eq!(
        backend
            .set_edge_group_policy(&flow_id, &ids[3], policy.clone())
            .await
            .unwrap(),
        SetEdgeGroupPolicyResult::Set
    );
    assert_eq!(
        backend
            .set_edge_group_policy(&flow_id, &ids[3], policy)
            .await
            .unwrap(),
        SetEdgeGroupPolicyResult::AlreadySet
    );
    for parent in &ids[..3] {
        depend(&backend, &flow_id, parent, &ids[3]).await;
    }
    fail(&backend, &ids[0]).await;
    assert_eq!(public(&backend, &ids[3]), "waiting_children");
    complete(&backend, &ids[1]).await;
    assert_eq!(
        public(&backend, &ids[3]),
        "waiting",
        "any_of: one success is enough"
    );

    // quorum(2) of three: two failures make it impossible.
    let flow_id = create_flow(&backend).await;
    let ids = members(&backend, &flow_id, 4).await;
    backend
        .set_edge_group_policy(
            &flow_id,
            &ids[3],
            EdgeDependencyPolicy::Quorum {
                k: 2,
                on_satisfied: OnSatisfied::LetRun,
            },
        )
        .await
        .unwrap();
    for parent in &ids[..3] {
        depend(&backend, &flow_id, parent, &ids[3]).await;
    }
    complete(&backend, &ids[0]).await;
    fail(&backend, &ids[1]).await;
    assert_eq!(public(&backend, &ids[3]), "waiting_children");
    fail(&backend, &ids[2]).await;
    assert_eq!(public(&backend, &ids[3]), "skipped");
    let view = backend.describe_flow(&flow_id).await.unwrap().unwrap();
    let group = &view.edge_groups[0];
    assert_eq!(group.group_state, EdgeGroupState::Impossible);
    assert_eq!(
        (group.satisfied_count, group.failed_count, group.total_deps),
        (1, 2, 3)
    );
}

#[tokio::test]
#[parallel(process)]
async fn cycles_self_edges_and_duplicate_edges_are_refused_with_typed_conflicts() {
    let backend = fresh_backend("flows-cycles").await;
    let flow_id = create_flow(&backend).await;
    let ids = members(&backend, &flow_id, 3).await;
    let ab = depend(&backend, &flow_id, &ids[0], &ids[1]).await;
    depend(&backend, &flow_id, &ids[1], &ids[2]).await;
    let rev = revision(&backend, &flow_id).await;
    let cycle = rejected_without_writes(
        &backend,
        backend.stage_dependency_edge(stage_args(&flow_id, &ids[2], &ids[0], rev)),
    )
    .await;
    assert!(
        matches!(cycle, EngineError::Conflict(ConflictKind::CycleDetected)),
        "{:?}",
        cycle
    );
    let selfish = rejected_without_writes(
        &backend,
        backend.stage_dependency_edge(stage_args(&flow_id, &ids[1], &ids[1], rev)),
    )
    .await;
    assert!(
        matches!(
            selfish,
            EngineError::Conflict(ConflictKind::SelfReferencingEdge)
        ),
        "{:?}",
        selfish
    );
    let mut duplicate = stage_args(&flow_id, &ids[0], &ids[2], rev);
    duplicate.edge_id = ab.clone();
    let error = rejected_without_writes(&backend, backend.stage_dependency_edge(duplicate)).await;
    match error {
        EngineError::Conflict(ConflictKind::DependencyAlreadyExists { existing }) => {
            assert_eq!(existing.edge_id, ab);
            assert_eq!(existing.downstream_execution_id, ids[1]);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
#[parallel(process)]
async fn reads_list_flows_edges_and_resolve_the_flow_of_an_execution() {
    let backend = fresh_backend("flows-reads").await;
    let flow_id = create_flow(&backend).await;
    let other = create_flow(&backend).await;
    let ids = members(&backend, &flow_id, 2).await;
    let edge = depend(&backend, &flow_id, &ids[0], &ids[1]).await;
    assert_eq!(
        backend.resolve_execution_flow_id(&ids[0]).await.unwrap(),
        Some(flow_id.clone())
    );
    assert_eq!(
        backend
            .resolve_execution_flow_id(&new_execution_id())
            .await
            .unwrap(),
        None
    );
    let described = backend
        .describe_edge(&flow_id, &edge)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            described.edge_state.as_str(),
            described.dependency_kind.as_str()
        ),
        ("applied", "success_only")
    );
    assert_eq!(backend.describe_edge(&other, &edge).await.unwrap(), None);
    let outgoing = backend
        .list_edges(
            &flow_id,
            EdgeDirection::Outgoing {
                from_node: ids[0].clone(),
            },
        )
        .await
        .unwrap();
    assert_eq!(outgoing, vec![described]);
    let partition = PartitionKey::from(&partition_of(&ids[0]));
    let first = backend
        .list_flows(partition.clone(), None, 1)
        .await
        .unwrap();
    assert_eq!(first.flows.len(), 1);
    let cursor = first.next_cursor.clone().expect("a second flow follows");
    let second = backend
        .list_flows(partition.clone(), Some(cursor), 1)
        .await
        .unwrap();
    assert_eq!(second.flows.len(), 1);
    assert_eq!(second.next_cursor, None);
    let mut listed = vec![
        first.flows[0].flow_id.clone(),
        second.flows[0].flow_id.clone(),
    ];
    listed.sort_by_key(|flow| flow.0);
    let mut expected = vec![flow_id, other];
    expected.sort_by_key(|flow| flow.0);
    assert_eq!(listed, expected);
    assert!(
        backend
            .list_flows(partition, None, 0)
            .await
            .unwrap()
            .flows
            .is_empty()
    );
}

// ── Bad input: typed errors, nothing written ────────────────────────────────────────────────

#[tokio::test]
#[parallel(process)]
async fn bad_flow_input_is_a_typed_error_and_writes_nothing() {
    let backend = fresh_backend("flows-bad").await;
    let flow_id = create_flow(&backend).await;
    let ids = members(&backend, &flow_id, 2).await;
    let stranger = new_execution_id();
    backend
        .create_execution(create_args(stranger.clone(), "default", now_ms()))
        .await
        .unwrap();
    let add = |flow: &FlowId, eid: &ExecutionId| AddExecutionToFlowArgs {
        flow_id: flow.clone(),
        execution_id: eid.clone(),
        now: TimestampMs::now(),
    };
    let missing_flow = FlowId::new();
    let error = rejected_without_writes(
        &backend,
        backend.add_execution_to_flow(add(&missing_flow, &ids[0])),
    )
    .await;
    assert!(
        matches!(error, EngineError::NotFound { entity: "flow" }),
        "{:?}",
        error
    );
    let error = rejected_without_writes(
        &backend,
        backend.add_execution_to_flow(add(&flow_id, &new_execution_id())),
    )
    .await;
    assert!(
        matches!(
            error,
            EngineError::NotFound {
                entity: "execution"
            }
        ),
        "{:?}",
        error
    );
    let other_partition = ExecutionId::parse(&format!("{{fp:3}}:{}", Uuid::new_v4())).unwrap();
    let error = rejected_without_writes(
        &backend,
        backend.add_execution_to_flow(add(&flow_id, &other_partition)),
    )
    .await;
    assert!(invalid_input_detail(error).contains("partition"));
    let second = create_flow(&backend).await;
    let error = rejected_without_writes(
        &backend,
        backend.add_execution_to_flow(add(&second, &ids[0])),
    )
    .await;
    assert!(
        matches!(
            error,
            EngineError::Conflict(ConflictKind::ExecutionAlreadyInFlow)
        ),
        "{:?}",
        error
    );
    let rev = revision(&backend, &flow_id).await;
    let error = rejected_without_writes(
        &backend,
        backend.stage_dependency_edge(stage_args(&flow_id, &ids[0], &stranger, rev)),
    )
    .await;
    assert!(
        matches!(error, EngineError::State(StateKind::ExecutionNotInFlow)),
        "{:?}",
        error
    );
    let error = rejected_without_writes(
        &backend,
        backend.stage_dependency_edge(stage_args(&missing_flow, &ids[0], &ids[1], 0)),
    )
    .await;
    assert!(
        matches!(error, EngineError::NotFound { entity: "flow" }),
        "{:?}",
        error
    );
    let error = rejected_without_writes(
        &backend,
        backend.apply_dependency_to_child(apply_args(&flow_id, &EdgeId::new(), &ids[0], &ids[1])),
    )
    .await;
    assert!(
        matches!(
            error,
            EngineError::Validation {
                kind: ValidationKind::InvalidDependency,
                ..
            }
        ),
        "{error:?}"
    );
    let error = rejected_without_writes(
        &backend,
        backend.set_edge_group_policy(
            &flow_id,
            &ids[1],
            EdgeDependencyPolicy::Quorum {
                k: 0,
                on_satisfied: OnSatisfied::LetRun,
            },
        ),
    )
    .await;
    assert!(invalid_input_detail(error).contains("quorum"));
    let error = rejected_without_writes(
        &backend,
        backend.cancel_flow_header(header_args(&missing_flow, "r", "cancel_all")),
    )
    .await;
    assert!(
        matches!(error, EngineError::NotFound { entity: "flow" }),
        "{:?}",
        error
    );
    // A cancelled flow takes no new members or edges.
    backend
        .cancel_flow(&flow_id, CancelFlowPolicy::FlowOnly, CancelFlowWait::NoWait)
        .await
        .unwrap();
    let error = rejected_without_writes(
        &backend,
        backend.add_execution_to_flow(add(&flow_id, &stranger)),
    )
    .await;
    assert!(
        matches!(error, EngineError::State(StateKind::FlowAlreadyTerminal)),
        "{:?}",
        error
    );
}

#[tokio::test]
#[parallel(process)]
async fn capabilities_report_the_flow_cancel_operations() {
    let backend: Arc<SqliteBackend> = fresh_backend("flows-caps").await;
    let supports = backend.capabilities().supports;
    assert!(supports.cancel_flow_header);
    assert!(supports.ack_cancel_member);
    assert!(supports.cancel_flow_wait_timeout);
    assert!(supports.cancel_flow_wait_indefinite);
}

// ── cancel_remaining groups, drain and reconcile ────────────────────────────────────────────

/// Flow partition 0, where every flow lives.
const FLOW_PARTITION: Partition = Partition {
    family: PartitionFamily::Flow,
    index: 0,
};

/// A flow whose member 3 waits on members 0..3 under `policy`; returns the flow and members.
async fn fan_in_under(
    backend: &SqliteBackend,
    policy: EdgeDependencyPolicy,
) -> (FlowId, Vec<ExecutionId>) {
    let flow_id = create_flow(backend).await;
    let ids = members(backend, &flow_id, 4).await;
    backend
        .set_edge_group_policy(&flow_id, &ids[3], policy)
        .await
        .unwrap();
    for parent in &ids[..3] {
        depend(backend, &flow_id, parent, &ids[3]).await;
    }
    (flow_id, ids)
}

fn any_of(on_satisfied: OnSatisfied) -> EdgeDependencyPolicy {
    EdgeDependencyPolicy::AnyOf { on_satisfied }
}

/// Rows of `ff_pending_cancel_groups`.
fn queued_groups(backend: &SqliteBackend) -> i64 {
    count(backend, "SELECT COUNT(*) FROM ff_pending_cancel_groups")
}

#[tokio::test]
#[parallel(process)]
async fn drain_cancels_the_siblings_a_cancel_remaining_group_left_running() {
    let backend = fresh_backend("flows-drain").await;
    let (flow_id, ids) = fan_in_under(&backend, any_of(OnSatisfied::CancelRemaining)).await;
    let running = lease(&backend, &ids[1]).await;
    complete(&backend, &ids[0]).await;
    assert_eq!(public(&backend, &ids[3]), "waiting", "any_of fired");
    // The fire records the owed cancels in the same transaction; the siblings still run.
    assert_eq!(queued_groups(&backend), 1);
    assert_eq!(public(&backend, &ids[1]), "active");
    assert_eq!(public(&backend, &ids[2]), "waiting");
    assert_eq!(
        backend
            .reconcile_sibling_cancel_group(FLOW_PARTITION, &flow_id, &ids[3])
            .await
            .unwrap(),
        SiblingCancelReconcileAction::NoOp,
        "siblings still run: the cancels are owed to drain"
    );
    assert_eq!(queued_groups(&backend), 1);

    backend
        .drain_sibling_cancel_group(FLOW_PARTITION, &flow_id, &ids[3])
        .await
        .unwrap();
    for sibling in &ids[1..3] {
        assert_eq!(public(&backend, sibling), "cancelled");
        let conn = backend.connection_for_test();
        assert_eq!(exec_column(&conn, sibling, "cancelled_by"), "engine");
        assert_eq!(
            exec_column(&conn, sibling, "cancellation_reason"),
            "sibling_quorum_satisfied"
        );
    }
    assert_eq!(
        public(&backend, &ids[3]),
        "waiting",
        "the downstream runs on"
    );
    assert!(
        backend
            .complete_execution(complete_args(&ids[1], Some(fence_of(&running))))
            .await
            .is_err(),
        "the running sibling's lease was revoked"
    );
    assert_eq!(queued_groups(&backend), 0);
    assert_eq!(
        count(
            &backend,
            "SELECT COUNT(*) FROM ff_edge_group WHERE cancel_siblings_pending_flag != 0 \
             OR cancel_siblings_pending_members != '[]'"
        ),
        0
    );
    // Idempotent: a second drain and a reconcile find nothing.
    backend
        .drain_sibling_cancel_group(FLOW_PARTITION, &flow_id, &ids[3])
        .await
        .unwrap();
    assert_eq!(
        backend
            .reconcile_sibling_cancel_group(FLOW_PARTITION, &flow_id, &ids[3])
            .await
            .unwrap(),
        SiblingCancelReconcileAction::NoOp
    );
}

#[tokio::test]
#[parallel(process)]
async fn let_run_and_all_of_groups_owe_no_cancels() {
    let backend = fresh_backend("flows-let-run").await;
    let (flow_id, ids) = fan_in_under(&backend, any_of(OnSatisfied::LetRun)).await;
    complete(&backend, &ids[0]).await;
    assert_eq!(public(&backend, &ids[3]), "waiting");
    assert_eq!(queued_groups(&backend), 0);
    backend
        .drain_sibling_cancel_group(FLOW_PARTITION, &flow_id, &ids[3])
        .await
        .unwrap();
    assert_eq!(
        public(&backend, &ids[1]),
        "waiting",
        "let_run: siblings run on"
    );
    let (_, ids) = fan_in_under(&backend, EdgeDependencyPolicy::AllOf).await;
    complete(&backend, &ids[0]).await;
    assert_eq!(queued_groups(&backend), 0);
}

#[tokio::test]
#[parallel(process)]
async fn an_impossible_quorum_owes_its_siblings_a_cancel_too() {
    let backend = fresh_backend("flows-quorum-cancel").await;
    let policy = EdgeDependencyPolicy::Quorum {
        k: 3,
        on_satisfied: OnSatisfied::CancelRemaining,
    };
    let (flow_id, ids) = fan_in_under(&backend, policy).await;
    fail(&backend, &ids[0]).await;
    assert_eq!(
        public(&backend, &ids[3]),
        "skipped",
        "3 of 3 can no longer succeed"
    );
    backend
        .drain_sibling_cancel_group(FLOW_PARTITION, &flow_id, &ids[3])
        .await
        .unwrap();
    let conn = backend.connection_for_test();
    for sibling in &ids[1..3] {
        assert_eq!(
            exec_column(&conn, sibling, "cancellation_reason"),
            "sibling_quorum_impossible"
        );
    }
}

#[tokio::test]
#[parallel(process)]
async fn reconcile_drops_stale_and_completed_sibling_cancel_groups() {
    let backend = fresh_backend("flows-reconcile").await;
    let (flow_id, ids) = fan_in_under(&backend, any_of(OnSatisfied::CancelRemaining)).await;
    complete(&backend, &ids[0]).await;
    // The siblings finish on their own before any drain: the record is complete.
    complete(&backend, &ids[1]).await;
    fail(&backend, &ids[2]).await;
    assert_eq!(
        backend
            .reconcile_sibling_cancel_group(FLOW_PARTITION, &flow_id, &ids[3])
            .await
            .unwrap(),
        SiblingCancelReconcileAction::CompletedDrain
    );
    assert_eq!(queued_groups(&backend), 0);

    // A queued group without a record (a crash between clear and dequeue upstream) is stale.
    let (flow_id, ids) = fan_in_under(&backend, any_of(OnSatisfied::LetRun)).await;
    backend
        .connection_for_test()
        .execute(
            "INSERT INTO ff_pending_cancel_groups (partition_key, flow_id, downstream_eid, \
                 enqueued_at_ms) VALUES (0, ?1, ?2, 0)",
            rusqlite::params![blob(flow_id.0), blob(uuid_of(&ids[3]))],
        )
        .unwrap();
    assert_eq!(
        backend
            .reconcile_sibling_cancel_group(FLOW_PARTITION, &flow_id, &ids[3])
            .await
            .unwrap(),
        SiblingCancelReconcileAction::SremmedStale
    );
    assert_eq!(queued_groups(&backend), 0);
    assert_eq!(
        public(&backend, &ids[1]),
        "waiting",
        "reconcile cancels nothing"
    );
}

/// The flow's stored summary (`raw_fields.summary`), as JSON.
fn stored_summary(backend: &SqliteBackend, flow_id: &FlowId) -> serde_json::Value {
    let text: Option<String> = backend
        .connection_for_test()
        .query_row(
            "SELECT json_extract(raw_fields, '$.summary') FROM ff_flow_core WHERE flow_id = ?1",
            [blob(flow_id.0)],
            |row| row.get(0),
        )
        .unwrap();
    text.map_or(serde_json::Value::Null, |text| {
        serde_json::from_str(&text).unwrap()
    })
}

#[tokio::test]
#[parallel(process)]
async fn project_flow_summary_counts_members_and_derives_a_rollup_state() {
    let backend = fresh_backend("flows-summary").await;
    let now = TimestampMs::from_millis(1_000);
    assert!(
        !backend
            .project_flow_summary(FLOW_PARTITION, &FlowId::new(), now)
            .await
            .unwrap(),
        "absent flow"
    );
    let flow_id = create_flow(&backend).await;
    assert!(
        !backend
            .project_flow_summary(FLOW_PARTITION, &flow_id, now)
            .await
            .unwrap(),
        "no members"
    );
    assert_eq!(stored_summary(&backend, &flow_id), serde_json::Value::Null);

    let ids = members(&backend, &flow_id, 3).await;
    depend(&backend, &flow_id, &ids[0], &ids[2]).await;
    let summary_of = |backend: &SqliteBackend| stored_summary(backend, &flow_id);
    assert!(
        backend
            .project_flow_summary(FLOW_PARTITION, &flow_id, now)
            .await
            .unwrap()
    );
    let summary = summary_of(&backend);
    assert_eq!(summary["total_members"], 3);
    assert_eq!(summary["members_waiting"], 2);
    assert_eq!(summary["members_waiting_children"], 1);
    assert_eq!(summary["public_flow_state"], "blocked");
    assert_eq!(summary["last_summary_update_at"], 1_000);

    let _running = lease(&backend, &ids[1]).await;
    backend
        .project_flow_summary(FLOW_PARTITION, &flow_id, now)
        .await
        .unwrap();
    assert_eq!(summary_of(&backend)["public_flow_state"], "running");

    fail(&backend, &ids[0]).await;
    backend
        .connection_for_test()
        .execute(
            "UPDATE ff_exec_core SET public_state = 'completed', lifecycle_phase = 'terminal' \
                  WHERE execution_id = ?1",
            [blob(uuid_of(&ids[1]))],
        )
        .unwrap();
    backend
        .project_flow_summary(FLOW_PARTITION, &flow_id, now)
        .await
        .unwrap();
    let summary = summary_of(&backend);
    assert_eq!(
        (
            summary["members_failed"].as_i64(),
            summary["members_completed"].as_i64(),
            summary["members_skipped"].as_i64()
        ),
        (Some(1), Some(1), Some(1))
    );
    assert_eq!(summary["public_flow_state"], "failed");
    let view = backend.describe_flow(&flow_id).await.unwrap().unwrap();
    assert_eq!(
        view.public_flow_state, "open",
        "the guard state is not the rollup"
    );
    assert!(view.tags.is_empty(), "the summary is not a tag");
}

#[tokio::test]
#[parallel(process)]
async fn sibling_cancel_and_summary_refuse_bad_input_without_writes() {
    let backend = fresh_backend("flows-sibling-bad").await;
    let (flow_id, ids) = fan_in_under(&backend, any_of(OnSatisfied::CancelRemaining)).await;
    complete(&backend, &ids[0]).await;
    let elsewhere = Partition {
        family: PartitionFamily::Flow,
        index: 7,
    };
    let budget = Partition {
        family: PartitionFamily::Budget,
        index: 0,
    };
    let foreign = ExecutionId::parse(&format!("{{fp:3}}:{}", Uuid::new_v4())).unwrap();
    for partition in [elsewhere, budget] {
        let error = rejected_without_writes(
            &backend,
            backend.drain_sibling_cancel_group(partition, &flow_id, &ids[3]),
        )
        .await;
        assert!(invalid_input_detail(error).contains("partition"));
        let error = rejected_without_writes(
            &backend,
            backend.reconcile_sibling_cancel_group(partition, &flow_id, &ids[3]),
        )
        .await;
        assert!(invalid_input_detail(error).contains("partition"));
        let error = rejected_without_writes(
            &backend,
            backend.project_flow_summary(partition, &flow_id, TimestampMs::now()),
        )
        .await;
        assert!(invalid_input_detail(error).contains("partition"));
    }
    let error = rejected_without_writes(
        &backend,
        backend.drain_sibling_cancel_group(FLOW_PARTITION, &flow_id, &foreign),
    )
    .await;
    assert!(invalid_input_detail(error).contains("partition"));
    let error = rejected_without_writes(
        &backend,
        backend.reconcile_sibling_cancel_group(FLOW_PARTITION, &flow_id, &foreign),
    )
    .await;
    assert!(invalid_input_detail(error).contains("partition"));
    assert_eq!(
        queued_groups(&backend),
        1,
        "the owed cancels are still recorded"
    );
}

/// Copy `table`'s rows matching `filter` once per row of the temp table `clones`, with the
/// columns of `replaced` taken from `clones` (e.g. `execution_id` ← `clones.eid`).
fn clone_rows(conn: &rusqlite::Connection, table: &str, filter: &str, replaced: &[(&str, &str)]) {
    let columns: Vec<String> = conn
        .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let values: Vec<String> = columns
        .iter()
        .map(|column| {
            replaced
                .iter()
                .find(|(name, _)| name == column)
                .map_or(format!("t.{column}"), |(_, value)| (*value).to_owned())
        })
        .collect();
    conn.execute(
        &format!(
            "INSERT INTO {table} ({}) SELECT {} FROM {table} t, clones WHERE {filter}",
            columns.join(", "),
            values.join(", ")
        ),
        [],
    )
    .unwrap();
}

#[tokio::test]
#[parallel(process)]
async fn a_failing_parent_skips_a_9_999_child_fan_out_in_one_operation() {
    // The operation limit is raised because this suite runs debug builds (SQLite unoptimized,
    // several suites on two cores); the time in a release build is a measurement
    // (`docs/performance.md`), not an assertion.
    dev_mode();
    let backend = SqliteBackend::builder(memory_uri("flows-fan-out-bound"))
        .limits(
            ff_backend_sqlite_wasm::GuestLimits::default()
                .with_operation_timeout(std::time::Duration::from_secs(30)),
        )
        .open()
        .await
        .unwrap();
    let flow_id = create_flow(&backend).await;
    let ids = members(&backend, &flow_id, 2).await;
    depend(&backend, &flow_id, &ids[0], &ids[1]).await;
    assert_eq!(public(&backend, &ids[1]), "waiting_children");
    // The flow's member limit is 10 000: the template child is copied 9 998 times, each copy
    // gated by its own applied edge from the same parent (the rows the API would write).
    {
        let conn = backend.connection_for_test();
        conn.execute_batch(
            "CREATE TEMP TABLE clones AS WITH RECURSIVE n(i) AS \
                 (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 9998) \
             SELECT randomblob(16) AS eid, randomblob(16) AS edge FROM n",
        )
        .unwrap();
        let child = format!("X'{}'", hex_of(&ids[1]));
        clone_rows(
            &conn,
            "ff_exec_core",
            &format!("t.execution_id = {child}"),
            &[("execution_id", "clones.eid")],
        );
        clone_rows(
            &conn,
            "ff_edge",
            &format!("t.downstream_eid = {child}"),
            &[("edge_id", "clones.edge"), ("downstream_eid", "clones.eid")],
        );
        clone_rows(
            &conn,
            "ff_edge_group",
            &format!("t.downstream_eid = {child}"),
            &[("downstream_eid", "clones.eid")],
        );
        conn.execute_batch("DROP TABLE temp.clones").unwrap();
    }
    let waiting = "SELECT COUNT(*) FROM ff_exec_core WHERE public_state = 'waiting_children'";
    assert_eq!(count(&backend, waiting), 9_999);

    // One operation resolves the 9 999 edges and skips every child.
    fail(&backend, &ids[0]).await;
    assert_eq!(
        count(
            &backend,
            "SELECT COUNT(*) FROM ff_exec_core WHERE public_state = 'skipped' \
             AND json_extract(raw_fields, '$.terminal_outcome') = 'skipped'"
        ),
        9_999
    );
    assert_eq!(
        count(
            &backend,
            "SELECT COUNT(*) FROM ff_completion_event WHERE outcome = 'skipped'"
        ),
        9_999
    );
    assert_eq!(count(&backend, waiting), 0);
}

/// The execution's UUID as uppercase hex (an SQL blob literal's digits).
fn hex_of(eid: &ExecutionId) -> String {
    uuid_of(eid).simple().to_string().to_uppercase()
}
