//! The writer's vocabulary: a queued operation ([`Job`]), why a whole batch failed
//! ([`BatchFailure`]), and a batch whose transaction has ended ([`Settled`]), which the writer
//! hands to the sync thread (or answers itself) once its fate is known.

use rusqlite::Connection;

use super::policy::SqlPolicy;
use crate::error::OperationFailure;

/// One queued operation, typed by its caller (see `backend`).
pub(crate) trait Job: Send {
    /// The engine operation, for errors and logs.
    fn op(&self) -> &'static str;
    /// Whether the operation may write (a batch of readers begins `DEFERRED`).
    fn writes(&self) -> bool;
    /// Run the operation on `connection`, inside the batch's transaction (and the operation's
    /// savepoint, if the batch uses them), keeping its result for [`Job::answer`]; `true` if it
    /// succeeded. May be called a second time when the batch is run again; the second result
    /// replaces the first.
    fn run(&mut self, connection: Connection, policy: &SqlPolicy) -> (Connection, bool);
    /// Record a failure in place of running the operation.
    fn fail(&mut self, failure: OperationFailure);
    /// Answer the caller, once the batch's fate is known: its own result, unless `batch`
    /// failed, which voids every success in it.
    fn answer(self: Box<Self>, batch: Option<&BatchFailure>);
}

/// Why a whole batch was rolled back.
#[derive(Debug)]
pub(crate) enum BatchFailure {
    /// The connection was lost by an earlier panic.
    ConnectionLost,
    /// `BEGIN`, `COMMIT` or a savepoint statement failed.
    Database(rusqlite::Error),
    /// The batch committed, but the WAL could not be synced: it may not survive a power loss.
    SyncFailed(String),
}

impl BatchFailure {
    /// This failure as `op`'s error.
    pub fn for_op(&self, op: &'static str) -> OperationFailure {
        match self {
            BatchFailure::ConnectionLost => OperationFailure::ConnectionLost,
            BatchFailure::Database(error) => OperationFailure::Database {
                op,
                source: copy_error(error),
            },
            BatchFailure::SyncFailed(detail) => OperationFailure::SyncFailed {
                op,
                detail: detail.clone(),
            },
        }
    }
}

/// A copy of a rusqlite error with the same SQLite codes and message (rusqlite's errors are not
/// `Clone`; every operation of a failed batch gets its own).
fn copy_error(error: &rusqlite::Error) -> rusqlite::Error {
    match error {
        rusqlite::Error::SqliteFailure(code, message) => {
            rusqlite::Error::SqliteFailure(*code, message.clone())
        }
        other => rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
            Some(other.to_string()),
        ),
    }
}

/// A batch whose transaction has ended, waiting to be answered.
pub(crate) struct Settled {
    /// The batch's operations, in the order they ran.
    pub jobs: Vec<Box<dyn Job>>,
    /// Why the whole batch failed, if it did.
    pub failure: Option<BatchFailure>,
    /// Whether the batch committed writes that must reach the disk before it is answered.
    pub committed: bool,
}

impl Settled {
    /// Answer every job: with the batch's own failure, else with `sync_failure`, else with its
    /// own result.
    pub fn answer(self, sync_failure: Option<&BatchFailure>) {
        let failure = self.failure.as_ref().or(sync_failure);
        for job in self.jobs {
            job.answer(failure);
        }
    }
}
