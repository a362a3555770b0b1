//! The sandbox, from the outside: a hostile guest (`tests/guests/hostile`, the misbehaviour
//! named by the claim's worker id) is run under tight limits, and for every misbehaviour
//!
//! * the caller gets a typed `EngineError` within a generous bound ([`BOUND`]; the limits
//!   themselves are far smaller, the bound is a safety net, not a benchmark);
//! * every table, the schema and `user_version` are exactly as before ([`Fingerprint`]);
//! * the hostile backend keeps serving (its next call runs on a fresh instance and answers);
//! * the built-in guest's next operation on the same database succeeds.
//!
//! Also here: what the host cannot detect (a guest that returns success after writing
//! garbage), the limits' defaults, and components that do not fit the world.
//!
//! Run with `--nocapture` to see how long each misbehaviour took to be stopped.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::support::*;
use ff_backend_sqlite_wasm::{
    GuestLimits, GuestMismatch, OpenError, OperationFailure, SqliteBackend, check_guest_component,
    precompile_guest_component,
};
use ff_core::engine_backend::EngineBackend;
use ff_core::engine_error::{EngineError, ValidationKind};
use ff_core::state::PublicState;
use ff_core::types::ExecutionId;
use rusqlite::Connection;
use serial_test::{parallel, serial};

const HOSTILE_GUEST: &str = env!("FF_HOSTILE_GUEST_WASM");

/// The most any contained misbehaviour may take, start to error.
const BOUND: Duration = Duration::from_secs(5);

/// The timeout the suite runs the hostile guest under.
const TIMEOUT: Duration = Duration::from_millis(200);
/// The memory limit the suite runs the hostile guest under.
const MEMORY_MIB: usize = 16;
/// The query row limit the suite runs the hostile guest under.
const QUERY_ROWS: usize = 1_000;
/// The query byte limit the suite runs the hostile guest under.
const QUERY_BYTES: usize = 1 << 20;

/// Small limits, so that every breach is quick.
fn tight_limits() -> GuestLimits {
    GuestLimits::default()
        .with_operation_timeout(TIMEOUT)
        .with_memory_bytes(MEMORY_MIB << 20)
        .with_query_rows(QUERY_ROWS)
        .with_query_bytes(QUERY_BYTES)
}

/// The hostile guest, precompiled once per test process into cargo's scratch directory for
/// tests (written under a unique name, then renamed into place, so concurrent runs never see
/// half a file): compiling the component takes seconds in a debug build, loading the artifact
/// milliseconds. (`custom_guests_load_from_a_file_and_from_bytes` covers the uncompiled paths.)
fn hostile_artifact() -> &'static Path {
    static ARTIFACT: OnceLock<PathBuf> = OnceLock::new();
    ARTIFACT.get_or_init(|| {
        let bytes = std::fs::read(HOSTILE_GUEST).expect("the hostile guest was built");
        let artifact = precompile_guest_component(&bytes).expect("the hostile guest fits");
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let path = dir.join("ff-hostile-guest.cwasm");
        let partial = dir.join(format!(
            "ff-hostile-guest-{}.cwasm.partial",
            uuid::Uuid::new_v4()
        ));
        std::fs::write(&partial, artifact).expect("write the artifact");
        std::fs::rename(&partial, &path).expect("move the artifact into place");
        path
    })
}

/// A backend on `uri` running the hostile guest under `limits`.
async fn hostile_backend(uri: &str, limits: GuestLimits) -> Arc<SqliteBackend> {
    dev_mode();
    SqliteBackend::builder(uri)
        .guest_precompiled_file(hostile_artifact())
        .limits(limits)
        .open()
        .await
        .expect("the hostile guest loads")
}

// ── Fingerprints ────────────────────────────────────────────────────────────────────────────

/// Everything a guest could change: every row of every table ([`snapshot`]), the schema of
/// `main` and `temp` (tables, indexes, triggers, views), the attached databases and
/// `user_version`.
#[derive(Debug, PartialEq, Eq)]
struct Fingerprint {
    rows: Vec<String>,
    schema: Vec<String>,
    databases: Vec<String>,
    user_version: i64,
}

impl Fingerprint {
    fn of(conn: &Connection) -> Self {
        let strings = |sql: &str| -> Vec<String> {
            conn.prepare(sql)
                .unwrap()
                .query_map([], |row| row.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        Self {
            rows: snapshot(conn),
            schema: strings(
                "SELECT type || ' ' || name || ': ' || COALESCE(sql, '') FROM \
                 (SELECT * FROM sqlite_master UNION ALL SELECT * FROM sqlite_temp_master) \
                 ORDER BY 1",
            ),
            databases: strings("SELECT name FROM pragma_database_list ORDER BY name"),
            user_version: conn
                .query_row("PRAGMA user_version", [], |row| row.get(0))
                .unwrap(),
        }
    }
}

// ── Provoking a misbehaviour ────────────────────────────────────────────────────────────────

/// What one contained misbehaviour left behind.
struct Contained {
    error: EngineError,
    elapsed: Duration,
}

/// On a fresh database: seed an execution granted to `worker` (the misbehaviour) and one
/// granted to `worker-1`; make the hostile backend (under [`tight_limits`]) claim the first as
/// `worker`, with `attempt_policy_json = parameter`; then check containment (the error within
/// [`BOUND`], the [`Fingerprint`] unchanged, the hostile backend still serving, the built-in
/// guest claiming the second execution) and hand back the error.
async fn provoke(worker: &str, parameter: &str) -> Contained {
    provoke_with(worker, parameter, tight_limits()).await
}

/// [`provoke`] under `limits`.
async fn provoke_with(worker: &str, parameter: &str, limits: GuestLimits) -> Contained {
    let uri = memory_uri(&format!("sandbox-{worker}"));
    let hostile = hostile_backend(&uri, limits).await;
    let (target, spare) = {
        let conn = hostile.connection_for_test();
        (
            seed_granted(&conn, worker).1,
            seed_granted(&conn, "worker-1").1,
        )
    };
    let before = Fingerprint::of(&hostile.connection_for_test());

    let mut args = claim_args(target, worker);
    args.attempt_policy_json = parameter.into();
    let started = Instant::now();
    let outcome = hostile.claim_execution(args).await;
    let elapsed = started.elapsed();
    let error = outcome.expect_err("the misbehaviour must fail the operation");
    eprintln!("{worker}: stopped after {elapsed:?}: {error}");

    assert!(
        elapsed < BOUND,
        "{worker}: the error came back after {elapsed:?}"
    );
    assert_eq!(
        Fingerprint::of(&hostile.connection_for_test()),
        before,
        "{worker}: nothing may change ({error:?})"
    );
    assert_keeps_serving(&hostile, &uri, &spare).await;
    Contained { error, elapsed }
}

/// The hostile backend answers its next calls (a fresh instance), and the built-in guest on
/// the same database claims `spare` (granted to `worker-1`).
async fn assert_keeps_serving(hostile: &SqliteBackend, uri: &str, spare: &ExecutionId) {
    hostile.ping().await.expect("the hostile backend serves on");
    assert_execution_not_found(
        hostile
            .claim_execution(claim_args(spare.clone(), "someone"))
            .await
            .expect_err("its ordinary answer"),
    );
    dev_mode();
    let builtin = SqliteBackend::new(uri)
        .await
        .expect("the built-in guest opens");
    let claim = claimed(
        builtin
            .claim_execution(claim_args(spare.clone(), "worker-1"))
            .await
            .expect("the built-in guest's next operation succeeds"),
    );
    assert_eq!(claim.lease_epoch.0, 1);
    assert_eq!(
        exec_column(&builtin.connection_for_test(), spare, "lifecycle_phase"),
        "active"
    );
}

/// The `OperationFailure` inside a `Transport { backend: "sqlite-wasm", .. }` error.
fn transport_failure(error: &EngineError) -> &OperationFailure {
    match error {
        EngineError::Transport {
            backend: "sqlite-wasm",
            source,
        } => source
            .downcast_ref::<OperationFailure>()
            .unwrap_or_else(|| panic!("the source is an OperationFailure: {error:?}")),
        other => panic!("expected a sqlite-wasm Transport error, got {other:?}"),
    }
}

/// The detail of an `OperationFailure::Storage` for `claim_execution`.
fn storage_detail(error: &EngineError) -> &str {
    match transport_failure(error) {
        OperationFailure::Storage {
            op: "claim_execution",
            detail,
        } => detail,
        other => panic!("expected a storage failure, got {other:?}"),
    }
}

/// Assert that the guest's SQL was refused by the authorizer.
fn assert_denied(contained: &Contained) {
    let detail = storage_detail(&contained.error);
    assert!(
        detail.contains("denied"),
        "the guest sees `denied`: {detail}"
    );
}

// ── CPU and memory ──────────────────────────────────────────────────────────────────────────

/// The `elapsed` of a `Timeout` for `claim_execution`.
fn timeout_elapsed(error: &EngineError) -> Duration {
    match error {
        EngineError::Timeout {
            op: "claim_execution",
            elapsed,
        } => *elapsed,
        other => panic!(
            "a guest over its time limit must give EngineError::Timeout (GuestLimits docs), \
             got {other:?}"
        ),
    }
}

#[tokio::test]
#[parallel(process)]
async fn an_infinite_loop_times_out() {
    let contained = provoke("infinite-loop", "").await;
    let reported = timeout_elapsed(&contained.error);
    assert!(reported >= TIMEOUT, "reported {reported:?}");
    assert!(reported <= contained.elapsed, "reported {reported:?}");
}

#[tokio::test]
#[parallel(process)]
async fn an_infinite_loop_under_the_default_limits_times_out_after_two_seconds() {
    let contained = provoke_with("infinite-loop", "", GuestLimits::default()).await;
    let reported = timeout_elapsed(&contained.error);
    assert!(reported >= Duration::from_secs(2), "reported {reported:?}");
}

/// The epoch deadline is checked only while guest code runs; inside one SQL call the host's
/// progress handler interrupts the statement at the operation's deadline, so a 50-million-row
/// count is stopped near the timeout and the operation ends as `Timeout`, rolled back.
///
/// Alone in the process (`#[serial(process)]`): other tests' load must not eat into its
/// wall-clock bound (the timeout plus one second).
#[tokio::test]
#[serial(process)]
async fn a_slow_statement_is_interrupted_at_the_timeout() {
    let contained = provoke("slow-sql", "50000000").await;
    timeout_elapsed(&contained.error);
    assert!(
        contained.elapsed < TIMEOUT + Duration::from_secs(1),
        "stopped after {:?}",
        contained.elapsed
    );
}

/// A writing statement interrupted at the deadline makes SQLite roll back the operation's
/// transaction; the `INSERT` the guest runs next would run in autocommit mode and be committed.
/// The host refuses every statement once the transaction has ended, so nothing is kept
/// ([`provoke`] compares every row) and the operation is a `Timeout`.
#[tokio::test]
#[parallel(process)]
async fn nothing_runs_after_a_write_is_stopped_at_the_deadline() {
    let contained = provoke("slow-write", "").await;
    timeout_elapsed(&contained.error);
}

#[tokio::test]
#[parallel(process)]
async fn a_memory_bomb_exhausts_its_memory_limit() {
    let contained = provoke("memory-bomb", "").await;
    match contained.error {
        EngineError::ResourceExhausted {
            pool: "guest_memory",
            max,
            retry_after_ms: None,
        } => assert_eq!(usize::try_from(max).unwrap(), MEMORY_MIB),
        other => panic!(
            "a guest over its memory limit must give EngineError::ResourceExhausted \
             {{ pool: \"guest_memory\" }} (GuestLimits docs), got {other:?}"
        ),
    }
}

#[tokio::test]
#[parallel(process)]
async fn a_panic_after_writes_is_a_trap() {
    let contained = provoke("panic-after-write", "").await;
    match transport_failure(&contained.error) {
        OperationFailure::GuestTrapped { detail, .. } => {
            assert!(detail.contains("panicking after writing"), "{detail}")
        }
        other => panic!("expected GuestTrapped, got {other:?}"),
    }
}

#[tokio::test]
#[parallel(process)]
async fn unbounded_recursion_traps() {
    // Frames that live in linear memory overflow Rust's shadow stack (a `MemoryOutOfBounds`
    // trap: it sits at the bottom of memory); frames in wasm locals overflow wasmtime's stack
    // (`StackOverflow`). Either way: a trap, contained.
    let contained = provoke("stack-overflow", "").await;
    match transport_failure(&contained.error) {
        OperationFailure::GuestTrapped {
            trap: Some(trap), ..
        } => assert!(
            ["StackOverflow", "MemoryOutOfBounds"].contains(&format!("{trap:?}").as_str()),
            "{trap:?}"
        ),
        other => panic!("expected a trap, got {other:?}"),
    }
}

// ── Waiting in WASI ─────────────────────────────────────────────────────────────────────────

/// How long the waiting misbehaviours ask to wait: fifty times the timeout.
const LONG_WAIT_MS: &str = "10000";

/// `std::thread::sleep` ends in `wasi:io/poll`, which the host cuts off at the operation's
/// deadline: `Timeout`, rolled back, the backend serving on (checked by [`provoke`], whose
/// bound of 5 s is half the 10 s the guest asks to sleep).
#[tokio::test]
#[parallel(process)]
async fn a_guest_that_sleeps_times_out() {
    let contained = provoke("sleep", LONG_WAIT_MS).await;
    let reported = timeout_elapsed(&contained.error);
    assert!(reported >= TIMEOUT, "reported {reported:?}");
}

/// `wasi:clocks` `subscribe-duration` then `pollable.block`: the same.
#[tokio::test]
#[parallel(process)]
async fn a_guest_that_blocks_on_a_clock_pollable_times_out() {
    let contained = provoke("block-on-clock", LONG_WAIT_MS).await;
    let reported = timeout_elapsed(&contained.error);
    assert!(reported >= TIMEOUT, "reported {reported:?}");
}

/// `wasi:io/poll.poll` on clock pollables: the same.
#[tokio::test]
#[parallel(process)]
async fn a_guest_that_polls_times_out() {
    let contained = provoke("poll", LONG_WAIT_MS).await;
    let reported = timeout_elapsed(&contained.error);
    assert!(reported >= TIMEOUT, "reported {reported:?}");
}

/// A sleeping guest holds the writer only until its deadline: an ordinary claim on the same
/// database sent 100 ms after it is answered within the timeout plus one second of being sent,
/// and the sleeper's instance is dropped (its next operation runs on a fresh one).
///
/// Alone in the process (`#[serial(process)]`): it asserts wall-clock bounds.
#[tokio::test]
#[serial(process)]
async fn a_sleeping_guest_releases_the_database_at_its_deadline() {
    let uri = memory_uri("sandbox-sleep-next");
    let hostile = hostile_backend(&uri, tight_limits()).await;
    dev_mode();
    let builtin = SqliteBackend::new(&uri).await.unwrap();
    let (sleeper, spare) = {
        let conn = hostile.connection_for_test();
        (
            seed_granted(&conn, "sleep").1,
            seed_granted(&conn, "worker-1").1,
        )
    };
    let counted = |error: EngineError| invalid_input_detail(error);
    let count = || hostile.claim_execution(claim_args(sleeper.clone(), "count-calls"));
    assert!(counted(count().await.unwrap_err()).contains("call 1 "));
    assert!(counted(count().await.unwrap_err()).contains("call 2 "));

    let started = Instant::now();
    let sleeping = {
        let hostile = Arc::clone(&hostile);
        let mut args = claim_args(sleeper.clone(), "sleep");
        args.attempt_policy_json = LONG_WAIT_MS.into();
        tokio::spawn(async move {
            let outcome = hostile.claim_execution(args).await;
            (outcome, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let sent = Instant::now();
    let claim = builtin
        .claim_execution(claim_args(spare.clone(), "worker-1"))
        .await;
    let waited = sent.elapsed();
    let (slept, stopped_after) = sleeping.await.unwrap();
    eprintln!("sleep: stopped after {stopped_after:?}; the next claim waited {waited:?}");
    timeout_elapsed(&slept.expect_err("the sleeper times out"));
    claimed(claim.expect("the ordinary claim succeeds"));
    assert!(
        stopped_after < TIMEOUT + Duration::from_secs(1),
        "the sleeper was stopped after {stopped_after:?}"
    );
    assert!(
        waited < TIMEOUT + Duration::from_secs(1),
        "the next claim waited {waited:?}"
    );
    assert!(
        counted(count().await.unwrap_err()).contains("call 1 "),
        "the sleeper's instance was dropped"
    );
}

// ── Query limits ────────────────────────────────────────────────────────────────────────────

#[tokio::test]
#[parallel(process)]
async fn an_enormous_result_set_is_refused_at_the_row_limit() {
    let contained = provoke("huge-result", "").await;
    let detail = storage_detail(&contained.error);
    assert!(
        detail.contains("too large") && detail.contains(&format!("{QUERY_ROWS} rows")),
        "{detail}"
    );
}

#[tokio::test]
#[parallel(process)]
async fn an_enormous_result_in_bytes_is_refused_at_the_byte_limit() {
    let contained = provoke("huge-bytes", "").await;
    let detail = storage_detail(&contained.error);
    assert!(
        detail.contains("too large") && detail.contains(&format!("{QUERY_BYTES} bytes")),
        "{detail}"
    );
}

#[tokio::test]
#[parallel(process)]
async fn packed_queries_are_held_to_the_same_limits() {
    for (worker, limit) in [
        ("huge-result-packed", format!("{QUERY_ROWS} rows")),
        ("huge-bytes-packed", format!("{QUERY_BYTES} bytes")),
    ] {
        let contained = provoke(worker, "").await;
        let detail = storage_detail(&contained.error);
        assert!(
            detail.contains("too large") && detail.contains(&limit),
            "{worker}: {detail}"
        );
    }
}

/// Packed parameters come from the guest and are checked before anything runs: each fault is
/// refused as `denied` (a value, not a trap) and named.
#[tokio::test]
#[parallel(process)]
async fn malformed_packed_parameters_are_denied_not_trusted() {
    let contained = provoke("malformed-packed", "").await;
    let detail = storage_detail(&contained.error);
    for fault in [
        "unknown tag 9",
        "at byte 0: truncated number",
        "truncated text or blob",
        "text is not UTF-8",
    ] {
        assert!(detail.contains(fault), "{fault}: {detail}");
    }
    assert_eq!(
        detail.matches("malformed packed parameters").count(),
        8,
        "{detail}"
    );
}

/// One value over the byte limit is refused too. (The host reads the value before it counts
/// it: see docs/security.md on host memory.)
#[tokio::test]
#[parallel(process)]
async fn one_value_over_the_byte_limit_is_refused() {
    let contained = provoke("huge-value", &(8 << 20).to_string()).await;
    let detail = storage_detail(&contained.error);
    assert!(
        detail.contains("too large") && detail.contains(&format!("{QUERY_BYTES} bytes")),
        "{detail}"
    );
}

// ── The authorizer ──────────────────────────────────────────────────────────────────────────

#[tokio::test]
#[parallel(process)]
async fn drop_table_is_denied() {
    assert_denied(&provoke("drop-table", "").await);
}

#[tokio::test]
#[parallel(process)]
async fn attach_is_denied_and_creates_no_file() {
    let path =
        std::env::temp_dir().join(format!("ff-hostile-attach-{}.sqlite", uuid::Uuid::new_v4()));
    assert_denied(&provoke("attach", path.to_str().unwrap()).await);
    assert!(!path.exists(), "ATTACH must not create {}", path.display());
}

#[tokio::test]
#[parallel(process)]
async fn detach_is_denied() {
    assert_denied(&provoke("detach", "").await);
}

#[tokio::test]
#[parallel(process)]
async fn transaction_control_is_denied() {
    for statement in [
        "begin",
        "commit",
        "rollback",
        "savepoint",
        "release",
        "host-begin",
        "host-savepoint",
        "host-release",
        "host-rollback-to",
    ] {
        assert_denied(&provoke(statement, "").await);
    }
}

#[tokio::test]
#[parallel(process)]
async fn pragma_statements_and_pragma_functions_are_denied() {
    assert_denied(&provoke("pragma", "").await);
    assert_denied(&provoke("pragma-function", "").await);
}

#[tokio::test]
#[parallel(process)]
async fn schema_changes_are_denied() {
    for statement in [
        "create-table",
        "create-temp-table",
        "create-trigger",
        "create-index",
        "alter-table",
        "reindex",
        "analyze",
    ] {
        assert_denied(&provoke(statement, "").await);
    }
}

#[tokio::test]
#[parallel(process)]
async fn load_extension_is_refused() {
    // The authorizer refuses the function; SQLite reports that refusal with `SQLITE_ERROR`
    // ("not authorized to use function"), so today the guest sees `failure`, not `denied`.
    let contained = provoke("load-extension", "").await;
    let detail = storage_detail(&contained.error);
    assert!(
        detail.contains("denied") || detail.contains("not authorized to use function"),
        "{detail}"
    );
}

/// Read operations run in a read transaction in which the authorizer refuses every write.
#[tokio::test]
#[parallel(process)]
async fn a_read_operation_may_not_write() {
    let uri = memory_uri("sandbox-read-only");
    let hostile = hostile_backend(&uri, tight_limits()).await;
    let (_, eid) = seed_runnable(&hostile.connection_for_test());
    let before = Fingerprint::of(&hostile.connection_for_test());
    let error = hostile
        .read_execution_state(&eid)
        .await
        .expect_err("the write is refused");
    match transport_failure(&error) {
        OperationFailure::Storage {
            op: "read_execution_state",
            detail,
        } => assert!(detail.contains("denied"), "{detail}"),
        other => panic!("expected a storage failure, got {other:?}"),
    }
    assert_eq!(Fingerprint::of(&hostile.connection_for_test()), before);
    hostile.ping().await.expect("the hostile backend serves on");
}

/// SQLite's authorizer is never asked about `VACUUM`; it fails because the guest always runs
/// inside the host's transaction. Either way nothing changes.
#[tokio::test]
#[parallel(process)]
async fn vacuum_fails_inside_the_hosts_transaction() {
    let contained = provoke("vacuum", "").await;
    let detail = storage_detail(&contained.error);
    assert!(
        detail.contains("denied") || detail.contains("cannot VACUUM from within a transaction"),
        "{detail}"
    );
}

#[tokio::test]
#[parallel(process)]
async fn writes_to_sqlites_own_tables_fail() {
    let contained = provoke("write-schema", "").await;
    let detail = storage_detail(&contained.error);
    assert!(detail.contains("sqlite_master"), "{detail}");
}

/// A success whose identifiers are not identifiers is refused before the batch commits: the
/// operation fails as `MalformedResult` and what the guest wrote is rolled back ([`provoke`]
/// compares every row).
#[tokio::test]
#[parallel(process)]
async fn a_malformed_result_fails_the_operation_and_keeps_none_of_its_writes() {
    let contained = provoke("malformed-result", "").await;
    match transport_failure(&contained.error) {
        OperationFailure::MalformedResult {
            op: "claim_execution",
            field: "execution_id",
            value,
        } => assert_eq!(value, "not an execution id"),
        other => panic!("expected MalformedResult, got {other:?}"),
    }
}

// ── What the host cannot detect ─────────────────────────────────────────────────────────────

/// A guest that writes garbage into rows it should not touch and then returns a plausible
/// success is indistinguishable, to the host, from a correct guest: the garbage is committed
/// and the caller holds a lease that was never written. What catches it is everything that
/// reads those rows later: reads refuse unknown state literals as `Validation { Corruption }`,
/// and the lease-holder operations find no lease behind the handle.
#[tokio::test]
#[parallel(process)]
async fn garbage_success_is_committed_and_reads_refuse_it_as_corruption() {
    let uri = memory_uri("sandbox-garbage");
    let hostile = hostile_backend(&uri, tight_limits()).await;
    let (target, victim) = {
        let conn = hostile.connection_for_test();
        (
            seed_granted(&conn, "garbage-success").1,
            seed_granted(&conn, "worker-1").1,
        )
    };
    let before = Fingerprint::of(&hostile.connection_for_test());

    // The host cannot tell: the operation succeeds, with a plausible lease.
    let claim = claimed(
        hostile
            .claim_execution(claim_args(target.clone(), "garbage-success"))
            .await
            .expect("the host accepts the guest's success"),
    );
    assert_eq!(
        (claim.execution_id.clone(), claim.lease_epoch.0),
        (target.clone(), 1)
    );

    // The garbage is committed; the claimed execution was never touched.
    let conn = hostile.connection_for_test();
    assert_ne!(Fingerprint::of(&conn), before, "the garbage was committed");
    assert_eq!(exec_column(&conn, &victim, "public_state"), "nonsense");
    assert_eq!(exec_column(&conn, &victim, "lifecycle_phase"), "garbage");
    assert_eq!(exec_column(&conn, &target, "lifecycle_phase"), "runnable");
    assert_eq!(count_rows(&conn, "ff_attempt"), 0, "no lease was written");
    drop(conn);

    // What can detect it: reads refuse the nonsense ...
    dev_mode();
    let builtin = SqliteBackend::new(&uri).await.unwrap();
    for error in [
        builtin.read_execution_state(&victim).await.unwrap_err(),
        builtin.read_execution_info(&victim).await.unwrap_err(),
        builtin.describe_execution(&victim).await.unwrap_err(),
    ] {
        assert!(
            matches!(
                error,
                EngineError::Validation {
                    kind: ValidationKind::Corruption,
                    ..
                }
            ),
            "{error:?}"
        );
    }
    // ... and the lease behind the returned handle does not exist.
    builtin
        .renew(&claim.handle)
        .await
        .expect_err("no lease behind the handle");
    // The execution the guest pretended to claim is still claimable by the real guest.
    assert_eq!(
        builtin.read_execution_state(&target).await.unwrap(),
        Some(PublicState::Waiting)
    );
    claimed(
        builtin
            .claim_execution(claim_args(target, "garbage-success"))
            .await
            .expect("the real guest claims it"),
    );
    hostile.ping().await.expect("the hostile backend serves on");
}

// ── Limits ──────────────────────────────────────────────────────────────────────────────────

#[test]
fn the_default_limits_are_the_documented_ones() {
    let limits = GuestLimits::default();
    assert_eq!(limits.operation_timeout, Duration::from_secs(2));
    assert_eq!(limits.memory_bytes, 64 << 20);
    assert_eq!(limits.query_rows, 10_000);
    assert_eq!(limits.query_bytes, 16 << 20);
    let tight = tight_limits();
    assert_eq!(
        (
            tight.operation_timeout,
            tight.memory_bytes,
            tight.query_rows,
            tight.query_bytes
        ),
        (TIMEOUT, MEMORY_MIB << 20, QUERY_ROWS, QUERY_BYTES)
    );
}

#[tokio::test]
#[parallel(process)]
async fn the_built_in_guest_runs_a_lifecycle_under_tight_limits() {
    dev_mode();
    let backend = SqliteBackend::builder(memory_uri("sandbox-tight-builtin"))
        .limits(tight_limits())
        .open()
        .await
        .unwrap();
    let eid = new_execution_id();
    let claim = create_and_lease(
        &*backend,
        now_ms(),
        claim_args_at(eid.clone(), "worker-1", 0, now_ms()),
    )
    .await;
    backend
        .complete_execution(complete_args(&eid, Some(fence_of(&claim))))
        .await
        .unwrap();
    assert_eq!(
        backend.read_execution_state(&eid).await.unwrap(),
        Some(PublicState::Completed)
    );
}

// ── WASI ────────────────────────────────────────────────────────────────────────────────────

/// What WASI gives a guest: no environment, no arguments, an empty stdin, a stdout that
/// accepts and discards, a stderr the host captures (it shows up in trap reports and the
/// logs), and the host's real clocks (the engine's determinism is a convention of the
/// built-in guest, which takes `now` as an argument, not a sandbox property).
#[tokio::test]
#[parallel(process)]
async fn wasi_gives_no_environment_no_arguments_no_input_and_the_real_clock() {
    let before = now_ms();
    let contained = provoke("wasi-probe", "").await;
    let after = now_ms();
    let detail = invalid_input_detail(contained.error);
    let field = |key: &str| -> String {
        detail
            .split_whitespace()
            .find_map(|pair| pair.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("{key} in {detail}"))
            .to_owned()
    };
    assert_eq!(field("env"), "0", "{detail}");
    assert_eq!(field("args"), "0", "{detail}");
    assert_eq!(field("stdin"), "0", "{detail}");
    assert_eq!(field("stdout"), "true", "{detail}");
    assert_eq!(field("monotonic"), "true", "{detail}");
    let clock: i64 = field("wall_clock_ms").parse().unwrap();
    assert!(
        (before..=after).contains(&clock),
        "{clock} not in {before}..={after}"
    );
}

/// The host keeps 1 MiB of a guest's stderr per operation (for trap reports and the logs);
/// past that, writes fail (`std`'s `eprintln!` would panic, a trap).
#[tokio::test]
#[parallel(process)]
async fn stderr_is_capped_at_1_mib_per_operation() {
    let contained = provoke("stderr-flood", "").await;
    let detail = invalid_input_detail(contained.error);
    let kib: usize = detail
        .split("refused after ")
        .nth(1)
        .and_then(|rest| rest.split(" KiB").next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("stderr must be refused at some point: {detail}"));
    assert!((512..=1024).contains(&kib), "{detail}");
}

// ── Custom guests: what is accepted, what is refused ────────────────────────────────────────

#[tokio::test]
#[parallel(process)]
async fn custom_guests_load_from_a_file_and_from_bytes() {
    let bytes = std::fs::read(HOSTILE_GUEST).unwrap();
    check_guest_component(&bytes).expect("the hostile guest fits the world");
    dev_mode();
    for builder in [
        SqliteBackend::builder(memory_uri("sandbox-file")).guest_file(HOSTILE_GUEST),
        SqliteBackend::builder(memory_uri("sandbox-bytes")).guest_bytes(bytes.clone()),
    ] {
        let backend = builder.open().await.expect("loads");
        backend
            .ping()
            .await
            .expect("the hostile guest's ping answers");
    }
}

/// The `GuestMismatch` a component is refused with, by both the checker and the builder (which
/// opens no database for it).
async fn mismatch(component: &[u8]) -> GuestMismatch {
    let checked = match check_guest_component(component) {
        Err(OpenError::GuestMismatch(mismatch)) => mismatch,
        other => panic!("expected GuestMismatch, got {other:?}"),
    };
    let file = std::env::temp_dir().join(format!("ff-refused-{}.sqlite", uuid::Uuid::new_v4()));
    dev_mode();
    match SqliteBackend::builder(file.to_str().unwrap())
        .guest_bytes(component)
        .open()
        .await
    {
        Err(OpenError::GuestMismatch(opened)) => assert_eq!(opened, checked),
        Err(other) => panic!("expected GuestMismatch, got {other:?}"),
        Ok(_) => panic!("the builder accepted a component that does not fit"),
    }
    assert!(!file.exists(), "a refused guest opens no database");
    checked
}

/// Assert that `problems` has a problem containing every fragment.
fn assert_named(problems: &[String], fragments: &[&str]) {
    assert!(
        problems
            .iter()
            .any(|problem| fragments.iter().all(|f| problem.contains(f))),
        "no problem names {fragments:?}: {problems:#?}"
    );
}

/// The world's exported interfaces, one per operation family.
const FAMILIES: [&str; 12] = [
    "flowfabric:backend/scheduling@0.1.0",
    "flowfabric:backend/lease-holder@0.1.0",
    "flowfabric:backend/recovery@0.1.0",
    "flowfabric:backend/reads@0.1.0",
    "flowfabric:backend/budgets@0.1.0",
    "flowfabric:backend/routing@0.1.0",
    "flowfabric:backend/workers@0.1.0",
    "flowfabric:backend/tags@0.1.0",
    "flowfabric:backend/operator@0.1.0",
    "flowfabric:backend/suspension@0.1.0",
    "flowfabric:backend/streams@0.1.0",
    "flowfabric:backend/flows@0.1.0",
];
const READS: &str = "flowfabric:backend/reads@0.1.0";
const SQL: &str = "flowfabric:backend/sql@0.1.0";
const TYPES: &str = "flowfabric:backend/types@0.1.0";
const TOKENS: &str = "flowfabric:backend/waitpoint-tokens@0.1.0";

/// Every function of the world's `reads` interface.
const READS_FUNCTIONS: [&str; 4] = [
    "read-execution",
    "get-execution-result",
    "read-execution-context",
    "ping",
];

#[tokio::test]
#[parallel(process)]
async fn a_component_without_the_family_exports_is_refused() {
    let problems = mismatch(&wasm::component(&[], None)).await.problems;
    assert_eq!(problems.len(), FAMILIES.len(), "{problems:#?}");
    for family in FAMILIES {
        assert_named(&problems, &["does not export", family]);
    }
}

#[tokio::test]
#[parallel(process)]
async fn missing_functions_wrong_signatures_and_extra_functions_are_each_named() {
    // `ping: func() -> u32` (the world's returns `result<_, engine-error>`), an extra function,
    // and nothing else.
    // The other families are not exported at all.
    let problems = mismatch(&wasm::component(
        &[],
        Some((READS, &["ping", "exfiltrate"])),
    ))
    .await
    .problems;
    assert_named(&problems, &[READS, "`ping`", "different signature"]);
    assert_named(&problems, &[READS, "`exfiltrate`", "not part of the world"]);
    for function in READS_FUNCTIONS.iter().filter(|f| **f != "ping") {
        assert_named(&problems, &[READS, &format!("`{function}`"), "missing"]);
    }
    for family in FAMILIES.iter().filter(|f| **f != READS) {
        assert_named(&problems, &["does not export", family]);
    }
    assert_eq!(
        problems.len(),
        2 + 3 + (FAMILIES.len() - 1),
        "one problem each: {problems:#?}"
    );
}

#[tokio::test]
#[parallel(process)]
async fn imports_beyond_sql_and_stds_wasi_are_refused_by_name() {
    let forbidden = [
        "wasi:filesystem/types@0.2.0",
        "wasi:filesystem/preopens@0.2.0",
        "wasi:sockets/tcp@0.2.0",
        "wasi:http/outgoing-handler@0.2.0",
        "evil:exfil/net",
    ];
    let imports: Vec<(&str, &[&str])> = forbidden.iter().map(|name| (*name, &[][..])).collect();
    let problems = mismatch(&wasm::component(&imports, None)).await.problems;
    for name in forbidden {
        assert_named(
            &problems,
            &["imports", &format!("`{name}`"), "does not provide"],
        );
    }
    assert_eq!(
        problems.len(),
        forbidden.len() + FAMILIES.len(),
        "{problems:#?}"
    );
}

#[tokio::test]
#[parallel(process)]
async fn the_types_import_is_accepted_without_functions_and_refused_with_one() {
    // The built-in guest imports `types` (its families `use` it) and is accepted: every backend
    // in these tests runs it. A `types` import that carries a function is not the world's.
    let imports: [(&str, &[&str]); 1] = [(TYPES, &["sneak"])];
    let problems = mismatch(&wasm::component(&imports, None)).await.problems;
    assert_named(&problems, &[TYPES, "`sneak`", "not part of the world"]);
    assert!(
        !problems
            .iter()
            .any(|problem| problem.contains("does not provide")),
        "the types import itself is allowed: {problems:#?}"
    );
}

#[tokio::test]
#[parallel(process)]
async fn a_sql_import_with_other_functions_is_refused() {
    // `execute: func() -> u32` instead of the world's, and a function the host does not have.
    // (The built-in guest does not import `execute`, so the host's linker judges it.)
    let imports: [(&str, &[&str]); 1] = [(SQL, &["execute", "load-extension"])];
    let problems = mismatch(&wasm::component(&imports, None)).await.problems;
    assert_named(
        &problems,
        &[
            "does not link with the host",
            SQL,
            "`execute`",
            "wrong type",
        ],
    );
    assert_named(
        &problems,
        &[SQL, "`load-extension`", "not part of the world"],
    );
}

#[tokio::test]
#[parallel(process)]
async fn a_token_import_with_other_functions_is_refused() {
    // The host's token signer offers `sign` and `verify`, nothing that hands out a secret; and
    // `sign` with another signature does not link.
    let imports: [(&str, &[&str]); 1] = [(TOKENS, &["sign", "read-secret"])];
    let problems = mismatch(&wasm::component(&imports, None)).await.problems;
    assert_named(
        &problems,
        &[TOKENS, "`read-secret`", "not part of the world"],
    );
    assert_named(&problems, &[TOKENS, "`sign`", "different signature"]);
}

#[tokio::test]
#[parallel(process)]
async fn bytes_that_are_not_a_component_are_refused() {
    let core_module = wasm::core_module(&["ping"]);
    for bytes in [&b"definitely not wasm"[..], &[][..], &core_module[..]] {
        assert!(
            matches!(check_guest_component(bytes), Err(OpenError::Guest(_))),
            "{bytes:?}"
        );
        dev_mode();
        let opened = SqliteBackend::builder(memory_uri("sandbox-not-a-component"))
            .guest_bytes(bytes)
            .open()
            .await;
        assert!(
            matches!(opened, Err(OpenError::Guest(ref detail)) if detail.contains("component")),
            "{:?}",
            opened.err()
        );
    }
    dev_mode();
    let missing = SqliteBackend::builder(memory_uri("sandbox-no-file"))
        .guest_file("/nonexistent/guest.wasm")
        .open()
        .await;
    assert!(
        matches!(missing, Err(OpenError::Guest(ref detail)) if detail.contains("cannot read")),
        "{:?}",
        missing.err()
    );
}

/// Tiny hand-encoded components (the component-model binary format), for the shapes a real
/// toolchain would not produce on purpose: no build step, no extra crate, no text-format
/// parser. Every function these components declare has the type `func() -> u32`.
mod wasm {
    /// `\0asm`, component-model version 0x0d, layer 1.
    const COMPONENT_PREAMBLE: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];
    /// `\0asm`, core version 1.
    const MODULE_PREAMBLE: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];

    /// `func() -> u32` in a component type section.
    const FUNC_TO_U32: [u8; 4] = [0x40, 0x00, 0x00, 0x79];

    fn leb(mut value: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (value & 0x7f) as u8;
            value >>= 7;
            if value == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }

    fn string(text: &str) -> Vec<u8> {
        let mut out = Vec::new();
        leb(text.len(), &mut out);
        out.extend_from_slice(text.as_bytes());
        out
    }

    /// An import or export name (a plain name: the `0x00` discriminator).
    fn extern_name(text: &str) -> Vec<u8> {
        let mut out = vec![0x00];
        out.extend(string(text));
        out
    }

    fn vector(items: impl IntoIterator<Item = Vec<u8>>) -> Vec<u8> {
        let items: Vec<Vec<u8>> = items.into_iter().collect();
        let mut out = Vec::new();
        leb(items.len(), &mut out);
        items.into_iter().for_each(|item| out.extend(item));
        out
    }

    fn section(id: u8, contents: &[u8], out: &mut Vec<u8>) {
        out.push(id);
        leb(contents.len(), out);
        out.extend_from_slice(contents);
    }

    fn index(value: usize) -> Vec<u8> {
        let mut out = Vec::new();
        leb(value, &mut out);
        out
    }

    /// A core module exporting `functions`, each `() -> i32` returning 0.
    pub fn core_module(functions: &[&str]) -> Vec<u8> {
        let mut out = MODULE_PREAMBLE.to_vec();
        section(1, &vector([vec![0x60, 0x00, 0x01, 0x7f]]), &mut out);
        section(3, &vector(functions.iter().map(|_| vec![0x00])), &mut out);
        let exports = functions.iter().enumerate().map(|(i, name)| {
            let mut export = string(name);
            export.push(0x00);
            export.extend(index(i));
            export
        });
        section(7, &vector(exports), &mut out);
        let body = vec![0x04, 0x00, 0x41, 0x00, 0x0b];
        section(
            10,
            &vector(functions.iter().map(|_| body.clone())),
            &mut out,
        );
        out
    }

    /// A component importing each `(name, functions)` as an instance with those functions, and
    /// exporting `Some((name, functions))` as an instance with those functions.
    pub fn component(imports: &[(&str, &[&str])], export: Option<(&str, &[&str])>) -> Vec<u8> {
        let mut out = COMPONENT_PREAMBLE.to_vec();

        // Types: 0 is `func() -> u32`; 1.. are the imported instances' types.
        let instance_types = imports.iter().map(|(_, functions)| {
            let mut declarations = vec![{
                let mut declaration = vec![0x01];
                declaration.extend(FUNC_TO_U32);
                declaration
            }];
            declarations.extend(functions.iter().map(|name| {
                let mut declaration = vec![0x04];
                declaration.extend(extern_name(name));
                declaration.extend([0x01, 0x00]);
                declaration
            }));
            let mut ty = vec![0x42];
            ty.extend(vector(declarations));
            ty
        });
        let types: Vec<Vec<u8>> = std::iter::once(FUNC_TO_U32.to_vec())
            .chain(instance_types)
            .collect();
        section(7, &vector(types), &mut out);

        if !imports.is_empty() {
            let entries = imports.iter().enumerate().map(|(i, (name, _))| {
                let mut import = extern_name(name);
                import.push(0x05);
                import.extend(index(1 + i));
                import
            });
            section(10, &vector(entries), &mut out);
        }

        if let Some((name, functions)) = export {
            section(1, &core_module(functions), &mut out);
            section(2, &vector([vec![0x00, 0x00, 0x00]]), &mut out);
            let aliases = functions.iter().map(|function| {
                let mut alias = vec![0x00, 0x00, 0x01, 0x00];
                alias.extend(string(function));
                alias
            });
            section(6, &vector(aliases), &mut out);
            let lifts = functions.iter().enumerate().map(|(i, _)| {
                let mut lift = vec![0x00, 0x00];
                lift.extend(index(i));
                lift.extend([0x00, 0x00]);
                lift
            });
            section(8, &vector(lifts), &mut out);
            let members = functions.iter().enumerate().map(|(i, function)| {
                let mut member = extern_name(function);
                member.push(0x01);
                member.extend(index(i));
                member
            });
            let mut instance = vec![0x01];
            instance.extend(vector(members));
            section(5, &vector([instance]), &mut out);
            let mut entry = extern_name(name);
            entry.push(0x05);
            entry.extend(index(imports.len()));
            entry.push(0x00);
            section(11, &vector([entry]), &mut out);
        }
        out
    }
}

// ── Host memory ─────────────────────────────────────────────────────────────────────────────

/// A field of `/proc/self/status` in bytes (`VmRSS`, `VmHWM`).
fn status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().trim_end_matches(" kB").parse::<u64>().ok())
        .map(|kib| kib << 10)
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

/// Reset the process's peak RSS to its current RSS (Linux's `clear_refs` 5); the RSS it was
/// reset to, or `None` where the kernel does not support it.
fn reset_peak_rss() -> Option<u64> {
    std::fs::write("/proc/self/clear_refs", "5").ok()?;
    Some(status_bytes("VmRSS"))
}

/// Each hostile probe, run with the peak RSS reset before it (after a warm-up that loads the
/// guest and makes an instance): the host's peak growth stays within the bound
/// `docs/security.md` derives from `GuestLimits` for the path it attacks, plus 32 MiB of slack
/// for the runtime:
/// - results (`null-flood`, `null-flood-packed`, `huge-bytes`): twice `query_bytes` (the
///   host's copy, counted as it is built, grows by doubling); before each value counted its slot
///   in the host, a result of `NULL`s (one byte each against the limit, 32 in the host) grew the
///   peak by 292 MiB before the deadline stopped it;
/// - parameters (`null-params`, `null-params-packed`): three times `memory_bytes` (the guest's
///   own list, and the host's copy of it at two host bytes per guest byte);
/// - SQLite's temporary storage (`temp-flood`): the page caches, 2 × 64 MiB;
/// - WASI resources never dropped (`leak-pollables`): the resource table's cap;
/// - prepared statements kept in the statement cache (`long-statements`): 128 statements of
///   at most 100 000 bytes of SQL (before the limit, 1 GB each), at most 1 MiB each prepared.
///
/// Memory the allocator kept from an earlier probe is reused without growing the peak, so a
/// probe's figure is a lower bound of what it allocated; each probe's bound is far below what
/// the unbounded path reached. Alone in the process (`#[serial(process)]`): other tests'
/// allocations would count.
#[tokio::test]
#[serial(process)]
async fn host_memory_stays_within_the_documented_bound() {
    let limits = GuestLimits::default();
    let slack = 32 << 20;
    let results = 2 * limits.query_bytes + slack;
    let params = 3 * limits.memory_bytes + slack;
    let temp = 2 * (64 << 20) + slack;
    let resources = slack;
    let statements = 128 * (1 << 20) + slack;
    // Warm up: the compiled guest loaded, an instance made, SQLite's caches filled.
    provoke_with("wasi-probe", "", limits).await;
    for (worker, bound) in [
        ("temp-flood", temp),
        ("null-flood", results),
        ("null-flood-packed", results),
        ("leak-pollables", resources),
        ("null-params-packed", params),
        ("null-params", params),
        ("huge-bytes", results),
        ("long-statements", statements),
    ] {
        let Some(before) = reset_peak_rss() else {
            eprintln!("SKIPPED {worker}: this kernel cannot reset the peak RSS (clear_refs)");
            return;
        };
        let contained = provoke_with(worker, "", limits).await;
        let grew = status_bytes("VmHWM").saturating_sub(before);
        eprintln!(
            "{worker}: peak RSS grew {} MiB (bound {} MiB): {}",
            grew >> 20,
            bound >> 20,
            contained.error
        );
        assert!(
            grew <= bound as u64,
            "{worker}: the host's peak RSS grew {} MiB, over {} MiB",
            grew >> 20,
            bound >> 20
        );
    }
}

/// A guest that creates WASI resources and never drops them fills the host's resource table
/// across the operations of a reused instance (a clock pollable takes two entries: the pollable
/// and its deadline); at the cap (10 000) the call that would pass it fails, the guest traps,
/// and the next operation gets a fresh instance with an empty table.
#[tokio::test]
#[parallel(process)]
async fn wasi_resources_a_guest_never_drops_are_capped_and_the_instance_replaced() {
    let hostile = hostile_backend(&memory_uri("leak"), tight_limits()).await;
    let (_, eid) = seed_granted(&hostile.connection_for_test(), "worker-1");
    let leak = |worker: &str, count: &str| {
        let mut args = claim_args(eid.clone(), worker);
        args.attempt_policy_json = count.into();
        hostile.claim_execution(args)
    };
    for round in 1..=2 {
        let error = leak("leak-pollables", "2000").await.unwrap_err();
        assert!(
            format!("{error:?}").contains("leaked 2000 pollables"),
            "round {round}: the instance is reused: {error:?}"
        );
    }
    let error = leak("leak-pollables", "2000").await.unwrap_err();
    assert!(
        matches!(
            transport_failure(&error),
            OperationFailure::GuestTrapped { .. }
        ),
        "the third round passes 10 000 entries and traps: {error:?}"
    );
    let error = leak("count-calls", "").await.unwrap_err();
    assert!(
        format!("{error:?}").contains("call 1 "),
        "a fresh instance: {error:?}"
    );
    let error = leak("leak-pollables", "2000").await.unwrap_err();
    assert!(
        format!("{error:?}").contains("leaked 2000 pollables"),
        "with an empty table: {error:?}"
    );
}
