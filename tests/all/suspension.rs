//! Suspension, waitpoints and signals through the public `EngineBackend` API: upstream's tests
//! (`producer_suspend.rs`, `typed_deliver_approval_signal.rs`, `wave9_waitpoints.rs`; set-up
//! changed only: our backend, executions created and claimed through the API), the whole path
//! suspend → signal → resumable → claim resumed → observe → complete, the decisions of
//! docs/semantics.md ("Suspension"), bad input (typed errors, nothing written) and the keystore
//! a guest cannot read.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use crate::support::*;
use ff_backend_sqlite_wasm::SqliteBackend;
use ff_core::backend::{CapabilitySet, ClaimPolicy, Handle};
use ff_core::contracts::{
    ClaimResumedExecutionArgs, ClaimResumedExecutionResult, DeliverApprovalSignalArgs,
    DeliverSignalArgs, DeliverSignalResult, IdempotencyKey, ListPendingWaitpointsArgs,
    ResumeCondition, ResumePolicy, RotateWaitpointHmacSecretAllArgs,
    RotateWaitpointHmacSecretOutcome, SeedOutcome, SeedWaitpointHmacSecretArgs, SignalMatcher,
    SuspendArgs, SuspendOutcome, SuspensionReasonCode, TimeoutBehavior, WaitpointBinding,
};
use ff_core::engine_backend::EngineBackend;
use ff_core::engine_error::{ConflictKind, ContentionKind, EngineError, StateKind, ValidationKind};
use ff_core::partition::{Partition, PartitionFamily, PartitionKey};
use ff_core::state::PublicState;
use ff_core::types::{
    AttemptIndex, ExecutionId, LaneId, LeaseId, SignalId, SuspensionId, TimestampMs, WaitpointId,
    WaitpointToken, WorkerId, WorkerInstanceId,
};
use serial_test::parallel;
use uuid::Uuid;

pub(crate) const KID: &str = "kid-test";

pub(crate) fn secret_hex() -> String {
    "cafebabe".repeat(8)
}

/// A fresh backend whose keystore holds [`KID`] (upstream's set-up).
pub(crate) async fn seeded_backend() -> Arc<SqliteBackend> {
    let backend = fresh_backend("suspension").await;
    backend
        .seed_waitpoint_hmac_secret(SeedWaitpointHmacSecretArgs::new(KID, secret_hex()))
        .await
        .expect("seed kid");
    backend
}

pub(crate) fn new_exec_id() -> ExecutionId {
    ExecutionId::parse(&format!("{{fp:0}}:{}", Uuid::new_v4())).expect("exec id")
}

pub(crate) fn policy(worker: &str) -> ClaimPolicy {
    ClaimPolicy::new(
        WorkerId::new(worker),
        WorkerInstanceId::new(format!("{worker}-i1")),
        30_000,
        None,
    )
}

/// Create an execution on lane `default` and claim it through the lane scanner (upstream
/// promotes it with raw SQL first; ours is claimable once created).
async fn create_and_claim(backend: &Arc<SqliteBackend>) -> (ExecutionId, Handle) {
    let exec_id = new_exec_id();
    backend
        .create_execution(create_args(exec_id.clone(), "default", now_ms()))
        .await
        .expect("create");
    let handle = backend
        .claim(
            &LaneId::new("default"),
            &CapabilitySet::default(),
            policy("w1"),
        )
        .await
        .expect("claim call")
        .expect("claim yielded handle");
    (exec_id, handle)
}

pub(crate) fn suspend_args_on(wp_key: &str, matcher: SignalMatcher) -> SuspendArgs {
    SuspendArgs::new(
        SuspensionId::new(),
        WaitpointBinding::Fresh {
            waitpoint_id: WaitpointId::new(),
            waitpoint_key: wp_key.to_owned(),
        },
        ResumeCondition::Single {
            waitpoint_key: wp_key.to_owned(),
            matcher,
        },
        ResumePolicy::normal(),
        SuspensionReasonCode::WaitingForSignal,
        TimestampMs::from_millis(now_ms()),
    )
}

pub(crate) fn suspend_args_single(wp_key: &str) -> SuspendArgs {
    suspend_args_on(wp_key, SignalMatcher::Wildcard)
}

pub(crate) fn signal_args(
    exec_id: &ExecutionId,
    waitpoint_id: &WaitpointId,
    token: &str,
    name: &str,
) -> DeliverSignalArgs {
    DeliverSignalArgs {
        execution_id: exec_id.clone(),
        waitpoint_id: waitpoint_id.clone(),
        signal_id: SignalId::new(),
        signal_name: name.into(),
        signal_category: "external".into(),
        source_type: "operator".into(),
        source_identity: "op-1".into(),
        payload: None,
        payload_encoding: None,
        correlation_id: None,
        idempotency_key: None,
        target_scope: "execution".into(),
        created_at: None,
        dedup_ttl_ms: None,
        resume_delay_ms: None,
        max_signals_per_execution: None,
        signal_maxlen: None,
        waitpoint_token: WaitpointToken::from(token.to_owned()),
        now: TimestampMs::from_millis(now_ms()),
    }
}

fn resumed_args(exec_id: &ExecutionId, worker: &str) -> ClaimResumedExecutionArgs {
    ClaimResumedExecutionArgs {
        execution_id: exec_id.clone(),
        worker_id: WorkerId::new(worker),
        worker_instance_id: WorkerInstanceId::new(format!("{worker}-i1")),
        lane_id: LaneId::new("default"),
        lease_id: LeaseId::new(),
        lease_ttl_ms: 30_000,
        current_attempt_index: AttemptIndex::new(0),
        remaining_attempt_timeout_ms: None,
        now: TimestampMs::from_millis(now_ms()),
    }
}

fn partition_zero() -> PartitionKey {
    PartitionKey::from(&Partition {
        family: PartitionFamily::Flow,
        index: 0,
    })
}

// ── Ported: producer_suspend.rs ──────────────────────────────────────────────────────────────

#[tokio::test]
#[parallel(process)]
async fn seed_waitpoint_hmac_secret_round_trip() {
    let b = fresh_backend("suspension").await;
    let outcome = b
        .seed_waitpoint_hmac_secret(SeedWaitpointHmacSecretArgs::new(KID, secret_hex()))
        .await
        .expect("seed");
    assert!(matches!(outcome, SeedOutcome::Seeded { .. }));
    let outcome2 = b
        .seed_waitpoint_hmac_secret(SeedWaitpointHmacSecretArgs::new(KID, secret_hex()))
        .await
        .expect("seed replay");
    match outcome2 {
        SeedOutcome::AlreadySeeded { same_secret, .. } => assert!(same_secret),
        _ => panic!("expected AlreadySeeded"),
    }
}

#[tokio::test]
#[parallel(process)]
async fn rotate_waitpoint_hmac_secret_all_basic() {
    let b = seeded_backend().await;
    let new_secret = "deadbeef".repeat(8);
    let res = b
        .rotate_waitpoint_hmac_secret_all(RotateWaitpointHmacSecretAllArgs::new(
            "kid-rotated",
            new_secret.as_str(),
            60_000,
        ))
        .await
        .expect("rotate");
    assert_eq!(res.entries.len(), 1);
    let entry = &res.entries[0];
    assert_eq!(entry.partition, 0);
    match entry.result.as_ref().expect("rotate outcome ok") {
        RotateWaitpointHmacSecretOutcome::Rotated {
            previous_kid,
            new_kid,
            ..
        } => {
            assert_eq!(previous_kid.as_deref(), Some(KID));
            assert_eq!(new_kid, "kid-rotated");
        }
        _ => panic!("expected Rotated"),
    }
    let res2 = b
        .rotate_waitpoint_hmac_secret_all(RotateWaitpointHmacSecretAllArgs::new(
            "kid-rotated",
            new_secret.as_str(),
            60_000,
        ))
        .await
        .expect("rotate replay");
    let outcome2 = res2.entries[0].result.as_ref().expect("ok");
    assert!(matches!(
        outcome2,
        RotateWaitpointHmacSecretOutcome::Noop { .. }
    ));
}

#[tokio::test]
#[parallel(process)]
async fn suspend_happy_path() {
    let b = seeded_backend().await;
    let (_exec_id, handle) = create_and_claim(&b).await;
    let outcome = b
        .suspend(&handle, suspend_args_single("wpk:a"))
        .await
        .expect("suspend");
    match outcome {
        SuspendOutcome::Suspended { details, handle: _ } => {
            assert_eq!(details.waitpoint_key, "wpk:a");
            assert!(!details.waitpoint_token.as_str().is_empty());
        }
        _ => panic!("expected Suspended"),
    }
}

#[tokio::test]
#[parallel(process)]
async fn suspend_replayed_idempotent() {
    let b = seeded_backend().await;
    let (_exec_id, handle) = create_and_claim(&b).await;
    let args = suspend_args_single("wpk:a").with_idempotency_key(IdempotencyKey::new("op-123"));
    let outcome1 = b.suspend(&handle, args.clone()).await.expect("suspend 1");
    let outcome2 = b.suspend(&handle, args).await.expect("suspend 2 replay");
    assert_eq!(
        outcome1.details().suspension_id,
        outcome2.details().suspension_id
    );
    assert_eq!(
        outcome1.details().waitpoint_token.as_str(),
        outcome2.details().waitpoint_token.as_str()
    );
}

#[tokio::test]
#[parallel(process)]
async fn suspend_fence_mismatch_returns_contention() {
    let b = seeded_backend().await;
    let (_exec_id, handle) = create_and_claim(&b).await;
    b.suspend(&handle, suspend_args_single("wpk:a"))
        .await
        .expect("first suspend");
    let err = b
        .suspend(&handle, suspend_args_single("wpk:b"))
        .await
        .expect_err("stale fence");
    assert!(
        matches!(err, EngineError::Contention(ContentionKind::LeaseConflict)),
        "got {err:?}"
    );
}

#[tokio::test]
#[parallel(process)]
async fn create_waitpoint_hmac_token_verifies() {
    let b = seeded_backend().await;
    let (_exec_id, handle) = create_and_claim(&b).await;
    let pending = b
        .create_waitpoint(&handle, "wpk:c", Duration::from_secs(60))
        .await
        .expect("create_waitpoint");
    let tok = pending.hmac_token.as_str();
    assert!(tok.starts_with(&format!("{KID}:")), "tok = {tok}");
    assert!(tok.len() > KID.len() + 1);
}

#[tokio::test]
#[parallel(process)]
async fn deliver_signal_satisfies_waitpoint_then_claim_resumed() {
    let b = seeded_backend().await;
    let (exec_id, handle) = create_and_claim(&b).await;
    let outcome = b
        .suspend(&handle, suspend_args_single("wpk:sat"))
        .await
        .expect("suspend");
    let details = outcome.details().clone();
    let r = b
        .deliver_signal(signal_args(
            &exec_id,
            &details.waitpoint_id,
            details.waitpoint_token.as_str(),
            "ready",
        ))
        .await
        .expect("deliver");
    match r {
        DeliverSignalResult::Accepted { effect, .. } => {
            assert_eq!(effect, "resume_condition_satisfied")
        }
        _ => panic!("expected Accepted"),
    }
    let cr = b
        .claim_resumed_execution(resumed_args(&exec_id, "w1"))
        .await
        .expect("claim resumed");
    match cr {
        ClaimResumedExecutionResult::Claimed(claimed) => assert_eq!(claimed.execution_id, exec_id),
    }
}

#[tokio::test]
#[parallel(process)]
async fn deliver_signal_appended_without_satisfaction() {
    let b = seeded_backend().await;
    let (exec_id, handle) = create_and_claim(&b).await;
    let args = suspend_args_on("wpk:strict", SignalMatcher::ByName("ready".into()));
    let outcome = b.suspend(&handle, args).await.expect("suspend");
    let details = outcome.details().clone();
    let mut sig = signal_args(
        &exec_id,
        &details.waitpoint_id,
        details.waitpoint_token.as_str(),
        "other",
    );
    sig.source_type = "worker".into();
    sig.source_identity = "w2".into();
    match b.deliver_signal(sig).await.expect("deliver") {
        DeliverSignalResult::Accepted { effect, .. } => assert_eq!(effect, "appended_to_waitpoint"),
        _ => panic!("expected Accepted"),
    }
    let SuspendOutcome::Suspended {
        handle: susp_handle,
        ..
    } = outcome
    else {
        panic!("need Suspended")
    };
    let sigs = b.observe_signals(&susp_handle).await.expect("observe");
    assert_eq!(sigs.len(), 1);
    assert_eq!(sigs[0].signal_name, "other");
}

// ── Ported: typed_deliver_approval_signal.rs ─────────────────────────────────────────────────

async fn suspend_on(b: &Arc<SqliteBackend>, handle: &Handle, key: &str, name: &str) -> WaitpointId {
    let args = suspend_args_on(key, SignalMatcher::ByName(name.to_owned()));
    let outcome = b.suspend(handle, args).await.expect("suspend");
    outcome.details().waitpoint_id.clone()
}

fn approval_args(
    exec_id: &ExecutionId,
    lane: &LaneId,
    wp_id: &WaitpointId,
    signal_name: &str,
    suffix: &str,
) -> DeliverApprovalSignalArgs {
    DeliverApprovalSignalArgs::new(
        exec_id.clone(),
        lane.clone(),
        wp_id.clone(),
        signal_name,
        suffix,
        60_000,
        None,
        None,
    )
}

#[tokio::test]
#[parallel(process)]
async fn approved_path_resumes_execution() {
    let b = seeded_backend().await;
    let lane = LaneId::new("default");
    let (exec_id, handle) = create_and_claim(&b).await;
    let wp_id = suspend_on(&b, &handle, "wpk:approval:ok", "approved").await;
    let eb: Arc<dyn EngineBackend> = b.clone();
    match eb
        .deliver_approval_signal(approval_args(&exec_id, &lane, &wp_id, "approved", "dec-1"))
        .await
        .expect("deliver_approval_signal ok")
    {
        DeliverSignalResult::Accepted { effect, .. } => {
            assert_eq!(effect, "resume_condition_satisfied")
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
#[parallel(process)]
async fn rejected_path_appends_without_resume() {
    let b = seeded_backend().await;
    let lane = LaneId::new("default");
    let (exec_id, handle) = create_and_claim(&b).await;
    let wp_id = suspend_on(&b, &handle, "wpk:approval:reject", "approved").await;
    let eb: Arc<dyn EngineBackend> = b.clone();
    match eb
        .deliver_approval_signal(approval_args(&exec_id, &lane, &wp_id, "rejected", "dec-1"))
        .await
        .expect("deliver_approval_signal ok")
    {
        DeliverSignalResult::Accepted { effect, .. } => assert_eq!(effect, "appended_to_waitpoint"),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
#[parallel(process)]
async fn missing_waitpoint_returns_not_found() {
    let b = seeded_backend().await;
    let lane = LaneId::new("default");
    let (exec_id, _handle) = create_and_claim(&b).await;
    let bogus = WaitpointId::new();
    let eb: Arc<dyn EngineBackend> = b.clone();
    match eb
        .deliver_approval_signal(approval_args(&exec_id, &lane, &bogus, "approved", "dec-1"))
        .await
        .unwrap_err()
    {
        EngineError::NotFound { entity } => assert_eq!(entity, "waitpoint"),
        other => panic!("expected NotFound(waitpoint), got {other:?}"),
    }
}

#[tokio::test]
#[parallel(process)]
async fn lane_mismatch_is_validation_error() {
    let b = seeded_backend().await;
    let (exec_id, handle) = create_and_claim(&b).await;
    let wp_id = suspend_on(&b, &handle, "wpk:approval:lane", "approved").await;
    let wrong_lane = LaneId::new("not-default");
    let eb: Arc<dyn EngineBackend> = b.clone();
    match eb
        .deliver_approval_signal(approval_args(
            &exec_id,
            &wrong_lane,
            &wp_id,
            "approved",
            "dec-1",
        ))
        .await
        .unwrap_err()
    {
        EngineError::Validation { kind, detail } => {
            assert_eq!(kind, ValidationKind::InvalidInput);
            assert!(
                detail.starts_with("lane_mismatch:"),
                "unexpected detail: {detail}"
            );
        }
        other => panic!("expected Validation(InvalidInput), got {other:?}"),
    }
}

// ── Ported: wave9_waitpoints.rs ──────────────────────────────────────────────────────────────

async fn suspend_n(
    b: &Arc<SqliteBackend>,
    handle: &Handle,
    n: usize,
) -> Vec<(WaitpointId, String)> {
    let bindings: Vec<WaitpointBinding> = (0..n)
        .map(|i| WaitpointBinding::Fresh {
            waitpoint_id: WaitpointId::new(),
            waitpoint_key: format!("wpk:{i}"),
        })
        .collect();
    let mut args = suspend_args_single("wpk:0");
    args.waitpoints = bindings.clone();
    b.suspend(handle, args).await.expect("suspend");
    bindings
        .into_iter()
        .map(|binding| match binding {
            WaitpointBinding::Fresh {
                waitpoint_id,
                waitpoint_key,
            } => (waitpoint_id, waitpoint_key),
            _ => unreachable!(),
        })
        .collect()
}

#[tokio::test]
#[parallel(process)]
async fn list_pending_waitpoints_empty_for_no_suspension() {
    let b = seeded_backend().await;
    let (exec_id, _h) = create_and_claim(&b).await;
    let r = b
        .list_pending_waitpoints(ListPendingWaitpointsArgs::new(exec_id.clone()))
        .await
        .expect("ok");
    assert!(r.entries.is_empty());
    assert!(r.next_cursor.is_none());
}

#[tokio::test]
#[parallel(process)]
async fn list_pending_waitpoints_happy_path_returns_all_fields() {
    let b = seeded_backend().await;
    let (exec_id, handle) = create_and_claim(&b).await;
    let seeded = suspend_n(&b, &handle, 3).await;
    let r = b
        .list_pending_waitpoints(ListPendingWaitpointsArgs::new(exec_id.clone()))
        .await
        .expect("ok");
    assert_eq!(r.entries.len(), 3);
    assert!(r.next_cursor.is_none());
    for entry in &r.entries {
        assert_eq!(entry.execution_id, exec_id);
        assert_eq!(entry.state, "active", "suspend lands state='active'");
        assert!(!entry.waitpoint_key.is_empty());
        assert!(entry.activated_at.is_some());
        assert!(!entry.token_kid.is_empty(), "token_kid populated");
        assert_eq!(entry.token_fingerprint.len(), 16);
    }
    let returned: HashSet<_> = r.entries.iter().map(|e| e.waitpoint_id.clone()).collect();
    for (wp_id, _) in &seeded {
        assert!(returned.contains(wp_id), "wp {wp_id:?} not in result");
    }
}

#[tokio::test]
#[parallel(process)]
async fn list_pending_waitpoints_cursor_pagination() {
    let b = seeded_backend().await;
    let (exec_id, handle) = create_and_claim(&b).await;
    suspend_n(&b, &handle, 5).await;
    let page1 = b
        .list_pending_waitpoints(ListPendingWaitpointsArgs::new(exec_id.clone()).with_limit(2))
        .await
        .expect("page 1");
    assert_eq!(page1.entries.len(), 2);
    let cursor = page1.next_cursor.clone().expect("more rows remain");
    let page2 = b
        .list_pending_waitpoints(
            ListPendingWaitpointsArgs::new(exec_id.clone())
                .with_after(cursor)
                .with_limit(2),
        )
        .await
        .expect("page 2");
    assert_eq!(page2.entries.len(), 2);
    let cursor2 = page2.next_cursor.clone().expect("one more row remains");
    let page3 = b
        .list_pending_waitpoints(
            ListPendingWaitpointsArgs::new(exec_id.clone())
                .with_after(cursor2)
                .with_limit(2),
        )
        .await
        .expect("page 3");
    assert_eq!(page3.entries.len(), 1);
    assert!(page3.next_cursor.is_none());
    let set: HashSet<_> = page1
        .entries
        .iter()
        .chain(&page2.entries)
        .chain(&page3.entries)
        .map(|e| e.waitpoint_id.clone())
        .collect();
    assert_eq!(set.len(), 5, "5 distinct waitpoints across 3 pages");
}

#[tokio::test]
#[parallel(process)]
async fn list_pending_waitpoints_missing_execution_returns_not_found() {
    let b = seeded_backend().await;
    let err = b
        .list_pending_waitpoints(ListPendingWaitpointsArgs::new(new_exec_id()))
        .await
        .expect_err("missing exec is NotFound");
    assert!(matches!(
        err,
        EngineError::NotFound {
            entity: "execution"
        }
    ));
}

#[tokio::test]
#[parallel(process)]
async fn list_pending_waitpoints_filters_closed_state() {
    let b = seeded_backend().await;
    let (exec_id, handle) = create_and_claim(&b).await;
    let seeded = suspend_n(&b, &handle, 2).await;
    let target: Uuid = seeded[0].0.0;
    b.connection_for_test()
        .execute(
            "UPDATE ff_waitpoint_pending SET state='closed' WHERE waitpoint_id=?1",
            [blob(target)],
        )
        .unwrap();
    let r = b
        .list_pending_waitpoints(ListPendingWaitpointsArgs::new(exec_id.clone()))
        .await
        .expect("ok");
    assert_eq!(r.entries.len(), 1, "closed row filtered");
    assert_ne!(r.entries[0].waitpoint_id.0, target);
}

#[tokio::test]
#[parallel(process)]
async fn read_waitpoint_token_returns_some_for_existing_and_none_for_missing() {
    let b = seeded_backend().await;
    let (_exec_id, handle) = create_and_claim(&b).await;
    let seeded = suspend_n(&b, &handle, 1).await;
    let token = b
        .read_waitpoint_token(partition_zero(), &seeded[0].0)
        .await
        .expect("read_waitpoint_token ok")
        .expect("waitpoint row exists → token populated");
    assert!(!token.is_empty() && token.contains(':'), "{token:?}");
    let missing = b
        .read_waitpoint_token(partition_zero(), &WaitpointId::new())
        .await
        .expect("read_waitpoint_token ok for missing");
    assert!(missing.is_none());
}

// ── The whole path ──────────────────────────────────────────────────────────────────────────

#[tokio::test]
#[parallel(process)]
async fn suspend_signal_resume_observe_complete_through_the_public_api() {
    let b = seeded_backend().await;
    let (exec_id, handle) = create_and_claim(&b).await;

    // A pending waitpoint for the approval, then a suspension on it and a fresh one.
    let approval = b
        .create_waitpoint(&handle, "wpk:approval", Duration::from_secs(600))
        .await
        .expect("create_waitpoint");
    let data_wp = WaitpointId::new();
    let mut args = SuspendArgs::new(
        SuspensionId::new(),
        WaitpointBinding::use_pending(&approval),
        ResumeCondition::all_of_waitpoints(["wpk:approval".to_owned(), "wpk:data".to_owned()]),
        ResumePolicy::normal(),
        SuspensionReasonCode::WaitingForApproval,
        TimestampMs::from_millis(now_ms()),
    );
    args = args.with_waitpoint(WaitpointBinding::Fresh {
        waitpoint_id: data_wp.clone(),
        waitpoint_key: "wpk:data".into(),
    });
    let outcome = b.suspend(&handle, args).await.expect("suspend");
    let details = outcome.details().clone();
    assert_eq!(details.waitpoint_id, approval.waitpoint_id);
    assert_eq!(details.additional_waitpoints.len(), 1);
    assert_eq!(
        b.read_execution_state(&exec_id).await.unwrap(),
        Some(PublicState::Suspended)
    );

    // The data signal alone does not satisfy AllOf.
    let data_token = details.additional_waitpoints[0]
        .waitpoint_token
        .as_str()
        .to_owned();
    let mut data = signal_args(&exec_id, &data_wp, &data_token, "data-ready");
    data.payload = Some(b"{\"rows\":3}".to_vec());
    match b.deliver_signal(data).await.unwrap() {
        DeliverSignalResult::Accepted { effect, .. } => assert_eq!(effect, "appended_to_waitpoint"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        b.read_execution_state(&exec_id).await.unwrap(),
        Some(PublicState::Suspended)
    );

    // The approval satisfies it: resumable.
    let lane = LaneId::new("default");
    match b
        .deliver_approval_signal(approval_args(
            &exec_id,
            &lane,
            &approval.waitpoint_id,
            "approved",
            "1",
        ))
        .await
        .unwrap()
    {
        DeliverSignalResult::Accepted { effect, .. } => {
            assert_eq!(effect, "resume_condition_satisfied")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        b.read_execution_state(&exec_id).await.unwrap(),
        Some(PublicState::Resumable)
    );

    // The grant-based claim sends the worker to claim_resumed_execution; the same attempt
    // continues there.
    b.issue_claim_grant(grant_args(exec_id.clone(), "w2", now_ms()))
        .await
        .expect("grant");
    let refused = b
        .claim_execution(claim_args(exec_id.clone(), "w2"))
        .await
        .expect_err("resumable goes through claim_resumed_execution");
    assert!(
        matches!(
            refused,
            EngineError::Contention(ContentionKind::UseClaimResumedExecution)
        ),
        "{refused:?}"
    );
    let ClaimResumedExecutionResult::Claimed(resumed) = b
        .claim_resumed_execution(resumed_args(&exec_id, "w2"))
        .await
        .expect("claim resumed");
    assert_eq!(resumed.attempt_index, AttemptIndex::new(0));
    assert_eq!(
        b.read_current_attempt_index(&exec_id).await.unwrap(),
        AttemptIndex::new(0)
    );
    let again = b
        .claim_resumed_execution(resumed_args(&exec_id, "w3"))
        .await
        .expect_err("only once");
    assert!(
        matches!(
            again,
            EngineError::Contention(ContentionKind::NotAResumedExecution)
        ),
        "{again:?}"
    );

    // The resumed worker sees both signals, with the payload.
    let signals = b.observe_signals(&resumed.handle).await.expect("observe");
    let mut names: Vec<&str> = signals.iter().map(|s| s.signal_name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["approved", "data-ready"]);
    let data = signals
        .iter()
        .find(|s| s.signal_name == "data-ready")
        .unwrap();
    assert_eq!(data.payload.as_deref(), Some(&b"{\"rows\":3}"[..]));
    assert_eq!(
        signals
            .iter()
            .find(|s| s.signal_name == "approved")
            .unwrap()
            .signal_category,
        "approval"
    );

    // Completion closes the suspension.
    b.complete(&resumed.handle, Some(b"done".to_vec()))
        .await
        .expect("complete");
    assert!(b.observe_signals(&resumed.handle).await.unwrap().is_empty());
    let conn = b.connection_for_test();
    let left: i64 = conn
        .query_row(
            "SELECT (SELECT count(*) FROM ff_suspension_current) + (SELECT count(*) FROM ff_waitpoint_pending)",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(left, 0);
    let outcomes: String = conn
        .query_row(
            "SELECT group_concat(outcome, ',') FROM (SELECT outcome FROM ff_completion_event ORDER BY event_id)",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(outcomes, "resumable,success");
    let signal_events: i64 = conn
        .query_row("SELECT count(*) FROM ff_signal_event", [], |row| row.get(0))
        .unwrap();
    assert_eq!(signal_events, 2);
}

#[tokio::test]
#[parallel(process)]
async fn suspend_by_triple_uses_the_current_attempt_and_fences_all_three() {
    let b = seeded_backend().await;
    let exec_id = new_exec_id();
    let claim = create_and_lease(&*b, now_ms(), claim_args(exec_id.clone(), "worker-1")).await;
    let mut stale = fence_of(&claim);
    stale.lease_id = LeaseId::new();
    let err = rejected_without_writes(
        &b,
        b.suspend_by_triple(exec_id.clone(), stale, suspend_args_single("wpk:t")),
    )
    .await;
    assert!(
        matches!(err, EngineError::Contention(ContentionKind::LeaseConflict)),
        "{err:?}"
    );
    let outcome = b
        .suspend_by_triple(
            exec_id.clone(),
            fence_of(&claim),
            suspend_args_single("wpk:t"),
        )
        .await
        .expect("suspend_by_triple");
    assert!(matches!(outcome, SuspendOutcome::Suspended { .. }));
    let err = rejected_without_writes(
        &b,
        b.suspend_by_triple(
            new_exec_id(),
            fence_of(&claim),
            suspend_args_single("wpk:t"),
        ),
    )
    .await;
    assert_execution_not_found(err);
}

// ── Decisions (docs/semantics.md, "Suspension") ─────────────────────────────────────────────

#[tokio::test]
#[parallel(process)]
async fn a_signal_cannot_revive_a_cancelled_execution() {
    let b = seeded_backend().await;
    let (exec_id, handle) = create_and_claim(&b).await;
    let details = b
        .suspend(&handle, suspend_args_single("wpk:c"))
        .await
        .unwrap()
        .details()
        .clone();
    b.cancel_execution(cancel_args(
        &exec_id,
        ff_core::types::CancelSource::OperatorOverride,
        None,
    ))
    .await
    .expect("cancel");
    let err = rejected_without_writes(
        &b,
        b.deliver_signal(signal_args(
            &exec_id,
            &details.waitpoint_id,
            details.waitpoint_token.as_str(),
            "ready",
        )),
    )
    .await;
    assert!(
        matches!(
            err,
            EngineError::NotFound {
                entity: "waitpoint"
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        b.read_execution_state(&exec_id).await.unwrap(),
        Some(PublicState::Cancelled)
    );
}

#[tokio::test]
#[parallel(process)]
async fn suspend_replay_keys_are_scoped_to_their_execution() {
    let b = seeded_backend().await;
    let (first, first_handle) = create_and_claim(&b).await;
    let (second, second_handle) = create_and_claim(&b).await;
    let key = IdempotencyKey::new("shared-key");
    let one = b
        .suspend(
            &first_handle,
            suspend_args_single("wpk:a").with_idempotency_key(key.clone()),
        )
        .await
        .unwrap();
    let two = b
        .suspend(
            &second_handle,
            suspend_args_single("wpk:a").with_idempotency_key(key),
        )
        .await
        .unwrap();
    assert_ne!(one.details().suspension_id, two.details().suspension_id);
    for exec_id in [&first, &second] {
        assert_eq!(
            b.read_execution_state(exec_id).await.unwrap(),
            Some(PublicState::Suspended)
        );
    }
}

#[tokio::test]
#[parallel(process)]
async fn retired_kids_verify_only_during_their_grace_period() {
    let b = seeded_backend().await;
    let (exec_id, handle) = create_and_claim(&b).await;
    let details = b
        .suspend(&handle, suspend_args_single("wpk:g"))
        .await
        .unwrap()
        .details()
        .clone();
    b.rotate_waitpoint_hmac_secret_all(RotateWaitpointHmacSecretAllArgs::new(
        "kid-next",
        "deadbeef".repeat(8).as_str(),
        60_000,
    ))
    .await
    .unwrap();
    let token = details.waitpoint_token.as_str().to_owned();
    // After the grace period the old kid's token is refused...
    let mut late = signal_args(&exec_id, &details.waitpoint_id, &token, "x");
    late.now = TimestampMs::from_millis(now_ms() + 120_000);
    let err = rejected_without_writes(&b, b.deliver_signal(late)).await;
    match err {
        EngineError::Validation {
            kind: ValidationKind::InvalidToken,
            detail,
        } => assert!(detail.starts_with("token_expired"), "{detail}"),
        other => panic!("{other:?}"),
    }
    // ...and within it still accepted.
    let ok = b
        .deliver_signal(signal_args(&exec_id, &details.waitpoint_id, &token, "x"))
        .await
        .unwrap();
    assert!(matches!(ok, DeliverSignalResult::Accepted { .. }));
    // New tokens are signed by the new kid.
    let (_, other) = create_and_claim(&b).await;
    let pending = b
        .create_waitpoint(&other, "wpk:n", Duration::from_secs(60))
        .await
        .unwrap();
    assert!(pending.hmac_token.as_str().starts_with("kid-next:"));
}

#[tokio::test]
#[parallel(process)]
async fn signal_idempotency_keys_return_duplicate() {
    let b = seeded_backend().await;
    let (exec_id, handle) = create_and_claim(&b).await;
    let details = b
        .suspend(
            &handle,
            suspend_args_on("wpk:d", SignalMatcher::ByName("never".into())),
        )
        .await
        .unwrap()
        .details()
        .clone();
    let mut first = signal_args(
        &exec_id,
        &details.waitpoint_id,
        details.waitpoint_token.as_str(),
        "x",
    );
    first.idempotency_key = Some("once".into());
    let DeliverSignalResult::Accepted { signal_id, .. } =
        b.deliver_signal(first.clone()).await.unwrap()
    else {
        panic!("accepted")
    };
    let mut again = first;
    again.signal_id = SignalId::new();
    let before = snapshot(&b.connection_for_test());
    assert_eq!(
        b.deliver_signal(again).await.unwrap(),
        DeliverSignalResult::Duplicate {
            existing_signal_id: signal_id
        }
    );
    assert_eq!(snapshot(&b.connection_for_test()), before);
}

#[tokio::test]
#[parallel(process)]
async fn handle_delay_and_cancel_are_fenced_lease_holder_operations() {
    let b = seeded_backend().await;
    let (exec_id, handle) = create_and_claim(&b).await;
    let until = TimestampMs::from_millis(now_ms() + 60_000);
    b.delay(&handle, until).await.expect("delay");
    assert_eq!(
        b.read_execution_state(&exec_id).await.unwrap(),
        Some(PublicState::Delayed)
    );
    let err = rejected_without_writes(&b, b.delay(&handle, until)).await;
    assert!(
        matches!(err, EngineError::Contention(ContentionKind::LeaseConflict)),
        "{err:?}"
    );
    let err = rejected_without_writes(&b, b.cancel(&handle, "stale")).await;
    assert!(
        matches!(err, EngineError::Contention(ContentionKind::LeaseConflict)),
        "{err:?}"
    );

    let (exec_id, handle) = create_and_claim(&b).await;
    b.cancel(&handle, "worker gives up").await.expect("cancel");
    assert_eq!(
        b.read_execution_state(&exec_id).await.unwrap(),
        Some(PublicState::Cancelled)
    );
}

#[tokio::test]
#[parallel(process)]
async fn scanner_hooks_expire_close_and_list() {
    let b = seeded_backend().await;
    let (exec_id, handle) = create_and_claim(&b).await;
    let partition = partition_of(&exec_id);
    let now = now_ms();
    let args = suspend_args_single("wpk:e").with_timeout(
        TimestampMs::from_millis(now + 1_000),
        TimeoutBehavior::Expire,
    );
    let details = b.suspend(&handle, args).await.unwrap().details().clone();

    let page = b.list_suspended(partition_zero(), None, 10).await.unwrap();
    assert_eq!(page.entries.len(), 1);
    assert_eq!(page.entries[0].execution_id, exec_id);
    assert_eq!(page.entries[0].reason, "waiting_for_signal");

    // Not due yet: nothing happens.
    b.expire_suspension(partition, &exec_id, TimestampMs::from_millis(now))
        .await
        .unwrap();
    assert_eq!(
        b.read_execution_state(&exec_id).await.unwrap(),
        Some(PublicState::Suspended)
    );
    b.close_waitpoint(
        partition,
        &exec_id,
        &details.waitpoint_id.to_string(),
        TimestampMs::from_millis(now),
    )
    .await
    .unwrap();
    let err = rejected_without_writes(
        &b,
        b.deliver_signal(signal_args(
            &exec_id,
            &details.waitpoint_id,
            details.waitpoint_token.as_str(),
            "x",
        )),
    )
    .await;
    assert!(
        matches!(err, EngineError::State(StateKind::WaitpointClosed)),
        "{err:?}"
    );
    b.expire_suspension(partition, &exec_id, TimestampMs::from_millis(now + 1_000))
        .await
        .unwrap();
    assert_eq!(
        b.read_execution_state(&exec_id).await.unwrap(),
        Some(PublicState::Expired)
    );
    assert!(
        b.list_suspended(partition_zero(), None, 10)
            .await
            .unwrap()
            .entries
            .is_empty()
    );
}

// ── Bad input ────────────────────────────────────────────────────────────────────────────────

#[tokio::test]
#[parallel(process)]
async fn bad_suspend_arguments_are_typed_errors_and_write_nothing() {
    let b = seeded_backend().await;
    let (_exec_id, handle) = create_and_claim(&b).await;
    let mut empty = suspend_args_single("wpk:a");
    empty.waitpoints.clear();
    let mut empty_key = suspend_args_single("");
    empty_key.resume_condition = ResumeCondition::OperatorOnly;
    let past = suspend_args_single("wpk:a").with_timeout(
        TimestampMs::from_millis(now_ms() - 3_600_000),
        TimeoutBehavior::Fail,
    );
    let mut zero_count = suspend_args_single("wpk:a");
    zero_count.resume_condition =
        ResumeCondition::Composite(ff_core::contracts::CompositeBody::count(
            0,
            ff_core::contracts::CountKind::DistinctSignals,
            None,
            vec!["wpk:a".into()],
        ));
    for (args, fragment) in [
        (empty, "at least one waitpoint binding"),
        (empty_key, "waitpoint_binding_empty_key"),
        (past, "timeout_at_in_past"),
        (zero_count, "count_n_zero"),
    ] {
        let err = rejected_without_writes(&b, b.suspend(&handle, args)).await;
        assert!(invalid_input_detail(err).contains(fragment), "{fragment}");
    }
    // A handle of another backend.
    let foreign = Handle::new(
        ff_core::backend::BackendTag::Valkey,
        ff_core::backend::HandleKind::Fresh,
        handle.opaque.clone(),
    );
    let err = rejected_without_writes(&b, b.suspend(&foreign, suspend_args_single("wpk:a"))).await;
    assert!(matches!(
        err,
        EngineError::Validation {
            kind: ValidationKind::HandleFromOtherBackend,
            ..
        }
    ));
    // No kid seeded.
    let empty_keystore = fresh_backend("suspension").await;
    let (_, handle) = create_and_claim(&empty_keystore).await;
    let err = rejected_without_writes(
        &empty_keystore,
        empty_keystore.suspend(&handle, suspend_args_single("wpk:a")),
    )
    .await;
    assert!(invalid_input_detail(err).contains("seed a kid before suspend"));
    let err = rejected_without_writes(
        &empty_keystore,
        empty_keystore.create_waitpoint(&handle, "wpk:a", Duration::from_secs(5)),
    )
    .await;
    assert!(invalid_input_detail(err).contains("seed a kid before create_waitpoint"));
}

#[tokio::test]
#[parallel(process)]
async fn bad_waitpoint_and_signal_arguments_are_typed_errors_and_write_nothing() {
    let b = seeded_backend().await;
    let (exec_id, handle) = create_and_claim(&b).await;
    let err =
        rejected_without_writes(&b, b.create_waitpoint(&handle, "", Duration::from_secs(5))).await;
    assert!(matches!(
        err,
        EngineError::Validation {
            kind: ValidationKind::InvalidWaitpointKey,
            ..
        }
    ));
    let err = rejected_without_writes(&b, b.create_waitpoint(&handle, "k", Duration::ZERO)).await;
    assert!(invalid_input_detail(err).contains("expires_in must be positive"));

    let details = b
        .suspend(&handle, suspend_args_single("wpk:s"))
        .await
        .unwrap()
        .details()
        .clone();
    let token = details.waitpoint_token.as_str().to_owned();
    let wp = details.waitpoint_id.clone();
    let (kid, digest) = token.split_once(':').unwrap();
    let flipped = format!(
        "{kid}:{}{}",
        if digest.starts_with('0') { '1' } else { '0' },
        &digest[1..]
    );
    for (bad, fragment) in [
        ("no-colon-token".to_owned(), "token malformed"),
        (format!("kid-other:{digest}"), "token kid mismatch"),
        (flipped, "HMAC signature mismatch"),
        (format!("{kid}:zz"), "token malformed"),
    ] {
        let err =
            rejected_without_writes(&b, b.deliver_signal(signal_args(&exec_id, &wp, &bad, "x")))
                .await;
        assert!(invalid_input_detail(err).contains(fragment), "{fragment}");
    }
    // An empty name, zero signal limit, an unknown waitpoint, a foreign execution.
    let err =
        rejected_without_writes(&b, b.deliver_signal(signal_args(&exec_id, &wp, &token, ""))).await;
    assert!(invalid_input_detail(err).contains("signal_name"));
    let mut zero = signal_args(&exec_id, &wp, &token, "x");
    zero.max_signals_per_execution = Some(0);
    let err = rejected_without_writes(&b, b.deliver_signal(zero)).await;
    assert!(invalid_input_detail(err).contains("max_signals_per_execution"));
    let err = rejected_without_writes(
        &b,
        b.deliver_signal(signal_args(&exec_id, &WaitpointId::new(), &token, "x")),
    )
    .await;
    assert!(matches!(
        err,
        EngineError::NotFound {
            entity: "waitpoint"
        }
    ));
    let err = rejected_without_writes(
        &b,
        b.deliver_signal(signal_args(&new_exec_id(), &wp, &token, "x")),
    )
    .await;
    assert!(invalid_input_detail(err).contains("different execution"));
    let err = rejected_without_writes(
        &b,
        b.deliver_approval_signal(approval_args(
            &new_exec_id(),
            &LaneId::new("default"),
            &wp,
            "ok",
            "1",
        )),
    )
    .await;
    assert_execution_not_found(err);
    // Keystore input.
    for (kid, secret, fragment) in [
        ("", secret_hex(), "kid must be non-empty"),
        ("a:b", secret_hex(), "must not contain ':'"),
        ("k2", "abc".to_owned(), "64 hex characters"),
        ("k2", "zz".repeat(32), "64 hex characters"),
    ] {
        let err = rejected_without_writes(
            &b,
            b.seed_waitpoint_hmac_secret(SeedWaitpointHmacSecretArgs::new(kid, secret.clone())),
        )
        .await;
        assert!(invalid_input_detail(err).contains(fragment), "{fragment}");
    }
    let err = rejected_without_writes(
        &b,
        b.seed_waitpoint_hmac_secret(SeedWaitpointHmacSecretArgs::new(
            "other",
            "deadbeef".repeat(8),
        )),
    )
    .await;
    assert!(invalid_input_detail(err).contains("already active"));
    let conflict = b
        .rotate_waitpoint_hmac_secret_all(RotateWaitpointHmacSecretAllArgs::new(
            KID,
            "deadbeef".repeat(8).as_str(),
            0,
        ))
        .await
        .unwrap();
    assert!(matches!(
        conflict.entries[0].result,
        Err(EngineError::Conflict(ConflictKind::RotationConflict(_)))
    ));
    // Reads of unknown executions.
    let err = b
        .observe_signals(&Handle::new(
            ff_core::backend::BackendTag::Sqlite,
            ff_core::backend::HandleKind::Fresh,
            ff_core::handle_codec::encode(
                ff_core::backend::BackendTag::Sqlite,
                &ff_core::handle_codec::HandlePayload::new(
                    new_exec_id(),
                    AttemptIndex::new(0),
                    ff_core::types::AttemptId::new(),
                    LeaseId::new(),
                    ff_core::types::LeaseEpoch(1),
                    1_000,
                    LaneId::new("default"),
                    WorkerInstanceId::new("wi"),
                ),
            ),
        ))
        .await
        .unwrap_err();
    assert_execution_not_found(err);
}

// ── Secrets never reach a guest ─────────────────────────────────────────────────────────────

#[tokio::test]
#[parallel(process)]
async fn a_hostile_guest_cannot_read_copy_or_replace_the_keystore() {
    dev_mode();
    let uri = memory_uri("suspension-hostile");
    let hostile = SqliteBackend::builder(uri.as_str())
        .guest_file(env!("FF_HOSTILE_GUEST_WASM"))
        .open()
        .await
        .expect("the host accepts a guest importing waitpoint-tokens");
    hostile
        .seed_waitpoint_hmac_secret(SeedWaitpointHmacSecretArgs::new(KID, secret_hex()))
        .await
        .unwrap();
    let before = snapshot(&hostile.connection_for_test());
    let mut probe = signal_args(&new_exec_id(), &WaitpointId::new(), "k:00", "steal-secrets");
    probe.signal_id = SignalId::new();
    let err = hostile.deliver_signal(probe).await.unwrap_err();
    assert_eq!(snapshot(&hostile.connection_for_test()), before);
    let detail = err.to_string();
    assert!(
        !detail.contains("hostile guest:"),
        "something reached the guest: {detail}"
    );
    assert!(detail.contains("not authorized"), "{detail}");
    assert!(
        !detail.to_lowercase().contains(&secret_hex()),
        "the secret leaked: {detail}"
    );
    let secret: Vec<u8> = hostile
        .connection_for_test()
        .query_row(
            "SELECT secret FROM ff_waitpoint_hmac WHERE kid = ?1",
            [KID],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(
        secret,
        [0xca, 0xfe, 0xba, 0xbe].repeat(8),
        "the keystore is intact"
    );
}
