//! Group commit: each database has one writer thread that runs every operation of every backend
//! on it, in batches that share one transaction; on a file, the batches are made durable before
//! their callers are answered ([`super::durability`]).
//!
//! The writer takes whatever operations are queued (at most [`MAX_BATCH`]), opens one
//! transaction (`BEGIN IMMEDIATE`, or `BEGIN DEFERRED` when the batch only reads), runs the
//! operations, then commits once. A failure undoes only its own writes: an operation that
//! fails without having written leaves nothing to undo; when one that had written fails, or
//! SQLite ended the transaction under one (an interrupted write, `FULL`, `NOMEM`, `IOERR`), the
//! batch is rolled back and the other operations run again, each inside its own `SAVEPOINT`
//! (released when the operation succeeds, rolled back to when it fails); the failed operation
//! keeps its answer, the others get the answers of the run that commits (see
//! [`run_in_transaction`]). If the batch's transaction cannot begin or commit, every operation
//! in it fails with that error and nothing of the batch is kept.
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
                let (handoff, syncer) = durability::start(file, Arc::clone(&slot))?;
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
                    // A panic here is a host bug (or wasmtime's). The batch's operations are
                    // dropped, so their callers are answered with `TaskFailed`; the connection
                    // went down with them (closing it rolled the open transaction back), so every
                    // later batch fails with `ConnectionLost` and a new backend reopens the file.
                    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        run_batch(&slot, batch)
                    }));
                    next = receiver.try_recv().ok();
                    match (ran, &handoff) {
                        (Ok(settled), None) => settled.answer(None),
                        (Ok(settled), Some(handoff)) => handoff.settle(settled, next.is_some()),
                        (Err(_), _) => {
                            tracing::error!(
                                "the writer panicked running a batch; its operations failed and \
                                 the database's connection is lost"
                            );
                            slot.mark_lost();
                        }
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
/// Only when a failing operation did write, or SQLite ended the transaction under an operation
/// (a statement interrupted at its deadline, or failing with `FULL`, `NOMEM`, `IOERR`, `BUSY`,
/// rolls the whole transaction back), does the batch roll back and run again, every operation
/// in its own savepoint. An operation that failed keeps that answer and does not run again; the
/// others' answers are those of the run that commits. Should SQLite end the transaction during a
/// run with savepoints, that run is abandoned the same way and the batch runs again without the
/// operation it happened under: each run settles at least one operation for good, so a batch
/// runs at most once per operation plus once. Savepoints cost every operation in a batch two
/// statements and a copy of each page it touches that an earlier operation had already changed
/// (about 14 % of the writer's instructions with 64 concurrent claims, callgrind); failures that
/// write are rare (the built-in guest checks everything before its first write).
fn run_in_transaction(
    connection: Connection,
    slot: &ConnectionSlot,
    batch: &mut [Box<dyn Job>],
) -> (Connection, Result<usize, BatchFailure>) {
    let policy = slot.policy();
    if batch.len() == 1 {
        return run_batch_of_one(connection, policy, &mut batch[0]);
    }
    let mut settled = vec![false; batch.len()];
    let (mut connection, mut outcome) = run_optimistically(connection, policy, batch, &mut settled);
    loop {
        if let Some(outcome) = outcome {
            return (connection, outcome);
        }
        slot.count_batch_run_again();
        (connection, outcome) = run_with_savepoints(connection, policy, batch, &mut settled);
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

/// Run `job` inside the batch's transaction; `(connection, succeeded, transaction_ended)`.
/// When SQLite ended the transaction under the job, the job fails whatever it reported (a job
/// that reports success then is given [`OperationFailure::TransactionEnded`]).
fn run_job(
    connection: Connection,
    policy: &SqlPolicy,
    job: &mut Box<dyn Job>,
) -> (Connection, bool, bool) {
    let (connection, succeeded) = job.run(connection, policy);
    let ended = connection.is_autocommit();
    if ended && succeeded {
        job.fail(OperationFailure::TransactionEnded { op: job.op() });
    }
    (connection, succeeded && !ended, ended)
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
    let (connection, succeeded, _) = run_job(connection, policy, job);
    finish(connection, begin, usize::from(succeeded), None)
}

/// The batch without savepoints; `None` when an operation that failed had written or SQLite
/// ended the transaction under an operation, after rolling the batch back (the caller runs it
/// again with savepoints). Every operation that failed is marked in `settled`: its answer
/// stands.
fn run_optimistically(
    mut connection: Connection,
    policy: &SqlPolicy,
    batch: &mut [Box<dyn Job>],
    settled: &mut [bool],
) -> (Connection, Option<Result<usize, BatchFailure>>) {
    let begin = begin_statement(batch);
    if let Err(error) = run_host_statement(&connection, begin) {
        return (connection, Some(Err(BatchFailure::Database(error))));
    }
    let mut succeeded_ops = 0;
    for (job, settled) in batch.iter_mut().zip(settled.iter_mut()) {
        let changes_before = connection.total_changes();
        let (returned, succeeded, ended) = run_job(connection, policy, job);
        connection = returned;
        if succeeded {
            succeeded_ops += 1;
            continue;
        }
        *settled = true;
        if ended {
            // Everything the batch did so far is gone: start over without this operation.
            return (connection, None);
        }
        if connection.total_changes() != changes_before {
            // Its writes cannot be told apart from the others': start over with savepoints.
            if let Err(error) = run_host_statement(&connection, ROLLBACK) {
                return (connection, Some(Err(BatchFailure::Database(error))));
            }
            return (connection, None);
        }
    }
    let (connection, outcome) = finish(connection, begin, succeeded_ops, None);
    (connection, Some(outcome))
}

/// The operations not yet `settled`, each in its own savepoint, so that a failure undoes only
/// itself (and is marked settled). `None` when SQLite ended the transaction under an
/// operation: that operation is settled as failed, and the caller runs the batch again.
fn run_with_savepoints(
    mut connection: Connection,
    policy: &SqlPolicy,
    batch: &mut [Box<dyn Job>],
    settled: &mut [bool],
) -> (Connection, Option<Result<usize, BatchFailure>>) {
    let begin = begin_statement(batch);
    if let Err(error) = run_host_statement(&connection, begin) {
        return (connection, Some(Err(BatchFailure::Database(error))));
    }
    let mut failure = None;
    let mut succeeded_ops = 0;
    for (job, settled) in batch.iter_mut().zip(settled.iter_mut()) {
        if *settled {
            continue;
        }
        if let Err(error) = run_host_statement(&connection, SAVEPOINT) {
            job.fail(OperationFailure::Database {
                op: job.op(),
                source: error,
            });
            *settled = true;
            continue;
        }
        let (returned, succeeded, ended) = run_job(connection, policy, job);
        connection = returned;
        if ended {
            *settled = true;
            return (connection, None);
        }
        succeeded_ops += usize::from(succeeded);
        let undo = if succeeded {
            run_host_statement(&connection, RELEASE)
        } else {
            *settled = true;
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
    let (connection, outcome) = finish(connection, begin, succeeded_ops, failure);
    (connection, Some(outcome))
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
    use crate::storage::connection::ConnectionSlot;
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

    /// What a [`Scripted`] job does when run.
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Script {
        /// Insert its name, succeed.
        Succeed,
        /// Insert its name, fail.
        FailAfterWriting,
        /// Insert its name, end the transaction as an interrupted write or a `FULL` error does
        /// (a rollback SQLite performs), and report success anyway.
        EndTransaction,
    }

    /// A job running a [`Script`] on table `t`; its answer (`Ok` or the error's text) and how
    /// often it ran arrive on `answers`.
    struct Scripted {
        name: &'static str,
        script: Script,
        runs: usize,
        result: Option<Result<(), String>>,
        answers: mpsc::Sender<(&'static str, Result<(), String>, usize)>,
    }

    impl Job for Scripted {
        fn op(&self) -> &'static str {
            self.name
        }
        fn writes(&self) -> bool {
            true
        }
        fn run(&mut self, connection: Connection, _: &SqlPolicy) -> (Connection, bool) {
            self.runs += 1;
            connection
                .execute("INSERT INTO t (name) VALUES (?1)", [self.name])
                .unwrap();
            let succeeded = match self.script {
                Script::Succeed => true,
                Script::FailAfterWriting => false,
                Script::EndTransaction => {
                    connection.execute_batch("ROLLBACK").unwrap();
                    true
                }
            };
            self.result = Some(if succeeded {
                Ok(())
            } else {
                Err("failed".into())
            });
            (connection, succeeded)
        }
        fn fail(&mut self, failure: OperationFailure) {
            self.result = Some(Err(failure.to_string()));
        }
        fn answer(self: Box<Self>, batch: Option<&BatchFailure>) {
            let result = match (self.result, batch) {
                (Some(Err(error)), _) => Err(error),
                (_, Some(failure)) => Err(format!("batch: {failure:?}")),
                (Some(Ok(())), None) => Ok(()),
                (None, None) => Err("never ran".into()),
            };
            let _ = self.answers.send((self.name, result, self.runs));
        }
    }

    /// Run `scripts` as one batch on a fresh table; the batch's outcome, every job's answer and
    /// run count (in batch order), the names committed, and the batches run again.
    #[allow(clippy::type_complexity)]
    fn run_scripted(
        scripts: &[(&'static str, Script)],
    ) -> (
        Result<usize, String>,
        Vec<(&'static str, Result<(), String>, usize)>,
        Vec<String>,
        u64,
    ) {
        let connection = Connection::open_in_memory().unwrap();
        connection
            .execute_batch("CREATE TABLE t (name TEXT)")
            .unwrap();
        let slot = ConnectionSlot::new(connection);
        let (answers, answered) = mpsc::channel();
        let mut jobs: Vec<Box<dyn Job>> = scripts
            .iter()
            .map(|&(name, script)| {
                Box::new(Scripted {
                    name,
                    script,
                    runs: 0,
                    result: None,
                    answers: answers.clone(),
                }) as Box<dyn Job>
            })
            .collect();
        let connection = slot.lock().take().unwrap();
        let (connection, outcome) = run_in_transaction(connection, &slot, &mut jobs);
        let outcome = outcome.map_err(|failure| format!("{failure:?}"));
        assert!(connection.is_autocommit(), "the transaction is over");
        let committed = connection
            .prepare("SELECT name FROM t ORDER BY rowid")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let failure = outcome.as_ref().err().map(|_| BatchFailure::ConnectionLost);
        for job in jobs {
            job.answer(failure.as_ref());
        }
        drop(answers);
        let answers = answered.iter().collect();
        (
            outcome,
            answers,
            committed,
            slot.commit_stats().batches_run_again,
        )
    }

    #[test]
    fn a_transaction_ended_under_one_operation_fails_only_that_operation() {
        let (outcome, answers, committed, runs_again) = run_scripted(&[
            ("a", Script::Succeed),
            ("ender", Script::EndTransaction),
            ("b", Script::Succeed),
        ]);
        assert_eq!(outcome, Ok(2));
        assert_eq!(committed, ["a", "b"], "the others' work is redone and kept");
        assert_eq!(runs_again, 1);
        let [(_, a, a_runs), (_, ender, ender_runs), (_, b, b_runs)] = &answers[..] else {
            panic!("{answers:?}")
        };
        assert_eq!((a, a_runs), (&Ok(()), &2), "a's first run was rolled back");
        assert!(
            matches!(ender, Err(error) if error.contains("SQLite rolled back the transaction")),
            "success over an ended transaction is refused: {ender:?}"
        );
        assert_eq!(
            *ender_runs, 1,
            "the operation that ended it is not run again"
        );
        assert_eq!((b, b_runs), (&Ok(()), &1));
    }

    #[test]
    fn a_transaction_ended_during_the_run_with_savepoints_runs_the_rest_again() {
        let (outcome, answers, committed, runs_again) = run_scripted(&[
            ("a", Script::Succeed),
            ("failer", Script::FailAfterWriting),
            ("ender", Script::EndTransaction),
            ("b", Script::Succeed),
        ]);
        assert_eq!(outcome, Ok(2));
        assert_eq!(committed, ["a", "b"]);
        assert_eq!(runs_again, 2, "once after the failure, once after the end");
        let results: Vec<_> = answers
            .iter()
            .map(|(name, result, runs)| (*name, result.is_ok(), *runs))
            .collect();
        assert_eq!(
            results,
            [
                ("a", true, 3),
                ("failer", false, 1),
                ("ender", false, 1),
                ("b", true, 1)
            ]
        );
    }

    /// A job that panics when run (a host bug), or succeeds; its answer (the batch's failure,
    /// if any) arrives on `answers`.
    struct Probe {
        panics: bool,
        answers: mpsc::Sender<Result<(), String>>,
    }

    impl Job for Probe {
        fn op(&self) -> &'static str {
            "probe"
        }
        fn writes(&self) -> bool {
            true
        }
        fn run(&mut self, connection: Connection, _: &SqlPolicy) -> (Connection, bool) {
            assert!(!self.panics, "a host bug while the connection is out");
            (connection, true)
        }
        fn fail(&mut self, _: OperationFailure) {}
        fn answer(self: Box<Self>, batch: Option<&BatchFailure>) {
            let _ = self.answers.send(match batch {
                Some(failure) => Err(format!("{failure:?}")),
                None => Ok(()),
            });
        }
    }

    #[test]
    fn a_panic_in_the_writer_fails_its_batch_and_every_later_one_until_reopened() {
        let uri = "file:writer-panic?mode=memory&cache=shared";
        let database = Database::open_shared(uri).expect("open a memory database");
        let (panicking, dropped) = mpsc::channel();
        assert!(
            database
                .submit(Box::new(Probe {
                    panics: true,
                    answers: panicking
                }))
                .is_ok()
        );
        assert!(
            dropped.recv().is_err(),
            "the panicking batch is dropped unanswered (its caller sees `TaskFailed`)"
        );
        let (answers, answered) = mpsc::channel();
        let probe = |answers: &mpsc::Sender<_>| {
            Box::new(Probe {
                panics: false,
                answers: answers.clone(),
            })
        };
        assert!(
            database.submit(probe(&answers)).is_ok(),
            "the writer lives on"
        );
        let later = answered.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(later, Err("ConnectionLost".into()));
        let reopened = Database::open_shared(uri).expect("reopen");
        assert!(!Arc::ptr_eq(&database, &reopened), "a new connection");
        assert!(reopened.submit(probe(&answers)).is_ok());
        assert_eq!(
            answered.recv_timeout(Duration::from_secs(10)).unwrap(),
            Ok(())
        );
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
