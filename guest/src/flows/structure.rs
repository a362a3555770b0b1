//! Building a flow: `create-flow`, `add-execution-to-flow`, `stage-dependency-edge`,
//! `apply-dependency-to-child`, `set-edge-group-policy` and `set-flow-tag`. Checks and writes:
//! the parent module's docs.

use std::collections::{HashSet, VecDeque};

use crate::bindings::flows::{
    AddExecutionArgs, AddExecutionOutcome, ApplyDependencyArgs, ApplyDependencyOutcome,
    CreateFlowArgs, CreateFlowOutcome, EdgeGroupPolicy, EdgeGroupState, StageEdgeArgs,
    StageEdgeOutcome,
};
use crate::db::{Db, DbExt, int, text};
use crate::errors::invalid_input;
use crate::exec::{Exec, clamp_u32, update_exec_formatted};
use crate::sql::Value;
use crate::types::{ConflictKind, EngineError, Entity, StateKind};

use super::common::{
    FLOW_PARTITION, FlowRow, Group, MAX_CYCLE_SEARCH, MAX_FLOW_MEMBERS, Uuid16,
    blocked_by_dependencies, encode_policy, member_ref, staged_edge,
};
use super::reads::load_edge;
use super::resolve::{Bucket, resolve_one_edge};

/// Create the flow `open`, revision 0, no members; `AlreadySatisfied` (nothing written) when
/// it exists.
pub fn create_flow(
    db: &mut impl Db,
    args: &CreateFlowArgs,
) -> Result<CreateFlowOutcome, EngineError> {
    let flow = Uuid16::parse("flow_id", &args.flow_id)?;
    let inserted = db.run(
        "INSERT INTO ff_flow_core (partition_key, flow_id, graph_revision, public_flow_state, \
             created_at_ms, raw_fields) \
         VALUES (?1, ?2, 0, 'open', ?3, json_object('edge_count', 0, 'flow_kind', ?4, \
             'last_mutation_at_ms', ?3, 'namespace', ?5, 'node_count', 0)) \
         ON CONFLICT (partition_key, flow_id) DO NOTHING",
        &[
            int(FLOW_PARTITION),
            flow.blob(),
            int(args.now),
            text(&args.flow_kind),
            text(&args.namespace),
        ],
    )?;
    Ok(if inserted == 1 {
        CreateFlowOutcome::Created
    } else {
        CreateFlowOutcome::AlreadySatisfied
    })
}

/// Add an existing `{fp:0}` execution to an open flow (graph revision +1, node count +1).
pub fn add_execution_to_flow(
    db: &mut impl Db,
    args: &AddExecutionArgs,
) -> Result<AddExecutionOutcome, EngineError> {
    let flow = Uuid16::parse("flow_id", &args.flow_id)?;
    let id = member_ref(&args.execution_id)?;
    let row = FlowRow::require_open(db, &flow)?;
    let current = db
        .first_row(
            "SELECT flow_id FROM ff_exec_core WHERE partition_key = ?1 AND execution_id = ?2",
            &id.key(),
        )?
        .ok_or(EngineError::NotFound(Entity::Execution))?;
    match current.blob(0) {
        Some(stored) if stored == flow.0.as_bytes() => {
            return Ok(AddExecutionOutcome::AlreadyMember(clamp_u32(
                row.node_count,
            )));
        }
        Some(_) => return Err(EngineError::Conflict(ConflictKind::ExecutionAlreadyInFlow)),
        None => {}
    }
    if row.node_count >= MAX_FLOW_MEMBERS {
        return Err(invalid_input(format!(
            "flow_member_limit: a flow holds at most {MAX_FLOW_MEMBERS} executions"
        )));
    }
    db.run(
        "UPDATE ff_exec_core SET flow_id = ?3 WHERE partition_key = ?1 AND execution_id = ?2",
        &[id.partition(), id.blob(), flow.blob()],
    )?;
    let node_count = row.node_count + 1;
    db.run(
        "UPDATE ff_flow_core SET graph_revision = graph_revision + 1, \
             raw_fields = json_set(raw_fields, '$.node_count', ?3, '$.last_mutation_at_ms', ?4) \
         WHERE partition_key = ?1 AND flow_id = ?2",
        &[
            int(FLOW_PARTITION),
            flow.blob(),
            int(node_count),
            int(args.now),
        ],
    )?;
    Ok(AddExecutionOutcome::Added(clamp_u32(node_count)))
}

/// Whether the execution's stored `flow_id` is `flow`.
fn is_member(
    db: &mut impl Db,
    id: &crate::ids::ExecutionRef,
    flow: &Uuid16,
) -> Result<bool, EngineError> {
    Ok(db
        .first_row(
            "SELECT flow_id FROM ff_exec_core WHERE partition_key = ?1 AND execution_id = ?2",
            &id.key(),
        )?
        .and_then(|row| row.blob(0))
        .is_some_and(|stored| stored == flow.0.as_bytes()))
}

/// Whether `target` can be reached from `start` along the flow's edges (breadth first over the
/// upstream index). Walking more than [`MAX_CYCLE_SEARCH`] executions counts as reaching it.
fn reaches(
    db: &mut impl Db,
    flow: &Uuid16,
    start: &uuid::Uuid,
    target: &uuid::Uuid,
) -> Result<bool, EngineError> {
    let mut seen = HashSet::from([*start]);
    let mut queue = VecDeque::from([*start]);
    while let Some(node) = queue.pop_front() {
        let rows = db
            .query(
                "SELECT downstream_eid FROM ff_edge \
                 WHERE partition_key = ?1 AND flow_id = ?2 AND upstream_eid = ?3",
                &[
                    int(FLOW_PARTITION),
                    flow.blob(),
                    Value::Blob(node.as_bytes().to_vec()),
                ],
            )
            .map_err(crate::errors::storage)?;
        for row in rows {
            let Some(next) = row.first().and_then(|value| match value {
                Value::Blob(bytes) => uuid::Uuid::from_slice(bytes).ok(),
                _ => None,
            }) else {
                continue;
            };
            if next == *target {
                return Ok(true);
            }
            if seen.insert(next) {
                if seen.len() > MAX_CYCLE_SEARCH {
                    return Ok(true);
                }
                queue.push_back(next);
            }
        }
    }
    Ok(false)
}

/// Stage an edge: compare-and-set on the graph revision, both ends members, no cycle, a new
/// edge id; graph revision +1, edge count +1.
pub fn stage_dependency_edge(
    db: &mut impl Db,
    args: &StageEdgeArgs,
) -> Result<StageEdgeOutcome, EngineError> {
    let flow = Uuid16::parse("flow_id", &args.flow_id)?;
    let edge = Uuid16::parse("edge_id", &args.edge_id)?;
    let upstream = member_ref(&args.upstream_execution_id)?;
    let downstream = member_ref(&args.downstream_execution_id)?;
    if upstream == downstream {
        return Err(EngineError::Conflict(ConflictKind::SelfReferencingEdge));
    }
    let row = FlowRow::require_open(db, &flow)?;
    let expected = i64::try_from(args.expected_graph_revision).unwrap_or(i64::MAX);
    if row.graph_revision != expected || row.state != "open" {
        return Err(EngineError::Contention(
            crate::types::ContentionKind::StaleGraphRevision,
        ));
    }
    if !is_member(db, &upstream, &flow)? || !is_member(db, &downstream, &flow)? {
        return Err(EngineError::State(StateKind::ExecutionNotInFlow));
    }
    if let Some(existing) = load_edge(db, &flow, &edge)? {
        return Ok(StageEdgeOutcome::AlreadyExists(existing));
    }
    let (up_uuid, down_uuid) = (upstream.uuid(), downstream.uuid());
    if reaches(db, &flow, &down_uuid, &up_uuid)? {
        return Err(EngineError::Conflict(ConflictKind::CycleDetected));
    }
    db.run(
        "INSERT INTO ff_edge (partition_key, flow_id, edge_id, upstream_eid, downstream_eid, policy, \
             policy_version) \
         VALUES (?1, ?2, ?3, ?4, ?5, json_object('applied_at_ms', NULL, 'created_at_ms', ?6, \
             'created_by', 'engine', 'data_passing_ref', ?7, 'dependency_kind', ?8, \
             'edge_state', 'pending', 'satisfaction_condition', 'all_required', 'staged_at_ms', ?6), 0)",
        &[
            int(FLOW_PARTITION),
            flow.blob(),
            edge.blob(),
            upstream.blob(),
            downstream.blob(),
            int(args.now),
            text(args.data_passing_ref.as_deref().unwrap_or_default()),
            text(&args.dependency_kind),
        ],
    )?;
    db.run(
        "UPDATE ff_flow_core SET graph_revision = graph_revision + 1, \
             raw_fields = json_set(raw_fields, '$.edge_count', \
                 COALESCE(CAST(json_extract(raw_fields, '$.edge_count') AS INTEGER), 0) + 1, \
                 '$.last_mutation_at_ms', ?3) \
         WHERE partition_key = ?1 AND flow_id = ?2",
        &[int(FLOW_PARTITION), flow.blob(), int(args.now)],
    )?;
    Ok(StageEdgeOutcome::Staged(
        u64::try_from(row.graph_revision.saturating_add(1)).unwrap_or(0),
    ))
}

/// Apply a staged edge to its downstream: the edge becomes `applied`, the downstream's group
/// counts one more unresolved edge, and a runnable downstream stops being claimable until the
/// group is satisfied. An upstream already terminal resolves the edge at once.
pub fn apply_dependency_to_child(
    db: &mut impl Db,
    args: &ApplyDependencyArgs,
) -> Result<ApplyDependencyOutcome, EngineError> {
    let flow = Uuid16::parse("flow_id", &args.flow_id)?;
    let edge_id = Uuid16::parse("edge_id", &args.edge_id)?;
    let downstream = member_ref(&args.downstream_execution_id)?;
    let upstream = member_ref(&args.upstream_execution_id)?;
    FlowRow::require(db, &flow)?;
    if staged_edge(db, &flow, &edge_id, &upstream, &downstream)?
        .applied_at_ms
        .is_some()
    {
        return Ok(ApplyDependencyOutcome::AlreadyApplied);
    }
    let child = Exec::require(db, &downstream)?;
    db.run(
        "UPDATE ff_edge SET policy = json_set(policy, '$.applied_at_ms', ?4, '$.edge_state', 'applied') \
         WHERE partition_key = ?1 AND flow_id = ?2 AND edge_id = ?3",
        &[int(FLOW_PARTITION), flow.blob(), edge_id.blob(), int(args.now)],
    )?;
    db.run(
        "INSERT INTO ff_edge_group (partition_key, flow_id, downstream_eid, policy, running_count) \
         VALUES (?1, ?2, ?3, '{\"kind\":\"all_of\"}', 1) \
         ON CONFLICT (partition_key, flow_id, downstream_eid) \
         DO UPDATE SET running_count = running_count + 1",
        &[int(FLOW_PARTITION), flow.blob(), downstream.blob()],
    )?;
    let group = Group::load(db, &flow.blob(), &downstream.blob())?;
    let satisfied = group
        .as_ref()
        .is_some_and(|group| group.state() == EdgeGroupState::Satisfied);
    if !satisfied
        && child.lifecycle_phase == "runnable"
        && child.ownership_state == "unowned"
        && child.eligibility_state != "blocked_by_dependencies"
    {
        update_exec_formatted(
            db,
            &downstream,
            &blocked_by_dependencies(&child.attempt_state),
            ", raw_fields = json_set(raw_fields, '$.last_mutation_at', CAST(?9 AS TEXT))",
            &[int(args.now)],
        )?;
        // A blocked execution cannot be claimed, so a grant it held is void; dropping it here
        // lets a skip of a blocked execution write nothing but its own row and event.
        db.run(
            "DELETE FROM ff_claim_grant WHERE partition_key = ?1 AND execution_id = ?2",
            &downstream.key(),
        )?;
    }
    let parent = Exec::require(db, &upstream)?;
    if parent.is_terminal() {
        resolve_one_edge(
            db,
            &flow.blob(),
            &edge_id.blob(),
            &downstream,
            Bucket::of(parent.terminal_label()),
            args.now,
        )?;
    }
    let running =
        Group::load(db, &flow.blob(), &downstream.blob())?.map_or(0, |group| group.counts.running);
    Ok(ApplyDependencyOutcome::Applied(clamp_u32(running)))
}

/// Set the downstream's group policy before any edge into it is staged. Returns `false` when
/// the stored policy is the same (nothing written).
pub fn set_edge_group_policy(
    db: &mut impl Db,
    flow_id: &str,
    downstream_execution_id: &str,
    policy: &EdgeGroupPolicy,
) -> Result<bool, EngineError> {
    let flow = Uuid16::parse("flow_id", flow_id)?;
    let downstream = member_ref(downstream_execution_id)?;
    if let EdgeGroupPolicy::Quorum(quorum) = policy
        && quorum.k == 0
    {
        return Err(invalid_input("quorum k must be >= 1"));
    }
    FlowRow::require(db, &flow)?;
    let staged = db.first_row(
        "SELECT 1 FROM ff_edge WHERE partition_key = ?1 AND flow_id = ?2 AND downstream_eid = ?3 LIMIT 1",
        &[int(FLOW_PARTITION), flow.blob(), downstream.blob()],
    )?;
    if staged.is_some() {
        return Err(invalid_input(
            "edge_group_policy_already_fixed: dependencies already staged",
        ));
    }
    let encoded = encode_policy(policy);
    let stored = db.first_row(
        "SELECT policy FROM ff_edge_group WHERE partition_key = ?1 AND flow_id = ?2 AND downstream_eid = ?3",
        &[int(FLOW_PARTITION), flow.blob(), downstream.blob()],
    )?;
    if stored.and_then(|row| row.text(0)).as_deref() == Some(encoded.as_str()) {
        return Ok(false);
    }
    let k_target = match policy {
        EdgeGroupPolicy::AllOf => 0,
        EdgeGroupPolicy::AnyOf(_) => 1,
        EdgeGroupPolicy::Quorum(quorum) => i64::from(quorum.k),
    };
    db.run(
        "INSERT INTO ff_edge_group (partition_key, flow_id, downstream_eid, policy, k_target) \
         VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT (partition_key, flow_id, downstream_eid) \
         DO UPDATE SET policy = excluded.policy, k_target = excluded.k_target",
        &[
            int(FLOW_PARTITION),
            flow.blob(),
            downstream.blob(),
            text(encoded),
            int(k_target),
        ],
    )?;
    Ok(true)
}

/// Set the top-level `raw_fields` member `key` of the flow to the string `value` (the host
/// validated the key); `NotFound(flow)` when the flow does not exist.
pub fn set_flow_tag(
    db: &mut impl Db,
    flow_id: &str,
    key: &str,
    value: &str,
) -> Result<(), EngineError> {
    let flow = Uuid16::parse("flow_id", flow_id)?;
    validate_tag_key(key)?;
    let changed = db.run(
        "UPDATE ff_flow_core SET raw_fields = json_set(COALESCE(raw_fields, '{}'), ?3, ?4) \
         WHERE partition_key = ?1 AND flow_id = ?2",
        &[
            int(FLOW_PARTITION),
            flow.blob(),
            text(format!("$.\"{key}\"")),
            text(value),
        ],
    )?;
    if changed == 0 {
        return Err(EngineError::NotFound(Entity::Flow));
    }
    Ok(())
}

/// ff-core's `validate_tag_key`: `^[a-z][a-z0-9_]*\.[a-z0-9_][a-z0-9_.]*$`, else
/// `Validation { InvalidInput }`.
pub fn validate_tag_key(key: &str) -> Result<(), EngineError> {
    let bytes = key.as_bytes();
    let word = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_';
    let valid = bytes.first().is_some_and(u8::is_ascii_lowercase)
        && key.split_once('.').is_some_and(|(prefix, rest)| {
            prefix.bytes().all(|b| word(&b))
                && rest.as_bytes().first().is_some_and(word)
                && rest.bytes().all(|b| word(&b) || b == b'.')
        });
    if !valid {
        return Err(invalid_input(format!(
            "invalid tag key: {key:?} (must match ^[a-z][a-z0-9_]*\\.[a-z0-9_][a-z0-9_.]*$)"
        )));
    }
    Ok(())
}
