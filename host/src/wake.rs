//! Wake-ups for the long-lived reads (`tail_stream` and the subscriptions), per database: what
//! changed, never what the change was (readers always re-read the database).
//!
//! - [`Wakes::committed`]: a write operation on this database was answered, so its batch is
//!   durable; the change watcher (the `streams` module) then reads the newest ids.
//! - [`Wakes::heads`]: the newest outbox ids the watcher saw; a subscription waits until its
//!   outbox's head passes its cursor.
//! - [`Wakes::stream`]: one signal per attempt stream, raised by a local append of that stream
//!   only (an append wakes only the tails of its stream).
//! - [`Wakes::foreign_frames`]: raised when the watcher sees frames it has no local append for
//!   (another process appended): every parked tail re-reads once.
//!
//! Only wake-ups in this module; nothing here touches SQLite.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::watch;

/// A stream's key: the execution id text and the attempt index.
pub(crate) type StreamKey = (String, u32);

/// The newest ids the watcher saw, per outbox name (see the `streams` module).
pub(crate) type Heads = HashMap<&'static str, i64>;

/// The wake-ups of one database, shared by every backend on it.
pub(crate) struct Wakes {
    commits: watch::Sender<u64>,
    heads: watch::Sender<Heads>,
    foreign_frames: watch::Sender<u64>,
    streams: Mutex<HashMap<StreamKey, watch::Sender<u64>>>,
    /// The largest frame row id a local append announced.
    local_frame_head: AtomicI64,
    /// Local appends submitted and not yet announced ([`Wakes::begin_append`]).
    appends_in_flight: AtomicI64,
    /// Whether a change watcher task runs for this database.
    pub watcher_running: Mutex<bool>,
    /// Pages read by tails so far (what wake-ups cost; see [`Wakes::count_tail_page`]).
    tail_pages: AtomicU64,
}

impl Default for Wakes {
    fn default() -> Self {
        Self {
            commits: watch::Sender::new(0),
            heads: watch::Sender::new(Heads::new()),
            foreign_frames: watch::Sender::new(0),
            streams: Mutex::new(HashMap::new()),
            local_frame_head: AtomicI64::new(0),
            appends_in_flight: AtomicI64::new(0),
            watcher_running: Mutex::new(false),
            tail_pages: AtomicU64::new(0),
        }
    }
}

impl Wakes {
    /// A write operation's batch is durable and answered.
    pub fn committed(&self) {
        self.commits
            .send_modify(|count| *count = count.wrapping_add(1));
    }

    /// Follow local write commits.
    pub fn commits(&self) -> watch::Receiver<u64> {
        self.commits.subscribe()
    }

    /// Follow the outbox heads.
    pub fn heads(&self) -> watch::Receiver<Heads> {
        self.heads.subscribe()
    }

    /// Follow frames appended by other processes.
    pub fn foreign_frames(&self) -> watch::Receiver<u64> {
        self.foreign_frames.subscribe()
    }

    /// Whether anyone still follows the heads or foreign frames (else the watcher may stop).
    pub fn has_followers(&self) -> bool {
        self.heads.receiver_count() > 0 || self.foreign_frames.receiver_count() > 0
    }

    /// Whether a local append may have committed without being announced yet: a frame head
    /// read now cannot tell its frames from another process's.
    pub fn appends_in_flight(&self) -> bool {
        self.appends_in_flight.load(Ordering::Acquire) > 0
    }

    /// A local append is about to be submitted; the guard's drop (after
    /// [`Wakes::appended`], or on failure) ends it.
    pub fn begin_append(self: &Arc<Self>) -> AppendInFlight {
        self.appends_in_flight.fetch_add(1, Ordering::AcqRel);
        AppendInFlight(Arc::clone(self))
    }

    /// Publish newly read outbox heads.
    pub fn publish_outboxes(&self, outboxes: Heads) {
        self.heads.send_if_modified(|heads| {
            let changed = *heads != outboxes;
            *heads = outboxes;
            changed
        });
    }

    /// Publish a newly read frame head, read while no local append was in flight: a head past
    /// every locally announced append raises [`Wakes::foreign_frames`].
    pub fn publish_frames(&self, frames: i64) {
        if self.local_frame_head.fetch_max(frames, Ordering::AcqRel) < frames {
            self.foreign_frames
                .send_modify(|count| *count = count.wrapping_add(1));
        }
    }

    /// A local append of `key` with frame row id `row_id` is durable: wake that stream's tails.
    pub fn appended(&self, key: &StreamKey, row_id: i64) {
        self.local_frame_head.fetch_max(row_id, Ordering::AcqRel);
        let streams = self.streams.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(sender) = streams.get(key) {
            sender.send_modify(|count| *count = count.wrapping_add(1));
        }
    }

    /// Count one page read by a tail.
    pub fn count_tail_page(&self) {
        self.tail_pages.fetch_add(1, Ordering::Relaxed);
    }

    /// Pages read by tails on this database so far.
    pub fn tail_pages(&self) -> u64 {
        self.tail_pages.load(Ordering::Relaxed)
    }

    /// Follow local appends of `key`; the registration ends with the returned guard.
    pub fn stream(self: &Arc<Self>, key: StreamKey) -> StreamWatch {
        let mut streams = self.streams.lock().unwrap_or_else(PoisonError::into_inner);
        let receiver = streams
            .entry(key.clone())
            .or_insert_with(|| watch::Sender::new(0))
            .subscribe();
        StreamWatch {
            wakes: Arc::clone(self),
            key,
            receiver: Some(receiver),
        }
    }
}

/// A local append in flight ([`Wakes::begin_append`]).
pub(crate) struct AppendInFlight(Arc<Wakes>);

impl Drop for AppendInFlight {
    fn drop(&mut self) {
        self.0.appends_in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A tail's registration for one stream's appends; dropping it forgets the stream when no
/// other tail follows it.
pub(crate) struct StreamWatch {
    wakes: Arc<Wakes>,
    key: StreamKey,
    receiver: Option<watch::Receiver<u64>>,
}

impl StreamWatch {
    /// The receiver of this stream's appends.
    pub fn receiver(&mut self) -> &mut watch::Receiver<u64> {
        self.receiver
            .as_mut()
            .expect("present until the watch is dropped")
    }
}

impl Drop for StreamWatch {
    fn drop(&mut self) {
        let mut streams = self
            .wakes
            .streams
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        drop(self.receiver.take());
        if streams
            .get(&self.key)
            .is_some_and(|sender| sender.receiver_count() == 0)
        {
            streams.remove(&self.key);
        }
    }
}
