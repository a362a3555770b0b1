//! What the flow reads report: `describe-flow`, `list-flows`, `list-edges`, `describe-edge`,
//! `get-flow-tag` and `evaluate-flow-eligibility`.

use crate::bindings::flows::{
    EdgeDirection, EdgeGroupState, EdgeGroupView, EdgeView, FlowPage, FlowSummary, FlowView,
};
use crate::db::{Db, DbExt, Row, int, text};
use crate::exec::clamp_u32;
use crate::ids::ExecutionRef;
use crate::sql::Value;
use crate::types::EngineError;

use super::common::{FLOW_PARTITION, Group, Uuid16, member_text};
use super::resolve::Bucket;

/// The columns [`edge_from_row`] reads, from `ff_edge`.
const EDGE_COLUMNS: &str = "edge_id, flow_id, upstream_eid, downstream_eid, \
     json_extract(policy, '$.dependency_kind'), json_extract(policy, '$.satisfaction_condition'), \
     json_extract(policy, '$.data_passing_ref'), json_extract(policy, '$.edge_state'), \
     CAST(json_extract(policy, '$.created_at_ms') AS INTEGER), json_extract(policy, '$.created_by')";

/// An edge from [`EDGE_COLUMNS`], with upstream's defaults for absent members.
fn edge_from_row(row: &Row) -> Result<EdgeView, EngineError> {
    Ok(EdgeView {
        edge_id: Uuid16::text_at(row, 0, "ff_edge.edge_id")?,
        flow_id: Uuid16::text_at(row, 1, "ff_edge.flow_id")?,
        upstream_execution_id: member_text(row, 2)?,
        downstream_execution_id: member_text(row, 3)?,
        dependency_kind: row.text(4).unwrap_or_else(|| "success_only".into()),
        satisfaction_condition: row.text(5).unwrap_or_else(|| "all_required".into()),
        data_passing_ref: row.text(6).filter(|reference| !reference.is_empty()),
        edge_state: row.text(7).unwrap_or_else(|| "pending".into()),
        created_at: row.integer(8).unwrap_or(0),
        created_by: row.text(9).unwrap_or_else(|| "engine".into()),
    })
}

/// The edge, or `None`.
pub fn load_edge(
    db: &mut impl Db,
    flow: &Uuid16,
    edge: &Uuid16,
) -> Result<Option<EdgeView>, EngineError> {
    db.first_row(
        &format!(
            "SELECT {EDGE_COLUMNS} FROM ff_edge WHERE partition_key = ?1 AND flow_id = ?2 AND edge_id = ?3"
        ),
        &[int(FLOW_PARTITION), flow.blob(), edge.blob()],
    )?
    .map(|row| edge_from_row(&row))
    .transpose()
}

/// One edge of the flow, or `None`.
pub fn describe_edge(
    db: &mut impl Db,
    flow_id: &str,
    edge_id: &str,
) -> Result<Option<EdgeView>, EngineError> {
    let flow = Uuid16::parse("flow_id", flow_id)?;
    let edge = Uuid16::parse("edge_id", edge_id)?;
    load_edge(db, &flow, &edge)
}

/// The flow's edges leaving (outgoing) or entering (incoming) one execution, by edge id.
pub fn list_edges(
    db: &mut impl Db,
    flow_id: &str,
    direction: &EdgeDirection,
) -> Result<Vec<EdgeView>, EngineError> {
    let flow = Uuid16::parse("flow_id", flow_id)?;
    let (column, subject) = match direction {
        EdgeDirection::Outgoing(id) => ("upstream_eid", id),
        EdgeDirection::Incoming(id) => ("downstream_eid", id),
    };
    let subject = ExecutionRef::parse(subject)?;
    let rows = db
        .query(
            &format!(
                "SELECT {EDGE_COLUMNS} FROM ff_edge \
                 WHERE partition_key = ?1 AND flow_id = ?2 AND {column} = ?3 ORDER BY edge_id"
            ),
            &[int(FLOW_PARTITION), flow.blob(), subject.blob()],
        )
        .map_err(crate::errors::storage)?;
    rows.into_iter()
        .map(|row| edge_from_row(&Row(row)))
        .collect()
}

/// The flow's value of a top-level `raw_fields` member; `None` for an absent flow or key.
pub fn get_flow_tag(
    db: &mut impl Db,
    flow_id: &str,
    key: &str,
) -> Result<Option<String>, EngineError> {
    let flow = Uuid16::parse("flow_id", flow_id)?;
    Ok(db
        .first_row(
            "SELECT json_extract(raw_fields, ?3) FROM ff_flow_core WHERE partition_key = ?1 AND flow_id = ?2",
            &[int(FLOW_PARTITION), flow.blob(), text(format!("$.\"{key}\""))],
        )?
        .and_then(|row| row.text(0)))
}

/// Whether a top-level `raw_fields` member name is a namespaced tag key
/// (`^[a-z][a-z0-9_]*\.`...).
fn is_tag_key(key: &str) -> bool {
    key.split_once('.').is_some_and(|(prefix, _)| {
        prefix
            .as_bytes()
            .first()
            .is_some_and(u8::is_ascii_lowercase)
            && prefix
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    })
}

/// The flow with its tags and edge groups, or `None`.
pub fn describe_flow(db: &mut impl Db, flow_id: &str) -> Result<Option<FlowView>, EngineError> {
    let flow = Uuid16::parse("flow_id", flow_id)?;
    let Some(row) = db.first_row(
        "SELECT public_flow_state, graph_revision, created_at_ms, terminal_at_ms, \
             json_extract(raw_fields, '$.flow_kind'), json_extract(raw_fields, '$.namespace'), \
             CAST(json_extract(raw_fields, '$.node_count') AS INTEGER), \
             CAST(json_extract(raw_fields, '$.edge_count') AS INTEGER), \
             CAST(json_extract(raw_fields, '$.last_mutation_at_ms') AS INTEGER), \
             json_extract(raw_fields, '$.cancel_reason'), \
             json_extract(raw_fields, '$.cancellation_policy') \
         FROM ff_flow_core WHERE partition_key = ?1 AND flow_id = ?2",
        &[int(FLOW_PARTITION), flow.blob()],
    )?
    else {
        return Ok(None);
    };
    let tag_rows = db
        .query(
            "SELECT key, value FROM ff_flow_core, json_each(ff_flow_core.raw_fields) \
             WHERE partition_key = ?1 AND flow_id = ?2 AND type = 'text' ORDER BY key",
            &[int(FLOW_PARTITION), flow.blob()],
        )
        .map_err(crate::errors::storage)?;
    let tags = tag_rows
        .into_iter()
        .map(Row)
        .filter_map(|row| Some((row.text(0)?, row.text(1)?)))
        .filter(|(key, _)| is_tag_key(key))
        .collect();
    let group_rows = db
        .query(
            &format!(
                "SELECT downstream_eid, {} FROM ff_edge_group \
                 WHERE partition_key = ?1 AND flow_id = ?2 ORDER BY downstream_eid",
                Group::COLUMNS
            ),
            &[int(FLOW_PARTITION), flow.blob()],
        )
        .map_err(crate::errors::storage)?;
    let edge_groups = group_rows
        .into_iter()
        .map(Row)
        .map(|row| {
            let group = Group::from_row(&row, 1);
            Ok(EdgeGroupView {
                downstream_execution_id: member_text(&row, 0)?,
                total_deps: clamp_u32(group.counts.total()),
                satisfied_count: clamp_u32(group.counts.success),
                failed_count: clamp_u32(group.counts.fail),
                skipped_count: clamp_u32(group.counts.skip),
                running_count: clamp_u32(group.counts.running),
                group_state: group.state(),
                policy: group.policy,
            })
        })
        .collect::<Result<_, EngineError>>()?;
    let created_at = row.integer(2).unwrap_or(0);
    Ok(Some(FlowView {
        flow_id: flow.text(),
        flow_kind: row.text(4).unwrap_or_default(),
        namespace: row.text(5).unwrap_or_else(|| "default".into()),
        public_flow_state: row.text_or_empty(0),
        graph_revision: u64::try_from(row.integer(1).unwrap_or(0)).unwrap_or(0),
        node_count: clamp_u32(row.integer(6).unwrap_or(0)),
        edge_count: clamp_u32(row.integer(7).unwrap_or(0)),
        created_at,
        last_mutation_at: row.integer(8).unwrap_or(created_at),
        cancelled_at: row.integer(3),
        cancel_reason: row.text(9),
        cancellation_policy: row.text(10),
        tags,
        edge_groups,
    }))
}

/// Flows of `partition` with ids after `cursor`, at most `limit`, by id.
pub fn list_flows(
    db: &mut impl Db,
    partition: u16,
    cursor: Option<&str>,
    limit: u32,
) -> Result<FlowPage, EngineError> {
    let after = match cursor {
        Some(cursor) => Uuid16::parse("cursor", cursor)?.blob(),
        None => Value::Blob(Vec::new()),
    };
    let rows = db
        .query(
            "SELECT flow_id, created_at_ms, public_flow_state FROM ff_flow_core \
             WHERE partition_key = ?1 AND flow_id > ?2 ORDER BY flow_id LIMIT ?3",
            &[int(partition), after, int(i64::from(limit) + 1)],
        )
        .map_err(crate::errors::storage)?;
    let more = rows.len() > limit as usize;
    let flows: Vec<FlowSummary> = rows
        .into_iter()
        .take(limit as usize)
        .map(Row)
        .map(|row| {
            Ok(FlowSummary {
                flow_id: Uuid16::text_at(&row, 0, "ff_flow_core.flow_id")?,
                created_at: row.integer(1).unwrap_or(0),
                public_flow_state: row.text_or_empty(2),
            })
        })
        .collect::<Result<_, EngineError>>()?;
    let next_cursor = if more {
        flows.last().map(|flow| flow.flow_id.clone())
    } else {
        None
    };
    Ok(FlowPage { flows, next_cursor })
}

/// Whether the execution could run now. First match wins: `not_found`; `not_runnable`
/// (lifecycle not `runnable`); `owned`; `terminal` (a recorded terminal outcome); `eligible`
/// (no flow); then its edge group when it has one (impossible → `impossible`, pending →
/// `blocked_by_dependencies`, satisfied → `eligible`); otherwise its incoming edges that are
/// required (applied or resolved, or carrying `kind` `required`/`all_of`/`AllOf`): any whose
/// upstream ended without success → `impossible`, any whose upstream has not succeeded →
/// `blocked_by_dependencies`, else `eligible`.
pub fn evaluate_flow_eligibility(
    db: &mut impl Db,
    execution_id: &str,
) -> Result<String, EngineError> {
    let id = ExecutionRef::parse(execution_id)?;
    let Some(row) = db.first_row(
        "SELECT lifecycle_phase, ownership_state, \
             COALESCE(json_extract(raw_fields, '$.terminal_outcome'), 'none'), flow_id \
         FROM ff_exec_core WHERE partition_key = ?1 AND execution_id = ?2",
        &id.key(),
    )?
    else {
        return Ok("not_found".into());
    };
    let status = if row.text_or_empty(0) != "runnable" {
        "not_runnable"
    } else if row.text_or_empty(1) != "unowned" {
        "owned"
    } else if row.text_or_empty(2) != "none" {
        "terminal"
    } else if matches!(row.0.get(3), None | Some(Value::Null)) {
        "eligible"
    } else {
        let flow = row.0[3].clone();
        match Group::load(db, &flow, &id.blob())? {
            Some(group) => match group.state() {
                EdgeGroupState::Impossible => "impossible",
                EdgeGroupState::Satisfied => "eligible",
                EdgeGroupState::Pending | EdgeGroupState::Cancelled => "blocked_by_dependencies",
            },
            None => required_edges_status(db, &flow, &id)?,
        }
    };
    Ok(status.into())
}

/// The status from the required incoming edges of a downstream without a group (edges seeded
/// by hand, as upstream's tests do).
fn required_edges_status(
    db: &mut impl Db,
    flow: &Value,
    id: &ExecutionRef,
) -> Result<&'static str, EngineError> {
    let rows = db
        .query(
            "SELECT u.lifecycle_phase, u.public_state, json_extract(u.raw_fields, '$.terminal_outcome') \
             FROM ff_edge e LEFT JOIN ff_exec_core u \
               ON u.partition_key = e.partition_key AND u.execution_id = e.upstream_eid \
             WHERE e.partition_key = ?1 AND e.flow_id = ?2 AND e.downstream_eid = ?3 \
               AND (json_extract(e.policy, '$.kind') IN ('required', 'AllOf', 'all_of') \
                    OR json_extract(e.policy, '$.edge_state') IN ('applied', 'satisfied', 'impossible'))",
            &[int(FLOW_PARTITION), flow.clone(), id.blob()],
        )
        .map_err(crate::errors::storage)?;
    let mut blocked = false;
    for row in rows.into_iter().map(Row) {
        let terminal = matches!(row.text(0).as_deref(), Some("terminal" | "cancelled"));
        let outcome = match (row.text(2), row.text(1)) {
            (Some(recorded), _) if recorded != "none" => Some(recorded),
            (_, Some(public)) if terminal => Some(
                match public.as_str() {
                    "completed" => "success",
                    "cancelled" => "cancelled",
                    "skipped" => "skipped",
                    "expired" => "expired",
                    _ => "failed",
                }
                .to_owned(),
            ),
            _ => None,
        };
        match outcome.as_deref().map(Bucket::of) {
            Some(Bucket::Success) => {}
            Some(Bucket::Failure | Bucket::Skipped) => return Ok("impossible"),
            None => blocked = true,
        }
    }
    Ok(if blocked {
        "blocked_by_dependencies"
    } else {
        "eligible"
    })
}
