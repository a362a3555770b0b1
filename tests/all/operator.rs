//! Operator operations and low-level reads through the public `EngineBackend` API:
//! upstream's `wave9_operator.rs` `change_priority` tests (set-up changed: our
//! `create_execution` makes an execution eligible at once, so the ineligible case is a delayed
//! one), `read_exec_core_fields`, `list_lanes` and `server_time_ms` from the database clock;
//! its `replay_execution` tests (set-up: the typed claim and complete instead of the handle
//! API), replay of a cancelled execution and the replay limit, and `list_executions`.

use std::sync::Arc;

use crate::support::*;
use ff_backend_sqlite_wasm::SqliteBackend;
use ff_core::contracts::{
    ChangePriorityArgs, ChangePriorityResult, ReplayExecutionArgs, ReplayExecutionResult,
};
use ff_core::engine_backend::EngineBackend;
use ff_core::engine_error::{ContentionKind, EngineError, StateKind};
use ff_core::partition::{Partition, PartitionFamily, PartitionKey};
use ff_core::state::PublicState;
use ff_core::types::{CancelSource, ExecutionId, LaneId, TimestampMs};
use serial_test::parallel;

fn priority_args(execution_id: &ff_core::types::ExecutionId, priority: i32) -> ChangePriorityArgs {
    ChangePriorityArgs {
        execution_id: execution_id.clone(),
        new_priority: priority,
        lane_id: LaneId::new("lane-ignored-on-sqlite"),
        now: TimestampMs::from_millis(now_ms()),
    }
}

/// A backend on a fresh database with one execution created now on lane `default`.
async fn backend_with_execution(prefix: &str) -> (Arc<SqliteBackend>, ExecutionId) {
    let backend = fresh_backend(prefix).await;
    let execution_id = new_execution_id();
    backend
        .create_execution(create_args(execution_id.clone(), "default", now_ms()))
        .await
        .unwrap();
    (backend, execution_id)
}

fn operator_events(conn: &rusqlite::Connection, execution_id: &ff_core::types::ExecutionId) -> i64 {
    conn.query_row(
        "SELECT COUNT(*) FROM ff_operator_event WHERE execution_id = ?1 AND partition_key = 0",
        [uuid_of(execution_id).to_string()],
        |row| row.get(0),
    )
    .unwrap()
}

#[tokio::test]
#[parallel(process)]
async fn change_priority_happy_path() {
    let (backend, execution_id) = backend_with_execution("operator-priority").await;
    let result = backend
        .change_priority(priority_args(&execution_id, 42))
        .await
        .expect("change_priority");
    assert!(matches!(result, ChangePriorityResult::Changed { .. }));
    let conn = backend.connection_for_test();
    assert_eq!(exec_column(&conn, &execution_id, "priority"), "42");
    assert_eq!(operator_events(&conn, &execution_id), 1);
}

#[tokio::test]
#[parallel(process)]
async fn change_priority_ineligible_execution_returns_not_eligible() {
    let backend = fresh_backend("operator-ineligible").await;
    let execution_id = new_execution_id();
    let mut args = create_args(execution_id.clone(), "default", now_ms());
    args.delay_until = Some(TimestampMs::from_millis(now_ms() + 3_600_000));
    backend.create_execution(args).await.unwrap();
    let err = rejected_without_writes(
        &backend,
        backend.change_priority(priority_args(&execution_id, 10)),
    )
    .await;
    assert!(
        matches!(
            err,
            EngineError::Contention(ContentionKind::ExecutionNotEligible)
        ),
        "got {err:?}"
    );
    assert_execution_not_found(
        rejected_without_writes(
            &backend,
            backend.change_priority(priority_args(&new_execution_id(), 10)),
        )
        .await,
    );
}

#[tokio::test]
#[parallel(process)]
async fn read_exec_core_fields_reads_named_fields_and_checks_the_partition() {
    let (backend, execution_id) = backend_with_execution("operator-fields").await;
    let partition = partition_of(&execution_id);
    let fields = backend
        .read_exec_core_fields(
            partition,
            &execution_id,
            &["lane_id", "public_state", "flow_id", "no_such_field"],
        )
        .await
        .unwrap();
    assert_eq!(fields.len(), 4);
    assert_eq!(fields["lane_id"].as_deref(), Some("default"));
    assert_eq!(fields["public_state"].as_deref(), Some("waiting"));
    assert_eq!(fields["flow_id"], None);
    assert_eq!(fields["no_such_field"], None);
    let missing = backend
        .read_exec_core_fields(partition, &new_execution_id(), &["lane_id"])
        .await
        .unwrap();
    assert_eq!(missing["lane_id"], None);
    let other = Partition {
        family: PartitionFamily::Execution,
        index: 5,
    };
    let detail = invalid_input_detail(
        backend
            .read_exec_core_fields(other, &execution_id, &["lane_id"])
            .await
            .unwrap_err(),
    );
    assert_eq!(
        detail,
        "read_exec_core_fields: partition mismatch (arg=5, eid=0)"
    );
}

#[tokio::test]
#[parallel(process)]
async fn server_time_is_the_database_clock() {
    let backend = fresh_backend("operator-clock").await;
    let before = u64::try_from(now_ms()).unwrap();
    let server = backend.server_time_ms().await.unwrap();
    let after = u64::try_from(now_ms()).unwrap();
    // julianday arithmetic may be a millisecond off the process clock.
    assert!(
        server + 1 >= before && server <= after + 1,
        "{before} {server} {after}"
    );
}

#[tokio::test]
#[parallel(process)]
async fn list_lanes_pages_the_lanes_executions_were_created_on() {
    let backend = fresh_backend("operator-lanes").await;
    for lane in ["reports", "email", "alerts", "email"] {
        backend
            .create_execution(create_args(new_execution_id(), lane, now_ms()))
            .await
            .unwrap();
    }
    let first = backend.list_lanes(None, 2).await.unwrap();
    assert_eq!(
        first.lanes,
        vec![LaneId::new("alerts"), LaneId::new("email")]
    );
    assert_eq!(first.next_cursor, Some(LaneId::new("email")));
    let last = backend.list_lanes(first.next_cursor, 2).await.unwrap();
    assert_eq!(last.lanes, vec![LaneId::new("reports")]);
    assert_eq!(last.next_cursor, None);
    assert!(backend.list_lanes(None, 0).await.unwrap().lanes.is_empty());
}

// ── replay_execution (upstream `wave9_operator.rs`; set-up: the typed claim and complete) ─────

/// A backend with one execution claimed and completed through the public API.
async fn completed_backend(prefix: &str) -> (Arc<SqliteBackend>, ExecutionId) {
    let (backend, execution_id, claim) = created_leased_backend(prefix).await;
    backend
        .complete_execution(complete_args(&execution_id, Some(fence_of(&claim))))
        .await
        .expect("complete");
    assert_eq!(
        exec_column(
            &backend.connection_for_test(),
            &execution_id,
            "lifecycle_phase"
        ),
        "terminal"
    );
    (backend, execution_id)
}

fn replay_args(execution_id: &ExecutionId) -> ReplayExecutionArgs {
    ReplayExecutionArgs {
        execution_id: execution_id.clone(),
        now: TimestampMs::from_millis(now_ms()),
    }
}

#[tokio::test]
#[parallel(process)]
async fn replay_execution_normal_branch() {
    let (backend, execution_id) = completed_backend("replay-normal").await;
    let result = backend
        .replay_execution(replay_args(&execution_id))
        .await
        .expect("replay");
    assert_eq!(
        result,
        ReplayExecutionResult::Replayed {
            public_state: PublicState::Waiting
        }
    );
    let conn = backend.connection_for_test();
    assert_eq!(
        exec_column(&conn, &execution_id, "lifecycle_phase"),
        "runnable"
    );
    let replay_count: i64 = conn
        .query_row(
            "SELECT json_extract(raw_fields, '$.replay_count') FROM ff_exec_core \
             WHERE partition_key = 0 AND execution_id = ?1",
            [blob(uuid_of(&execution_id))],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(replay_count, 1);
    assert_eq!(operator_events(&conn, &execution_id), 1);
}

#[tokio::test]
#[parallel(process)]
async fn replay_execution_skipped_flow_member_resets_edge_group_counters() {
    let (backend, execution_id) = completed_backend("replay-skipped").await;
    let exec_blob = blob(uuid_of(&execution_id));
    let fake_flow = blob(uuid::Uuid::new_v4());
    {
        let conn = backend.connection_for_test();
        conn.execute(
            "UPDATE ff_exec_core SET flow_id = ?1 WHERE partition_key = 0 AND execution_id = ?2",
            (&fake_flow, &exec_blob),
        )
        .unwrap();
        conn.execute(
            "UPDATE ff_attempt SET outcome = 'skipped' WHERE partition_key = 0 AND execution_id = ?1",
            [&exec_blob],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO ff_edge (partition_key, flow_id, edge_id, upstream_eid, downstream_eid, \
                 policy, policy_version) VALUES (0, ?1, ?2, ?3, ?4, '{}', 0)",
            (
                &fake_flow,
                blob(uuid::Uuid::new_v4()),
                blob(uuid::Uuid::new_v4()),
                &exec_blob,
            ),
        )
        .unwrap();
        conn.execute(
            "INSERT INTO ff_edge_group (partition_key, flow_id, downstream_eid, policy, k_target, \
                 success_count, fail_count, skip_count, running_count) \
             VALUES (0, ?1, ?2, '{}', 1, 3, 5, 7, 2)",
            (&fake_flow, &exec_blob),
        )
        .unwrap();
    }
    let result = backend
        .replay_execution(replay_args(&execution_id))
        .await
        .expect("replay");
    assert_eq!(
        result,
        ReplayExecutionResult::Replayed {
            public_state: PublicState::WaitingChildren
        }
    );
    let conn = backend.connection_for_test();
    let counts: (i64, i64, i64, i64) = conn
        .query_row(
            "SELECT success_count, fail_count, skip_count, running_count FROM ff_edge_group \
             WHERE partition_key = 0 AND flow_id = ?1 AND downstream_eid = ?2",
            (&fake_flow, &exec_blob),
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
        )
        .unwrap();
    assert_eq!(counts, (3, 0, 0, 0), "success kept, the rest reset");
    let details: String = conn
        .query_row(
            "SELECT details FROM ff_operator_event WHERE execution_id = ?1 AND event_type = 'replayed'",
            [uuid_of(&execution_id).to_string()],
            |row| row.get(0),
        )
        .unwrap();
    assert!(details.contains("skipped_flow_member"), "{details}");
}

#[tokio::test]
#[parallel(process)]
async fn replay_execution_non_terminal_returns_not_terminal() {
    let (backend, execution_id) = backend_with_execution("replay-runnable").await;
    let err = rejected_without_writes(
        &backend,
        backend.replay_execution(replay_args(&execution_id)),
    )
    .await;
    assert!(
        matches!(err, EngineError::State(StateKind::ExecutionNotTerminal)),
        "got {err:?}"
    );
    assert_execution_not_found(
        rejected_without_writes(
            &backend,
            backend.replay_execution(replay_args(&new_execution_id())),
        )
        .await,
    );
}

/// Issue 19: an execution cancelled by this backend replays (upstream SQLite's cancel wrote a
/// lifecycle replay refused), and the replay limit (the policy's `max_replay_count`, default
/// 10) stops the eleventh replay.
#[tokio::test]
#[parallel(process)]
async fn a_cancelled_execution_replays_until_the_replay_limit() {
    let (backend, execution_id) = backend_with_execution("replay-cancelled").await;
    for _ in 0..10 {
        backend
            .cancel_execution(cancel_args(
                &execution_id,
                CancelSource::OperatorOverride,
                None,
            ))
            .await
            .expect("cancel");
        let result = backend
            .replay_execution(replay_args(&execution_id))
            .await
            .expect("replay");
        assert_eq!(
            result,
            ReplayExecutionResult::Replayed {
                public_state: PublicState::Waiting
            }
        );
    }
    backend
        .cancel_execution(cancel_args(
            &execution_id,
            CancelSource::OperatorOverride,
            None,
        ))
        .await
        .expect("cancel");
    let err = rejected_without_writes(
        &backend,
        backend.replay_execution(replay_args(&execution_id)),
    )
    .await;
    assert!(
        matches!(err, EngineError::State(StateKind::MaxReplaysExhausted)),
        "got {err:?}"
    );
}

// ── list_executions ──────────────────────────────────────────────────────────────────────────

#[tokio::test]
#[parallel(process)]
async fn list_executions_pages_a_partition_in_id_order_with_a_stable_cursor() {
    let backend = fresh_backend("operator-list-executions").await;
    let mut created: Vec<ExecutionId> = (0..5).map(|_| new_execution_id()).collect();
    for execution_id in &created {
        backend
            .create_execution(create_args(execution_id.clone(), "default", now_ms()))
            .await
            .unwrap();
    }
    created.sort_by_key(uuid_of);
    let partition = PartitionKey::from(&partition_of(&created[0]));
    let first = backend
        .list_executions(partition.clone(), None, 2)
        .await
        .unwrap();
    assert_eq!(first.executions, created[..2]);
    assert_eq!(first.next_cursor.as_ref(), Some(&created[1]));
    // The cursor's execution going away does not move the next page.
    backend
        .connection_for_test()
        .execute(
            "DELETE FROM ff_exec_core WHERE execution_id = ?1",
            [blob(uuid_of(&created[1]))],
        )
        .unwrap();
    let second = backend
        .list_executions(partition.clone(), first.next_cursor, 2)
        .await
        .unwrap();
    assert_eq!(second.executions, created[2..4]);
    let last = backend
        .list_executions(partition.clone(), second.next_cursor, 2)
        .await
        .unwrap();
    assert_eq!(
        (last.executions, last.next_cursor),
        (created[4..].to_vec(), None)
    );
    assert!(
        backend
            .list_executions(partition, None, 0)
            .await
            .unwrap()
            .executions
            .is_empty()
    );
    let other = Partition {
        family: PartitionFamily::Execution,
        index: 3,
    };
    assert!(
        backend
            .list_executions(PartitionKey::from(&other), None, 10)
            .await
            .unwrap()
            .executions
            .is_empty()
    );
}

#[tokio::test]
#[parallel(process)]
async fn list_executions_bad_input_is_invalid_input() {
    let backend = fresh_backend("operator-list-bad").await;
    let partition = PartitionKey::from(&partition_of(&new_execution_id()));
    let foreign_cursor = ExecutionId::parse(&format!("{{fp:9}}:{}", uuid::Uuid::new_v4())).unwrap();
    for (key, cursor) in [
        (
            serde_json::from_str::<PartitionKey>("\"nonsense\"").unwrap(),
            None,
        ),
        (
            PartitionKey::from(&Partition {
                family: PartitionFamily::Budget,
                index: 0,
            }),
            None,
        ),
        (partition, Some(foreign_cursor)),
    ] {
        let detail = invalid_input_detail(
            rejected_without_writes(&backend, backend.list_executions(key, cursor, 10)).await,
        );
        assert!(detail.starts_with("list_executions"), "{detail}");
    }
}

/// Issue 19 / quirk O4: `read_exec_core_fields("flow_id")` is the flow id's text form (upstream
/// SQLite returned the BLOB's bytes).
#[tokio::test]
#[parallel(process)]
async fn read_exec_core_fields_returns_the_flow_id_as_text() {
    let (backend, execution_id) = backend_with_execution("operator-flow-id").await;
    let flow = uuid::Uuid::new_v4();
    update_exec(
        &backend.connection_for_test(),
        &execution_id,
        &format!("flow_id = X'{}'", flow.simple()),
    );
    let fields = backend
        .read_exec_core_fields(partition_of(&execution_id), &execution_id, &["flow_id"])
        .await
        .unwrap();
    assert_eq!(fields["flow_id"], Some(flow.to_string()));
}
