//! The long-lived reads: `tail_stream`'s wait ([`tail`]), the subscriptions' followers
//! ([`follow`]) and the per-database change watcher that wakes them ([`watcher`]).
//!
//! The guest only pages (read-only calls, each one transaction on the writer thread, so a page
//! never sees a batch before its callers were answered, which on a file is after its WAL
//! sync); everything that lasts (the returned `Stream`, its cursor, deadlines, wake-ups) lives
//! here. Nothing polls per reader: one watcher per database reads the newest ids after every
//! local write commit and every [`POLL_INTERVAL`] (which bounds how late a commit by another
//! process is seen), and only while some reader waits.

pub(crate) mod follow;
pub(crate) mod tail;
mod watcher;

use std::time::Duration;

use crate::bindings::streams::Outbox;

pub(crate) use watcher::ensure_watcher;

/// How often the watcher reads the newest ids while readers wait: the bound on how late a
/// commit by another process is seen (plus one page's time).
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// The most bytes one page carries (fewer frames or events, never an error).
pub(crate) const PAGE_BYTES: u64 = 1 << 20;

/// The outbox's name in [`crate::wake::Heads`].
pub(crate) fn outbox_name(outbox: Outbox) -> &'static str {
    match outbox {
        Outbox::Completion => "completion",
        Outbox::LeaseHistory => "lease_history",
        Outbox::SignalDelivery => "signal_delivery",
        Outbox::InstanceTags => "instance_tags",
    }
}
