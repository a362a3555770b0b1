//! Group commit: each database has one writer thread that runs every operation of every backend
//! on it, in batches that share one transaction; on a file, the batches are made durable before
//! their callers are answered ([`super::durability`]).
//!
//! The writer takes whatever operations are queued (at most [`MAX_BATCH`]), opens one
//! transaction (`BEGIN IMMEDIATE`, or `BEGIN DEFERRED` when the batch only reads), runs the
//! operations, then commits once. A failure undoes only its own writes: an operation that
//! fails without having written leaves nothing to undo; when one that had written fails, the
//! batch is rolled back and run again with each operation inside its own `SAVEPOINT` (released
//! when the operation succeeds, rolled back to when it fails), and the second run's results are
//! the answers (see [`run_in_transaction`]). If the batch's transaction cannot begin or commit,
//! every operation in it fails with that error and nothing of the batch is kept.
//!
//! Callers are answered in commit order, and only once their batch is durable (see
//! [`super::durability`]; in memory, right after the commit).
//!
//! Operations that arrive while a batch runs form the next one, so under load one `fsync`
//! serves many operations; alone, an operation is a batch of one.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::batch::{BatchFailure, Job, Settled};
use super::connection::ConnectionSlot;
use super::durability::{self, DatabaseFile};
use super::policy::{
    BEGIN_READ, BEGIN_WRITE, COMMIT, RELEASE, ROLLBACK, ROLLBACK_TO, SAVEPOINT, SqlPolicy,
};
use crate::error::OperationFailure;

/// The most operations one transaction carries: bounds how long a batch holds the write lock
/// and how long its first caller waits.
pub(crate) const MAX_BATCH: usize = 128;

/// How long the writer polls for the next operation before it sleeps.
const SPIN_FOR_JOB: Duration = Duration::from_micros(50);

/// Run one of the host's statements ([`super::policy::HOST_STATEMENTS`]) through the statement cache.
fn run_host_statement(connection: &Connection, statement: &str) -> rusqlite::Result<()> {
    connection.prepare_cached(statement)?.execute([]).map(drop)
}

/// The writer and sync threads of one database; dropping this stops them (after the queued
/// batches are answered) and waits for them.
pub(crate) struct Writer {
    queue: Option<mpsc::Sender<Box<dyn Job>>>,
    /// Whether the writer thread is asleep waiting for a job (see [`Writer::submit`]).
    asleep: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

/// What [`Writer::submit`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Submitted {
    /// The writer was polling or working: the answer may come within microseconds.
    WriterAwake,
    /// The writer was asleep, and the job wakes it: a caller polling for the answer on this
    /// core could keep the writer from running (the scheduler tends to wake a thread on the
    /// waker's core).
    WriterAsleep,
}

impl Writer {
    /// Start the writer thread for `slot`. With `file` (a database file), committed batches go
    /// to a sync thread that syncs its WAL before answering and checkpoints it now and then;
    /// without (an in-memory database, nothing to make durable), the writer answers right
    /// after the commit.
    pub fn start(slot: Arc<ConnectionSlot>, file: Option<DatabaseFile>) -> std::io::Result<Self> {
        let (queue, receiver) = mpsc::channel::<Box<dyn Job>>();
        let asleep = Arc::new(AtomicBool::new(false));
        let writer_asleep = Arc::clone(&asleep);
        let mut threads = Vec::new();
        let handoff = match file {
            Some(file) => {
                let (handoff, syncer) = durability::start(file)?;
                threads.push(syncer);
                Some(handoff)
            }
            None => None,
        };
        let writer = std::thread::Builder::new()
            .name("ff-sqlite-writer".into())
            .spawn(move || {
                let mut next = None;
                while let Some(first) = next.take().or_else(|| next_job(&receiver, &writer_asleep))
                {
                    if let Some(handoff) = &handoff {
                        handoff.restart_wal_if_wanted();
                    }
                    let mut batch = vec![first];
                    batch.extend(receiver.try_iter().take(MAX_BATCH - 1));
                    let settled = run_batch(&slot, batch);
                    next = receiver.try_recv().ok();
                    match &handoff {
                        None => settled.answer(None),
                        Some(handoff) => handoff.settle(settled, next.is_some()),
                    }
                }
            })?;
        threads.insert(0, writer);
        Ok(Self {
            queue: Some(queue),
            asleep,
            threads,
        })
    }

    /// Queue `job`, saying whether the writer was asleep; gives the job back if the writer
    /// thread is gone.
    pub fn submit(&self, job: Box<dyn Job>) -> Result<Submitted, Box<dyn Job>> {
        let Some(queue) = &self.queue else {
            return Err(job);
        };
        let submitted = if self.asleep.load(Ordering::Acquire) {
            Submitted::WriterAsleep
        } else {
            Submitted::WriterAwake
        };
        queue.send(job).map_err(|mpsc::SendError(job)| job)?;
        Ok(submitted)
    }
}

/// The next queued job: polled for [`SPIN_FOR_JOB`] first (a caller that was just answered
/// usually sends its next operation within microseconds, and falling asleep and being woken
/// costs more than that), then waited for, with `asleep` set meanwhile. Each poll yields the
/// core, so that a caller or the sync thread the scheduler put on the same core can run.
/// `None` once every backend is gone.
fn next_job(receiver: &mpsc::Receiver<Box<dyn Job>>, asleep: &AtomicBool) -> Option<Box<dyn Job>> {
    let until = Instant::now() + SPIN_FOR_JOB;
    loop {
        match receiver.try_recv() {
            Ok(job) => return Some(job),
            Err(mpsc::TryRecvError::Disconnected) => return None,
            Err(mpsc::TryRecvError::Empty) if Instant::now() < until => std::thread::yield_now(),
            Err(mpsc::TryRecvError::Empty) => {
                asleep.store(true, Ordering::Release);
                let job = receiver.recv().ok();
                asleep.store(false, Ordering::Release);
                return job;
            }
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        drop(self.queue.take());
        for thread in self.threads.drain(..) {
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
    }
}

/// Run `batch` in one transaction (see the module docs); its jobs are answered by
/// [`Settled::answer`].
fn run_batch(slot: &ConnectionSlot, mut jobs: Vec<Box<dyn Job>>) -> Settled {
    let mut guard = slot.lock();
    let Some(connection) = guard.take() else {
        return Settled {
            jobs,
            failure: Some(BatchFailure::ConnectionLost),
            committed: false,
        };
    };
    let (connection, outcome) = run_in_transaction(connection, slot, &mut jobs);
    *guard = Some(connection);
    let (failure, committed) = match outcome {
        Ok(0) => (None, false),
        Ok(operations) => {
            slot.count_commit(operations);
            (None, true)
        }
        Err(failure) => (Some(failure), false),
    };
    Settled {
        jobs,
        failure,
        committed,
    }
}

/// `Ok(n)`: the batch committed the writes of `n` operations (0: nothing to commit, because
/// every operation failed or the batch only read); `Err`: the whole batch was rolled back.
///
/// A batch of several operations first runs without savepoints: an operation that fails
/// without having changed a row (SQLite's change counter did not move, and the transaction is
/// still open) leaves nothing to undo, and one that succeeds needs no savepoint to release.
/// Only when a failing operation did write does the batch roll back and run again, every
/// operation in its own savepoint, answering with the results of that second run. Savepoints
/// cost every operation in a batch two statements and a copy of each page it touches that an
/// earlier operation had already changed (about 14 % of the writer's instructions with 64
/// concurrent claims, callgrind); failures that write are rare (the built-in guest checks
/// everything before its first write).
fn run_in_transaction(
    connection: Connection,
    slot: &ConnectionSlot,
    batch: &mut [Box<dyn Job>],
) -> (Connection, Result<usize, BatchFailure>) {
    let policy = slot.policy();
    if batch.len() == 1 {
        return run_batch_of_one(connection, policy, &mut batch[0]);
    }
    match run_optimistically(connection, policy, batch) {
        (connection, Some(outcome)) => (connection, outcome),
        (connection, None) => {
            slot.count_batch_run_again();
            run_with_savepoints(connection, policy, batch)
        }
    }
}

/// The statement that opens a batch's transaction.
fn begin_statement(batch: &[Box<dyn Job>]) -> &'static str {
    if batch.iter().any(|job| job.writes()) {
        BEGIN_WRITE
    } else {
        BEGIN_READ
    }
}

/// One operation, one transaction: its failure rolls back everything.
fn run_batch_of_one(
    connection: Connection,
    policy: &SqlPolicy,
    job: &mut Box<dyn Job>,
) -> (Connection, Result<usize, BatchFailure>) {
    let begin = begin_statement(std::slice::from_ref(job));
    if let Err(error) = run_host_statement(&connection, begin) {
        return (connection, Err(BatchFailure::Database(error)));
    }
    let (connection, succeeded) = job.run(connection, policy);
    finish(connection, begin, usize::from(succeeded), None)
}

/// The batch without savepoints; `None` when an operation that failed had written, after
/// rolling the batch back (the caller runs it again with savepoints).
fn run_optimistically(
    mut connection: Connection,
    policy: &SqlPolicy,
    batch: &mut [Box<dyn Job>],
) -> (Connection, Option<Result<usize, BatchFailure>>) {
    let begin = begin_statement(batch);
    if let Err(error) = run_host_statement(&connection, begin) {
        return (connection, Some(Err(BatchFailure::Database(error))));
    }
    let mut succeeded_ops = 0;
    for job in batch.iter_mut() {
        let changes_before = connection.total_changes();
        let (returned, succeeded) = job.run(connection, policy);
        connection = returned;
        if succeeded {
            succeeded_ops += 1;
        } else if connection.total_changes() != changes_before || connection.is_autocommit() {
            // Its writes cannot be told apart from the others': start over with savepoints.
            if !connection.is_autocommit()
                && let Err(error) = run_host_statement(&connection, ROLLBACK)
            {
                return (connection, Some(Err(BatchFailure::Database(error))));
            }
            return (connection, None);
        }
    }
    let (connection, outcome) = finish(connection, begin, succeeded_ops, None);
    (connection, Some(outcome))
}

/// The batch with every operation in its own savepoint, so that a failure undoes only itself.
fn run_with_savepoints(
    mut connection: Connection,
    policy: &SqlPolicy,
    batch: &mut [Box<dyn Job>],
) -> (Connection, Result<usize, BatchFailure>) {
    let begin = begin_statement(batch);
    if let Err(error) = run_host_statement(&connection, begin) {
        return (connection, Err(BatchFailure::Database(error)));
    }
    let mut failure = None;
    let mut succeeded_ops = 0;
    for job in batch.iter_mut() {
        if let Err(error) = run_host_statement(&connection, SAVEPOINT) {
            job.fail(OperationFailure::Database {
                op: job.op(),
                source: error,
            });
            continue;
        }
        let (returned, succeeded) = job.run(connection, policy);
        connection = returned;
        succeeded_ops += usize::from(succeeded);
        let undo = if succeeded {
            run_host_statement(&connection, RELEASE)
        } else {
            connection
                .execute_batch(ROLLBACK_TO)
                .and_then(|()| run_host_statement(&connection, RELEASE))
        };
        if let Err(error) = undo {
            // The transaction is in an unknown state: give up the whole batch.
            failure = Some(BatchFailure::Database(error));
            break;
        }
    }
    finish(connection, begin, succeeded_ops, failure)
}

/// Commit the batch's transaction if `succeeded_ops` kept writes and nothing failed it, else
/// roll it back.
fn finish(
    connection: Connection,
    begin: &'static str,
    succeeded_ops: usize,
    mut failure: Option<BatchFailure>,
) -> (Connection, Result<usize, BatchFailure>) {
    let writes = begin == BEGIN_WRITE;
    if failure.is_none()
        && succeeded_ops > 0
        && let Err(error) = run_host_statement(&connection, COMMIT)
    {
        failure = Some(BatchFailure::Database(error));
    }
    // Anything but a successful COMMIT leaves the transaction open: undo it all.
    if !connection.is_autocommit()
        && let Err(error) = run_host_statement(&connection, ROLLBACK)
    {
        tracing::error!(%error, "rollback failed");
    }
    let outcome = match failure {
        Some(failure) => Err(failure),
        None if writes => Ok(succeeded_ops),
        None => Ok(0),
    };
    (connection, outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::database::Database;

    /// A job that reads nothing, succeeds, and says when it is answered.
    struct Noop(mpsc::Sender<()>);

    impl Job for Noop {
        fn op(&self) -> &'static str {
            "noop"
        }
        fn writes(&self) -> bool {
            false
        }
        fn run(&mut self, connection: Connection, _: &SqlPolicy) -> (Connection, bool) {
            (connection, true)
        }
        fn fail(&mut self, _: OperationFailure) {}
        fn answer(self: Box<Self>, _: Option<&BatchFailure>) {
            let _ = self.0.send(());
        }
    }

    #[test]
    fn a_submitter_learns_that_it_woke_the_writer() {
        let database = Database::open_shared("file:writer-asleep?mode=memory&cache=shared")
            .expect("open a memory database");
        let (answered, answers) = mpsc::channel();
        for _ in 0..2 {
            // Idle far longer than the writer polls: it is asleep, and the caller is told so
            // (and so does not poll for an answer that cannot come soon).
            std::thread::sleep(Duration::from_millis(100));
            let submitted = database.submit(Box::new(Noop(answered.clone())));
            assert_eq!(submitted.ok(), Some(Submitted::WriterAsleep));
            answers.recv().expect("the job is answered");
        }
    }
}
