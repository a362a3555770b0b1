//! `ffwasm budgets`: budgets (one row per dimension: usage against the limits) and quota
//! policies (limits and admitted executions).

use anyhow::Context;
use clap::Args;
use rusqlite::Connection;

use crate::database::{self, DatabaseArg};
use crate::table::Table;
use crate::{format, output};

/// `ffwasm budgets`.
#[derive(Debug, Args)]
pub struct BudgetsArgs {
    /// The database.
    #[command(flatten)]
    pub database: DatabaseArg,
}

/// Print the budgets and quota policies of the database `args` names.
pub fn run(args: &BudgetsArgs) -> anyhow::Result<()> {
    let db = &args.database.db;
    let connection = database::open_read_only(db)?;
    let text = budgets(&connection).with_context(|| format!("cannot read {}", db.display()))?;
    output::print(&text)
}

/// Whether the database has the budget tables (schema version 5 and later).
pub fn has_budget_tables(connection: &Connection) -> rusqlite::Result<bool> {
    connection.query_row(
        "SELECT COUNT(*) = 2 FROM sqlite_master WHERE type = 'table' \
             AND name IN ('ff_budget_policy', 'ff_quota_policy')",
        [],
        |row| row.get(0),
    )
}

fn budgets(connection: &Connection) -> anyhow::Result<String> {
    if !has_budget_tables(connection)? {
        return Ok("Budgets\n(none: this database predates budgets)\n".to_owned());
    }
    let mut out = String::from("Budgets\n");
    out.push_str(&budget_table(connection)?);
    out.push_str("\nQuota policies\n");
    out.push_str(&quota_table(connection)?);
    Ok(out)
}

/// One row per budget dimension (limits from the policy document, usage from the counters);
/// a budget without dimensions gets one row of its own.
fn budget_table(connection: &Connection) -> anyhow::Result<String> {
    let mut statement = connection.prepare(
        "WITH dims AS ( \
             SELECT p.budget_id, d.key AS dimension FROM ff_budget_policy AS p, \
                 json_each(p.policy_json, '$.hard_limits') AS d \
             WHERE json_valid(p.policy_json) \
             UNION SELECT budget_id, dimensions_key FROM ff_budget_usage WHERE dimensions_key <> '_init') \
         SELECT p.budget_id, p.scope_type || ':' || p.scope_id, dims.dimension, \
             coalesce(u.current_value, 0), \
             CASE WHEN json_valid(p.policy_json) THEN json_extract(p.policy_json, '$.hard_limits.' || json_quote(dims.dimension)) END, \
             CASE WHEN json_valid(p.policy_json) THEN json_extract(p.policy_json, '$.soft_limits.' || json_quote(dims.dimension)) END, \
             p.breach_count, p.soft_breach_count, p.next_reset_at_ms \
         FROM ff_budget_policy AS p \
         LEFT JOIN dims ON dims.budget_id = p.budget_id \
         LEFT JOIN ff_budget_usage AS u ON u.budget_id = p.budget_id AND u.dimensions_key = dims.dimension \
         ORDER BY p.created_at_ms, p.budget_id, dims.dimension",
    )?;
    let mut table = Table::new(&[
        "budget",
        "scope",
        "dimension",
        "usage",
        "hard",
        "soft",
        "breaches",
        "soft breaches",
        "next reset",
    ])
    .right(&[3, 4, 5, 6, 7]);
    let limit = |value: Option<i64>| match value {
        None | Some(0) => "-".to_owned(),
        Some(limit) => limit.to_string(),
    };
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        table.row(vec![
            row.get(0)?,
            row.get(1)?,
            row.get::<_, Option<String>>(2)?
                .unwrap_or_else(|| "-".to_owned()),
            row.get::<_, i64>(3)?.to_string(),
            limit(row.get(4)?),
            limit(row.get(5)?),
            row.get::<_, i64>(6)?.to_string(),
            row.get::<_, i64>(7)?.to_string(),
            format::maybe_timestamp(row.get(8)?),
        ]);
    }
    Ok(if table.is_empty() {
        "(none)\n".to_owned()
    } else {
        table.render()
    })
}

/// One row per quota policy.
fn quota_table(connection: &Connection) -> anyhow::Result<String> {
    let mut statement = connection.prepare(
        "SELECT quota_policy_id, requests_per_window_seconds, max_requests_per_window, \
             active_concurrency_cap, active_concurrency \
         FROM ff_quota_policy ORDER BY created_at_ms, quota_policy_id",
    )?;
    let mut table = Table::new(&[
        "quota policy",
        "window s",
        "max per window",
        "cap",
        "active",
    ])
    .right(&[1, 2, 3, 4]);
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        table.row(vec![
            row.get(0)?,
            row.get::<_, i64>(1)?.to_string(),
            row.get::<_, i64>(2)?.to_string(),
            row.get::<_, i64>(3)?.to_string(),
            row.get::<_, i64>(4)?.to_string(),
        ]);
    }
    Ok(if table.is_empty() {
        "(none)\n".to_owned()
    } else {
        table.render()
    })
}
