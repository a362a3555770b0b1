//! `list_executions` page latency at 1k and 1M executions: does a page cost the same however
//! many executions the partition holds? Both sides are bulk-seeded with one SQL statement (the
//! backend's through its test connection), then page through partition 0 (100 ids a page,
//! following the cursor, starting over at the end) in interleaved rounds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ff_backend_sqlite_wasm::SqliteBackend;
use ff_core::engine_backend::EngineBackend;
use ff_core::partition::{Partition, PartitionFamily, PartitionKey};
use ff_core::types::ExecutionId;
use ff_engine_guest::operator::listing::list_executions;
use rusqlite::Connection;

use crate::native::NativeDb;
use crate::stats::{Run, timed};

/// Ids per page.
pub const PAGE: usize = 100;

/// Insert `count` runnable executions on partition 0 with random ids, in one statement.
pub fn bulk_seed(conn: &Connection, count: usize) -> anyhow::Result<()> {
    conn.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1) \
         INSERT INTO ff_exec_core (partition_key, execution_id, lane_id, lifecycle_phase, \
             ownership_state, eligibility_state, public_state, attempt_state, created_at_ms) \
         SELECT 0, randomblob(16), 'default', 'runnable', 'unowned', 'eligible_now', 'waiting', \
             'pending_first_attempt', i FROM n",
        [i64::try_from(count)?],
    )?;
    Ok(())
}

/// `pages` pages through the backend, following the cursor from `cursor` (updated).
pub async fn through_backend(
    backend: &Arc<SqliteBackend>,
    cursor: &mut Option<ExecutionId>,
    pages: usize,
) -> Run {
    let key = PartitionKey::from(&Partition {
        family: PartitionFamily::Execution,
        index: 0,
    });
    let mut latencies = Vec::with_capacity(pages);
    let started = Instant::now();
    for _ in 0..pages {
        let begun = Instant::now();
        let page = backend
            .list_executions(key.clone(), cursor.take(), PAGE)
            .await
            .expect("list_executions");
        latencies.push(begun.elapsed());
        *cursor = page.next_cursor;
    }
    Run::new(started.elapsed(), latencies)
}

/// `pages` pages with the same guest logic on `conn`, following `cursor` (updated).
pub fn native(conn: &Connection, cursor: &mut Option<String>, pages: usize) -> Run {
    let mut latencies: Vec<Duration> = Vec::with_capacity(pages);
    let started = Instant::now();
    for _ in 0..pages {
        let page = timed(&mut latencies, || {
            list_executions(&mut NativeDb(conn), 0, cursor.as_deref(), PAGE as u32)
                .expect("list_executions")
        });
        *cursor = page.next_cursor;
    }
    Run::new(started.elapsed(), latencies)
}
