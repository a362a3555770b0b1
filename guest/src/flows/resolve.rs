//! Enforcement: resolving an upstream's applied edges when it reaches a terminal state
//! ([`on_terminal`], called inside every terminal write), releasing or skipping downstream
//! executions, the skip cascade, and the explicit entry points `resolve-dependency`,
//! `cascade-completion` and `wait-children`.

use crate::bindings::flows::{
    CascadeOutcome, ChildWaitLease, EdgeGroupState, ResolveDependencyArgs, ResolveOutcome,
};
use crate::db::{Db, DbExt, int, text};
use crate::errors::contention;
use crate::exec::{
    Attempt, Exec, StateVector, record_completion_event, record_lease_event, update_exec,
    update_exec_formatted,
};
use crate::ids::ExecutionRef;
use crate::sql::Value;
use crate::types::{ContentionKind, EngineError, ValidationError, ValidationKind};

use super::common::{
    FLOW_PARTITION, Group, SKIPPED, Uuid16, blocked_by_dependencies, member_at, member_ref,
    released,
};
use super::siblings;

/// Which counter an upstream's outcome moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    /// `success`: the edge is satisfied.
    Success,
    /// `skipped`: the edge is impossible, counted as skipped.
    Skipped,
    /// Anything else (`failed`, `cancelled`, `expired`): the edge is impossible.
    Failure,
}

impl Bucket {
    /// The bucket of an outcome text.
    pub fn of(outcome: &str) -> Bucket {
        match outcome {
            "success" => Bucket::Success,
            "skipped" => Bucket::Skipped,
            _ => Bucket::Failure,
        }
    }

    /// The `edge_state` an edge resolved this way records.
    fn edge_state(self) -> &'static str {
        match self {
            Bucket::Success => "satisfied",
            Bucket::Skipped | Bucket::Failure => "impossible",
        }
    }
}

impl Exec {
    /// The outcome of a terminal execution: the recorded `terminal_outcome`, else what its
    /// public state says (`completed` is `success`; anything unknown counts as `failed`).
    pub fn terminal_label(&self) -> &str {
        if let Some(outcome) = self.terminal_outcome.as_deref() {
            return outcome;
        }
        match self.public_state.as_str() {
            "completed" => "success",
            "cancelled" => "cancelled",
            "skipped" => "skipped",
            "expired" => "expired",
            _ => "failed",
        }
    }
}

/// What a resolution did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Resolved {
    /// Edges resolved.
    pub edges: u32,
    /// Downstream executions skipped.
    pub skipped: u32,
}

/// Called by every terminal write (complete, fail, cancel, reclaim cap) after the execution's
/// own row is written: resolve the edges leaving it. An execution outside any flow costs
/// nothing here (its `flow_id` came with the row); one inside a flow costs one indexed lookup
/// plus the work on the edges it has.
pub fn on_terminal(
    db: &mut impl Db,
    exec: &Exec,
    outcome: &str,
    now: i64,
) -> Result<(), EngineError> {
    if matches!(exec.outbox.flow_id, Value::Null) {
        return Ok(());
    }
    resolve_outgoing(db, &exec.outbox.flow_id, &exec.id, Bucket::of(outcome), now)?;
    Ok(())
}

/// Resolve every applied, unresolved edge leaving `upstream` with `bucket`, and cascade through
/// the downstream executions it skips (each skipped execution's own edges resolve as skipped).
/// A member is skipped at most once, so the walk is bounded by the flow's member count.
pub fn resolve_outgoing(
    db: &mut impl Db,
    flow: &Value,
    upstream: &ExecutionRef,
    bucket: Bucket,
    now: i64,
) -> Result<Resolved, EngineError> {
    let mut resolved = Resolved::default();
    let mut pending = vec![(upstream.clone(), bucket)];
    while let Some((node, bucket)) = pending.pop() {
        let edges = db
            .query(
                "SELECT edge_id, downstream_eid FROM ff_edge \
                 WHERE partition_key = ?1 AND flow_id = ?2 AND upstream_eid = ?3 \
                   AND json_extract(policy, '$.edge_state') = 'applied'",
                &[int(FLOW_PARTITION), flow.clone(), node.blob()],
            )
            .map_err(crate::errors::storage)?;
        for row in edges.into_iter().map(crate::db::Row) {
            let edge_id = row.0[0].clone();
            let downstream = member_at(&row, 1)?;
            resolved.edges += 1;
            if resolve_one_edge(db, flow, &edge_id, &downstream, bucket, now)? {
                resolved.skipped += 1;
                pending.push((downstream, Bucket::Skipped));
            }
        }
    }
    Ok(resolved)
}

/// Resolve one applied edge into `downstream` with `bucket`: the edge records its state, the
/// group moves one edge from running to the bucket's counter, and a group that is now
/// satisfied releases a downstream waiting for it, one that is impossible skips it. Returns
/// whether the downstream was skipped (its own edges are then the caller's to resolve).
pub fn resolve_one_edge(
    db: &mut impl Db,
    flow: &Value,
    edge_id: &Value,
    downstream: &ExecutionRef,
    bucket: Bucket,
    now: i64,
) -> Result<bool, EngineError> {
    db.run(
        "UPDATE ff_edge SET policy = json_set(policy, '$.edge_state', ?4, '$.resolved_at_ms', ?5) \
         WHERE partition_key = ?1 AND flow_id = ?2 AND edge_id = ?3",
        &[
            int(FLOW_PARTITION),
            flow.clone(),
            edge_id.clone(),
            text(bucket.edge_state()),
            int(now),
        ],
    )?;
    let (success, fail, skip) = match bucket {
        Bucket::Success => (1, 0, 0),
        Bucket::Failure => (0, 1, 0),
        Bucket::Skipped => (0, 0, 1),
    };
    db.run(
        "UPDATE ff_edge_group SET running_count = MAX(running_count - 1, 0), \
             success_count = success_count + ?4, fail_count = fail_count + ?5, \
             skip_count = skip_count + ?6 \
         WHERE partition_key = ?1 AND flow_id = ?2 AND downstream_eid = ?3",
        &[
            int(FLOW_PARTITION),
            flow.clone(),
            downstream.blob(),
            int(success),
            int(fail),
            int(skip),
        ],
    )?;
    let Some(group) = Group::load(db, flow, &downstream.blob())? else {
        return Ok(false);
    };
    let mut before = group.clone();
    before.counts.success -= success;
    before.counts.fail -= fail;
    before.counts.skip -= skip;
    before.counts.running += 1;
    siblings::on_group_moved(db, flow, downstream, before.state(), &group, now)?;
    settle_downstream(db, downstream, group.state(), now)
}

/// Act on the downstream's group state: satisfied releases a downstream blocked by its
/// dependencies, impossible skips a downstream that is not terminal. Returns whether it was
/// skipped.
fn settle_downstream(
    db: &mut impl Db,
    downstream: &ExecutionRef,
    state: EdgeGroupState,
    now: i64,
) -> Result<bool, EngineError> {
    let Some(child) = Exec::load(db, downstream)? else {
        return Ok(false);
    };
    if child.is_terminal() {
        return Ok(false);
    }
    match state {
        EdgeGroupState::Satisfied => {
            if child.lifecycle_phase == "runnable"
                && child.eligibility_state == "blocked_by_dependencies"
            {
                update_exec_formatted(
                    db,
                    downstream,
                    &released(&child.attempt_state),
                    ", raw_fields = json_set(raw_fields, '$.last_mutation_at', CAST(?9 AS TEXT))",
                    &[int(now)],
                )?;
            }
            Ok(false)
        }
        EdgeGroupState::Impossible => {
            skip(db, &child, now)?;
            Ok(true)
        }
        EdgeGroupState::Pending | EdgeGroupState::Cancelled => Ok(false),
    }
}

/// Skip `child`: a live lease is revoked (epoch +1, attempt outcome `cancelled`, LE(`revoked`)),
/// its grants are dropped, the row becomes SKIPPED with `terminal_outcome = skipped`, and
/// CE(`skipped`) is recorded.
fn skip(db: &mut impl Db, child: &Exec, now: i64) -> Result<(), EngineError> {
    if let Some(attempt) = child.lease_holder(db)? {
        db.run(
            "UPDATE ff_attempt SET worker_instance_id = NULL, lease_expires_at_ms = NULL, \
                 lease_epoch = lease_epoch + 1, terminal_at_ms = ?4, outcome = 'cancelled' \
             WHERE partition_key = ?1 AND execution_id = ?2 AND attempt_index = ?3",
            &[
                child.id.partition(),
                child.id.blob(),
                int(attempt.index),
                int(now),
            ],
        )?;
        record_lease_event(db, child, "revoked", attempt.lease_id.as_deref(), now)?;
    }
    db.run(
        "DELETE FROM ff_claim_grant WHERE partition_key = ?1 AND execution_id = ?2",
        &child.id.key(),
    )?;
    update_exec(
        db,
        &child.id,
        &SKIPPED,
        ", terminal_at_ms = COALESCE(terminal_at_ms, ?9), raw_fields = json_set(raw_fields, \
             '$.terminal_outcome', 'skipped', '$.skip_reason', 'dependency_impossible', \
             '$.last_mutation_at', CAST(?9 AS TEXT))",
        &[int(now)],
    )?;
    record_completion_event(db, child, "skipped", now)
}

/// `Validation { InvalidDependency, detail }`.
fn invalid_dependency(detail: &str) -> EngineError {
    EngineError::Validation(ValidationError {
        kind: ValidationKind::InvalidDependency,
        detail: detail.into(),
    })
}

/// Resolve one applied edge with the caller's outcome; `AlreadyResolved` when it was resolved
/// before. A skipped downstream cascades as in [`resolve_outgoing`].
pub fn resolve_dependency(
    db: &mut impl Db,
    args: &ResolveDependencyArgs,
) -> Result<ResolveOutcome, EngineError> {
    let flow = Uuid16::parse("flow_id", &args.flow_id)?;
    let edge_id = Uuid16::parse("edge_id", &args.edge_id)?;
    let downstream = member_ref(&args.downstream_execution_id)?;
    let upstream = member_ref(&args.upstream_execution_id)?;
    let edge = db
        .first_row(
            "SELECT upstream_eid, downstream_eid, json_extract(policy, '$.edge_state') \
             FROM ff_edge WHERE partition_key = ?1 AND flow_id = ?2 AND edge_id = ?3",
            &[int(FLOW_PARTITION), flow.blob(), edge_id.blob()],
        )?
        .ok_or_else(|| invalid_dependency("edge_not_found"))?;
    if edge.blob(0).as_deref() != Some(upstream.uuid().as_bytes())
        || edge.blob(1).as_deref() != Some(downstream.uuid().as_bytes())
    {
        return Err(invalid_dependency(
            "edge_endpoint_mismatch: the arguments name other executions than the staged edge",
        ));
    }
    match edge.text(2).as_deref() {
        Some("applied") => {}
        Some("satisfied" | "impossible") => return Ok(ResolveOutcome::AlreadyResolved),
        _ => return Err(invalid_dependency("edge_not_applied")),
    }
    let bucket = Bucket::of(&args.upstream_outcome);
    if resolve_one_edge(
        db,
        &flow.blob(),
        &edge_id.blob(),
        &downstream,
        bucket,
        args.now,
    )? {
        resolve_outgoing(db, &flow.blob(), &downstream, Bucket::Skipped, args.now)?;
    }
    Ok(match bucket {
        Bucket::Success => ResolveOutcome::Satisfied,
        Bucket::Skipped | Bucket::Failure => ResolveOutcome::Impossible,
    })
}

/// Resolve what is still unresolved leaving a terminal flow member (normally nothing: terminal
/// writes resolve their edges themselves). A missing, non-terminal or flowless execution
/// resolves nothing.
pub fn cascade_completion(
    db: &mut impl Db,
    execution_id: &str,
    now: i64,
) -> Result<CascadeOutcome, EngineError> {
    let id = ExecutionRef::parse(execution_id)?;
    let nothing = CascadeOutcome {
        resolved: 0,
        cascaded_children: 0,
    };
    let Some(exec) = Exec::load(db, &id)? else {
        return Ok(nothing);
    };
    if !exec.is_terminal() || matches!(exec.outbox.flow_id, Value::Null) {
        return Ok(nothing);
    }
    let resolved = resolve_outgoing(
        db,
        &exec.outbox.flow_id,
        &id,
        Bucket::of(exec.terminal_label()),
        now,
    )?;
    Ok(CascadeOutcome {
        resolved: resolved.edges,
        cascaded_children: resolved.skipped,
    })
}

/// Park the lease holder's running execution until its dependencies resolve. Checks as the
/// handle operations: the attempt exists (`NotFound(attempt)`), the fence matches
/// (`Contention(LeaseConflict)`), the execution exists, is `active` and `leased`
/// (`ExecutionNotActive`) and this is its current attempt (`Contention(LeaseConflict)`).
///
/// The lease ends (epoch +1, LE(`revoked`)), the attempt stays current, interrupted; the
/// execution waits for its group (`blocked_by_dependencies`, `waiting_children`), or is
/// claimable at once when it has no group or the group is satisfied, or is skipped when the
/// group is impossible.
pub fn wait_children(
    db: &mut impl Db,
    lease: &ChildWaitLease,
    now: i64,
) -> Result<(), EngineError> {
    let id = ExecutionRef::parse(&lease.execution_id)?;
    let index = i64::from(lease.attempt_index);
    let attempt = Attempt::require(db, &id, index)?;
    if !attempt.fence_matches(lease.lease_epoch, &lease.lease_id, &lease.attempt_id) {
        return Err(contention(ContentionKind::LeaseConflict));
    }
    let exec = Exec::require(db, &id)?;
    if exec.lifecycle_phase != "active" || exec.ownership_state != "leased" {
        return Err(exec.not_active(db)?);
    }
    if index != exec.attempt_index {
        return Err(contention(ContentionKind::LeaseConflict));
    }
    let group = match &exec.outbox.flow_id {
        Value::Null => None,
        flow => Group::load(db, flow, &id.blob())?,
    };
    let state = group.map_or(EdgeGroupState::Satisfied, |group| group.state());
    db.run(
        "UPDATE ff_attempt SET worker_instance_id = NULL, lease_expires_at_ms = NULL, \
             lease_epoch = lease_epoch + 1 \
         WHERE partition_key = ?1 AND execution_id = ?2 AND attempt_index = ?3",
        &[id.partition(), id.blob(), int(index)],
    )?;
    record_lease_event(db, &exec, "revoked", attempt.lease_id.as_deref(), now)?;
    let vector = match state {
        EdgeGroupState::Satisfied => StateVector::INTERRUPTED,
        EdgeGroupState::Pending | EdgeGroupState::Cancelled => {
            blocked_by_dependencies("attempt_interrupted")
        }
        EdgeGroupState::Impossible => {
            // The lease is already gone, so the skip finds no holder to revoke.
            let parked = Exec::require(db, &id)?;
            skip(db, &parked, now)?;
            resolve_outgoing(db, &exec.outbox.flow_id, &id, Bucket::Skipped, now)?;
            return Ok(());
        }
    };
    update_exec_formatted(
        db,
        &id,
        &vector,
        ", raw_fields = json_set(raw_fields, '$.last_mutation_at', CAST(?9 AS TEXT))",
        &[int(now)],
    )?;
    Ok(())
}

/// The execution's flow id text, or `None` (`Validation { Corruption }` for a stored value
/// that is not 16 bytes).
pub fn resolve_execution_flow_id(
    db: &mut impl Db,
    execution_id: &str,
) -> Result<Option<String>, EngineError> {
    let id = ExecutionRef::parse(execution_id)?;
    let Some(row) = db.first_row(
        "SELECT flow_id FROM ff_exec_core WHERE partition_key = ?1 AND execution_id = ?2",
        &id.key(),
    )?
    else {
        return Ok(None);
    };
    if matches!(row.0.first(), None | Some(Value::Null)) {
        return Ok(None);
    }
    Uuid16::text_at(&row, 0, "ff_exec_core.flow_id").map(Some)
}
