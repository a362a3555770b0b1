//! The suspension cycle both sides run on a claimed execution: `suspend_by_triple` on one fresh
//! waitpoint → `deliver_signal` (satisfies it) → `claim_resumed_execution` → `complete_execution`,
//! after the `claim_execution` of [`crate::scenarios`]. The native baseline signs and verifies
//! tokens like the host's `waitpoint-tokens` import: the keystore row read from the same table,
//! HMAC-SHA256 from ff-core.

use std::time::Duration;

use ff_core::contracts::{
    ClaimResumedExecutionArgs, ClaimResumedExecutionResult, ClaimedExecution,
    CompleteExecutionArgs, DeliverSignalArgs, ResumeCondition, ResumePolicy,
    SeedWaitpointHmacSecretArgs, SignalMatcher, SuspendArgs, SuspensionReasonCode,
    WaitpointBinding,
};
use ff_core::crypto::hmac::{hmac_sign, hmac_verify};
use ff_core::engine_backend::EngineBackend;
use ff_core::types::{
    AttemptId, CancelSource, ExecutionId, LaneId, LeaseFence, LeaseId, SignalId, SuspensionId,
    TimestampMs, WaitpointId, WaitpointToken, WorkerId, WorkerInstanceId,
};
use ff_engine_guest::bindings::suspension::{
    self as guest, DeliverSignalArgs as GuestSignal, FreshWaitpoint, SuspendOutcome,
};
use ff_engine_guest::bindings::waitpoint_tokens::{SignedToken, TokenError};
use ff_engine_guest::bindings::{lease_holder, recovery, types};
use ff_engine_guest::suspension::tokens::Tokens;
use rusqlite::{Connection, OptionalExtension};

use crate::native::in_transaction;
use crate::workload::{LANE, LEASE_TTL_MS, WORKER, fence, now_ms};

/// The kid and secret both sides' keystores hold.
const KID: &str = "bench-kid";
const SECRET_HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// Operations per execution after the claim.
pub const OPS: usize = 4;

/// Seed the backend's keystore.
pub async fn seed_backend(backend: &dyn EngineBackend) -> anyhow::Result<()> {
    backend
        .seed_waitpoint_hmac_secret(SeedWaitpointHmacSecretArgs::new(KID, SECRET_HEX))
        .await?;
    Ok(())
}

/// Seed the native keystore (the host's seed writes this row).
pub fn seed_native(conn: &Connection) -> anyhow::Result<()> {
    let secret: Vec<u8> = (0..SECRET_HEX.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&SECRET_HEX[at..at + 2], 16))
        .collect::<Result<_, _>>()?;
    conn.execute(
        "INSERT OR IGNORE INTO ff_waitpoint_hmac (kid, secret, rotated_at_ms, active) VALUES (?1, ?2, ?3, 1)",
        rusqlite::params![KID, secret, now_ms()],
    )?;
    Ok(())
}

/// The host's token signer, natively: the same keystore reads, ff-core's HMAC.
struct NativeTokens<'a>(&'a Connection);

impl Tokens for NativeTokens<'_> {
    fn sign(&mut self, message: &str) -> Result<SignedToken, TokenError> {
        let key: Option<(String, Vec<u8>)> = self
            .0
            .prepare_cached(
                "SELECT kid, secret FROM ff_waitpoint_hmac WHERE active = 1 \
                 ORDER BY rotated_at_ms DESC, kid DESC LIMIT 1",
            )
            .and_then(|mut statement| {
                statement
                    .query_row([], |row| Ok((row.get(0)?, row.get(1)?)))
                    .optional()
            })
            .expect("keystore read");
        let (kid, secret) = key.ok_or(TokenError::KeystoreEmpty)?;
        Ok(SignedToken {
            token: hmac_sign(&secret, &kid, message.as_bytes()),
            kid,
        })
    }

    fn verify(
        &mut self,
        kid: &str,
        message: &str,
        token: &str,
        _now: i64,
    ) -> Result<(), TokenError> {
        let secret: Option<Vec<u8>> = self
            .0
            .prepare_cached(
                "SELECT secret, active, expires_at_ms FROM ff_waitpoint_hmac WHERE kid = ?1",
            )
            .and_then(|mut statement| statement.query_row([kid], |row| row.get(0)).optional())
            .expect("keystore read");
        let secret = secret.ok_or_else(|| TokenError::UnknownKid(kid.into()))?;
        hmac_verify(&secret, kid, message.as_bytes(), token)
            .map_err(|_| TokenError::SignatureMismatch)
    }
}

fn condition() -> ResumeCondition {
    ResumeCondition::Single {
        waitpoint_key: "wpk:bench".into(),
        matcher: SignalMatcher::ByName("go".into()),
    }
}

/// Suspension on one fresh waitpoint that the cycle's signal satisfies.
pub fn suspend_args() -> SuspendArgs {
    SuspendArgs::new(
        SuspensionId::new(),
        WaitpointBinding::Fresh {
            waitpoint_id: WaitpointId::new(),
            waitpoint_key: "wpk:bench".into(),
        },
        condition(),
        ResumePolicy::normal(),
        SuspensionReasonCode::WaitingForSignal,
        TimestampMs::now(),
    )
}

/// The cycle's signal to the waitpoint, with its token.
pub fn signal_args(id: &ExecutionId, waitpoint_id: WaitpointId, token: &str) -> DeliverSignalArgs {
    DeliverSignalArgs {
        execution_id: id.clone(),
        waitpoint_id,
        signal_id: SignalId::new(),
        signal_name: "go".into(),
        signal_category: "external".into(),
        source_type: "bench".into(),
        source_identity: "ffbench".into(),
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
        now: TimestampMs::now(),
    }
}

/// The cycle through the backend; `timed` measures each operation.
pub async fn through_backend(
    backend: &dyn EngineBackend,
    id: &ExecutionId,
    lease: &ClaimedExecution,
    latencies: &mut Vec<Duration>,
) {
    let started = std::time::Instant::now();
    let outcome = backend
        .suspend_by_triple(id.clone(), fence(lease), suspend_args())
        .await
        .expect("suspend_by_triple");
    latencies.push(started.elapsed());
    let details = outcome.details().clone();

    let started = std::time::Instant::now();
    backend
        .deliver_signal(signal_args(
            id,
            details.waitpoint_id,
            details.waitpoint_token.as_str(),
        ))
        .await
        .expect("deliver_signal");
    latencies.push(started.elapsed());

    let started = std::time::Instant::now();
    let ClaimResumedExecutionResult::Claimed(resumed) = backend
        .claim_resumed_execution(ClaimResumedExecutionArgs {
            execution_id: id.clone(),
            worker_id: WorkerId::new(WORKER),
            worker_instance_id: WorkerInstanceId::new("bench-instance"),
            lane_id: LaneId::new(LANE),
            lease_id: LeaseId::new(),
            lease_ttl_ms: LEASE_TTL_MS,
            current_attempt_index: lease.attempt_index,
            remaining_attempt_timeout_ms: None,
            now: TimestampMs::now(),
        })
        .await
        .expect("claim_resumed_execution");
    latencies.push(started.elapsed());

    let started = std::time::Instant::now();
    backend
        .complete_execution(CompleteExecutionArgs {
            execution_id: id.clone(),
            fence: Some(LeaseFence {
                lease_id: resumed.lease_id,
                lease_epoch: resumed.lease_epoch,
                attempt_id: resumed.attempt_id,
            }),
            attempt_index: resumed.attempt_index,
            result_payload: Some(b"{\"ok\":true}".to_vec()),
            result_encoding: Some("json".into()),
            source: CancelSource::LeaseHolder,
            now: TimestampMs::now(),
        })
        .await
        .expect("complete_execution");
    latencies.push(started.elapsed());
}

/// Runs one native operation (given the connection) in its own transaction and times it.
pub type TimedOp<'a> = dyn FnMut(&mut dyn FnMut(&Connection)) + 'a;

/// The same cycle natively; `op` runs one operation in its own transaction and times it.
pub fn native(op: &mut TimedOp<'_>, lease: &types::ClaimedExecution) {
    let execution_id = lease.execution_id.clone();
    let fence = types::LeaseFence {
        lease_id: lease.lease_id.clone(),
        lease_epoch: lease.lease_epoch,
        attempt_id: lease.attempt_id.clone(),
    };
    let condition_json = CONDITION_JSON.to_owned();
    let mut details = None;
    op(&mut |conn| {
        let args = guest::SuspendArgs {
            suspension_id: SuspensionId::new().to_string(),
            waitpoints: vec![guest::WaitpointBinding::Fresh(FreshWaitpoint {
                waitpoint_id: WaitpointId::new().to_string(),
                waitpoint_key: "wpk:bench".into(),
            })],
            condition_json: condition_json.clone(),
            reason_code: "waiting_for_signal".into(),
            requested_by: "worker".into(),
            timeout_at: None,
            timeout_behavior: "fail".into(),
            idempotency_key: None,
            now: now_ms(),
        };
        let outcome = in_transaction(conn, |db| {
            ff_engine_guest::suspension::suspend_by_triple(
                db,
                &mut NativeTokens(conn),
                &execution_id,
                &fence,
                &args,
            )
        })
        .expect("native suspend");
        let (SuspendOutcome::Suspended(found) | SuspendOutcome::AlreadySatisfied(found)) = outcome;
        details = Some(found);
    });
    let waitpoint = details.expect("suspended above").waitpoints.remove(0);
    op(&mut |conn| {
        let args = GuestSignal {
            execution_id: execution_id.clone(),
            waitpoint_id: waitpoint.waitpoint_id.clone(),
            signal_id: SignalId::new().to_string(),
            signal_name: "go".into(),
            signal_category: "external".into(),
            source_type: "bench".into(),
            source_identity: "ffbench".into(),
            payload: None,
            correlation_id: None,
            idempotency_key: None,
            dedup_ttl_ms: None,
            max_signals_per_execution: None,
            waitpoint_token: waitpoint.token.clone(),
            now: now_ms(),
        };
        in_transaction(conn, |db| {
            ff_engine_guest::suspension::deliver_signal(db, &mut NativeTokens(conn), &args)
        })
        .expect("native deliver_signal");
    });
    let mut resumed = None;
    op(&mut |conn| {
        let args = recovery::ClaimResumedExecutionArgs {
            execution_id: execution_id.clone(),
            worker_id: WORKER.into(),
            worker_instance_id: "bench-instance".into(),
            lane_id: LANE.into(),
            lease_id: LeaseId::new().to_string(),
            lease_ttl_ms: LEASE_TTL_MS,
            attempt_id: AttemptId::new().to_string(),
            now: now_ms(),
        };
        resumed = Some(
            in_transaction(conn, |db| {
                ff_engine_guest::recovery::claim_resumed_execution(db, &args)
            })
            .expect("native claim_resumed_execution"),
        );
    });
    let resumed = resumed.expect("claimed above");
    op(&mut |conn| {
        let args = lease_holder::CompleteExecutionArgs {
            execution_id: execution_id.clone(),
            fence: Some(types::LeaseFence {
                lease_id: resumed.lease_id.clone(),
                lease_epoch: resumed.lease_epoch,
                attempt_id: resumed.attempt_id.clone(),
            }),
            attempt_index: resumed.attempt_index,
            result_payload: Some(b"{\"ok\":true}".to_vec()),
            result_encoding: Some("json".into()),
            source: types::CancelSource::LeaseHolder,
            now: now_ms(),
        };
        in_transaction(conn, |db| {
            ff_engine_guest::lease_holder::complete_execution(db, &args)
        })
        .expect("native complete");
    });
}

/// [`condition`] as the backend passes it to the guest (ff-core's serde JSON).
const CONDITION_JSON: &str =
    r#"{"Single":{"waitpoint_key":"wpk:bench","matcher":{"ByName":"go"}}}"#;
