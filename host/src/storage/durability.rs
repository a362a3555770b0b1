//! Durability for a database file: the batches the writer committed are answered only after the
//! WAL file was `fdatasync`ed. The connection runs `synchronous=FULL`, but its `ff-gather` VFS
//! ([`super::wal_gather`]) stops the commit's own WAL sync at the file, so `COMMIT` does not wait
//! for the disk; the sync happens here instead — by the sync thread, which covers every batch
//! committed since its last sync with one `fdatasync` while the writer runs the next batch, or
//! by the writer itself when nothing else is queued or waiting. Checkpoints run here too, on
//! whichever thread settled the batch; the WAL restart's checkpoint runs on the writer.

use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::thread::JoinHandle;

use rusqlite::Connection;

use super::batch::{BatchFailure, Settled};

/// Synced write batches between two checkpoints.
const CHECKPOINT_EVERY: usize = 256;

/// WAL length in frames (a page each: 64 MiB with 4 KiB pages) from which the writer pauses once
/// to let the WAL start over. Each pause costs the writer one checkpoint's database-file sync;
/// at 4096 frames the pauses cost measurable throughput with 64 tasks, at this length they do not.
const RESTART_AFTER_FRAMES: i64 = 16_384;

/// Start the sync thread for `file`; returns the writer's side of it and the thread.
pub(crate) fn start(file: DatabaseFile) -> std::io::Result<(Handoff, JoinHandle<()>)> {
    let (to_sync, committed) = mpsc::channel::<Settled>();
    let restart_wanted = Arc::new(AtomicBool::new(false));
    let durability = Arc::new(Mutex::new(Durability {
        wal: WalFile::new(file.wal),
        checkpointer: Checkpointer::new(file.target, Arc::clone(&restart_wanted)),
    }));
    let pending = Arc::new(AtomicUsize::new(0));
    let syncer = SyncThread {
        committed,
        durability: Arc::clone(&durability),
        pending: Arc::clone(&pending),
    };
    let thread = std::thread::Builder::new()
        .name("ff-sqlite-sync".into())
        .spawn(move || syncer.run())?;
    Ok((
        Handoff {
            to_sync,
            durability,
            pending,
            restart_wanted,
        },
        thread,
    ))
}

/// A database file as the writer's helpers need it.
#[derive(Debug, Clone)]
pub(crate) struct DatabaseFile {
    /// What SQLite opens (a path or a `file:` URI).
    pub target: String,
    /// The WAL file beside it.
    pub wal: PathBuf,
}

/// Copies WAL frames into the database file. The writer's connection has automatic checkpoints
/// off (they would stall it on two `fsync`s every thousand pages); after every
/// [`CHECKPOINT_EVERY`] synced batches, whichever thread synced them (usually the sync thread)
/// runs a `PASSIVE` checkpoint on a connection of its own, which never waits for a lock and
/// never blocks the writer's transactions.
///
/// SQLite writes the WAL from its beginning again only when a write transaction begins with
/// every frame already copied, which never happens while the writer keeps committing during
/// the checkpoints. So once a checkpoint finds the WAL longer than [`RESTART_AFTER_FRAMES`], it
/// asks the writer for a restart: before its next batch, the writer runs one more checkpoint
/// itself (see [`Handoff::restart_wal_if_wanted`]) — short, as the sync thread copied nearly
/// everything already — and its next transaction starts the WAL over.
struct Checkpointer {
    target: String,
    connection: Option<Connection>,
    batches: usize,
    /// Set when the WAL should start over; cleared by the writer's checkpoint.
    restart_wanted: Arc<AtomicBool>,
}

impl Checkpointer {
    fn new(target: String, restart_wanted: Arc<AtomicBool>) -> Self {
        Self {
            target,
            connection: None,
            batches: 0,
            restart_wanted,
        }
    }

    /// Count `batches` more synced batches; checkpoint when enough have accumulated.
    fn after_sync(&mut self, batches: usize) {
        self.batches += batches;
        if self.batches < CHECKPOINT_EVERY {
            return;
        }
        self.batches = 0;
        if let Some(frames) = self.checkpoint_now() {
            self.restart_wanted
                .store(frames >= RESTART_AFTER_FRAMES, Ordering::Release);
        }
    }

    /// Checkpoint now; the frames in the WAL, or `None` after a failure, which is logged and
    /// retried at the next checkpoint.
    fn checkpoint_now(&mut self) -> Option<i64> {
        self.checkpoint()
            .inspect_err(|error| {
                tracing::warn!(database = %self.target, %error, "WAL checkpoint failed; will retry");
                self.connection = None;
            })
            .ok()
    }

    /// A `PASSIVE` checkpoint; returns the frames in the WAL (-1 when it is not open).
    fn checkpoint(&mut self) -> rusqlite::Result<i64> {
        let connection = match &self.connection {
            Some(connection) => connection,
            None => self.connection.insert(open_checkpointer(&self.target)?),
        };
        // (busy, frames in the WAL, frames copied); -1s when the WAL is not open.
        connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get(1))
    }
}

/// The checkpointer's own connection to `target` (default VFS: its syncs reach the disk).
fn open_checkpointer(target: &str) -> rusqlite::Result<Connection> {
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE
        | rusqlite::OpenFlags::SQLITE_OPEN_URI
        | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let connection = Connection::open_with_flags(target, flags)?;
    connection.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(connection)
}

/// The WAL file, opened on first sync (SQLite creates it with the first write).
struct WalFile {
    path: PathBuf,
    file: std::cell::RefCell<Option<File>>,
}

impl WalFile {
    fn new(path: PathBuf) -> Self {
        Self {
            path,
            file: std::cell::RefCell::new(None),
        }
    }

    /// `fdatasync` the WAL: every frame written before this call is on disk when it returns.
    fn sync(&self) -> std::io::Result<()> {
        let mut file = self.file.borrow_mut();
        if file.is_none() {
            *file = Some(File::open(&self.path)?);
        }
        file.as_ref().map_or(Ok(()), File::sync_data)
    }
}

/// What makes committed batches durable: the WAL file to sync and the checkpointer. Used by the
/// sync thread, or by the writer itself when nothing else is waiting (see [`Handoff::settle`]).
struct Durability {
    wal: WalFile,
    checkpointer: Checkpointer,
}

impl Durability {
    /// Sync once for all of `settled` (in commit order) that committed, answer every batch, then
    /// checkpoint if it is time.
    fn settle(&mut self, settled: Vec<Settled>) {
        let sync_failure = if settled.iter().any(|batch| batch.committed) {
            self.wal.sync().err().map(|error| {
                tracing::error!(wal = %self.wal.path.display(), %error, "cannot sync the WAL; failing the committed operations");
                BatchFailure::SyncFailed(format!("{}: {error}", self.wal.path.display()))
            })
        } else {
            None
        };
        let committed = settled.iter().filter(|batch| batch.committed).count();
        for batch in settled {
            let failure = if batch.committed {
                sync_failure.as_ref()
            } else {
                None
            };
            batch.answer(failure);
        }
        self.checkpointer.after_sync(committed);
    }
}

/// The writer's side of the sync thread.
pub(crate) struct Handoff {
    to_sync: mpsc::Sender<Settled>,
    durability: Arc<Mutex<Durability>>,
    /// Batches sent to the sync thread and not yet answered.
    pending: Arc<AtomicUsize>,
    /// The checkpointer's request for a WAL restart.
    restart_wanted: Arc<AtomicBool>,
}

impl Handoff {
    /// Make `settled` durable and answer it. When no other operation is queued
    /// (`!more_queued`) and no batch is waiting for the sync thread, the writer syncs and answers
    /// itself (a hand-off would cost a thread wake-up for nothing to overlap with); otherwise the
    /// sync thread does, while the writer goes on with the next batch.
    pub fn settle(&self, settled: Settled, more_queued: bool) {
        if !more_queued
            && self.pending.load(Ordering::Acquire) == 0
            && let Ok(mut durability) = self.durability.try_lock()
            // Under the lock: nothing sent is still unanswered, so answering now keeps the
            // commit order.
            && self.pending.load(Ordering::Acquire) == 0
        {
            durability.settle(vec![settled]);
            return;
        }
        self.pending.fetch_add(1, Ordering::AcqRel);
        if let Err(mpsc::SendError(settled)) = self.to_sync.send(settled) {
            self.pending.fetch_sub(1, Ordering::AcqRel);
            // The sync thread is gone (it panicked): nothing can be made durable.
            settled.answer(Some(&BatchFailure::SyncFailed(
                "the sync thread stopped".into(),
            )));
        }
    }

    /// Called by the writer between batches: if the checkpointer asked for it, copy the rest of
    /// the WAL into the database file now, while no transaction is open, so that the writer's
    /// next transaction writes the WAL from its beginning (see [`Checkpointer`]). The checkpoint
    /// syncs the WAL first, so batches still waiting for the sync thread lose nothing; they are
    /// answered by it as usual.
    pub fn restart_wal_if_wanted(&self) {
        if self.restart_wanted.swap(false, Ordering::AcqRel) {
            let mut durability = self
                .durability
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            // Its frame count is the old WAL's (the WAL starts over with the next transaction),
            // so it is no reason for another restart.
            durability.checkpointer.checkpoint_now();
        }
    }
}

/// The sync thread: answers settled batches in order, after one sync for all that committed.
struct SyncThread {
    committed: mpsc::Receiver<Settled>,
    durability: Arc<Mutex<Durability>>,
    pending: Arc<AtomicUsize>,
}

impl SyncThread {
    fn run(self) {
        while let Ok(first) = self.committed.recv() {
            let mut settled = vec![first];
            settled.extend(self.committed.try_iter());
            let count = settled.len();
            self.durability
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .settle(settled);
            self.pending.fetch_sub(count, Ordering::AcqRel);
        }
    }
}
