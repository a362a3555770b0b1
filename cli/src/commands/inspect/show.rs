//! `ffwasm show <execution-id>`: one execution, its attempts, its stream frames, its lease
//! history, its completion events, its suspension, waitpoints and signals, and its flow edges;
//! `ffwasm show <flow-id>`: a flow's members, edges and edge groups.

use anyhow::{Context, bail};
use clap::Args;
use rusqlite::{Connection, OptionalExtension, params};

use crate::database::{self, DatabaseArg};
use crate::ids::{ExecutionKey, execution_id};
use crate::table::{Table, fields};
use crate::{format, output};

/// `ffwasm show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The database.
    #[command(flatten)]
    pub database: DatabaseArg,
    /// The execution: `{fp:N}:<uuid>` as the other commands print it, or just the UUID; or a
    /// flow's UUID (as `ffwasm flows` prints it).
    #[arg(value_name = "EXECUTION-OR-FLOW-ID")]
    pub execution: ExecutionKey,
}

/// Print the execution `args` name.
pub fn run(args: &ShowArgs) -> anyhow::Result<()> {
    let connection = database::open_read_only(&args.database.db)?;
    let db = args.database.db.display();
    if args.execution.partition.is_none()
        && super::flows::is_flow(&connection, &args.execution.uuid)
            .with_context(|| format!("cannot read {db}"))?
    {
        let text = super::flows::show(&connection, &args.execution.uuid)
            .with_context(|| format!("cannot read {db}"))?;
        return output::print(&text);
    }
    let partition =
        find(&connection, &args.execution).with_context(|| format!("cannot read {db}"))?;
    let Some(partition) = partition else {
        bail!("no execution or flow {} in {db}", args.execution);
    };
    let text = show(&connection, partition, &args.execution)
        .with_context(|| format!("cannot read {db}"))?;
    output::print(&text)
}

/// The partition of the execution `key` names, if it exists.
fn find(connection: &Connection, key: &ExecutionKey) -> anyhow::Result<Option<i64>> {
    let mut statement = connection.prepare(
        "SELECT partition_key FROM ff_exec_core WHERE execution_id = ?1 AND (?2 IS NULL OR partition_key = ?2)",
    )?;
    let partitions: Vec<i64> = statement
        .query_map(params![key.uuid.as_bytes(), key.partition], |row| {
            row.get(0)
        })?
        .collect::<Result<_, _>>()?;
    match partitions.as_slice() {
        [] => Ok(None),
        [partition] => Ok(Some(*partition)),
        several => bail!(
            "{} names executions in partitions {several:?}; give it as {{fp:N}}:{}",
            key.uuid,
            key.uuid
        ),
    }
}

/// The execution, its attempts, its lease history, its completion events, its suspension,
/// waitpoints and signals, and the signal deliveries it received.
fn show(connection: &Connection, partition: i64, key: &ExecutionKey) -> anyhow::Result<String> {
    let blob = key.uuid.as_bytes().as_slice();
    Ok(format!(
        "{}\nAttempts\n{}\nStream frames\n{}\nLease history\n{}\nCompletion events\n{}\nSuspension\n{}\nWaitpoints\n{}\nSignals\n{}\nSignal deliveries\n{}",
        execution(connection, partition, blob)?,
        attempts(connection, partition, blob)?,
        stream_frames(connection, partition, blob)?,
        lease_history(connection, partition, &key.uuid.to_string())?,
        completions(connection, partition, blob)?,
        suspension(connection, partition, blob)?,
        waitpoints(connection, partition, blob)?,
        signals(connection, partition, blob)?,
        signal_deliveries(connection, partition, &key.uuid.to_string())?,
    ) + &flow_edges(connection, partition, blob)?)
}

/// When the execution is a flow member: its flow and the edges into and out of it.
fn flow_edges(connection: &Connection, partition: i64, blob: &[u8]) -> anyhow::Result<String> {
    if !super::flows::has_flows(connection)? {
        return Ok(String::new());
    }
    let flow: Option<Vec<u8>> = connection.query_row(
        "SELECT flow_id FROM ff_exec_core WHERE partition_key = ?1 AND execution_id = ?2",
        params![partition, blob],
        |row| row.get(0),
    )?;
    let Some(flow) = flow else {
        return Ok(String::new());
    };
    let flow_text =
        uuid::Uuid::from_slice(&flow).map_or_else(|_| "?".to_owned(), |uuid| uuid.to_string());
    Ok(format!(
        "\nFlow {flow_text} (ffwasm show {flow_text} shows all of it)\n{}",
        super::flows::edges(connection, &flow, Some(blob))?
    ))
}

/// Whether the database has `table` (older schemas have no suspension tables).
fn has_table(connection: &Connection, table: &str) -> anyhow::Result<bool> {
    Ok(connection
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [table],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// The execution's current (or last) suspension, as `label  value` lines.
fn suspension(connection: &Connection, partition: i64, blob: &[u8]) -> anyhow::Result<String> {
    if !has_table(connection, "ff_suspension_current")? {
        return Ok("(none)\n".to_owned());
    }
    let row = connection
        .query_row(
            "SELECT lower(hex(suspension_id)), suspended_at_ms, timeout_at_ms, COALESCE(reason_code, ''), \
                 COALESCE(timeout_behavior, ''), condition, \
                 (SELECT count(*) FROM json_each(member_map) AS k, json_each(k.value)) \
             FROM ff_suspension_current WHERE partition_key = ?1 AND execution_id = ?2",
            params![partition, blob],
            |row| {
                Ok(vec![
                    ("suspension", uuid_text(&row.get::<_, String>(0)?)),
                    ("suspended", format::timestamp(row.get(1)?)),
                    ("timeout", format::maybe_timestamp(row.get(2)?)),
                    ("reason", row.get(3)?),
                    ("on timeout", row.get(4)?),
                    ("condition", row.get(5)?),
                    ("signals", row.get::<_, i64>(6)?.to_string()),
                ])
            },
        )
        .optional()?;
    Ok(match row {
        None => "(none)\n".to_owned(),
        Some(lines) => fields(&lines),
    })
}

/// The execution's waitpoints, by creation time. Tokens are bearer credentials: only their kid
/// is shown.
fn waitpoints(connection: &Connection, partition: i64, blob: &[u8]) -> anyhow::Result<String> {
    if !has_table(connection, "ff_waitpoint_pending")? {
        return Ok("(none)\n".to_owned());
    }
    let mut statement = connection.prepare(
        "SELECT lower(hex(waitpoint_id)), waitpoint_key, state, created_at_ms, expires_at_ms, token_kid, \
             required_signal_names \
         FROM ff_waitpoint_pending WHERE partition_key = ?1 AND execution_id = ?2 \
         ORDER BY created_at_ms, waitpoint_id",
    )?;
    let mut table = Table::new(&[
        "waitpoint",
        "key",
        "state",
        "created (UTC)",
        "expires (UTC)",
        "kid",
        "waits for",
    ]);
    let mut rows = statement.query(params![partition, blob])?;
    while let Some(row) = rows.next()? {
        table.row(vec![
            uuid_text(&row.get::<_, String>(0)?),
            row.get(1)?,
            row.get(2)?,
            format::timestamp(row.get(3)?),
            format::maybe_timestamp(row.get(4)?),
            row.get(5)?,
            row.get(6)?,
        ]);
    }
    Ok(or_none(&table))
}

/// The signals delivered to the execution's suspension, waitpoint key by key, in delivery order.
fn signals(connection: &Connection, partition: i64, blob: &[u8]) -> anyhow::Result<String> {
    if !has_table(connection, "ff_suspension_current")? {
        return Ok("(none)\n".to_owned());
    }
    let mut statement = connection.prepare(
        "SELECT json_extract(s.value, '$.accepted_at'), k.key, \
             COALESCE(json_extract(s.value, '$.signal_name'), ''), \
             COALESCE(json_extract(s.value, '$.source_type'), '') || ':' || \
                 COALESCE(json_extract(s.value, '$.source_identity'), ''), \
             COALESCE(json_extract(s.value, '$.signal_id'), '') \
         FROM ff_suspension_current AS c, json_each(c.member_map) AS k, json_each(k.value) AS s \
         WHERE c.partition_key = ?1 AND c.execution_id = ?2 \
         ORDER BY k.key, s.key",
    )?;
    let mut table = Table::new(&[
        "accepted (UTC)",
        "waitpoint key",
        "signal",
        "source",
        "signal id",
    ]);
    let mut rows = statement.query(params![partition, blob])?;
    while let Some(row) = rows.next()? {
        table.row(vec![
            format::maybe_timestamp(row.get(0)?),
            row.get(1)?,
            row.get(2)?,
            row.get(3)?,
            row.get(4)?,
        ]);
    }
    Ok(or_none(&table))
}

/// Every signal delivered to the execution, from the signal-delivery outbox (which outlives
/// the suspension), in delivery order, with what each did.
fn signal_deliveries(
    connection: &Connection,
    partition: i64,
    bare_uuid: &str,
) -> anyhow::Result<String> {
    if !has_table(connection, "ff_signal_event")? {
        return Ok("(none)\n".to_owned());
    }
    let has_effect = connection
        .query_row(
            "SELECT 1 FROM pragma_table_info('ff_signal_event') WHERE name = 'effect'",
            [],
            |_| Ok(()),
        )
        .optional()?
        .is_some();
    let effect = if has_effect {
        "COALESCE(effect, '')"
    } else {
        "''"
    };
    let mut statement = connection.prepare(&format!(
        "SELECT delivered_at_ms, signal_id, COALESCE(waitpoint_id, ''), \
             COALESCE(source_identity, ''), {effect} \
         FROM ff_signal_event WHERE partition_key = ?1 AND execution_id = ?2 ORDER BY event_id"
    ))?;
    let mut table = Table::new(&[
        "delivered (UTC)",
        "signal id",
        "waitpoint id",
        "source",
        "effect",
    ]);
    let mut rows = statement.query(params![partition, bare_uuid])?;
    while let Some(row) = rows.next()? {
        table.row(vec![
            format::timestamp(row.get(0)?),
            row.get(1)?,
            row.get(2)?,
            row.get(3)?,
            row.get(4)?,
        ]);
    }
    Ok(or_none(&table))
}

/// 32 hex digits as a hyphenated UUID (anything else as it is).
fn uuid_text(hex: &str) -> String {
    uuid::Uuid::parse_str(hex).map_or_else(|_| hex.to_owned(), |uuid| uuid.hyphenated().to_string())
}

/// The execution's row as `label  value` lines.
fn execution(connection: &Connection, partition: i64, blob: &[u8]) -> anyhow::Result<String> {
    let row = connection
        .query_row(
            "SELECT lane_id, json_extract(raw_fields, '$.execution_kind'), json_extract(raw_fields, '$.namespace'), \
                 priority, public_state, lifecycle_phase, ownership_state, eligibility_state, attempt_state, \
                 created_at_ms, started_at_ms, terminal_at_ms, attempt_index, \
                 CAST(json_extract(raw_fields, '$.total_attempt_count') AS INTEGER), \
                 COALESCE(CAST(json_extract(raw_fields, '$.retry_count') AS INTEGER), 0), \
                 json_extract(raw_fields, '$.failure_reason'), json_extract(raw_fields, '$.tags'), payload, result \
             FROM ff_exec_core WHERE partition_key = ?1 AND execution_id = ?2",
            params![partition, blob],
            |row| {
                let text = |i| row.get::<_, Option<String>>(i).map(Option::unwrap_or_default);
                Ok(vec![
                    ("execution", execution_id(partition, blob)),
                    ("lane", text(0)?),
                    ("kind", text(1)?),
                    ("namespace", text(2)?),
                    ("priority", row.get::<_, i64>(3)?.to_string()),
                    ("state", text(4)?),
                    (
                        "state vector",
                        format!(
                            "lifecycle {}, ownership {}, eligibility {}, attempt {}",
                            text(5)?,
                            text(6)?,
                            text(7)?,
                            text(8)?
                        ),
                    ),
                    ("created", format::timestamp(row.get(9)?)),
                    ("started", format::maybe_timestamp(row.get(10)?)),
                    ("ended", format::maybe_timestamp(row.get(11)?)),
                    (
                        "attempts",
                        format!(
                            "{} (current: #{})",
                            row.get::<_, Option<i64>>(13)?.unwrap_or(0),
                            row.get::<_, i64>(12)?
                        ),
                    ),
                    ("retries", row.get::<_, i64>(14)?.to_string()),
                    ("last failure", text(15)?),
                    ("tags", text(16)?),
                    ("payload", format::payload(row.get::<_, Option<Vec<u8>>>(17)?.as_deref())),
                    ("result", format::payload(row.get::<_, Option<Vec<u8>>>(18)?.as_deref())),
                ])
            },
        )
        .optional()?
        .context("the execution vanished while reading it")?;
    let shown: Vec<(&str, String)> = row
        .into_iter()
        .filter(|(_, value)| !value.is_empty())
        .collect();
    Ok(fields(&shown))
}

/// The execution's attempts, oldest first.
fn attempts(connection: &Connection, partition: i64, blob: &[u8]) -> anyhow::Result<String> {
    let mut statement = connection.prepare(
        "SELECT attempt_index, COALESCE(json_extract(raw_fields, '$.attempt_type'), ''), \
             COALESCE(worker_id, ''), COALESCE(worker_instance_id, ''), lease_epoch, started_at_ms, \
             terminal_at_ms, COALESCE(outcome, ''), COALESCE(json_extract(raw_fields, '$.lease_id'), '') \
         FROM ff_attempt WHERE partition_key = ?1 AND execution_id = ?2 ORDER BY attempt_index",
    )?;
    let mut table = Table::new(&[
        "#",
        "type",
        "worker",
        "instance",
        "epoch",
        "started (UTC)",
        "took",
        "outcome",
        "lease id",
    ])
    .right(&[0, 4, 6]);
    let mut rows = statement.query(params![partition, blob])?;
    while let Some(row) = rows.next()? {
        let started: Option<i64> = row.get(5)?;
        table.row(vec![
            row.get::<_, i64>(0)?.to_string(),
            row.get(1)?,
            row.get(2)?,
            row.get(3)?,
            row.get::<_, i64>(4)?.to_string(),
            format::maybe_timestamp(started),
            format::elapsed_ms(started, row.get(6)?),
            row.get(7)?,
            row.get(8)?,
        ]);
    }
    Ok(or_none(&table))
}

/// The frames of the execution's attempt streams, attempt by attempt, oldest first (none in a
/// database from before streams existed).
fn stream_frames(connection: &Connection, partition: i64, blob: &[u8]) -> anyhow::Result<String> {
    let mut table = Table::new(&["#", "frame id", "mode", "type", "payload"]).right(&[0]);
    let has_streams: bool = connection.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'ff_stream_frame')",
        [],
        |row| row.get(0),
    )?;
    if has_streams {
        let mut statement = connection.prepare(
            "SELECT attempt_index, ts_ms || '-' || seq, mode, \
                 COALESCE(json_extract(fields, '$.frame_type'), ''), \
                 CAST(COALESCE(json_extract(fields, '$.payload'), '') AS BLOB) \
             FROM ff_stream_frame WHERE partition_key = ?1 AND execution_id = ?2 \
             ORDER BY attempt_index, ts_ms, seq",
        )?;
        let mut rows = statement.query(params![partition, blob])?;
        while let Some(row) = rows.next()? {
            table.row(vec![
                row.get::<_, i64>(0)?.to_string(),
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                format::payload(row.get::<_, Option<Vec<u8>>>(4)?.as_deref()),
            ]);
        }
    }
    Ok(or_none(&table))
}

/// The execution's lease events, oldest first.
fn lease_history(connection: &Connection, partition: i64, uuid: &str) -> anyhow::Result<String> {
    let mut statement = connection.prepare(
        "SELECT occurred_at_ms, event_type, COALESCE(lease_id, '') FROM ff_lease_event \
         WHERE partition_key = ?1 AND execution_id = ?2 ORDER BY event_id",
    )?;
    let mut table = Table::new(&["time (UTC)", "event", "lease id"]);
    let mut rows = statement.query(params![partition, uuid])?;
    while let Some(row) = rows.next()? {
        table.row(vec![
            format::timestamp(row.get(0)?),
            row.get(1)?,
            row.get(2)?,
        ]);
    }
    Ok(or_none(&table))
}

/// The execution's completion events, oldest first.
fn completions(connection: &Connection, partition: i64, blob: &[u8]) -> anyhow::Result<String> {
    let mut statement = connection.prepare(
        "SELECT occurred_at_ms, outcome, dispatched_at_ms FROM ff_completion_event \
         WHERE partition_key = ?1 AND execution_id = ?2 ORDER BY event_id",
    )?;
    let mut table = Table::new(&["time (UTC)", "outcome", "dispatched (UTC)"]);
    let mut rows = statement.query(params![partition, blob])?;
    while let Some(row) = rows.next()? {
        table.row(vec![
            format::timestamp(row.get(0)?),
            row.get(1)?,
            format::maybe_timestamp(row.get(2)?),
        ]);
    }
    Ok(or_none(&table))
}

/// The rendered table, or `(none)`.
fn or_none(table: &Table) -> String {
    if table.is_empty() {
        "(none)\n".to_owned()
    } else {
        table.render()
    }
}
