//! Group commit: each database has one writer thread that runs every operation of every backend
//! on it, in batches that share one transaction.
//!
//! The thread takes whatever operations are queued (at most [`MAX_BATCH`]), opens one
//! transaction (`BEGIN IMMEDIATE`, or `BEGIN DEFERRED` when the batch only reads), runs each
//! operation inside its own `SAVEPOINT` (released when the operation succeeds, rolled back to
//! when it fails, so a failure undoes only its own writes), then commits once. Callers are
//! answered only after the `COMMIT` returned, so nobody sees success before the transaction is
//! durable (with `synchronous=FULL`, `COMMIT` returns after the WAL is synced). If the batch's
//! transaction cannot begin or commit, every operation in it fails with that error and nothing
//! of the batch is kept.
//!
//! Operations that arrive while a batch runs form the next one, so under load one `fsync` serves
//! many operations; alone, an operation is a batch of one and runs without a savepoint.

use std::sync::mpsc;
use std::thread::JoinHandle;

use rusqlite::Connection;

use crate::database::ConnectionSlot;
use crate::error::OperationFailure;
use crate::sql_policy::SqlPolicy;

/// The most operations one transaction carries: bounds how long a batch holds the write lock
/// and how long its first caller waits.
pub(crate) const MAX_BATCH: usize = 128;

/// The savepoint around each operation of a batch.
const SAVEPOINT: &str = "SAVEPOINT ff_operation";
const RELEASE: &str = "RELEASE ff_operation";
const ROLLBACK_TO: &str = "ROLLBACK TO ff_operation";

/// One queued operation, typed by its caller (see `backend`).
pub(crate) trait Job: Send {
    /// The engine operation, for errors and logs.
    fn op(&self) -> &'static str;
    /// Whether the operation may write (a batch of readers begins `DEFERRED`).
    fn writes(&self) -> bool;
    /// Run the operation on `connection`, inside the batch's transaction and the operation's
    /// savepoint, keeping its result for [`Job::answer`]; `true` if it succeeded.
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

/// The writer thread of one database; dropping this stops it (after the queued batches) and
/// waits for it.
pub(crate) struct Writer {
    queue: Option<mpsc::Sender<Box<dyn Job>>>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Start the writer thread for `slot`.
    pub fn start(slot: std::sync::Arc<ConnectionSlot>) -> std::io::Result<Self> {
        let (queue, receiver) = mpsc::channel::<Box<dyn Job>>();
        let thread = std::thread::Builder::new()
            .name("ff-sqlite-writer".into())
            .spawn(move || {
                while let Ok(first) = receiver.recv() {
                    let mut batch = vec![first];
                    while batch.len() < MAX_BATCH {
                        match receiver.try_recv() {
                            Ok(job) => batch.push(job),
                            Err(_) => break,
                        }
                    }
                    run_batch(&slot, batch);
                }
            })?;
        Ok(Self {
            queue: Some(queue),
            thread: Some(thread),
        })
    }

    /// Queue `job`; gives it back if the writer thread is gone.
    pub fn submit(&self, job: Box<dyn Job>) -> Result<(), Box<dyn Job>> {
        match &self.queue {
            Some(queue) => queue.send(job).map_err(|mpsc::SendError(job)| job),
            None => Err(job),
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        drop(self.queue.take());
        if let Some(thread) = self.thread.take()
            && thread.thread().id() != std::thread::current().id()
        {
            let _ = thread.join();
        }
    }
}

/// Run `batch` in one transaction and answer every job (see the module docs).
fn run_batch(slot: &ConnectionSlot, mut batch: Vec<Box<dyn Job>>) {
    let mut guard = slot.lock();
    let Some(connection) = guard.take() else {
        drop(guard);
        for job in batch {
            job.answer(Some(&BatchFailure::ConnectionLost));
        }
        return;
    };
    let (connection, failure) = run_in_transaction(connection, slot.policy(), &mut batch);
    *guard = Some(connection);
    drop(guard);
    for job in batch {
        job.answer(failure.as_ref());
    }
}

fn run_in_transaction(
    mut connection: Connection,
    policy: &SqlPolicy,
    batch: &mut [Box<dyn Job>],
) -> (Connection, Option<BatchFailure>) {
    let begin = if batch.iter().any(|job| job.writes()) {
        "BEGIN IMMEDIATE"
    } else {
        "BEGIN DEFERRED"
    };
    if let Err(error) = connection.execute_batch(begin) {
        return (connection, Some(BatchFailure::Database(error)));
    }
    let alone = batch.len() == 1;
    let mut failure = None;
    let mut any_succeeded = false;
    for job in batch.iter_mut() {
        if !alone && let Err(error) = connection.execute_batch(SAVEPOINT) {
            job.fail(OperationFailure::Database {
                op: job.op(),
                source: error,
            });
            continue;
        }
        let (returned, succeeded) = job.run(connection, policy);
        connection = returned;
        any_succeeded |= succeeded;
        if alone {
            continue;
        }
        let undo = if succeeded {
            connection.execute_batch(RELEASE)
        } else {
            connection
                .execute_batch(ROLLBACK_TO)
                .and_then(|()| connection.execute_batch(RELEASE))
        };
        if let Err(error) = undo {
            // The transaction is in an unknown state: give up the whole batch.
            failure = Some(BatchFailure::Database(error));
            break;
        }
    }
    if failure.is_none()
        && any_succeeded
        && let Err(error) = connection.execute_batch("COMMIT")
    {
        failure = Some(BatchFailure::Database(error));
    }
    // Anything but a successful COMMIT leaves the transaction open: undo it all.
    if !connection.is_autocommit()
        && let Err(error) = connection.execute_batch("ROLLBACK")
    {
        tracing::error!(%error, "rollback failed");
    }
    (connection, failure)
}
