//! The budgets family's logic on a native database.

use super::*;
use crate::bindings::budgets::{
    AdmissionBlockReason, AdmissionOutcome, BlockForAdmissionArgs, BlockForAdmissionOutcome,
    Breach, CheckAdmissionArgs, CreateBudgetArgs, CreateOutcome, CreateQuotaPolicyArgs,
    DimensionAmount, QuotaPolicyLimits, ReconcileCounts, RecordSpendArgs, ReportUsageAdminArgs,
    ReportUsageArgs, UsageLease, UsageOutcome,
};
use crate::testing::{ATTEMPT, EXEC, EXEC_UUID, LEASE, NOW, TTL, TestDb};
use crate::types::{ContentionKind, EngineError, Entity, StateKind, ValidationKind};

const BUDGET: &str = "6d4f8a52-3f0e-4c4e-9f54-6a1d0c8e2b11";
const OTHER: &str = "0b7c1c1e-8d6a-4a5e-b1d2-0d9e3f1a2c33";
const POLICY: &str = "a1c7d3e2-5b4f-4c6d-8e9f-0a1b2c3d4e5f";

fn budget_args(dimensions: &[(&str, u64, u64)], interval: u64, now: i64) -> CreateBudgetArgs {
    CreateBudgetArgs {
        budget_id: BUDGET.into(),
        scope_type: "flow".into(),
        scope_id: "flow-1".into(),
        enforcement_mode: "strict".into(),
        on_hard_limit: "fail".into(),
        on_soft_limit: "warn".into(),
        reset_interval_ms: interval,
        dimensions: dimensions.iter().map(|d| d.0.to_owned()).collect(),
        hard_limits: dimensions.iter().map(|d| d.1).collect(),
        soft_limits: dimensions.iter().map(|d| d.2).collect(),
        now,
    }
}

fn with_budget(dimensions: &[(&str, u64, u64)]) -> TestDb {
    let mut db = TestDb::new();
    assert_eq!(
        create_budget(&mut db, &budget_args(dimensions, 0, NOW)).unwrap(),
        CreateOutcome::Created
    );
    db
}

fn admin(dimensions: &[(&str, u64)], key: Option<&str>) -> ReportUsageAdminArgs {
    ReportUsageAdminArgs {
        budget_id: BUDGET.into(),
        dimensions: dimensions.iter().map(|d| d.0.to_owned()).collect(),
        deltas: dimensions.iter().map(|d| d.1).collect(),
        dedup_key: key.map(str::to_owned),
        now: NOW,
    }
}

fn amounts(deltas: &[(&str, u64)]) -> Vec<DimensionAmount> {
    deltas
        .iter()
        .map(|(dimension, amount)| DimensionAmount {
            dimension: (*dimension).to_owned(),
            amount: *amount,
        })
        .collect()
}

fn spend(execution: &str, deltas: &[(&str, u64)], key: &str) -> RecordSpendArgs {
    RecordSpendArgs {
        budget_id: BUDGET.into(),
        execution_id: execution.into(),
        deltas: amounts(deltas),
        idempotency_key: key.into(),
        now: NOW,
    }
}

fn usage(db: &TestDb, dimension: &str) -> String {
    db.one(&format!(
        "SELECT coalesce((SELECT current_value FROM ff_budget_usage WHERE budget_id = '{BUDGET}' \
             AND dimensions_key = '{dimension}'), 'none')"
    ))
}

fn breach(dimension: &str, current_usage: u64, limit: u64) -> Breach {
    Breach {
        dimension: dimension.into(),
        current_usage,
        limit,
    }
}

fn invalid_detail(error: EngineError) -> String {
    match error {
        EngineError::Validation(v) if v.kind == ValidationKind::InvalidInput => v.detail,
        other => panic!("expected InvalidInput, got {other:?}"),
    }
}

#[test]
fn create_writes_the_policy_document_and_is_idempotent() {
    let mut db = with_budget(&[("tokens", 100, 80), ("a\"b", 0, 5)]);
    assert_eq!(
        db.one(&format!(
            "SELECT policy_json FROM ff_budget_policy WHERE budget_id = '{BUDGET}'"
        )),
        r#"{"hard_limits":{"tokens":100,"a\"b":0},"soft_limits":{"tokens":80,"a\"b":5},"reset_interval_ms":0,"on_hard_limit":"fail","on_soft_limit":"warn"}"#
    );
    let mut changed = budget_args(&[("tokens", 1, 1)], 0, NOW + 5);
    changed.scope_id = "other".into();
    assert_eq!(
        create_budget(&mut db, &changed).unwrap(),
        CreateOutcome::AlreadySatisfied
    );
    let status = get_budget_status(&mut db, BUDGET).unwrap();
    assert_eq!(status.scope_id, "flow-1");
    assert_eq!(status.hard_limits, amounts(&[("a\"b", 0), ("tokens", 100)]));
    assert_eq!(status.soft_limits, amounts(&[("a\"b", 5), ("tokens", 80)]));
    assert_eq!(status.next_reset_at, None);
    assert_eq!(status.created_at, NOW);
}

#[test]
fn create_rejects_bad_input_and_writes_nothing() {
    let mut db = TestDb::new();
    let mut mismatch = budget_args(&[("tokens", 1, 1)], 0, NOW);
    mismatch.soft_limits.clear();
    let err = db.fails_unchanged(|db| create_budget(db, &mismatch));
    assert_eq!(
        invalid_detail(err),
        "create_budget: dimensions / hard_limits / soft_limits length mismatch"
    );
    let repeated = budget_args(&[("tokens", 1, 1), ("tokens", 2, 2)], 0, NOW);
    invalid_detail(db.fails_unchanged(|db| create_budget(db, &repeated)));
    let huge = budget_args(&[("tokens", u64::MAX, 1)], 0, NOW);
    invalid_detail(db.fails_unchanged(|db| create_budget(db, &huge)));
    let huge_interval = budget_args(&[("tokens", 1, 1)], u64::MAX, NOW);
    invalid_detail(db.fails_unchanged(|db| create_budget(db, &huge_interval)));
    let names: Vec<String> = (0..=MAX_DIMENSIONS).map(|i| format!("d{i}")).collect();
    let mut many = budget_args(&[], 0, NOW);
    many.hard_limits = vec![0; names.len()];
    many.soft_limits = vec![0; names.len()];
    many.dimensions = names;
    invalid_detail(db.fails_unchanged(|db| create_budget(db, &many)));
}

#[test]
fn hard_limit_allows_equality_and_rejects_the_whole_report_above_it() {
    let mut db = with_budget(&[("a", 0, 0), ("b", 10, 0)]);
    assert_eq!(
        report_usage_admin(&mut db, &admin(&[("b", 10), ("a", 3)], None)).unwrap(),
        UsageOutcome::Ok
    );
    assert_eq!(
        report_usage_admin(&mut db, &admin(&[("a", 5), ("b", 1)], None)).unwrap(),
        UsageOutcome::HardBreach(breach("b", 10, 10))
    );
    assert_eq!(
        usage(&db, "a"),
        "3",
        "no dimension of a rejected report moves"
    );
    let status = get_budget_status(&mut db, BUDGET).unwrap();
    assert_eq!(status.breach_count, 1);
    assert_eq!(status.last_breach_dim.as_deref(), Some("b"));
    assert_eq!(status.last_breach_at, Some(NOW));
}

#[test]
fn a_rejected_report_creates_no_counter_rows() {
    let mut db = with_budget(&[("z", 1, 0)]);
    assert!(matches!(
        report_usage_admin(&mut db, &admin(&[("a", 1), ("z", 2)], None)).unwrap(),
        UsageOutcome::HardBreach(_)
    ));
    assert_eq!(db.one("SELECT count(*) FROM ff_budget_usage"), "0");
}

#[test]
fn soft_breach_reports_the_first_dimension_with_its_new_value_and_counts_once() {
    let mut db = with_budget(&[("a", 0, 5), ("b", 0, 5)]);
    assert_eq!(
        report_usage_admin(&mut db, &admin(&[("b", 9), ("a", 6)], None)).unwrap(),
        UsageOutcome::SoftBreach(breach("a", 6, 5))
    );
    let status = get_budget_status(&mut db, BUDGET).unwrap();
    assert_eq!(status.soft_breach_count, 1);
    assert_eq!(status.breach_count, 0);
    assert_eq!(status.usage, amounts(&[("a", 6), ("b", 9)]));
}

#[test]
fn a_report_against_an_unknown_budget_is_applied_without_limits() {
    let mut db = TestDb::new();
    assert_eq!(
        report_usage_admin(&mut db, &admin(&[("tokens", u64::from(u32::MAX))], None)).unwrap(),
        UsageOutcome::Ok
    );
    assert_eq!(usage(&db, "tokens"), u32::MAX.to_string());
}

#[test]
fn report_dedup_replays_the_stored_outcome_and_writes_nothing() {
    let mut db = with_budget(&[("tokens", 100, 5)]);
    let first = report_usage_admin(&mut db, &admin(&[("tokens", 10)], Some("k"))).unwrap();
    assert_eq!(first, UsageOutcome::SoftBreach(breach("tokens", 10, 5)));
    let before = db.dump();
    assert_eq!(
        report_usage_admin(&mut db, &admin(&[("tokens", 10)], Some("k"))).unwrap(),
        first
    );
    assert_eq!(db.dump(), before);
    // A key is global: the same key against another budget is a replay too.
    let mut other = admin(&[("tokens", 1)], Some("k"));
    other.budget_id = OTHER.into();
    assert_eq!(report_usage_admin(&mut db, &other).unwrap(), first);
    // An empty key disables dedup.
    report_usage_admin(&mut db, &admin(&[("tokens", 1)], Some(""))).unwrap();
    report_usage_admin(&mut db, &admin(&[("tokens", 1)], Some(""))).unwrap();
    assert_eq!(usage(&db, "tokens"), "12");
}

#[test]
fn a_hard_breach_consumes_its_key() {
    let mut db = with_budget(&[("tokens", 5, 0)]);
    let breached = report_usage_admin(&mut db, &admin(&[("tokens", 6)], Some("k"))).unwrap();
    assert_eq!(breached, UsageOutcome::HardBreach(breach("tokens", 0, 5)));
    reset_budget(&mut db, BUDGET, NOW).unwrap();
    assert_eq!(
        report_usage_admin(&mut db, &admin(&[("tokens", 1)], Some("k"))).unwrap(),
        breached
    );
}

#[test]
fn stored_outcomes_decode_by_kind_and_bad_ones_are_corruption() {
    let mut db = with_budget(&[("tokens", 0, 0)]);
    db.exec(
        "INSERT INTO ff_budget_usage_dedup VALUES (0, 'placeholder', '{}', 0, 0), \
             (0, 'nokind', '{\"x\":1}', 0, 0), (0, 'weird', '{\"kind\":\"Later\"}', 0, 0), \
             (0, 'broken', 'not json', 0, 0)",
    );
    assert_eq!(
        report_usage_admin(&mut db, &admin(&[("tokens", 1)], Some("placeholder"))).unwrap(),
        UsageOutcome::AlreadyApplied
    );
    for key in ["nokind", "weird", "broken"] {
        let err = report_usage_admin(&mut db, &admin(&[("tokens", 1)], Some(key))).unwrap_err();
        assert!(
            matches!(&err, EngineError::Validation(v) if v.kind == ValidationKind::Corruption),
            "{key}: {err:?}"
        );
    }
}

#[test]
fn admin_reports_reject_bad_input_and_write_nothing() {
    let mut db = with_budget(&[("tokens", 0, 0)]);
    let mut mismatch = admin(&[("tokens", 1)], None);
    mismatch.deltas.push(2);
    assert_eq!(
        invalid_detail(db.fails_unchanged(|db| report_usage_admin(db, &mismatch))),
        "report_usage_admin: dimensions and deltas length mismatch"
    );
    let repeated = admin(&[("tokens", 1), ("tokens", 2)], Some("k"));
    invalid_detail(db.fails_unchanged(|db| report_usage_admin(db, &repeated)));
    let huge = admin(&[("tokens", u64::MAX)], Some("k"));
    assert_eq!(
        invalid_detail(db.fails_unchanged(|db| report_usage_admin(db, &huge))),
        format!(
            "report_usage_admin: delta for dim=tokens exceeds i64::MAX ({})",
            u64::MAX
        )
    );
}

#[test]
fn an_unreadable_policy_is_corruption_for_reports_and_empty_for_status() {
    let mut db = with_budget(&[("tokens", 10, 0)]);
    db.exec("UPDATE ff_budget_policy SET policy_json = 'nope'");
    let err = db.fails_unchanged(|db| report_usage_admin(db, &admin(&[("tokens", 1)], Some("k"))));
    assert!(matches!(err, EngineError::Validation(v) if v.kind == ValidationKind::Corruption));
    assert!(
        get_budget_status(&mut db, BUDGET)
            .unwrap()
            .hard_limits
            .is_empty()
    );
}

#[test]
fn spend_keeps_a_ledger_and_replays_as_already_applied() {
    let mut db = with_budget(&[("tokens", 100, 50)]);
    assert_eq!(
        record_spend(&mut db, &spend(EXEC, &[("tokens", 60)], "s1")).unwrap(),
        UsageOutcome::SoftBreach(breach("tokens", 60, 50))
    );
    assert_eq!(
        record_spend(&mut db, &spend(EXEC, &[("tokens", 60)], "s1")).unwrap(),
        UsageOutcome::AlreadyApplied
    );
    assert_eq!(
        record_spend(&mut db, &spend(EXEC, &[("tokens", 41)], "s2")).unwrap(),
        UsageOutcome::HardBreach(breach("tokens", 60, 100))
    );
    assert_eq!(
        record_spend(&mut db, &spend(EXEC, &[("tokens", 41)], "s2")).unwrap(),
        UsageOutcome::AlreadyApplied
    );
    record_spend(&mut db, &spend(EXEC, &[("tokens", 5)], "s3")).unwrap();
    assert_eq!(
        db.one(&format!(
            "SELECT delta_total FROM ff_budget_usage_by_exec WHERE execution_id = '{EXEC_UUID}'"
        )),
        "65"
    );
}

#[test]
fn spend_rejects_bad_input_and_writes_nothing() {
    let mut db = with_budget(&[("tokens", 0, 0)]);
    let huge = spend(EXEC, &[("tokens", u64::MAX)], "k");
    assert_eq!(
        invalid_detail(db.fails_unchanged(|db| record_spend(db, &huge))),
        format!(
            "record_spend: delta for dim=tokens exceeds i64::MAX ({})",
            u64::MAX
        )
    );
    let bad_id = spend("not-an-id", &[("tokens", 1)], "k");
    invalid_detail(db.fails_unchanged(|db| record_spend(db, &bad_id)));
    invalid_detail(db.fails_unchanged(|db| release_budget(db, BUDGET, "nope", NOW)));
}

#[test]
fn release_subtracts_the_ledger_floored_at_zero_and_is_idempotent() {
    let other_exec = "{fp:3}:7d0b6f7e-2a44-4d0f-9d6b-3f2f4b5e6a77";
    let mut db = with_budget(&[("tokens", 0, 0)]);
    record_spend(&mut db, &spend(EXEC, &[("tokens", 5)], "a")).unwrap();
    record_spend(&mut db, &spend(other_exec, &[("tokens", 8)], "b")).unwrap();
    release_budget(&mut db, BUDGET, EXEC, NOW).unwrap();
    assert_eq!(usage(&db, "tokens"), "8");
    release_budget(&mut db, BUDGET, EXEC, NOW).unwrap();
    assert_eq!(usage(&db, "tokens"), "8");
    reset_budget(&mut db, BUDGET, NOW).unwrap();
    release_budget(&mut db, BUDGET, other_exec, NOW).unwrap();
    assert_eq!(usage(&db, "tokens"), "0", "floored at zero after a reset");
    assert_eq!(db.one("SELECT count(*) FROM ff_budget_usage_by_exec"), "0");
}

#[test]
fn reset_zeroes_counters_keeps_breach_counts_and_reschedules() {
    let mut db = TestDb::new();
    create_budget(&mut db, &budget_args(&[("tokens", 10, 0)], 60_000, NOW)).unwrap();
    report_usage_admin(&mut db, &admin(&[("tokens", 11)], None)).unwrap();
    report_usage_admin(&mut db, &admin(&[("tokens", 7)], None)).unwrap();
    assert_eq!(
        reset_budget(&mut db, BUDGET, NOW + 5).unwrap(),
        Some(NOW + 60_005)
    );
    let status = get_budget_status(&mut db, BUDGET).unwrap();
    assert_eq!(status.usage, amounts(&[("tokens", 0)]));
    assert_eq!(status.breach_count, 1);
    assert_eq!(
        (status.last_breach_at, status.last_breach_dim),
        (None, None)
    );
    assert_eq!(status.next_reset_at, Some(NOW + 60_005));
    assert_eq!(
        db.fails_unchanged(|db| reset_budget(db, OTHER, NOW)),
        EngineError::NotFound(Entity::Budget)
    );
    assert_eq!(
        get_budget_status(&mut db, OTHER).unwrap_err(),
        EngineError::NotFound(Entity::Budget)
    );
}

#[test]
fn the_reset_pass_finds_due_budgets_and_resets_only_those_still_due() {
    let mut db = TestDb::new();
    create_budget(&mut db, &budget_args(&[("tokens", 0, 0)], 1_000, NOW)).unwrap();
    report_usage_admin(&mut db, &admin(&[("tokens", 3)], None)).unwrap();
    assert!(
        due_budget_resets(&mut db, NOW + 999, 20)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        due_budget_resets(&mut db, NOW + 1_000, 20).unwrap(),
        [BUDGET]
    );
    assert!(!reset_budget_if_due(&mut db, BUDGET, NOW + 999).unwrap());
    assert!(!reset_budget_if_due(&mut db, OTHER, NOW + 5_000).unwrap());
    assert_eq!(usage(&db, "tokens"), "3");
    assert!(reset_budget_if_due(&mut db, BUDGET, NOW + 1_500).unwrap());
    assert_eq!(usage(&db, "tokens"), "0");
    assert_eq!(
        get_budget_status(&mut db, BUDGET).unwrap().next_reset_at,
        Some(NOW + 2_500),
        "the schedule slides with the pass time"
    );
}

#[test]
fn usage_and_limits_cover_hard_dimensions_and_are_empty_for_unknown_budgets() {
    let mut db = with_budget(&[("a", 10, 5), ("b", 0, 3)]);
    report_usage_admin(&mut db, &admin(&[("b", 2)], None)).unwrap();
    let read = read_budget_usage_and_limits(&mut db, BUDGET).unwrap();
    assert_eq!(read.hard_limits, amounts(&[("a", 10), ("b", 0)]));
    assert_eq!(read.soft_limits, amounts(&[("a", 5), ("b", 3)]));
    assert_eq!(read.usage, amounts(&[("a", 0), ("b", 2)]));
    let unknown = read_budget_usage_and_limits(&mut db, OTHER).unwrap();
    assert!(unknown.hard_limits.is_empty() && unknown.usage.is_empty());
}

fn lease() -> UsageLease {
    UsageLease {
        execution_id: EXEC.into(),
        attempt_index: 0,
        lease_id: LEASE.into(),
        lease_epoch: 1,
        attempt_id: ATTEMPT.into(),
    }
}

fn worker_report(lease: UsageLease, now: i64) -> ReportUsageArgs {
    ReportUsageArgs {
        lease,
        budget_id: BUDGET.into(),
        deltas: amounts(&[("tokens", 4)]),
        dedup_key: None,
        now,
    }
}

#[test]
fn worker_reports_need_the_current_live_lease() {
    let mut db = TestDb::leased();
    assert_eq!(
        report_usage(&mut db, &worker_report(lease(), NOW + 1)).unwrap(),
        UsageOutcome::Ok
    );
    assert_eq!(usage(&db, "tokens"), "4");
    let stale = UsageLease {
        lease_epoch: 7,
        ..lease()
    };
    assert_eq!(
        db.fails_unchanged(|db| report_usage(db, &worker_report(stale, NOW + 1))),
        EngineError::Contention(ContentionKind::LeaseConflict)
    );
    assert_eq!(
        db.fails_unchanged(|db| report_usage(db, &worker_report(lease(), NOW + TTL as i64))),
        EngineError::State(StateKind::LeaseExpired)
    );
    let unknown = UsageLease {
        execution_id: "{fp:0}:00000000-0000-4000-8000-000000000000".into(),
        ..lease()
    };
    assert_eq!(
        db.fails_unchanged(|db| report_usage(db, &worker_report(unknown, NOW + 1))),
        EngineError::NotFound(Entity::Attempt)
    );
}

fn admission(execution: &str, now: i64, rate: u64, cap: u64) -> CheckAdmissionArgs {
    CheckAdmissionArgs {
        quota_policy_id: POLICY.into(),
        execution_id: execution.into(),
        window_seconds: 60,
        rate_limit: rate,
        concurrency_cap: cap,
        jitter_ms: 0,
        now,
    }
}

fn exec_id(n: u32) -> String {
    format!("{{fp:1}}:00000000-0000-4000-8000-{n:012}")
}

#[test]
fn admission_guard_window_boundary_and_retry_after() {
    let mut db = TestDb::new();
    assert_eq!(
        check_admission(&mut db, &admission(&exec_id(1), NOW, 2, 0)).unwrap(),
        AdmissionOutcome::Admitted
    );
    assert_eq!(
        check_admission(&mut db, &admission(&exec_id(1), NOW + 59_999, 2, 0)).unwrap(),
        AdmissionOutcome::AlreadyAdmitted
    );
    check_admission(&mut db, &admission(&exec_id(2), NOW + 10, 2, 0)).unwrap();
    let mut jittered = admission(&exec_id(3), NOW + 100, 2, 0);
    jittered.jitter_ms = 7;
    assert_eq!(
        check_admission(&mut db, &jittered).unwrap(),
        AdmissionOutcome::RateExceeded(59_907)
    );
    // A guard expiring at `now` is not live: the execution is checked like any other.
    assert_eq!(
        check_admission(&mut db, &admission(&exec_id(1), NOW + 60_000, 2, 0)).unwrap(),
        AdmissionOutcome::RateExceeded(0)
    );
    // At exactly now - window the oldest row is still inside the window.
    assert_eq!(
        check_admission(&mut db, &admission(&exec_id(3), NOW + 60_000, 2, 0)).unwrap(),
        AdmissionOutcome::RateExceeded(0)
    );
    assert_eq!(
        check_admission(&mut db, &admission(&exec_id(3), NOW + 60_001, 2, 0)).unwrap(),
        AdmissionOutcome::Admitted
    );
}

#[test]
fn concurrency_slots_are_taken_released_once_and_reconciled() {
    let mut db = TestDb::new();
    assert_eq!(
        check_admission(&mut db, &admission(&exec_id(1), NOW, 0, 1)).unwrap(),
        AdmissionOutcome::Admitted
    );
    assert_eq!(
        check_admission(&mut db, &admission(&exec_id(2), NOW, 0, 1)).unwrap(),
        AdmissionOutcome::ConcurrencyExceeded
    );
    release_admission(&mut db, POLICY, &exec_id(1)).unwrap();
    release_admission(&mut db, POLICY, &exec_id(1)).unwrap();
    assert_eq!(
        db.one("SELECT active_concurrency FROM ff_quota_policy"),
        "0"
    );
    check_admission(&mut db, &admission(&exec_id(2), NOW, 0, 1)).unwrap();
    assert_eq!(
        db.one("SELECT active_concurrency FROM ff_quota_policy"),
        "1"
    );
    // Nothing to correct while the guard is live; once its window ended the slot returns.
    assert_eq!(
        reconcile_quota_counters(&mut db, NOW + 59_999)
            .unwrap()
            .processed,
        0
    );
    assert_eq!(
        reconcile_quota_counters(&mut db, NOW + 60_000)
            .unwrap()
            .processed,
        1
    );
    assert_eq!(
        db.one("SELECT active_concurrency FROM ff_quota_policy"),
        "0"
    );
    assert_eq!(db.one("SELECT count(*) FROM ff_quota_admitted"), "0");
}

#[test]
fn a_zero_window_readmits_at_the_same_time_without_a_key_collision() {
    let mut db = TestDb::new();
    let mut args = admission(&exec_id(1), NOW, 0, 0);
    args.window_seconds = 0;
    check_admission(&mut db, &args).unwrap();
    assert_eq!(
        check_admission(&mut db, &args).unwrap(),
        AdmissionOutcome::Admitted
    );
}

#[test]
fn quota_policies_create_once_fill_placeholders_and_read_back() {
    let mut db = TestDb::new();
    assert_eq!(read_quota_policy_limits(&mut db, POLICY).unwrap(), None);
    check_admission(&mut db, &admission(&exec_id(1), NOW, 0, 5)).unwrap();
    let create = |window, max, cap| CreateQuotaPolicyArgs {
        quota_policy_id: POLICY.into(),
        window_seconds: window,
        max_requests_per_window: max,
        max_concurrent: cap,
        now: NOW,
    };
    assert_eq!(
        create_quota_policy(&mut db, &create(60, 100, 5)).unwrap(),
        CreateOutcome::Created
    );
    assert_eq!(
        create_quota_policy(&mut db, &create(1, 1, 1)).unwrap(),
        CreateOutcome::AlreadySatisfied
    );
    assert_eq!(
        read_quota_policy_limits(&mut db, POLICY).unwrap(),
        Some(QuotaPolicyLimits {
            max_requests_per_window: 100,
            requests_per_window_seconds: 60,
            active_concurrency_cap: 5,
        })
    );
    assert_eq!(
        db.one("SELECT active_concurrency FROM ff_quota_policy"),
        "1"
    );
    invalid_detail(db.fails_unchanged(|db| create_quota_policy(db, &create(u64::MAX, 1, 1))));
    db.exec("UPDATE ff_quota_policy SET requests_per_window_seconds = -3");
    match read_quota_policy_limits(&mut db, POLICY).unwrap_err() {
        EngineError::Validation(v) => assert_eq!(
            v.detail,
            format!(
                "read_quota_policy_limits: quota_policy={POLICY} field=requests_per_window_seconds value=-3 (negative)"
            )
        ),
        other => panic!("{other:?}"),
    }
}

/// The family's tables have upstream's final shapes (migrations 0002, 0012, 0013, 0020): column
/// order, types, `NOT NULL`, defaults and primary keys, and the partial reset index.
#[test]
fn the_tables_have_upstreams_shapes() {
    let db = TestDb::new();
    let shape = |table: &str| -> Vec<String> {
        db.rows(
            &format!(
                "SELECT name || ' ' || type || (CASE WHEN \"notnull\" THEN ' nn' ELSE '' END) \
                     || coalesce(' =' || dflt_value, '') || (CASE WHEN pk > 0 THEN ' pk' || pk ELSE '' END) \
                 FROM pragma_table_info('{table}') ORDER BY cid"
            ),
            &[],
        )
        .into_iter()
        .map(|row| match &row[0] {
            crate::sql::Value::Text(text) => text.clone(),
            other => panic!("{other:?}"),
        })
        .collect()
    };
    assert_eq!(
        shape("ff_budget_policy"),
        [
            "partition_key INTEGER nn pk1",
            "budget_id TEXT nn pk2",
            "policy_json TEXT nn",
            "created_at_ms INTEGER nn",
            "updated_at_ms INTEGER nn",
            "scope_type TEXT nn =''",
            "scope_id TEXT nn =''",
            "enforcement_mode TEXT nn =''",
            "breach_count INTEGER nn =0",
            "soft_breach_count INTEGER nn =0",
            "last_breach_at_ms INTEGER",
            "last_breach_dim TEXT",
            "next_reset_at_ms INTEGER",
        ]
    );
    assert_eq!(
        shape("ff_budget_usage"),
        [
            "partition_key INTEGER nn pk1",
            "budget_id TEXT nn pk2",
            "dimensions_key TEXT nn pk3",
            "current_value INTEGER nn =0",
            "last_reset_at_ms INTEGER",
            "updated_at_ms INTEGER nn",
        ]
    );
    assert_eq!(
        shape("ff_budget_usage_dedup"),
        [
            "partition_key INTEGER nn pk1",
            "dedup_key TEXT nn pk2",
            "outcome_json TEXT nn",
            "applied_at_ms INTEGER nn",
            "expires_at_ms INTEGER nn",
        ]
    );
    assert_eq!(
        shape("ff_budget_usage_by_exec"),
        [
            "partition_key INTEGER nn pk1",
            "budget_id TEXT nn pk2",
            "execution_id TEXT nn pk3",
            "dimensions_key TEXT nn pk4",
            "delta_total INTEGER nn =0",
            "updated_at_ms INTEGER nn",
        ]
    );
    assert_eq!(
        shape("ff_quota_policy"),
        [
            "partition_key INTEGER nn pk1",
            "quota_policy_id TEXT nn pk2",
            "requests_per_window_seconds INTEGER nn",
            "max_requests_per_window INTEGER nn",
            "active_concurrency_cap INTEGER nn",
            "active_concurrency INTEGER nn =0",
            "created_at_ms INTEGER nn",
            "updated_at_ms INTEGER nn",
        ]
    );
    assert_eq!(
        shape("ff_quota_window"),
        [
            "partition_key INTEGER nn pk1",
            "quota_policy_id TEXT nn pk2",
            "dimension TEXT nn ='' pk3",
            "admitted_at_ms INTEGER nn pk4",
            "execution_id TEXT nn pk5",
        ]
    );
    assert_eq!(
        shape("ff_quota_admitted"),
        [
            "partition_key INTEGER nn pk1",
            "quota_policy_id TEXT nn pk2",
            "execution_id TEXT nn pk3",
            "admitted_at_ms INTEGER nn",
            "expires_at_ms INTEGER nn",
        ]
    );
    assert_eq!(
        db.one("SELECT sql FROM sqlite_master WHERE name = 'ff_budget_policy_reset_due_idx'")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
        "CREATE INDEX ff_budget_policy_reset_due_idx ON ff_budget_policy (partition_key, next_reset_at_ms) WHERE next_reset_at_ms IS NOT NULL"
    );
}

fn block_args(reason: AdmissionBlockReason) -> BlockForAdmissionArgs {
    BlockForAdmissionArgs {
        execution_id: EXEC.into(),
        lane_id: "default".into(),
        reason,
        reason_detail: Some("tokens exhausted".into()),
        now: NOW + 7,
    }
}

fn exec_state(db: &TestDb) -> String {
    db.one(
        "SELECT lifecycle_phase || '|' || ownership_state || '|' || eligibility_state || '|' || \
         public_state || '|' || blocking_reason || '|' || json_extract(raw_fields, '$.blocking_detail') \
         FROM ff_exec_core",
    )
}

#[test]
fn admission_blocks_park_the_execution_under_each_reason_until_unblocked() {
    for (reason, code, eligibility) in [
        (
            AdmissionBlockReason::WaitingForBudget,
            "waiting_for_budget",
            "blocked_by_budget",
        ),
        (
            AdmissionBlockReason::WaitingForQuota,
            "waiting_for_quota",
            "blocked_by_quota",
        ),
        (
            AdmissionBlockReason::WaitingForCapableWorker,
            "waiting_for_capable_worker",
            "blocked_by_route",
        ),
    ] {
        let mut db = TestDb::runnable();
        assert_eq!(
            block_execution_for_admission(&mut db, &block_args(reason)).unwrap(),
            BlockForAdmissionOutcome::Blocked
        );
        assert_eq!(
            exec_state(&db),
            format!("runnable|unowned|{eligibility}|rate_limited|{code}|tokens exhausted")
        );
        db.seed_grant(EXEC, "worker-1", NOW + 60_000);
        assert_eq!(
            crate::scheduling::claim_execution(&mut db, &crate::testing::claim_args(EXEC))
                .unwrap_err(),
            EngineError::Contention(ContentionKind::ExecutionNotLeaseable),
            "a parked execution is not claimable, even with a grant"
        );
        crate::routing::unblock_execution(
            &mut db,
            &crate::bindings::routing::UnblockExecutionArgs {
                execution_id: EXEC.into(),
                lane_id: "default".into(),
                expected_blocking_reason: code.into(),
                now: NOW + 8,
            },
        )
        .unwrap();
        crate::scheduling::claim_execution(&mut db, &crate::testing::claim_args(EXEC))
            .expect("claimable again once unblocked");
    }
}

#[test]
fn admission_block_rejections_are_valkeys_texts_and_write_nothing() {
    let mut db = TestDb::new();
    let before = db.dump();
    assert_eq!(
        block_execution_for_admission(&mut db, &block_args(AdmissionBlockReason::WaitingForQuota))
            .unwrap(),
        BlockForAdmissionOutcome::Rejected("execution_not_found: execution does not exist".into())
    );
    assert_eq!(db.dump(), before);

    let mut db = TestDb::leased();
    let before = db.dump();
    assert_eq!(
        block_execution_for_admission(&mut db, &block_args(AdmissionBlockReason::WaitingForQuota))
            .unwrap(),
        BlockForAdmissionOutcome::Rejected("execution_not_eligible: state changed".into())
    );
    assert_eq!(db.dump(), before);

    db.exec(
        "UPDATE ff_exec_core SET lifecycle_phase = 'terminal', ownership_state = 'unowned', \
         eligibility_state = 'not_applicable', \
         raw_fields = json_set(raw_fields, '$.terminal_outcome', 'success')",
    );
    let before = db.dump();
    assert_eq!(
        block_execution_for_admission(&mut db, &block_args(AdmissionBlockReason::WaitingForBudget))
            .unwrap(),
        BlockForAdmissionOutcome::Rejected(format!(
            "execution_not_active: lifecycle_phase=terminal terminal_outcome=success lease_epoch=1 attempt_id={ATTEMPT}"
        ))
    );
    assert_eq!(db.dump(), before);

    let mut db = TestDb::runnable();
    db.exec(
        "UPDATE ff_exec_core SET eligibility_state = 'not_eligible_until_time', \
         raw_fields = json_set(raw_fields, '$.delay_until', 99)",
    );
    let before = db.dump();
    assert_eq!(
        block_execution_for_admission(&mut db, &block_args(AdmissionBlockReason::WaitingForBudget))
            .unwrap(),
        BlockForAdmissionOutcome::Rejected("execution_not_eligible: state changed".into()),
        "a delayed execution keeps its delay"
    );
    assert_eq!(db.dump(), before);
}

#[test]
fn admission_block_bad_input_is_typed_and_writes_nothing() {
    let mut db = TestDb::runnable();
    let mut bad_id = block_args(AdmissionBlockReason::WaitingForBudget);
    bad_id.execution_id = "nonsense".into();
    let err = db.fails_unchanged(|db| block_execution_for_admission(db, &bad_id));
    assert!(
        matches!(err, EngineError::Validation(ref v) if v.kind == ValidationKind::InvalidInput)
    );
    let mut other_lane = block_args(AdmissionBlockReason::WaitingForBudget);
    other_lane.lane_id = "elsewhere".into();
    let err = db.fails_unchanged(|db| block_execution_for_admission(db, &other_lane));
    assert!(
        matches!(err, EngineError::Validation(ref v) if v.kind == ValidationKind::InvalidInput)
    );
}

#[test]
fn the_budget_reconciler_marks_and_clears_breaches_of_unscheduled_budgets_only() {
    let mut db = with_budget(&[("tokens", 100, 50)]);
    let marked = |db: &TestDb, budget: &str| {
        db.one(&format!(
            "SELECT COALESCE(json_extract(policy_json, '$.breached_at_ms'), 'none') \
             FROM ff_budget_policy WHERE budget_id = '{budget}'"
        ))
    };
    let mut scheduled = budget_args(&[("tokens", 10, 0)], 60_000, NOW);
    scheduled.budget_id = OTHER.into();
    create_budget(&mut db, &scheduled).unwrap();
    let counts = |processed, errors| ReconcileCounts { processed, errors };

    // At the limit is not a breach; nothing to do.
    db.exec("INSERT INTO ff_budget_usage VALUES (0, '6d4f8a52-3f0e-4c4e-9f54-6a1d0c8e2b11', 'tokens', 100, NULL, 0)");
    db.exec("INSERT INTO ff_budget_usage VALUES (0, '0b7c1c1e-8d6a-4a5e-b1d2-0d9e3f1a2c33', 'tokens', 500, NULL, 0)");
    let before = db.dump();
    assert_eq!(
        reconcile_budget_counters(&mut db, NOW).unwrap(),
        counts(0, 0)
    );
    assert_eq!(
        db.dump(),
        before,
        "the scheduled budget is the reset pass's"
    );

    // A counter pushed past its hard limit out of band is marked once.
    db.exec("UPDATE ff_budget_usage SET current_value = 150 WHERE budget_id = '6d4f8a52-3f0e-4c4e-9f54-6a1d0c8e2b11'");
    assert_eq!(
        reconcile_budget_counters(&mut db, NOW + 1).unwrap(),
        counts(1, 0)
    );
    assert_eq!(marked(&db, BUDGET), (NOW + 1).to_string());
    assert_eq!(
        reconcile_budget_counters(&mut db, NOW + 2).unwrap(),
        counts(0, 0)
    );
    assert_eq!(marked(&db, BUDGET), (NOW + 1).to_string());
    assert_eq!(marked(&db, OTHER), "none");
    assert!(
        get_budget_status(&mut db, BUDGET)
            .unwrap()
            .hard_limits
            .len()
            == 1
    );

    // A reset clears the breach; the next pass removes the mark.
    reset_budget(&mut db, BUDGET, NOW + 3).unwrap();
    assert_eq!(
        reconcile_budget_counters(&mut db, NOW + 4).unwrap(),
        counts(1, 0)
    );
    assert_eq!(marked(&db, BUDGET), "none");

    // An unreadable policy is an error count, left as it is.
    db.exec("UPDATE ff_budget_policy SET policy_json = '{' WHERE budget_id = '6d4f8a52-3f0e-4c4e-9f54-6a1d0c8e2b11'");
    let before = db.dump();
    assert_eq!(
        reconcile_budget_counters(&mut db, NOW + 5).unwrap(),
        counts(0, 1)
    );
    assert_eq!(db.dump(), before);
}
