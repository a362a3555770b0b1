//! Operator operations and low-level reads through the public `EngineBackend` API:
//! upstream's `wave9_operator.rs` `change_priority` tests (set-up changed: our
//! `create_execution` makes an execution eligible at once, so the ineligible case is a delayed
//! one), `read_exec_core_fields`, `list_lanes` and `server_time_ms` from the database clock.

use crate::support::*;
use ff_core::contracts::{ChangePriorityArgs, ChangePriorityResult};
use ff_core::engine_backend::EngineBackend;
use ff_core::engine_error::{ContentionKind, EngineError};
use ff_core::partition::{Partition, PartitionFamily};
use ff_core::types::{LaneId, TimestampMs};
use serial_test::parallel;

fn priority_args(execution_id: &ff_core::types::ExecutionId, priority: i32) -> ChangePriorityArgs {
    ChangePriorityArgs {
        execution_id: execution_id.clone(),
        new_priority: priority,
        lane_id: LaneId::new("lane-ignored-on-sqlite"),
        now: TimestampMs::from_millis(now_ms()),
    }
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
    let backend = fresh_backend("operator-priority").await;
    let execution_id = new_execution_id();
    backend
        .create_execution(create_args(execution_id.clone(), "default", now_ms()))
        .await
        .unwrap();
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
    let backend = fresh_backend("operator-fields").await;
    let execution_id = new_execution_id();
    backend
        .create_execution(create_args(execution_id.clone(), "default", now_ms()))
        .await
        .unwrap();
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
