//! `ffwasm workers`: the worker registry as a table, by namespace and instance.

use anyhow::Context;
use clap::Args;
use rusqlite::{Connection, OptionalExtension};

use crate::database::{self, DatabaseArg};
use crate::table::Table;
use crate::{format, output};

/// `ffwasm workers`.
#[derive(Debug, Args)]
pub struct WorkersArgs {
    /// The database.
    #[command(flatten)]
    pub database: DatabaseArg,
    /// Only workers of this namespace.
    #[arg(long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
    /// Also list registrations that lapsed (no heartbeat within their TTL) but were not swept.
    #[arg(long)]
    pub all: bool,
}

/// Print the workers `args` select.
pub fn run(args: &WorkersArgs) -> anyhow::Result<()> {
    let connection = database::open_read_only(&args.database.db)?;
    let now = ff_core::types::TimestampMs::now().0;
    list(&connection, args, now)
        .with_context(|| format!("cannot read {}", args.database.db.display()))
}

fn list(connection: &Connection, args: &WorkersArgs, now: i64) -> anyhow::Result<()> {
    let has_registry = connection
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'ff_worker_registry'",
            [],
            |_| Ok(()),
        )
        .optional()?
        .is_some();
    if !has_registry {
        return output::println("No workers (this database predates the worker registry).");
    }
    let mut statement = connection.prepare(
        "SELECT namespace, worker_instance_id, worker_id, \
             (SELECT group_concat(value, ' ') FROM (SELECT value FROM json_each(lanes) ORDER BY value)), \
             (SELECT group_concat(value, ' ') FROM (SELECT value FROM json_each(capabilities) ORDER BY value)), \
             last_heartbeat_ms, last_heartbeat_ms + liveness_ttl_ms \
         FROM ff_worker_registry \
         WHERE (?1 IS NULL OR namespace = ?1) AND (?2 OR last_heartbeat_ms + liveness_ttl_ms > ?3) \
         ORDER BY namespace, worker_instance_id",
    )?;
    let mut table = Table::new(&[
        "namespace",
        "instance",
        "worker",
        "lanes",
        "capabilities",
        "last heartbeat (UTC)",
        "status",
    ]);
    let mut rows = statement.query(rusqlite::params![args.namespace, args.all, now])?;
    while let Some(row) = rows.next()? {
        let expires: i64 = row.get(6)?;
        table.row(vec![
            row.get(0)?,
            row.get(1)?,
            row.get(2)?,
            row.get::<_, Option<String>>(3)?.unwrap_or_default(),
            row.get::<_, Option<String>>(4)?.unwrap_or_default(),
            format::timestamp(row.get(5)?),
            if expires > now { "live" } else { "lapsed" }.to_owned(),
        ]);
    }
    if table.is_empty() {
        let scope = args
            .namespace
            .as_deref()
            .map_or(String::new(), |namespace| {
                format!(" in namespace {namespace}")
            });
        let hint = if args.all {
            ""
        } else {
            " (--all also lists lapsed ones)"
        };
        return output::println(&format!("No live workers{scope}{hint}."));
    }
    output::print(&table.render())
}
