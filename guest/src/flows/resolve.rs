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
use crate::types::{ContentionKind, EngineError};

use super::common::{
    FLOW_PARTITION, Group, SKIPPED, Uuid16, blocked_by_dependencies, invalid_dependency, member_at,
    member_ref, released, staged_edge,
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

/// A JSON array of the ids' 16 bytes as hex texts: the list parameter the set-based statements
/// below read with `unhex(value)` over `json_each`.
fn id_list(ids: &[ExecutionRef]) -> Value {
    let texts: Vec<String> = ids
        .iter()
        .map(|id| format!("\"{}\"", id.uuid().simple().to_string().to_uppercase()))
        .collect();
    text(format!("[{}]", texts.join(",")))
}

/// Resolve every applied, unresolved edge leaving `upstream` with `bucket`, and cascade through
/// the downstream executions it skips (their own edges resolve as skipped). The cascade goes
/// level by level, and each level costs a fixed number of statements whatever its width: one
/// resolving every edge leaving the level, one moving every touched group's counters, and for
/// the downstreams skipped while waiting for their dependencies one updating their rows and one
/// recording their completion events; only downstreams released, or skipped while not waiting
/// (running, suspended, ...), are handled one by one. A member is skipped at most once, so the
/// walk is bounded by the flow's member count.
pub fn resolve_outgoing(
    db: &mut impl Db,
    flow: &Value,
    upstream: &ExecutionRef,
    bucket: Bucket,
    now: i64,
) -> Result<Resolved, EngineError> {
    let mut resolved = Resolved::default();
    let mut level = vec![upstream.clone()];
    let mut bucket = bucket;
    while !level.is_empty() {
        let edges = db
            .query(
                "UPDATE ff_edge SET policy = json_set(policy, '$.edge_state', ?4, \
                     '$.resolved_at_ms', ?5) \
                 WHERE partition_key = ?1 AND flow_id = ?2 \
                   AND upstream_eid IN (SELECT unhex(value) FROM json_each(?3)) \
                   AND json_extract(policy, '$.edge_state') = 'applied' \
                 RETURNING downstream_eid",
                &[
                    int(FLOW_PARTITION),
                    flow.clone(),
                    id_list(&level),
                    text(bucket.edge_state()),
                    int(now),
                ],
            )
            .map_err(crate::errors::storage)?;
        resolved.edges += u32::try_from(edges.len()).unwrap_or(u32::MAX);
        let mut per_downstream: Vec<(Vec<u8>, i64)> = Vec::new();
        for row in edges.into_iter().map(crate::db::Row) {
            let downstream = row
                .blob(0)
                .ok_or_else(|| crate::errors::corruption("ff_edge.downstream_eid is not a blob"))?;
            match per_downstream.iter_mut().find(|(id, _)| *id == downstream) {
                Some((_, count)) => *count += 1,
                None => per_downstream.push((downstream, 1)),
            }
        }
        level = resolve_groups(db, flow, &per_downstream, bucket, now)?;
        resolved.skipped += u32::try_from(level.len()).unwrap_or(u32::MAX);
        bucket = Bucket::Skipped;
    }
    Ok(resolved)
}

/// Resolve one applied edge into `downstream` with `bucket`: the edge records its state, then
/// the downstream's group moves ([`resolve_groups`]). Returns whether the downstream was
/// skipped (its own edges are then the caller's to resolve).
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
    let one = [(downstream.uuid().as_bytes().to_vec(), 1)];
    Ok(!resolve_groups(db, flow, &one, bucket, now)?.is_empty())
}

/// The effect of resolved edges on their downstreams' groups: each `(downstream, edges)` moves
/// that many edges from running to the bucket's counter (one statement for all), then every
/// group that is now satisfied releases its downstream if it waits, and every one that is
/// impossible skips it. Returns the downstreams skipped.
fn resolve_groups(
    db: &mut impl Db,
    flow: &Value,
    per_downstream: &[(Vec<u8>, i64)],
    bucket: Bucket,
    now: i64,
) -> Result<Vec<ExecutionRef>, EngineError> {
    if per_downstream.is_empty() {
        return Ok(Vec::new());
    }
    let (success, fail, skip) = match bucket {
        Bucket::Success => (1, 0, 0),
        Bucket::Failure => (0, 1, 0),
        Bucket::Skipped => (0, 0, 1),
    };
    // Downstreams reached by one edge of the level (nearly always all of them) move in one
    // statement; one reached by several edges moves by that many in its own.
    let single: Vec<ExecutionRef> = per_downstream
        .iter()
        .filter(|(_, edges)| *edges == 1)
        .filter_map(|(id, _)| ExecutionRef::from_stored(0, id))
        .collect();
    let mut rows = Vec::new();
    let statement = format!(
        "UPDATE ff_edge_group SET running_count = MAX(running_count - ?7, 0), \
             success_count = success_count + ?7 * ?4, fail_count = fail_count + ?7 * ?5, \
             skip_count = skip_count + ?7 * ?6 \
         WHERE partition_key = ?1 AND flow_id = ?2 \
           AND downstream_eid IN (SELECT unhex(value) FROM json_each(?3)) \
         RETURNING downstream_eid, {}",
        Group::COLUMNS
    );
    let mut batches = vec![(single, 1)];
    for (id, edges) in per_downstream.iter().filter(|(_, edges)| *edges > 1) {
        if let Some(id) = ExecutionRef::from_stored(0, id) {
            batches.push((vec![id], *edges));
        }
    }
    for (ids, edges) in batches.into_iter().filter(|(ids, _)| !ids.is_empty()) {
        rows.extend(
            db.query(
                &statement,
                &[
                    int(FLOW_PARTITION),
                    flow.clone(),
                    id_list(&ids),
                    int(success),
                    int(fail),
                    int(skip),
                    int(edges),
                ],
            )
            .map_err(crate::errors::storage)?,
        );
    }
    let mut impossible = Vec::new();
    let mut skipped = Vec::new();
    for row in rows.into_iter().map(crate::db::Row) {
        let downstream = member_at(&row, 0)?;
        let edges = per_downstream
            .iter()
            .find(|(id, _)| id.as_slice() == downstream.uuid().as_bytes())
            .map_or(1, |(_, edges)| *edges);
        let group = Group::from_row(&row, 1);
        let mut before = group.clone();
        before.counts.success -= success * edges;
        before.counts.fail -= fail * edges;
        before.counts.skip -= skip * edges;
        before.counts.running += edges;
        siblings::on_group_moved(db, flow, &downstream, before.state(), &group, now)?;
        match group.state() {
            EdgeGroupState::Impossible => impossible.push(downstream),
            state => {
                settle_downstream(db, &downstream, state, now)?;
            }
        }
    }
    let waiting = skip_waiting(db, &impossible, now)?;
    for downstream in impossible {
        if waiting.contains(&downstream)
            || settle_downstream(db, &downstream, EdgeGroupState::Impossible, now)?
        {
            skipped.push(downstream);
        }
    }
    Ok(skipped)
}

/// Skip those of `candidates` that wait for their dependencies (runnable, unowned,
/// `blocked_by_dependencies`: they hold no lease and no grant) in two statements whatever their
/// number: their rows become SKIPPED with `terminal_outcome = skipped`, and their CE(`skipped`)
/// rows are copied from them. Returns the ones skipped; the others are left to
/// [`settle_downstream`].
fn skip_waiting(
    db: &mut impl Db,
    candidates: &[ExecutionRef],
    now: i64,
) -> Result<Vec<ExecutionRef>, EngineError> {
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let mut params = vec![id_list(candidates), int(now)];
    params.extend(SKIPPED.params());
    let rows = db
        .query(
            &format!(
                "UPDATE ff_exec_core SET {}, terminal_at_ms = COALESCE(terminal_at_ms, ?2), \
                     raw_fields = json_set(raw_fields, '$.terminal_outcome', 'skipped', \
                         '$.skip_reason', 'dependency_impossible', \
                         '$.last_mutation_at', CAST(?2 AS TEXT)) \
                 WHERE partition_key = 0 \
                   AND execution_id IN (SELECT unhex(value) FROM json_each(?1)) \
                   AND lifecycle_phase = 'runnable' AND ownership_state = 'unowned' \
                   AND eligibility_state = 'blocked_by_dependencies' \
                 RETURNING execution_id",
                StateVector::ASSIGN
            ),
            &params,
        )
        .map_err(crate::errors::storage)?;
    let skipped = rows
        .into_iter()
        .map(|row| member_at(&crate::db::Row(row), 0))
        .collect::<Result<Vec<_>, _>>()?;
    if !skipped.is_empty() {
        db.run(
            "INSERT INTO ff_completion_event (partition_key, execution_id, flow_id, outcome, \
                 namespace, instance_tag, occurred_at_ms) \
             SELECT partition_key, execution_id, flow_id, 'skipped', \
                 json_extract(raw_fields, '$.namespace'), \
                 json_extract(raw_fields, '$.tags.\"cairn.instance_id\"'), ?2 \
             FROM ff_exec_core WHERE partition_key = 0 \
               AND execution_id IN (SELECT unhex(value) FROM json_each(?1))",
            &[id_list(&skipped), int(now)],
        )?;
    }
    Ok(skipped)
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
    let edge = staged_edge(db, &flow, &edge_id, &upstream, &downstream)?;
    match edge.edge_state.as_deref() {
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
