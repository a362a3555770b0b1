//! Integration tests: scheduling through the public `EngineBackend` API — `create_execution`,
//! `issue_claim_grant` (then `claim_execution`), `issue_grant_and_claim` (upstream's
//! `typed_issue_grant_and_claim.rs`, adapted to our semantics), the lane scanner `claim`, and
//! `promote_delayed`.

use crate::support::*;
use ff_core::backend::{BackendTag, CapabilitySet, ClaimPolicy, Handle, HandleKind};
use ff_core::contracts::{
    CreateExecutionArgs, CreateExecutionResult, IssueClaimGrantOutcome, IssueGrantAndClaimArgs,
};
use ff_core::engine_backend::EngineBackend;
use ff_core::engine_error::{ContentionKind, EngineError, StateKind, ValidationKind};
use ff_core::handle_codec;
use ff_core::policy::{ExecutionPolicy, RoutingRequirements};
use ff_core::state::PublicState;
use ff_core::types::{
    AttemptIndex, ExecutionId, LaneId, LeaseEpoch, TimestampMs, WorkerId, WorkerInstanceId,
};
use serial_test::parallel;

/// `create_args` with these required capabilities.
fn create_with_caps(eid: ExecutionId, lane: &str, now: i64, caps: &[&str]) -> CreateExecutionArgs {
    let mut args = create_args(eid, lane, now);
    args.policy = Some(ExecutionPolicy {
        routing_requirements: Some(RoutingRequirements {
            required_capabilities: caps.iter().map(|c| c.to_string()).collect(),
            ..Default::default()
        }),
        ..Default::default()
    });
    args
}

fn policy(worker: &str, ttl: u32) -> ClaimPolicy {
    ClaimPolicy::new(
        WorkerId::new(worker),
        WorkerInstanceId::new(format!("{worker}-instance")),
        ttl,
        None,
    )
}

/// The execution a scanner handle leases.
fn handle_execution(handle: &Handle) -> ExecutionId {
    assert_eq!(
        (handle.backend, handle.kind),
        (BackendTag::Sqlite, HandleKind::Fresh)
    );
    handle_codec::decode(&handle.opaque)
        .expect("decodes")
        .payload
        .execution_id
}

/// One text query on the backend's database.
fn one(backend: &ff_backend_sqlite_wasm::SqliteBackend, sql: &str, eid: &ExecutionId) -> String {
    let value = backend
        .connection_for_test()
        .query_row(sql, [blob(uuid_of(eid))], |row| {
            row.get::<_, rusqlite::types::Value>(0)
        })
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    match value {
        rusqlite::types::Value::Null => "NULL".into(),
        rusqlite::types::Value::Integer(i) => i.to_string(),
        rusqlite::types::Value::Real(r) => r.to_string(),
        rusqlite::types::Value::Text(t) => t,
        rusqlite::types::Value::Blob(b) => format!("{b:?}"),
    }
}

/// How many claim grants the backend's database holds.
fn grant_count(backend: &ff_backend_sqlite_wasm::SqliteBackend) -> i64 {
    count_rows(&backend.connection_for_test(), "ff_claim_grant")
}

// ── create_execution ──────────────────────────────────────────────────────────────────────

#[tokio::test]
#[parallel(process)]
async fn create_writes_the_row_capabilities_and_lane_then_a_second_create_is_duplicate() {
    let backend = fresh_backend("sched-create").await;
    let eid = new_execution_id();
    let now = now_ms();
    let mut args = create_with_caps(eid.clone(), "default", now, &["capB", "capA", ""]);
    args.priority = 4;
    args.idempotency_key = Some("idem".into());

    let created = backend.create_execution(args.clone()).await.unwrap();
    assert_eq!(
        created,
        CreateExecutionResult::Created {
            execution_id: eid.clone(),
            public_state: PublicState::Waiting
        }
    );
    assert_eq!(
        one(
            &backend,
            "SELECT partition_key || '|' || lane_id || '|' || attempt_index || '|' || lifecycle_phase || '|' || \
             ownership_state || '|' || eligibility_state || '|' || public_state || '|' || attempt_state || '|' || \
             blocking_reason || '|' || priority || '|' || created_at_ms || '|' || CAST(payload AS TEXT) || '|' || \
             COALESCE(flow_id, 'NULL') || '|' || json_extract(policy, '$.routing_requirements.required_capabilities') \
             FROM ff_exec_core WHERE execution_id = ?1",
            &eid
        ),
        format!(
            "0|default|0|runnable|unowned|eligible_now|waiting|pending_first_attempt|waiting_for_worker|4|{now}|input|\
             NULL|[\"\",\"capA\",\"capB\"]"
        )
    );
    assert_eq!(
        one(
            &backend,
            "SELECT raw_fields FROM ff_exec_core WHERE execution_id = ?1",
            &eid
        ),
        format!(
            "{{\"creator_identity\":\"tests\",\"execution_kind\":\"kind1\",\"idempotency_key\":\"idem\",\
             \"last_mutation_at\":\"{now}\",\"namespace\":\"ns1\",\"payload_encoding\":\"json\",\
             \"tags\":{{\"cairn.instance_id\":\"inst-1\"}},\"total_attempt_count\":\"0\"}}"
        )
    );
    assert_eq!(
        one(
            &backend,
            "SELECT group_concat(capability, ',') FROM (SELECT capability FROM ff_execution_capabilities \
             WHERE execution_id = ?1 ORDER BY capability)",
            &eid
        ),
        "capA,capB"
    );
    {
        let conn = backend.connection_for_test();
        let lanes: String = conn
            .query_row(
                "SELECT group_concat(lane_id || '|' || registered_at_ms || '|' || registered_by) FROM ff_lane_registry",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(lanes, format!("default|{now}|create_execution"));
        assert_eq!(outbox_rows(&conn), 0);
    }

    let before = snapshot(&backend.connection_for_test());
    let mut again = args;
    again.priority = 99;
    again.now = TimestampMs::from_millis(now + 5);
    assert_eq!(
        backend.create_execution(again).await.unwrap(),
        CreateExecutionResult::Duplicate {
            execution_id: eid.clone()
        }
    );
    assert_eq!(
        snapshot(&backend.connection_for_test()),
        before,
        "a duplicate changes nothing"
    );
}

#[tokio::test]
#[parallel(process)]
async fn create_refuses_bad_lanes_and_oversized_payloads_and_writes_nothing() {
    let backend = fresh_backend("sched-create-invalid").await;
    for lane in [String::new(), "x".repeat(65), "bad\nlane".into()] {
        let error = rejected_without_writes(
            &backend,
            backend.create_execution(create_args(new_execution_id(), &lane, now_ms())),
        )
        .await;
        assert!(
            matches!(
                &error,
                EngineError::Validation {
                    kind: ValidationKind::InvalidInput,
                    ..
                }
            ),
            "{lane:?}: {error:?}"
        );
    }
    let mut big = create_args(new_execution_id(), "default", now_ms());
    big.input_payload = vec![0; (8 << 20) + 1];
    let error = rejected_without_writes(&backend, backend.create_execution(big)).await;
    assert!(
        matches!(
            &error,
            EngineError::Validation {
                kind: ValidationKind::PayloadTooLarge,
                ..
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
#[parallel(process)]
async fn a_future_delay_creates_a_delayed_execution_that_nothing_claims_until_promoted() {
    let backend = fresh_backend("sched-delay").await;
    let eid = new_execution_id();
    let now = now_ms();
    let until = now + 3_600_000;
    let mut args = create_args(eid.clone(), "delayed-lane", now);
    args.delay_until = Some(TimestampMs::from_millis(until));
    assert_eq!(
        backend.create_execution(args).await.unwrap(),
        CreateExecutionResult::Created {
            execution_id: eid.clone(),
            public_state: PublicState::Delayed
        }
    );
    assert_eq!(
        one(
            &backend,
            "SELECT eligibility_state || '|' || public_state || '|' || blocking_reason || '|' || \
             json_extract(raw_fields, '$.delay_until') FROM ff_exec_core WHERE execution_id = ?1",
            &eid
        ),
        format!("not_eligible_until_time|delayed|waiting_for_delay|{until}")
    );

    // Not claimable yet: not by the scanner, an operator, or a grant.
    let lane = LaneId::new("delayed-lane");
    assert_eq!(
        backend
            .claim(&lane, &CapabilitySet::default(), policy("w", 30_000))
            .await
            .unwrap(),
        None
    );
    let result = backend
        .issue_grant_and_claim(IssueGrantAndClaimArgs::new(
            eid.clone(),
            lane.clone(),
            30_000,
        ))
        .await;
    assert!(
        matches!(
            result,
            Err(EngineError::Contention(
                ContentionKind::ExecutionNotLeaseable
            ))
        ),
        "{result:?}"
    );
    let mut grant = grant_args(eid.clone(), "worker-1", now);
    grant.lane_id = lane.clone();
    let result = backend.issue_claim_grant(grant.clone()).await;
    assert!(
        matches!(
            result,
            Err(EngineError::Contention(
                ContentionKind::ExecutionNotEligible
            ))
        ),
        "{result:?}"
    );

    // Promoting before the delay passes changes nothing; at the delay it becomes waiting.
    let before = snapshot(&backend.connection_for_test());
    backend
        .promote_delayed(
            partition_of(&eid),
            &lane,
            &eid,
            TimestampMs::from_millis(until - 1),
        )
        .await
        .unwrap();
    assert_eq!(snapshot(&backend.connection_for_test()), before);
    backend
        .promote_delayed(
            partition_of(&eid),
            &lane,
            &eid,
            TimestampMs::from_millis(until),
        )
        .await
        .unwrap();
    assert_eq!(
        one(
            &backend,
            "SELECT eligibility_state || '|' || public_state || '|' || blocking_reason || '|' || \
             json_extract(raw_fields, '$.last_mutation_at') FROM ff_exec_core WHERE execution_id = ?1",
            &eid
        ),
        format!("eligible_now|waiting|waiting_for_worker|{until}")
    );
    let handle = backend
        .claim(&lane, &CapabilitySet::default(), policy("w", 30_000))
        .await
        .unwrap()
        .expect("claimable");
    assert_eq!(handle_execution(&handle), eid);
}

#[tokio::test]
#[parallel(process)]
async fn a_delay_that_has_passed_is_claimable_without_a_promoter() {
    let backend = fresh_backend("sched-delay-due").await;
    let eid = new_execution_id();
    let now = now_ms();
    // Created in the past, delayed until a moment that has passed by now.
    let mut args = create_args(eid.clone(), "due-lane", now - 10_000);
    args.delay_until = Some(TimestampMs::from_millis(now - 5_000));
    assert!(matches!(
        backend.create_execution(args).await.unwrap(),
        CreateExecutionResult::Created {
            public_state: PublicState::Delayed,
            ..
        }
    ));
    let handle = backend
        .claim(
            &LaneId::new("due-lane"),
            &CapabilitySet::default(),
            policy("w", 30_000),
        )
        .await
        .unwrap()
        .expect("a due delay is claimable");
    assert_eq!(handle_execution(&handle), eid);
    assert_eq!(
        one(
            &backend,
            "SELECT lifecycle_phase || '|' || public_state FROM ff_exec_core WHERE execution_id = ?1",
            &eid
        ),
        "active|active"
    );
}

// ── issue_claim_grant ─────────────────────────────────────────────────────────────────────

#[tokio::test]
#[parallel(process)]
async fn a_grant_from_issue_claim_grant_is_consumed_by_claim_execution() {
    let backend = fresh_backend("sched-grant-claim").await;
    let eid = new_execution_id();
    let now = now_ms();
    backend
        .create_execution(create_with_caps(eid.clone(), "default", now, &["gpu"]))
        .await
        .unwrap();

    let mut grant = grant_args(eid.clone(), "worker-1", now);
    grant.worker_capabilities = ["gpu".to_string(), "cpu".to_string()].into_iter().collect();
    grant.capability_hash = Some("h1".into());
    assert_eq!(
        backend.issue_claim_grant(grant.clone()).await.unwrap(),
        IssueClaimGrantOutcome::Granted {
            execution_id: eid.clone()
        }
    );
    assert_eq!(
        one(
            &backend,
            "SELECT kind || '|' || worker_id || '|' || worker_instance_id || '|' || lane_id || '|' || capability_hash || \
             '|' || worker_capabilities || '|' || grant_ttl_ms || '|' || issued_at_ms || '|' || expires_at_ms \
             FROM ff_claim_grant WHERE execution_id = ?1",
            &eid
        ),
        format!(
            "claim|worker-1|wi-1|default|h1|[\"cpu\",\"gpu\"]|60000|{now}|{}",
            now + 60_000
        )
    );

    // A second grant while this one lives is refused, and changes nothing.
    let error = rejected_without_writes(
        &backend,
        backend.issue_claim_grant(grant_args(eid.clone(), "worker-2", now)),
    )
    .await;
    assert!(
        matches!(error, EngineError::State(StateKind::GrantAlreadyExists)),
        "{error:?}"
    );

    let claimed = claimed(
        backend
            .claim_execution(claim_args_at(eid.clone(), "worker-1", 0, now_ms()))
            .await
            .unwrap(),
    );
    assert_eq!(
        (claimed.lease_epoch, claimed.attempt_index),
        (LeaseEpoch::new(1), AttemptIndex::new(0))
    );
    assert_eq!(grant_count(&backend), 0);
    assert_eq!(
        one(
            &backend,
            "SELECT lifecycle_phase || '|' || ownership_state || '|' || public_state FROM ff_exec_core WHERE execution_id = ?1",
            &eid
        ),
        "active|leased|active"
    );
}

#[tokio::test]
#[parallel(process)]
async fn a_worker_lacking_required_capabilities_gets_no_grant() {
    let backend = fresh_backend("sched-grant-caps").await;
    let eid = new_execution_id();
    let now = now_ms();
    backend
        .create_execution(create_with_caps(
            eid.clone(),
            "default",
            now,
            &["ssd", "gpu", "avx"],
        ))
        .await
        .unwrap();

    let mut grant = grant_args(eid.clone(), "worker-1", now);
    grant.worker_capabilities = ["gpu".to_string()].into_iter().collect();
    match rejected_without_writes(&backend, backend.issue_claim_grant(grant.clone())).await {
        EngineError::Validation {
            kind: ValidationKind::CapabilityMismatch,
            detail,
        } => assert_eq!(detail, "avx,ssd"),
        other => panic!("expected CapabilityMismatch, got {other:?}"),
    }

    grant.worker_capabilities = ["avx", "gpu", "ssd", "extra"]
        .iter()
        .map(|c| c.to_string())
        .collect();
    backend.issue_claim_grant(grant).await.unwrap();
    assert_eq!(grant_count(&backend), 1);
}

#[tokio::test]
#[parallel(process)]
async fn issue_claim_grant_errors_write_nothing() {
    let backend = fresh_backend("sched-grant-errors").await;
    let now = now_ms();
    let error = rejected_without_writes(
        &backend,
        backend.issue_claim_grant(grant_args(new_execution_id(), "worker-1", now)),
    )
    .await;
    assert_execution_not_found(error);

    let eid = new_execution_id();
    let mut zero = grant_args(eid, "worker-1", now);
    zero.grant_ttl_ms = 0;
    invalid_input_detail(rejected_without_writes(&backend, backend.issue_claim_grant(zero)).await);
}

// ── issue_grant_and_claim (upstream's typed_issue_grant_and_claim.rs, adapted) ────────────

#[tokio::test]
#[parallel(process)]
async fn issue_grant_and_claim_happy_path() {
    let backend = fresh_backend("sched-igc-happy").await;
    let (_, eid) = seed_granted(&backend.connection_for_test(), "someone");
    let outcome = backend
        .issue_grant_and_claim(IssueGrantAndClaimArgs::new(
            eid.clone(),
            LaneId::new("IGNORED"),
            30_000,
        ))
        .await
        .unwrap();
    assert_eq!(
        (outcome.lease_epoch, outcome.attempt_index),
        (LeaseEpoch::new(1), AttemptIndex::new(0))
    );
    // Upstream: public_state 'running', attempt_index 1 ("next"). Ours: 'active', 0 (current).
    assert_eq!(
        one(
            &backend,
            "SELECT lifecycle_phase || '|' || ownership_state || '|' || public_state || '|' || attempt_state || '|' || \
             attempt_index || '|' || json_extract(raw_fields, '$.current_lease_id') || '|' || \
             json_extract(raw_fields, '$.current_worker_id') FROM ff_exec_core WHERE execution_id = ?1",
            &eid
        ),
        format!(
            "active|leased|active|running_attempt|0|{}|operator",
            outcome.lease_id
        )
    );
    // The operator claim supersedes the seeded grant; no transient grant remains.
    assert_eq!(grant_count(&backend), 0);
    assert_eq!(
        one(
            &backend,
            "SELECT worker_id || '|' || worker_instance_id || '|' || lease_epoch || '|' || \
             json_extract(raw_fields, '$.lease_id') FROM ff_attempt WHERE execution_id = ?1 AND attempt_index = 0",
            &eid
        ),
        format!("operator|operator|1|{}", outcome.lease_id)
    );
    let conn = backend.connection_for_test();
    let events: String = conn
        .query_row(
            "SELECT group_concat(event_type || '|' || lease_id) FROM ff_lease_event",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(events, format!("acquired|{}", outcome.lease_id));
}

#[tokio::test]
#[parallel(process)]
async fn issue_grant_and_claim_works_on_a_created_execution() {
    // Upstream refused its own created rows ('submitted' / 'pending'); ours are claimable.
    let backend = fresh_backend("sched-igc-created").await;
    let eid = new_execution_id();
    backend
        .create_execution(create_args(eid.clone(), "default", now_ms()))
        .await
        .unwrap();
    let outcome = backend
        .issue_grant_and_claim(IssueGrantAndClaimArgs::new(
            eid.clone(),
            LaneId::new("default"),
            30_000,
        ))
        .await
        .unwrap();
    assert_eq!(
        (outcome.lease_epoch, outcome.attempt_index),
        (LeaseEpoch::new(1), AttemptIndex::new(0))
    );
    // A second operator claim sees an active execution.
    let (_, lease_epoch, lifecycle_phase, _) = not_active_payload(
        backend
            .issue_grant_and_claim(IssueGrantAndClaimArgs::new(
                eid.clone(),
                LaneId::new("default"),
                30_000,
            ))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (lifecycle_phase.as_str(), lease_epoch.as_str()),
        ("active", "1")
    );
}

#[tokio::test]
#[parallel(process)]
async fn issue_grant_and_claim_rejects_already_leased() {
    let backend = fresh_backend("sched-igc-leased").await;
    let (_, eid) = seed_runnable_as(&backend.connection_for_test(), "ownership_state = 'leased'");
    let error = rejected_without_writes(
        &backend,
        backend.issue_grant_and_claim(IssueGrantAndClaimArgs::new(
            eid,
            LaneId::new("default"),
            30_000,
        )),
    )
    .await;
    assert!(
        matches!(
            error,
            EngineError::Contention(ContentionKind::LeaseConflict)
        ),
        "{error:?}"
    );
    assert_eq!(grant_count(&backend), 0);
}

#[tokio::test]
#[parallel(process)]
async fn issue_grant_and_claim_rejects_missing_execution() {
    let backend = fresh_backend("sched-igc-missing").await;
    let result = backend
        .issue_grant_and_claim(IssueGrantAndClaimArgs::new(
            new_execution_id(),
            LaneId::new("default"),
            30_000,
        ))
        .await;
    assert_execution_not_found(result.unwrap_err());
    assert_eq!(grant_count(&backend), 0);
}

#[tokio::test]
#[parallel(process)]
async fn issue_grant_and_claim_no_dangling_grant_on_reject() {
    let backend = fresh_backend("sched-igc-reject").await;
    let eid = {
        let conn = backend.connection_for_test();
        let (_, eid) = seed_granted(&conn, "worker-1");
        update_exec(&conn, &eid, "lifecycle_phase = 'terminal'");
        eid
    };
    let error = rejected_without_writes(
        &backend,
        backend.issue_grant_and_claim(IssueGrantAndClaimArgs::new(
            eid,
            LaneId::new("default"),
            30_000,
        )),
    )
    .await;
    assert!(
        matches!(
            &error,
            EngineError::Contention(ContentionKind::ExecutionNotActive { lifecycle_phase, terminal_outcome, .. })
                if lifecycle_phase == "terminal" && terminal_outcome == "none"
        ),
        "{error:?}"
    );
    // The seeded grant is still there (the delete rolled back with the rejection).
    assert_eq!(grant_count(&backend), 1);
}

#[tokio::test]
#[parallel(process)]
async fn issue_grant_and_claim_zero_lease_is_invalid_input() {
    let backend = fresh_backend("sched-igc-zero").await;
    let eid = seed_runnable(&backend.connection_for_test()).1;
    invalid_input_detail(
        rejected_without_writes(
            &backend,
            backend.issue_grant_and_claim(IssueGrantAndClaimArgs::new(
                eid,
                LaneId::new("default"),
                0,
            )),
        )
        .await,
    );
}

// ── the lane scanner `claim` ─────────────────────────────────────────────────────────────

#[tokio::test]
#[parallel(process)]
async fn the_scanner_claims_by_priority_then_age_and_then_finds_nothing() {
    let backend = fresh_backend("sched-scan-order").await;
    let now = now_ms();
    let mut ids = Vec::new();
    for (priority, age) in [(1, 0), (5, 10), (3, 0), (5, 20)] {
        let eid = new_execution_id();
        let mut args = create_args(eid.clone(), "scan", now - age);
        args.priority = priority;
        backend.create_execution(args).await.unwrap();
        ids.push(eid);
    }
    // Another lane's execution is never picked.
    backend
        .create_execution(create_args(new_execution_id(), "elsewhere", now - 100))
        .await
        .unwrap();

    let lane = LaneId::new("scan");
    let mut order = Vec::new();
    while let Some(handle) = backend
        .claim(&lane, &CapabilitySet::default(), policy("scanner", 30_000))
        .await
        .unwrap()
    {
        let payload = handle_codec::decode(&handle.opaque).unwrap().payload;
        assert_eq!(
            (payload.lease_epoch, payload.attempt_index),
            (LeaseEpoch::new(1), AttemptIndex::new(0))
        );
        assert_eq!(payload.lane_id, lane);
        assert_eq!(
            payload.worker_instance_id,
            WorkerInstanceId::new("scanner-instance")
        );
        assert_eq!(
            one(
                &backend,
                "SELECT worker_id || '|' || json_extract(raw_fields, '$.lease_id') FROM ff_attempt WHERE execution_id = ?1",
                &payload.execution_id
            ),
            format!("scanner|{}", payload.lease_id)
        );
        order.push(payload.execution_id);
    }
    // priority 5 older (age 20) first, then priority 5 (age 10), then 3, then 1.
    assert_eq!(
        order,
        [
            ids[3].clone(),
            ids[1].clone(),
            ids[2].clone(),
            ids[0].clone()
        ]
    );
}

#[tokio::test]
#[parallel(process)]
async fn the_scanner_walks_past_executions_the_worker_cannot_run() {
    let backend = fresh_backend("sched-scan-caps").await;
    let now = now_ms();
    let mut needs_gpu = Vec::new();
    // More capability mismatches ahead of the match than upstream's 16-row batch.
    for _ in 0..20 {
        let eid = new_execution_id();
        let mut args = create_with_caps(eid.clone(), "caps", now, &["gpu"]);
        args.priority = 10;
        backend.create_execution(args).await.unwrap();
        needs_gpu.push(eid);
    }
    let plain = new_execution_id();
    backend
        .create_execution(create_with_caps(plain.clone(), "caps", now, &["cpu"]))
        .await
        .unwrap();

    let lane = LaneId::new("caps");
    let cpu_only = CapabilitySet::new(["cpu"]);
    let handle = backend
        .claim(&lane, &cpu_only, policy("cpu-worker", 30_000))
        .await
        .unwrap()
        .expect("a match");
    assert_eq!(handle_execution(&handle), plain);
    assert_eq!(
        backend
            .claim(&lane, &cpu_only, policy("cpu-worker", 30_000))
            .await
            .unwrap(),
        None
    );

    let handle = backend
        .claim(
            &lane,
            &CapabilitySet::new(["gpu", "cpu"]),
            policy("gpu-worker", 30_000),
        )
        .await
        .unwrap()
        .expect("a gpu execution");
    assert!(needs_gpu.contains(&handle_execution(&handle)));
}

#[tokio::test]
#[parallel(process)]
async fn the_scanner_on_an_empty_lane_returns_none_and_writes_nothing() {
    let backend = fresh_backend("sched-scan-empty").await;
    backend
        .create_execution(create_args(new_execution_id(), "busy", now_ms()))
        .await
        .unwrap();
    let before = snapshot(&backend.connection_for_test());
    assert_eq!(
        backend
            .claim(
                &LaneId::new("idle"),
                &CapabilitySet::default(),
                policy("w", 30_000)
            )
            .await
            .unwrap(),
        None
    );
    assert_eq!(snapshot(&backend.connection_for_test()), before);
}

#[tokio::test]
#[parallel(process)]
async fn the_scanner_refuses_a_zero_lease_ttl() {
    let backend = fresh_backend("sched-scan-zero").await;
    backend
        .create_execution(create_args(new_execution_id(), "default", now_ms()))
        .await
        .unwrap();
    invalid_input_detail(
        rejected_without_writes(
            &backend,
            backend.claim(
                &LaneId::new("default"),
                &CapabilitySet::default(),
                policy("w", 0),
            ),
        )
        .await,
    );
}

#[tokio::test]
#[parallel(process)]
async fn the_scanner_finds_executions_on_every_partition() {
    let backend = fresh_backend("sched-scan-partitions").await;
    let eid = ExecutionId::parse(&format!("{{fp:9}}:{}", uuid::Uuid::new_v4())).unwrap();
    let mut args = create_args(eid.clone(), "default", now_ms());
    args.partition_id = 9;
    backend.create_execution(args).await.unwrap();
    let handle = backend
        .claim(
            &LaneId::new("default"),
            &CapabilitySet::default(),
            policy("w", 30_000),
        )
        .await
        .unwrap()
        .expect("partition 9 is scanned");
    assert_eq!(handle_execution(&handle), eid);
    assert_eq!(
        one(
            &backend,
            "SELECT partition_key FROM ff_attempt WHERE execution_id = ?1",
            &eid
        ),
        "9"
    );
}
