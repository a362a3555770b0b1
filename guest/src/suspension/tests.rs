//! Unit tests of the suspension family against real SQLite, with a stand-in token signer: the
//! whole path (suspend → signal → resumable → claim resumed → observe → complete), each
//! validation (asserting that nothing was written) and the fixed upstream quirks.

use super::tokens::FakeTokens;
use super::*;
use crate::bindings::recovery::ClaimResumedExecutionArgs;
use crate::bindings::suspension::{
    DeliverApprovalSignalArgs, DeliverSignalArgs, DeliverSignalOutcome, FreshWaitpoint,
    ListPendingWaitpointsArgs, ListSuspendedArgs, SuspendArgs, SuspendOutcome, WaitpointBinding,
};
use crate::testing::{ATTEMPT, EXEC, LEASE, NOW, TestDb, hex};
use crate::types::{ConflictKind, Entity, StateKind, ValidationKind};

const WP: &str = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa";
const WP2: &str = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb";
const SUSPENSION: &str = "cccccccc-cccc-4ccc-8ccc-cccccccccccc";
const SIGNAL: &str = "dddddddd-dddd-4ddd-8ddd-dddddddddddd";
const SIGNAL2: &str = "eeeeeeee-eeee-4eee-8eee-eeeeeeeeeeee";
const OTHER_EXEC: &str = "{fp:0}:99999999-9999-4999-8999-999999999999";
const LATER: i64 = NOW + 1_000;

fn lease() -> HandleLease {
    lease_of(EXEC)
}

fn lease_of(execution_id: &str) -> HandleLease {
    HandleLease {
        execution_id: execution_id.into(),
        attempt_index: 0,
        attempt_id: ATTEMPT.into(),
        lease_id: LEASE.into(),
        lease_epoch: 1,
    }
}

fn single(key: &str, matcher: &str) -> String {
    format!(r#"{{"Single":{{"waitpoint_key":"{key}","matcher":{matcher}}}}}"#)
}

fn suspend_args(condition: String) -> SuspendArgs {
    SuspendArgs {
        suspension_id: SUSPENSION.into(),
        waitpoints: vec![WaitpointBinding::Fresh(FreshWaitpoint {
            waitpoint_id: WP.into(),
            waitpoint_key: "wpk:a".into(),
        })],
        condition_json: condition,
        reason_code: "waiting_for_signal".into(),
        requested_by: "worker".into(),
        timeout_at: None,
        timeout_behavior: "fail".into(),
        idempotency_key: None,
        now: LATER,
    }
}

fn wildcard_args() -> SuspendArgs {
    suspend_args(single("wpk:a", r#""Wildcard""#))
}

fn signal_args(token: &str, name: &str) -> DeliverSignalArgs {
    DeliverSignalArgs {
        execution_id: EXEC.into(),
        waitpoint_id: WP.into(),
        signal_id: SIGNAL.into(),
        signal_name: name.into(),
        signal_category: "external".into(),
        source_type: "webhook".into(),
        source_identity: "hook-1".into(),
        payload: Some(vec![1, 2, 0xff]),
        correlation_id: None,
        idempotency_key: None,
        dedup_ttl_ms: None,
        max_signals_per_execution: None,
        waitpoint_token: token.into(),
        now: LATER + 10,
    }
}

/// A leased execution suspended on [`wildcard_args`]; returns the database and the token.
fn suspended(args: SuspendArgs) -> (TestDb, String) {
    let mut db = TestDb::leased();
    let token = match suspend(&mut db, &mut FakeTokens::seeded(), &lease(), &args).unwrap() {
        SuspendOutcome::Suspended(details) => details.waitpoints[0].token.clone(),
        other => panic!("{other:?}"),
    };
    (db, token)
}

fn state(db: &TestDb) -> String {
    db.one(
        "SELECT lifecycle_phase || '|' || ownership_state || '|' || eligibility_state || '|' || \
         public_state || '|' || attempt_state || '|' || COALESCE(blocking_reason, 'NULL') FROM ff_exec_core",
    )
}

fn validation(err: EngineError) -> (ValidationKind, String) {
    match err {
        EngineError::Validation(v) => (v.kind, v.detail),
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[test]
fn suspend_writes_the_suspended_vector_the_waitpoint_and_bumps_the_epoch() {
    let (db, token) = suspended(wildcard_args());
    assert!(token.starts_with("kid-test:"));
    assert_eq!(
        state(&db),
        "suspended|unowned|not_applicable|suspended|attempt_interrupted|waiting_for_signal"
    );
    assert_eq!(
        db.one("SELECT state || '|' || waitpoint_key || '|' || token_kid || '|' || activated_at_ms FROM ff_waitpoint_pending"),
        format!("active|wpk:a|kid-test|{LATER}")
    );
    assert_eq!(
        db.one("SELECT lease_epoch || '|' || outcome || '|' || COALESCE(lease_expires_at_ms, 'NULL') FROM ff_attempt"),
        "2|attempt_interrupted|NULL"
    );
    assert_eq!(
        db.one(
            "SELECT member_map || '|' || reason_code || '|' || condition FROM ff_suspension_current"
        ),
        format!(
            "{{}}|waiting_for_signal|{}",
            single("wpk:a", r#""Wildcard""#)
        )
    );
    assert_eq!(
        db.one("SELECT json_extract(raw_fields, '$.current_suspension_id') FROM ff_exec_core"),
        SUSPENSION
    );
}

#[test]
fn the_whole_path_resumes_the_same_attempt_and_completion_closes_the_suspension() {
    let (mut db, token) = suspended(suspend_args(single("wpk:a", r#"{"ByName":"ready"}"#)));
    let mut tokens = FakeTokens::seeded();

    let other = deliver_signal(&mut db, &mut tokens, &signal_args(&token, "other")).unwrap();
    assert_eq!(
        other,
        DeliverSignalOutcome::Accepted(crate::bindings::suspension::AcceptedSignal {
            signal_id: SIGNAL.into(),
            effect: EFFECT_APPENDED.into()
        })
    );
    assert_eq!(db.one("SELECT public_state FROM ff_exec_core"), "suspended");

    let ready = DeliverSignalArgs {
        signal_id: SIGNAL2.into(),
        ..signal_args(&token, "ready")
    };
    match deliver_signal(&mut db, &mut tokens, &ready).unwrap() {
        DeliverSignalOutcome::Accepted(accepted) => assert_eq!(accepted.effect, EFFECT_SATISFIED),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        state(&db),
        "runnable|unowned|eligible_now|resumable|attempt_interrupted|waiting_for_worker"
    );
    assert_eq!(db.one("SELECT count(*) FROM ff_waitpoint_pending"), "0");
    assert_eq!(
        db.one("SELECT group_concat(outcome) FROM ff_completion_event"),
        "resumable"
    );
    assert_eq!(db.one("SELECT count(*) FROM ff_signal_event"), "2");
    // Once satisfied, the waitpoints are gone: a late signal finds none.
    assert_eq!(
        deliver_signal(&mut db, &mut tokens, &signal_args(&token, "ready")),
        Err(EngineError::NotFound(Entity::Waitpoint))
    );

    let claimed = crate::recovery::claim_resumed_execution(
        &mut db,
        &ClaimResumedExecutionArgs {
            execution_id: EXEC.into(),
            worker_id: "worker-2".into(),
            worker_instance_id: "wi-2".into(),
            lane_id: "default".into(),
            lease_id: SIGNAL.into(),
            lease_ttl_ms: 30_000,
            attempt_id: SIGNAL2.into(),
            now: LATER + 20,
        },
    )
    .unwrap();
    assert_eq!(claimed.attempt_index, 0, "the same attempt continues");
    assert_eq!(claimed.lease_epoch, 3);

    let resumed = HandleLease {
        lease_id: SIGNAL.into(),
        attempt_id: SIGNAL2.into(),
        lease_epoch: 3,
        ..lease()
    };
    let observed = observe_signals(&mut db, &resumed).unwrap();
    let names: Vec<&str> = observed.iter().map(|s| s.signal_name.as_str()).collect();
    assert_eq!(names, ["other", "ready"]);
    assert_eq!(observed[0].payload, Some(vec![1, 2, 0xff]));
    assert_eq!(observed[0].source_identity, "hook-1");

    crate::lease_holder::complete(
        &mut db,
        &crate::bindings::lease_holder::HandleLease {
            execution_id: EXEC.into(),
            attempt_index: 0,
            attempt_id: SIGNAL2.into(),
            lease_id: SIGNAL.into(),
            lease_epoch: 3,
            lease_ttl_ms: 30_000,
            lane_id: "default".into(),
            worker_instance_id: "wi-2".into(),
        },
        None,
        LATER + 30,
    )
    .unwrap();
    assert_eq!(db.one("SELECT count(*) FROM ff_suspension_current"), "0");
    assert!(observe_signals(&mut db, &resumed).unwrap().is_empty());
}

#[test]
fn suspend_rejects_bad_arguments_and_writes_nothing() {
    let mut db = TestDb::leased();
    let mut tokens = FakeTokens::seeded();
    let cases: Vec<(SuspendArgs, &str)> = vec![
        (
            SuspendArgs {
                waitpoints: vec![],
                ..wildcard_args()
            },
            "suspend requires at least one waitpoint binding",
        ),
        (
            SuspendArgs {
                waitpoints: vec![WaitpointBinding::Fresh(FreshWaitpoint {
                    waitpoint_id: WP.into(),
                    waitpoint_key: String::new(),
                })],
                ..wildcard_args()
            },
            "waitpoint_binding_empty_key at waitpoints[0]",
        ),
        (
            SuspendArgs {
                timeout_at: Some(LATER - 3_600_000),
                ..wildcard_args()
            },
            "timeout_at_in_past",
        ),
        (
            suspend_args(single("wpk:other", r#""Wildcard""#)),
            "waitpoint_key_mismatch",
        ),
        (
            suspend_args(r#"{"Composite":{"kind":"Count","n":0,"count_kind":"DistinctSignals","waitpoints":["wpk:a"]}}"#.into()),
            "count_n_zero at path <root>",
        ),
        (
            suspend_args(r#""TimeoutOnly""#.into()),
            "timeout_only_without_deadline",
        ),
        (
            suspend_args(single("wpk:a", r#"{"ByName":""}"#)),
            "resume_condition: empty signal name (use Wildcard instead)",
        ),
    ];
    for (args, detail) in cases {
        let err = db.fails_unchanged(|db| suspend(db, &mut tokens, &lease(), &args));
        assert_eq!(
            validation(err),
            (ValidationKind::InvalidInput, detail.into())
        );
    }
    let err = db.fails_unchanged(|db| {
        suspend(
            db,
            &mut FakeTokens { kid: None },
            &lease(),
            &wildcard_args(),
        )
    });
    assert_eq!(
        validation(err).1,
        "ff_waitpoint_hmac empty — seed a kid before suspend"
    );
    let stale = HandleLease {
        lease_epoch: 7,
        ..lease()
    };
    assert_eq!(
        db.fails_unchanged(|db| suspend(db, &mut tokens, &stale, &wildcard_args())),
        EngineError::Contention(ContentionKind::LeaseConflict)
    );
    assert_eq!(
        db.fails_unchanged(|db| suspend(db, &mut tokens, &lease_of(OTHER_EXEC), &wildcard_args())),
        EngineError::NotFound(Entity::Attempt)
    );
}

#[test]
fn a_stale_handle_cannot_suspend_twice_but_a_replay_key_returns_the_first_outcome() {
    let keyed = SuspendArgs {
        idempotency_key: Some("op-123".into()),
        ..wildcard_args()
    };
    let (mut db, _) = suspended(keyed.clone());
    let mut tokens = FakeTokens::seeded();
    let first = db.one("SELECT outcome_json FROM ff_suspend_dedup");
    let before = db.dump();
    let replay = suspend(&mut db, &mut tokens, &lease(), &keyed).unwrap();
    assert_eq!(db.dump(), before, "a replay writes nothing");
    let SuspendOutcome::Suspended(details) = replay else {
        panic!()
    };
    assert_eq!(details.suspension_id, SUSPENSION);
    assert!(first.contains(&details.waitpoints[0].token));
    // Without the key the stale handle is fenced out (the suspension raised the epoch).
    assert_eq!(
        db.fails_unchanged(|db| suspend(db, &mut tokens, &lease(), &wildcard_args())),
        EngineError::Contention(ContentionKind::LeaseConflict)
    );
}

#[test]
fn replay_keys_are_scoped_to_the_execution() {
    let keyed = SuspendArgs {
        idempotency_key: Some("shared".into()),
        ..wildcard_args()
    };
    let (mut db, _) = suspended(keyed.clone());
    db.claim(OTHER_EXEC);
    let other = SuspendArgs {
        waitpoints: vec![WaitpointBinding::Fresh(FreshWaitpoint {
            waitpoint_id: WP2.into(),
            waitpoint_key: "wpk:a".into(),
        })],
        ..keyed
    };
    suspend(
        &mut db,
        &mut FakeTokens::seeded(),
        &lease_of(OTHER_EXEC),
        &other,
    )
    .unwrap();
    assert_eq!(
        db.one(&format!(
            "SELECT public_state FROM ff_exec_core WHERE execution_id = X'{}'",
            hex(OTHER_EXEC)
        )),
        "suspended",
        "the second execution is suspended, not handed the first one's outcome"
    );
}

#[test]
fn deliver_rejects_bad_tokens_and_foreign_waitpoints_and_writes_nothing() {
    let (mut db, token) = suspended(wildcard_args());
    let mut tokens = FakeTokens::seeded();
    let tampered = format!("{}0", &token[..token.len() - 1]);
    let cases = [
        (
            signal_args("no-colon", "x"),
            "waitpoint_token verify: token malformed; expected kid:hex shape",
        ),
        (
            signal_args(&token.replace("kid-test", "kid-other"), "x"),
            "waitpoint_token verify: token kid mismatch; got kid-other",
        ),
        (
            signal_args(&tampered, "x"),
            "waitpoint_token verify: HMAC signature mismatch",
        ),
        (
            DeliverSignalArgs {
                execution_id: OTHER_EXEC.into(),
                ..signal_args(&token, "x")
            },
            "waitpoint belongs to a different execution",
        ),
        (signal_args(&token, ""), "signal_name must not be empty"),
    ];
    for (args, detail) in cases {
        let err = db.fails_unchanged(|db| deliver_signal(db, &mut tokens, &args));
        assert_eq!(validation(err).1, detail);
    }
    let unknown = DeliverSignalArgs {
        waitpoint_id: WP2.into(),
        ..signal_args(&token, "x")
    };
    assert_eq!(
        db.fails_unchanged(|db| deliver_signal(db, &mut tokens, &unknown)),
        EngineError::NotFound(Entity::Waitpoint)
    );
    assert_eq!(
        validation(db.fails_unchanged(|db| deliver_signal(db, &mut tokens, &signal_args("", "x")))),
        (ValidationKind::InvalidToken, "missing_token".into())
    );
}

#[test]
fn a_signal_cannot_revive_a_cancelled_execution() {
    // Cancelling closes the waitpoints: the signal finds none.
    let (mut db, token) = suspended(wildcard_args());
    crate::recovery::cancel_execution(
        &mut db,
        &crate::bindings::recovery::CancelExecutionArgs {
            execution_id: EXEC.into(),
            reason: "stop".into(),
            source: crate::types::CancelSource::OperatorOverride,
            lease_id: None,
            lease_epoch: None,
            attempt_id: None,
            now: LATER,
        },
    )
    .unwrap();
    assert_eq!(db.one("SELECT count(*) FROM ff_waitpoint_pending"), "0");
    assert_eq!(
        db.fails_unchanged(|db| deliver_signal(
            db,
            &mut FakeTokens::seeded(),
            &signal_args(&token, "x")
        )),
        EngineError::NotFound(Entity::Waitpoint)
    );
    // Rows an upstream database kept for an execution it cancelled (legacy lifecycle literal)
    // are refused by the lifecycle gate.
    let (mut db, token) = suspended(wildcard_args());
    db.exec("UPDATE ff_exec_core SET lifecycle_phase = 'cancelled', public_state = 'cancelled'");
    assert_eq!(
        db.fails_unchanged(|db| deliver_signal(
            db,
            &mut FakeTokens::seeded(),
            &signal_args(&token, "x")
        )),
        EngineError::State(StateKind::TargetNotSignalable)
    );
}

#[test]
fn signal_idempotency_keys_return_duplicate_within_their_ttl() {
    let (mut db, token) = suspended(suspend_args(single("wpk:a", r#"{"ByName":"never"}"#)));
    let mut tokens = FakeTokens::seeded();
    let keyed = DeliverSignalArgs {
        idempotency_key: Some("k".into()),
        dedup_ttl_ms: Some(1_000),
        ..signal_args(&token, "x")
    };
    deliver_signal(&mut db, &mut tokens, &keyed).unwrap();
    let again = DeliverSignalArgs {
        signal_id: SIGNAL2.into(),
        ..keyed.clone()
    };
    let before = db.dump();
    assert_eq!(
        deliver_signal(&mut db, &mut tokens, &again).unwrap(),
        DeliverSignalOutcome::Duplicate(SIGNAL.into())
    );
    assert_eq!(db.dump(), before);
    let expired = DeliverSignalArgs {
        now: keyed.now + 1_000,
        ..again
    };
    assert!(matches!(
        deliver_signal(&mut db, &mut tokens, &expired).unwrap(),
        DeliverSignalOutcome::Accepted(_)
    ));
    let limited = DeliverSignalArgs {
        signal_id: "ffffffff-ffff-4fff-8fff-ffffffffffff".into(),
        max_signals_per_execution: Some(2),
        ..signal_args(&token, "x")
    };
    assert_eq!(
        validation(db.fails_unchanged(|db| deliver_signal(db, &mut tokens, &limited))).0,
        ValidationKind::SignalLimitExceeded
    );
}

#[test]
fn approval_signals_check_the_lane_and_use_the_stored_token() {
    let (mut db, _) = suspended(suspend_args(single("wpk:a", r#"{"ByName":"approved"}"#)));
    let mut tokens = FakeTokens::seeded();
    let approval = |name: &str, lane: &str| DeliverApprovalSignalArgs {
        execution_id: EXEC.into(),
        lane_id: lane.into(),
        waitpoint_id: WP.into(),
        signal_name: name.into(),
        idempotency_suffix: "1".into(),
        signal_dedup_ttl_ms: 60_000,
        max_signals_per_execution: None,
        signal_id: SIGNAL.into(),
        now: LATER,
    };
    let err = db.fails_unchanged(|db| {
        deliver_approval_signal(db, &mut tokens, &approval("approved", "other"))
    });
    assert!(validation(err).1.starts_with("lane_mismatch:"));
    match deliver_approval_signal(&mut db, &mut tokens, &approval("rejected", "default")).unwrap() {
        DeliverSignalOutcome::Accepted(a) => assert_eq!(a.effect, EFFECT_APPENDED),
        other => panic!("{other:?}"),
    }
    let approved = DeliverApprovalSignalArgs {
        signal_id: SIGNAL2.into(),
        ..approval("approved", "default")
    };
    match deliver_approval_signal(&mut db, &mut tokens, &approved).unwrap() {
        DeliverSignalOutcome::Accepted(a) => assert_eq!(a.effect, EFFECT_SATISFIED),
        other => panic!("{other:?}"),
    }
    assert_eq!(db.one("SELECT public_state FROM ff_exec_core"), "resumable");
}

#[test]
fn pending_waitpoints_are_created_bound_and_listed() {
    let mut db = TestDb::leased();
    let mut tokens = FakeTokens::seeded();
    let pending = create_waitpoint(
        &mut db,
        &mut tokens,
        &lease(),
        "wpk:p",
        LATER + 60_000,
        LATER,
    )
    .unwrap();
    let page = list_pending_waitpoints(
        &mut db,
        &ListPendingWaitpointsArgs {
            execution_id: EXEC.into(),
            after: None,
            limit: 100,
        },
    )
    .unwrap();
    assert_eq!(page.entries.len(), 1);
    assert_eq!(page.entries[0].state, "pending");
    assert_eq!(page.entries[0].token_fingerprint.len(), 16);
    assert_eq!(
        read_waitpoint_token(&mut db, 0, &pending.waitpoint_id).unwrap(),
        Some(pending.token.clone())
    );
    // A live execution's pending waitpoint does not buffer signals.
    let early = DeliverSignalArgs {
        waitpoint_id: pending.waitpoint_id.clone(),
        ..signal_args(&pending.token, "x")
    };
    assert_eq!(
        db.fails_unchanged(|db| deliver_signal(db, &mut tokens, &early)),
        EngineError::Contention(ContentionKind::WaitpointPendingUseBufferScript)
    );
    let use_pending = SuspendArgs {
        waitpoints: vec![WaitpointBinding::UsePending(pending.waitpoint_id.clone())],
        condition_json: single("wpk:p", r#""Wildcard""#),
        ..wildcard_args()
    };
    let SuspendOutcome::Suspended(details) =
        suspend(&mut db, &mut tokens, &lease(), &use_pending).unwrap()
    else {
        panic!()
    };
    assert_eq!(details.waitpoints[0].token, pending.token, "token kept");
    assert_eq!(details.waitpoints[0].waitpoint_key, "wpk:p");
    let signal = DeliverSignalArgs {
        waitpoint_id: pending.waitpoint_id,
        ..signal_args(&pending.token, "x")
    };
    match deliver_signal(&mut db, &mut tokens, &signal).unwrap() {
        DeliverSignalOutcome::Accepted(a) => assert_eq!(a.effect, EFFECT_SATISFIED),
        other => panic!("{other:?}"),
    }
}

#[test]
fn create_waitpoint_rejects_empty_keys_past_expiries_and_stale_handles() {
    let mut db = TestDb::leased();
    let mut tokens = FakeTokens::seeded();
    let pending_id = create_waitpoint(&mut db, &mut tokens, &lease(), "wpk:p", LATER + 1, LATER)
        .unwrap()
        .waitpoint_id;
    let err =
        db.fails_unchanged(|db| create_waitpoint(db, &mut tokens, &lease(), "", LATER + 1, LATER));
    assert_eq!(validation(err).0, ValidationKind::InvalidWaitpointKey);
    let err =
        db.fails_unchanged(|db| create_waitpoint(db, &mut tokens, &lease(), "k", LATER, LATER));
    assert_eq!(validation(err).1, "expires_in must be positive");
    let stale = HandleLease {
        lease_id: SIGNAL.into(),
        ..lease()
    };
    assert_eq!(
        db.fails_unchanged(|db| create_waitpoint(db, &mut tokens, &stale, "k", LATER + 1, LATER)),
        EngineError::Contention(ContentionKind::LeaseConflict)
    );
    let fresh_again = SuspendArgs {
        waitpoints: vec![
            WaitpointBinding::Fresh(FreshWaitpoint {
                waitpoint_id: WP.into(),
                waitpoint_key: "wpk:a".into(),
            }),
            WaitpointBinding::Fresh(FreshWaitpoint {
                waitpoint_id: WP.into(),
                waitpoint_key: "wpk:b".into(),
            }),
        ],
        ..wildcard_args()
    };
    assert_eq!(
        validation(db.fails_unchanged(|db| suspend(db, &mut tokens, &lease(), &fresh_again))).1,
        "duplicate waitpoint_id at waitpoints[1]"
    );
    // A waitpoint id already used (here by a pending waitpoint) is refused before any write.
    let reused = SuspendArgs {
        waitpoints: vec![
            WaitpointBinding::Fresh(FreshWaitpoint {
                waitpoint_id: WP.into(),
                waitpoint_key: "wpk:a".into(),
            }),
            WaitpointBinding::Fresh(FreshWaitpoint {
                waitpoint_id: pending_id.clone(),
                waitpoint_key: "wpk:b".into(),
            }),
        ],
        ..wildcard_args()
    };
    assert_eq!(
        db.fails_unchanged(|db| suspend(db, &mut tokens, &lease(), &reused)),
        EngineError::Conflict(ConflictKind::WaitpointAlreadyExists)
    );
}

#[test]
fn delay_releases_the_lease_until_the_given_time() {
    let mut db = TestDb::leased();
    assert_eq!(
        validation(db.fails_unchanged(|db| delay(db, &lease(), LATER, LATER))).1,
        "delay_until must be in the future"
    );
    delay(&mut db, &lease(), LATER + 5_000, LATER).unwrap();
    assert_eq!(
        state(&db),
        "runnable|unowned|not_eligible_until_time|delayed|attempt_interrupted|waiting_for_delay"
    );
    assert_eq!(
        db.one("SELECT json_extract(raw_fields, '$.delay_until') FROM ff_exec_core"),
        (LATER + 5_000).to_string()
    );
    assert_eq!(db.one("SELECT lease_epoch FROM ff_attempt"), "2");
}

#[test]
fn the_handle_cancel_is_fenced_and_cancels() {
    let mut db = TestDb::leased();
    let stale = HandleLease {
        lease_epoch: 9,
        ..lease()
    };
    assert_eq!(
        db.fails_unchanged(|db| cancel(db, &stale, "no", LATER)),
        EngineError::Contention(ContentionKind::LeaseConflict)
    );
    cancel(&mut db, &lease(), "done", LATER).unwrap();
    assert_eq!(
        db.one("SELECT public_state || '|' || cancelled_by FROM ff_exec_core"),
        "cancelled|lease_holder"
    );
}

#[test]
fn expire_suspension_applies_the_timeout_behaviour_once_due() {
    let timed = |behavior: &str| SuspendArgs {
        timeout_at: Some(LATER + 100),
        timeout_behavior: behavior.into(),
        ..wildcard_args()
    };
    let (mut db, _) = suspended(timed("fail"));
    let before = db.dump();
    expire_suspension(&mut db, EXEC, LATER + 99).unwrap();
    assert_eq!(db.dump(), before, "not yet due");
    expire_suspension(&mut db, EXEC, LATER + 100).unwrap();
    assert_eq!(db.one("SELECT public_state FROM ff_exec_core"), "failed");
    assert_eq!(db.one("SELECT count(*) FROM ff_suspension_current"), "0");
    assert_eq!(db.one("SELECT outcome FROM ff_completion_event"), "failed");

    let (mut db, _) = suspended(timed("auto_resume_with_timeout_signal"));
    expire_suspension(&mut db, EXEC, LATER + 100).unwrap();
    assert_eq!(
        state(&db),
        "runnable|unowned|eligible_now|waiting|attempt_interrupted|waiting_for_worker"
    );

    let (mut db, _) = suspended(timed("escalate"));
    expire_suspension(&mut db, EXEC, LATER + 100).unwrap();
    assert_eq!(
        state(&db),
        "suspended|unowned|not_applicable|suspended|attempt_interrupted|paused_by_operator"
    );
}

#[test]
fn close_waitpoint_stops_signals_and_list_suspended_pages() {
    let (mut db, token) = suspended(wildcard_args());
    let page = list_suspended(
        &mut db,
        &ListSuspendedArgs {
            partition: 0,
            after: None,
            limit: 10,
        },
    )
    .unwrap();
    assert_eq!(page.entries.len(), 1);
    assert_eq!(page.entries[0].execution_id, EXEC);
    assert_eq!(page.entries[0].reason, "waiting_for_signal");
    assert_eq!(page.next_cursor, None);

    close_waitpoint(&mut db, EXEC, WP).unwrap();
    assert_eq!(
        db.fails_unchanged(|db| deliver_signal(
            db,
            &mut FakeTokens::seeded(),
            &signal_args(&token, "x")
        )),
        EngineError::State(StateKind::WaitpointClosed)
    );
}
