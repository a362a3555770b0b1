//! A database's one connection ([`ConnectionSlot`]), shared by its writer thread and test
//! access, with the SQL policy installed on it and the group-commit counters ([`CommitStats`]).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use rusqlite::Connection;

use super::policy::SqlPolicy;

/// The database's one connection and the switch between the host's and the guest's SQL rights
/// on it.
///
/// The connection sits in an `Option` so that an operation can move it into the guest's
/// `Store` and back; it is `None` only while a batch runs (with the mutex held), or for good if
/// the writer thread panicked in between.
pub(crate) struct ConnectionSlot {
    connection: Mutex<Option<Connection>>,
    policy: SqlPolicy,
    transactions: AtomicU64,
    operations: AtomicU64,
    batches_run_again: AtomicU64,
    /// Whether the connection was dropped after a panic of the writer thread or a failed sync
    /// ([`ConnectionSlot::mark_lost`]).
    lost: AtomicBool,
}

impl ConnectionSlot {
    /// Hold `connection`, installing the SQL policy on it.
    pub fn new(connection: Connection) -> Self {
        let policy = SqlPolicy::install(&connection);
        Self {
            connection: Mutex::new(Some(connection)),
            policy,
            transactions: AtomicU64::new(0),
            operations: AtomicU64::new(0),
            batches_run_again: AtomicU64::new(0),
            lost: AtomicBool::new(false),
        }
    }

    /// What this connection's transactions committed so far.
    pub fn commit_stats(&self) -> CommitStats {
        CommitStats {
            transactions: self.transactions.load(Ordering::Relaxed),
            operations: self.operations.load(Ordering::Relaxed),
            batches_run_again: self.batches_run_again.load(Ordering::Relaxed),
        }
    }

    /// Count one committed transaction carrying the writes of `operations` operations.
    pub fn count_commit(&self, operations: usize) {
        self.transactions.fetch_add(1, Ordering::Relaxed);
        self.operations.fetch_add(
            u64::try_from(operations).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// Count one batch rolled back and run again with savepoints (see `writer`).
    pub fn count_batch_run_again(&self) {
        self.batches_run_again.fetch_add(1, Ordering::Relaxed);
    }

    /// Drop the connection for good: the writer panicked while running a batch, or the WAL
    /// could not be synced (see `durability`). Every later batch fails with `ConnectionLost`.
    pub fn mark_lost(&self) {
        self.lost.store(true, Ordering::Release);
        drop(self.lock().take());
    }

    /// Whether [`ConnectionSlot::mark_lost`] was called: a new backend for this database must
    /// open it again.
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::Acquire)
    }

    /// Lock the connection (the writer thread and test access take turns on it).
    pub fn lock(&self) -> MutexGuard<'_, Option<Connection>> {
        self.connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The switch between the host's and the guest's SQL rights on this connection.
    pub fn policy(&self) -> &SqlPolicy {
        &self.policy
    }
}

/// How much group commit saved on one database: `operations` writing operations committed in
/// `transactions` transactions (each one `fsync` on a file), since the database was opened by
/// this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CommitStats {
    /// Transactions committed.
    pub transactions: u64,
    /// Operations whose writes those transactions carried.
    pub operations: u64,
    /// Batches of several operations rolled back and run again, each operation in its own
    /// savepoint, because an operation that had written failed (a batch first runs without
    /// savepoints).
    pub batches_run_again: u64,
}
