//! `suspend`, `suspend-by-triple` and `create-waitpoint`; the rules are in the parent module's
//! docs.

use serde_json::{Value as Json, json};

use super::condition::{Condition, Matcher};
use super::tokens::{Tokens, sign_error, token_message};
use super::{
    SUSPEND_DEDUP_MAX_MS, fenced_holder, interrupt_held_attempt, parse_waitpoint_id,
    suspended_vector,
};
use crate::bindings::suspension::{
    HandleLease, SignedWaitpoint, SuspendArgs, SuspendDetails, SuspendOutcome, WaitpointBinding,
};
use crate::db::{Db, DbExt, int, opt_int, text};
use crate::errors::{corruption, invalid_input};
use crate::exec::{Exec, update_exec_formatted};
use crate::ids::{ExecutionRef, random_uuid};
use crate::json;
use crate::types::{
    ConflictKind, ContentionKind, EngineError, LeaseFence, StateKind, ValidationError,
    ValidationKind,
};

/// How far in the past `timeout_at` may lie (clock skew), as Valkey allows: 10 minutes.
const TIMEOUT_SKEW_MS: i64 = 600_000;

/// Suspend the handle's execution; see the module docs for the rules.
pub fn suspend(
    db: &mut impl Db,
    tokens: &mut impl Tokens,
    lease: &HandleLease,
    args: &SuspendArgs,
) -> Result<SuspendOutcome, EngineError> {
    let condition = validate_suspend_args(args)?;
    let id = ExecutionRef::parse(&lease.execution_id)?;
    let key = args
        .idempotency_key
        .as_deref()
        .filter(|key| !key.is_empty());
    if let Some(key) = key
        && let Some(stored) = replay(db, &id, key, args.now)?
    {
        return Ok(stored);
    }
    let (exec, attempt) = fenced_holder(db, &id, lease)?;
    let suspension_uuid = uuid::Uuid::parse_str(&args.suspension_id).map_err(|_| {
        invalid_input(format!(
            "suspension_id is not a UUID: {:?}",
            args.suspension_id
        ))
    })?;

    // Every binding is checked and signed before the first write.
    let mut planned = Vec::with_capacity(args.waitpoints.len());
    for binding in &args.waitpoints {
        planned.push(plan_waitpoint(
            db, tokens, &exec, binding, &condition, args,
        )?);
    }
    let mut bound = Vec::with_capacity(planned.len());
    for plan in planned {
        db.run(plan.statement, &plan.params)?;
        bound.push(plan.signed);
    }
    db.run(
        "INSERT INTO ff_suspension_current (partition_key, execution_id, suspension_id, suspended_at_ms, \
             timeout_at_ms, reason_code, condition, satisfied_set, member_map, timeout_behavior) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, '[]', '{}', ?8) \
         ON CONFLICT (partition_key, execution_id) DO UPDATE SET suspension_id = excluded.suspension_id, \
             suspended_at_ms = excluded.suspended_at_ms, timeout_at_ms = excluded.timeout_at_ms, \
             reason_code = excluded.reason_code, condition = excluded.condition, satisfied_set = '[]', \
             member_map = '{}', timeout_behavior = excluded.timeout_behavior",
        &[
            id.partition(),
            id.blob(),
            crate::sql::Value::Blob(suspension_uuid.as_bytes().to_vec()),
            int(args.now),
            opt_int(args.timeout_at),
            text(&args.reason_code),
            text(&args.condition_json),
            text(&args.timeout_behavior),
        ],
    )?;
    update_exec_formatted(
        db,
        &id,
        &suspended_vector(&args.reason_code),
        ", raw_fields = json_set(raw_fields, '$.current_suspension_id', ?9, \
             '$.current_waitpoint_id', ?10, '$.last_mutation_at', CAST(?11 AS TEXT))",
        &[
            text(suspension_uuid.hyphenated().to_string()),
            text(&bound[0].waitpoint_id),
            int(args.now),
        ],
    )?;
    interrupt_held_attempt(db, &exec, &attempt, lease, args.now)?;

    let details = SuspendDetails {
        suspension_id: suspension_uuid.hyphenated().to_string(),
        attempt_index: lease.attempt_index,
        waitpoints: bound,
    };
    if let Some(key) = key {
        remember(db, &id, key, &details, args)?;
    }
    Ok(SuspendOutcome::Suspended(details))
}

/// [`suspend`] for a caller holding the lease triple: the execution's current attempt, fenced
/// by `fence`.
pub fn suspend_by_triple(
    db: &mut impl Db,
    tokens: &mut impl Tokens,
    execution_id: &str,
    fence: &LeaseFence,
    args: &SuspendArgs,
) -> Result<SuspendOutcome, EngineError> {
    validate_suspend_args(args)?;
    let id = ExecutionRef::parse(execution_id)?;
    let exec = Exec::require(db, &id)?;
    let lease = HandleLease {
        execution_id: id.canonical(),
        attempt_index: crate::exec::clamp_u32(exec.attempt_index),
        attempt_id: fence.attempt_id.clone(),
        lease_id: fence.lease_id.clone(),
        lease_epoch: fence.lease_epoch,
    };
    suspend(db, tokens, &lease, args)
}

/// Create a pending waitpoint for the handle's execution; see the module docs for the rules.
pub fn create_waitpoint(
    db: &mut impl Db,
    tokens: &mut impl Tokens,
    lease: &HandleLease,
    waitpoint_key: &str,
    expires_at: i64,
    now: i64,
) -> Result<SignedWaitpoint, EngineError> {
    if waitpoint_key.is_empty() {
        return Err(EngineError::Validation(ValidationError {
            kind: ValidationKind::InvalidWaitpointKey,
            detail: "waitpoint_key must not be empty".into(),
        }));
    }
    if expires_at <= now {
        return Err(invalid_input("expires_in must be positive"));
    }
    let id = ExecutionRef::parse(&lease.execution_id)?;
    fenced_holder(db, &id, lease)?;
    let waitpoint_id = random_uuid(db)?.hyphenated().to_string();
    let signed = tokens
        .sign(&token_message(&id.canonical(), &waitpoint_id))
        .map_err(|error| sign_error("create_waitpoint", error))?;
    db.run(
        "INSERT INTO ff_waitpoint_pending (partition_key, waitpoint_id, execution_id, token_kid, token, \
             created_at_ms, expires_at_ms, waitpoint_key, state, required_signal_names) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'pending', '[]')",
        &[
            id.partition(),
            uuid_blob(&waitpoint_id)?,
            id.blob(),
            text(&signed.kid),
            text(&signed.token),
            int(now),
            int(expires_at),
            text(waitpoint_key),
        ],
    )?;
    Ok(SignedWaitpoint {
        waitpoint_id,
        waitpoint_key: waitpoint_key.into(),
        token: signed.token,
    })
}

/// The argument checks that need no SQL (Valkey's `validate_suspend_args`, as far as it goes
/// with upstream SQLite's tests: extra bindings need not be named by the condition); returns
/// the parsed condition.
fn validate_suspend_args(args: &SuspendArgs) -> Result<Condition, EngineError> {
    let Some(primary) = args.waitpoints.first() else {
        return Err(invalid_input(
            "suspend requires at least one waitpoint binding",
        ));
    };
    let mut seen = Vec::with_capacity(args.waitpoints.len());
    for (index, binding) in args.waitpoints.iter().enumerate() {
        let waitpoint_id = match binding {
            WaitpointBinding::Fresh(fresh) => &fresh.waitpoint_id,
            WaitpointBinding::UsePending(waitpoint_id) => waitpoint_id,
        };
        let canonical = parse_waitpoint_id(waitpoint_id)?;
        if seen.contains(&canonical) {
            return Err(invalid_input(format!(
                "duplicate waitpoint_id at waitpoints[{index}]"
            )));
        }
        seen.push(canonical);
        match binding {
            WaitpointBinding::Fresh(fresh) => {
                if fresh.waitpoint_key.is_empty() {
                    return Err(invalid_input(format!(
                        "waitpoint_binding_empty_key at waitpoints[{index}]"
                    )));
                }
                parse_waitpoint_id(&fresh.waitpoint_id)?;
            }
            WaitpointBinding::UsePending(waitpoint_id) => {
                parse_waitpoint_id(waitpoint_id)?;
            }
        }
    }
    let condition = Condition::parse(&args.condition_json)
        .map_err(|error| invalid_input(format!("resume_condition: {error}")))?;
    condition.validate(args.timeout_at.is_some())?;
    if let (
        WaitpointBinding::Fresh(fresh),
        Condition::Single {
            key,
            matcher: Matcher::ByName(_) | Matcher::Wildcard,
        },
    ) = (primary, &condition)
        && *key != fresh.waitpoint_key
    {
        return Err(invalid_input("waitpoint_key_mismatch"));
    }
    if args
        .timeout_at
        .is_some_and(|at| at.saturating_add(TIMEOUT_SKEW_MS) < args.now)
    {
        return Err(invalid_input("timeout_at_in_past"));
    }
    Ok(condition)
}

/// One binding, checked and signed: the statement that stores its waitpoint as `active`.
struct PlannedWaitpoint {
    statement: &'static str,
    params: Vec<crate::sql::Value>,
    signed: SignedWaitpoint,
}

/// Check one binding and sign its token (nothing written).
fn plan_waitpoint(
    db: &mut impl Db,
    tokens: &mut impl Tokens,
    exec: &Exec,
    binding: &WaitpointBinding,
    condition: &Condition,
    args: &SuspendArgs,
) -> Result<PlannedWaitpoint, EngineError> {
    let id = &exec.id;
    match binding {
        WaitpointBinding::Fresh(fresh) => {
            let waitpoint_id = parse_waitpoint_id(&fresh.waitpoint_id)?;
            let exists = db
                .first_row(
                    "SELECT 1 FROM ff_waitpoint_pending WHERE partition_key = ?1 AND waitpoint_id = ?2",
                    &[id.partition(), uuid_blob(&waitpoint_id)?],
                )?
                .is_some();
            if exists {
                return Err(EngineError::Conflict(ConflictKind::WaitpointAlreadyExists));
            }
            let signed = tokens
                .sign(&token_message(&id.canonical(), &waitpoint_id))
                .map_err(|error| sign_error("suspend", error))?;
            let names = condition.required_signal_names(&fresh.waitpoint_key);
            Ok(PlannedWaitpoint {
                statement: "INSERT INTO ff_waitpoint_pending (partition_key, waitpoint_id, execution_id, token_kid, token, \
                     created_at_ms, expires_at_ms, waitpoint_key, state, required_signal_names, activated_at_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'active', ?9, ?6)",
                params: vec![
                    id.partition(),
                    uuid_blob(&waitpoint_id)?,
                    id.blob(),
                    text(&signed.kid),
                    text(&signed.token),
                    int(args.now),
                    opt_int(args.timeout_at),
                    text(&fresh.waitpoint_key),
                    text(json::string_array(names.iter().map(String::as_str))),
                ],
                signed: SignedWaitpoint {
                    waitpoint_id,
                    waitpoint_key: fresh.waitpoint_key.clone(),
                    token: signed.token,
                },
            })
        }
        WaitpointBinding::UsePending(given) => {
            let waitpoint_id = parse_waitpoint_id(given)?;
            let row = db
                .first_row(
                    "SELECT execution_id, state, expires_at_ms, waitpoint_key, token \
                     FROM ff_waitpoint_pending WHERE partition_key = ?1 AND waitpoint_id = ?2",
                    &[id.partition(), uuid_blob(&waitpoint_id)?],
                )?
                .ok_or(EngineError::Contention(ContentionKind::WaitpointNotFound))?;
            if row.blob(0) != Some(exec_uuid_bytes(id)) {
                return Err(EngineError::Validation(ValidationError {
                    kind: ValidationKind::InvalidWaitpointForExecution,
                    detail: format!("waitpoint {waitpoint_id} belongs to another execution"),
                }));
            }
            if row.text(1).as_deref() != Some("pending") {
                return Err(EngineError::State(StateKind::WaitpointNotPending));
            }
            if row.integer(2).is_some_and(|expires| expires <= args.now) {
                return Err(EngineError::State(StateKind::PendingWaitpointExpired));
            }
            let key = row.text_or_empty(3);
            let names = condition.required_signal_names(&key);
            Ok(PlannedWaitpoint {
                statement: "UPDATE ff_waitpoint_pending SET state = 'active', activated_at_ms = ?3, \
                     required_signal_names = ?4 \
                 WHERE partition_key = ?1 AND waitpoint_id = ?2",
                params: vec![
                    id.partition(),
                    uuid_blob(&waitpoint_id)?,
                    int(args.now),
                    text(json::string_array(names.iter().map(String::as_str))),
                ],
                signed: SignedWaitpoint {
                    waitpoint_id,
                    waitpoint_key: key,
                    token: row.text_or_empty(4),
                },
            })
        }
    }
}

fn exec_uuid_bytes(id: &ExecutionRef) -> Vec<u8> {
    match id.blob() {
        crate::sql::Value::Blob(bytes) => bytes,
        _ => unreachable!("an execution id's blob is a blob"),
    }
}

/// A canonical waitpoint id as its stored 16-byte blob.
pub(super) fn uuid_blob(waitpoint_id: &str) -> Result<crate::sql::Value, EngineError> {
    let uuid = uuid::Uuid::parse_str(waitpoint_id)
        .map_err(|_| invalid_input(format!("waitpoint_id is not a UUID: {waitpoint_id:?}")))?;
    Ok(crate::sql::Value::Blob(uuid.as_bytes().to_vec()))
}

/// A stored outcome for `key` on this execution that has not expired, decoded.
fn replay(
    db: &mut impl Db,
    id: &ExecutionRef,
    key: &str,
    now: i64,
) -> Result<Option<SuspendOutcome>, EngineError> {
    let Some(row) = db.first_row(
        "SELECT outcome_json FROM ff_suspend_dedup \
         WHERE partition_key = ?1 AND execution_id = ?2 AND idempotency_key = ?3 AND expires_at_ms > ?4",
        &[id.partition(), id.blob(), text(key), int(now)],
    )?
    else {
        return Ok(None);
    };
    let stored: Json = serde_json::from_str(&row.text_or_empty(0))
        .map_err(|error| corruption(format!("suspend_dedup outcome_json: {error}")))?;
    let details = &stored["details"];
    let field = |json: &Json, name: &str| json[name].as_str().unwrap_or_default().to_owned();
    let waitpoint = |json: &Json| -> Result<SignedWaitpoint, EngineError> {
        let waitpoint_id = field(json, "waitpoint_id");
        parse_waitpoint_id(&waitpoint_id)
            .map_err(|_| corruption(format!("dedup waitpoint_id: {waitpoint_id:?}")))?;
        Ok(SignedWaitpoint {
            waitpoint_id,
            waitpoint_key: field(json, "waitpoint_key"),
            token: field(json, "token"),
        })
    };
    let mut waitpoints = vec![waitpoint(details)?];
    for extra in details["extras"].as_array().into_iter().flatten() {
        waitpoints.push(waitpoint(extra)?);
    }
    let details = SuspendDetails {
        suspension_id: field(details, "suspension_id"),
        attempt_index: details["attempt_index"]
            .as_u64()
            .and_then(|index| u32::try_from(index).ok())
            .unwrap_or(0),
        waitpoints,
    };
    Ok(Some(if stored["variant"] == "AlreadySatisfied" {
        SuspendOutcome::AlreadySatisfied(details)
    } else {
        SuspendOutcome::Suspended(details)
    }))
}

/// Store the outcome under `key` for this execution, in upstream's `outcome_json` shape (plus
/// the attempt index), until the suspension's timeout plus a minute, at most 7 days (Valkey's
/// rule).
fn remember(
    db: &mut impl Db,
    id: &ExecutionRef,
    key: &str,
    details: &SuspendDetails,
    args: &SuspendArgs,
) -> Result<(), EngineError> {
    let signed = |w: &SignedWaitpoint| json!({"waitpoint_id": w.waitpoint_id, "waitpoint_key": w.waitpoint_key, "token": w.token});
    let mut primary = signed(&details.waitpoints[0]);
    primary["suspension_id"] = json!(details.suspension_id);
    primary["attempt_index"] = json!(details.attempt_index);
    primary["extras"] = Json::Array(details.waitpoints[1..].iter().map(signed).collect());
    let outcome = json!({"variant": "Suspended", "details": primary, "handle_opaque_hex": null});
    let ttl = args
        .timeout_at
        .map_or(SUSPEND_DEDUP_MAX_MS, |at| {
            at.saturating_sub(args.now).saturating_add(60_000)
        })
        .clamp(60_000, SUSPEND_DEDUP_MAX_MS);
    db.run(
        "INSERT INTO ff_suspend_dedup (partition_key, execution_id, idempotency_key, outcome_json, \
             created_at_ms, expires_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
         ON CONFLICT (partition_key, execution_id, idempotency_key) DO UPDATE SET \
             outcome_json = excluded.outcome_json, created_at_ms = excluded.created_at_ms, \
             expires_at_ms = excluded.expires_at_ms",
        &[
            id.partition(),
            id.blob(),
            text(key),
            text(outcome.to_string()),
            int(args.now),
            int(args.now.saturating_add(ttl)),
        ],
    )?;
    Ok(())
}
