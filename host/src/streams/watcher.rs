//! The change watcher: one task per database, running while some tail or subscription waits.
//! It reads the newest outbox ids and the newest frame row id (`change-heads`, one read-only
//! guest call) after every local write commit and every [`super::POLL_INTERVAL`], and publishes
//! them ([`crate::wake::Wakes::publish_outboxes`], [`crate::wake::Wakes::publish_frames`]).

use std::sync::{Arc, PoisonError};

use crate::backend::SqliteBackend;
use crate::operation::Tx;
use crate::wake::{Heads, Wakes};

use super::{POLL_INTERVAL, outbox_name};

/// Looks in a row that may skip judging the frame head while local appends are in flight
/// (then a foreign append is noticed anyway, at the price of waking every tail once).
const MAX_DEFERRED_LOOKS: u32 = 10;

/// Start the database's watcher unless it runs. Call after taking the receivers to wait on.
pub(crate) fn ensure_watcher(backend: &SqliteBackend) {
    let wakes = Arc::clone(backend.wakes());
    let mut running = wakes
        .watcher_running
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if *running {
        return;
    }
    *running = true;
    drop(running);
    tokio::spawn(watch_changes(backend.handle(), wakes));
}

/// The watcher's loop; ends when nobody follows the heads any more.
async fn watch_changes(backend: SqliteBackend, wakes: Arc<Wakes>) {
    let mut commits = wakes.commits();
    let mut deferred = 0;
    loop {
        let heads = backend
            .run("watch_changes", Tx::Read, |guest, store| {
                guest.flowfabric_backend_streams().call_change_heads(store)
            })
            .await;
        match heads {
            Ok(heads) => {
                let outboxes: Heads = heads
                    .outboxes
                    .into_iter()
                    .map(|(outbox, head)| (outbox_name(outbox), head))
                    .collect();
                wakes.publish_outboxes(outboxes);
                // A local append that committed but is not announced yet would look foreign:
                // judge the frame head only when none is in flight (its own commit brings the
                // next look), or after several looks in a row could not.
                if !wakes.appends_in_flight() || deferred >= MAX_DEFERRED_LOOKS {
                    wakes.publish_frames(heads.frames);
                    deferred = 0;
                } else {
                    deferred += 1;
                }
            }
            Err(error) => tracing::warn!(%error, "cannot read the newest stream and outbox ids"),
        }
        {
            let mut running = wakes
                .watcher_running
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if !wakes.has_followers() {
                *running = false;
                return;
            }
        }
        tokio::select! {
            _ = commits.changed() => {}
            () = tokio::time::sleep(POLL_INTERVAL) => {}
        }
    }
}
