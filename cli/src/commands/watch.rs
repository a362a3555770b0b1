//! `ffwasm watch completions|leases|signals|tags`: follow a subscription on a database file and print each
//! event as it arrives (another process's commits appear within the backend's poll interval),
//! until Ctrl-C or `--count` events.

use anyhow::bail;
use clap::{Args, ValueEnum};
use ff_backend_sqlite_wasm::SqliteBackend;
use ff_core::backend::ScannerFilter;
use ff_core::engine_backend::EngineBackend;
use ff_core::stream_events::{InstanceTagEvent, LeaseHistoryEvent, SignalDeliveryEffect};
use ff_core::stream_subscribe::{
    StreamCursor, decode_postgres_event_cursor, encode_postgres_event_cursor,
};
use tokio_stream::StreamExt;

use crate::database::{self, DatabaseArg, Found};
use crate::output;

/// `ffwasm watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// What to follow.
    #[arg(value_enum)]
    pub what: Watched,
    /// The database.
    #[command(flatten)]
    pub database: DatabaseArg,
    /// Start with the oldest event instead of the next one committed.
    #[arg(long)]
    pub from_start: bool,
    /// Stop after this many events (default: follow until interrupted).
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
}

/// The subscriptions `ffwasm watch` follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Watched {
    /// Executions reaching a terminal outcome.
    Completions,
    /// Leases acquired, renewed, expired, reclaimed and revoked.
    Leases,
    /// Signals delivered to waitpoints, with what each did.
    Signals,
    /// Execution tags attached and cleared.
    Tags,
}

/// Follow the subscription `args` names, printing one line per event:
/// `<event id>  <at ms>  <execution id>  <what happened>`.
pub async fn run(args: WatchArgs) -> anyhow::Result<()> {
    let path = &args.database.db;
    match database::examine(path, false)? {
        Found::FlowFabric { .. } => {}
        Found::Missing => bail!(database::DatabaseError::Missing(path.clone())),
        Found::Empty => bail!(database::DatabaseError::Empty(path.clone())),
    }
    let Some(uri) = path.to_str() else {
        bail!("{} is not a UTF-8 path", path.display());
    };
    let backend = SqliteBackend::new(uri).await?;
    let cursor = if args.from_start {
        encode_postgres_event_cursor(0)
    } else {
        StreamCursor::empty()
    };
    let filter = ScannerFilter::default();
    let mut printed = 0;
    let mut lines: std::pin::Pin<
        Box<dyn tokio_stream::Stream<Item = anyhow::Result<String>> + Send>,
    > = match args.what {
        Watched::Completions => Box::pin(backend.subscribe_completion(cursor, &filter).await?.map(
            |event| {
                let event = event?;
                Ok(line(
                    &event.cursor,
                    event.at.0,
                    event.execution_id.as_str(),
                    &format!("completed: {:?}", event.outcome),
                ))
            },
        )),
        Watched::Leases => Box::pin(backend.subscribe_lease_history(cursor, &filter).await?.map(
            |event| {
                let event = event?;
                Ok(line(
                    event.cursor(),
                    event.at().0,
                    event.execution_id().as_str(),
                    lease_change(&event),
                ))
            },
        )),
        Watched::Signals => Box::pin(
            backend
                .subscribe_signal_delivery(cursor, &filter)
                .await?
                .map(|event| {
                    let event = event?;
                    let effect = match &event.effect {
                        SignalDeliveryEffect::Satisfied => "satisfied its waitpoint".to_owned(),
                        SignalDeliveryEffect::Other(other) => other.replace('_', " "),
                        other => format!("{other:?}"),
                    };
                    Ok(line(
                        &event.cursor,
                        event.at.0,
                        event.execution_id.as_str(),
                        &format!("signal {} {effect}", event.signal_id),
                    ))
                }),
        ),
        Watched::Tags => Box::pin(backend.subscribe_instance_tags(cursor).await?.map(|event| {
            let event = event?;
            let (cursor, at, execution_id, what) = match &event {
                InstanceTagEvent::Attached {
                    cursor,
                    execution_id,
                    tag,
                    at,
                } => (cursor, at, execution_id, format!("tag attached: {tag}")),
                InstanceTagEvent::Cleared {
                    cursor,
                    execution_id,
                    tag,
                    at,
                } => (cursor, at, execution_id, format!("tag cleared: {tag}")),
                other => anyhow::bail!("an instance-tag event this build does not know: {other:?}"),
            };
            Ok(line(cursor, at.0, execution_id.as_str(), &what))
        })),
    };
    while args.count.is_none_or(|count| printed < count) {
        let Some(text) = lines.next().await else {
            break;
        };
        output::println(&text?)?;
        printed += 1;
    }
    Ok(())
}

/// One printed event.
fn line(cursor: &StreamCursor, at: i64, execution_id: &str, what: &str) -> String {
    let id = decode_postgres_event_cursor(cursor)
        .ok()
        .flatten()
        .map_or_else(|| "?".to_owned(), |id| id.to_string());
    format!("{id:>8}  {at}  {execution_id}  {what}")
}

/// What a lease event says happened.
fn lease_change(event: &LeaseHistoryEvent) -> &'static str {
    match event {
        LeaseHistoryEvent::Acquired { .. } => "lease acquired",
        LeaseHistoryEvent::Renewed { .. } => "lease renewed",
        LeaseHistoryEvent::Expired { .. } => "lease expired",
        LeaseHistoryEvent::Reclaimed { .. } => "lease reclaimed",
        LeaseHistoryEvent::Revoked { .. } => "lease revoked",
        _ => "lease event",
    }
}
