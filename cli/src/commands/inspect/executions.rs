//! `ffwasm executions`: executions as a table, most recent first, filtered by lane and state;
//! or, with `--partition` / `--after`, one partition in execution-id order a page at a time, as
//! the backend's `list_executions` pages it (served by the primary key; the last line names the
//! `--after` of the next page).

use anyhow::Context;
use clap::{Args, ValueEnum};
use rusqlite::{Connection, params_from_iter};

use crate::database::{self, DatabaseArg};
use crate::ids::{ExecutionKey, execution_id};
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
    /// Page through this partition in execution-id order (`list_executions`' order) instead.
    #[arg(long, value_name = "N")]
    pub partition: Option<u16>,
    /// Page mode: start after this execution (`{fp:N}:<uuid>`, the previous page's last line);
    /// its partition is the one paged.
    #[arg(long, value_name = "EXECUTION")]
    pub after: Option<ExecutionKey>,
}

impl ExecutionsArgs {
    /// The partition and the cursor (its UUID) of page mode, `None` outside it.
    fn page(&self) -> anyhow::Result<Option<(u16, Option<uuid::Uuid>)>> {
        match (self.partition, self.after) {
            (None, None) => Ok(None),
            (partition, Some(after)) => {
                let Some(own) = after.partition else {
                    anyhow::bail!("--after needs the full id {{fp:N}}:{}", after.uuid);
                };
                if partition.is_some_and(|partition| partition != own) {
                    anyhow::bail!(
                        "--after {after} is not in --partition {}",
                        partition.unwrap_or(own)
                    );
                }
                Ok(Some((own, Some(after.uuid))))
            }
            (Some(partition), None) => Ok(Some((partition, None))),
        }
    }
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
    if let Some((partition, after)) = args.page()? {
        return page(connection, args, &states, partition, after);
    }
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
        "SELECT {COLUMNS} FROM ff_exec_core AS e {filter} \
         ORDER BY e.created_at_ms DESC, e.partition_key, e.execution_id LIMIT {limit}"
    ))?;
    let mut table = execution_table();
    let mut rows = statement.query(params_from_iter(&params))?;
    while let Some(row) = rows.next()? {
        table.row(execution_row(row)?);
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

/// The columns every listing selects, over `ff_exec_core AS e`.
const COLUMNS: &str = "e.partition_key, e.execution_id, e.lane_id, e.public_state, \
     (SELECT COUNT(*) FROM ff_attempt AS a \
         WHERE a.partition_key = e.partition_key AND a.execution_id = e.execution_id), \
     e.created_at_ms, e.terminal_at_ms";

/// The table both listings print.
fn execution_table() -> Table {
    Table::new(&[
        "execution",
        "lane",
        "state",
        "attempts",
        "created (UTC)",
        "took",
    ])
    .right(&[3, 5])
}

/// One table row from a row of [`COLUMNS`].
fn execution_row(row: &rusqlite::Row<'_>) -> anyhow::Result<Vec<String>> {
    let created: i64 = row.get(5)?;
    Ok(vec![
        execution_id(row.get(0)?, &row.get::<_, Vec<u8>>(1)?),
        row.get(2)?,
        row.get(3)?,
        row.get::<_, i64>(4)?.to_string(),
        format::timestamp(created),
        format::elapsed_ms(Some(created), row.get(6)?),
    ])
}

/// Page mode: `partition`'s executions after `after`, in id order, at most `--limit` (0: all),
/// and the next page's `--after` when more follow.
fn page(
    connection: &Connection,
    args: &ExecutionsArgs,
    states: &[String],
    partition: u16,
    after: Option<uuid::Uuid>,
) -> anyhow::Result<()> {
    let (filter, params) = filter(&args.lane, states);
    let first = params.len() + 1;
    let conditions = format!(
        "{} e.partition_key = ?{first} AND e.execution_id > ?{}",
        if filter.is_empty() { "WHERE" } else { " AND" },
        first + 1
    );
    let cursor = after
        .map(|uuid| uuid.as_bytes().to_vec())
        .unwrap_or_default();
    let limit = if args.limit == 0 {
        -1
    } else {
        i64::from(args.limit) + 1
    };
    let mut statement = connection.prepare(&format!(
        "SELECT {COLUMNS} FROM ff_exec_core AS e {filter}{conditions} \
         ORDER BY e.execution_id LIMIT {limit}"
    ))?;
    let mut bound: Vec<rusqlite::types::Value> = params
        .into_iter()
        .map(rusqlite::types::Value::Text)
        .collect();
    bound.push(rusqlite::types::Value::Integer(i64::from(partition)));
    bound.push(rusqlite::types::Value::Blob(cursor));
    let mut table = execution_table();
    let mut rows = statement.query(params_from_iter(&bound))?;
    let mut shown = 0;
    let mut more = false;
    let mut last = String::new();
    while let Some(row) = rows.next()? {
        if args.limit != 0 && shown == args.limit {
            more = true;
            break;
        }
        let cells = execution_row(row)?;
        last.clone_from(&cells[0]);
        table.row(cells);
        shown += 1;
    }
    if table.is_empty() {
        return output::println(&format!(
            "No executions in partition {partition}{}.",
            describe(&args.lane, states)
        ));
    }
    output::print(&table.render())?;
    if more {
        output::println(&format!("next page: --after {last}"))?;
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
