//! The flow operations on a native database: structure, enforcement (blocking, release, skip
//! cascade), edge groups, cancellation, `wait-children`, and errors writing nothing.
//!
//! These tests drive flows together with the families whose terminal writes resolve edges
//! (`lease-holder` complete/fail, `scheduling` claims), so they live above all of them, at the
//! crate root: `flows` itself never imports `lease_holder` (which imports `flows`).

use crate::bindings::flows::{
    AddExecutionArgs, AddExecutionOutcome, ApplyDependencyArgs, ApplyDependencyOutcome,
    CancelFlowHeaderArgs, CancelFlowHeaderOutcome, CancelFlowPolicy, ChildWaitLease,
    CreateFlowArgs, CreateFlowOutcome, EdgeDirection, EdgeGroupPolicy, EdgeGroupState, OnSatisfied,
    QuorumPolicy, StageEdgeArgs, StageEdgeOutcome,
};
use crate::bindings::lease_holder::{FailureClass, HandleLease};
use crate::bindings::scheduling::ClaimArgs;
use crate::flows::*;
use crate::testing::{ATTEMPT, LEASE, NOW, TTL, TestDb};
use crate::types::{ConflictKind, ContentionKind, EngineError, Entity, StateKind, ValidationKind};

const FLOW: &str = "0f0f0f0f-0000-4000-8000-000000000001";

/// Execution `n` of the tests, on partition 0.
fn ex(n: u32) -> String {
    format!("{{fp:0}}:00000000-0000-4000-8000-{n:012x}")
}

/// Edge `n` of the tests.
fn edge(n: u32) -> String {
    format!("eeeeeeee-0000-4000-8000-{n:012x}")
}

/// A flow holding `members` runnable executions `ex(1..=members)`.
fn flow_with(members: u32) -> TestDb {
    let mut db = TestDb::new();
    create_flow(
        &mut db,
        &CreateFlowArgs {
            flow_id: FLOW.into(),
            flow_kind: "dag".into(),
            namespace: "ns".into(),
            now: NOW,
        },
    )
    .unwrap();
    for n in 1..=members {
        db.seed_runnable(&ex(n));
        add(&mut db, n).unwrap();
    }
    db
}

fn add(db: &mut TestDb, n: u32) -> Result<AddExecutionOutcome, EngineError> {
    add_execution_to_flow(
        db,
        &AddExecutionArgs {
            flow_id: FLOW.into(),
            execution_id: ex(n),
            now: NOW,
        },
    )
}

fn revision(db: &TestDb) -> u64 {
    db.one("SELECT graph_revision FROM ff_flow_core")
        .parse()
        .unwrap()
}

fn stage(db: &mut TestDb, id: u32, up: u32, down: u32) -> Result<StageEdgeOutcome, EngineError> {
    let expected = revision(db);
    stage_dependency_edge(
        db,
        &StageEdgeArgs {
            flow_id: FLOW.into(),
            edge_id: edge(id),
            upstream_execution_id: ex(up),
            downstream_execution_id: ex(down),
            dependency_kind: "success_only".into(),
            data_passing_ref: None,
            expected_graph_revision: expected,
            now: NOW,
        },
    )
}

fn apply(
    db: &mut impl crate::db::Db,
    id: u32,
    up: u32,
    down: u32,
) -> Result<ApplyDependencyOutcome, EngineError> {
    apply_dependency_to_child(
        db,
        &ApplyDependencyArgs {
            flow_id: FLOW.into(),
            edge_id: edge(id),
            downstream_execution_id: ex(down),
            upstream_execution_id: ex(up),
            graph_revision: 0,
            dependency_kind: "success_only".into(),
            data_passing_ref: None,
            now: NOW,
        },
    )
}

/// Stage and apply edge `id` from `up` to `down`.
fn depend(db: &mut TestDb, id: u32, up: u32, down: u32) {
    stage(db, id, up, down).unwrap();
    apply(db, id, up, down).unwrap();
}

/// The execution's public state.
fn public(db: &TestDb, n: u32) -> String {
    db.one(&format!(
        "SELECT public_state || '/' || eligibility_state FROM ff_exec_core WHERE execution_id = X'{}'",
        crate::testing::hex(&ex(n))
    ))
}

/// Lease `n` through the lane scanner (the handle-based claim); `None` when the scanner finds
/// nothing claimable.
fn scan_claim(db: &mut TestDb) -> Option<String> {
    crate::scheduling::claim(
        db,
        &ClaimArgs {
            lane_id: "default".into(),
            capabilities: vec![],
            worker_id: "worker-1".into(),
            worker_instance_id: "wi-1".into(),
            lease_ttl_ms: TTL,
            lease_id: LEASE.into(),
            attempt_id: ATTEMPT.into(),
            now: NOW,
        },
    )
    .unwrap()
    .map(|claimed| claimed.execution_id)
}

/// Lease execution `n` directly (grant + claim-execution) and return its handle lease.
fn lease(db: &mut TestDb, n: u32) -> HandleLease {
    db.seed_grant(&ex(n), "worker-1", NOW + 60_000);
    let claimed =
        crate::scheduling::claim_execution(db, &crate::testing::claim_args(&ex(n))).expect("claim");
    HandleLease {
        execution_id: ex(n),
        attempt_index: claimed.attempt_index,
        attempt_id: claimed.attempt_id,
        lease_id: claimed.lease_id,
        lease_epoch: claimed.lease_epoch,
        lease_ttl_ms: TTL,
        lane_id: "default".into(),
        worker_instance_id: "wi-1".into(),
    }
}

fn complete(db: &mut TestDb, n: u32) {
    let handle = lease(db, n);
    crate::lease_holder::complete(db, &handle, None, NOW).unwrap();
}

fn fail(db: &mut TestDb, n: u32) {
    let handle = lease(db, n);
    crate::lease_holder::fail(db, &handle, "boom", FailureClass::Permanent, NOW).unwrap();
}

#[test]
fn create_is_idempotent_and_add_counts_members() {
    let mut db = flow_with(2);
    let again = create_flow(
        &mut db,
        &CreateFlowArgs {
            flow_id: FLOW.into(),
            flow_kind: "other".into(),
            namespace: "x".into(),
            now: NOW + 1,
        },
    );
    assert_eq!(again, Ok(CreateFlowOutcome::AlreadySatisfied));
    assert_eq!(add(&mut db, 2), Ok(AddExecutionOutcome::AlreadyMember(2)));
    assert_eq!(revision(&db), 2);
    db.seed_runnable(&ex(3));
    assert_eq!(add(&mut db, 3), Ok(AddExecutionOutcome::Added(3)));
}

#[test]
fn staging_bumps_the_revision_and_refuses_stale_self_foreign_and_cyclic_edges() {
    let mut db = flow_with(3);
    assert_eq!(stage(&mut db, 1, 1, 2), Ok(StageEdgeOutcome::Staged(4)));
    stage(&mut db, 2, 2, 3).unwrap();
    let stale = db.fails_unchanged(|db| {
        stage_dependency_edge(
            db,
            &StageEdgeArgs {
                flow_id: FLOW.into(),
                edge_id: edge(9),
                upstream_execution_id: ex(1),
                downstream_execution_id: ex(3),
                dependency_kind: String::new(),
                data_passing_ref: None,
                expected_graph_revision: 99,
                now: NOW,
            },
        )
    });
    assert_eq!(
        stale,
        EngineError::Contention(ContentionKind::StaleGraphRevision)
    );
    let cycle = db.fails_unchanged(|db| stage(db, 9, 3, 1));
    assert_eq!(cycle, EngineError::Conflict(ConflictKind::CycleDetected));
    let selfish = db.fails_unchanged(|db| stage(db, 9, 2, 2));
    assert_eq!(
        selfish,
        EngineError::Conflict(ConflictKind::SelfReferencingEdge)
    );
    db.seed_runnable(&ex(7));
    let foreign = db.fails_unchanged(|db| stage(db, 9, 1, 7));
    assert_eq!(foreign, EngineError::State(StateKind::ExecutionNotInFlow));
    match stage(&mut db, 1, 1, 3) {
        Ok(StageEdgeOutcome::AlreadyExists(existing)) => {
            assert_eq!(existing.downstream_execution_id, ex(2));
            assert_eq!(existing.edge_state, "pending");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_applied_dependency_blocks_every_claim_path_until_the_parent_completes() {
    let mut db = flow_with(2);
    depend(&mut db, 1, 1, 2);
    assert_eq!(public(&db, 2), "waiting_children/blocked_by_dependencies");
    assert_eq!(
        evaluate_flow_eligibility(&mut db, &ex(2)).unwrap(),
        "blocked_by_dependencies"
    );
    // The scanner takes the parent, never the child.
    assert_eq!(scan_claim(&mut db), Some(ex(1)));
    assert_eq!(scan_claim(&mut db), None);
    // A grant for the child is refused.
    let grant = crate::scheduling::issue_claim_grant(
        &mut db,
        &crate::bindings::scheduling::IssueClaimGrantArgs {
            execution_id: ex(2),
            worker_id: "worker-1".into(),
            worker_instance_id: "wi-1".into(),
            lane_id: "default".into(),
            capability_hash: None,
            grant_ttl_ms: 1_000,
            route_snapshot_json: None,
            admission_summary: None,
            worker_capabilities: vec![],
            now: NOW,
        },
    );
    assert!(grant.is_err(), "{grant:?}");
    // Completing the parent (it holds the scanner's lease) releases the child in the same call.
    let parent = HandleLease {
        execution_id: ex(1),
        attempt_index: 0,
        attempt_id: ATTEMPT.into(),
        lease_id: LEASE.into(),
        lease_epoch: 1,
        lease_ttl_ms: TTL,
        lane_id: "default".into(),
        worker_instance_id: "wi-1".into(),
    };
    crate::lease_holder::complete(&mut db, &parent, None, NOW).unwrap();
    assert_eq!(public(&db, 2), "waiting/eligible_now");
    assert_eq!(
        evaluate_flow_eligibility(&mut db, &ex(2)).unwrap(),
        "eligible"
    );
    assert_eq!(scan_claim(&mut db), Some(ex(2)));
    let edge_view = describe_edge(&mut db, FLOW, &edge(1)).unwrap().unwrap();
    assert_eq!(edge_view.edge_state, "satisfied");
}

#[test]
fn fan_in_waits_for_every_parent() {
    let mut db = flow_with(3);
    depend(&mut db, 1, 1, 3);
    let unstaged = db.fails_unchanged(|db| apply(db, 2, 2, 3));
    assert!(
        matches!(&unstaged, EngineError::Validation(v) if v.kind == ValidationKind::InvalidDependency),
        "{unstaged:?}"
    );
    stage(&mut db, 2, 2, 3).unwrap();
    assert_eq!(
        apply(&mut db, 2, 2, 3),
        Ok(ApplyDependencyOutcome::Applied(2))
    );
    assert_eq!(
        apply(&mut db, 2, 2, 3),
        Ok(ApplyDependencyOutcome::AlreadyApplied)
    );
    complete(&mut db, 1);
    assert_eq!(public(&db, 3), "waiting_children/blocked_by_dependencies");
    complete(&mut db, 2);
    assert_eq!(public(&db, 3), "waiting/eligible_now");
}

#[test]
fn a_failed_parent_skips_its_dependants_transitively_and_spares_other_branches() {
    // 1 -> 2 -> 3, 1 -> 4 (fan-out), 5 -> 4 unaffected branch parent.
    let mut db = flow_with(5);
    depend(&mut db, 1, 1, 2);
    depend(&mut db, 2, 2, 3);
    depend(&mut db, 3, 1, 4);
    fail(&mut db, 1);
    for n in [2, 3, 4] {
        assert_eq!(public(&db, n), "skipped/not_applicable", "execution {n}");
    }
    assert_eq!(public(&db, 5), "waiting/eligible_now");
    assert_eq!(
        db.one("SELECT COUNT(*) FROM ff_completion_event WHERE outcome = 'skipped'"),
        "3"
    );
    assert_eq!(
        db.one(&format!(
            "SELECT json_extract(raw_fields, '$.terminal_outcome') FROM ff_exec_core WHERE execution_id = X'{}'",
            crate::testing::hex(&ex(3))
        )),
        "skipped"
    );
    let view = describe_flow(&mut db, FLOW).unwrap().unwrap();
    let group_of_2 = view
        .edge_groups
        .iter()
        .find(|group| group.downstream_execution_id == ex(2))
        .unwrap();
    assert_eq!(group_of_2.group_state, EdgeGroupState::Impossible);
    assert_eq!(group_of_2.failed_count, 1);
    let group_of_3 = view
        .edge_groups
        .iter()
        .find(|group| group.downstream_execution_id == ex(3))
        .unwrap();
    assert_eq!(group_of_3.skipped_count, 1);
}

#[test]
fn a_skip_cascades_down_a_long_chain_in_one_call() {
    const DEPTH: u32 = 300;
    let mut db = flow_with(DEPTH);
    for n in 1..DEPTH {
        depend(&mut db, n, n, n + 1);
    }
    fail(&mut db, 1);
    assert_eq!(
        db.one("SELECT COUNT(*) FROM ff_exec_core WHERE public_state = 'skipped'"),
        (DEPTH - 1).to_string()
    );
}

#[test]
fn the_member_limit_bounds_a_flow() {
    let mut db = flow_with(1);
    db.exec("UPDATE ff_flow_core SET raw_fields = json_set(raw_fields, '$.node_count', 10000)");
    db.seed_runnable(&ex(2));
    let error = db.fails_unchanged(|db| add(db, 2));
    assert!(
        matches!(&error, EngineError::Validation(v) if v.kind == ValidationKind::InvalidInput
            && v.detail.starts_with("flow_member_limit")),
        "{error:?}"
    );
}

#[test]
fn any_of_and_quorum_groups_resolve_by_their_policy() {
    let mut db = flow_with(4);
    assert_eq!(
        set_edge_group_policy(
            &mut db,
            FLOW,
            &ex(4),
            &EdgeGroupPolicy::AnyOf(OnSatisfied::LetRun)
        ),
        Ok(true)
    );
    assert_eq!(
        set_edge_group_policy(
            &mut db,
            FLOW,
            &ex(4),
            &EdgeGroupPolicy::AnyOf(OnSatisfied::LetRun)
        ),
        Ok(false)
    );
    for n in 1..=3 {
        depend(&mut db, n, n, 4);
    }
    let fixed =
        db.fails_unchanged(|db| set_edge_group_policy(db, FLOW, &ex(4), &EdgeGroupPolicy::AllOf));
    assert!(matches!(fixed, EngineError::Validation(_)));
    fail(&mut db, 1);
    assert_eq!(public(&db, 4), "waiting_children/blocked_by_dependencies");
    complete(&mut db, 2);
    assert_eq!(public(&db, 4), "waiting/eligible_now");

    // Quorum 2 of 3 with two failures is impossible.
    let mut db = flow_with(4);
    let two = EdgeGroupPolicy::Quorum(QuorumPolicy {
        k: 2,
        on_satisfied: OnSatisfied::LetRun,
    });
    set_edge_group_policy(&mut db, FLOW, &ex(4), &two).unwrap();
    for n in 1..=3 {
        depend(&mut db, n, n, 4);
    }
    complete(&mut db, 1);
    assert_eq!(public(&db, 4), "waiting_children/blocked_by_dependencies");
    fail(&mut db, 2);
    assert_eq!(public(&db, 4), "waiting_children/blocked_by_dependencies");
    fail(&mut db, 3);
    assert_eq!(public(&db, 4), "skipped/not_applicable");
    let zero = db.fails_unchanged(|db| {
        set_edge_group_policy(
            db,
            FLOW,
            &ex(1),
            &EdgeGroupPolicy::Quorum(QuorumPolicy {
                k: 0,
                on_satisfied: OnSatisfied::LetRun,
            }),
        )
    });
    assert!(matches!(zero, EngineError::Validation(_)));
}

#[test]
fn applying_after_the_parent_finished_resolves_at_once() {
    let mut db = flow_with(2);
    stage(&mut db, 1, 1, 2).unwrap();
    complete(&mut db, 1);
    assert_eq!(
        apply(&mut db, 1, 1, 2),
        Ok(ApplyDependencyOutcome::Applied(0))
    );
    assert_eq!(public(&db, 2), "waiting/eligible_now");
}

#[test]
fn cancel_flow_revokes_live_leases_fenced_and_is_idempotent() {
    let mut db = flow_with(3);
    let handle = lease(&mut db, 1);
    let outcome = cancel_flow(&mut db, FLOW, CancelFlowPolicy::CancelAll, NOW).unwrap();
    assert_eq!(outcome.cancellation_policy, "cancel_all");
    assert_eq!(outcome.member_execution_ids, vec![ex(1), ex(2), ex(3)]);
    assert_eq!(
        db.one("SELECT public_flow_state FROM ff_flow_core"),
        "cancelled"
    );
    assert_eq!(
        db.one("SELECT COUNT(*) FROM ff_exec_core WHERE public_state = 'cancelled' AND lifecycle_phase = 'terminal'"),
        "3"
    );
    assert_eq!(
        db.one("SELECT COUNT(*) FROM ff_lease_event WHERE event_type = 'revoked'"),
        "1",
        "only the member holding a lease gets a revoked event"
    );
    assert_eq!(db.one("SELECT lease_epoch FROM ff_attempt"), "2");
    // The fenced-out worker cannot complete.
    assert!(crate::lease_holder::complete(&mut db, &handle, None, NOW).is_err());
    let again = cancel_flow(&mut db, FLOW, CancelFlowPolicy::CancelAll, NOW).unwrap();
    assert!(again.member_execution_ids.is_empty());
    assert_eq!(
        db.one("SELECT COUNT(*) FROM ff_completion_event WHERE outcome = 'cancelled'"),
        "3"
    );
    let absent = cancel_flow(
        &mut db,
        "0f0f0f0f-0000-4000-8000-0000000000ff",
        CancelFlowPolicy::CancelAll,
        NOW,
    )
    .unwrap();
    assert!(absent.member_execution_ids.is_empty());
}

#[test]
fn cancel_pending_leaves_running_members_and_flow_only_leaves_all() {
    let mut db = flow_with(2);
    lease(&mut db, 1);
    let outcome = cancel_flow(&mut db, FLOW, CancelFlowPolicy::CancelPending, NOW).unwrap();
    assert_eq!(outcome.member_execution_ids, vec![ex(2)]);
    let mut db = flow_with(2);
    let outcome = cancel_flow(&mut db, FLOW, CancelFlowPolicy::FlowOnly, NOW).unwrap();
    assert!(outcome.member_execution_ids.is_empty());
    assert_eq!(public(&db, 1), "waiting/eligible_now");
}

#[test]
fn cancel_flow_header_records_the_backlog_and_acks_drain_it() {
    let mut db = flow_with(2);
    let args = CancelFlowHeaderArgs {
        flow_id: FLOW.into(),
        reason: "operator".into(),
        cancellation_policy: "cancel_all".into(),
        now: NOW,
    };
    assert_eq!(
        cancel_flow_header(&mut db, &args),
        Ok(CancelFlowHeaderOutcome::Cancelled(vec![ex(1), ex(2)]))
    );
    assert_eq!(db.one("SELECT COUNT(*) FROM ff_cancel_backlog_member"), "2");
    assert_eq!(
        db.one("SELECT event_type || ':' || execution_id FROM ff_operator_event"),
        format!("flow_cancel_requested:{FLOW}")
    );
    match cancel_flow_header(&mut db, &args).unwrap() {
        CancelFlowHeaderOutcome::AlreadyTerminal(stored) => {
            assert_eq!(
                stored.stored_cancellation_policy.as_deref(),
                Some("cancel_all")
            );
            assert_eq!(stored.stored_cancel_reason.as_deref(), Some("operator"));
            assert_eq!(stored.member_execution_ids, vec![ex(1), ex(2)]);
        }
        other => panic!("{other:?}"),
    }
    ack_cancel_member(&mut db, FLOW, &ex(1)).unwrap();
    assert_eq!(db.one("SELECT COUNT(*) FROM ff_cancel_backlog"), "1");
    ack_cancel_member(&mut db, FLOW, &ex(2)).unwrap();
    ack_cancel_member(&mut db, FLOW, &ex(2)).unwrap();
    assert_eq!(db.one("SELECT COUNT(*) FROM ff_cancel_backlog"), "0");
    let missing = db.fails_unchanged(|db| {
        cancel_flow_header(
            db,
            &CancelFlowHeaderArgs {
                flow_id: "0f0f0f0f-0000-4000-8000-0000000000ff".into(),
                ..args.clone()
            },
        )
    });
    assert_eq!(missing, EngineError::NotFound(Entity::Flow));
}

#[test]
fn wait_children_parks_the_holder_until_its_dependencies_resolve() {
    let mut db = flow_with(2);
    stage(&mut db, 1, 1, 2).unwrap();
    let child = lease(&mut db, 2);
    apply(&mut db, 1, 1, 2).unwrap();
    assert_eq!(
        public(&db, 2),
        "active/not_applicable",
        "a running child is not blocked"
    );
    let parked = ChildWaitLease {
        execution_id: ex(2),
        attempt_index: child.attempt_index,
        attempt_id: child.attempt_id.clone(),
        lease_id: child.lease_id.clone(),
        lease_epoch: child.lease_epoch,
    };
    wait_children(&mut db, &parked, NOW).unwrap();
    assert_eq!(public(&db, 2), "waiting_children/blocked_by_dependencies");
    let again = db.fails_unchanged(|db| wait_children(db, &parked, NOW));
    assert!(matches!(again, EngineError::Contention(_)), "{again:?}");
    complete(&mut db, 1);
    assert_eq!(public(&db, 2), "waiting/eligible_now");
    assert_eq!(
        db.one(&format!(
            "SELECT attempt_state FROM ff_exec_core WHERE execution_id = X'{}'",
            crate::testing::hex(&ex(2))
        )),
        "attempt_interrupted"
    );
}

#[test]
fn reads_report_edges_tags_and_pages() {
    let mut db = flow_with(3);
    depend(&mut db, 1, 1, 3);
    depend(&mut db, 2, 2, 3);
    let incoming = list_edges(&mut db, FLOW, &EdgeDirection::Incoming(ex(3))).unwrap();
    assert_eq!(incoming.len(), 2);
    assert_eq!(incoming[0].edge_state, "applied");
    let outgoing = list_edges(&mut db, FLOW, &EdgeDirection::Outgoing(ex(1))).unwrap();
    assert_eq!(outgoing.len(), 1);
    assert_eq!(
        resolve_execution_flow_id(&mut db, &ex(1))
            .unwrap()
            .as_deref(),
        Some(FLOW)
    );
    assert_eq!(get_flow_tag(&mut db, FLOW, "cairn.archived").unwrap(), None);
    set_flow_tag(&mut db, FLOW, "cairn.archived", "true").unwrap();
    assert_eq!(
        get_flow_tag(&mut db, FLOW, "cairn.archived")
            .unwrap()
            .as_deref(),
        Some("true")
    );
    let view = describe_flow(&mut db, FLOW).unwrap().unwrap();
    assert_eq!(
        view.tags,
        vec![("cairn.archived".to_string(), "true".to_string())]
    );
    assert_eq!((view.node_count, view.edge_count), (3, 2));
    let bad_key = db.fails_unchanged(|db| set_flow_tag(db, FLOW, "Bad", "x"));
    assert!(matches!(bad_key, EngineError::Validation(_)));
    let page = list_flows(&mut db, 0, None, 1).unwrap();
    assert_eq!(page.flows.len(), 1);
    assert_eq!(page.next_cursor, None);
}

#[test]
fn every_statement_of_building_and_resolving_a_dag_is_served_by_an_index() {
    // Per-operation cost must not grow with the flow: no full scans, no sorts, on add, stage
    // (with its cycle walk), apply, and a parent's completion resolving its edges.
    let mut db = flow_with(3);
    db.seed_runnable(&ex(4));
    stage(&mut db, 1, 1, 3).unwrap();
    let handle = lease(&mut db, 1);
    let expected = revision(&db);
    let mut recording = crate::testing::Recording {
        db: &mut db,
        statements: Vec::new(),
    };
    add_execution_to_flow(
        &mut recording,
        &AddExecutionArgs {
            flow_id: FLOW.into(),
            execution_id: ex(4),
            now: NOW,
        },
    )
    .unwrap();
    for (id, up, down, rev) in [(2, 2, 3, expected + 1), (3, 3, 4, expected + 2)] {
        stage_dependency_edge(
            &mut recording,
            &StageEdgeArgs {
                flow_id: FLOW.into(),
                edge_id: edge(id),
                upstream_execution_id: ex(up),
                downstream_execution_id: ex(down),
                dependency_kind: "success_only".into(),
                data_passing_ref: None,
                expected_graph_revision: rev,
                now: NOW,
            },
        )
        .unwrap();
    }
    for (id, up, down) in [(1, 1, 3), (2, 2, 3), (3, 3, 4)] {
        apply(&mut recording, id, up, down).unwrap();
    }
    crate::lease_holder::complete(&mut recording, &handle, None, NOW).unwrap();
    evaluate_flow_eligibility(&mut recording, &ex(3)).unwrap();
    let stage_walked = recording
        .statements
        .iter()
        .any(|(statement, _)| statement.contains("SELECT downstream_eid FROM ff_edge"));
    assert!(stage_walked, "the cycle walk ran");
    // Walking `json_each` walks a list the statement was given (a cascade level's ids), not a
    // table; every table it touches is reached through an index.
    let scans: Vec<String> = recording
        .unindexed_steps()
        .into_iter()
        .filter(|step| !step.starts_with("SCAN json_each VIRTUAL TABLE"))
        .collect();
    assert_eq!(scans, Vec::<String>::new());
    let set_based = recording
        .statements
        .iter()
        .any(|(statement, _)| statement.contains("upstream_eid IN (SELECT unhex(value)"));
    assert!(set_based, "the parent's edges resolved as one level");
}
