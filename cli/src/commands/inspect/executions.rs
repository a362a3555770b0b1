//! `ffwasm executions`: executions as a table, most recent first, filtered by lane and state.

use anyhow::Context;
use clap::{Args, ValueEnum};
use rusqlite::{Connection, params_from_iter};

use crate::database::{self, DatabaseArg};
use crate::ids::execution_id;
use crate::table::Table;
use crate::{format, output};

/// `ffwasm executions`.
#[derive(Debug, Args)]
pub struct ExecutionsArgs {
    /// The database.
    #[command(flatten)]
    pub database: DatabaseArg,
    /// Only executions of this lane (repeat for several).
    #[arg(long, value_name = "LANE")]
    pub lane: Vec<String>,
    /// Only executions in this public state (repeat for several).
    #[arg(long, value_name = "STATE")]
    pub state: Vec<PublicState>,
    /// At most this many rows, most recent first (0: all).
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub limit: u32,
}

/// ff-core's public execution states, as the database stores them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum PublicState {
    /// Eligible and waiting for a worker.
    Waiting,
    /// Waiting for a time (a retry's backoff, or a delayed start).
    Delayed,
    /// Blocked by a rate limit.
    RateLimited,
    /// Blocked on child executions.
    WaitingChildren,
    /// Leased to a worker.
    Active,
    /// Paused until a signal.
    Suspended,
    /// Resumed, waiting to be claimed again.
    Resumable,
    /// Finished successfully.
    Completed,
    /// Finished unsuccessfully.
    Failed,
    /// Cancelled.
    Cancelled,
    /// Past its deadline.
    Expired,
    /// Skipped.
    Skipped,
}

impl PublicState {
    /// The literal stored in `ff_exec_core.public_state`.
    pub fn literal(self) -> String {
        self.to_possible_value()
            .map(|value| value.get_name().to_owned())
            .unwrap_or_default()
    }
}

/// Print the executions `args` select.
pub fn run(args: &ExecutionsArgs) -> anyhow::Result<()> {
    let connection = database::open_read_only(&args.database.db)?;
    list(&connection, args).with_context(|| format!("cannot read {}", args.database.db.display()))
}

fn list(connection: &Connection, args: &ExecutionsArgs) -> anyhow::Result<()> {
    let states: Vec<String> = args.state.iter().map(|state| state.literal()).collect();
    let (filter, params) = filter(&args.lane, &states);

    let matching: i64 = connection.query_row(
        &format!("SELECT COUNT(*) FROM ff_exec_core AS e {filter}"),
        params_from_iter(&params),
        |row| row.get(0),
    )?;
    let limit = if args.limit == 0 {
        -1
    } else {
        i64::from(args.limit)
    };
    let mut statement = connection.prepare(&format!(
        "SELECT e.partition_key, e.execution_id, e.lane_id, e.public_state, \
             (SELECT COUNT(*) FROM ff_attempt AS a \
                 WHERE a.partition_key = e.partition_key AND a.execution_id = e.execution_id), \
             e.created_at_ms, e.terminal_at_ms \
         FROM ff_exec_core AS e {filter} \
         ORDER BY e.created_at_ms DESC, e.partition_key, e.execution_id LIMIT {limit}"
    ))?;
    let mut table = Table::new(&[
        "execution",
        "lane",
        "state",
        "attempts",
        "created (UTC)",
        "took",
    ])
    .right(&[3, 5]);
    let mut rows = statement.query(params_from_iter(&params))?;
    while let Some(row) = rows.next()? {
        let created: i64 = row.get(5)?;
        table.row(vec![
            execution_id(row.get(0)?, &row.get::<_, Vec<u8>>(1)?),
            row.get(2)?,
            row.get(3)?,
            row.get::<_, i64>(4)?.to_string(),
            format::timestamp(created),
            format::elapsed_ms(Some(created), row.get(6)?),
        ]);
    }

    if table.is_empty() {
        return output::println(&format!("No executions{}.", describe(&args.lane, &states)));
    }
    output::print(&table.render())?;
    let shown = if args.limit == 0 {
        matching
    } else {
        matching.min(i64::from(args.limit))
    };
    if shown < matching {
        output::println(&format!(
            "{shown} of {matching} executions{}, most recent first (--limit 0 shows all)",
            describe(&args.lane, &states)
        ))?;
    }
    Ok(())
}

/// The `WHERE` clause and its parameters for the lane and state filters.
fn filter(lanes: &[String], states: &[String]) -> (String, Vec<String>) {
    let mut clauses = Vec::new();
    let mut params = Vec::new();
    for (column, values) in [("lane_id", lanes), ("public_state", states)] {
        if !values.is_empty() {
            let first = params.len() + 1;
            let placeholders: Vec<String> = (first..first + values.len())
                .map(|n| format!("?{n}"))
                .collect();
            clauses.push(format!("e.{column} IN ({})", placeholders.join(", ")));
            params.extend(values.iter().cloned());
        }
    }
    let filter = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    (filter, params)
}

/// ` in lane email, state failed` for the filters in use.
fn describe(lanes: &[String], states: &[String]) -> String {
    let mut parts = Vec::new();
    if !lanes.is_empty() {
        parts.push(format!("lane {}", lanes.join(" or ")));
    }
    if !states.is_empty() {
        parts.push(format!("state {}", states.join(" or ")));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" in {}", parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_literals_are_the_stored_ones() {
        assert_eq!(PublicState::WaitingChildren.literal(), "waiting_children");
        assert_eq!(PublicState::Completed.literal(), "completed");
    }

    #[test]
    fn filters_number_their_parameters_in_order() {
        let (sql, params) = filter(&["a".into(), "b".into()], &["failed".into()]);
        assert_eq!(
            sql,
            "WHERE e.lane_id IN (?1, ?2) AND e.public_state IN (?3)"
        );
        assert_eq!(params, ["a", "b", "failed"]);
        assert_eq!(filter(&[], &[]).0, "");
        assert_eq!(
            describe(&["a".into()], &["failed".into(), "completed".into()]),
            " in lane a, state failed or completed"
        );
    }
}
