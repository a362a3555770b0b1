//! `ffwasm flows`: the flows as a table (kind, state, members by state, edges), and the flow
//! view `ffwasm show <flow-id>` prints (its members, edges and edge groups).

use anyhow::Context;
use clap::Args;
use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;

use crate::database::{self, DatabaseArg};
use crate::ids::execution_id;
use crate::table::{Table, fields};
use crate::{format, output};

/// `ffwasm flows`.
#[derive(Debug, Args)]
pub struct FlowsArgs {
    /// The database.
    #[command(flatten)]
    pub database: DatabaseArg,
    /// Show at most this many flows (the most recent).
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub limit: u32,
}

/// Print the flows.
pub fn run(args: &FlowsArgs) -> anyhow::Result<()> {
    let connection = database::open_read_only(&args.database.db)?;
    let text = list(&connection, args.limit)
        .with_context(|| format!("cannot read {}", args.database.db.display()))?;
    output::print(&text)
}

/// Whether the database has the flow tables (older schemas do not).
pub fn has_flows(connection: &Connection) -> anyhow::Result<bool> {
    Ok(connection
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'ff_flow_core'",
            [],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// The flows table, most recent first.
fn list(connection: &Connection, limit: u32) -> anyhow::Result<String> {
    if !has_flows(connection)? {
        return Ok("No flows (this database predates flows).\n".to_owned());
    }
    let mut statement = connection.prepare(
        "SELECT flow_id, COALESCE(json_extract(raw_fields, '$.flow_kind'), ''), public_flow_state, \
             (SELECT COUNT(*) FROM ff_exec_core x WHERE x.partition_key = 0 AND x.flow_id = f.flow_id), \
             (SELECT COUNT(*) FROM ff_edge e WHERE e.partition_key = 0 AND e.flow_id = f.flow_id), \
             created_at_ms \
         FROM ff_flow_core f WHERE partition_key = 0 \
         ORDER BY created_at_ms DESC, flow_id LIMIT ?1",
    )?;
    let mut table = Table::new(&[
        "flow",
        "kind",
        "state",
        "members",
        "edges",
        "members by state",
        "created (UTC)",
    ])
    .right(&[3, 4]);
    let mut rows = statement.query([limit])?;
    while let Some(row) = rows.next()? {
        let flow: Vec<u8> = row.get(0)?;
        table.row(vec![
            uuid_of(&flow),
            row.get(1)?,
            row.get(2)?,
            row.get::<_, i64>(3)?.to_string(),
            row.get::<_, i64>(4)?.to_string(),
            member_states(connection, &flow)?,
            format::timestamp(row.get(5)?),
        ]);
    }
    if table.is_empty() {
        return Ok("No flows.\n".to_owned());
    }
    Ok(table.render())
}

/// `2 completed, 1 skipped, ...`: the flow's members counted by public state.
fn member_states(connection: &Connection, flow: &[u8]) -> anyhow::Result<String> {
    let mut statement = connection.prepare(
        "SELECT public_state, COUNT(*) FROM ff_exec_core WHERE partition_key = 0 AND flow_id = ?1 \
         GROUP BY public_state ORDER BY COUNT(*) DESC, public_state",
    )?;
    let counts: Vec<String> = statement
        .query_map([flow], |row| {
            Ok(format!(
                "{} {}",
                row.get::<_, i64>(1)?,
                row.get::<_, String>(0)?
            ))
        })?
        .collect::<Result<_, _>>()?;
    Ok(counts.join(", "))
}

/// A stored 16-byte id as its hyphenated text.
fn uuid_of(blob: &[u8]) -> String {
    Uuid::from_slice(blob).map_or_else(
        |_| format!("<malformed {} byte id>", blob.len()),
        |uuid| uuid.to_string(),
    )
}

/// Whether `uuid` names a flow.
pub fn is_flow(connection: &Connection, uuid: &Uuid) -> anyhow::Result<bool> {
    if !has_flows(connection)? {
        return Ok(false);
    }
    Ok(connection
        .query_row(
            "SELECT 1 FROM ff_flow_core WHERE partition_key = 0 AND flow_id = ?1",
            [uuid.as_bytes()],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// The flow: its fields, its members, its edges and its edge groups.
pub fn show(connection: &Connection, uuid: &Uuid) -> anyhow::Result<String> {
    let flow = uuid.as_bytes().as_slice();
    let header = connection.query_row(
        "SELECT COALESCE(json_extract(raw_fields, '$.flow_kind'), ''), \
             COALESCE(json_extract(raw_fields, '$.namespace'), ''), public_flow_state, graph_revision, \
             created_at_ms, terminal_at_ms, COALESCE(json_extract(raw_fields, '$.cancellation_policy'), '') \
         FROM ff_flow_core WHERE partition_key = 0 AND flow_id = ?1",
        [flow],
        |row| {
            Ok(vec![
                ("flow", uuid.to_string()),
                ("kind", row.get(0)?),
                ("namespace", row.get(1)?),
                ("state", row.get(2)?),
                ("graph revision", row.get::<_, i64>(3)?.to_string()),
                ("created", format::timestamp(row.get(4)?)),
                ("cancelled", format::maybe_timestamp(row.get(5)?)),
                ("cancel policy", row.get(6)?),
            ])
        },
    )?;
    Ok(format!(
        "{}\nMembers\n{}\nEdges\n{}\nEdge groups\n{}",
        fields(&header),
        members(connection, flow)?,
        edges(connection, flow, None)?,
        groups(connection, flow)?,
    ))
}

/// The flow's members: id, public state, how many edges they wait on and gate.
fn members(connection: &Connection, flow: &[u8]) -> anyhow::Result<String> {
    let mut statement = connection.prepare(
        "SELECT x.execution_id, COALESCE(json_extract(x.raw_fields, '$.execution_kind'), ''), \
             x.public_state, x.lane_id, \
             (SELECT COUNT(*) FROM ff_edge e WHERE e.partition_key = 0 AND e.flow_id = ?1 \
                  AND e.downstream_eid = x.execution_id), \
             (SELECT COUNT(*) FROM ff_edge e WHERE e.partition_key = 0 AND e.flow_id = ?1 \
                  AND e.upstream_eid = x.execution_id) \
         FROM ff_exec_core x WHERE x.partition_key = 0 AND x.flow_id = ?1 ORDER BY x.created_at_ms, x.execution_id",
    )?;
    let mut table = Table::new(&["execution", "state", "lane", "waits on", "gates"]).right(&[3, 4]);
    let mut rows = statement.query([flow])?;
    while let Some(row) = rows.next()? {
        table.row(vec![
            execution_id(0, &row.get::<_, Vec<u8>>(0)?),
            row.get(1)?,
            row.get(2)?,
            row.get(3)?,
            row.get::<_, i64>(4)?.to_string(),
            row.get::<_, i64>(5)?.to_string(),
        ]);
    }
    Ok(or_none(&table))
}

/// The flow's edges (only those touching `execution` when given): upstream → downstream and the
/// edge's state.
pub fn edges(
    connection: &Connection,
    flow: &[u8],
    execution: Option<&[u8]>,
) -> anyhow::Result<String> {
    let mut statement = connection.prepare(
        "SELECT edge_id, upstream_eid, downstream_eid, \
             COALESCE(json_extract(policy, '$.edge_state'), 'pending'), \
             COALESCE(json_extract(policy, '$.dependency_kind'), '') \
         FROM ff_edge WHERE partition_key = 0 AND flow_id = ?1 \
           AND (?2 IS NULL OR upstream_eid = ?2 OR downstream_eid = ?2) \
         ORDER BY json_extract(policy, '$.created_at_ms'), edge_id",
    )?;
    let mut table = Table::new(&["edge", "upstream", "downstream", "state", "kind"]);
    let mut rows = statement.query(params![flow, execution])?;
    while let Some(row) = rows.next()? {
        table.row(vec![
            uuid_of(&row.get::<_, Vec<u8>>(0)?),
            execution_id(0, &row.get::<_, Vec<u8>>(1)?),
            execution_id(0, &row.get::<_, Vec<u8>>(2)?),
            row.get(3)?,
            row.get(4)?,
        ]);
    }
    Ok(or_none(&table))
}

/// The flow's edge groups: downstream, policy and counters.
fn groups(connection: &Connection, flow: &[u8]) -> anyhow::Result<String> {
    let mut statement = connection.prepare(
        "SELECT downstream_eid, COALESCE(json_extract(policy, '$.kind'), 'all_of'), \
             json_extract(policy, '$.k'), COALESCE(json_extract(policy, '$.on_satisfied'), ''), \
             success_count, fail_count, skip_count, running_count \
         FROM ff_edge_group WHERE partition_key = 0 AND flow_id = ?1 ORDER BY downstream_eid",
    )?;
    let mut table = Table::new(&[
        "downstream",
        "policy",
        "succeeded",
        "failed",
        "skipped",
        "unresolved",
    ])
    .right(&[2, 3, 4, 5]);
    let mut rows = statement.query([flow])?;
    while let Some(row) = rows.next()? {
        let kind: String = row.get(1)?;
        let policy = match (kind.as_str(), row.get::<_, Option<i64>>(2)?) {
            ("quorum", Some(k)) => format!("quorum {k}"),
            (kind, _) => kind.to_owned(),
        };
        let on_satisfied: String = row.get(3)?;
        let policy = if on_satisfied.is_empty() {
            policy
        } else {
            format!("{policy}, {on_satisfied}")
        };
        table.row(vec![
            execution_id(0, &row.get::<_, Vec<u8>>(0)?),
            policy,
            row.get::<_, i64>(4)?.to_string(),
            row.get::<_, i64>(5)?.to_string(),
            row.get::<_, i64>(6)?.to_string(),
            row.get::<_, i64>(7)?.to_string(),
        ]);
    }
    Ok(or_none(&table))
}

/// The table, or `(none)`.
fn or_none(table: &Table) -> String {
    if table.is_empty() {
        "(none)\n".to_owned()
    } else {
        table.render()
    }
}
