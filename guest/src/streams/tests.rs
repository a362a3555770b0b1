//! Unit tests of the streams logic against real SQLite: appends (fencing, limits, ids, summary
//! merge, best-effort retention), page reads (order, bounds, byte budgets, index use) and
//! outbox pages.

use super::*;
use crate::bindings::lease_holder::HandleLease;
use crate::bindings::streams::{BestEffortConfig, FramePosition, Outbox, OutboxFilter};
use crate::testing::{ATTEMPT, EXEC, LEASE, NOW, Recording, TestDb};
use crate::types::ContentionKind;

fn lease() -> HandleLease {
    HandleLease {
        execution_id: EXEC.into(),
        attempt_index: 0,
        attempt_id: ATTEMPT.into(),
        lease_id: LEASE.into(),
        lease_epoch: 1,
        lease_ttl_ms: 30_000,
        lane_id: "default".into(),
        worker_instance_id: "wi-1".into(),
    }
}

fn frame(payload: &str, mode: FrameMode, now: i64) -> AppendFrameArgs {
    AppendFrameArgs {
        lease: lease(),
        payload: payload.as_bytes().to_vec(),
        frame_type: "stdout".into(),
        correlation_id: None,
        mode,
        best_effort: None,
        now,
    }
}

fn all_frames(limit: u32, byte_budget: u64) -> FrameQuery {
    FrameQuery {
        execution_id: EXEC.into(),
        attempt_index: 0,
        start: FramePosition {
            ms: i64::MIN,
            seq: i64::MIN,
        },
        start_inclusive: true,
        end: FramePosition {
            ms: i64::MAX,
            seq: i64::MAX,
        },
        limit,
        exclude_best_effort: false,
        byte_budget,
    }
}

fn payloads(frames: &[StreamFrame]) -> Vec<String> {
    frames
        .iter()
        .map(|frame| {
            frame
                .fields
                .iter()
                .find(|(name, _)| name == "payload")
                .map(|(_, value)| value.clone())
                .unwrap_or_default()
        })
        .collect()
}

#[test]
fn append_durable_writes_a_frame_and_counts_the_stream() {
    let mut db = TestDb::leased();
    let first = append_frame(&mut db, &frame("one", FrameMode::Durable, NOW)).unwrap();
    assert_eq!(first.stream_id, format!("{NOW}-0"));
    assert_eq!(first.frame_count, 1);
    assert_eq!(first.summary_version, None);
    let second = append_frame(&mut db, &frame("two", FrameMode::Durable, NOW)).unwrap();
    assert_eq!(second.stream_id, format!("{NOW}-1"));
    assert_eq!(second.frame_count, 2);
    assert!(second.row_id > first.row_id);
    assert_eq!(
        db.one("SELECT fields FROM ff_stream_frame WHERE seq = 0"),
        r#"{"encoding":"utf8","frame_type":"stdout","payload":"one","source":"worker"}"#
    );
    assert_eq!(
        db.one("SELECT mode FROM ff_stream_frame WHERE seq = 1"),
        "durable"
    );
}

#[test]
fn frame_ids_never_go_back_when_the_clock_does() {
    let mut db = TestDb::leased();
    append_frame(&mut db, &frame("late", FrameMode::Durable, NOW + 500)).unwrap();
    let earlier = append_frame(&mut db, &frame("early", FrameMode::Durable, NOW)).unwrap();
    assert_eq!(earlier.stream_id, format!("{}-1", NOW + 500));
    let frames = read_frames(&mut db, &all_frames(10, u64::MAX))
        .unwrap()
        .frames;
    assert_eq!(payloads(&frames), ["late", "early"]);
}

#[test]
fn append_with_a_stale_epoch_is_lease_conflict_and_writes_nothing() {
    let mut db = TestDb::leased();
    let mut args = frame("x", FrameMode::Durable, NOW);
    args.lease.lease_epoch = 999;
    let err = db.fails_unchanged(|db| append_frame(db, &args));
    assert_eq!(err, EngineError::Contention(ContentionKind::LeaseConflict));
}

#[test]
fn append_to_an_unknown_attempt_is_not_found_and_writes_nothing() {
    let mut db = TestDb::leased();
    let mut args = frame("x", FrameMode::Durable, NOW);
    args.lease.attempt_index = 7;
    let err = db.fails_unchanged(|db| append_frame(db, &args));
    assert_eq!(err, EngineError::NotFound(crate::types::Entity::Attempt));
}

#[test]
fn append_after_completion_is_refused_and_writes_nothing() {
    let mut db = TestDb::leased();
    db.exec("UPDATE ff_exec_core SET lifecycle_phase = 'terminal', ownership_state = 'unowned'");
    let args = frame("x", FrameMode::Durable, NOW);
    let err = db.fails_unchanged(|db| append_frame(db, &args));
    assert!(
        matches!(
            err,
            EngineError::Contention(ContentionKind::ExecutionNotActive(_))
        ),
        "{err:?}"
    );
}

#[test]
fn oversized_payload_is_retention_limit_exceeded_and_writes_nothing() {
    let mut db = TestDb::leased();
    let args = AppendFrameArgs {
        payload: vec![b'x'; MAX_FRAME_PAYLOAD_BYTES + 1],
        ..frame("", FrameMode::Durable, NOW)
    };
    let err = db.fails_unchanged(|db| append_frame(db, &args));
    assert!(
        matches!(&err, EngineError::Validation(v) if v.kind == ValidationKind::RetentionLimitExceeded),
        "{err:?}"
    );
    let at_limit = AppendFrameArgs {
        payload: vec![b'x'; MAX_FRAME_PAYLOAD_BYTES],
        ..frame("", FrameMode::Durable, NOW)
    };
    append_frame(&mut db, &at_limit).expect("a payload at the limit is accepted");
}

#[test]
fn summary_patches_merge_with_null_deleting_and_the_sentinel_setting_null() {
    let mut db = TestDb::leased();
    let first = append_frame(
        &mut db,
        &frame(r#"{"a":1,"n":{"x":1}}"#, FrameMode::Summary, NOW),
    )
    .unwrap();
    assert_eq!(first.summary_version, Some(1));
    let second = append_frame(
        &mut db,
        &frame(
            r#"{"b":2,"a":null,"n":{"y":"__ff_null__"}}"#,
            FrameMode::Summary,
            NOW + 5,
        ),
    )
    .unwrap();
    assert_eq!(second.summary_version, Some(2));
    let document = read_summary(&mut db, EXEC, 0).unwrap().expect("a summary");
    assert_eq!(document.version, 2);
    assert_eq!(document.first_applied_ms, NOW);
    assert_eq!(document.last_updated_ms, NOW + 5);
    assert_eq!(
        db.one(&format!(
            "SELECT json_extract('{}', '$.b') || ',' || json_type('{}', '$.n.y') || ',' || \
                 COALESCE(json_type('{}', '$.a'), 'absent')",
            document.document_json, document.document_json, document.document_json
        )),
        "2,null,absent"
    );
    assert_eq!(
        second.frame_count, 2,
        "summary frames are kept as frames too"
    );
}

#[test]
fn summary_patch_that_is_not_a_json_object_is_invalid_and_writes_nothing() {
    let mut db = TestDb::leased();
    for patch in ["not json", "[1,2]", "3"] {
        let args = frame(patch, FrameMode::Summary, NOW);
        let err = db.fails_unchanged(|db| append_frame(db, &args));
        assert!(
            matches!(&err, EngineError::Validation(v) if v.kind == ValidationKind::InvalidInput),
            "{patch}: {err:?}"
        );
    }
    assert_eq!(read_summary(&mut db, EXEC, 0).unwrap(), None);
}

#[test]
fn best_effort_appends_trim_only_best_effort_frames_to_the_floor() {
    let mut db = TestDb::leased();
    append_frame(&mut db, &frame("durable", FrameMode::Durable, NOW)).unwrap();
    let config = BestEffortConfig {
        ttl_ms: 1,
        maxlen_floor: 2,
        maxlen_ceiling: 100,
        ema_alpha: 0.2,
    };
    let mut last = None;
    for index in 0..5 {
        let args = AppendFrameArgs {
            best_effort: Some(config),
            ..frame(
                &format!("live-{index}"),
                FrameMode::BestEffort,
                NOW + 1000 * index,
            )
        };
        last = Some(append_frame(&mut db, &args).unwrap());
    }
    assert_eq!(last.unwrap().frame_count, 3);
    let frames = read_frames(&mut db, &all_frames(10, u64::MAX))
        .unwrap()
        .frames;
    assert_eq!(payloads(&frames), ["durable", "live-3", "live-4"]);
    let mut durable_only = all_frames(10, u64::MAX);
    durable_only.exclude_best_effort = true;
    assert_eq!(
        payloads(&read_frames(&mut db, &durable_only).unwrap().frames),
        ["durable"]
    );
}

#[test]
fn read_frames_bounds_are_inclusive_unless_the_start_is_exclusive() {
    let mut db = TestDb::leased();
    for index in 0..4 {
        append_frame(
            &mut db,
            &frame(&format!("f{index}"), FrameMode::Durable, NOW),
        )
        .unwrap();
    }
    let mut query = all_frames(10, u64::MAX);
    query.start = FramePosition { ms: NOW, seq: 1 };
    query.end = FramePosition { ms: NOW, seq: 2 };
    assert_eq!(
        payloads(&read_frames(&mut db, &query).unwrap().frames),
        ["f1", "f2"]
    );
    query.start_inclusive = false;
    assert_eq!(
        payloads(&read_frames(&mut db, &query).unwrap().frames),
        ["f2"]
    );
    let mut limited = all_frames(3, u64::MAX);
    limited.limit = 3;
    assert_eq!(read_frames(&mut db, &limited).unwrap().frames.len(), 3);
    let mut other_attempt = all_frames(10, u64::MAX);
    other_attempt.attempt_index = 1;
    assert!(
        read_frames(&mut db, &other_attempt)
            .unwrap()
            .frames
            .is_empty()
    );
}

#[test]
fn read_frames_returns_fewer_frames_within_the_byte_budget_never_an_error() {
    let mut db = TestDb::leased();
    let big = "y".repeat(40_000);
    for _ in 0..40 {
        append_frame(&mut db, &frame(&big, FrameMode::Durable, NOW)).unwrap();
    }
    let page = read_frames(&mut db, &all_frames(1000, 100_000))
        .unwrap()
        .frames;
    assert_eq!(
        page.len(),
        2,
        "two 40 KB frames fit in 100 KB, a third does not"
    );
    let tiny = read_frames(&mut db, &all_frames(1000, 10)).unwrap().frames;
    assert_eq!(tiny.len(), 1, "a page holds at least one frame");
    let everything = read_frames(&mut db, &all_frames(1000, u64::MAX))
        .unwrap()
        .frames;
    assert_eq!(everything.len(), 40, "pages continue across query chunks");
}

#[test]
fn read_frames_starts_at_its_cursor_by_index() {
    let mut db = TestDb::leased();
    append_frame(&mut db, &frame("f", FrameMode::Durable, NOW)).unwrap();
    let mut recording = Recording {
        db: &mut db,
        statements: Vec::new(),
    };
    let mut query = all_frames(10, u64::MAX);
    query.start = FramePosition { ms: NOW, seq: 0 };
    query.start_inclusive = false;
    query.exclude_best_effort = true;
    read_frames(&mut recording, &query).unwrap();
    query.exclude_best_effort = false;
    read_frames(&mut recording, &query).unwrap();
    let scans: Vec<String> = recording
        .unindexed_steps()
        .into_iter()
        .filter(|step| step.contains("ff_stream_frame") && step.starts_with("SCAN ff_stream_frame"))
        .collect();
    assert!(scans.is_empty(), "{scans:#?}");
}

#[test]
fn outbox_pages_advance_past_filtered_rows_and_respect_the_budget() {
    let mut db = TestDb::leased();
    // The claim recorded `acquired` (namespace `ns`, tag `inst`); add rows of another tag.
    db.exec(
        "INSERT INTO ff_lease_event (execution_id, lease_id, event_type, occurred_at_ms, \
             partition_key, namespace, instance_tag) \
         VALUES ('53ad96d2-6b08-4d0c-86e3-36598db2291c', NULL, 'renewed', 5, 0, 'ns', 'other'), \
                ('53ad96d2-6b08-4d0c-86e3-36598db2291c', NULL, 'renewed', 6, 0, 'ns', 'other')",
    );
    let filter = OutboxFilter {
        namespace: Some("ns".into()),
        instance_tag: Some("inst".into()),
    };
    let first = read_outbox(&mut db, Outbox::LeaseHistory, 0, 256, u64::MAX, &filter).unwrap();
    assert_eq!(first.events.len(), 1);
    assert_eq!(first.events[0].kind, "acquired");
    assert_eq!(first.events[0].execution_id, EXEC);
    assert_eq!(first.events[0].lease_id.as_deref(), Some(LEASE));
    assert_eq!(first.last_scanned_id, 3, "filtered rows are passed");
    let rest = read_outbox(&mut db, Outbox::LeaseHistory, 3, 256, u64::MAX, &filter).unwrap();
    assert!(rest.events.is_empty());
    assert_eq!(rest.last_scanned_id, 3);

    let unfiltered = OutboxFilter {
        namespace: None,
        instance_tag: None,
    };
    let budgeted = read_outbox(&mut db, Outbox::LeaseHistory, 0, 256, 1, &unfiltered).unwrap();
    assert_eq!(budgeted.events.len(), 1, "fewer events, never an error");
    assert_eq!(budgeted.last_scanned_id, 1);
}

#[test]
fn completion_pages_rebuild_the_execution_id_and_keep_the_outcome() {
    let mut db = TestDb::leased();
    db.exec(&format!(
        "INSERT INTO ff_completion_event (partition_key, execution_id, outcome, occurred_at_ms) \
         VALUES (0, X'{}', 'failed', 9)",
        crate::testing::hex(EXEC)
    ));
    let all = OutboxFilter {
        namespace: None,
        instance_tag: None,
    };
    let page = read_outbox(&mut db, Outbox::Completion, 0, 256, u64::MAX, &all).unwrap();
    assert_eq!(page.events.len(), 1);
    assert_eq!(page.events[0].execution_id, EXEC);
    assert_eq!(page.events[0].kind, "failed");
    assert_eq!(page.events[0].at, 9);
    let heads = change_heads(&mut db).unwrap();
    assert_eq!(
        heads.outboxes,
        [
            (Outbox::Completion, 1),
            (Outbox::LeaseHistory, 1),
            (Outbox::SignalDelivery, 0),
            (Outbox::InstanceTags, 0)
        ]
    );
    assert_eq!(heads.frames, 0);
}

#[test]
fn a_corrupt_completion_row_is_corruption() {
    let mut db = TestDb::leased();
    db.exec(
        "INSERT INTO ff_completion_event (partition_key, execution_id, outcome, occurred_at_ms) \
         VALUES (0, X'0102', 'success', 9)",
    );
    let all = OutboxFilter {
        namespace: None,
        instance_tag: None,
    };
    let err = read_outbox(&mut db, Outbox::Completion, 0, 256, u64::MAX, &all).unwrap_err();
    assert!(
        matches!(&err, EngineError::Validation(v) if v.kind == ValidationKind::Corruption),
        "{err:?}"
    );
}

#[test]
fn signal_and_tag_pages_carry_their_details() {
    let mut db = TestDb::leased();
    db.exec(
        "INSERT INTO ff_signal_event (execution_id, signal_id, waitpoint_id, source_identity, \
             delivered_at_ms, partition_key, namespace, instance_tag, effect) \
         VALUES ('53ad96d2-6b08-4d0c-86e3-36598db2291c', 'sig-1', 'wp-1', 'svc', 7, 0, 'ns', 'inst', \
                 'appended_to_waitpoint'), \
                ('53ad96d2-6b08-4d0c-86e3-36598db2291c', 'sig-2', NULL, NULL, 8, 0, 'other', NULL, NULL); \
         INSERT INTO ff_instance_tag_event (execution_id, event_type, tag, occurred_at_ms, partition_key) \
         VALUES ('53ad96d2-6b08-4d0c-86e3-36598db2291c', 'cleared', 'cairn.x=a', 9, 0)",
    );
    let namespace_ns = OutboxFilter {
        namespace: Some("ns".into()),
        instance_tag: None,
    };
    let page = read_outbox(
        &mut db,
        Outbox::SignalDelivery,
        0,
        256,
        u64::MAX,
        &namespace_ns,
    )
    .unwrap();
    assert_eq!(page.events.len(), 1);
    assert_eq!(
        page.last_scanned_id, 2,
        "the other namespace's row is passed"
    );
    let event = &page.events[0];
    assert_eq!((event.execution_id.as_str(), event.at), (EXEC, 7));
    let signal = event
        .signal
        .as_ref()
        .expect("a signal row carries its signal");
    assert_eq!(signal.signal_id, "sig-1");
    assert_eq!(signal.waitpoint_id.as_deref(), Some("wp-1"));
    assert_eq!(signal.source_identity.as_deref(), Some("svc"));
    assert_eq!(signal.effect.as_deref(), Some("appended_to_waitpoint"));
    let all = OutboxFilter {
        namespace: None,
        instance_tag: None,
    };
    let tags = read_outbox(&mut db, Outbox::InstanceTags, 0, 256, u64::MAX, &all).unwrap();
    assert_eq!(tags.events.len(), 1);
    assert_eq!(tags.events[0].kind, "cleared");
    assert_eq!(tags.events[0].tag.as_deref(), Some("cairn.x=a"));
    assert!(tags.events[0].signal.is_none());
    let heads = change_heads(&mut db).unwrap();
    assert!(heads.outboxes.contains(&(Outbox::SignalDelivery, 2)));
    assert!(heads.outboxes.contains(&(Outbox::InstanceTags, 1)));
}

#[test]
fn a_stream_is_closed_once_its_attempt_ends_and_only_on_a_page_that_reached_the_end() {
    let mut db = TestDb::leased();
    append_frame(&mut db, &frame("a", FrameMode::Durable, NOW)).unwrap();
    append_frame(&mut db, &frame("b", FrameMode::Durable, NOW)).unwrap();
    assert_eq!(
        read_frames(&mut db, &all_frames(10, u64::MAX))
            .unwrap()
            .closed,
        None
    );
    db.exec(&format!(
        "UPDATE ff_attempt SET terminal_at_ms = {}, outcome = 'success'",
        NOW + 5
    ));
    let page = read_frames(&mut db, &all_frames(10, u64::MAX)).unwrap();
    assert_eq!(payloads(&page.frames), ["a", "b"]);
    assert_eq!(
        page.closed,
        Some(StreamClosed {
            at: NOW + 5,
            reason: "success".into()
        })
    );
    let first_only = read_frames(&mut db, &all_frames(1, u64::MAX)).unwrap();
    assert_eq!(first_only.frames.len(), 1);
    assert_eq!(
        first_only.closed, None,
        "more frames follow: not closed yet"
    );
    // A later attempt closes an earlier one that recorded no end.
    let mut db = TestDb::leased();
    db.exec(&format!(
        "UPDATE ff_exec_core SET attempt_index = 1; \
         INSERT INTO ff_attempt (partition_key, execution_id, attempt_index, started_at_ms) \
         SELECT partition_key, execution_id, 1, {} FROM ff_exec_core",
        NOW + 9
    ));
    assert_eq!(
        read_frames(&mut db, &all_frames(10, u64::MAX))
            .unwrap()
            .closed,
        Some(StreamClosed {
            at: NOW + 9,
            reason: "superseded".into()
        })
    );
    // An unknown execution's stream is open.
    let mut unknown = all_frames(10, u64::MAX);
    unknown.execution_id = "{fp:0}:00000000-0000-4000-8000-000000000000".into();
    assert_eq!(read_frames(&mut db, &unknown).unwrap().closed, None);
}
