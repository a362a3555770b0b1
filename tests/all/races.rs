//! Races inside one process: 64 tasks claim one execution at the same moment, round after round,
//! on an in-memory and on a file database. Exactly one claim wins each round; every other claim
//! gets a typed contention error (`Contention` or `Conflict`), never a `Transport` error (no
//! `SQLITE_BUSY` or `SQLITE_LOCKED` reaches a caller); the database agrees with the winner.

use crate::support::*;
use ff_backend_sqlite_wasm::SqliteBackend;
use ff_core::engine_backend::EngineBackend;
use ff_core::engine_error::EngineError;
use ff_core::types::WorkerInstanceId;
use serial_test::parallel;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Barrier;

/// Claimants per round.
const TASKS: usize = 64;
/// Rounds per database.
const ROUNDS: usize = 200;
/// The worker every claim grant names: all 64 tasks hold a valid grant for it, so the only
/// thing deciding the winner is who gets the write lock first.
const RACER: &str = "racer";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[parallel(process)]
async fn sixty_four_tasks_race_to_claim_on_a_memory_database() {
    let backend = fresh_backend("races").await;
    race("memory", &backend).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[parallel(process)]
async fn sixty_four_tasks_race_to_claim_on_a_file_database() {
    let dir = ScratchDir::new("races");
    dev_mode();
    let backend = SqliteBackend::new(&dir.file("races.sqlite"))
        .await
        .expect("construct");
    race("file", &backend).await;
    drop(backend);
}

/// [`ROUNDS`] rounds of: create one execution, grant it to [`RACER`], let [`TASKS`] tasks
/// (released together by a barrier, each its own worker instance) call `claim_execution`, and
/// check the outcome in the results and in the rows.
async fn race(database: &str, backend: &Arc<SqliteBackend>) {
    let engine: Arc<dyn EngineBackend> = backend.clone();
    let started = Instant::now();
    let mut losers: BTreeMap<String, usize> = BTreeMap::new();
    for round in 0..ROUNDS {
        let eid = new_execution_id();
        let now = now_ms();
        engine
            .create_execution(create_args(eid.clone(), "default", now))
            .await
            .expect("create");
        engine
            .issue_claim_grant(grant_args(eid.clone(), RACER, now))
            .await
            .expect("grant");

        let barrier = Arc::new(Barrier::new(TASKS));
        let tasks: Vec<_> = (0..TASKS)
            .map(|task| {
                let (engine, barrier) = (Arc::clone(&engine), Arc::clone(&barrier));
                let mut args = claim_args_at(eid.clone(), RACER, 0, now);
                args.worker_instance_id = WorkerInstanceId::new(format!("racer-{task}"));
                tokio::spawn(async move {
                    barrier.wait().await;
                    engine.claim_execution(args).await
                })
            })
            .collect();

        let mut winners = Vec::new();
        for (task, joined) in tasks.into_iter().enumerate() {
            match joined.await.expect("a claim task panicked") {
                Ok(result) => winners.push((task, claimed(result))),
                Err(error @ (EngineError::Contention(_) | EngineError::Conflict(_))) => {
                    *losers.entry(variant(&error)).or_default() += 1;
                }
                Err(other) => panic!(
                    "{database} database, round {round}, task {task}: a losing claim must be a \
                     typed contention error, got {other:?}"
                ),
            }
        }
        let [(winner, lease)] = winners.as_slice() else {
            panic!(
                "{database} database, round {round}: exactly one claim must win, got {}: {winners:?}",
                winners.len()
            );
        };
        assert_eq!(lease.lease_epoch.0, 1, "round {round}");

        let conn = backend.connection_for_test();
        let key = blob(uuid_of(&eid));
        let attempts: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM ff_attempt WHERE execution_id = ?1",
                [&key],
                |row| row.get(0),
            )
            .unwrap();
        let grants: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM ff_claim_grant WHERE execution_id = ?1",
                [&key],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(
            (attempts, grants),
            (1, 0),
            "round {round}: one attempt row, the grant consumed"
        );
        assert_eq!(
            attempt_column(&conn, &eid, 0, "worker_instance_id || '|' || lease_epoch"),
            format!("racer-{winner}|1"),
            "round {round}: the attempt row is the winner's"
        );
        assert_eq!(
            exec_column(&conn, &eid, "lifecycle_phase || '|' || ownership_state"),
            "active|leased"
        );
        assert_eq!(lease_events(&conn, &eid), ["acquired"], "round {round}");
    }
    println!(
        "{database} database: {ROUNDS} rounds x {TASKS} claims in {:.1?}; losers: {losers:?}",
        started.elapsed()
    );
}

/// The error's variant path, e.g. `Contention(ExecutionNotActive`.
fn variant(error: &EngineError) -> String {
    let debug = format!("{error:?}");
    debug
        .split([' ', '{', ')'])
        .next()
        .unwrap_or_default()
        .to_owned()
}
