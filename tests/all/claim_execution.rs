//! `claim_execution` beyond upstream's seed test: what it writes, the errors it returns for
//! missing and ineligible executions, that errors write nothing, and that the handle it returns
//! is a real SQLite handle.

use crate::support::*;
use ff_core::backend::{BackendTag, HandleKind};
use ff_core::engine_backend::EngineBackend;
use ff_core::engine_error::{ConflictKind, ContentionKind, EngineError};
use ff_core::handle_codec;
use ff_core::types::{AttemptIndex, LeaseEpoch};
use serial_test::parallel;
use std::sync::Arc;

#[tokio::test]
#[parallel(process)]
async fn unknown_execution_is_not_found() {
    let backend = fresh_backend("claim-unknown").await;
    let eid = new_execution_id();
    assert_execution_not_found(
        backend
            .claim_execution(claim_args(eid, "worker-1"))
            .await
            .unwrap_err(),
    );
}

#[tokio::test]
#[parallel(process)]
async fn ineligible_execution_is_not_leaseable() {
    let backend = fresh_backend("claim-ineligible").await;
    let eid = {
        let conn = backend.connection_for_test();
        let (_, eid) = seed_granted(&conn, "worker-1");
        update_exec(&conn, &eid, "eligibility_state = 'not_eligible_until_time'");
        eid
    };
    match backend.claim_execution(claim_args(eid, "worker-1")).await {
        Err(EngineError::Contention(ContentionKind::ExecutionNotLeaseable)) => {}
        other => panic!("expected ExecutionNotLeaseable, got {other:?}"),
    }
}

#[tokio::test]
#[parallel(process)]
async fn live_or_interrupted_attempts_block_the_claim() {
    for (attempt_state, expect_conflict) in
        [("running_attempt", true), ("attempt_interrupted", false)]
    {
        let backend = fresh_backend("claim-attempt-state").await;
        let eid = {
            let conn = backend.connection_for_test();
            let (_, eid) = seed_granted(&conn, "worker-1");
            update_exec(&conn, &eid, &format!("attempt_state = '{attempt_state}'"));
            eid
        };
        let result = backend.claim_execution(claim_args(eid, "worker-1")).await;
        if expect_conflict {
            assert!(
                matches!(
                    result,
                    Err(EngineError::Conflict(ConflictKind::ActiveAttemptExists))
                ),
                "{result:?}"
            );
        } else {
            assert!(
                matches!(
                    result,
                    Err(EngineError::Contention(
                        ContentionKind::UseClaimResumedExecution
                    ))
                ),
                "{result:?}"
            );
        }
    }
}

#[tokio::test]
#[parallel(process)]
async fn a_rejected_claim_writes_nothing() {
    let backend = fresh_backend("claim-rejected").await;
    let (_, eid) = seed_granted(&backend.connection_for_test(), "someone-else");
    let error = rejected_without_writes(
        &backend,
        backend.claim_execution(claim_args(eid, "worker-1")),
    )
    .await;
    assert!(
        matches!(
            error,
            EngineError::Contention(ContentionKind::InvalidClaimGrant)
        ),
        "{error:?}"
    );
    assert!(
        snapshot(&backend.connection_for_test())
            .iter()
            .any(|row| row.starts_with("ff_claim_grant:")),
        "the grant survives"
    );
}

#[tokio::test]
#[parallel(process)]
async fn a_claim_writes_attempt_exec_row_and_lease_event() {
    let backend = fresh_backend("claim-writes").await;
    let (exec_uuid, eid) = seed_granted(&backend.connection_for_test(), "worker-1");
    let args = claim_args(eid.clone(), "worker-1");
    let (now, lease_id, attempt_id) = (args.now.0, args.lease_id.clone(), args.attempt_id.clone());
    let engine: Arc<dyn EngineBackend> = backend.clone();
    let claimed = claimed(engine.claim_execution(args).await.expect("claim"));
    assert_eq!(claimed.execution_id, eid);
    assert_eq!(claimed.lease_epoch, LeaseEpoch::new(1));
    assert_eq!(claimed.attempt_index, AttemptIndex::new(0));
    assert_eq!(claimed.lease_id, lease_id);
    assert_eq!(claimed.attempt_id, attempt_id);
    assert_eq!(claimed.lease_expires_at.0, now + 60_000);

    let conn = backend.connection_for_test();
    let exec: (String, String, String, String, String, i64, i64, String) = conn
        .query_row(
            "SELECT lifecycle_phase, ownership_state, eligibility_state, attempt_state, public_state, \
                 attempt_index, started_at_ms, raw_fields FROM ff_exec_core WHERE execution_id = ?1",
            [blob(exec_uuid)],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?)),
        )
        .unwrap();
    assert_eq!(
        (
            &*exec.0, &*exec.1, &*exec.2, &*exec.3, &*exec.4, exec.5, exec.6
        ),
        (
            "active",
            "leased",
            "not_applicable",
            "running_attempt",
            "active",
            0,
            now
        )
    );
    assert!(
        exec.7
            .contains(&format!("\"current_lease_id\":\"{lease_id}\"")),
        "{}",
        exec.7
    );
    assert!(
        exec.7.contains("\"current_worker_id\":\"worker-1\""),
        "{}",
        exec.7
    );

    let attempt: (String, String, i64, i64) = conn
        .query_row(
            "SELECT worker_id, worker_instance_id, lease_epoch, lease_expires_at_ms FROM ff_attempt \
             WHERE execution_id = ?1 AND attempt_index = 0",
            [blob(exec_uuid)],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(attempt, ("worker-1".into(), "wi-1".into(), 1, now + 60_000));

    let events: Vec<(String, String, Option<String>)> = conn
        .prepare("SELECT execution_id, event_type, lease_id FROM ff_lease_event ORDER BY event_id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        events,
        [(
            exec_uuid.to_string(),
            "acquired".to_string(),
            Some(lease_id.to_string())
        )]
    );
}

#[tokio::test]
#[parallel(process)]
async fn the_returned_handle_is_a_decodable_sqlite_handle() {
    let backend = fresh_backend("claim-handle").await;
    let (_, eid) = seed_granted(&backend.connection_for_test(), "worker-1");
    let args = claim_args(eid.clone(), "worker-1");
    let claimed = claimed(backend.claim_execution(args).await.expect("claim"));
    assert_eq!(claimed.handle.backend, BackendTag::Sqlite);
    assert_eq!(claimed.handle.kind, HandleKind::Fresh);
    let decoded = handle_codec::decode(&claimed.handle.opaque).expect("decodes");
    assert_eq!(decoded.tag, BackendTag::Sqlite);
    assert_eq!(decoded.payload.execution_id, eid);
    assert_eq!(decoded.payload.lease_epoch, claimed.lease_epoch);
    assert_eq!(decoded.payload.lease_id, claimed.lease_id);
    assert_eq!(decoded.payload.attempt_index, claimed.attempt_index);
}

#[tokio::test]
#[parallel(process)]
async fn a_zero_lease_ttl_is_invalid_input_and_writes_nothing() {
    let backend = fresh_backend("claim-zero-ttl").await;
    let (_, eid) = seed_granted(&backend.connection_for_test(), "worker-1");
    let mut args = claim_args(eid, "worker-1");
    args.lease_ttl_ms = 0;
    invalid_input_detail(rejected_without_writes(&backend, backend.claim_execution(args)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[parallel(process)]
async fn concurrent_claims_of_one_execution_have_one_winner() {
    let backend = fresh_backend("claim-race").await;
    let (_, eid) = seed_granted(&backend.connection_for_test(), "worker-1");
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let engine: Arc<dyn EngineBackend> = backend.clone();
            let args = claim_args(eid.clone(), "worker-1");
            tokio::spawn(async move { engine.claim_execution(args).await })
        })
        .collect();
    let mut winners = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => winners += 1,
            Err(EngineError::Contention(_)) => {}
            Err(other) => panic!("losers must see contention, got {other:?}"),
        }
    }
    assert_eq!(winners, 1);
}
