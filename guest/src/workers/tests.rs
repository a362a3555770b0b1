use super::*;
use crate::testing::{NOW, Recording, TestDb};
use crate::types::ValidationKind;

const TTL: u64 = 10_000;

fn register_args(instance: &str, worker: &str, now: i64) -> RegisterWorkerArgs {
    RegisterWorkerArgs {
        worker_id: worker.into(),
        worker_instance_id: instance.into(),
        lanes: vec!["a,b".into(), "default".into()],
        capabilities: vec!["gpu".into(), "region=eu,us".into()],
        liveness_ttl_ms: TTL,
        namespace: "ns".into(),
        now,
    }
}

fn heartbeat(db: &mut TestDb, instance: &str, now: i64) -> HeartbeatWorkerOutcome {
    heartbeat_worker(
        db,
        &HeartbeatWorkerArgs {
            worker_instance_id: instance.into(),
            namespace: "ns".into(),
            now,
        },
    )
    .unwrap()
}

fn mark_args(instance: &str, reason: &str, now: i64) -> MarkWorkerDeadArgs {
    MarkWorkerDeadArgs {
        worker_instance_id: instance.into(),
        namespace: "ns".into(),
        reason: reason.into(),
        now,
    }
}

fn list(db: &mut TestDb, after: Option<&str>, limit: u32, now: i64) -> WorkerPage {
    list_workers(
        db,
        &ListWorkersArgs {
            namespace: "ns".into(),
            after: after.map(Into::into),
            limit,
            now,
        },
    )
    .unwrap()
}

fn instances(page: &WorkerPage) -> Vec<&str> {
    page.entries
        .iter()
        .map(|e| e.worker_instance_id.as_str())
        .collect()
}

fn events(db: &TestDb) -> String {
    db.one(
        "SELECT group_concat(worker_instance_id || ':' || event_kind || '@' || event_at_ms || \
         COALESCE('(' || reason || ')', ''), ' ') FROM ff_worker_registry_event",
    )
}

#[test]
fn register_then_list_reads_back_lanes_and_capabilities_with_commas() {
    let mut db = TestDb::new();
    assert_eq!(
        register_worker(&mut db, &register_args("wi-1", "w", NOW)).unwrap(),
        RegisterWorkerOutcome::Registered
    );
    let page = list(&mut db, None, 10, NOW);
    assert_eq!(
        page.entries,
        vec![WorkerInfo {
            worker_id: "w".into(),
            worker_instance_id: "wi-1".into(),
            namespace: "ns".into(),
            lanes: vec!["a,b".into(), "default".into()],
            capabilities: vec!["gpu".into(), "region=eu,us".into()],
            last_heartbeat_ms: NOW,
            liveness_ttl_ms: TTL,
            registered_at_ms: NOW,
        }]
    );
    assert_eq!(page.cursor, None);
    assert_eq!(events(&db), format!("wi-1:registered@{NOW}"));
}

#[test]
fn a_live_registration_is_refreshed_keeping_its_start_and_a_lapsed_one_starts_again() {
    let mut db = TestDb::new();
    register_worker(&mut db, &register_args("wi-1", "w", NOW)).unwrap();
    let mut again = register_args("wi-1", "w", NOW + 5);
    again.lanes = vec!["other".into()];
    assert_eq!(
        register_worker(&mut db, &again).unwrap(),
        RegisterWorkerOutcome::Refreshed
    );
    let entry = &list(&mut db, None, 10, NOW + 5).entries[0];
    assert_eq!(
        (
            entry.registered_at_ms,
            entry.last_heartbeat_ms,
            entry.lanes.clone()
        ),
        (NOW, NOW + 5, vec!["other".to_string()])
    );
    // Lapsed at exactly last heartbeat + TTL: a new registration, which may change the worker.
    let lapsed_at = NOW + 5 + TTL as i64;
    assert_eq!(
        register_worker(&mut db, &register_args("wi-1", "w2", lapsed_at)).unwrap(),
        RegisterWorkerOutcome::Registered
    );
    let entry = &list(&mut db, None, 10, lapsed_at).entries[0];
    assert_eq!(
        (entry.worker_id.as_str(), entry.registered_at_ms),
        ("w2", lapsed_at)
    );
}

#[test]
fn a_live_instance_cannot_be_reassigned_to_another_worker() {
    let mut db = TestDb::new();
    register_worker(&mut db, &register_args("wi-1", "w", NOW)).unwrap();
    let err = db.fails_unchanged(|db| register_worker(db, &register_args("wi-1", "w2", NOW + 1)));
    assert_eq!(err, invalid_input("instance_id reassigned"));
}

#[test]
fn register_bad_input_is_typed_and_writes_nothing() {
    let mut db = TestDb::new();
    let mut no_worker = register_args("wi-1", "", NOW);
    let err = db.fails_unchanged(|db| register_worker(db, &no_worker));
    assert_eq!(err, invalid_input("worker_id must not be empty"));
    no_worker.worker_id = "w".into();
    no_worker.worker_instance_id = String::new();
    let err = db.fails_unchanged(|db| register_worker(db, &no_worker));
    assert_eq!(err, invalid_input("worker_instance_id must not be empty"));
    for ttl in [0, u64::MAX] {
        let mut bad = register_args("wi-1", "w", NOW);
        bad.liveness_ttl_ms = ttl;
        let err = db.fails_unchanged(|db| register_worker(db, &bad));
        assert!(
            matches!(err, EngineError::Validation(ref v) if v.kind == ValidationKind::InvalidInput)
        );
    }
}

#[test]
fn heartbeat_extends_a_live_registration_only() {
    let mut db = TestDb::new();
    assert_eq!(
        heartbeat(&mut db, "wi-1", NOW),
        HeartbeatWorkerOutcome::NotRegistered
    );
    register_worker(&mut db, &register_args("wi-1", "w", NOW)).unwrap();
    let last_live = NOW + TTL as i64 - 1;
    assert_eq!(
        heartbeat(&mut db, "wi-1", last_live),
        HeartbeatWorkerOutcome::Refreshed(last_live + TTL as i64)
    );
    assert_eq!(
        list(&mut db, None, 10, last_live).entries[0].last_heartbeat_ms,
        last_live
    );
    let lapsed = last_live + TTL as i64;
    let before = db.dump();
    assert_eq!(
        heartbeat(&mut db, "wi-1", lapsed),
        HeartbeatWorkerOutcome::NotRegistered
    );
    assert_eq!(db.dump(), before);
    assert_eq!(
        events(&db),
        format!("wi-1:registered@{NOW} wi-1:heartbeat@{last_live}")
    );
}

#[test]
fn mark_dead_deletes_a_live_registration_once() {
    let mut db = TestDb::new();
    register_worker(&mut db, &register_args("wi-1", "w", NOW)).unwrap();
    assert_eq!(
        mark_worker_dead(&mut db, &mark_args("wi-1", "drained", NOW + 1)).unwrap(),
        MarkWorkerDeadOutcome::Marked
    );
    assert!(list(&mut db, None, 10, NOW + 1).entries.is_empty());
    assert_eq!(
        mark_worker_dead(&mut db, &mark_args("wi-1", "drained", NOW + 2)).unwrap(),
        MarkWorkerDeadOutcome::NotRegistered
    );
    assert_eq!(
        events(&db),
        format!(
            "wi-1:registered@{NOW} wi-1:marked_dead@{}(drained)",
            NOW + 1
        )
    );
    // A lapsed registration is not live: nothing to mark.
    register_worker(&mut db, &register_args("wi-2", "w", NOW)).unwrap();
    let before = db.dump();
    assert_eq!(
        mark_worker_dead(&mut db, &mark_args("wi-2", "late", NOW + TTL as i64)).unwrap(),
        MarkWorkerDeadOutcome::NotRegistered
    );
    assert_eq!(db.dump(), before);
}

#[test]
fn mark_dead_reason_is_validated_before_anything_else() {
    let mut db = TestDb::new();
    register_worker(&mut db, &register_args("wi-1", "w", NOW)).unwrap();
    let long = "x".repeat(257);
    let err = db.fails_unchanged(|db| mark_worker_dead(db, &mark_args("wi-1", &long, NOW)));
    assert_eq!(err, invalid_input("reason: exceeds 256 bytes (got 257)"));
    let err = db.fails_unchanged(|db| mark_worker_dead(db, &mark_args("wi-1", "a\nb", NOW)));
    assert_eq!(
        err,
        invalid_input("reason: must not contain control characters")
    );
    let exactly = "é".repeat(128);
    assert_eq!(
        mark_worker_dead(&mut db, &mark_args("wi-1", &exactly, NOW)).unwrap(),
        MarkWorkerDeadOutcome::Marked
    );
}

#[test]
fn list_pages_by_instance_with_a_cursor_only_when_more_follow_and_hides_lapsed_workers() {
    let mut db = TestDb::new();
    for instance in ["wi-3", "wi-1", "wi-2", "wi-4"] {
        register_worker(&mut db, &register_args(instance, "w", NOW)).unwrap();
    }
    let mut other_namespace = register_args("wi-0", "w", NOW);
    other_namespace.namespace = "other".into();
    register_worker(&mut db, &other_namespace).unwrap();
    // wi-2 keeps heartbeating; the others lapse at NOW + TTL.
    heartbeat(&mut db, "wi-2", NOW + 1);
    let first = list(&mut db, None, 2, NOW);
    assert_eq!(
        (instances(&first), first.cursor.as_deref()),
        (vec!["wi-1", "wi-2"], Some("wi-2"))
    );
    let second = list(&mut db, first.cursor.as_deref(), 2, NOW);
    assert_eq!(
        (instances(&second), second.cursor.as_deref()),
        (vec!["wi-3", "wi-4"], None)
    );
    assert!(list(&mut db, None, 0, NOW).entries.is_empty());
    let later = list(&mut db, None, 10, NOW + TTL as i64);
    assert_eq!(instances(&later), vec!["wi-2"]);
}

#[test]
fn the_sweep_deletes_exactly_the_lapsed_registrations() {
    let mut db = TestDb::new();
    register_worker(&mut db, &register_args("wi-1", "w", NOW)).unwrap();
    register_worker(&mut db, &register_args("wi-2", "w", NOW + 1)).unwrap();
    let lapse = NOW + TTL as i64;
    let before = db.dump();
    assert_eq!(sweep_expired_workers(&mut db, lapse - 1).unwrap(), 0);
    assert_eq!(db.dump(), before);
    assert_eq!(sweep_expired_workers(&mut db, lapse).unwrap(), 1);
    assert_eq!(
        db.one("SELECT group_concat(worker_instance_id) FROM ff_worker_registry"),
        "wi-2"
    );
    assert!(events(&db).ends_with(&format!("wi-1:ttl_swept@{lapse}")));
    // Heartbeat refused at `lapse` for the same registration the sweep deletes at `lapse`.
    assert_eq!(
        heartbeat(&mut db, "wi-2", lapse + 1),
        HeartbeatWorkerOutcome::NotRegistered
    );
}

#[test]
fn the_sweep_and_the_list_are_served_by_indexes() {
    let mut db = TestDb::new();
    register_worker(&mut db, &register_args("wi-1", "w", NOW)).unwrap();
    let mut recording = Recording {
        db: &mut db,
        statements: Vec::new(),
    };
    sweep_expired_workers(&mut recording, NOW).unwrap();
    list_workers(
        &mut recording,
        &ListWorkersArgs {
            namespace: "ns".into(),
            after: Some("a".into()),
            limit: 5,
            now: NOW,
        },
    )
    .unwrap();
    let unindexed: Vec<String> = recording
        .unindexed_steps()
        .into_iter()
        .filter(|step| !step.contains("json_each"))
        .collect();
    assert_eq!(unindexed, Vec::<String>::new());
}
