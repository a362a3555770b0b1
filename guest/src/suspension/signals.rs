//! `deliver-signal`, `deliver-approval-signal` and `observe-signals`; the rules are in the
//! parent module's docs.

use std::collections::BTreeMap;

use serde_json::{Map, Value as Json, json};

use super::condition::{Signal, parse_stored};
use super::suspend::uuid_blob;
use super::tokens::{Tokens, token_message, verify_error};
use super::{DEFAULT_MAX_SIGNALS, DEFAULT_SIGNAL_DEDUP_TTL_MS, RESUMABLE, parse_waitpoint_id};
use crate::bindings::suspension::{
    AcceptedSignal, DeliverApprovalSignalArgs, DeliverSignalArgs, DeliverSignalOutcome,
    HandleLease, ResumeSignal,
};
use crate::db::{Db, DbExt, int, text};
use crate::errors::{contention, corruption, invalid_input};
use crate::exec::{Exec, record_completion_event, update_exec};
use crate::ids::{ExecutionRef, validate_lane_id};
use crate::types::{
    ContentionKind, EngineError, Entity, StateKind, ValidationError, ValidationKind,
};

/// The effect of a signal that satisfied the resume condition.
pub const EFFECT_SATISFIED: &str = "resume_condition_satisfied";
/// The effect of a signal recorded without satisfying the condition.
pub const EFFECT_APPENDED: &str = "appended_to_waitpoint";

/// Deliver a signal; see the module docs for the rules.
pub fn deliver_signal(
    db: &mut impl Db,
    tokens: &mut impl Tokens,
    args: &DeliverSignalArgs,
) -> Result<DeliverSignalOutcome, EngineError> {
    if args.signal_name.is_empty() {
        return Err(invalid_input("signal_name must not be empty"));
    }
    if args.max_signals_per_execution == Some(0) {
        return Err(invalid_input("max_signals_per_execution must be positive"));
    }
    if args.waitpoint_token.is_empty() {
        return Err(EngineError::Validation(ValidationError {
            kind: ValidationKind::InvalidToken,
            detail: "missing_token".into(),
        }));
    }
    let id = ExecutionRef::parse(&args.execution_id)?;
    let waitpoint_id = parse_waitpoint_id(&args.waitpoint_id)?;
    let signal_id = uuid::Uuid::parse_str(&args.signal_id)
        .map_err(|_| invalid_input(format!("signal_id is not a UUID: {:?}", args.signal_id)))?
        .hyphenated()
        .to_string();

    let row = db
        .first_row(
            "SELECT execution_id, token_kid, token, waitpoint_key, state \
             FROM ff_waitpoint_pending WHERE partition_key = ?1 AND waitpoint_id = ?2",
            &[id.partition(), uuid_blob(&waitpoint_id)?],
        )?
        .ok_or(EngineError::NotFound(Entity::Waitpoint))?;
    if row.0.first() != Some(&id.blob()) {
        return Err(invalid_input("waitpoint belongs to a different execution"));
    }
    let kid = row.text_or_empty(1);
    tokens
        .verify(
            &kid,
            &token_message(&id.canonical(), &waitpoint_id),
            &args.waitpoint_token,
            args.now,
        )
        .map_err(verify_error)?;
    if row.text_or_empty(2) != args.waitpoint_token {
        return Err(invalid_input("waitpoint_token does not match minted token"));
    }
    let waitpoint_key = row.text_or_empty(3);
    let waitpoint_state = row.text_or_empty(4);

    let exec = Exec::require(db, &id)?;
    if exec.is_terminal() {
        return Err(EngineError::State(StateKind::TargetNotSignalable));
    }
    if waitpoint_state == "closed" {
        return Err(EngineError::State(StateKind::WaitpointClosed));
    }
    if exec.lifecycle_phase != "suspended" {
        return Err(if waitpoint_state == "pending" {
            contention(ContentionKind::WaitpointPendingUseBufferScript)
        } else {
            EngineError::State(StateKind::TargetNotSignalable)
        });
    }
    let suspension = db
        .first_row(
            "SELECT condition, member_map FROM ff_suspension_current \
             WHERE partition_key = ?1 AND execution_id = ?2",
            &id.key(),
        )?
        .ok_or(EngineError::NotFound(Entity::Suspension))?;

    let dedup_key = args
        .idempotency_key
        .as_deref()
        .filter(|key| !key.is_empty());
    if let Some(key) = dedup_key
        && let Some(existing) = db.first_row(
            "SELECT signal_id FROM ff_signal_dedup \
             WHERE partition_key = ?1 AND execution_id = ?2 AND idempotency_key = ?3 AND expires_at_ms > ?4",
            &[id.partition(), id.blob(), text(key), int(args.now)],
        )?
    {
        return Ok(DeliverSignalOutcome::Duplicate(existing.text_or_empty(0)));
    }

    let mut member_map = parse_member_map(&suspension.text_or_empty(1))?;
    let delivered: usize = member_map
        .values()
        .map(|list| list.as_array().map_or(0, Vec::len))
        .sum();
    let max = args
        .max_signals_per_execution
        .unwrap_or(DEFAULT_MAX_SIGNALS);
    if delivered as u64 >= max {
        return Err(EngineError::Validation(ValidationError {
            kind: ValidationKind::SignalLimitExceeded,
            detail: format!("signal_limit_exceeded: {delivered} signals, max {max}"),
        }));
    }
    let list = member_map
        .entry(waitpoint_key.clone())
        .or_insert_with(|| Json::Array(Vec::new()))
        .as_array_mut()
        .ok_or_else(|| corruption("member_map[wp_key] not a JSON array"))?;
    list.push(json!({
        "signal_id": signal_id,
        "signal_name": args.signal_name,
        "signal_category": args.signal_category,
        "source_type": args.source_type,
        "source_identity": args.source_identity,
        "correlation_id": args.correlation_id.clone().unwrap_or_default(),
        "accepted_at": args.now,
        "payload_hex": args.payload.as_deref().map(hex),
    }));
    let condition = parse_stored(&suspension.text_or_empty(0))?;
    let satisfied = condition.is_satisfied(&signals_by_key(&member_map));
    db.run(
        "UPDATE ff_suspension_current SET member_map = ?3 WHERE partition_key = ?1 AND execution_id = ?2",
        &[
            id.partition(),
            id.blob(),
            text(Json::Object(member_map).to_string()),
        ],
    )?;
    let effect = if satisfied {
        update_exec(
            db,
            &id,
            &RESUMABLE,
            ", raw_fields = json_set(raw_fields, '$.current_suspension_id', '', \
                 '$.current_waitpoint_id', '', '$.last_mutation_at', CAST(?9 AS TEXT))",
            &[int(args.now)],
        )?;
        db.run(
            "DELETE FROM ff_waitpoint_pending WHERE partition_key = ?1 AND execution_id = ?2",
            &id.key(),
        )?;
        record_completion_event(db, &exec, "resumable", args.now)?;
        EFFECT_SATISFIED
    } else {
        EFFECT_APPENDED
    };
    db.run(
        "INSERT INTO ff_signal_event (execution_id, signal_id, waitpoint_id, source_identity, \
             delivered_at_ms, partition_key, namespace, instance_tag, effect) \
         VALUES (?2, ?3, ?4, ?5, ?6, ?1, ?7, ?8, ?9)",
        &[
            id.partition(),
            id.bare_text(),
            text(&signal_id),
            text(&waitpoint_id),
            text(&args.source_identity),
            int(args.now),
            exec.outbox.namespace.clone(),
            exec.outbox.instance_tag.clone(),
            text(effect),
        ],
    )?;
    if let Some(key) = dedup_key {
        let ttl = args.dedup_ttl_ms.unwrap_or(DEFAULT_SIGNAL_DEDUP_TTL_MS);
        db.run(
            "INSERT INTO ff_signal_dedup (partition_key, execution_id, idempotency_key, signal_id, expires_at_ms) \
             VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (partition_key, execution_id, idempotency_key) DO UPDATE SET \
                 signal_id = excluded.signal_id, expires_at_ms = excluded.expires_at_ms",
            &[
                id.partition(),
                id.blob(),
                text(key),
                text(&signal_id),
                int(crate::exec::lease_expiry(args.now, ttl)),
            ],
        )?;
    }
    Ok(DeliverSignalOutcome::Accepted(AcceptedSignal {
        signal_id,
        effect: effect.into(),
    }))
}

/// Deliver an operator's approval signal with the waitpoint's stored token; see the module docs.
pub fn deliver_approval_signal(
    db: &mut impl Db,
    tokens: &mut impl Tokens,
    args: &DeliverApprovalSignalArgs,
) -> Result<DeliverSignalOutcome, EngineError> {
    validate_lane_id(&args.lane_id)?;
    if args.signal_name.is_empty() {
        return Err(invalid_input("signal_name must not be empty"));
    }
    let id = ExecutionRef::parse(&args.execution_id)?;
    let exec = Exec::require(db, &id)?;
    if exec.lane_id != args.lane_id {
        return Err(invalid_input(format!(
            "lane_mismatch: args.lane_id={} exec_core.lane_id={}",
            args.lane_id, exec.lane_id
        )));
    }
    let waitpoint_id = parse_waitpoint_id(&args.waitpoint_id)?;
    let token = db
        .first_row(
            "SELECT token FROM ff_waitpoint_pending WHERE partition_key = ?1 AND waitpoint_id = ?2",
            &[id.partition(), uuid_blob(&waitpoint_id)?],
        )?
        .map(|row| row.text_or_empty(0))
        .filter(|token| !token.is_empty())
        .ok_or(EngineError::NotFound(Entity::Waitpoint))?;
    deliver_signal(
        db,
        tokens,
        &DeliverSignalArgs {
            execution_id: args.execution_id.clone(),
            waitpoint_id,
            signal_id: args.signal_id.clone(),
            signal_name: args.signal_name.clone(),
            signal_category: "approval".into(),
            source_type: "operator".into(),
            source_identity: String::new(),
            payload: None,
            correlation_id: None,
            idempotency_key: Some(format!(
                "approval:{}:{}",
                args.signal_name, args.idempotency_suffix
            )),
            dedup_ttl_ms: Some(args.signal_dedup_ttl_ms),
            max_signals_per_execution: args.max_signals_per_execution,
            waitpoint_token: token,
            now: args.now,
        },
    )
}

/// The signals delivered to the execution's current (or last) suspension, waitpoint key by
/// key (in key order), each key's in delivery order.
pub fn observe_signals(
    db: &mut impl Db,
    lease: &HandleLease,
) -> Result<Vec<ResumeSignal>, EngineError> {
    let id = ExecutionRef::parse(&lease.execution_id)?;
    let Some(row) = db.first_row(
        "SELECT s.member_map FROM ff_exec_core AS e LEFT JOIN ff_suspension_current AS s \
             ON s.partition_key = e.partition_key AND s.execution_id = e.execution_id \
         WHERE e.partition_key = ?1 AND e.execution_id = ?2",
        &id.key(),
    )?
    else {
        return Err(EngineError::NotFound(Entity::Execution));
    };
    let Some(text) = row.text(0) else {
        return Ok(Vec::new());
    };
    let member_map = parse_member_map(&text)?;
    Ok(member_map
        .values()
        .filter_map(Json::as_array)
        .flatten()
        .filter_map(resume_signal)
        .collect())
}

fn parse_member_map(text: &str) -> Result<Map<String, Json>, EngineError> {
    match serde_json::from_str(text) {
        Ok(Json::Object(map)) => Ok(map),
        Ok(_) => Err(corruption("member_map not a JSON object")),
        Err(error) => Err(corruption(format!("member_map: {error}"))),
    }
}

/// The evaluator's view of the member map: readable signals by waitpoint key.
fn signals_by_key(member_map: &Map<String, Json>) -> BTreeMap<String, Vec<Signal>> {
    member_map
        .iter()
        .map(|(key, list)| {
            let signals = list
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(resume_signal)
                .map(|signal| Signal {
                    id: signal.signal_id,
                    name: signal.signal_name,
                    source_type: signal.source_type,
                    source_identity: signal.source_identity,
                })
                .collect();
            (key.clone(), signals)
        })
        .collect()
}

/// A stored signal blob, if readable (a UUID `signal_id` and a string `signal_name`).
fn resume_signal(blob: &Json) -> Option<ResumeSignal> {
    let signal_id = uuid::Uuid::parse_str(blob["signal_id"].as_str()?).ok()?;
    let field = |name: &str| blob[name].as_str().unwrap_or_default().to_owned();
    Some(ResumeSignal {
        signal_id: signal_id.hyphenated().to_string(),
        signal_name: blob["signal_name"].as_str()?.to_owned(),
        signal_category: field("signal_category"),
        source_type: field("source_type"),
        source_identity: field("source_identity"),
        correlation_id: field("correlation_id"),
        accepted_at: blob["accepted_at"].as_i64().unwrap_or(0),
        payload: blob["payload_hex"].as_str().and_then(unhex),
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(text.get(at..at + 2)?, 16).ok())
        .collect()
}
