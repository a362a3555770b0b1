//! Group commit on a database file: concurrent operations share transactions, each stays atomic
//! on its own (a failing operation undoes only its own writes, even inside a shared
//! transaction), and an operation is answered only once its transaction is durable.

use crate::support::*;
use ff_backend_sqlite_wasm::{GuestLimits, OperationFailure, SqliteBackend};
use ff_core::contracts::ClaimExecutionResult;
use ff_core::engine_backend::EngineBackend;
use ff_core::engine_error::EngineError;
use ff_core::types::ExecutionId;
use serial_test::{parallel, serial};
use std::path::PathBuf;
use std::sync::Arc;

const HOSTILE_GUEST: &str = env!("FF_HOSTILE_GUEST_WASM");

/// A fresh directory for one test's database file, removed when dropped (also when the test
/// fails: some tests write hundreds of MiB).
fn temp_dir(name: &str) -> ScratchDir {
    ScratchDir::new(name)
}

/// A backend on a new database file `engine.sqlite` in a fresh directory: the directory, the
/// file, the backend.
async fn backend_on_new_file(name: &str) -> (ScratchDir, PathBuf, Arc<SqliteBackend>) {
    dev_mode();
    let dir = temp_dir(name);
    let path = dir.join("engine.sqlite");
    let backend = SqliteBackend::new(path.to_str().unwrap()).await.unwrap();
    (dir, path, backend)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[parallel(process)]
async fn concurrent_operations_share_commits_and_failures_undo_only_themselves() {
    dev_mode();
    let dir = temp_dir("group-commit");
    let path = dir.join("engine.sqlite");
    let uri = path.to_str().unwrap().to_owned();
    let builtin = SqliteBackend::new(&uri).await.unwrap();
    // The hostile guest on the same file shares the writer thread, so its operations land in the
    // same transactions as the real ones.
    let hostile = SqliteBackend::builder(&uri)
        .guest_file(HOSTILE_GUEST)
        .open()
        .await
        .unwrap();
    const CLAIMS: usize = 96;
    let executions: Vec<_> = {
        let conn = builtin.connection_for_test();
        (0..CLAIMS)
            .map(|_| seed_granted(&conn, "worker-1").1)
            .collect()
    };
    let before = builtin.commit_stats();

    let mut tasks = tokio::task::JoinSet::new();
    for (n, eid) in executions.iter().enumerate() {
        let builtin = Arc::clone(&builtin);
        let eid = eid.clone();
        tasks.spawn(async move {
            (
                true,
                builtin.claim_execution(claim_args(eid, "worker-1")).await,
            )
        });
        // Every third operation is a hostile one that damages every row, then fails.
        if n % 3 == 0 {
            let hostile = Arc::clone(&hostile);
            let eid = executions[0].clone();
            let how = if n % 2 == 0 {
                "error-after-write"
            } else {
                "panic-after-write"
            };
            tasks
                .spawn(async move { (false, hostile.claim_execution(claim_args(eid, how)).await) });
        }
    }
    let mut claimed_count = 0;
    while let Some(joined) = tasks.join_next().await {
        match joined.unwrap() {
            (true, result) => {
                claimed(result.expect("every real claim succeeds"));
                claimed_count += 1;
            }
            (false, result) => assert!(result.is_err(), "hostile operations fail: {result:?}"),
        }
    }
    assert_eq!(claimed_count, CLAIMS);

    let conn = builtin.connection_for_test();
    for eid in &executions {
        assert_eq!(exec_column(&conn, eid, "lifecycle_phase"), "active");
    }
    assert_eq!(
        count_rows(&conn, "ff_claim_grant"),
        0,
        "each claim consumed its grant"
    );
    let forged: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM ff_lease_event WHERE execution_id = 'forged'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(forged, 0, "no hostile write survived");
    drop(conn);

    let after = builtin.commit_stats();
    let operations = after.operations - before.operations;
    let transactions = after.transactions - before.transactions;
    assert_eq!(
        operations, CLAIMS as u64,
        "only the real claims committed writes"
    );
    assert!(
        transactions < operations,
        "concurrent claims shared commits: {transactions} transactions for {operations} operations"
    );
    drop((builtin, hostile));
}

#[tokio::test]
#[parallel(process)]
async fn a_commit_that_cannot_be_made_durable_is_not_reported_as_success() {
    let (_dir, path, backend) = backend_on_new_file("unsyncable").await;
    let (_, eid) = seed_granted(&backend.connection_for_test(), "worker-1");
    // SQLite keeps writing to its open WAL, but the writer can no longer reach the file to sync
    // it: the claim commits, yet its durability cannot be established.
    std::fs::remove_file(path.with_extension("sqlite-wal")).unwrap();
    let error = backend
        .claim_execution(claim_args(eid, "worker-1"))
        .await
        .expect_err("no success without a synced WAL");
    let EngineError::Transport { source, .. } = &error else {
        panic!("expected a transport error, got {error:?}");
    };
    assert!(
        matches!(
            source.downcast_ref::<OperationFailure>(),
            Some(OperationFailure::SyncFailed {
                op: "claim_execution",
                ..
            })
        ),
        "{error:?}"
    );
    drop(backend);
}

#[tokio::test]
#[parallel(process)]
async fn sequential_operations_on_a_memory_database_commit_one_by_one() {
    let backend = fresh_backend("memory-commits").await;
    let (_, eid) = seed_granted(&backend.connection_for_test(), "worker-1");
    let before = backend.commit_stats();
    claimed(
        backend
            .claim_execution(claim_args(eid.clone(), "worker-1"))
            .await
            .unwrap(),
    );
    // A failed operation commits nothing.
    let again = backend.claim_execution(claim_args(eid, "worker-1")).await;
    assert!(again.is_err());
    let after = backend.commit_stats();
    assert_eq!(after.transactions - before.transactions, 1);
    assert_eq!(after.operations - before.operations, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[parallel(process)]
async fn an_operation_that_times_out_in_a_shared_transaction_undoes_only_itself() {
    dev_mode();
    let dir = temp_dir("group-timeout");
    let uri = dir.join("engine.sqlite").to_str().unwrap().to_owned();
    let builtin = SqliteBackend::new(&uri).await.unwrap();
    let hostile = SqliteBackend::builder(&uri)
        .guest_file(HOSTILE_GUEST)
        .limits(
            ff_backend_sqlite_wasm::GuestLimits::default()
                .with_operation_timeout(std::time::Duration::from_millis(100)),
        )
        .open()
        .await
        .unwrap();
    let executions: Vec<_> = {
        let conn = builtin.connection_for_test();
        (0..24).map(|_| seed_granted(&conn, "worker-1").1).collect()
    };
    let mut tasks = tokio::task::JoinSet::new();
    for eid in &executions {
        let builtin = Arc::clone(&builtin);
        let eid = eid.clone();
        tasks.spawn(async move {
            builtin
                .claim_execution(claim_args(eid, "worker-1"))
                .await
                .map(|_| ())
        });
    }
    // Damages every row, then spins until the deadline, in the middle of the claims' batches.
    let spinner = {
        let hostile = Arc::clone(&hostile);
        let eid = executions[0].clone();
        tokio::spawn(async move {
            hostile
                .claim_execution(claim_args(eid, "infinite-loop"))
                .await
        })
    };
    while let Some(joined) = tasks.join_next().await {
        joined.unwrap().expect("every real claim succeeds");
    }
    let error = spinner.await.unwrap().expect_err("the spinner times out");
    assert!(matches!(error, EngineError::Timeout { .. }), "{error:?}");
    let conn = builtin.connection_for_test();
    for eid in &executions {
        assert_eq!(exec_column(&conn, eid, "lifecycle_phase"), "active");
    }
    drop(conn);
    drop((builtin, hostile));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[parallel(process)]
async fn the_wal_is_checkpointed_into_the_database_file_while_the_backend_runs() {
    // The writer's connection never checkpoints by itself; a helper copies the WAL back into
    // the database file every 256 synced batches. Without it the WAL would grow until the
    // database is closed, and the database file would hold only the schema.
    let (dir, path, backend) = backend_on_new_file("checkpoint").await;
    const CREATED: usize = 600;
    for _ in 0..CREATED {
        // Sequential: every operation is a batch of its own, synced on its own.
        backend
            .create_execution(create_args(new_execution_id(), "default", now_ms()))
            .await
            .unwrap();
    }
    // The database file alone (no WAL beside the copy) shows what was checkpointed so far
    // (without any checkpoint, not even the schema).
    let copy = dir.join("checkpointed.sqlite");
    std::fs::copy(&path, &copy).unwrap();
    let checkpointed: i64 = rusqlite::Connection::open(&copy)
        .unwrap()
        .query_row("SELECT COUNT(*) FROM ff_exec_core", [], |row| row.get(0))
        .unwrap_or(0);
    assert!(
        checkpointed > 0,
        "no execution reached the database file after {CREATED} commits"
    );
    assert_eq!(
        count_rows(&backend.connection_for_test(), "ff_exec_core"),
        CREATED as i64
    );
    drop(backend);
}

/// A claim not yet started.
type PendingClaim =
    std::pin::Pin<Box<dyn Future<Output = Result<ClaimExecutionResult, EngineError>> + Send>>;

/// `eid` claimed for `worker` through `backend`, once awaited.
fn pending_claim(backend: &Arc<SqliteBackend>, eid: &ExecutionId, worker: &str) -> PendingClaim {
    let backend = Arc::clone(backend);
    let args = claim_args(eid.clone(), worker);
    Box::pin(async move { backend.claim_execution(args).await })
}

/// Run `operations` so that they reach the writer as one batch: the test holds the connection, a throwaway operation takes the writer (which then
/// waits for the connection), the operations queue behind it, and releasing the connection lets
/// the throwaway run alone and the queued ones together.
async fn as_one_batch(
    backend: &Arc<SqliteBackend>,
    operations: Vec<PendingClaim>,
) -> Vec<Result<ClaimExecutionResult, EngineError>> {
    let held = backend.connection_for_test();
    let throwaway = {
        let backend = Arc::clone(backend);
        tokio::spawn(async move {
            backend
                .claim_execution(claim_args(new_execution_id(), "w"))
                .await
        })
    };
    // Generous pauses: on a busy two-core machine a spawned task may take a while to run.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let spawned: Vec<_> = operations.into_iter().map(tokio::spawn).collect();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    drop(held);
    assert!(
        throwaway.await.unwrap().is_err(),
        "the throwaway claim finds nothing"
    );
    let mut results = Vec::new();
    for task in spawned {
        results.push(task.await.unwrap());
    }
    results
}

/// A backend on a fresh database file with two executions granted to `worker-1`.
struct TwoGranted {
    _dir: ScratchDir,
    uri: String,
    backend: Arc<SqliteBackend>,
    first: ExecutionId,
    second: ExecutionId,
}

impl TwoGranted {
    async fn new(name: &str) -> Self {
        dev_mode();
        let dir = temp_dir(name);
        let uri = dir.join("engine.sqlite").to_str().unwrap().to_owned();
        let backend = SqliteBackend::new(&uri).await.unwrap();
        let (first, second) = {
            let conn = backend.connection_for_test();
            (
                seed_granted(&conn, "worker-1").1,
                seed_granted(&conn, "worker-1").1,
            )
        };
        Self {
            _dir: dir,
            uri,
            backend,
            first,
            second,
        }
    }

    /// Both executions are leased, then the database is removed.
    fn assert_both_leased_and_remove(self) {
        let conn = self.backend.connection_for_test();
        for eid in [&self.first, &self.second] {
            assert_eq!(exec_column(&conn, eid, "lifecycle_phase"), "active");
        }
        drop(conn);
        drop(self.backend);
    }
}

/// Alone in the process (`#[serial(process)]`): [`as_one_batch`] gives spawned tasks fixed pauses
/// to reach the writer, which other tests' load could outlast.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[serial(process)]
async fn failures_that_wrote_nothing_share_a_batch_without_running_it_again() {
    let fixture = TwoGranted::new("optimistic-batch").await;
    let (backend, first, second) = (&fixture.backend, &fixture.first, &fixture.second);
    let before = backend.commit_stats();
    // Whichever of the two claims of `first` runs second fails (leased by the other, in the
    // same transaction) before it writes anything. (Spawned tasks reach the writer in any
    // order.)
    let claims = vec![
        pending_claim(backend, first, "worker-1"),
        pending_claim(backend, first, "worker-1"),
        pending_claim(backend, second, "worker-1"),
    ];
    let [one, another, other]: [_; 3] = as_one_batch(backend, claims).await.try_into().unwrap();
    let (won, lost) = if one.is_ok() {
        (one, another)
    } else {
        (another, one)
    };
    claimed(won.expect("one claim of the execution succeeds"));
    assert!(lost.is_err(), "the other claim of it fails: {lost:?}");
    claimed(other.expect("the other execution's claim succeeds"));

    let after = backend.commit_stats();
    assert_eq!(
        after.transactions - before.transactions,
        1,
        "one shared commit"
    );
    assert_eq!(after.operations - before.operations, 2);
    assert_eq!(
        after.batches_run_again, before.batches_run_again,
        "nothing to undo"
    );
    fixture.assert_both_leased_and_remove();
}

/// Alone in the process (`#[serial(process)]`): [`as_one_batch`] gives spawned tasks fixed pauses
/// to reach the writer, which other tests' load could outlast.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[serial(process)]
async fn a_failure_that_wrote_makes_its_batch_run_again_with_savepoints() {
    let fixture = TwoGranted::new("batch-run-again").await;
    let (backend, first, second) = (&fixture.backend, &fixture.first, &fixture.second);
    let hostile = SqliteBackend::builder(&fixture.uri)
        .guest_file(HOSTILE_GUEST)
        .open()
        .await
        .unwrap();
    let before = backend.commit_stats();
    // The hostile claim damages every row, then returns an error, between two real claims.
    let claims = vec![
        pending_claim(backend, first, "worker-1"),
        pending_claim(&hostile, first, "error-after-write"),
        pending_claim(backend, second, "worker-1"),
    ];
    let [real, forged, other]: [_; 3] = as_one_batch(backend, claims).await.try_into().unwrap();
    let first_lease = claimed(real.expect("the first claim succeeds"));
    assert!(forged.is_err(), "the hostile claim fails");
    claimed(other.expect("the other claim succeeds"));
    // The answers come from the second run, which the first claim's lease also comes from.
    assert_eq!(first_lease.lease_epoch.0, 1);

    let after = backend.commit_stats();
    assert_eq!(after.batches_run_again - before.batches_run_again, 1);
    assert_eq!(after.transactions - before.transactions, 1);
    assert_eq!(after.operations - before.operations, 2);
    assert_eq!(
        count_rows(&backend.connection_for_test(), "ff_lease_event"),
        2,
        "one event per real claim, none forged"
    );
    drop(hostile);
    fixture.assert_both_leased_and_remove();
}

/// Claims granted to `worker-1` in the batch around the hostile `slow-write` claim.
const CLAIMS_AROUND_A_SLOW_WRITE: usize = 16;

/// A writing statement stopped at its deadline makes SQLite roll back the whole batch's
/// transaction. The operation it ran in fails as `Timeout`, nothing it wrote is kept (not even
/// what it wrote after the interrupt, which would otherwise have run in autocommit mode), and
/// every other claim of the batch is run again and succeeds: no `Transport` error for work that
/// would have succeeded, no success for work that was rolled back.
///
/// Alone in the process (`#[serial(process)]`): [`as_one_batch`] gives spawned tasks fixed pauses
/// to reach the writer, which other tests' load could outlast.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[serial(process)]
async fn a_write_stopped_at_its_deadline_fails_only_its_own_operation() {
    let (_dir, path, backend) = backend_on_new_file("slow-write-batch").await;
    let (granted, slow_target): (Vec<ExecutionId>, ExecutionId) = {
        let conn = backend.connection_for_test();
        (
            (0..CLAIMS_AROUND_A_SLOW_WRITE)
                .map(|_| seed_granted(&conn, "worker-1").1)
                .collect(),
            seed_granted(&conn, "slow-write").1,
        )
    };
    let timeout = std::time::Duration::from_millis(200);
    let hostile = SqliteBackend::builder(path.to_str().unwrap())
        .guest_file(HOSTILE_GUEST)
        .limits(GuestLimits::default().with_operation_timeout(timeout))
        .open()
        .await
        .unwrap();
    let before = backend.commit_stats();
    let half = CLAIMS_AROUND_A_SLOW_WRITE / 2;
    let mut claims: Vec<PendingClaim> = granted[..half]
        .iter()
        .map(|eid| pending_claim(&backend, eid, "worker-1"))
        .collect();
    claims.push(pending_claim(&hostile, &slow_target, "slow-write"));
    claims.extend(
        granted[half..]
            .iter()
            .map(|eid| pending_claim(&backend, eid, "worker-1")),
    );
    let started = std::time::Instant::now();
    let mut results = as_one_batch(&backend, claims).await;
    eprintln!(
        "slow-write batch of {} claims answered {:?} after the batch was let go (timeout {timeout:?})",
        CLAIMS_AROUND_A_SLOW_WRITE + 1,
        started
            .elapsed()
            .saturating_sub(std::time::Duration::from_millis(400))
    );
    let slow = results.remove(half);
    assert!(
        matches!(
            slow,
            Err(EngineError::Timeout {
                op: "claim_execution",
                ..
            })
        ),
        "the slow write times out: {slow:?}"
    );
    for (index, result) in results.into_iter().enumerate() {
        claimed(result.unwrap_or_else(|error| panic!("claim {index} must succeed: {error:?}")));
    }
    let after = backend.commit_stats();
    assert_eq!(
        after.operations - before.operations,
        CLAIMS_AROUND_A_SLOW_WRITE as u64
    );
    assert!(after.batches_run_again > before.batches_run_again);
    let conn = backend.connection_for_test();
    for eid in &granted {
        assert_eq!(exec_column(&conn, eid, "lifecycle_phase"), "active");
    }
    assert_eq!(
        exec_column(&conn, &slow_target, "lifecycle_phase"),
        "runnable"
    );
    let foreign_events: i64 = conn
        .query_row(
            "SELECT count(*) FROM ff_lease_event WHERE execution_id IN \
             ('forged', 'hostile-slow', 'hostile-after-interrupt')",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(
        foreign_events, 0,
        "nothing the hostile guest wrote is kept, before or after the interrupt"
    );
    assert_eq!(
        count_rows(&conn, "ff_lease_event"),
        CLAIMS_AROUND_A_SLOW_WRITE as i64,
        "one event per real claim"
    );
    drop(conn);
    drop((hostile, backend));
}

/// Alone in the process (`#[serial(process)]`): the WAL's longest length is the restart length
/// plus one checkpoint interval's batches, and batches grow when the writer falls behind, as it
/// does under other tests' load (with eight tests at a time it passed half the payloads).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[serial(process)]
async fn the_wal_starts_over_even_when_writes_never_pause() {
    // With operations always queued, every checkpoint is overtaken by the next commits, so
    // SQLite never finds the WAL fully copied when a transaction begins and would append to it
    // until the database is closed. Once the WAL is long, the writer pauses for one checkpoint
    // and the WAL starts over from its beginning (docs/semantics.md, "Checkpoints").
    let (_dir, path, backend) = backend_on_new_file("wal-restart").await;
    const TASKS: usize = 16;
    const CREATES_PER_TASK: usize = 400;
    const PAYLOAD: usize = 64 * 1024;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..TASKS {
        let backend = Arc::clone(&backend);
        tasks.spawn(async move {
            for _ in 0..CREATES_PER_TASK {
                let mut args = create_args(new_execution_id(), "default", now_ms());
                args.input_payload = vec![b'x'; PAYLOAD];
                backend.create_execution(args).await.unwrap();
            }
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.unwrap();
    }
    // Every payload went through the WAL at least once: 400 MiB in all.
    let written = (TASKS * CREATES_PER_TASK * PAYLOAD) as u64;
    let wal = std::fs::metadata(path.with_extension("sqlite-wal"))
        .unwrap()
        .len();
    assert!(
        wal < written / 2,
        "the WAL grew to {wal} bytes for {written} bytes of payloads: it never started over"
    );
    assert_eq!(
        count_rows(&backend.connection_for_test(), "ff_exec_core"),
        (TASKS * CREATES_PER_TASK) as i64
    );
    drop(backend);
}
