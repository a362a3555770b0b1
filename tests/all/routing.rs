//! Routing through the public `EngineBackend` API: the SDK's scheduler path
//! (`scan_eligible_executions` → `issue_claim_grant` → `claim_execution`, `block_route` on a
//! capability mismatch, `unblock_execution`) and the backend-routed `claim_for_worker`, composed
//! with the grants and capabilities `scheduling` already stores. Bad input is typed and writes
//! nothing.

use std::collections::BTreeSet;

use crate::support::*;
use ff_core::contracts::{
    BlockRouteArgs, BlockRouteOutcome, ClaimForWorkerArgs, ClaimForWorkerOutcome,
    CreateExecutionArgs, IssueClaimGrantArgs, ScanEligibleArgs,
};
use ff_core::engine_backend::EngineBackend;
use ff_core::engine_error::{EngineError, ValidationKind};
use ff_core::partition::{Partition, PartitionFamily, PartitionKey};
use ff_core::policy::{ExecutionPolicy, RoutingRequirements};
use ff_core::state::PublicState;
use ff_core::types::{ExecutionId, LaneId, TimestampMs, WorkerId, WorkerInstanceId};
use serial_test::parallel;
use uuid::Uuid;

const LANE: &str = "route";

fn execution_partition(index: u16) -> Partition {
    Partition {
        family: PartitionFamily::Execution,
        index,
    }
}

/// Create an execution on [`LANE`] in partition `index` with `priority` and the required
/// capabilities `caps`.
async fn create(
    backend: &ff_backend_sqlite_wasm::SqliteBackend,
    index: u16,
    priority: i32,
    caps: &[&str],
) -> ExecutionId {
    let execution_id = ExecutionId::parse(&format!("{{fp:{index}}}:{}", Uuid::new_v4())).unwrap();
    let mut args: CreateExecutionArgs = create_args(execution_id.clone(), LANE, now_ms());
    args.priority = priority;
    if !caps.is_empty() {
        args.policy = Some(ExecutionPolicy {
            routing_requirements: Some(RoutingRequirements {
                required_capabilities: caps.iter().map(|c| c.to_string()).collect(),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    backend.create_execution(args).await.expect("create");
    execution_id
}

async fn scan(
    backend: &ff_backend_sqlite_wasm::SqliteBackend,
    index: u16,
    limit: u32,
) -> Vec<ExecutionId> {
    backend
        .scan_eligible_executions(ScanEligibleArgs::new(
            LaneId::new(LANE),
            execution_partition(index),
            limit,
        ))
        .await
        .expect("scan")
}

fn grant(execution_id: &ExecutionId, worker: &str, caps: &[&str]) -> IssueClaimGrantArgs {
    IssueClaimGrantArgs::new(
        execution_id.clone(),
        LaneId::new(LANE),
        WorkerId::new(worker),
        WorkerInstanceId::new("wi-1"),
        partition_of(execution_id),
        caps.iter().map(|c| c.to_string()).collect(),
        5_000,
        TimestampMs::now(),
    )
}

fn block_args(execution_id: &ExecutionId, reason: &str) -> BlockRouteArgs {
    BlockRouteArgs::new(
        execution_id.clone(),
        LaneId::new(LANE),
        partition_of(execution_id),
        reason.to_owned(),
        "no connected worker satisfies required_capabilities".to_owned(),
        TimestampMs::now(),
    )
}

fn claim_for_worker_args(worker: &str, caps: &[&str]) -> ClaimForWorkerArgs {
    ClaimForWorkerArgs::new(
        LaneId::new(LANE),
        WorkerId::new(worker),
        WorkerInstanceId::new("wi-1"),
        caps.iter().map(|c| c.to_string()).collect::<BTreeSet<_>>(),
        5_000,
    )
}

async fn public_state(
    backend: &ff_backend_sqlite_wasm::SqliteBackend,
    execution_id: &ExecutionId,
) -> PublicState {
    backend
        .describe_execution(execution_id)
        .await
        .unwrap()
        .expect("exists")
        .public_state
}

#[tokio::test]
#[parallel(process)]
async fn scan_lists_a_partitions_eligible_executions_best_first() {
    let backend = fresh_backend("route-scan").await;
    let low = create(&backend, 1, 0, &[]).await;
    let high = create(&backend, 1, 5, &["gpu"]).await;
    let elsewhere = create(&backend, 2, 9, &[]).await;
    let before = snapshot(&backend.connection_for_test());
    assert_eq!(scan(&backend, 1, 10).await, vec![high.clone(), low.clone()]);
    assert_eq!(scan(&backend, 1, 1).await, vec![high]);
    assert_eq!(scan(&backend, 2, 10).await, vec![elsewhere]);
    assert!(scan(&backend, 1, 0).await.is_empty());
    assert!(scan(&backend, 3, 10).await.is_empty());
    assert_eq!(snapshot(&backend.connection_for_test()), before);
}

#[tokio::test]
#[parallel(process)]
async fn a_granted_execution_leaves_the_scan_and_is_claimed_with_its_grant() {
    let backend = fresh_backend("route-grant").await;
    let first = create(&backend, 0, 5, &[]).await;
    let second = create(&backend, 0, 0, &[]).await;
    backend
        .issue_claim_grant(grant(&first, "w", &[]))
        .await
        .unwrap();
    assert_eq!(scan(&backend, 0, 10).await, vec![second]);
    let mut args = claim_args(first.clone(), "w");
    args.lane_id = LaneId::new(LANE);
    claimed(backend.claim_execution(args).await.unwrap());
    assert_eq!(public_state(&backend, &first).await, PublicState::Active);
}

#[tokio::test]
#[parallel(process)]
async fn a_capability_mismatch_blocks_the_route_until_unblocked() {
    let backend = fresh_backend("route-block").await;
    let gpu = create(&backend, 0, 5, &["gpu"]).await;
    let plain = create(&backend, 0, 0, &[]).await;
    let refused = backend
        .issue_claim_grant(grant(&gpu, "cpu-worker", &["cpu"]))
        .await
        .unwrap_err();
    assert!(
        matches!(refused, EngineError::Validation { kind: ValidationKind::CapabilityMismatch, ref detail } if detail == "gpu"),
        "{refused:?}"
    );
    assert_eq!(
        backend
            .block_route(block_args(&gpu, "waiting_for_capable_worker"))
            .await
            .unwrap(),
        BlockRouteOutcome::Blocked {
            execution_id: gpu.clone()
        }
    );
    let conn = backend.connection_for_test();
    assert_eq!(
        exec_column(
            &conn,
            &gpu,
            "eligibility_state || '|' || blocking_reason || '|' || json_extract(raw_fields, '$.blocking_detail')"
        ),
        "blocked_by_route|waiting_for_capable_worker|no connected worker satisfies required_capabilities"
    );
    drop(conn);
    assert_eq!(public_state(&backend, &gpu).await, PublicState::RateLimited);
    // The scan moves on to the next execution instead of returning the blocked one forever.
    assert_eq!(scan(&backend, 0, 10).await, vec![plain]);
    // A second block of a blocked execution refreshes it.
    assert!(matches!(
        backend
            .block_route(block_args(&gpu, "waiting_for_capable_worker"))
            .await
            .unwrap(),
        BlockRouteOutcome::Blocked { .. }
    ));

    backend
        .unblock_execution(
            partition_of(&gpu),
            &LaneId::new(LANE),
            &gpu,
            "waiting_for_capable_worker",
            TimestampMs::now(),
        )
        .await
        .unwrap();
    assert_eq!(public_state(&backend, &gpu).await, PublicState::Waiting);
    assert_eq!(scan(&backend, 0, 1).await, vec![gpu]);
}

#[tokio::test]
#[parallel(process)]
async fn block_route_refuses_terminal_and_leased_executions_without_writing() {
    let backend = fresh_backend("route-block-state").await;
    let done = create(&backend, 0, 0, &[]).await;
    let leased = create(&backend, 0, 0, &[]).await;
    {
        let conn = backend.connection_for_test();
        update_exec(
            &conn,
            &done,
            "lifecycle_phase = 'terminal', eligibility_state = 'not_applicable', public_state = 'completed'",
        );
        update_exec(
            &conn,
            &leased,
            "lifecycle_phase = 'active', ownership_state = 'leased', eligibility_state = 'not_applicable'",
        );
    }
    let before = snapshot(&backend.connection_for_test());
    for (execution_id, message) in [
        (&done, "execution_not_active"),
        (&leased, "execution_not_eligible"),
    ] {
        assert_eq!(
            backend
                .block_route(block_args(execution_id, "waiting_for_capable_worker"))
                .await
                .unwrap(),
            BlockRouteOutcome::LuaRejected {
                message: message.to_owned()
            }
        );
    }
    assert_eq!(snapshot(&backend.connection_for_test()), before);
}

#[tokio::test]
#[parallel(process)]
async fn routing_bad_input_is_typed_and_writes_nothing() {
    let backend = fresh_backend("route-bad").await;
    let execution_id = create(&backend, 0, 0, &[]).await;

    let error = rejected_without_writes(
        &backend,
        backend.block_route(block_args(&execution_id, "because")),
    )
    .await;
    assert!(
        matches!(
            error,
            EngineError::Validation {
                kind: ValidationKind::InvalidBlockingReason,
                ..
            }
        ),
        "{error:?}"
    );
    let mut wrong_partition = block_args(&execution_id, "waiting_for_capable_worker");
    wrong_partition.partition = execution_partition(7);
    invalid_input_detail(
        rejected_without_writes(&backend, backend.block_route(wrong_partition)).await,
    );
    let mut wrong_lane = block_args(&execution_id, "waiting_for_capable_worker");
    wrong_lane.lane_id = LaneId::new("elsewhere");
    let detail = invalid_input_detail(
        rejected_without_writes(&backend, backend.block_route(wrong_lane)).await,
    );
    assert!(detail.contains("not the execution's lane"), "{detail}");
    let missing = ExecutionId::parse(&format!("{{fp:0}}:{}", Uuid::new_v4())).unwrap();
    assert_execution_not_found(
        rejected_without_writes(
            &backend,
            backend.block_route(block_args(&missing, "waiting_for_capable_worker")),
        )
        .await,
    );
    let error = rejected_without_writes(
        &backend,
        backend.unblock_execution(
            partition_of(&execution_id),
            &LaneId::new(LANE),
            &execution_id,
            "paused_by_operator",
            TimestampMs::now(),
        ),
    )
    .await;
    assert!(
        matches!(
            error,
            EngineError::Validation {
                kind: ValidationKind::InvalidBlockingReason,
                ..
            }
        ),
        "{error:?}"
    );
    let budget_partition = Partition {
        family: PartitionFamily::Budget,
        index: 0,
    };
    invalid_input_detail(
        rejected_without_writes(
            &backend,
            backend.scan_eligible_executions(ScanEligibleArgs::new(
                LaneId::new(LANE),
                budget_partition,
                1,
            )),
        )
        .await,
    );
    let mut zero_ttl = claim_for_worker_args("w", &[]);
    zero_ttl.grant_ttl_ms = 0;
    invalid_input_detail(
        rejected_without_writes(&backend, backend.claim_for_worker(zero_ttl)).await,
    );
    for token in ["", "a,b", "has space"] {
        let error = rejected_without_writes(
            &backend,
            backend.claim_for_worker(claim_for_worker_args("w", &[token])),
        )
        .await;
        assert!(
            matches!(
                error,
                EngineError::Validation {
                    kind: ValidationKind::InvalidCapabilities,
                    ..
                }
            ),
            "{token:?}: {error:?}"
        );
    }
}

#[tokio::test]
#[parallel(process)]
async fn claim_for_worker_grants_the_best_covered_execution_and_the_worker_claims_it() {
    let backend = fresh_backend("route-cfw").await;
    let gpu = create(&backend, 3, 9, &["gpu"]).await;
    let plain = create(&backend, 1, 1, &[]).await;

    let ClaimForWorkerOutcome::Granted(first) = backend
        .claim_for_worker(claim_for_worker_args("plain-worker", &[]))
        .await
        .unwrap()
    else {
        panic!("the plain execution is granted");
    };
    assert_eq!(first.execution_id, plain);
    assert_eq!(
        first.partition_key,
        PartitionKey::from(&partition_of(&plain))
    );
    assert_eq!(first.grant_key.len(), 32);

    // Nothing else this worker covers: no work, nothing written.
    let before = snapshot(&backend.connection_for_test());
    assert_eq!(
        backend
            .claim_for_worker(claim_for_worker_args("plain-worker", &[]))
            .await
            .unwrap(),
        ClaimForWorkerOutcome::NoWork
    );
    assert_eq!(snapshot(&backend.connection_for_test()), before);

    let ClaimForWorkerOutcome::Granted(second) = backend
        .claim_for_worker(claim_for_worker_args("gpu-worker", &["gpu"]))
        .await
        .unwrap()
    else {
        panic!("a gpu worker gets the gpu execution");
    };
    assert_eq!(second.execution_id, gpu);
    let mut args = claim_args(gpu.clone(), "gpu-worker");
    args.lane_id = LaneId::new(LANE);
    let lease = claimed(backend.claim_execution(args).await.unwrap());
    assert_eq!(lease.execution_id, gpu);
    // The grant belongs to its worker: another worker cannot consume the first grant.
    let mut thief = claim_args(plain.clone(), "thief");
    thief.lane_id = LaneId::new(LANE);
    assert!(backend.claim_execution(thief).await.is_err());
}
