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
use super::connection::ConnectionSlot;

/// Synced write batches between two checkpoints.
const CHECKPOINT_EVERY: usize = 256;

/// WAL length in frames (a page each: 64 MiB with 4 KiB pages) from which the writer pauses once
/// to let the WAL start over. Each pause costs the writer one checkpoint's database-file sync;
/// at 4096 frames the pauses cost measurable throughput with 64 tasks, at this length they do not.
const RESTART_AFTER_FRAMES: i64 = 16_384;

/// Start the sync thread for `file`, whose connection is `slot`; returns the writer's side of
/// it and the thread.
pub(crate) fn start(
    file: DatabaseFile,
    slot: Arc<ConnectionSlot>,
) -> std::io::Result<(Handoff, JoinHandle<()>)> {
    let (to_sync, committed) = mpsc::channel::<Settled>();
    let restart_wanted = Arc::new(AtomicBool::new(false));
    let durability = Arc::new(Mutex::new(Durability {
        wal: WalFile::new(file.wal),
        checkpointer: Checkpointer::new(file.target, Arc::clone(&restart_wanted)),
        failed: None,
        slot: Arc::clone(&slot),
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
            slot,
        },
        thread,
    ))
}

/// A database file as the writer's helpers need it.
#[derive(Debug, Clone)]
pub(crate) struct DatabaseFile {
    /// The database file's absolute path, as SQLite resolved it (`sqlite3_db_filename`): what
    /// the checkpointer's own connection opens.
    pub target: String,
    /// The WAL file beside it, as SQLite names it (`sqlite3_filename_wal`).
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
    file: Option<File>,
}

impl WalFile {
    fn new(path: PathBuf) -> Self {
        Self { path, file: None }
    }

    /// `fdatasync` the WAL: every frame written before this call is on disk when it returns.
    /// The first call also syncs the WAL's directory, so that the WAL's own directory entry
    /// (SQLite created the file with the first commit) survives a power loss; SQLite keeps the
    /// WAL while the writer's connection is open, so this happens once per connection.
    fn sync(&mut self) -> std::io::Result<()> {
        #[cfg(test)]
        {
            use super::faults::{Fault, take};
            assert!(
                !take(&self.path, Fault::SyncPanic),
                "injected panic of the sync thread"
            );
            if take(&self.path, Fault::SyncError) {
                return Err(std::io::Error::from_raw_os_error(5));
            }
        }
        if self.file.is_none() {
            let opened = File::open(&self.path)?;
            if let Some(directory) = self.path.parent() {
                File::open(directory)?.sync_all()?;
                #[cfg(test)]
                super::faults::record_directory_sync(&self.path);
            }
            self.file = Some(opened);
        }
        self.file.as_ref().map_or(Ok(()), File::sync_data)
    }
}

/// What makes committed batches durable: the WAL file to sync and the checkpointer. Used by the
/// sync thread, or by the writer itself when nothing else is waiting (see [`Handoff::settle`]).
///
/// A sync that fails (an I/O error, or a panic: a host bug) closes the database: the batches it
/// was for, and every batch committed after it, are answered `SyncFailed`, and the connection
/// is dropped ([`ConnectionSlot::mark_lost`]), so every later operation fails with
/// `ConnectionLost` until a new backend reopens the file. Going on is not safe: after a failed
/// `fdatasync` the kernel may have dropped WAL pages it could not write, and a later commit's
/// frames after such a hole would be lost by SQLite's recovery although their own sync
/// succeeded. Reopening lets recovery keep exactly the commits whose frames are whole, which
/// include every batch that was answered with success.
struct Durability {
    wal: WalFile,
    checkpointer: Checkpointer,
    /// Why an earlier sync failed; no batch is answered as durable after that.
    failed: Option<String>,
    /// The connection, dropped when a sync fails.
    slot: Arc<ConnectionSlot>,
}

impl Durability {
    /// Sync once for all of `settled` (in commit order) that committed, answer every batch, then
    /// checkpoint if it is time.
    fn settle(&mut self, settled: Vec<Settled>) {
        let committed = settled.iter().filter(|batch| batch.committed).count();
        let sync_failure = if committed > 0 {
            self.sync_committed()
        } else {
            None
        };
        for batch in settled {
            let failure = if batch.committed {
                sync_failure.as_ref()
            } else {
                None
            };
            batch.answer(failure);
        }
        if self.failed.is_none() {
            let checkpointed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.checkpointer.after_sync(committed);
            }));
            if let Err(panic) = checkpointed {
                tracing::error!(
                    panic = panic_message(&*panic),
                    "the checkpointer panicked; will retry with a new connection"
                );
                self.checkpointer.connection = None;
            }
        }
    }

    /// Sync the WAL for batches that committed; the failure to answer them with, if it failed
    /// now or before (see [`Durability`]).
    fn sync_committed(&mut self) -> Option<BatchFailure> {
        if let Some(earlier) = &self.failed {
            return Some(BatchFailure::SyncFailed(format!(
                "not synced: an earlier sync of this database failed ({earlier})"
            )));
        }
        let synced = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.wal.sync()));
        let detail = match synced {
            Ok(Ok(())) => return None,
            Ok(Err(error)) => format!("{}: {error}", self.wal.path.display()),
            Err(panic) => format!(
                "syncing {} panicked: {}",
                self.wal.path.display(),
                panic_message(&*panic)
            ),
        };
        tracing::error!(%detail, "cannot sync the WAL; failing the committed operations and closing the database");
        self.failed = Some(detail.clone());
        self.slot.mark_lost();
        Some(BatchFailure::SyncFailed(detail))
    }
}

/// The text of a caught panic.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// The writer's side of the sync thread.
pub(crate) struct Handoff {
    to_sync: mpsc::Sender<Settled>,
    durability: Arc<Mutex<Durability>>,
    /// Batches sent to the sync thread and not yet answered.
    pending: Arc<AtomicUsize>,
    /// The checkpointer's request for a WAL restart.
    restart_wanted: Arc<AtomicBool>,
    /// The connection, dropped if the sync thread is gone.
    slot: Arc<ConnectionSlot>,
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
            // The sync thread is gone: nothing can be made durable; close the database.
            self.slot.mark_lost();
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
            // `settle` catches a panic of the sync itself; one anywhere else (answering) drops
            // the batches not yet answered, whose callers then see `TaskFailed`, and the
            // thread goes on serving the later ones.
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.durability
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .settle(settled);
            }));
            if let Err(panic) = ran {
                tracing::error!(
                    panic = panic_message(&*panic),
                    "the sync thread panicked answering batches"
                );
                self.durability.clear_poison();
            }
            self.pending.fetch_sub(count, Ordering::AcqRel);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use crate::storage::Database;
    use crate::storage::faults::{self, Fault, create_probe_table, insert, reopen_and_check};

    /// A new empty directory for one test.
    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ffwasm-dur-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::canonicalize(dir).unwrap()
    }

    /// Three acknowledged inserts, then `fault` armed on the file and an insert that must fail
    /// with an error containing `expected`; then what the database answers next, and the rows
    /// a new connection finds (after `integrity_check`) once the database is closed.
    fn fault_after_three_inserts(
        name: &str,
        fault: Fault,
        expected: &str,
    ) -> (Result<(), String>, Vec<i64>, PathBuf) {
        let dir = temp_dir(name);
        let file = dir.join("f.sqlite");
        let database = Database::open_shared(file.to_str().unwrap()).unwrap();
        create_probe_table(&database);
        for n in 1..=3 {
            assert_eq!(insert(&database, n, 5_000), Ok(()), "insert {n}");
        }
        faults::arm(&dir.join("f.sqlite-wal"), fault);
        let failed = insert(&database, 4, 5_000);
        assert!(
            matches!(&failed, Err(error) if error.contains(expected)),
            "{fault:?}: {failed:?}"
        );
        let next = insert(&database, 5, 5_000);
        drop(database);
        (next, reopen_and_check(&file), dir)
    }

    #[test]
    fn a_panic_while_syncing_the_wal_fails_its_batch_and_closes_the_database() {
        let (next, rows, dir) =
            fault_after_three_inserts("panic", Fault::SyncPanic, "SyncFailed(\"syncing");
        assert!(
            matches!(&next, Err(error) if error == "ConnectionLost"),
            "every later operation is refused: {next:?}"
        );
        // Insert 4 committed before its sync panicked: it may be there (whole) or not; the
        // acknowledged ones are, the refused one is not.
        assert!(rows == [1, 2, 3] || rows == [1, 2, 3, 4], "{rows:?}");
        // A new backend reopens the file, and it works.
        let reopened = Database::open_shared(dir.join("f.sqlite").to_str().unwrap()).unwrap();
        assert_eq!(insert(&reopened, 6, 10), Ok(()));
        drop(reopened);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_failed_wal_sync_fails_its_batch_and_closes_the_database() {
        let (next, rows, dir) =
            fault_after_three_inserts("eio", Fault::SyncError, "Input/output error (os error 5)");
        assert!(
            matches!(&next, Err(error) if error == "ConnectionLost"),
            "{next:?}"
        );
        assert!(rows == [1, 2, 3] || rows == [1, 2, 3, 4], "{rows:?}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_failed_wal_write_fails_only_its_commit() {
        let (next, rows, dir) =
            fault_after_three_inserts("write", Fault::WalWriteError, "disk I/O error");
        assert_eq!(next, Ok(()), "the database goes on");
        assert_eq!(rows, [1, 2, 3, 5], "the failed commit left nothing");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_full_disk_during_a_commit_fails_only_that_commit() {
        let (next, rows, dir) =
            fault_after_three_inserts("full", Fault::WalWriteFull, "database or disk is full");
        assert_eq!(next, Ok(()), "the database goes on");
        assert_eq!(rows, [1, 2, 3, 5], "the failed commit left nothing");
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// A tmpfs of `size` mounted on a new directory, unmounted when dropped; `None` (with the
    /// reason printed) where this process may not mount (not root, no `CAP_SYS_ADMIN`).
    struct Tmpfs(PathBuf);

    impl Tmpfs {
        fn mount(name: &str, size: &str) -> Option<Self> {
            let dir = temp_dir(name);
            let mounted = std::process::Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
                .arg(&dir)
                .output();
            match mounted {
                Ok(output) if output.status.success() => Some(Self(dir)),
                Ok(output) => {
                    eprintln!(
                        "SKIPPED {name}: cannot mount a tmpfs: {}",
                        String::from_utf8_lossy(&output.stderr).trim()
                    );
                    None
                }
                Err(error) => {
                    eprintln!("SKIPPED {name}: cannot run mount: {error}");
                    None
                }
            }
        }

        /// Remount read-only (or read-write again).
        fn remount(&self, options: &str) {
            let status = std::process::Command::new("mount")
                .args(["-o", &format!("remount,{options}")])
                .arg(&self.0)
                .status()
                .expect("run mount");
            assert!(status.success(), "remount {options}");
        }
    }

    impl Drop for Tmpfs {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn a_full_filesystem_fails_commits_with_a_typed_error_and_loses_nothing_acknowledged() {
        let Some(fs) = Tmpfs::mount("enospc", "1m") else {
            return;
        };
        let file = fs.0.join("full.sqlite");
        let database = Database::open_shared(file.to_str().unwrap()).unwrap();
        create_probe_table(&database);
        let mut acknowledged = Vec::new();
        let mut refused = Vec::new();
        for n in 0..200 {
            match insert(&database, n, 16 << 10) {
                Ok(()) => acknowledged.push(n),
                Err(error) => {
                    assert!(
                        error.contains("database or disk is full")
                            || error.contains("SyncFailed")
                            || error == "ConnectionLost",
                        "a typed storage failure: {error}"
                    );
                    refused.push(n);
                }
            }
        }
        assert!(
            !refused.is_empty(),
            "1 MiB holds fewer than 200 rows of 16 KiB"
        );
        drop(database);
        let rows = reopen_and_check(&file);
        for n in &acknowledged {
            assert!(rows.contains(n), "acknowledged {n} is there");
        }
        let connection = rusqlite::Connection::open(&file).unwrap();
        let whole: i64 = connection
            .query_row(
                "SELECT COUNT(*) FROM probe WHERE length(body) = 16384",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(whole as usize, rows.len(), "every row there is whole");
        eprintln!(
            "ENOSPC: {} acknowledged, {} refused, {} rows after reopening",
            acknowledged.len(),
            refused.len(),
            rows.len()
        );
    }

    #[test]
    fn a_read_only_filesystem_and_a_missing_directory_refuse_to_open_and_change_nothing() {
        let missing =
            std::env::temp_dir().join(format!("ffwasm-missing-{}/db.sqlite", std::process::id()));
        match Database::open_shared(missing.to_str().unwrap()) {
            Err(crate::error::OpenError::Open { source, .. }) => {
                assert_eq!(
                    source.sqlite_error_code(),
                    Some(rusqlite::ErrorCode::CannotOpen)
                );
            }
            Err(other) => panic!("missing directory: {other}"),
            Ok(_) => panic!("missing directory: opened"),
        }
        assert!(!missing.parent().unwrap().exists());

        let Some(fs) = Tmpfs::mount("readonly", "4m") else {
            return;
        };
        let file = fs.0.join("ro.sqlite");
        let database = Database::open_shared(file.to_str().unwrap()).unwrap();
        create_probe_table(&database);
        assert_eq!(insert(&database, 1, 100), Ok(()));
        drop(database);
        let before = std::fs::read(&file).unwrap();
        fs.remount("ro");
        let refused = Database::open_shared(file.to_str().unwrap());
        fs.remount("rw");
        match refused {
            Err(crate::error::OpenError::Open { source, .. }) => assert!(
                matches!(
                    source.sqlite_error_code(),
                    Some(rusqlite::ErrorCode::ReadOnly | rusqlite::ErrorCode::CannotOpen)
                ),
                "{source}"
            ),
            Err(other) => panic!("read-only: {other}"),
            Ok(_) => panic!("read-only: opened"),
        }
        assert_eq!(
            std::fs::read(&file).unwrap(),
            before,
            "the file is unchanged"
        );
        assert_eq!(reopen_and_check(&file), [1]);
    }
}
