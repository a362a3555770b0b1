//! Test-only fault injection (compiled only with `cfg(test)`, i.e. in this crate's unit tests):
//! a test arms a fault for one file, and the storage code that reaches that file next fails or
//! panics there, once. Nothing of this module exists in a normal build.
//!
//! Faults are keyed by the file's path, so that tests running in parallel on other files are
//! not affected.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// What to do when the code reaches the armed point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// The durability layer's `fdatasync` of the WAL panics (a host bug on the sync thread).
    SyncPanic,
    /// The durability layer's `fdatasync` of the WAL fails with `EIO`.
    SyncError,
    /// `ff-gather`'s next write of gathered frames to the WAL fails (`SQLITE_IOERR_WRITE`).
    WalWriteError,
    /// `ff-gather`'s next write of gathered frames fails with `SQLITE_FULL` (a full disk).
    WalWriteFull,
}

static ARMED: Mutex<Vec<(PathBuf, Fault)>> = Mutex::new(Vec::new());

/// Arm `fault` for the next time the code reaches it on `path`.
pub(crate) fn arm(path: &Path, fault: Fault) {
    ARMED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push((path.to_path_buf(), fault));
}

/// Whether `fault` was armed for `path` (disarming it).
pub(crate) fn take(path: &Path, fault: Fault) -> bool {
    let mut armed = ARMED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match armed.iter().position(|(p, f)| p == path && *f == fault) {
        Some(index) => {
            armed.remove(index);
            true
        }
        None => false,
    }
}

/// Count that the durability layer synced `path`'s directory (see [`directory_syncs`]).
pub(crate) fn record_directory_sync(path: &Path) {
    SYNCED_DIRECTORIES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(path.to_path_buf());
}

/// How often the directory of the WAL `path` was synced.
pub(crate) fn directory_syncs(path: &Path) -> usize {
    SYNCED_DIRECTORIES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
        .filter(|synced| *synced == path)
        .count()
}

static SYNCED_DIRECTORIES: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// A writing operation for the storage tests: inserts row `n` (with `body`) into table
/// `probe`, which [`create_probe_table`] creates; its answer arrives on `answers`.
pub(crate) struct Insert {
    pub n: i64,
    pub body: Vec<u8>,
    pub result: Option<Result<(), String>>,
    pub answers: std::sync::mpsc::Sender<(i64, Result<(), String>)>,
}

impl Insert {
    /// An insert of row `n` with a `body` of `bytes` bytes.
    pub fn boxed(
        n: i64,
        bytes: usize,
        answers: &std::sync::mpsc::Sender<(i64, Result<(), String>)>,
    ) -> Box<Self> {
        Box::new(Self {
            n,
            body: vec![7; bytes],
            result: None,
            answers: answers.clone(),
        })
    }
}

impl super::Job for Insert {
    fn op(&self) -> &'static str {
        "insert"
    }
    fn writes(&self) -> bool {
        true
    }
    fn run(
        &mut self,
        connection: rusqlite::Connection,
        _: &super::SqlPolicy,
    ) -> (rusqlite::Connection, bool) {
        let inserted = connection
            .execute(
                "INSERT INTO probe (n, body) VALUES (?1, ?2)",
                rusqlite::params![self.n, self.body],
            )
            .map(drop)
            .map_err(|error| error.to_string());
        let succeeded = inserted.is_ok();
        self.result = Some(inserted);
        (connection, succeeded)
    }
    fn fail(&mut self, failure: crate::error::OperationFailure) {
        self.result = Some(Err(failure.to_string()));
    }
    fn answer(self: Box<Self>, batch: Option<&super::BatchFailure>) {
        let result = match (self.result, batch) {
            (Some(Err(error)), _) => Err(error),
            (_, Some(failure)) => Err(format!("{failure:?}")),
            (Some(Ok(())), None) => Ok(()),
            (None, None) => Err("never ran".into()),
        };
        let _ = self.answers.send((self.n, result));
    }
}

/// Create the [`Insert`] jobs' table in `database`.
pub(crate) fn create_probe_table(database: &super::Database) {
    database
        .lock()
        .as_ref()
        .expect("the connection is there")
        .execute_batch("CREATE TABLE IF NOT EXISTS probe (n INTEGER PRIMARY KEY, body BLOB)")
        .expect("create the probe table");
}

/// Run one [`Insert`] of row `n` on `database` and wait for its answer.
pub(crate) fn insert(database: &super::Database, n: i64, bytes: usize) -> Result<(), String> {
    let (answers, answered) = std::sync::mpsc::channel();
    if database.submit(Insert::boxed(n, bytes, &answers)).is_err() {
        return Err("the writer is gone".into());
    }
    answered
        .recv_timeout(std::time::Duration::from_secs(30))
        .map_err(|_| "no answer (the job was dropped)".to_owned())?
        .1
}

/// The rows of `probe` in the database file `path`, read by a new connection after
/// `PRAGMA integrity_check` answered `ok`.
pub(crate) fn reopen_and_check(path: &Path) -> Vec<i64> {
    let connection = rusqlite::Connection::open(path).expect("reopen");
    let check: String = connection
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .expect("integrity_check");
    assert_eq!(check, "ok");
    connection
        .prepare("SELECT n FROM probe ORDER BY n")
        .and_then(|mut rows| rows.query_map([], |row| row.get(0))?.collect())
        .expect("read probe")
}
