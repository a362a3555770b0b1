//! `cancel_remaining` edge groups: when an `any_of` or `quorum` group is decided (satisfied or
//! impossible) and its policy says `cancel_remaining`, the upstreams still running are owed a
//! cancel. The deciding resolution records them on the group (`cancel_siblings_pending_flag`,
//! `cancel_siblings_pending_members`) and queues the group in `ff_pending_cancel_groups`, in
//! the same transaction; `drain-sibling-cancel-group` cancels them and clears the record;
//! `reconcile-sibling-cancel-group` drops records that are stale or already done (Valkey's
//! dispositions).

use crate::bindings::flows::{EdgeGroupPolicy, EdgeGroupState, OnSatisfied, SiblingCancelAction};
use crate::db::{Db, DbExt, Row, int};
use crate::exec::Exec;
use crate::ids::ExecutionRef;
use crate::sql::Value;
use crate::types::EngineError;

use super::cancel::cancel_member;
use super::common::{FLOW_PARTITION, Group, Uuid16, member_ref};
use super::resolve::{Bucket, resolve_outgoing};

/// Whether a group with `policy` owes its remaining upstreams a cancel once decided.
fn cancels_remaining(policy: &EdgeGroupPolicy) -> bool {
    match policy {
        EdgeGroupPolicy::AllOf => false,
        EdgeGroupPolicy::AnyOf(on) => *on == OnSatisfied::CancelRemaining,
        EdgeGroupPolicy::Quorum(quorum) => quorum.on_satisfied == OnSatisfied::CancelRemaining,
    }
}

/// Called by a resolution after it moved `group`'s counters: if this resolution decided a
/// `cancel_remaining` group (it was pending before, it is satisfied or impossible now), record
/// the upstreams of the downstream's edges that are not terminal yet and queue the group.
/// `before` is the group's state before the resolution.
pub fn on_group_moved(
    db: &mut impl Db,
    flow: &Value,
    downstream: &ExecutionRef,
    before: EdgeGroupState,
    group: &Group,
    now: i64,
) -> Result<(), EngineError> {
    let after = group.state();
    if before != EdgeGroupState::Pending
        || !matches!(
            after,
            EdgeGroupState::Satisfied | EdgeGroupState::Impossible
        )
        || !cancels_remaining(&group.policy)
    {
        return Ok(());
    }
    db.run(
        "UPDATE ff_edge_group SET cancel_siblings_pending_flag = 1, \
             cancel_siblings_pending_members = ( \
                 SELECT json_group_array(lower(substr(hex(upstream_eid), 1, 8) || '-' || \
                     substr(hex(upstream_eid), 9, 4) || '-' || substr(hex(upstream_eid), 13, 4) \
                     || '-' || substr(hex(upstream_eid), 17, 4) || '-' || \
                     substr(hex(upstream_eid), 21))) \
                 FROM (SELECT DISTINCT e.upstream_eid FROM ff_edge e \
                       JOIN ff_exec_core x ON x.partition_key = 0 \
                           AND x.execution_id = e.upstream_eid \
                       WHERE e.partition_key = ?1 AND e.flow_id = ?2 AND e.downstream_eid = ?3 \
                         AND x.lifecycle_phase != 'terminal' \
                       ORDER BY e.upstream_eid)) \
         WHERE partition_key = ?1 AND flow_id = ?2 AND downstream_eid = ?3",
        &[int(FLOW_PARTITION), flow.clone(), downstream.blob()],
    )?;
    db.run(
        "INSERT INTO ff_pending_cancel_groups (partition_key, flow_id, downstream_eid, \
             enqueued_at_ms) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
        &[
            int(FLOW_PARTITION),
            flow.clone(),
            downstream.blob(),
            int(now),
        ],
    )?;
    Ok(())
}

/// The group's sibling-cancel record: whether its flag is set, the listed upstreams, and its
/// state; `None` when the group does not exist.
struct Record {
    flagged: bool,
    members: Vec<ExecutionRef>,
    state: EdgeGroupState,
}

impl Record {
    fn load(
        db: &mut impl Db,
        flow: &Uuid16,
        downstream: &ExecutionRef,
    ) -> Result<Option<Record>, EngineError> {
        let Some(row) = db.first_row(
            &format!(
                "SELECT cancel_siblings_pending_flag, cancel_siblings_pending_members, {} \
                 FROM ff_edge_group \
                 WHERE partition_key = ?1 AND flow_id = ?2 AND downstream_eid = ?3",
                Group::COLUMNS
            ),
            &[int(FLOW_PARTITION), flow.blob(), downstream.blob()],
        )?
        else {
            return Ok(None);
        };
        Ok(Some(Record {
            flagged: row.integer(0).unwrap_or(0) != 0,
            members: listed_members(&row),
            state: Group::from_row(&row, 2).state(),
        }))
    }
}

/// The upstreams listed in `cancel_siblings_pending_members` (a JSON array of UUID texts);
/// entries that are not UUIDs are ignored (nothing to cancel).
fn listed_members(row: &Row) -> Vec<ExecutionRef> {
    let listed = row.text(1).unwrap_or_default();
    serde_json::from_str::<Vec<String>>(&listed)
        .unwrap_or_default()
        .iter()
        .filter_map(|uuid| uuid::Uuid::parse_str(uuid).ok())
        .filter_map(|uuid| ExecutionRef::from_stored(0, uuid.as_bytes()))
        .collect()
}

/// Clear the group's record and remove it from the queue.
fn clear(db: &mut impl Db, flow: &Uuid16, downstream: &ExecutionRef) -> Result<(), EngineError> {
    let key = [int(FLOW_PARTITION), flow.blob(), downstream.blob()];
    db.run(
        "UPDATE ff_edge_group SET cancel_siblings_pending_flag = 0, \
             cancel_siblings_pending_members = '[]' \
         WHERE partition_key = ?1 AND flow_id = ?2 AND downstream_eid = ?3 \
           AND (cancel_siblings_pending_flag != 0 OR cancel_siblings_pending_members != '[]')",
        &key,
    )?;
    db.run(
        "DELETE FROM ff_pending_cancel_groups \
         WHERE partition_key = ?1 AND flow_id = ?2 AND downstream_eid = ?3",
        &key,
    )?;
    Ok(())
}

/// Cancel the upstreams a decided `cancel_remaining` group still owes a cancel (each listed
/// upstream not terminal yet: cancelled as `cancel-execution` cancels, by `engine`, reason
/// `sibling_quorum_satisfied` or `sibling_quorum_impossible`, a live lease revoked, their own
/// outgoing edges resolved), then clear the group's record and dequeue it. Idempotent: nothing
/// recorded cancels nothing. Returns how many upstreams were cancelled.
pub fn drain_sibling_cancel_group(
    db: &mut impl Db,
    flow_id: &str,
    downstream_execution_id: &str,
    now: i64,
) -> Result<u32, EngineError> {
    let flow = Uuid16::parse("flow_id", flow_id)?;
    let downstream = member_ref(downstream_execution_id)?;
    let mut cancelled = Vec::new();
    if let Some(record) = Record::load(db, &flow, &downstream)?
        && record.flagged
    {
        let reason = match record.state {
            EdgeGroupState::Impossible => "sibling_quorum_impossible",
            _ => "sibling_quorum_satisfied",
        };
        for id in &record.members {
            let Some(exec) = Exec::load(db, id)? else {
                continue;
            };
            if exec.is_terminal() {
                continue;
            }
            cancel_member(db, &exec, reason, "engine", now)?;
            cancelled.push(exec.id.clone());
        }
        for id in &cancelled {
            resolve_outgoing(db, &flow.blob(), id, Bucket::Failure, now)?;
        }
    }
    clear(db, &flow, &downstream)?;
    Ok(u32::try_from(cancelled.len()).unwrap_or(u32::MAX))
}

/// Re-examine one queued group (Valkey's dispositions): not queued → `no-op`; the group is gone
/// or its record already cleared → dequeue, `sremmed-stale`; every listed upstream terminal (or
/// gone) → clear and dequeue, `completed-drain`; otherwise `no-op` (the cancels are still owed
/// to `drain-sibling-cancel-group`), nothing written.
pub fn reconcile_sibling_cancel_group(
    db: &mut impl Db,
    flow_id: &str,
    downstream_execution_id: &str,
) -> Result<SiblingCancelAction, EngineError> {
    let flow = Uuid16::parse("flow_id", flow_id)?;
    let downstream = member_ref(downstream_execution_id)?;
    let queued = db
        .first_row(
            "SELECT 1 FROM ff_pending_cancel_groups \
             WHERE partition_key = ?1 AND flow_id = ?2 AND downstream_eid = ?3",
            &[int(FLOW_PARTITION), flow.blob(), downstream.blob()],
        )?
        .is_some();
    if !queued {
        return Ok(SiblingCancelAction::NoOp);
    }
    let record = match Record::load(db, &flow, &downstream)? {
        Some(record) if record.flagged => record,
        _ => {
            clear(db, &flow, &downstream)?;
            return Ok(SiblingCancelAction::SremmedStale);
        }
    };
    for id in &record.members {
        if Exec::load(db, id)?.is_some_and(|exec| !exec.is_terminal()) {
            return Ok(SiblingCancelAction::NoOp);
        }
    }
    clear(db, &flow, &downstream)?;
    Ok(SiblingCancelAction::CompletedDrain)
}
