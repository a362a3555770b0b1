//! Cancelling a flow: `cancel-flow`, `cancel-flow-header` and `ack-cancel-member`. Members are
//! cancelled the way `cancel-execution` cancels (the CANCELLED vector, a live lease revoked
//! with its epoch raised and LE(`revoked`)), then their outgoing edges resolve like any other
//! terminal write's.

use crate::bindings::flows::{
    AlreadyTerminalFlow, CancelFlowHeaderArgs, CancelFlowHeaderOutcome, CancelFlowOutcome,
    CancelFlowPolicy,
};
use crate::db::{Db, DbExt, int, text};
use crate::exec::{Exec, StateVector, record_completion_event, record_lease_event, update_exec};
use crate::ids::ExecutionRef;
use crate::types::EngineError;

use super::common::{FLOW_PARTITION, FlowRow, Uuid16, member_at, member_text};
use super::resolve::{Bucket, resolve_outgoing};

/// Which members a cancel takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Selection {
    /// None.
    Nothing,
    /// Members not started: runnable (upstream's pending literals included).
    NotStarted,
    /// Every member not yet terminal.
    AllLive,
}

impl Selection {
    /// The members of `flow` the selection takes, in execution id order.
    fn members(self, db: &mut impl Db, flow: &Uuid16) -> Result<Vec<ExecutionRef>, EngineError> {
        let filter = match self {
            Selection::Nothing => return Ok(Vec::new()),
            Selection::NotStarted => {
                "lifecycle_phase IN ('runnable', 'pending', 'blocked', 'eligible', 'submitted')"
            }
            Selection::AllLive => {
                "lifecycle_phase NOT IN ('terminal', 'cancelled', 'completed', 'failed', 'expired')"
            }
        };
        let rows = db
            .query(
                &format!(
                    "SELECT execution_id FROM ff_exec_core \
                     WHERE partition_key = 0 AND flow_id = ?1 AND {filter} ORDER BY execution_id"
                ),
                &[flow.blob()],
            )
            .map_err(crate::errors::storage)?;
        rows.into_iter()
            .map(|row| member_at(&crate::db::Row(row), 0))
            .collect()
    }
}

/// Cancel one member: a live lease is revoked (epoch +1, attempt outcome `cancelled`,
/// LE(`revoked`)); otherwise the current attempt's stale outcome is cleared (upstream #355).
/// Grants are dropped; the row becomes CANCELLED with `terminal_outcome = cancelled`, keeping a
/// reason and canceller already recorded; CE(`cancelled`).
pub(super) fn cancel_member(
    db: &mut impl Db,
    exec: &Exec,
    reason: &str,
    cancelled_by: &str,
    now: i64,
) -> Result<(), EngineError> {
    let id = &exec.id;
    match exec.lease_holder(db)? {
        Some(attempt) => {
            db.run(
                "UPDATE ff_attempt SET worker_instance_id = NULL, lease_expires_at_ms = NULL, \
                     lease_epoch = lease_epoch + 1, terminal_at_ms = ?4, outcome = 'cancelled' \
                 WHERE partition_key = ?1 AND execution_id = ?2 AND attempt_index = ?3",
                &[id.partition(), id.blob(), int(attempt.index), int(now)],
            )?;
            record_lease_event(db, exec, "revoked", attempt.lease_id.as_deref(), now)?;
        }
        None => {
            db.run(
                "UPDATE ff_attempt SET outcome = NULL \
                 WHERE partition_key = ?1 AND execution_id = ?2 AND attempt_index = ?3",
                &[id.partition(), id.blob(), int(exec.attempt_index)],
            )?;
        }
    }
    db.run(
        "DELETE FROM ff_claim_grant WHERE partition_key = ?1 AND execution_id = ?2",
        &id.key(),
    )?;
    update_exec(
        db,
        id,
        &StateVector::CANCELLED,
        ", terminal_at_ms = COALESCE(terminal_at_ms, ?9), \
         cancellation_reason = COALESCE(cancellation_reason, ?10), \
         cancelled_by = COALESCE(cancelled_by, ?11), \
         raw_fields = json_set(raw_fields, '$.terminal_outcome', 'cancelled', \
             '$.last_mutation_at', CAST(?9 AS TEXT))",
        &[int(now), text(reason), text(cancelled_by)],
    )?;
    record_completion_event(db, exec, "cancelled", now)
}

/// Cancel every selected member, then resolve their outgoing edges; returns their ids.
fn cancel_members(
    db: &mut impl Db,
    flow: &Uuid16,
    selection: Selection,
    reason: &str,
    cancelled_by: &str,
    now: i64,
) -> Result<Vec<ExecutionRef>, EngineError> {
    let members = selection.members(db, flow)?;
    for id in &members {
        let exec = Exec::require(db, id)?;
        cancel_member(db, &exec, reason, cancelled_by, now)?;
    }
    for id in &members {
        resolve_outgoing(db, &flow.blob(), id, Bucket::Failure, now)?;
    }
    Ok(members)
}

/// The policy's upstream spelling.
fn policy_literal(policy: CancelFlowPolicy) -> &'static str {
    match policy {
        CancelFlowPolicy::FlowOnly => "cancel_flow_only",
        CancelFlowPolicy::CancelAll => "cancel_all",
        CancelFlowPolicy::CancelPending => "cancel_pending",
    }
}

/// Cancel the flow (state `cancelled`, first cancel time kept, policy stored) and the members
/// `policy` selects. An absent flow cancels nothing; a cancelled flow is cancelled again (its
/// terminal members are not selected, so the list is normally empty).
pub fn cancel_flow(
    db: &mut impl Db,
    flow_id: &str,
    policy: CancelFlowPolicy,
    now: i64,
) -> Result<CancelFlowOutcome, EngineError> {
    let flow = Uuid16::parse("flow_id", flow_id)?;
    let literal = policy_literal(policy);
    let flipped = db.run(
        "UPDATE ff_flow_core SET public_flow_state = 'cancelled', \
             terminal_at_ms = COALESCE(terminal_at_ms, ?3), \
             raw_fields = json_set(raw_fields, '$.cancellation_policy', ?4) \
         WHERE partition_key = ?1 AND flow_id = ?2",
        &[int(FLOW_PARTITION), flow.blob(), int(now), text(literal)],
    )?;
    let selection = match (flipped, policy) {
        (0, _) | (_, CancelFlowPolicy::FlowOnly) => Selection::Nothing,
        (_, CancelFlowPolicy::CancelPending) => Selection::NotStarted,
        (_, CancelFlowPolicy::CancelAll) => Selection::AllLive,
    };
    let members = cancel_members(db, &flow, selection, "flow_cancelled", "cancel_flow", now)?;
    Ok(CancelFlowOutcome {
        cancellation_policy: literal.into(),
        member_execution_ids: members.iter().map(ExecutionRef::canonical).collect(),
    })
}

/// Cancel the flow with a reason, cancel the members its policy text selects
/// (`cancel_flow_only`: none; `cancel_pending`: not started; anything else: all live), record
/// each as owed an ack (a backlog header only when some member is owed), and OE
/// (`flow_cancel_requested`). A flow already terminal reports what the first cancel stored.
pub fn cancel_flow_header(
    db: &mut impl Db,
    args: &CancelFlowHeaderArgs,
) -> Result<CancelFlowHeaderOutcome, EngineError> {
    let flow = Uuid16::parse("flow_id", &args.flow_id)?;
    let row = FlowRow::require(db, &flow)?;
    if matches!(row.state.as_str(), "cancelled" | "completed" | "failed") {
        return already_terminal(db, &flow).map(CancelFlowHeaderOutcome::AlreadyTerminal);
    }
    db.run(
        "UPDATE ff_flow_core SET public_flow_state = 'cancelled', \
             terminal_at_ms = COALESCE(terminal_at_ms, ?3), \
             raw_fields = json_set(raw_fields, '$.cancellation_policy', ?4, '$.cancel_reason', ?5) \
         WHERE partition_key = ?1 AND flow_id = ?2",
        &[
            int(FLOW_PARTITION),
            flow.blob(),
            int(args.now),
            text(&args.cancellation_policy),
            text(&args.reason),
        ],
    )?;
    let selection = match args.cancellation_policy.as_str() {
        "cancel_flow_only" => Selection::Nothing,
        "cancel_pending" => Selection::NotStarted,
        _ => Selection::AllLive,
    };
    let members = cancel_members(
        db,
        &flow,
        selection,
        &args.reason,
        "cancel_flow_header",
        args.now,
    )?;
    let ids: Vec<String> = members.iter().map(ExecutionRef::canonical).collect();
    if !ids.is_empty() {
        db.run(
            "INSERT INTO ff_cancel_backlog (partition_key, flow_id, requested_at_ms, reason, \
                 cancellation_policy) VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (partition_key, flow_id) DO NOTHING",
            &[
                int(FLOW_PARTITION),
                flow.blob(),
                int(args.now),
                text(&args.reason),
                text(&args.cancellation_policy),
            ],
        )?;
        for id in &ids {
            db.run(
                "INSERT INTO ff_cancel_backlog_member (partition_key, flow_id, execution_id) \
                 VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                &[int(FLOW_PARTITION), flow.blob(), text(id)],
            )?;
        }
    }
    db.run(
        "INSERT INTO ff_operator_event (execution_id, event_type, details, occurred_at_ms, \
             partition_key, namespace) \
         SELECT ?3, 'flow_cancel_requested', json_object('cancellation_policy', ?4, 'flow_id', ?3, \
             'member_count', ?5, 'reason', ?6), ?7, ?1, json_extract(raw_fields, '$.namespace') \
         FROM ff_flow_core WHERE partition_key = ?1 AND flow_id = ?2",
        &[
            int(FLOW_PARTITION),
            flow.blob(),
            text(flow.text()),
            text(&args.cancellation_policy),
            int(i64::try_from(ids.len()).unwrap_or(i64::MAX)),
            text(&args.reason),
            int(args.now),
        ],
    )?;
    Ok(CancelFlowHeaderOutcome::Cancelled(ids))
}

/// The stored policy and reason of a terminal flow, and the members still owed an ack (every
/// member when none is).
fn already_terminal(db: &mut impl Db, flow: &Uuid16) -> Result<AlreadyTerminalFlow, EngineError> {
    let stored = db
        .first_row(
            "SELECT json_extract(raw_fields, '$.cancellation_policy'), \
                 json_extract(raw_fields, '$.cancel_reason') \
             FROM ff_flow_core WHERE partition_key = ?1 AND flow_id = ?2",
            &[int(FLOW_PARTITION), flow.blob()],
        )?
        .map(|row| (row.text(0), row.text(1)))
        .unwrap_or_default();
    let owed = db
        .query(
            "SELECT execution_id FROM ff_cancel_backlog_member \
             WHERE partition_key = ?1 AND flow_id = ?2 ORDER BY execution_id",
            &[int(FLOW_PARTITION), flow.blob()],
        )
        .map_err(crate::errors::storage)?;
    let mut members: Vec<String> = owed
        .into_iter()
        .filter_map(|row| crate::db::Row(row).text(0))
        .collect();
    if members.is_empty() {
        let rows = db
            .query(
                "SELECT execution_id FROM ff_exec_core WHERE partition_key = 0 AND flow_id = ?1 \
                 ORDER BY execution_id",
                &[flow.blob()],
            )
            .map_err(crate::errors::storage)?;
        members = rows
            .into_iter()
            .map(|row| member_text(&crate::db::Row(row), 0))
            .collect::<Result<_, _>>()?;
    }
    Ok(AlreadyTerminalFlow {
        stored_cancellation_policy: stored.0,
        stored_cancel_reason: stored.1,
        member_execution_ids: members,
    })
}

/// Remove the member from the flow's cancel backlog, and the backlog header once no member is
/// owed (idempotent; nothing stored is fine).
pub fn ack_cancel_member(
    db: &mut impl Db,
    flow_id: &str,
    execution_id: &str,
) -> Result<(), EngineError> {
    let flow = Uuid16::parse("flow_id", flow_id)?;
    db.run(
        "DELETE FROM ff_cancel_backlog_member \
         WHERE partition_key = ?1 AND flow_id = ?2 AND execution_id = ?3",
        &[int(FLOW_PARTITION), flow.blob(), text(execution_id)],
    )?;
    db.run(
        "DELETE FROM ff_cancel_backlog WHERE partition_key = ?1 AND flow_id = ?2 \
           AND NOT EXISTS (SELECT 1 FROM ff_cancel_backlog_member \
                           WHERE partition_key = ?1 AND flow_id = ?2)",
        &[int(FLOW_PARTITION), flow.blob()],
    )?;
    Ok(())
}
