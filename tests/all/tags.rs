//! Execution tags and namespace through the public `EngineBackend` API: upstream's
//! `engine_backend_tags.rs` execution-tag tests (set-up changed: our backend, rusqlite for the
//! stored-shape check), plus the namespace read and a tag write that cannot store failing.

use crate::support::*;
use ff_backend_sqlite_wasm::SqliteBackend;
use ff_core::contracts::CreateExecutionArgs;
use ff_core::engine_backend::EngineBackend;
use ff_core::engine_error::{EngineError, ValidationKind};
use ff_core::types::{ExecutionId, LaneId, Namespace, TimestampMs};
use serial_test::parallel;

async fn seed_execution(backend: &SqliteBackend, lane: &str) -> ExecutionId {
    let eid = new_execution_id();
    let args = CreateExecutionArgs {
        execution_id: eid.clone(),
        namespace: Namespace::new("tags-ns"),
        lane_id: LaneId::new(lane),
        execution_kind: "tags_test".to_owned(),
        input_payload: b"{}".to_vec(),
        payload_encoding: Some("application/json".to_owned()),
        priority: 0,
        creator_identity: "tags-test".to_owned(),
        idempotency_key: None,
        tags: Default::default(),
        policy: None,
        delay_until: None,
        execution_deadline_at: None,
        partition_id: 0,
        now: TimestampMs::now(),
    };
    backend
        .create_execution(args)
        .await
        .expect("create_execution");
    eid
}

#[tokio::test]
#[parallel(process)]
async fn set_and_get_execution_tag_roundtrips() {
    let backend = fresh_backend("tags-roundtrip").await;
    let eid = seed_execution(&backend, "tags-lane-exec").await;
    assert!(
        backend
            .get_execution_tag(&eid, "cairn.session_id")
            .await
            .expect("pre-write get")
            .is_none()
    );
    backend
        .set_execution_tag(&eid, "cairn.session_id", "s-1")
        .await
        .expect("set");
    assert_eq!(
        backend
            .get_execution_tag(&eid, "cairn.session_id")
            .await
            .unwrap()
            .as_deref(),
        Some("s-1")
    );
    backend
        .set_execution_tag(&eid, "cairn.session_id", "s-2")
        .await
        .expect("overwrite");
    backend
        .set_execution_tag(&eid, "cairn.project", "p-1")
        .await
        .expect("second tag");
    assert_eq!(
        backend
            .get_execution_tag(&eid, "cairn.session_id")
            .await
            .unwrap()
            .as_deref(),
        Some("s-2")
    );
    assert_eq!(
        backend
            .get_execution_tag(&eid, "cairn.project")
            .await
            .unwrap()
            .as_deref(),
        Some("p-1")
    );
}

#[tokio::test]
#[parallel(process)]
async fn invalid_tag_key_rejected() {
    let backend = fresh_backend("tags-invalid").await;
    let eid = seed_execution(&backend, "tags-lane-invalid").await;
    for bad in [
        "",
        "Cairn.x",
        "cairn",
        "cairn.",
        "cairn..x",
        "1cairn.x",
        "cairn.foo bar",
        "cairn.foo\"bar",
        "cairn.Foo",
        "cairn.foo-bar",
    ] {
        let err =
            rejected_without_writes(&backend, backend.set_execution_tag(&eid, bad, "v")).await;
        assert!(
            matches!(
                err,
                EngineError::Validation {
                    kind: ValidationKind::InvalidInput,
                    ..
                }
            ),
            "{bad:?}: unexpected err {err:?}"
        );
        // The same message ff-core's own validator gives.
        assert_eq!(
            format!("{err:?}"),
            format!(
                "{:?}",
                ff_core::engine_backend::validate_tag_key(bad).unwrap_err()
            )
        );
        assert!(backend.get_execution_tag(&eid, bad).await.is_err());
    }
}

#[tokio::test]
#[parallel(process)]
async fn missing_execution_returns_notfound_on_set_and_ok_none_on_get() {
    let backend = fresh_backend("tags-missing").await;
    let phantom = new_execution_id();
    let err = rejected_without_writes(
        &backend,
        backend.set_execution_tag(&phantom, "cairn.x", "v"),
    )
    .await;
    assert!(matches!(
        err,
        EngineError::NotFound {
            entity: "execution"
        }
    ));
    assert!(
        backend
            .get_execution_tag(&phantom, "cairn.x")
            .await
            .expect("missing exec get collapses")
            .is_none()
    );
    assert!(
        backend
            .get_execution_namespace(&phantom)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
#[parallel(process)]
async fn execution_tag_stored_as_flat_key_not_nested() {
    let backend = fresh_backend("tags-flat").await;
    let eid = seed_execution(&backend, "tags-lane-shape-exec").await;
    backend
        .set_execution_tag(&eid, "cairn.session_id", "s-flat")
        .await
        .expect("set");
    let conn = backend.connection_for_test();
    let raw = exec_column(&conn, &eid, "raw_fields");
    let kind = exec_column(
        &conn,
        &eid,
        "json_type(raw_fields, '$.tags.\"cairn.session_id\"')",
    );
    assert_eq!(
        kind, "text",
        "tag must be stored as a flat key; got raw_fields: {raw}"
    );
    let nested = exec_column(&conn, &eid, "json_type(raw_fields, '$.tags.cairn')");
    assert_eq!(
        nested, "NULL",
        "tag must not be nested under `cairn`; got raw_fields: {raw}"
    );
}

#[tokio::test]
#[parallel(process)]
async fn the_namespace_reads_back_as_created() {
    let backend = fresh_backend("tags-namespace").await;
    let eid = seed_execution(&backend, "tags-lane-ns").await;
    assert_eq!(
        backend
            .get_execution_namespace(&eid)
            .await
            .unwrap()
            .as_deref(),
        Some("tags-ns")
    );
}

#[tokio::test]
#[parallel(process)]
async fn a_tag_write_that_cannot_store_fails_and_writes_nothing() {
    let backend = fresh_backend("tags-corrupt").await;
    let eid = seed_execution(&backend, "tags-lane-corrupt").await;
    update_exec(
        &backend.connection_for_test(),
        &eid,
        "raw_fields = json_set(raw_fields, '$.tags', 'not an object')",
    );
    let err =
        rejected_without_writes(&backend, backend.set_execution_tag(&eid, "cairn.x", "v")).await;
    assert!(
        matches!(
            err,
            EngineError::Validation {
                kind: ValidationKind::Corruption,
                ..
            }
        ),
        "{err:?}"
    );
}
