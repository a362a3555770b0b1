//! Unit tests of the lease holder's operations against real SQLite: one test per validation row
//! (each asserting that the failed call wrote nothing), and happy paths asserting every row
//! and column written.

use super::*;
use crate::bindings::lease_holder::{Backoff, RetryScheduled};
use crate::bindings::scheduling::ClaimExecutionArgs;
use crate::exec::MAX_PAYLOAD_BYTES;
use crate::scheduling::claim_execution;
use crate::testing::{ATTEMPT, EXEC, EXEC_UUID, LEASE, NOW, TTL, TestDb, claim_args};
use crate::types::{AttemptType, Entity, ExecutionNotActive, LeaseFence, ValidationKind};

const HEX: &str = "53AD96D26B084D0C86E336598DB2291C";
/// When the operation under test runs: the lease (until `NOW + TTL`) is live.
const LATER: i64 = NOW + 10_000;
const OTHER_ID: &str = "33333333-3333-4333-8333-333333333333";

// ---------------------------------------------------------------------------------------
// Fixtures and helpers
// ---------------------------------------------------------------------------------------

/// The claim of attempt 1 (after a retry) at `LATER`, with lease and attempt id `OTHER_ID`.
fn next_attempt_claim_args() -> ClaimExecutionArgs {
    ClaimExecutionArgs {
        lease_id: OTHER_ID.into(),
        attempt_id: OTHER_ID.into(),
        expected_attempt_index: 1,
        now: LATER,
        ..claim_args(EXEC)
    }
}

/// An upstream-style seeded lease: the execution active and leased, attempt 0 at epoch 1
/// without recorded ids, no outbox rows.
fn seeded_lease() -> TestDb {
    let db = TestDb::runnable();
    db.exec(
        "UPDATE ff_exec_core SET lifecycle_phase = 'active', ownership_state = 'leased', \
         eligibility_state = 'not_applicable', public_state = 'active', \
         attempt_state = 'running_attempt', blocking_reason = NULL",
    );
    db.exec(&format!(
        "INSERT INTO ff_attempt (partition_key, execution_id, attempt_index, worker_id, \
             worker_instance_id, lease_epoch, lease_expires_at_ms, started_at_ms) \
         SELECT 0, execution_id, 0, 'worker-1', 'wi-1', 1, {}, {NOW} FROM ff_exec_core",
        NOW + TTL as i64
    ));
    db
}

fn fence() -> LeaseFence {
    LeaseFence {
        lease_id: LEASE.into(),
        lease_epoch: 1,
        attempt_id: ATTEMPT.into(),
    }
}

fn renew_args() -> RenewLeaseArgs {
    RenewLeaseArgs {
        execution_id: EXEC.into(),
        attempt_index: 0,
        fence: Some(fence()),
        lease_ttl_ms: 60_000,
        now: LATER,
    }
}

fn complete_args() -> CompleteExecutionArgs {
    CompleteExecutionArgs {
        execution_id: EXEC.into(),
        fence: Some(fence()),
        attempt_index: 0,
        result_payload: Some(b"done".to_vec()),
        result_encoding: Some("json".into()),
        source: CancelSource::LeaseHolder,
        now: LATER,
    }
}

fn fail_args() -> FailExecutionArgs {
    FailExecutionArgs {
        execution_id: EXEC.into(),
        fence: Some(fence()),
        attempt_index: 0,
        failure_reason: "boom".into(),
        failure_category: "transient".into(),
        retry_policy: None,
        source: CancelSource::LeaseHolder,
        now: LATER,
    }
}

fn handle() -> HandleLease {
    HandleLease {
        execution_id: EXEC.into(),
        attempt_index: 0,
        attempt_id: ATTEMPT.into(),
        lease_id: LEASE.into(),
        lease_epoch: 1,
        lease_ttl_ms: 60_000,
        lane_id: "default".into(),
        worker_instance_id: "wi-1".into(),
    }
}

fn fixed(max_retries: u32, delay_ms: u64) -> RetryPolicy {
    RetryPolicy {
        max_retries,
        backoff: Backoff::Fixed(delay_ms),
        retryable_categories: Vec::new(),
    }
}

fn set_policy(db: &TestDb, policy: &str) {
    db.exec(&format!("UPDATE ff_exec_core SET policy = '{policy}'"));
}

fn set_retry_count(db: &TestDb, count: i64) {
    db.exec(&format!(
        "UPDATE ff_exec_core SET raw_fields = json_set(raw_fields, '$.retry_count', '{count}')"
    ));
}

fn assert_invalid_input(err: &EngineError, detail: Option<&str>) {
    match err {
        EngineError::Validation(v) if v.kind == ValidationKind::InvalidInput => {
            if let Some(detail) = detail {
                assert_eq!(v.detail, detail);
            }
        }
        other => panic!("expected Validation(InvalidInput), got {other:?}"),
    }
}

fn assert_payload_too_large(err: &EngineError) {
    assert!(
        matches!(err, EngineError::Validation(v) if v.kind == ValidationKind::PayloadTooLarge),
        "{err:?}"
    );
}

fn not_active_err(
    outcome: Option<&str>,
    epoch: Option<&str>,
    phase: &str,
    attempt_id: Option<&str>,
) -> EngineError {
    EngineError::Contention(ContentionKind::ExecutionNotActive(ExecutionNotActive {
        terminal_outcome: outcome.map(Into::into),
        lease_epoch: epoch.map(Into::into),
        lifecycle_phase: phase.into(),
        attempt_id: attempt_id.map(Into::into),
    }))
}

const STALE: EngineError = EngineError::State(StateKind::StaleLease);
const EXPIRED: EngineError = EngineError::State(StateKind::LeaseExpired);
const REVOKED: EngineError = EngineError::State(StateKind::LeaseRevoked);
const CONFLICT: EngineError = EngineError::Contention(ContentionKind::LeaseConflict);
const NO_ATTEMPT: EngineError = EngineError::NotFound(Entity::Attempt);
const NO_EXECUTION: EngineError = EngineError::NotFound(Entity::Execution);

/// The six state columns and `attempt_index` of the execution.
fn exec_state(db: &TestDb) -> String {
    db.one(
        "SELECT lifecycle_phase || '|' || ownership_state || '|' || eligibility_state || '|' || \
             public_state || '|' || attempt_state || '|' || COALESCE(blocking_reason, 'NULL') || '|' || \
             attempt_index FROM ff_exec_core",
    )
}

/// Worker, instance, epoch, expiry, start, end and outcome of attempt `index`.
fn attempt_row(db: &TestDb, index: i64) -> String {
    db.one(&format!(
        "SELECT worker_id || '|' || worker_instance_id || '|' || lease_epoch || '|' || \
             COALESCE(lease_expires_at_ms, 'NULL') || '|' || started_at_ms || '|' || \
             COALESCE(terminal_at_ms, 'NULL') || '|' || COALESCE(outcome, 'NULL') \
         FROM ff_attempt WHERE attempt_index = {index}"
    ))
}

/// `raw_fields.<key>` of the execution as `<json type>:<value>`, or `absent`.
fn raw(db: &TestDb, key: &str) -> String {
    db.one(&format!(
        "SELECT COALESCE(json_type(raw_fields, '$.{key}') || ':' || json_extract(raw_fields, '$.{key}'), \
             'absent') FROM ff_exec_core"
    ))
}

fn exec_column(db: &TestDb, column: &str) -> String {
    db.one(&format!("SELECT quote({column}) FROM ff_exec_core"))
}

/// The lease events, oldest first: `type:lease_id:at`, all for this execution with the
/// namespace and instance tag copied from the execution.
fn lease_events(db: &TestDb) -> String {
    assert_eq!(
        db.one(
            "SELECT COUNT(*) FROM ff_lease_event WHERE execution_id != '53ad96d2-6b08-4d0c-86e3-36598db2291c' \
             OR partition_key != 0 OR namespace IS NOT 'ns' OR instance_tag IS NOT 'inst'"
        ),
        "0",
        "lease events must name the execution and copy namespace and instance tag ({EXEC_UUID})"
    );
    db.one(
        "SELECT COALESCE(group_concat(event_type || ':' || COALESCE(lease_id, 'NULL') || ':' || \
             occurred_at_ms, ','), '') FROM (SELECT * FROM ff_lease_event ORDER BY event_id)",
    )
}

/// The completion events, oldest first: `outcome:at`, all for this execution (no flow) with
/// the namespace and instance tag copied.
fn completion_events(db: &TestDb) -> String {
    assert_eq!(
        db.one(&format!(
            "SELECT COUNT(*) FROM ff_completion_event WHERE hex(execution_id) != '{HEX}' \
             OR partition_key != 0 OR flow_id IS NOT NULL OR namespace IS NOT 'ns' \
             OR instance_tag IS NOT 'inst' OR dispatched_at_ms IS NOT NULL"
        )),
        "0"
    );
    db.one(
        "SELECT COALESCE(group_concat(outcome || ':' || occurred_at_ms, ','), '') \
         FROM (SELECT * FROM ff_completion_event ORDER BY event_id)",
    )
}

fn acquired() -> String {
    format!("acquired:{LEASE}:{NOW}")
}

// ---------------------------------------------------------------------------------------
// renew_lease
// ---------------------------------------------------------------------------------------

#[test]
fn renew_lease_moves_only_the_expiry_and_records_renewed() {
    let mut db = TestDb::leased();
    let exec_before = db.dump_table("ff_exec_core");
    let attempt_raw = db.one("SELECT raw_fields FROM ff_attempt");
    let expires = renew_lease(&mut db, &renew_args()).expect("renew");
    assert_eq!(expires, LATER + 60_000);
    assert_eq!(
        attempt_row(&db, 0),
        format!("worker-1|wi-1|1|{}|{NOW}|NULL|NULL", LATER + 60_000)
    );
    assert_eq!(db.one("SELECT raw_fields FROM ff_attempt"), attempt_raw);
    assert_eq!(db.dump_table("ff_exec_core"), exec_before);
    assert_eq!(
        lease_events(&db),
        format!("{},renewed:{LEASE}:{LATER}", acquired())
    );
    assert_eq!(completion_events(&db), "");
    // Renewals repeat while the lease is live; each records an event.
    let mut again = renew_args();
    again.now = LATER + 1;
    assert_eq!(renew_lease(&mut db, &again).unwrap(), LATER + 60_001);
    assert_eq!(db.one("SELECT COUNT(*) FROM ff_lease_event"), "3");
}

#[test]
fn renew_lease_requires_a_fence() {
    let mut db = TestDb::leased();
    let mut args = renew_args();
    args.fence = None;
    let err = db.fails_unchanged(|db| renew_lease(db, &args));
    assert_invalid_input(&err, Some("fence_required"));
}

#[test]
fn renew_lease_zero_ttl_is_invalid_input() {
    let mut db = TestDb::leased();
    let mut args = renew_args();
    args.lease_ttl_ms = 0;
    let err = db.fails_unchanged(|db| renew_lease(db, &args));
    assert_invalid_input(&err, None);
}

#[test]
fn renew_lease_missing_attempt_is_not_found_even_without_an_execution() {
    let mut db = TestDb::leased();
    let mut args = renew_args();
    args.attempt_index = 3;
    assert_eq!(db.fails_unchanged(|db| renew_lease(db, &args)), NO_ATTEMPT);
    let mut empty = TestDb::new();
    assert_eq!(
        empty.fails_unchanged(|db| renew_lease(db, &renew_args())),
        NO_ATTEMPT
    );
}

#[test]
fn renew_lease_fence_mismatch_is_stale() {
    let fences = [
        LeaseFence {
            lease_epoch: 2,
            ..fence()
        },
        LeaseFence {
            lease_id: OTHER_ID.into(),
            ..fence()
        },
        LeaseFence {
            attempt_id: OTHER_ID.into(),
            ..fence()
        },
    ];
    for bad in fences {
        let mut db = TestDb::leased();
        let args = RenewLeaseArgs {
            fence: Some(bad.clone()),
            ..renew_args()
        };
        assert_eq!(
            db.fails_unchanged(|db| renew_lease(db, &args)),
            STALE,
            "{bad:?}"
        );
    }
}

#[test]
fn renew_lease_fence_ids_compare_only_where_recorded_and_ignore_case() {
    let mut db = TestDb::leased();
    let upper = LeaseFence {
        lease_id: LEASE.to_uppercase(),
        attempt_id: ATTEMPT.to_uppercase(),
        lease_epoch: 1,
    };
    let args = RenewLeaseArgs {
        fence: Some(upper),
        ..renew_args()
    };
    renew_lease(&mut db, &args).expect("ids compare case-insensitively");
    // The event names the lease id the claim recorded, not the caller's spelling.
    assert!(lease_events(&db).ends_with(&format!("renewed:{LEASE}:{LATER}")));

    // A hand-seeded attempt row records no ids: only the epoch fences, and the event names
    // the presented lease id.
    let mut db = seeded_lease();
    let args = RenewLeaseArgs {
        fence: Some(LeaseFence {
            lease_id: OTHER_ID.into(),
            attempt_id: OTHER_ID.into(),
            lease_epoch: 1,
        }),
        ..renew_args()
    };
    assert_eq!(renew_lease(&mut db, &args).unwrap(), LATER + 60_000);
    assert_eq!(lease_events(&db), format!("renewed:{OTHER_ID}:{LATER}"));
}

#[test]
fn renew_lease_missing_execution_is_not_found() {
    let mut db = TestDb::leased();
    db.exec("DELETE FROM ff_exec_core");
    assert_eq!(
        db.fails_unchanged(|db| renew_lease(db, &renew_args())),
        NO_EXECUTION
    );
}

#[test]
fn renew_lease_revoked_ownership_wins_over_a_non_active_lifecycle() {
    let mut db = TestDb::leased();
    db.exec(
        "UPDATE ff_exec_core SET ownership_state = 'lease_revoked', lifecycle_phase = 'terminal'",
    );
    assert_eq!(
        db.fails_unchanged(|db| renew_lease(db, &renew_args())),
        REVOKED
    );
}

#[test]
fn renew_lease_non_active_execution_reports_the_observed_state() {
    let mut db = TestDb::leased();
    db.exec(
        "UPDATE ff_exec_core SET lifecycle_phase = 'terminal', \
         raw_fields = json_set(raw_fields, '$.terminal_outcome', 'success')",
    );
    assert_eq!(
        db.fails_unchanged(|db| renew_lease(db, &renew_args())),
        not_active_err(Some("success"), Some("1"), "terminal", Some(ATTEMPT))
    );
    let mut db = seeded_lease();
    db.exec("UPDATE ff_exec_core SET lifecycle_phase = 'runnable'");
    let args = RenewLeaseArgs {
        fence: Some(LeaseFence {
            lease_id: OTHER_ID.into(),
            ..fence()
        }),
        ..renew_args()
    };
    assert_eq!(
        db.fails_unchanged(|db| renew_lease(db, &args)),
        not_active_err(None, Some("1"), "runnable", None)
    );
}

#[test]
fn renew_lease_reclaimable_ownership_is_expired() {
    let mut db = TestDb::leased();
    db.exec("UPDATE ff_exec_core SET ownership_state = 'lease_expired_reclaimable'");
    assert_eq!(
        db.fails_unchanged(|db| renew_lease(db, &renew_args())),
        EXPIRED
    );
}

#[test]
fn renew_lease_for_an_attempt_that_is_not_current_is_stale() {
    let mut db = TestDb::leased();
    db.exec(
        "INSERT INTO ff_attempt (partition_key, execution_id, attempt_index, lease_epoch, lease_expires_at_ms) \
         SELECT 0, execution_id, 1, 1, 9000000000000 FROM ff_exec_core",
    );
    db.exec("UPDATE ff_exec_core SET attempt_index = 1");
    assert_eq!(
        db.fails_unchanged(|db| renew_lease(db, &renew_args())),
        STALE
    );
}

#[test]
fn renew_lease_lapsed_or_missing_expiry_is_expired() {
    let mut db = TestDb::leased();
    let args = RenewLeaseArgs {
        now: NOW + TTL as i64,
        ..renew_args()
    };
    assert_eq!(db.fails_unchanged(|db| renew_lease(db, &args)), EXPIRED);
    db.exec("UPDATE ff_attempt SET lease_expires_at_ms = NULL");
    assert_eq!(
        db.fails_unchanged(|db| renew_lease(db, &renew_args())),
        EXPIRED
    );
}

#[test]
fn renew_lease_huge_ttl_saturates() {
    let mut db = TestDb::leased();
    let args = RenewLeaseArgs {
        lease_ttl_ms: u64::MAX,
        ..renew_args()
    };
    assert_eq!(renew_lease(&mut db, &args).unwrap(), i64::MAX);
    assert_eq!(
        db.one("SELECT lease_expires_at_ms FROM ff_attempt"),
        i64::MAX.to_string()
    );
}

// ---------------------------------------------------------------------------------------
// complete_execution
// ---------------------------------------------------------------------------------------

#[test]
fn complete_execution_writes_attempt_execution_and_outbox() {
    let mut db = TestDb::leased();
    let started = exec_column(&db, "started_at_ms");
    complete_execution(&mut db, &complete_args()).expect("complete");
    assert_eq!(
        attempt_row(&db, 0),
        format!("worker-1|wi-1|1|NULL|{NOW}|{LATER}|success")
    );
    assert_eq!(
        exec_state(&db),
        "terminal|unowned|not_applicable|completed|attempt_terminal|NULL|0"
    );
    assert_eq!(exec_column(&db, "terminal_at_ms"), LATER.to_string());
    assert_eq!(exec_column(&db, "result"), "X'646F6E65'"); // "done"
    assert_eq!(exec_column(&db, "started_at_ms"), started);
    assert_eq!(raw(&db, "terminal_outcome"), "text:success");
    assert_eq!(raw(&db, "last_mutation_at"), format!("text:{LATER}"));
    assert_eq!(raw(&db, "result_encoding"), "text:json");
    assert_eq!(raw(&db, "failure_reason"), "absent");
    assert_eq!(completion_events(&db), format!("success:{LATER}"));
    assert_eq!(
        lease_events(&db),
        format!("{},revoked:{LEASE}:{LATER}", acquired())
    );
}

#[test]
fn complete_execution_without_payload_stores_null_and_no_encoding() {
    let mut db = TestDb::leased();
    let args = CompleteExecutionArgs {
        result_payload: None,
        result_encoding: None,
        ..complete_args()
    };
    complete_execution(&mut db, &args).unwrap();
    assert_eq!(exec_column(&db, "result"), "NULL");
    assert_eq!(raw(&db, "result_encoding"), "absent");
    assert_eq!(raw(&db, "terminal_outcome"), "text:success");
}

#[test]
fn complete_execution_requires_a_fence_unless_an_operator_overrides() {
    for source in [
        CancelSource::LeaseHolder,
        CancelSource::FlowCascade,
        CancelSource::SystemTimeout,
        CancelSource::Custom("x".into()),
    ] {
        let mut db = TestDb::leased();
        let args = CompleteExecutionArgs {
            fence: None,
            source: source.clone(),
            ..complete_args()
        };
        let err = db.fails_unchanged(|db| complete_execution(db, &args));
        assert_invalid_input(&err, Some("fence_required"));
    }
}

#[test]
fn complete_execution_by_an_operator_needs_no_fence_and_ignores_a_lapsed_lease() {
    let mut db = seeded_lease();
    db.exec(&format!(
        "UPDATE ff_attempt SET lease_expires_at_ms = {}",
        NOW - 1
    ));
    let args = CompleteExecutionArgs {
        fence: None,
        source: CancelSource::OperatorOverride,
        ..complete_args()
    };
    complete_execution(&mut db, &args).expect("operator complete");
    assert_eq!(
        exec_state(&db),
        "terminal|unowned|not_applicable|completed|attempt_terminal|NULL|0"
    );
    // Neither the hand-seeded row nor the caller names a lease.
    assert_eq!(lease_events(&db), format!("revoked:NULL:{LATER}"));
    assert_eq!(completion_events(&db), format!("success:{LATER}"));
}

#[test]
fn complete_execution_payload_over_the_limit_is_too_large() {
    let mut db = TestDb::leased();
    let args = CompleteExecutionArgs {
        result_payload: Some(vec![0; MAX_PAYLOAD_BYTES + 1]),
        ..complete_args()
    };
    let err = db.fails_unchanged(|db| complete_execution(db, &args));
    assert_payload_too_large(&err);
}

#[test]
fn complete_execution_missing_execution_is_checked_before_the_attempt() {
    let mut db = TestDb::new();
    assert_eq!(
        db.fails_unchanged(|db| complete_execution(db, &complete_args())),
        NO_EXECUTION
    );
}

#[test]
fn complete_execution_revoked_ownership_is_lease_revoked() {
    let mut db = TestDb::leased();
    db.exec(
        "UPDATE ff_exec_core SET ownership_state = 'lease_revoked', lifecycle_phase = 'runnable'",
    );
    assert_eq!(
        db.fails_unchanged(|db| complete_execution(db, &complete_args())),
        REVOKED
    );
}

#[test]
fn complete_execution_replay_fails_as_not_active_and_writes_nothing() {
    let mut db = TestDb::leased();
    complete_execution(&mut db, &complete_args()).unwrap();
    assert_eq!(
        db.fails_unchanged(|db| complete_execution(db, &complete_args())),
        not_active_err(Some("success"), Some("1"), "terminal", Some(ATTEMPT))
    );
    assert_eq!(completion_events(&db), format!("success:{LATER}"));
}

#[test]
fn complete_execution_not_active_wins_over_a_stale_fence() {
    let mut db = TestDb::leased();
    db.exec("UPDATE ff_exec_core SET lifecycle_phase = 'suspended'");
    let args = CompleteExecutionArgs {
        fence: Some(LeaseFence {
            lease_epoch: 9,
            ..fence()
        }),
        ..complete_args()
    };
    assert_eq!(
        db.fails_unchanged(|db| complete_execution(db, &args)),
        not_active_err(None, Some("1"), "suspended", Some(ATTEMPT))
    );
}

#[test]
fn complete_execution_missing_attempt_is_not_found() {
    let mut db = TestDb::leased();
    let args = CompleteExecutionArgs {
        attempt_index: 4,
        ..complete_args()
    };
    assert_eq!(
        db.fails_unchanged(|db| complete_execution(db, &args)),
        NO_ATTEMPT
    );
}

#[test]
fn complete_execution_stale_fence_is_refused_even_for_an_operator() {
    for source in [CancelSource::LeaseHolder, CancelSource::OperatorOverride] {
        let mut db = TestDb::leased();
        let args = CompleteExecutionArgs {
            fence: Some(LeaseFence {
                lease_epoch: 8,
                ..fence()
            }),
            source,
            ..complete_args()
        };
        assert_eq!(
            db.fails_unchanged(|db| complete_execution(db, &args)),
            STALE
        );
    }
}

#[test]
fn complete_execution_for_an_attempt_that_is_not_current_is_stale() {
    let mut db = TestDb::leased();
    db.exec(
        "INSERT INTO ff_attempt (partition_key, execution_id, attempt_index, lease_epoch) \
         SELECT 0, execution_id, 1, 1 FROM ff_exec_core",
    );
    db.exec("UPDATE ff_exec_core SET attempt_index = 1");
    assert_eq!(
        db.fails_unchanged(|db| complete_execution(db, &complete_args())),
        STALE
    );
}

#[test]
fn complete_execution_by_the_worker_after_the_lease_lapsed_is_expired() {
    let mut db = TestDb::leased();
    let args = CompleteExecutionArgs {
        now: NOW + TTL as i64,
        ..complete_args()
    };
    assert_eq!(
        db.fails_unchanged(|db| complete_execution(db, &args)),
        EXPIRED
    );
    // No recorded expiry is not a lapsed lease.
    db.exec("UPDATE ff_attempt SET lease_expires_at_ms = NULL");
    complete_execution(&mut db, &args).expect("a NULL expiry passes");
}

// ---------------------------------------------------------------------------------------
// fail_execution
// ---------------------------------------------------------------------------------------

#[test]
fn fail_execution_without_a_policy_fails_terminally() {
    let mut db = TestDb::leased();
    let outcome = fail_execution(&mut db, &fail_args()).expect("fail");
    assert_eq!(outcome, FailOutcome::TerminalFailed);
    assert_eq!(
        attempt_row(&db, 0),
        format!("worker-1|wi-1|1|NULL|{NOW}|{LATER}|failed")
    );
    assert_eq!(
        exec_state(&db),
        "terminal|unowned|not_applicable|failed|attempt_terminal|NULL|0"
    );
    assert_eq!(exec_column(&db, "terminal_at_ms"), LATER.to_string());
    assert_eq!(exec_column(&db, "result"), "NULL");
    assert_eq!(raw(&db, "failure_reason"), "text:boom");
    assert_eq!(raw(&db, "terminal_outcome"), "text:failed");
    assert_eq!(raw(&db, "last_mutation_at"), format!("text:{LATER}"));
    assert_eq!(raw(&db, "last_failure_message"), "absent");
    assert_eq!(raw(&db, "retry_count"), "absent");
    assert_eq!(completion_events(&db), format!("failed:{LATER}"));
    assert_eq!(
        lease_events(&db),
        format!("{},revoked:{LEASE}:{LATER}", acquired())
    );
}

#[test]
fn fail_execution_schedules_a_retry_with_the_argument_policy() {
    let mut db = TestDb::leased();
    let args = FailExecutionArgs {
        retry_policy: Some(fixed(3, 500)),
        ..fail_args()
    };
    let outcome = fail_execution(&mut db, &args).expect("fail");
    assert_eq!(
        outcome,
        FailOutcome::RetryScheduled(RetryScheduled {
            delay_until: LATER + 500,
            next_attempt_index: 1,
        })
    );
    assert_eq!(
        attempt_row(&db, 0),
        format!("worker-1|wi-1|1|NULL|{NOW}|{LATER}|retry")
    );
    assert_eq!(
        exec_state(&db),
        "runnable|unowned|not_eligible_until_time|delayed|pending_retry_attempt|waiting_for_retry_backoff|0"
    );
    assert_eq!(exec_column(&db, "terminal_at_ms"), "NULL");
    assert_eq!(raw(&db, "pending_retry_reason"), "text:boom");
    assert_eq!(raw(&db, "pending_previous_attempt_index"), "text:0");
    assert_eq!(raw(&db, "retry_count"), "text:1");
    assert_eq!(raw(&db, "delay_until"), format!("text:{}", LATER + 500));
    assert_eq!(raw(&db, "failure_reason"), "text:boom");
    assert_eq!(raw(&db, "last_mutation_at"), format!("text:{LATER}"));
    assert_eq!(raw(&db, "terminal_outcome"), "absent");
    assert_eq!(raw(&db, "last_failure_message"), "absent");
    assert_eq!(completion_events(&db), "");
    assert_eq!(
        lease_events(&db),
        format!("{},revoked:{LEASE}:{LATER}", acquired())
    );
}

#[test]
fn fail_execution_retry_without_delay_is_claimable_at_once_as_the_next_attempt() {
    let mut db = TestDb::leased();
    let args = FailExecutionArgs {
        retry_policy: Some(fixed(1, 0)),
        ..fail_args()
    };
    assert_eq!(
        fail_execution(&mut db, &args).unwrap(),
        FailOutcome::RetryScheduled(RetryScheduled {
            delay_until: LATER,
            next_attempt_index: 1,
        })
    );
    assert_eq!(
        exec_state(&db),
        "runnable|unowned|eligible_now|waiting|pending_retry_attempt|waiting_for_worker|0"
    );
    db.seed_grant(EXEC, "worker-1", LATER + 60_000);
    let claimed = claim_execution(&mut db, &next_attempt_claim_args()).unwrap();
    assert_eq!(claimed.attempt_type, AttemptType::Retry);
    assert_eq!(claimed.lease_epoch, 1);
    assert_eq!(exec_state(&db).rsplit('|').next(), Some("1"));
    // The retry budget is spent: the next failure is terminal.
    let second = FailExecutionArgs {
        attempt_index: 1,
        fence: Some(LeaseFence {
            lease_id: OTHER_ID.into(),
            attempt_id: OTHER_ID.into(),
            lease_epoch: 1,
        }),
        retry_policy: Some(fixed(1, 0)),
        now: LATER + 1,
        ..fail_args()
    };
    assert_eq!(
        fail_execution(&mut db, &second).unwrap(),
        FailOutcome::TerminalFailed
    );
}

#[test]
fn fail_execution_uses_the_stored_policy_and_the_current_retry_count() {
    let mut db = TestDb::leased();
    set_policy(
        &db,
        r#"{"retry_policy":{"max_retries":4,"backoff":{"type":"exponential","initial_delay_ms":100,"max_delay_ms":60000,"multiplier":3.0}}}"#,
    );
    set_retry_count(&db, 2);
    assert_eq!(
        fail_execution(&mut db, &fail_args()).unwrap(),
        FailOutcome::RetryScheduled(RetryScheduled {
            delay_until: LATER + 900,
            next_attempt_index: 1,
        })
    );
    assert_eq!(raw(&db, "retry_count"), "text:3");
}

#[test]
fn fail_execution_retries_only_the_categories_a_policy_names() {
    let categories = |names: &[&str]| RetryPolicy {
        retryable_categories: names.iter().map(|name| name.to_string()).collect(),
        ..fixed(3, 500)
    };
    // The argument's policy: a named category retries, another fails terminally.
    let mut db = TestDb::leased();
    let args = FailExecutionArgs {
        retry_policy: Some(categories(&["timeout", "transient"])),
        ..fail_args()
    };
    assert!(matches!(
        fail_execution(&mut db, &args).unwrap(),
        FailOutcome::RetryScheduled(_)
    ));
    let mut db = TestDb::leased();
    let args = FailExecutionArgs {
        retry_policy: Some(categories(&["timeout"])),
        ..fail_args()
    };
    assert_eq!(
        fail_execution(&mut db, &args).unwrap(),
        FailOutcome::TerminalFailed
    );
    // The stored policy: the same, read from `retryable_categories`.
    for (stored, expected_retry) in [
        (r#"["provider_error","transient"]"#, true),
        (r#"["provider_error"]"#, false),
        ("[]", true),
    ] {
        let mut db = TestDb::leased();
        set_policy(
            &db,
            &format!(
                r#"{{"retry_policy":{{"max_retries":2,"backoff":{{"type":"fixed","delay_ms":5}},"retryable_categories":{stored}}}}}"#
            ),
        );
        let outcome = fail_execution(&mut db, &fail_args()).unwrap();
        assert_eq!(
            matches!(outcome, FailOutcome::RetryScheduled(_)),
            expected_retry,
            "{stored}: {outcome:?}"
        );
    }
}

#[test]
fn fail_execution_argument_policy_overrides_the_stored_one() {
    let mut db = TestDb::leased();
    set_policy(&db, r#"{"priority":0}"#);
    let args = FailExecutionArgs {
        retry_policy: Some(fixed(1, 7)),
        ..fail_args()
    };
    assert!(matches!(
        fail_execution(&mut db, &args).unwrap(),
        FailOutcome::RetryScheduled(RetryScheduled { delay_until, .. }) if delay_until == LATER + 7
    ));
}

#[test]
fn fail_execution_with_the_budget_spent_fails_terminally() {
    let mut db = TestDb::leased();
    set_policy(&db, r#"{"retry_policy":{"max_retries":3}}"#);
    set_retry_count(&db, 3);
    assert_eq!(
        fail_execution(&mut db, &fail_args()).unwrap(),
        FailOutcome::TerminalFailed
    );
    assert_eq!(raw(&db, "retry_count"), "text:3");
    assert_eq!(completion_events(&db), format!("failed:{LATER}"));
}

#[test]
fn fail_execution_stored_policy_without_retries_fails_terminally() {
    for policy in ["", r#"{"priority":3}"#, r#"{"retry_policy":null}"#] {
        let mut db = TestDb::leased();
        set_policy(&db, policy);
        assert_eq!(
            fail_execution(&mut db, &fail_args()).unwrap(),
            FailOutcome::TerminalFailed,
            "{policy}"
        );
    }
}

#[test]
fn fail_execution_requires_a_fence_unless_an_operator_overrides() {
    let mut db = TestDb::leased();
    let args = FailExecutionArgs {
        fence: None,
        ..fail_args()
    };
    let err = db.fails_unchanged(|db| fail_execution(db, &args));
    assert_invalid_input(&err, Some("fence_required"));
    let operator = FailExecutionArgs {
        source: CancelSource::OperatorOverride,
        ..args
    };
    assert_eq!(
        fail_execution(&mut db, &operator).unwrap(),
        FailOutcome::TerminalFailed
    );
    assert_eq!(
        lease_events(&db),
        format!("{},revoked:{LEASE}:{LATER}", acquired())
    );
}

#[test]
fn fail_execution_missing_attempt_is_not_found_even_without_an_execution() {
    let mut db = TestDb::leased();
    let args = FailExecutionArgs {
        attempt_index: 2,
        ..fail_args()
    };
    assert_eq!(
        db.fails_unchanged(|db| fail_execution(db, &args)),
        NO_ATTEMPT
    );
    let mut empty = TestDb::new();
    assert_eq!(
        empty.fails_unchanged(|db| fail_execution(db, &fail_args())),
        NO_ATTEMPT
    );
}

#[test]
fn fail_execution_stale_fence_wins_over_a_non_active_execution() {
    let mut db = TestDb::leased();
    db.exec("UPDATE ff_exec_core SET lifecycle_phase = 'terminal'");
    let args = FailExecutionArgs {
        fence: Some(LeaseFence {
            attempt_id: OTHER_ID.into(),
            ..fence()
        }),
        ..fail_args()
    };
    assert_eq!(db.fails_unchanged(|db| fail_execution(db, &args)), STALE);
}

#[test]
fn fail_execution_missing_execution_is_not_found() {
    let mut db = TestDb::leased();
    db.exec("DELETE FROM ff_exec_core");
    assert_eq!(
        db.fails_unchanged(|db| fail_execution(db, &fail_args())),
        NO_EXECUTION
    );
}

#[test]
fn fail_execution_revoked_ownership_is_lease_revoked() {
    let mut db = TestDb::leased();
    db.exec("UPDATE ff_exec_core SET ownership_state = 'lease_revoked'");
    assert_eq!(
        db.fails_unchanged(|db| fail_execution(db, &fail_args())),
        REVOKED
    );
}

#[test]
fn fail_execution_replay_after_a_retry_is_not_active() {
    let mut db = TestDb::leased();
    let args = FailExecutionArgs {
        retry_policy: Some(fixed(3, 500)),
        ..fail_args()
    };
    fail_execution(&mut db, &args).unwrap();
    assert_eq!(
        db.fails_unchanged(|db| fail_execution(db, &args)),
        not_active_err(None, Some("1"), "runnable", Some(ATTEMPT))
    );
}

#[test]
fn fail_execution_for_an_attempt_that_is_not_current_is_stale() {
    let mut db = TestDb::leased();
    db.exec(
        "INSERT INTO ff_attempt (partition_key, execution_id, attempt_index, lease_epoch) \
         SELECT 0, execution_id, 1, 1 FROM ff_exec_core",
    );
    db.exec("UPDATE ff_exec_core SET attempt_index = 1");
    assert_eq!(
        db.fails_unchanged(|db| fail_execution(db, &fail_args())),
        STALE
    );
}

#[test]
fn fail_execution_after_the_lease_lapsed_still_reports_the_failure() {
    let mut db = TestDb::leased();
    let args = FailExecutionArgs {
        now: NOW + TTL as i64 + 5,
        ..fail_args()
    };
    assert_eq!(
        fail_execution(&mut db, &args).unwrap(),
        FailOutcome::TerminalFailed
    );
}

// ---------------------------------------------------------------------------------------
// Handle operations
// ---------------------------------------------------------------------------------------

type HandleOp = fn(&mut TestDb, &HandleLease) -> Result<(), EngineError>;

/// Each handle operation with arguments that would succeed on a live lease.
fn handle_ops() -> [(&'static str, HandleOp); 4] {
    [
        ("renew", |db, lease| renew(db, lease, LATER).map(drop)),
        ("progress", |db, lease| {
            progress(db, lease, Some(5), Some("m"), LATER)
        }),
        ("complete", |db, lease| {
            complete(db, lease, Some(b"r"), LATER)
        }),
        ("fail", |db, lease| {
            fail(db, lease, "m", FailureClass::Permanent, LATER).map(drop)
        }),
    ]
}

/// Every handle operation on a fresh lease prepared by `setup`, called with `lease`, must fail
/// with `expected` and write nothing.
fn every_handle_op_fails(setup: impl Fn(&TestDb), lease: &HandleLease, expected: &EngineError) {
    for (name, op) in handle_ops() {
        let mut db = TestDb::leased();
        setup(&db);
        let err = db.fails_unchanged(|db| op(db, lease));
        assert_eq!(&err, expected, "{name}");
    }
}

#[test]
fn handle_ops_missing_attempt_is_not_found() {
    let lease = HandleLease {
        attempt_index: 5,
        ..handle()
    };
    every_handle_op_fails(|_| {}, &lease, &NO_ATTEMPT);
}

#[test]
fn handle_ops_fence_mismatch_is_lease_conflict() {
    for lease in [
        HandleLease {
            lease_epoch: 999,
            ..handle()
        },
        HandleLease {
            lease_id: OTHER_ID.into(),
            ..handle()
        },
        HandleLease {
            attempt_id: OTHER_ID.into(),
            ..handle()
        },
    ] {
        every_handle_op_fails(|_| {}, &lease, &CONFLICT);
    }
}

#[test]
fn handle_ops_missing_execution_is_not_found() {
    every_handle_op_fails(
        |db| db.exec("DELETE FROM ff_exec_core"),
        &handle(),
        &NO_EXECUTION,
    );
}

#[test]
fn handle_ops_on_a_non_active_or_unleased_execution_are_not_active() {
    every_handle_op_fails(
        |db| db.exec("UPDATE ff_exec_core SET lifecycle_phase = 'terminal'"),
        &handle(),
        &not_active_err(None, Some("1"), "terminal", Some(ATTEMPT)),
    );
    every_handle_op_fails(
        |db| db.exec("UPDATE ff_exec_core SET ownership_state = 'lease_expired_reclaimable'"),
        &handle(),
        &not_active_err(None, Some("1"), "active", Some(ATTEMPT)),
    );
}

#[test]
fn handle_ops_for_an_attempt_that_is_not_current_are_lease_conflict() {
    every_handle_op_fails(
        |db| {
            db.exec(
                "INSERT INTO ff_attempt (partition_key, execution_id, attempt_index, lease_epoch) \
                 SELECT 0, execution_id, 1, 1 FROM ff_exec_core",
            );
            db.exec("UPDATE ff_exec_core SET attempt_index = 1");
        },
        &handle(),
        &CONFLICT,
    );
}

#[test]
fn handle_ops_accept_hand_seeded_rows_on_the_epoch_alone() {
    for (name, op) in handle_ops() {
        let mut db = seeded_lease();
        let lease = HandleLease {
            lease_id: OTHER_ID.into(),
            attempt_id: OTHER_ID.into(),
            ..handle()
        };
        op(&mut db, &lease).unwrap_or_else(|e| panic!("{name}: {e:?}"));
    }
}

#[test]
fn handle_renew_moves_only_the_expiry_and_records_renewed() {
    let mut db = TestDb::leased();
    let exec_before = db.dump_table("ff_exec_core");
    assert_eq!(renew(&mut db, &handle(), LATER).unwrap(), LATER + 60_000);
    assert_eq!(
        attempt_row(&db, 0),
        format!("worker-1|wi-1|1|{}|{NOW}|NULL|NULL", LATER + 60_000)
    );
    assert_eq!(db.dump_table("ff_exec_core"), exec_before);
    assert_eq!(
        lease_events(&db),
        format!("{},renewed:{LEASE}:{LATER}", acquired())
    );
}

#[test]
fn handle_renew_of_a_lapsed_lease_is_expired() {
    let mut db = TestDb::leased();
    let at_expiry = NOW + TTL as i64;
    assert_eq!(
        db.fails_unchanged(|db| renew(db, &handle(), at_expiry)),
        EXPIRED
    );
    // The lapsed lease is reported before the zero TTL.
    let zero = HandleLease {
        lease_ttl_ms: 0,
        ..handle()
    };
    assert_eq!(
        db.fails_unchanged(|db| renew(db, &zero, at_expiry)),
        EXPIRED
    );
}

#[test]
fn handle_renew_zero_ttl_is_invalid_input() {
    let mut db = TestDb::leased();
    let zero = HandleLease {
        lease_ttl_ms: 0,
        ..handle()
    };
    let err = db.fails_unchanged(|db| renew(db, &zero, LATER));
    assert_invalid_input(&err, None);
}

#[test]
fn handle_progress_writes_an_integer_percent_and_the_message() {
    let mut db = TestDb::leased();
    let state = exec_state(&db);
    let events = db.dump_table("ff_lease_event");
    progress(&mut db, &handle(), Some(42), Some("halfway"), LATER).unwrap();
    assert_eq!(raw(&db, "progress_pct"), "integer:42");
    assert_eq!(raw(&db, "progress_message"), "text:halfway");
    assert_eq!(raw(&db, "last_mutation_at"), format!("text:{LATER}"));
    assert_eq!(exec_state(&db), state);
    assert_eq!(db.dump_table("ff_lease_event"), events);
    assert_eq!(completion_events(&db), "");
    assert_eq!(
        attempt_row(&db, 0),
        format!("worker-1|wi-1|1|{}|{NOW}|NULL|NULL", NOW + TTL as i64)
    );
}

#[test]
fn handle_progress_partial_updates_keep_the_other_key() {
    let mut db = TestDb::leased();
    progress(&mut db, &handle(), Some(10), None, LATER).unwrap();
    assert_eq!(raw(&db, "progress_pct"), "integer:10");
    assert_eq!(raw(&db, "progress_message"), "absent");
    progress(&mut db, &handle(), None, Some("later"), LATER + 1).unwrap();
    assert_eq!(raw(&db, "progress_pct"), "integer:10");
    assert_eq!(raw(&db, "progress_message"), "text:later");
    assert_eq!(raw(&db, "last_mutation_at"), format!("text:{}", LATER + 1));
    progress(&mut db, &handle(), Some(100), None, LATER + 2).unwrap();
    assert_eq!(raw(&db, "progress_pct"), "integer:100");
    assert_eq!(raw(&db, "progress_message"), "text:later");
}

#[test]
fn handle_progress_with_nothing_to_report_changes_nothing() {
    let mut db = TestDb::leased();
    let before = db.dump();
    progress(&mut db, &handle(), None, None, LATER).unwrap();
    assert_eq!(db.dump(), before);
    assert_eq!(raw(&db, "progress_pct"), "absent");
}

#[test]
fn handle_progress_over_100_percent_is_invalid_input() {
    let mut db = TestDb::leased();
    let err = db.fails_unchanged(|db| progress(db, &handle(), Some(101), Some("m"), LATER));
    assert_invalid_input(&err, None);
    // The lease is checked first.
    let stale = HandleLease {
        lease_epoch: 2,
        ..handle()
    };
    assert_eq!(
        db.fails_unchanged(|db| progress(db, &stale, Some(101), None, LATER)),
        CONFLICT
    );
}

#[test]
fn handle_complete_writes_what_complete_execution_writes() {
    let mut db = TestDb::leased();
    complete(&mut db, &handle(), Some(b"done"), LATER).unwrap();
    assert_eq!(
        attempt_row(&db, 0),
        format!("worker-1|wi-1|1|NULL|{NOW}|{LATER}|success")
    );
    assert_eq!(
        exec_state(&db),
        "terminal|unowned|not_applicable|completed|attempt_terminal|NULL|0"
    );
    assert_eq!(exec_column(&db, "terminal_at_ms"), LATER.to_string());
    assert_eq!(exec_column(&db, "result"), "X'646F6E65'");
    assert_eq!(raw(&db, "terminal_outcome"), "text:success");
    assert_eq!(raw(&db, "last_mutation_at"), format!("text:{LATER}"));
    assert_eq!(raw(&db, "result_encoding"), "absent");
    assert_eq!(completion_events(&db), format!("success:{LATER}"));
    assert_eq!(
        lease_events(&db),
        format!("{},revoked:{LEASE}:{LATER}", acquired())
    );
}

#[test]
fn handle_complete_payload_over_the_limit_is_too_large() {
    let mut db = TestDb::leased();
    let big = vec![0; MAX_PAYLOAD_BYTES + 1];
    let err = db.fails_unchanged(|db| complete(db, &handle(), Some(&big), LATER));
    assert_payload_too_large(&err);
}

#[test]
fn handle_replays_after_complete_are_refused_without_duplicate_outbox_rows() {
    let mut db = TestDb::leased();
    complete(&mut db, &handle(), None, LATER).unwrap();
    let finished = not_active_err(Some("success"), Some("1"), "terminal", Some(ATTEMPT));
    assert_eq!(
        db.fails_unchanged(|db| complete(db, &handle(), None, LATER + 1)),
        finished
    );
    assert_eq!(
        db.fails_unchanged(|db| renew(db, &handle(), LATER + 1)),
        finished
    );
    assert_eq!(completion_events(&db), format!("success:{LATER}"));
}

#[test]
fn handle_fail_permanent_timeout_and_cancelled_fail_terminally() {
    for class in [
        FailureClass::Permanent,
        FailureClass::Timeout,
        FailureClass::Cancelled,
    ] {
        let mut db = TestDb::leased();
        assert_eq!(
            fail(&mut db, &handle(), "bad input", class, LATER).unwrap(),
            FailOutcome::TerminalFailed,
            "{class:?}"
        );
        assert_eq!(
            attempt_row(&db, 0),
            format!("worker-1|wi-1|1|NULL|{NOW}|{LATER}|failed")
        );
        assert_eq!(
            exec_state(&db),
            "terminal|unowned|not_applicable|failed|attempt_terminal|NULL|0"
        );
        assert_eq!(exec_column(&db, "terminal_at_ms"), LATER.to_string());
        assert_eq!(raw(&db, "failure_reason"), "text:bad input");
        assert_eq!(raw(&db, "last_failure_message"), "text:bad input");
        assert_eq!(raw(&db, "terminal_outcome"), "text:failed");
        assert_eq!(raw(&db, "last_mutation_at"), format!("text:{LATER}"));
        assert_eq!(completion_events(&db), format!("failed:{LATER}"));
        assert_eq!(
            lease_events(&db),
            format!("{},revoked:{LEASE}:{LATER}", acquired())
        );
    }
}

#[test]
fn handle_fail_transient_retries_under_the_default_policy_without_a_stored_one() {
    for class in [FailureClass::Transient, FailureClass::InfraCrash] {
        let mut db = TestDb::leased();
        assert_eq!(
            fail(&mut db, &handle(), "flaky", class, LATER).unwrap(),
            FailOutcome::RetryScheduled(RetryScheduled {
                delay_until: LATER + 1000,
                next_attempt_index: 1,
            }),
            "{class:?}"
        );
        assert_eq!(
            attempt_row(&db, 0),
            format!("worker-1|wi-1|1|NULL|{NOW}|{LATER}|retry")
        );
        assert_eq!(
            exec_state(&db),
            "runnable|unowned|not_eligible_until_time|delayed|pending_retry_attempt|waiting_for_retry_backoff|0"
        );
        assert_eq!(exec_column(&db, "terminal_at_ms"), "NULL");
        assert_eq!(raw(&db, "pending_retry_reason"), "text:flaky");
        assert_eq!(raw(&db, "pending_previous_attempt_index"), "text:0");
        assert_eq!(raw(&db, "retry_count"), "text:1");
        assert_eq!(raw(&db, "delay_until"), format!("text:{}", LATER + 1000));
        assert_eq!(raw(&db, "failure_reason"), "text:flaky");
        assert_eq!(raw(&db, "last_failure_message"), "text:flaky");
        assert_eq!(raw(&db, "last_mutation_at"), format!("text:{LATER}"));
        assert_eq!(raw(&db, "terminal_outcome"), "absent");
        assert_eq!(completion_events(&db), "");
        assert_eq!(
            lease_events(&db),
            format!("{},revoked:{LEASE}:{LATER}", acquired())
        );
    }
}

#[test]
fn handle_fail_transient_grows_the_default_backoff_and_stops_after_three_retries() {
    for (retry_count, expected) in [(1, Some(2000)), (2, Some(4000)), (3, None)] {
        let mut db = TestDb::leased();
        set_retry_count(&db, retry_count);
        let outcome = fail(&mut db, &handle(), "flaky", FailureClass::Transient, LATER).unwrap();
        match expected {
            Some(delay) => assert_eq!(
                outcome,
                FailOutcome::RetryScheduled(RetryScheduled {
                    delay_until: LATER + delay,
                    next_attempt_index: 1,
                })
            ),
            None => {
                assert_eq!(outcome, FailOutcome::TerminalFailed);
                assert_eq!(raw(&db, "last_failure_message"), "text:flaky");
                assert_eq!(completion_events(&db), format!("failed:{LATER}"));
            }
        }
    }
}

#[test]
fn handle_fail_transient_follows_the_stored_policy() {
    let mut db = TestDb::leased();
    set_policy(
        &db,
        r#"{"retry_policy":{"max_retries":1,"backoff":{"type":"fixed","delay_ms":0}}}"#,
    );
    assert_eq!(
        fail(&mut db, &handle(), "flaky", FailureClass::Transient, LATER).unwrap(),
        FailOutcome::RetryScheduled(RetryScheduled {
            delay_until: LATER,
            next_attempt_index: 1,
        })
    );
    assert_eq!(
        exec_state(&db),
        "runnable|unowned|eligible_now|waiting|pending_retry_attempt|waiting_for_worker|0"
    );
    // A stored policy without a retry policy allows no retries.
    let mut db = TestDb::leased();
    set_policy(&db, r#"{"priority":0,"max_reclaim_count":100}"#);
    assert_eq!(
        fail(&mut db, &handle(), "flaky", FailureClass::Transient, LATER).unwrap(),
        FailOutcome::TerminalFailed
    );
}

#[test]
fn an_old_handle_cannot_act_on_the_next_attempt() {
    let mut db = TestDb::leased();
    let args = FailExecutionArgs {
        retry_policy: Some(fixed(3, 0)),
        ..fail_args()
    };
    fail_execution(&mut db, &args).unwrap();
    // While the retry waits, the old handle finds the execution not active.
    assert_eq!(
        db.fails_unchanged(|db| complete(db, &handle(), None, LATER)),
        not_active_err(None, Some("1"), "runnable", Some(ATTEMPT))
    );
    db.seed_grant(EXEC, "worker-1", LATER + 60_000);
    claim_execution(&mut db, &next_attempt_claim_args()).unwrap();
    // Attempt 0's row still carries epoch 1 and its ids, but it is no longer current.
    for (name, op) in handle_ops() {
        assert_eq!(
            db.fails_unchanged(|db| op(db, &handle())),
            CONFLICT,
            "{name}"
        );
    }
    let current = HandleLease {
        attempt_index: 1,
        attempt_id: OTHER_ID.into(),
        lease_id: OTHER_ID.into(),
        ..handle()
    };
    complete(&mut db, &current, None, LATER + 1).unwrap();
}
