//! Upstream's `rfc024_reclaim.rs` (`issue_reclaim_grant` + `reclaim_execution`), every test
//! kept by name with only the set-up changed: sqlx → our backend and `connection_for_test()`.
//! Upstream created the execution and then rewrote it by hand to a claimable state; ours is
//! claimable as created (semantics Q5), so the hand rewrite is gone.

use crate::support::*;
use ff_backend_sqlite_wasm::{ConnectionForTest, SqliteBackend};
use ff_core::backend::{Handle, HandleKind};
use ff_core::contracts::{
    IssueReclaimGrantArgs, IssueReclaimGrantOutcome, ReclaimExecutionArgs, ReclaimExecutionOutcome,
};
use ff_core::engine_backend::EngineBackend;
use ff_core::engine_error::EngineError;
use ff_core::handle_codec;
use ff_core::types::{
    AttemptId, AttemptIndex, ExecutionId, LaneId, LeaseId, TimestampMs, WorkerId, WorkerInstanceId,
};
use serial_test::parallel;
use std::sync::Arc;

// ── Set-up (upstream's helpers, on our backend) ─────────────────────────────────────────────

/// An execution on a lane of its own, leased to `w1`/`w1-i1` for 30 s by the lane scanner.
struct Claimed {
    backend: Arc<SqliteBackend>,
    eid: ExecutionId,
    lane: LaneId,
}

impl Claimed {
    /// Upstream's `create_and_claim` on a fresh backend.
    async fn new(prefix: &str) -> Self {
        let backend = fresh_backend(prefix).await;
        let (eid, lane, _) = create_and_claim_on_own_lane(&backend, "w1").await;
        Self { backend, eid, lane }
    }

    /// [`Claimed::new`], then the lease forced `lease_expired_reclaimable`.
    async fn expired(prefix: &str) -> Self {
        let claimed = Self::new(prefix).await;
        claimed.force_lease_expired();
        claimed
    }

    /// [`Claimed::expired`], then a reclaim grant for `w1`.
    async fn granted(prefix: &str) -> Self {
        let claimed = Self::expired(prefix).await;
        claimed.issue_grant().await;
        claimed
    }

    /// The test connection (it holds the database: drop it before the next operation).
    fn conn(&self) -> ConnectionForTest<'_> {
        self.backend.connection_for_test()
    }

    /// Upstream's `force_lease_expired`: the expiry scanner's mark without waiting the TTL.
    fn force_lease_expired(&self) {
        update_exec(
            &self.conn(),
            &self.eid,
            "ownership_state = 'lease_expired_reclaimable'",
        );
    }

    async fn issue_grant(&self) -> IssueReclaimGrantOutcome {
        self.backend
            .issue_reclaim_grant(self.issue_args())
            .await
            .expect("issue")
    }

    /// Upstream's `issue_args`: worker `w1`, instance `w1-i2`, a 60 s grant.
    fn issue_args(&self) -> IssueReclaimGrantArgs {
        IssueReclaimGrantArgs::new(
            self.eid.clone(),
            WorkerId::new("w1"),
            WorkerInstanceId::new("w1-i2"),
            self.lane.clone(),
            None,
            60_000,
            None,
            None,
            Default::default(),
            TimestampMs::from_millis(now_ms()),
        )
    }

    /// Upstream's `reclaim_args`: a fresh 30 s lease taken over from `w1-i1`.
    fn reclaim_args(
        &self,
        worker_id: &str,
        worker_instance_id: &str,
        current_attempt_index: u32,
        max_reclaim_count: Option<u32>,
    ) -> ReclaimExecutionArgs {
        self.reclaim_args_with_ids(
            worker_id,
            worker_instance_id,
            current_attempt_index,
            max_reclaim_count,
            LeaseId::new(),
            AttemptId::new(),
        )
    }

    fn reclaim_args_with_ids(
        &self,
        worker_id: &str,
        worker_instance_id: &str,
        current_attempt_index: u32,
        max_reclaim_count: Option<u32>,
        lease_id: LeaseId,
        attempt_id: AttemptId,
    ) -> ReclaimExecutionArgs {
        ReclaimExecutionArgs::new(
            self.eid.clone(),
            WorkerId::new(worker_id),
            WorkerInstanceId::new(worker_instance_id),
            self.lane.clone(),
            None,
            lease_id,
            30_000,
            attempt_id,
            String::new(),
            max_reclaim_count,
            WorkerInstanceId::new("w1-i1"),
            AttemptIndex::new(current_attempt_index),
        )
    }

    /// `reclaim_execution` by `w1`/`w1-i2` over attempt 0, capped at `max_reclaim_count`.
    async fn reclaim(&self, max_reclaim_count: Option<u32>) -> ReclaimExecutionOutcome {
        self.backend
            .reclaim_execution(self.reclaim_args("w1", "w1-i2", 0, max_reclaim_count))
            .await
            .expect("reclaim")
    }

    /// The execution's claim grants of `kind` (any kind for `None`).
    fn grant_count(&self, kind: Option<&str>) -> i64 {
        self.conn()
            .query_row(
                "SELECT COUNT(*) FROM ff_claim_grant WHERE partition_key = 0 \
                 AND execution_id = ?1 AND (?2 IS NULL OR kind = ?2)",
                rusqlite::params![blob(uuid_of(&self.eid)), kind],
                |row| row.get(0),
            )
            .unwrap()
    }
}

/// The handle of a `Claimed` reclaim outcome; panics on any other outcome.
fn reclaimed(outcome: ReclaimExecutionOutcome) -> Handle {
    match outcome {
        ReclaimExecutionOutcome::Claimed(handle) => handle,
        other => panic!("expected Claimed, got {other:?}"),
    }
}

// ── issue_reclaim_grant ─────────────────────────────────────────────────────────────────────

#[tokio::test]
#[parallel(process)]
async fn issue_reclaim_grant_happy_path() {
    let c = Claimed::expired("rfc024-issue").await;
    let grant = match c.issue_grant().await {
        IssueReclaimGrantOutcome::Granted(grant) => grant,
        other => panic!("expected Granted, got {other:?}"),
    };
    assert_eq!(grant.execution_id, c.eid);
    assert!(!grant.grant_key.is_empty(), "grant_key must be populated");
    assert!(grant.expires_at_ms > 0);
    assert_eq!(c.grant_count(Some("reclaim")), 1);
}

#[tokio::test]
#[parallel(process)]
async fn issue_reclaim_grant_wrong_phase() {
    // Active + leased, not lease_expired_reclaimable.
    let c = Claimed::new("rfc024-wrong-phase").await;
    let outcome = c.issue_grant().await;
    assert!(
        matches!(outcome, IssueReclaimGrantOutcome::NotReclaimable { .. }),
        "got {outcome:?}"
    );
}

#[tokio::test]
#[parallel(process)]
async fn issue_reclaim_grant_lease_revoked_admits() {
    let c = Claimed::new("rfc024-revoked").await;
    update_exec(&c.conn(), &c.eid, "ownership_state = 'lease_revoked'");
    let outcome = c.issue_grant().await;
    assert!(
        matches!(outcome, IssueReclaimGrantOutcome::Granted(_)),
        "got {outcome:?}"
    );
}

// ── reclaim_execution ───────────────────────────────────────────────────────────────────────

#[tokio::test]
#[parallel(process)]
async fn reclaim_execution_happy_path() {
    let c = Claimed::granted("rfc024-reclaim").await;
    assert_eq!(reclaimed(c.reclaim(None).await).kind, HandleKind::Reclaimed);
    {
        let conn = c.conn();
        assert_eq!(exec_column(&conn, &c.eid, "lease_reclaim_count"), "1");
        assert_eq!(
            exec_column(&conn, &c.eid, "attempt_index"),
            "1",
            "new attempt_index = prior (0) + 1"
        );
    }
    assert_eq!(
        c.grant_count(Some("reclaim")),
        0,
        "grant must be deleted after consumption"
    );
}

#[tokio::test]
#[parallel(process)]
async fn reclaim_execution_new_attempt_and_prior_marked_interrupted() {
    let c = Claimed::granted("rfc024-prior").await;
    c.reclaim(None).await;
    let conn = c.conn();
    assert_eq!(
        attempt_column(&conn, &c.eid, 0, "outcome"),
        "interrupted_reclaimed"
    );
    assert_eq!(
        attempt_column(&conn, &c.eid, 1, "COUNT(*)"),
        "1",
        "reclaim must insert a fresh attempt row"
    );
}

#[tokio::test]
#[parallel(process)]
async fn reclaim_execution_worker_id_mismatch() {
    let c = Claimed::granted("rfc024-mismatch").await;
    let error = c
        .backend
        .reclaim_execution(c.reclaim_args("other-worker", "other-i1", 0, None))
        .await
        .unwrap_err();
    assert!(
        matches!(error, EngineError::Validation { .. }),
        "got {error:?}"
    );
}

#[tokio::test]
#[parallel(process)]
async fn reclaim_execution_grant_not_found() {
    let c = Claimed::expired("rfc024-no-grant").await;
    let outcome = c.reclaim(None).await;
    assert!(
        matches!(outcome, ReclaimExecutionOutcome::GrantNotFound { .. }),
        "got {outcome:?}"
    );
}

#[tokio::test]
#[parallel(process)]
async fn reclaim_execution_grant_ttl_expired_returns_not_found() {
    let c = Claimed::granted("rfc024-grant-ttl").await;
    c.conn()
        .execute(
            "UPDATE ff_claim_grant SET expires_at_ms = 1 \
             WHERE partition_key = 0 AND execution_id = ?1 AND kind = 'reclaim'",
            [blob(uuid_of(&c.eid))],
        )
        .unwrap();
    let outcome = c.reclaim(None).await;
    assert!(
        matches!(outcome, ReclaimExecutionOutcome::GrantNotFound { .. }),
        "got {outcome:?}"
    );
    assert_eq!(c.grant_count(None), 0);
}

#[tokio::test]
#[parallel(process)]
async fn reclaim_execution_cap_exceeded() {
    let c = Claimed::expired("rfc024-cap").await;
    update_exec(&c.conn(), &c.eid, "lease_reclaim_count = 1");
    c.issue_grant().await;
    match c.reclaim(Some(1)).await {
        ReclaimExecutionOutcome::ReclaimCapExceeded { reclaim_count, .. } => {
            assert_eq!(reclaim_count, 1)
        }
        other => panic!("expected ReclaimCapExceeded, got {other:?}"),
    }
    let conn = c.conn();
    assert_eq!(exec_column(&conn, &c.eid, "lifecycle_phase"), "terminal");
    assert_eq!(exec_column(&conn, &c.eid, "public_state"), "failed");
}

/// The exact boundary (`lease_reclaim_count` = cap = 4) is over the cap.
#[tokio::test]
#[parallel(process)]
async fn reclaim_execution_cap_exceeded_at_exact_boundary() {
    let c = Claimed::expired("rfc024-cap-boundary").await;
    update_exec(&c.conn(), &c.eid, "lease_reclaim_count = 4");
    c.issue_grant().await;
    let outcome = c.reclaim(Some(4)).await;
    assert!(
        matches!(outcome, ReclaimExecutionOutcome::ReclaimCapExceeded { .. }),
        "expected ReclaimCapExceeded at lease_reclaim_count=max=4 boundary, got {outcome:?}"
    );
}

/// An execution that became terminal between grant and reclaim stays terminal.
#[tokio::test]
#[parallel(process)]
async fn reclaim_execution_exec_gone_terminal_returns_not_reclaimable() {
    let c = Claimed::granted("rfc024-gone-terminal").await;
    update_exec(
        &c.conn(),
        &c.eid,
        "lifecycle_phase = 'terminal', ownership_state = 'unowned', public_state = 'cancelled'",
    );
    let outcome = c.reclaim(None).await;
    assert!(
        matches!(outcome, ReclaimExecutionOutcome::NotReclaimable { .. }),
        "got {outcome:?}"
    );
    assert_eq!(
        exec_column(&c.conn(), &c.eid, "lifecycle_phase"),
        "terminal",
        "exec must remain terminal, not revived"
    );
}

/// At the cap the prior attempt loses its whole lease (worker included) and both outbox
/// events are written. Before the fix in `guest/src/recovery/reclaim.rs` the prior attempt
/// kept its `worker_id`.
#[tokio::test]
#[parallel(process)]
async fn reclaim_cap_exceeded_clears_prior_attempt_and_emits_events() {
    let c = Claimed::expired("rfc024-cap-clears").await;
    update_exec(&c.conn(), &c.eid, "lease_reclaim_count = 1");
    c.issue_grant().await;
    let outcome = c.reclaim(Some(1)).await;
    assert!(matches!(
        outcome,
        ReclaimExecutionOutcome::ReclaimCapExceeded { .. }
    ));
    let conn = c.conn();
    assert_eq!(
        attempt_column(&conn, &c.eid, 0, "outcome"),
        "interrupted_reclaimed"
    );
    assert_eq!(
        attempt_column(&conn, &c.eid, 0, "worker_id"),
        "NULL",
        "worker_id must be cleared"
    );
    assert_eq!(
        attempt_column(&conn, &c.eid, 0, "lease_expires_at_ms"),
        "NULL",
        "lease_expires_at_ms must be cleared"
    );
    assert_eq!(
        completion_events(&conn, &c.eid),
        ["failed"],
        "terminal_failed must emit completion_event"
    );
    assert_eq!(
        lease_events(&conn, &c.eid)
            .iter()
            .filter(|event| *event == "revoked")
            .count(),
        1,
        "terminal_failed must emit lease_event revoked"
    );
}

/// The handle carries the caller's attempt and lease ids and a bumped epoch.
#[tokio::test]
#[parallel(process)]
async fn reclaim_execution_handle_carries_caller_ids_and_nonzero_epoch() {
    let c = Claimed::granted("rfc024-caller-ids").await;
    let attempt_id = AttemptId::new();
    let lease_id = LeaseId::new();
    let args =
        c.reclaim_args_with_ids("w1", "w1-i2", 0, None, lease_id.clone(), attempt_id.clone());
    let handle = reclaimed(c.backend.reclaim_execution(args).await.expect("reclaim"));
    let decoded = handle_codec::decode(&handle.opaque).expect("decode handle");
    assert_eq!(
        decoded.payload.attempt_id, attempt_id,
        "attempt_id must round-trip"
    );
    assert_eq!(
        decoded.payload.lease_id, lease_id,
        "lease_id must round-trip"
    );
    assert!(
        decoded.payload.lease_epoch.0 >= 1,
        "lease_epoch must be monotonically bumped (>=1), got {}",
        decoded.payload.lease_epoch.0
    );
}

/// Each reclaim writes the prior attempt's epoch + 1.
#[tokio::test]
#[parallel(process)]
async fn reclaim_execution_lease_epoch_monotonic_across_reclaims() {
    let c = Claimed::granted("rfc024-epochs").await;
    c.reclaim(None).await;
    let epoch_1: i64 = attempt_column(&c.conn(), &c.eid, 1, "lease_epoch")
        .parse()
        .unwrap();
    assert!(
        epoch_1 >= 1,
        "first reclaim epoch must be >=1, got {epoch_1}"
    );

    c.force_lease_expired();
    c.issue_grant().await;
    c.backend
        .reclaim_execution(c.reclaim_args("w1", "w1-i3", 1, None))
        .await
        .expect("reclaim-2");
    let epoch_2: i64 = attempt_column(&c.conn(), &c.eid, 2, "lease_epoch")
        .parse()
        .unwrap();
    assert!(
        epoch_2 > epoch_1,
        "second-reclaim epoch ({epoch_2}) must exceed first-reclaim epoch ({epoch_1})"
    );
}

/// The caller's `current_attempt_index` is ignored: the stored one decides.
#[tokio::test]
#[parallel(process)]
async fn reclaim_execution_ignores_stale_current_attempt_index_arg() {
    let c = Claimed::granted("rfc024-stale-index").await;
    let outcome = c
        .backend
        .reclaim_execution(c.reclaim_args("w1", "w1-i2", 999, None))
        .await
        .expect("reclaim");
    assert!(
        matches!(outcome, ReclaimExecutionOutcome::Claimed(_)),
        "got {outcome:?}"
    );
    assert_eq!(
        exec_column(&c.conn(), &c.eid, "attempt_index"),
        "1",
        "server-derived attempt_index must be 1 (stored 0 + 1), NOT 1000 (stale arg + 1)"
    );
}

#[tokio::test]
#[parallel(process)]
async fn reclaim_execution_handle_kind_reclaimed() {
    let c = Claimed::granted("rfc024-kind").await;
    assert_eq!(reclaimed(c.reclaim(None).await).kind, HandleKind::Reclaimed);
}
