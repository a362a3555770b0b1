//! Bad input through the public `EngineBackend` API. Every refused input gives a typed error
//! (`Validation` or `NotFound`) and writes nothing (`support::snapshot` unchanged); the inputs
//! ff-core lets through in other shapes (other spellings of an id, huge TTLs) have a defined
//! meaning, pinned here.

use std::sync::Arc;

use crate::support::*;
use ff_backend_sqlite_wasm::{GuestLimits, SqliteBackend};
use ff_core::backend::{
    BackendTag, CapabilitySet, ClaimPolicy, FailureClass, FailureReason, Handle, HandleOpaque,
    ResumeToken,
};
use ff_core::contracts::{
    ClaimResumedExecutionArgs, CreateExecutionResult, IssueGrantAndClaimArgs,
    IssueReclaimGrantOutcome, ListExpiredLeasesArgs, ReclaimExecutionOutcome, ResumeGrant,
};
use ff_core::engine_backend::EngineBackend;
use ff_core::engine_error::{EngineError, ValidationKind};
use ff_core::partition::{Partition, PartitionFamily, PartitionKey};
use ff_core::state::PublicState;
use ff_core::types::{
    AttemptIndex, ExecutionId, LaneId, LeaseId, TimestampMs, WorkerId, WorkerInstanceId,
};
use rusqlite::Connection;
use serial_test::parallel;

/// The guest's payload limit (`guest/src/exec.rs`, `MAX_PAYLOAD_BYTES`).
const MAX_PAYLOAD_BYTES: usize = 8 << 20;

/// The detail of a `Validation { kind }` error; panics on any other error.
fn validation_detail(error: EngineError, kind: ValidationKind) -> String {
    match error {
        EngineError::Validation { kind: got, detail } if got == kind => detail,
        other => panic!("expected Validation({kind:?}), got {other:?}"),
    }
}

/// Assert that `operation` fails with `Validation { InvalidInput }` whose detail contains
/// `fragment`, writing nothing.
async fn refused_as_invalid_input<T: std::fmt::Debug>(
    backend: &SqliteBackend,
    fragment: &str,
    operation: impl Future<Output = Result<T, EngineError>>,
) {
    let detail = invalid_input_detail(rejected_without_writes(backend, operation).await);
    assert!(detail.contains(fragment), "{detail:?} lacks {fragment:?}");
}

/// A backend on a fresh database holding one lease that expired a minute ago and has been
/// marked expired: reclaimable.
async fn reclaimable_backend(prefix: &str) -> (Arc<SqliteBackend>, ExecutionId) {
    let backend = fresh_backend(prefix).await;
    let (eid, _) = seed_leased_at(&backend, now_ms() - 120_000).await;
    backend
        .mark_lease_expired_if_due(partition_of(&eid), &eid)
        .await
        .unwrap();
    (backend, eid)
}

/// A resume token for `worker_id` on `eid` with a `lease_ttl_ms` lease.
fn resume_token(eid: &ExecutionId, worker_id: &str, lease_ttl_ms: u32) -> ResumeToken {
    let grant = ResumeGrant::new(
        eid.clone(),
        PartitionKey::from(&partition_of(eid)),
        "grant-key".into(),
        0,
        LaneId::new("default"),
    );
    ResumeToken::new(
        grant,
        WorkerId::new(worker_id),
        WorkerInstanceId::new("wi-2"),
        lease_ttl_ms,
    )
}

/// `ClaimResumedExecutionArgs` for `worker_id` with a `lease_ttl_ms` lease.
fn resumed_args(
    eid: &ExecutionId,
    worker_id: &str,
    lease_ttl_ms: u64,
) -> ClaimResumedExecutionArgs {
    ClaimResumedExecutionArgs {
        execution_id: eid.clone(),
        worker_id: WorkerId::new(worker_id),
        worker_instance_id: WorkerInstanceId::new("wi-2"),
        lane_id: LaneId::new("default"),
        lease_id: LeaseId::new(),
        lease_ttl_ms,
        current_attempt_index: AttemptIndex::new(0),
        remaining_attempt_timeout_ms: None,
        now: TimestampMs::now(),
    }
}

/// An execution a satisfied suspension left resumable, on attempt 0 at epoch 4.
fn seed_resumable(conn: &Connection) -> ExecutionId {
    let (exec_uuid, eid) = seed_runnable_as(
        conn,
        "public_state = 'resumable', attempt_state = 'attempt_interrupted'",
    );
    conn.execute(
        "INSERT INTO ff_attempt (partition_key, execution_id, attempt_index, worker_id, lease_epoch) \
         VALUES (0, ?1, 0, 'worker-1', 4)",
        [blob(exec_uuid)],
    )
    .unwrap();
    eid
}

/// A lane-scanner policy for `worker_id` with a `lease_ttl_ms` lease.
fn scan_policy(worker_id: &str, lease_ttl_ms: u32) -> ClaimPolicy {
    ClaimPolicy::new(
        WorkerId::new(worker_id),
        WorkerInstanceId::new("wi-1"),
        lease_ttl_ms,
        None,
    )
}

// ── Execution ids ───────────────────────────────────────────────────────────────────────────

/// ff-core's `ExecutionId::parse` accepts any UUID spelling `Uuid::parse_str` does; every one
/// names the same row as the canonical lowercase form.
#[tokio::test]
#[parallel(process)]
async fn other_spellings_of_an_execution_id_name_the_same_execution() {
    let backend = fresh_backend("bad-input-spellings").await;
    let eid = new_execution_id();
    let uuid = uuid_of(&eid);
    let now = now_ms();
    backend
        .create_execution(create_args(eid.clone(), "default", now))
        .await
        .unwrap();
    let spellings = [
        format!("{{fp:0}}:{}", uuid.hyphenated().to_string().to_uppercase()),
        format!("{{fp:0}}:{}", uuid.braced()),
        format!("{{fp:0}}:{}", uuid.simple()),
        format!("{{fp:0}}:{}", uuid.urn()),
    ];
    for spelling in &spellings {
        let other = ExecutionId::parse(spelling).expect("ff-core accepts it");
        assert_eq!(
            backend.read_execution_state(&other).await.unwrap(),
            Some(PublicState::Waiting),
            "{spelling}"
        );
        let before = snapshot(&backend.connection_for_test());
        let again = backend
            .create_execution(create_args(other.clone(), "default", now))
            .await
            .unwrap();
        assert!(
            matches!(again, CreateExecutionResult::Duplicate { .. }),
            "{spelling}: {again:?}"
        );
        assert_eq!(
            snapshot(&backend.connection_for_test()),
            before,
            "{spelling}"
        );
    }

    // Granted under one spelling, claimed under another: the one row is leased.
    let braced = ExecutionId::parse(&spellings[1]).unwrap();
    let upper = ExecutionId::parse(&spellings[0]).unwrap();
    backend
        .issue_claim_grant(grant_args(braced, "worker-1", now))
        .await
        .unwrap();
    claimed(
        backend
            .claim_execution(claim_args_at(upper, "worker-1", 0, now))
            .await
            .unwrap(),
    );
    let conn = backend.connection_for_test();
    assert_eq!(count_rows(&conn, "ff_exec_core"), 1);
    assert_eq!(exec_column(&conn, &eid, "lifecycle_phase"), "active");
    assert_eq!(lease_events(&conn, &eid), ["acquired"]);
}

/// The partition is part of the key: the same UUID under another partition is another
/// (here: missing) execution.
#[tokio::test]
#[parallel(process)]
async fn the_same_uuid_on_another_partition_is_not_found() {
    let backend = fresh_backend("bad-input-other-partition").await;
    let (_, eid) = seed_granted(&backend.connection_for_test(), "worker-1");
    let elsewhere = ExecutionId::parse(&format!("{{fp:1}}:{}", uuid_of(&eid))).unwrap();
    assert_eq!(
        backend.read_execution_state(&elsewhere).await.unwrap(),
        None
    );
    assert_execution_not_found(
        rejected_without_writes(
            &backend,
            backend.claim_execution(claim_args(elsewhere.clone(), "worker-1")),
        )
        .await,
    );
    assert_execution_not_found(
        rejected_without_writes(
            &backend,
            backend.issue_claim_grant(grant_args(elsewhere, "worker-1", now_ms())),
        )
        .await,
    );
}

// ── Worker handles ──────────────────────────────────────────────────────────────────────────

/// Run every handle operation with `handle`; each must fail with `Validation { kind }` and
/// write nothing.
async fn every_handle_op_refuses(backend: &SqliteBackend, handle: &Handle, kind: ValidationKind) {
    let engine: &dyn EngineBackend = backend;
    validation_detail(
        rejected_without_writes(backend, engine.renew(handle)).await,
        kind.clone(),
    );
    validation_detail(
        rejected_without_writes(backend, engine.progress(handle, Some(50), None)).await,
        kind.clone(),
    );
    validation_detail(
        rejected_without_writes(backend, engine.complete(handle, Some(b"r".to_vec()))).await,
        kind.clone(),
    );
    validation_detail(
        rejected_without_writes(
            backend,
            engine.fail(handle, FailureReason::new("boom"), FailureClass::Transient),
        )
        .await,
        kind,
    );
}

/// A `Sqlite` handle of `kind` around `bytes`.
fn handle_with(template: &Handle, backend: BackendTag, bytes: Vec<u8>) -> Handle {
    Handle::new(
        backend,
        template.kind,
        HandleOpaque::new(bytes.into_boxed_slice()),
    )
}

#[tokio::test]
#[parallel(process)]
async fn corrupted_handles_are_corruption_and_write_nothing() {
    let (backend, _, claim) = created_leased_backend("bad-input-corrupt-handle").await;
    let good = &claim.handle;
    let bytes = good.opaque.as_bytes().to_vec();
    let with = |index: usize, value: u8| {
        let mut changed = bytes.clone();
        changed[index] = value;
        changed
    };
    let tag_at = bytes
        .windows(4)
        .position(|window| window == b"{fp:")
        .expect("the execution id is in the handle");
    let cases: [(&str, Vec<u8>); 7] = [
        ("empty", Vec::new()),
        ("garbage", b"garbage".to_vec()),
        ("truncated", bytes[..bytes.len() - 1].to_vec()),
        ("trailing byte", [&bytes[..], &[0]].concat()),
        ("unknown wire version", with(1, 0x09)),
        ("unknown backend tag", with(2, 0x7f)),
        ("malformed execution id", with(tag_at + 1, b'x')),
    ];
    for (_, corrupted) in cases {
        every_handle_op_refuses(
            &backend,
            &handle_with(good, BackendTag::Sqlite, corrupted),
            ValidationKind::Corruption,
        )
        .await;
    }
    backend
        .renew(good)
        .await
        .expect("the real handle still works");
}

#[tokio::test]
#[parallel(process)]
async fn handles_of_other_backends_are_refused_and_write_nothing() {
    let (backend, _, claim) = created_leased_backend("bad-input-foreign-handle").await;
    let good = &claim.handle;
    let bytes = good.opaque.as_bytes().to_vec();
    let mut embedded_valkey = bytes.clone();
    embedded_valkey[2] = 0x01;
    // The pre-v2 layout is Valkey's by definition.
    let legacy = [&[0x01], &bytes[3..]].concat();
    let cases = [
        handle_with(good, BackendTag::Valkey, bytes.clone()),
        handle_with(good, BackendTag::Postgres, bytes.clone()),
        handle_with(good, BackendTag::Sqlite, embedded_valkey),
        handle_with(good, BackendTag::Sqlite, legacy),
    ];
    for handle in &cases {
        every_handle_op_refuses(&backend, handle, ValidationKind::HandleFromOtherBackend).await;
    }
    backend
        .renew(good)
        .await
        .expect("the real handle still works");
}

// ── Partitions ──────────────────────────────────────────────────────────────────────────────

#[tokio::test]
#[parallel(process)]
async fn scanner_hooks_refuse_a_partition_that_does_not_hold_the_execution() {
    // A lapsed lease and a due delay: with the right partition, both hooks would write.
    let backend = fresh_backend("bad-input-partitions").await;
    let (expired, _) = seed_leased_at(&backend, now_ms() - 120_000).await;
    let delayed = new_execution_id();
    let now = now_ms();
    let mut args = create_args(delayed.clone(), "default", now);
    args.delay_until = Some(TimestampMs::from_millis(now + 1_000));
    backend.create_execution(args).await.unwrap();
    let lane = LaneId::new("default");

    for index in [1, 7, u16::MAX] {
        let wrong = Partition {
            family: PartitionFamily::Flow,
            index,
        };
        refused_as_invalid_input(
            &backend,
            "does not hold",
            backend.mark_lease_expired_if_due(wrong, &expired),
        )
        .await;
        refused_as_invalid_input(
            &backend,
            "does not hold",
            backend.promote_delayed(
                wrong,
                &lane,
                &delayed,
                TimestampMs::from_millis(now + 2_000),
            ),
        )
        .await;
    }

    // The right partitions do write.
    backend
        .mark_lease_expired_if_due(partition_of(&expired), &expired)
        .await
        .unwrap();
    backend
        .promote_delayed(
            partition_of(&delayed),
            &lane,
            &delayed,
            TimestampMs::from_millis(now + 2_000),
        )
        .await
        .unwrap();
    let conn = backend.connection_for_test();
    assert_eq!(
        exec_column(&conn, &expired, "ownership_state"),
        "lease_expired_reclaimable"
    );
    assert_eq!(
        exec_column(&conn, &delayed, "eligibility_state"),
        "eligible_now"
    );
}

// ── TTLs ────────────────────────────────────────────────────────────────────────────────────

#[tokio::test]
#[parallel(process)]
async fn zero_ttls_are_invalid_input_and_write_nothing() {
    let positive = "must be positive";

    // Claims and grants on a granted execution.
    let backend = fresh_backend("bad-input-zero-ttl").await;
    let (_, eid) = seed_granted(&backend.connection_for_test(), "worker-1");
    let mut claim = claim_args(eid.clone(), "worker-1");
    claim.lease_ttl_ms = 0;
    refused_as_invalid_input(&backend, positive, backend.claim_execution(claim)).await;
    let mut grant = grant_args(eid.clone(), "worker-2", now_ms());
    grant.grant_ttl_ms = 0;
    refused_as_invalid_input(&backend, positive, backend.issue_claim_grant(grant)).await;
    refused_as_invalid_input(
        &backend,
        positive,
        backend.claim(
            &LaneId::new("default"),
            &CapabilitySet::default(),
            scan_policy("worker-1", 0),
        ),
    )
    .await;
    let operator = IssueGrantAndClaimArgs::new(eid.clone(), LaneId::new("default"), 0);
    refused_as_invalid_input(&backend, positive, backend.issue_grant_and_claim(operator)).await;
    let resumable = seed_resumable(&backend.connection_for_test());
    refused_as_invalid_input(
        &backend,
        positive,
        backend.claim_resumed_execution(resumed_args(&resumable, "worker-2", 0)),
    )
    .await;

    // Renewing a live lease.
    let (leased, _, lease) = created_leased_backend("bad-input-zero-renew").await;
    let mut renew = renew_args(&lease.execution_id, Some(fence_of(&lease)));
    renew.lease_ttl_ms = 0;
    refused_as_invalid_input(&leased, positive, leased.renew_lease(renew)).await;

    // Reclaiming an expired lease.
    let (backend, eid) = reclaimable_backend("bad-input-zero-reclaim").await;
    let mut grant = reclaim_grant_args(&eid, "worker-2");
    grant.grant_ttl_ms = 0;
    refused_as_invalid_input(&backend, positive, backend.issue_reclaim_grant(grant)).await;
    backend
        .issue_reclaim_grant(reclaim_grant_args(&eid, "worker-2"))
        .await
        .unwrap();
    let mut reclaim = reclaim_args(&eid, "worker-2", None);
    reclaim.lease_ttl_ms = 0;
    refused_as_invalid_input(&backend, positive, backend.reclaim_execution(reclaim)).await;
    refused_as_invalid_input(
        &backend,
        positive,
        backend.claim_from_resume_grant(resume_token(&eid, "worker-2", 0)),
    )
    .await;
}

#[tokio::test]
#[parallel(process)]
async fn huge_ttls_saturate_at_the_end_of_time() {
    let backend = fresh_backend("bad-input-huge-ttl").await;
    let eid = new_execution_id();
    let now = now_ms();
    backend
        .create_execution(create_args(eid.clone(), "default", now))
        .await
        .unwrap();
    let mut grant = grant_args(eid.clone(), "worker-1", now);
    grant.grant_ttl_ms = u64::MAX;
    backend.issue_claim_grant(grant).await.unwrap();
    assert_eq!(
        backend
            .connection_for_test()
            .query_row("SELECT expires_at_ms FROM ff_claim_grant", [], |row| row
                .get::<_, i64>(0))
            .unwrap(),
        i64::MAX
    );
    let mut claim = claim_args_at(eid.clone(), "worker-1", 0, now);
    claim.lease_ttl_ms = u64::MAX;
    let lease = claimed(backend.claim_execution(claim).await.unwrap());
    assert_eq!(lease.lease_expires_at.0, i64::MAX);

    let mut renew = renew_args(&eid, Some(fence_of(&lease)));
    renew.lease_ttl_ms = u64::MAX;
    let renewed = backend.renew_lease(renew).await.unwrap();
    assert!(
        matches!(renewed, ff_core::contracts::RenewLeaseResult::Renewed { expires_at } if expires_at.0 == i64::MAX),
        "{renewed:?}"
    );
    // A lease that never lapses is never listed as expired.
    let listed = backend
        .list_expired_leases(ListExpiredLeasesArgs::new(TimestampMs::from_millis(
            i64::MAX - 1,
        )))
        .await
        .unwrap();
    assert!(listed.entries.is_empty(), "{listed:?}");

    let (backend, eid) = reclaimable_backend("bad-input-huge-reclaim").await;
    let mut grant = reclaim_grant_args(&eid, "worker-2");
    grant.grant_ttl_ms = u64::MAX;
    match backend.issue_reclaim_grant(grant).await.unwrap() {
        IssueReclaimGrantOutcome::Granted(grant) => {
            assert_eq!(grant.expires_at_ms, i64::MAX as u64)
        }
        other => panic!("{other:?}"),
    }
    let mut reclaim = reclaim_args(&eid, "worker-2", None);
    reclaim.lease_ttl_ms = u64::MAX;
    let outcome = backend.reclaim_execution(reclaim).await.unwrap();
    assert!(
        matches!(outcome, ReclaimExecutionOutcome::Claimed(_)),
        "{outcome:?}"
    );
    assert_eq!(
        attempt_column(
            &backend.connection_for_test(),
            &eid,
            1,
            "lease_expires_at_ms"
        ),
        i64::MAX.to_string()
    );
}

// ── Worker ids ──────────────────────────────────────────────────────────────────────────────

#[tokio::test]
#[parallel(process)]
async fn empty_worker_ids_are_invalid_input_and_write_nothing() {
    let empty = "worker_id must not be empty";

    // Even grants recorded for the empty worker do not make it one.
    let backend = fresh_backend("bad-input-empty-worker").await;
    let (_, granted) = seed_granted(&backend.connection_for_test(), "");
    refused_as_invalid_input(
        &backend,
        empty,
        backend.claim_execution(claim_args(granted.clone(), "")),
    )
    .await;
    let (_, runnable) = seed_runnable(&backend.connection_for_test());
    refused_as_invalid_input(
        &backend,
        empty,
        backend.issue_claim_grant(grant_args(runnable, "", now_ms())),
    )
    .await;
    refused_as_invalid_input(
        &backend,
        empty,
        backend.claim(
            &LaneId::new("default"),
            &CapabilitySet::default(),
            scan_policy("", 30_000),
        ),
    )
    .await;
    let resumable = seed_resumable(&backend.connection_for_test());
    refused_as_invalid_input(
        &backend,
        empty,
        backend.claim_resumed_execution(resumed_args(&resumable, "", 30_000)),
    )
    .await;

    let (backend, eid) = reclaimable_backend("bad-input-empty-reclaimer").await;
    refused_as_invalid_input(
        &backend,
        empty,
        backend.issue_reclaim_grant(reclaim_grant_args(&eid, "")),
    )
    .await;
    backend
        .issue_reclaim_grant(reclaim_grant_args(&eid, "worker-2"))
        .await
        .unwrap();
    backend
        .connection_for_test()
        .execute(
            "UPDATE ff_claim_grant SET worker_id = '' WHERE kind = 'reclaim'",
            [],
        )
        .unwrap();
    refused_as_invalid_input(
        &backend,
        empty,
        backend.reclaim_execution(reclaim_args(&eid, "", None)),
    )
    .await;
    refused_as_invalid_input(
        &backend,
        empty,
        backend.claim_from_resume_grant(resume_token(&eid, "", 30_000)),
    )
    .await;
}

/// An empty `worker_instance_id` is refused like an empty `worker_id`, by every operation that
/// checks the worker id (after that check, before anything is read or written).
#[tokio::test]
#[parallel(process)]
async fn empty_worker_instance_ids_are_invalid_input_and_write_nothing() {
    let empty = "worker_instance_id must not be empty";
    let no_instance = || WorkerInstanceId::new("");

    let backend = fresh_backend("bad-input-empty-instance").await;
    let (_, granted) = seed_granted(&backend.connection_for_test(), "worker-1");
    let mut claim = claim_args(granted, "worker-1");
    claim.worker_instance_id = no_instance();
    refused_as_invalid_input(&backend, empty, backend.claim_execution(claim)).await;
    let (_, runnable) = seed_runnable(&backend.connection_for_test());
    let mut grant = grant_args(runnable, "worker-1", now_ms());
    grant.worker_instance_id = no_instance();
    refused_as_invalid_input(&backend, empty, backend.issue_claim_grant(grant)).await;
    let mut policy = scan_policy("worker-1", 30_000);
    policy.worker_instance_id = no_instance();
    refused_as_invalid_input(
        &backend,
        empty,
        backend.claim(&LaneId::new("default"), &CapabilitySet::default(), policy),
    )
    .await;
    let resumable = seed_resumable(&backend.connection_for_test());
    let mut resumed = resumed_args(&resumable, "worker-1", 30_000);
    resumed.worker_instance_id = no_instance();
    refused_as_invalid_input(&backend, empty, backend.claim_resumed_execution(resumed)).await;

    let (backend, eid) = reclaimable_backend("bad-input-empty-reclaimer-instance").await;
    let mut reclaim_grant = reclaim_grant_args(&eid, "worker-2");
    reclaim_grant.worker_instance_id = no_instance();
    refused_as_invalid_input(&backend, empty, backend.issue_reclaim_grant(reclaim_grant)).await;
    backend
        .issue_reclaim_grant(reclaim_grant_args(&eid, "worker-2"))
        .await
        .unwrap();
    let mut reclaim = reclaim_args(&eid, "worker-2", None);
    reclaim.worker_instance_id = no_instance();
    refused_as_invalid_input(&backend, empty, backend.reclaim_execution(reclaim)).await;
    let mut token = resume_token(&eid, "worker-2", 30_000);
    token.worker_instance_id = no_instance();
    refused_as_invalid_input(&backend, empty, backend.claim_from_resume_grant(token)).await;
}

// ── Payloads ────────────────────────────────────────────────────────────────────────────────

#[tokio::test]
#[parallel(process)]
async fn oversized_payloads_are_payload_too_large_and_write_nothing() {
    let (backend, eid, lease) = created_leased_backend("bad-input-payloads").await;
    let too_big = vec![7; MAX_PAYLOAD_BYTES + 1];

    let mut create = create_args(new_execution_id(), "default", now_ms());
    create.input_payload = too_big.clone();
    validation_detail(
        rejected_without_writes(&backend, backend.create_execution(create)).await,
        ValidationKind::PayloadTooLarge,
    );

    let mut complete = complete_args(&eid, Some(fence_of(&lease)));
    complete.result_payload = Some(too_big.clone());
    validation_detail(
        rejected_without_writes(&backend, backend.complete_execution(complete)).await,
        ValidationKind::PayloadTooLarge,
    );
    validation_detail(
        rejected_without_writes(&backend, backend.complete(&lease.handle, Some(too_big))).await,
        ValidationKind::PayloadTooLarge,
    );

    // At the limit, both are accepted.
    let mut create = create_args(new_execution_id(), "default", now_ms());
    create.input_payload = vec![7; MAX_PAYLOAD_BYTES];
    backend.create_execution(create).await.unwrap();
    backend
        .complete(&lease.handle, Some(vec![7; MAX_PAYLOAD_BYTES]))
        .await
        .unwrap();
}

/// A payload larger than the guest's whole memory could never be copied into the guest, so the
/// host refuses it before calling the guest, as `PayloadTooLarge` naming the argument and the
/// memory limit (not as the memory limit the copy would hit), and writes nothing.
#[tokio::test]
#[parallel(process)]
async fn a_payload_larger_than_guest_memory_is_payload_too_large_and_writes_nothing() {
    let (backend, eid, lease) = created_leased_backend("bad-input-giant-payload").await;
    let giant = vec![7; 100 << 20];
    let mut create = create_args(new_execution_id(), "default", now_ms());
    create.input_payload = giant.clone();
    let mut complete = complete_args(&eid, Some(fence_of(&lease)));
    complete.result_payload = Some(giant.clone());
    for (field, error) in [
        (
            "input_payload",
            rejected_without_writes(&backend, backend.create_execution(create)).await,
        ),
        (
            "result_payload",
            rejected_without_writes(&backend, backend.complete_execution(complete)).await,
        ),
        (
            "payload",
            rejected_without_writes(&backend, backend.complete(&lease.handle, Some(giant))).await,
        ),
    ] {
        let detail = validation_detail(error, ValidationKind::PayloadTooLarge);
        assert_eq!(
            detail,
            format!(
                "{field} is {} bytes, more than the guest's memory limit of 64 MiB",
                100 << 20
            )
        );
    }
}

/// The host's check follows the backend's own memory limit: with 16 MiB of guest memory, a
/// 20 MiB input is refused before the guest is called.
#[tokio::test]
#[parallel(process)]
async fn the_payload_check_follows_the_configured_guest_memory() {
    dev_mode();
    let backend = SqliteBackend::builder(memory_uri("bad-input-small-memory"))
        .limits(GuestLimits::default().with_memory_bytes(16 << 20))
        .open()
        .await
        .expect("construct");
    let mut create = create_args(new_execution_id(), "default", now_ms());
    create.input_payload = vec![7; 20 << 20];
    let detail = validation_detail(
        rejected_without_writes(&backend, backend.create_execution(create)).await,
        ValidationKind::PayloadTooLarge,
    );
    assert!(detail.ends_with("memory limit of 16 MiB"), "{detail}");
}

// ── Policies ────────────────────────────────────────────────────────────────────────────────

#[tokio::test]
#[parallel(process)]
async fn invalid_retry_policy_json_is_invalid_policy_json_and_writes_nothing() {
    let (backend, eid, lease) = created_leased_backend("bad-input-policy").await;
    for policy in [
        "{",
        "not json",
        "null",
        "42",
        r#"{"max_retries": -1}"#,
        r#"{"max_retries": "three"}"#,
        r#"{"backoff": {"type": "warp"}}"#,
        r#"{"backoff": {"type": "fixed"}}"#,
    ] {
        let detail = validation_detail(
            rejected_without_writes(
                &backend,
                backend.fail_execution(fail_args(&eid, Some(fence_of(&lease)), policy)),
            )
            .await,
            ValidationKind::InvalidPolicyJson,
        );
        assert!(
            detail.starts_with("retry_policy_json"),
            "{policy}: {detail}"
        );
    }
    // A valid one still works afterwards.
    backend
        .fail_execution(fail_args(
            &eid,
            Some(fence_of(&lease)),
            r#"{"max_retries": 0}"#,
        ))
        .await
        .unwrap();
}

// ── Lanes and pages ─────────────────────────────────────────────────────────────────────────

#[tokio::test]
#[parallel(process)]
async fn malformed_lanes_and_an_empty_page_are_invalid_input() {
    let backend = fresh_backend("bad-input-lanes").await;
    for (lane, fragment) in [
        (String::new(), "must not be empty"),
        ("l".repeat(65), "bytes"),
        ("tab\there".to_string(), "lane_id"),
    ] {
        refused_as_invalid_input(
            &backend,
            fragment,
            backend.create_execution(create_args(new_execution_id(), &lane, now_ms())),
        )
        .await;
    }
    let mut page = ListExpiredLeasesArgs::new(TimestampMs::now());
    page.limit = Some(0);
    refused_as_invalid_input(&backend, "limit", backend.list_expired_leases(page)).await;
}
