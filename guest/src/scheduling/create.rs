//! `create-execution`; the rules are in the parent module's docs.

use std::collections::BTreeMap;

use crate::bindings::scheduling::{CreateExecutionArgs, CreateExecutionOutcome};
use crate::db::{Db, DbExt, int, opt_int, text};
use crate::errors::corruption;
use crate::exec::{StateVector, check_input_payload};
use crate::ids::{ExecutionRef, validate_lane_id};
use crate::json;
use crate::sql::Value;
use crate::types::{EngineError, PublicState};

/// Create `args.execution_id` (idempotent on the id): waiting, or delayed until
/// `args.delay_until` when that is in the future. See the module docs for the rules.
pub fn create_execution(
    db: &mut impl Db,
    args: &CreateExecutionArgs,
) -> Result<CreateExecutionOutcome, EngineError> {
    validate_lane_id(&args.lane_id)?;
    check_input_payload(&args.input_payload)?;
    let id = ExecutionRef::parse(&args.execution_id)?;
    let idempotency_key = args
        .idempotency_key
        .as_deref()
        .filter(|key| !key.is_empty());
    // A live key names the execution first created with it: another id is a duplicate of
    // that one and writes nothing; the same id goes on as any repeated create.
    if let Some(key) = idempotency_key
        && let Some(existing) = idempotent_duplicate(db, &args.namespace, key, args.now)?
        && existing != id.canonical()
    {
        return Ok(CreateExecutionOutcome::Duplicate(existing));
    }

    let delay_until = args.delay_until.filter(|until| *until > args.now);
    let (state, public_state) = match delay_until {
        Some(_) => (StateVector::DELAYED, PublicState::Delayed),
        None => (StateVector::WAITING, PublicState::Waiting),
    };
    let [
        lifecycle_phase,
        ownership_state,
        eligibility_state,
        public_state_literal,
        attempt_state,
        blocking_reason,
    ] = state.params();
    let inserted = db.run(
        "INSERT INTO ff_exec_core (partition_key, execution_id, flow_id, lane_id, attempt_index, \
             lifecycle_phase, ownership_state, eligibility_state, public_state, attempt_state, \
             blocking_reason, priority, created_at_ms, deadline_at_ms, payload, policy, raw_fields) \
         VALUES (?1, ?2, NULL, ?3, 0, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15) \
         ON CONFLICT (partition_key, execution_id) DO NOTHING",
        &[
            id.partition(),
            id.blob(),
            text(&args.lane_id),
            lifecycle_phase,
            ownership_state,
            eligibility_state,
            public_state_literal,
            attempt_state,
            blocking_reason,
            int(args.priority),
            int(args.now),
            opt_int(args.execution_deadline_at),
            Value::Blob(args.input_payload.clone()),
            args.policy_json.as_deref().map_or(Value::Null, text),
            text(raw_fields(args, delay_until)),
        ],
    )? > 0;

    if inserted && let Some(key) = idempotency_key {
        db.run(
            "INSERT INTO ff_execution_idempotency \
                 (namespace, idempotency_key, partition_key, execution_id, expires_at_ms) \
             VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (namespace, idempotency_key) DO UPDATE SET \
                 partition_key = excluded.partition_key, execution_id = excluded.execution_id, \
                 expires_at_ms = excluded.expires_at_ms",
            &[
                text(&args.namespace),
                text(key),
                id.partition(),
                id.blob(),
                int(args.now.saturating_add(IDEMPOTENCY_TTL_MS)),
            ],
        )?;
    }
    if inserted {
        for capability in args.required_capabilities.iter().filter(|c| !c.is_empty()) {
            db.run(
                "INSERT INTO ff_execution_capabilities (execution_id, capability) VALUES (?1, ?2) \
                 ON CONFLICT DO NOTHING",
                &[id.blob(), text(capability)],
            )?;
        }
    }
    db.run(
        "INSERT INTO ff_lane_registry (lane_id, registered_at_ms, registered_by) \
         VALUES (?1, ?2, 'create_execution') ON CONFLICT (lane_id) DO NOTHING",
        &[text(&args.lane_id), int(args.now)],
    )?;

    Ok(if inserted {
        CreateExecutionOutcome::Created(public_state)
    } else {
        CreateExecutionOutcome::Duplicate(id.canonical())
    })
}

/// How long an idempotency key deduplicates creates: ff-core's default `dedup_ttl_ms`, a day.
pub const IDEMPOTENCY_TTL_MS: i64 = 86_400_000;

/// The execution created with `key` in `namespace` whose key is still live at `now`, as
/// `{fp:N}:<uuid>`.
fn idempotent_duplicate(
    db: &mut impl Db,
    namespace: &str,
    key: &str,
    now: i64,
) -> Result<Option<String>, EngineError> {
    let Some(row) = db.first_row(
        "SELECT partition_key, lower(hex(execution_id)) FROM ff_execution_idempotency \
         WHERE namespace = ?1 AND idempotency_key = ?2 AND expires_at_ms > ?3",
        &[text(namespace), text(key), int(now)],
    )?
    else {
        return Ok(None);
    };
    match (row.integer(0), row.text(1)) {
        (Some(partition), Some(hex)) => {
            let uuid = uuid::Uuid::try_parse(&hex)
                .map_err(|_| corruption(format!("ff_execution_idempotency: bad id {hex}")))?;
            Ok(Some(
                ExecutionRef::parse(&format!("{{fp:{partition}}}:{}", uuid.hyphenated()))?
                    .canonical(),
            ))
        }
        _ => Err(corruption(
            "ff_execution_idempotency: execution key missing",
        )),
    }
}

/// The initial `raw_fields` document, keys in alphabetical order as upstream's serde map
/// writes them; tags sorted by key (a repeated key keeps its last value).
fn raw_fields(args: &CreateExecutionArgs, delay_until: Option<i64>) -> String {
    let tags: BTreeMap<&str, &str> = args
        .tags
        .iter()
        .map(|(key, value)| (key.as_str(), value.as_str()))
        .collect();
    let tags: Vec<String> = tags
        .into_iter()
        .map(|(key, value)| format!("{}:{}", json::string(key), json::string(value)))
        .collect();

    let mut fields = vec![format!(
        "\"creator_identity\":{}",
        json::string(&args.creator_identity)
    )];
    if let Some(until) = delay_until {
        fields.push(format!("\"delay_until\":\"{until}\""));
    }
    fields.push(format!(
        "\"execution_kind\":{}",
        json::string(&args.execution_kind)
    ));
    if let Some(key) = &args.idempotency_key {
        fields.push(format!("\"idempotency_key\":{}", json::string(key)));
    }
    fields.push(format!("\"last_mutation_at\":\"{}\"", args.now));
    fields.push(format!("\"namespace\":{}", json::string(&args.namespace)));
    if let Some(encoding) = &args.payload_encoding {
        fields.push(format!("\"payload_encoding\":{}", json::string(encoding)));
    }
    fields.push(format!("\"tags\":{{{}}}", tags.join(",")));
    fields.push("\"total_attempt_count\":\"0\"".into());
    format!("{{{}}}", fields.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::MAX_PAYLOAD_BYTES;
    use crate::testing::{EXEC, NOW, TestDb, hex};
    use crate::types::ValidationKind;

    fn args() -> CreateExecutionArgs {
        CreateExecutionArgs {
            execution_id: EXEC.into(),
            namespace: "ns1".into(),
            lane_id: "default".into(),
            execution_kind: "kind1".into(),
            input_payload: b"hello".to_vec(),
            payload_encoding: Some("json".into()),
            priority: 7,
            creator_identity: "me".into(),
            idempotency_key: Some("idem".into()),
            tags: vec![("cairn.instance_id".into(), "inst-1".into())],
            policy_json: Some("{\"max_retries\":3}".into()),
            required_capabilities: vec!["capA".into(), "capB".into()],
            delay_until: None,
            execution_deadline_at: Some(NOW + 99),
            now: NOW,
        }
    }

    fn validation_kind(result: Result<CreateExecutionOutcome, EngineError>) -> ValidationKind {
        match result {
            Err(EngineError::Validation(v)) => v.kind,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn happy_path_writes_the_row_capabilities_and_lane() {
        let mut db = TestDb::new();
        assert_eq!(
            create_execution(&mut db, &args()).unwrap(),
            CreateExecutionOutcome::Created(PublicState::Waiting)
        );
        assert_eq!(
            db.one(&format!(
                "SELECT partition_key || '|' || hex(execution_id) || '|' || COALESCE(flow_id, 'NULL') || '|' || \
                 lane_id || '|' || attempt_index || '|' || lifecycle_phase || '|' || ownership_state || '|' || \
                 eligibility_state || '|' || public_state || '|' || attempt_state || '|' || blocking_reason || '|' || \
                 priority || '|' || created_at_ms || '|' || deadline_at_ms || '|' || typeof(payload) || ':' || \
                 CAST(payload AS TEXT) || '|' || policy || '|' || lease_reclaim_count || '|' || \
                 COALESCE(terminal_at_ms, started_at_ms, result, cancellation_reason, cancelled_by, 'unset') \
                 FROM ff_exec_core WHERE execution_id = X'{}'",
                hex(EXEC)
            )),
            format!(
                "0|{}|NULL|default|0|runnable|unowned|eligible_now|waiting|pending_first_attempt|\
                 waiting_for_worker|7|{NOW}|{}|blob:hello|{{\"max_retries\":3}}|0|unset",
                hex(EXEC).to_uppercase(),
                NOW + 99
            )
        );
        assert_eq!(
            db.one("SELECT raw_fields FROM ff_exec_core"),
            format!(
                "{{\"creator_identity\":\"me\",\"execution_kind\":\"kind1\",\"idempotency_key\":\"idem\",\
                 \"last_mutation_at\":\"{NOW}\",\"namespace\":\"ns1\",\"payload_encoding\":\"json\",\
                 \"tags\":{{\"cairn.instance_id\":\"inst-1\"}},\"total_attempt_count\":\"0\"}}"
            )
        );
        assert_eq!(
            db.one("SELECT json_valid(raw_fields) FROM ff_exec_core"),
            "1"
        );
        assert_eq!(
            db.one(
                "SELECT group_concat(hex(execution_id) || ':' || capability, ',') \
                 FROM (SELECT * FROM ff_execution_capabilities ORDER BY capability)"
            ),
            format!("{0}:capA,{0}:capB", hex(EXEC).to_uppercase())
        );
        assert_eq!(
            db.one("SELECT lane_id || '|' || registered_at_ms || '|' || registered_by FROM ff_lane_registry"),
            format!("default|{NOW}|create_execution")
        );
        for table in [
            "ff_attempt",
            "ff_claim_grant",
            "ff_lease_event",
            "ff_completion_event",
        ] {
            assert_eq!(
                db.one(&format!("SELECT COUNT(*) FROM {table}")),
                "0",
                "{table}"
            );
        }
    }

    #[test]
    fn optional_fields_absent_give_nulls_and_a_minimal_document() {
        let mut db = TestDb::new();
        let mut bare = args();
        bare.input_payload = Vec::new();
        bare.payload_encoding = None;
        bare.idempotency_key = None;
        bare.tags = Vec::new();
        bare.policy_json = None;
        bare.required_capabilities = Vec::new();
        bare.execution_deadline_at = None;
        create_execution(&mut db, &bare).unwrap();
        assert_eq!(
            db.one(
                "SELECT typeof(payload) || '|' || length(payload) || '|' || COALESCE(policy, 'NULL') || '|' || \
                 COALESCE(deadline_at_ms, 'NULL') FROM ff_exec_core"
            ),
            "blob|0|NULL|NULL"
        );
        assert_eq!(
            db.one("SELECT raw_fields FROM ff_exec_core"),
            format!(
                "{{\"creator_identity\":\"me\",\"execution_kind\":\"kind1\",\"last_mutation_at\":\"{NOW}\",\
                 \"namespace\":\"ns1\",\"tags\":{{}},\"total_attempt_count\":\"0\"}}"
            )
        );
        assert_eq!(
            db.one("SELECT COUNT(*) FROM ff_execution_capabilities"),
            "0"
        );
    }

    #[test]
    fn tags_are_sorted_escaped_and_a_repeated_key_keeps_its_last_value() {
        let mut db = TestDb::new();
        let mut tagged = args();
        tagged.tags = vec![
            ("z".into(), "last".into()),
            ("a\"q".into(), "line\nbreak".into()),
            ("m".into(), "first".into()),
            ("m".into(), "second".into()),
        ];
        create_execution(&mut db, &tagged).unwrap();
        assert_eq!(
            db.one("SELECT json_extract(raw_fields, '$.tags') FROM ff_exec_core"),
            "{\"a\\\"q\":\"line\\nbreak\",\"m\":\"second\",\"z\":\"last\"}"
        );
        assert_eq!(
            db.one(
                "SELECT group_concat(key || '=' || value, ';') \
                 FROM ff_exec_core, json_each(ff_exec_core.raw_fields, '$.tags')"
            ),
            "a\"q=line\nbreak;m=second;z=last"
        );
    }

    #[test]
    fn a_future_delay_creates_a_delayed_execution() {
        let mut db = TestDb::new();
        let mut delayed = args();
        delayed.delay_until = Some(NOW + 5_000);
        assert_eq!(
            create_execution(&mut db, &delayed).unwrap(),
            CreateExecutionOutcome::Created(PublicState::Delayed)
        );
        assert_eq!(
            db.one(
                "SELECT lifecycle_phase || '|' || ownership_state || '|' || eligibility_state || '|' || \
                 public_state || '|' || attempt_state || '|' || blocking_reason || '|' || \
                 json_extract(raw_fields, '$.delay_until') || '|' || json_type(raw_fields, '$.delay_until') \
                 FROM ff_exec_core"
            ),
            format!(
                "runnable|unowned|not_eligible_until_time|delayed|pending_first_attempt|waiting_for_delay|{}|text",
                NOW + 5_000
            )
        );
        // delay_until sits between creator_identity and execution_kind, as upstream's sorted map.
        assert!(
            db.one("SELECT raw_fields FROM ff_exec_core")
                .starts_with(&format!(
                    "{{\"creator_identity\":\"me\",\"delay_until\":\"{}\",\"execution_kind\"",
                    NOW + 5_000
                ))
        );
    }

    #[test]
    fn a_delay_at_or_before_now_is_ignored() {
        for until in [NOW, NOW - 1] {
            let mut db = TestDb::new();
            let mut past = args();
            past.delay_until = Some(until);
            assert_eq!(
                create_execution(&mut db, &past).unwrap(),
                CreateExecutionOutcome::Created(PublicState::Waiting)
            );
            assert_eq!(
                db.one(
                    "SELECT eligibility_state || '|' || COALESCE(json_type(raw_fields, '$.delay_until'), 'absent') \
                     FROM ff_exec_core"
                ),
                "eligible_now|absent"
            );
        }
    }

    #[test]
    fn an_idempotency_key_makes_a_resubmission_a_duplicate_of_the_first_for_a_day() {
        let mut db = TestDb::new();
        create_execution(&mut db, &args()).unwrap();
        let other = "{fp:3}:0b7c1c1e-8d6a-4a5e-b1d2-0d9e3f1a2c33";
        let mut resubmitted = args();
        resubmitted.execution_id = other.into();
        resubmitted.now = NOW + IDEMPOTENCY_TTL_MS - 1;
        let before = db.dump();
        assert_eq!(
            create_execution(&mut db, &resubmitted).unwrap(),
            CreateExecutionOutcome::Duplicate(EXEC.into())
        );
        assert_eq!(db.dump(), before, "a duplicate writes nothing");

        // Another namespace, or no key, is a new submission.
        let mut elsewhere = resubmitted.clone();
        elsewhere.namespace = "other-ns".into();
        assert!(matches!(
            create_execution(&mut db, &elsewhere).unwrap(),
            CreateExecutionOutcome::Created(_)
        ));

        // Once the key expired, the next submission creates and takes the key over.
        let mut db = TestDb::new();
        create_execution(&mut db, &args()).unwrap();
        resubmitted.now = NOW + IDEMPOTENCY_TTL_MS;
        assert!(matches!(
            create_execution(&mut db, &resubmitted).unwrap(),
            CreateExecutionOutcome::Created(_)
        ));
        let mut third = args();
        third.execution_id = "{fp:5}:6d4f8a52-3f0e-4c4e-9f54-6a1d0c8e2b11".into();
        third.now = NOW + IDEMPOTENCY_TTL_MS + 1;
        assert_eq!(
            create_execution(&mut db, &third).unwrap(),
            CreateExecutionOutcome::Duplicate(other.into())
        );
    }

    #[test]
    fn a_second_create_is_duplicate_changes_nothing_but_registers_its_lane() {
        let mut db = TestDb::new();
        create_execution(&mut db, &args()).unwrap();
        let before = db.dump();

        let mut again = args();
        again.priority = 1;
        again.required_capabilities = vec!["capC".into()];
        again.now = NOW + 1;
        assert_eq!(
            create_execution(&mut db, &again).unwrap(),
            CreateExecutionOutcome::Duplicate(EXEC.into())
        );
        assert_eq!(db.dump(), before);

        let mut other_lane = again.clone();
        other_lane.lane_id = "other".into();
        assert_eq!(
            create_execution(&mut db, &other_lane).unwrap(),
            CreateExecutionOutcome::Duplicate(EXEC.into())
        );
        assert_eq!(
            db.one("SELECT group_concat(lane_id || '@' || registered_at_ms, ',') FROM (SELECT * FROM ff_lane_registry ORDER BY lane_id)"),
            format!("default@{NOW},other@{}", NOW + 1)
        );
        assert_eq!(db.one("SELECT priority FROM ff_exec_core"), "7");
        assert_eq!(
            db.one("SELECT COUNT(*) FROM ff_execution_capabilities"),
            "2"
        );
    }

    #[test]
    fn empty_capability_tokens_are_not_stored() {
        let mut db = TestDb::new();
        let mut caps = args();
        caps.required_capabilities = vec![String::new(), "gpu".into()];
        create_execution(&mut db, &caps).unwrap();
        assert_eq!(
            db.one("SELECT group_concat(capability, ',') FROM ff_execution_capabilities"),
            "gpu"
        );
    }

    #[test]
    fn the_partition_comes_from_the_id() {
        let mut db = TestDb::new();
        let mut other = args();
        other.execution_id = "{fp:7}:53AD96D2-6B08-4D0C-86E3-36598DB2291C".into();
        create_execution(&mut db, &other).unwrap();
        assert_eq!(
            db.one("SELECT partition_key || '|' || lower(hex(execution_id)) FROM ff_exec_core"),
            format!("7|{}", hex(EXEC))
        );
    }

    #[test]
    fn lane_id_rules_are_ff_cores() {
        let cases: [(String, Option<&str>); 6] = [
            (String::new(), Some("lane_id must not be empty")),
            ("x".repeat(65), Some("lane_id is 65 bytes (max 64)")),
            ("x".repeat(64), None),
            (
                "tab\there".into(),
                Some("lane_id has a non-printable byte at index 3"),
            ),
            (
                "caf\u{e9}".into(),
                Some("lane_id has a non-printable byte at index 3"),
            ),
            (" ~printable~ ".into(), None),
        ];
        for (lane, expected) in cases {
            let mut db = TestDb::new();
            let before = db.dump();
            let mut bad = args();
            bad.lane_id = lane.clone();
            match (create_execution(&mut db, &bad), expected) {
                (Err(EngineError::Validation(v)), Some(detail)) => {
                    assert_eq!(v.kind, ValidationKind::InvalidInput, "{lane:?}");
                    assert_eq!(v.detail, detail, "{lane:?}");
                    assert_eq!(db.dump(), before, "{lane:?}");
                }
                (Ok(CreateExecutionOutcome::Created(_)), None) => {}
                (other, _) => panic!("{lane:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn an_oversized_payload_is_payload_too_large_and_writes_nothing() {
        let mut db = TestDb::new();
        let before = db.dump();
        let mut big = args();
        big.input_payload = vec![0; MAX_PAYLOAD_BYTES + 1];
        assert_eq!(
            validation_kind(create_execution(&mut db, &big)),
            ValidationKind::PayloadTooLarge
        );
        assert_eq!(db.dump(), before);

        big.input_payload = vec![0; MAX_PAYLOAD_BYTES];
        create_execution(&mut db, &big).unwrap();
        assert_eq!(
            db.one("SELECT length(payload) FROM ff_exec_core"),
            MAX_PAYLOAD_BYTES.to_string()
        );
    }

    #[test]
    fn a_malformed_id_is_invalid_input_and_writes_nothing() {
        let mut db = TestDb::new();
        let before = db.dump();
        let mut bad = args();
        bad.execution_id = "{fp:0}:nope".into();
        assert_eq!(
            validation_kind(create_execution(&mut db, &bad)),
            ValidationKind::InvalidInput
        );
        assert_eq!(db.dump(), before);
    }

    #[test]
    fn validation_order_is_lane_then_payload_then_id() {
        let mut db = TestDb::new();
        let mut bad = args();
        bad.lane_id = String::new();
        bad.input_payload = vec![0; MAX_PAYLOAD_BYTES + 1];
        bad.execution_id = "bogus".into();
        match create_execution(&mut db, &bad) {
            Err(EngineError::Validation(v)) => assert_eq!(v.detail, "lane_id must not be empty"),
            other => panic!("{other:?}"),
        }
        bad.lane_id = "default".into();
        assert_eq!(
            validation_kind(create_execution(&mut db, &bad)),
            ValidationKind::PayloadTooLarge
        );
    }
}
