//! `ffwasm stats`: what a database holds, in numbers.

use std::path::Path;

use anyhow::Context;
use clap::Args;
use rusqlite::Connection;

use crate::database::{self, DatabaseArg};
use crate::table::{Table, fields};
use crate::{format, output};

/// `ffwasm stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// The database.
    #[command(flatten)]
    pub database: DatabaseArg,
}

/// Print the statistics of the database `args` names.
pub fn run(args: &StatsArgs) -> anyhow::Result<()> {
    let db = &args.database.db;
    let connection = database::open_read_only(db)?;
    let text = stats(&connection, db).with_context(|| format!("cannot read {}", db.display()))?;
    output::print(&text)
}

fn stats(connection: &Connection, path: &Path) -> anyhow::Result<String> {
    let count =
        |sql: &str| -> rusqlite::Result<i64> { connection.query_row(sql, [], |row| row.get(0)) };
    let schema_version = count("PRAGMA user_version")?;
    let executions = count("SELECT COUNT(*) FROM ff_exec_core")?;
    let attempts = count("SELECT COUNT(*) FROM ff_attempt")?;
    let retries = count(
        "SELECT COUNT(*) FROM ff_attempt WHERE json_extract(raw_fields, '$.attempt_type') = 'retry'",
    )?;
    let grants = count("SELECT COUNT(*) FROM ff_claim_grant")?;
    let completions = count("SELECT COUNT(*) FROM ff_completion_event")?;
    let undispatched =
        count("SELECT COUNT(*) FROM ff_completion_event WHERE dispatched_at_ms IS NULL")?;
    let (first_created, last_ended): (Option<i64>, Option<i64>) = connection.query_row(
        "SELECT MIN(created_at_ms), MAX(terminal_at_ms) FROM ff_exec_core",
        [],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    let (budgets, breaches, quota_policies) = if super::budgets::has_budget_tables(connection)? {
        (
            count("SELECT COUNT(*) FROM ff_budget_policy")?,
            count("SELECT COALESCE(SUM(breach_count), 0) FROM ff_budget_policy")?,
            count("SELECT COUNT(*) FROM ff_quota_policy")?,
        )
    } else {
        (0, 0, 0)
    };
    let size: u64 = ["", "-wal"]
        .iter()
        .filter_map(|suffix| std::fs::metadata(format!("{}{suffix}", path.display())).ok())
        .map(|metadata| metadata.len())
        .sum();

    let mut out = fields(&[
        (
            "database",
            format!(
                "{} ({}, schema version {schema_version})",
                path.display(),
                format::bytes(size)
            ),
        ),
        ("executions", executions.to_string()),
        ("attempts", format!("{attempts} ({retries} retries)")),
        ("claim grants", format!("{grants} outstanding")),
        (
            "completion events",
            format!("{completions} ({undispatched} not dispatched)"),
        ),
        (
            "budgets",
            format!("{budgets} ({breaches} reports refused at a hard limit)"),
        ),
        ("quota policies", quota_policies.to_string()),
        ("first created", format::maybe_timestamp(first_created)),
        ("last ended", format::maybe_timestamp(last_ended)),
    ]);
    out.push_str("\nExecutions by lane and state\n");
    out.push_str(&by_lane_and_state(connection)?);
    out.push_str("\nLease events\n");
    out.push_str(&lease_events(connection)?);
    Ok(out)
}

/// Executions by lane (rows) and public state (columns), with totals.
fn by_lane_and_state(connection: &Connection) -> anyhow::Result<String> {
    let mut statement = connection.prepare(
        "SELECT lane_id, public_state, COUNT(*) FROM ff_exec_core GROUP BY lane_id, public_state ORDER BY lane_id",
    )?;
    let counts: Vec<(String, String, i64)> = statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
        .collect::<Result<_, _>>()?;
    if counts.is_empty() {
        return Ok("(none)\n".to_owned());
    }
    let mut states: Vec<&str> = counts.iter().map(|(_, state, _)| state.as_str()).collect();
    states.sort_unstable();
    states.dedup();
    let mut lanes: Vec<&str> = counts.iter().map(|(lane, _, _)| lane.as_str()).collect();
    lanes.dedup();

    let mut header = vec!["lane"];
    header.extend(&states);
    header.push("total");
    let mut table = Table::new(&header).right(&(1..header.len()).collect::<Vec<_>>());
    let cell = |lane: Option<&str>, state: Option<&str>| -> i64 {
        counts
            .iter()
            .filter(|(l, s, _)| {
                lane.is_none_or(|lane| lane == l) && state.is_none_or(|state| state == s)
            })
            .map(|(_, _, n)| n)
            .sum()
    };
    for lane in lanes
        .iter()
        .map(|lane| Some(*lane))
        .chain(std::iter::once(None))
    {
        let mut row = vec![lane.unwrap_or("total").to_owned()];
        row.extend(
            states
                .iter()
                .map(|state| cell(lane, Some(state)).to_string()),
        );
        row.push(cell(lane, None).to_string());
        table.row(row);
    }
    Ok(table.render())
}

/// Lease events by type.
fn lease_events(connection: &Connection) -> anyhow::Result<String> {
    let mut statement =
        connection.prepare("SELECT event_type, COUNT(*) FROM ff_lease_event GROUP BY event_type ORDER BY COUNT(*) DESC")?;
    let mut table = Table::new(&["event", "count"]).right(&[1]);
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        table.row(vec![row.get(0)?, row.get::<_, i64>(1)?.to_string()]);
    }
    Ok(if table.is_empty() {
        "(none)\n".to_owned()
    } else {
        table.render()
    })
}
