//! A subscription: a task that follows one outbox from a cursor and sends each matching event,
//! once, in id (= commit) order, into a bounded channel the returned `Stream` reads.
//!
//! The task pages (`read-outbox`, [`OUTBOX_BATCH`] rows, [`super::PAGE_BYTES`] bytes) until a
//! page scans nothing new, then waits until the watcher's head for the outbox passes the cursor
//! (a local commit, or another process's commit seen within [`super::POLL_INTERVAL`]), until
//! the consumer drops the stream (the task ends at once), or until shutdown. It never drops an
//! event: a full channel makes it wait. Generic over the outbox: a new subscription supplies
//! the outbox, its filter and a decoder.

use std::pin::Pin;
use std::sync::Arc;

use ff_core::engine_error::EngineError;
use ff_core::stream_subscribe::{StreamCursor, encode_postgres_event_cursor};
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;

use crate::backend::SqliteBackend;
use crate::bindings::streams::{Outbox, OutboxEvent, OutboxFilter};
use crate::operation::Tx;

use super::{PAGE_BYTES, ensure_watcher, outbox_name};

/// Rows one page looks at.
const OUTBOX_BATCH: u32 = 256;

/// Events buffered between the task and the consumer.
const CHANNEL_CAPACITY: usize = 1024;

/// A subscription's event stream (ff-core's subscription types).
pub(crate) type EventStream<E> = Pin<Box<dyn Stream<Item = Result<E, EngineError>> + Send>>;

/// What a subscription follows and how it turns rows into events.
pub(crate) struct OutboxFollow<E> {
    /// The operation name pages run as.
    pub op: &'static str,
    /// The outbox.
    pub outbox: Outbox,
    /// Which rows match.
    pub filter: OutboxFilter,
    /// A row as the subscription's event; `Ok(None)` skips it (the cursor still passes it).
    pub decode: fn(OutboxEvent, StreamCursor) -> Result<Option<E>, EngineError>,
}

/// The outbox's newest event id now: where an empty cursor starts.
pub(crate) async fn current_head(
    backend: &SqliteBackend,
    op: &'static str,
    outbox: Outbox,
) -> Result<i64, EngineError> {
    let heads = backend
        .run(op, Tx::Read, |guest, store| {
            guest.flowfabric_backend_streams().call_change_heads(store)
        })
        .await?;
    Ok(heads
        .outboxes
        .into_iter()
        .find(|(candidate, _)| *candidate == outbox)
        .map_or(0, |(_, head)| head))
}

/// Follow the outbox from after `after` (an event id); see the module docs.
pub(crate) fn follow<E: Send + 'static>(
    backend: &SqliteBackend,
    follow: OutboxFollow<E>,
    after: i64,
) -> EventStream<E> {
    let (sender, receiver) = mpsc::channel(CHANNEL_CAPACITY);
    tokio::spawn(run(backend.handle(), follow, after, sender));
    Box::pin(ReceiverStream::new(receiver))
}

/// The subscription's task.
async fn run<E: Send + 'static>(
    backend: SqliteBackend,
    follow: OutboxFollow<E>,
    mut cursor: i64,
    sender: mpsc::Sender<Result<E, EngineError>>,
) {
    let wakes = Arc::clone(backend.wakes());
    let mut heads = wakes.heads();
    let mut shutdown = backend.shutdown_signal();
    ensure_watcher(&backend);
    let name = outbox_name(follow.outbox);
    loop {
        // Catch up.
        loop {
            let shutting_down = *shutdown.borrow_and_update();
            if shutting_down {
                let _ = sender.send(Err(disconnected(cursor))).await;
                return;
            }
            let filter = follow.filter.clone();
            let outbox = follow.outbox;
            let after = cursor;
            let before = cursor;
            let page = backend
                .run(follow.op, Tx::Read, move |guest, store| {
                    guest.flowfabric_backend_streams().call_read_outbox(
                        store,
                        outbox,
                        after,
                        OUTBOX_BATCH,
                        PAGE_BYTES,
                        &filter,
                    )
                })
                .await;
            let page = match page {
                Ok(page) => page,
                Err(error @ EngineError::Validation { .. }) => {
                    let _ = sender.send(Err(error)).await;
                    return;
                }
                Err(error) => {
                    tracing::warn!(%error, op = follow.op, "subscription page failed; disconnecting");
                    let _ = sender.send(Err(disconnected(cursor))).await;
                    return;
                }
            };
            for event in page.events {
                let event_id = event.event_id;
                match (follow.decode)(event, encode_postgres_event_cursor(event_id)) {
                    Ok(Some(event)) => {
                        if sender.send(Ok(event)).await.is_err() {
                            return;
                        }
                    }
                    Ok(None) => {}
                    Err(error) => {
                        let _ = sender.send(Err(error)).await;
                        return;
                    }
                }
                cursor = event_id;
            }
            cursor = cursor.max(page.last_scanned_id);
            if cursor == before {
                break;
            }
        }
        // Wait for something past the cursor.
        let heads_gone = tokio::select! {
            () = sender.closed() => return,
            _ = shutdown.wait_for(|down| *down) => false,
            changed = heads.wait_for(|heads| heads.get(name).is_some_and(|head| *head > cursor)) => {
                changed.is_err()
            }
        };
        if heads_gone {
            return;
        }
    }
}

/// `StreamDisconnected` with the cursor to resume from.
fn disconnected(cursor: i64) -> EngineError {
    EngineError::StreamDisconnected {
        cursor: encode_postgres_event_cursor(cursor),
    }
}
