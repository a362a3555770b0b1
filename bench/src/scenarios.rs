//! The measured loops, one function per side and shape: claims and lifecycles, through the
//! backend (tokio tasks) or natively (threads sharing one connection, one transaction per
//! operation).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ff_backend_sqlite_wasm::SqliteBackend;
use ff_core::engine_backend::EngineBackend;
use ff_core::types::ExecutionId;
use rusqlite::Connection;

use crate::native::in_transaction;
use crate::stats::{Run, timed};
use crate::workload::{
    claim_args, claimed, complete_args, grant_args, guest_claim, guest_complete, guest_grant,
    guest_renew, now_ms, renew_args,
};

/// What one run does to each execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// `claim_execution` (the execution was seeded with a grant): one operation.
    Claim,
    /// grant → claim → renew → complete (the execution was seeded without a grant): four
    /// operations.
    Lifecycle,
    /// claim → suspend → signal → claim resumed → complete (seeded with a grant, the keystore
    /// seeded): five operations.
    Suspension,
}

impl Work {
    /// Operations per execution.
    pub fn ops(self) -> usize {
        match self {
            Work::Claim => 1,
            Work::Lifecycle => 4,
            Work::Suspension => 1 + crate::suspension::OPS,
        }
    }
}

/// Hands out each execution once to whichever task asks next.
struct Queue {
    ids: Vec<ExecutionId>,
    next: AtomicUsize,
}

impl Queue {
    fn new(ids: Vec<ExecutionId>) -> Arc<Self> {
        Arc::new(Self {
            ids,
            next: AtomicUsize::new(0),
        })
    }

    fn take(&self) -> Option<&ExecutionId> {
        self.ids.get(self.next.fetch_add(1, Ordering::Relaxed))
    }
}

/// `work` on every execution in `ids` through `backend`, from `tasks` concurrent tokio tasks.
pub async fn through_backend(
    backend: &Arc<SqliteBackend>,
    ids: Vec<ExecutionId>,
    tasks: usize,
    work: Work,
) -> Run {
    let queue = Queue::new(ids);
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let queue = Arc::clone(&queue);
            let backend = Arc::clone(backend);
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while let Some(id) = queue.take() {
                    backend_work(&*backend, id, work, &mut latencies).await;
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for handle in handles {
        latencies.extend(handle.await.expect("a benchmark task panicked"));
    }
    Run::new(started.elapsed(), latencies)
}

async fn backend_work(
    backend: &dyn EngineBackend,
    id: &ExecutionId,
    work: Work,
    latencies: &mut Vec<Duration>,
) {
    if work == Work::Lifecycle {
        let granted = timed_async(latencies, backend.issue_claim_grant(grant_args(id))).await;
        granted.expect("issue_claim_grant");
    }
    let claim = timed_async(latencies, backend.claim_execution(claim_args(id))).await;
    let lease = claimed(claim.expect("claim_execution"));
    if work == Work::Suspension {
        crate::suspension::through_backend(backend, id, &lease, latencies).await;
    }
    if work == Work::Lifecycle {
        let renewed = timed_async(latencies, backend.renew_lease(renew_args(id, &lease))).await;
        renewed.expect("renew_lease");
        let completed = timed_async(
            latencies,
            backend.complete_execution(complete_args(id, &lease)),
        )
        .await;
        completed.expect("complete_execution");
    }
}

/// Await `operation` and keep its latency.
async fn timed_async<T>(latencies: &mut Vec<Duration>, operation: impl Future<Output = T>) -> T {
    let started = Instant::now();
    let value = operation.await;
    latencies.push(started.elapsed());
    value
}

/// `work` on every execution in `ids` with the engine logic run natively on `conn`, from
/// `threads` threads taking turns on the one connection (the calling thread alone when
/// `threads` is 1), one transaction per operation.
pub fn native(conn: &Mutex<Connection>, ids: Vec<ExecutionId>, threads: usize, work: Work) -> Run {
    let queue = Queue::new(ids);
    let started = Instant::now();
    if threads == 1 {
        // Sequential: on the calling thread, like a program using rusqlite directly.
        let mut latencies = Vec::new();
        while let Some(id) = queue.take() {
            native_work(conn, id, work, &mut latencies);
        }
        return Run::new(started.elapsed(), latencies);
    }
    let latencies = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let queue = &queue;
                scope.spawn(move || {
                    let mut latencies = Vec::new();
                    while let Some(id) = queue.take() {
                        native_work(conn, id, work, &mut latencies);
                    }
                    latencies
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| worker.join().expect("a benchmark thread panicked"))
            .collect()
    });
    Run::new(started.elapsed(), latencies)
}

fn native_work(
    conn: &Mutex<Connection>,
    id: &ExecutionId,
    work: Work,
    latencies: &mut Vec<Duration>,
) {
    // Each operation takes the connection for its transaction, as a one-connection pool would.
    let op = |latencies: &mut Vec<Duration>, f: &mut dyn FnMut(&Connection)| {
        timed(latencies, || f(&conn.lock().expect("connection lock")));
    };
    let mut lease = None;
    if work == Work::Lifecycle {
        op(latencies, &mut |conn| {
            in_transaction(conn, |db| {
                ff_engine_guest::scheduling::issue_claim_grant(db, &guest_grant(id, now_ms()))
            })
            .expect("native grant")
        });
    }
    op(latencies, &mut |conn| {
        lease = Some(
            in_transaction(conn, |db| {
                ff_engine_guest::scheduling::claim_execution(db, &guest_claim(id))
            })
            .expect("native claim"),
        );
    });
    if work == Work::Suspension {
        let lease = lease.expect("claimed above");
        crate::suspension::native(&mut |f| op(latencies, f), &lease);
        return;
    }
    if work == Work::Lifecycle {
        let lease = lease.expect("claimed above");
        op(latencies, &mut |conn| {
            in_transaction(conn, |db| {
                ff_engine_guest::lease_holder::renew_lease(db, &guest_renew(&lease))
            })
            .expect("native renew");
        });
        op(latencies, &mut |conn| {
            in_transaction(conn, |db| {
                ff_engine_guest::lease_holder::complete_execution(db, &guest_complete(&lease))
            })
            .expect("native complete");
        });
    }
}
