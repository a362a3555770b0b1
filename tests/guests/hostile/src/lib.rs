//! A guest that implements the `engine-backend` world but misbehaves on request: the claim's
//! `worker-id` names the misbehaviour. The host must contain every one of them; the sandbox
//! tests (`tests/all/sandbox.rs`, `tests/all/guest_containment.rs`) check that it does.
//!
//! | worker-id | what the guest does |
//! |---|---|
//! | `panic-after-write` | damages rows, then panics (a trap) |
//! | `error-after-write` | damages rows, then returns an engine error |
//! | `infinite-loop` | damages rows, then spins forever (CPU limit) |
//! | `stack-overflow` | damages rows, then recurses without bound (wasm stack limit) |
//! | `memory-bomb` | damages rows, then grows a `Vec` without bound (memory limit) |
//! | `drop-table`, `attach`, `detach`, `begin`, `commit`, `rollback`, `savepoint`, `release`, `pragma`, `pragma-function`, `create-table`, `create-temp-table`, `create-trigger`, `create-index`, `alter-table`, `vacuum`, `reindex`, `analyze`, `write-schema`, `load-extension` | damages rows, then runs that statement ([`FORBIDDEN_SQL`]); a refused statement's error is passed back as `storage`, one the host let through is reported as `validation(invalid-input)` naming it |
//! | `huge-result` | queries a recursive CTE of 10 million rows (row limit) |
//! | `huge-bytes` | queries 10 million 64 KiB blobs (byte limit) |
//! | `huge-result-packed`, `huge-bytes-packed` | the same two queries through `query-packed` |
//! | `malformed-packed` | damages rows, then calls `execute-packed` and `query-packed` with bytes that break the packed format in one way each (unknown tag, truncated number, truncated text, text that is not UTF-8); every refusal is passed back as `storage` (all of them, joined), anything the host accepted as `validation(invalid-input)` |
//! | `huge-value` | queries one zero blob of `attempt-policy-json` bytes (default 256 MiB): one value over the byte limit |
//! | `slow-sql` | runs one statement that counts `attempt-policy-json` CTE rows (default 2 million), then returns an engine error: a single slow SQL call |
//! | `wasi-probe` | reports what WASI gives it (environment, arguments, stdin, stdout, the clocks) as a `validation(invalid-input)` detail; touches nothing |
//! | `stderr-flood` | damages rows, then writes 2 MiB to stderr; a refused write comes back as `validation(invalid-input)` |
//! | `garbage-success` | overwrites every other execution's state columns with nonsense and returns `ok` with a plausible claimed execution it never wrote |
//! | `sleep` | damages rows, then `std::thread::sleep`s `attempt-policy-json` milliseconds (default 10 s) |
//! | `block-on-clock` | damages rows, then blocks on a `wasi:clocks` `subscribe-duration` pollable of `attempt-policy-json` milliseconds (default 10 s) |
//! | `poll` | damages rows, then `wasi:io/poll.poll`s two clock pollables, the first ready after `attempt-policy-json` milliseconds (default 10 s) |
//! | `slow-write` | damages rows, runs one `INSERT ... SELECT` of `attempt-policy-json` rows (default 50 million; stopped at the deadline), then inserts the lease event `hostile-after-interrupt`; reports both outcomes as `storage(denied)` |
//! | `null-flood`, `null-flood-packed` | damages rows, then queries 10 000 rows of 2 000 `NULL`s (through `query` or `query-packed`): the byte limit counts each value's slot in the host |
//! | `null-params` | damages rows, then sends `attempt-policy-json` typed `NULL` parameters (default 1 million) with `SELECT ?1` |
//! | `null-params-packed` | damages rows, then sends `attempt-policy-json` packed `NULL` parameters (one byte each; default 40 Mi) with `SELECT ?1` through `query-packed` |
//! | `temp-flood` | damages rows, then runs an endless `SELECT DISTINCT x, zeroblob(4000)` over a recursive CTE: SQLite's temporary storage grows until the deadline |
//! | `leak-pollables` | creates `attempt-policy-json` clock pollables (default 1 million) and never drops them, then returns an engine error (so the instance is reused) |
//! | `long-statements` | damages rows, then runs 128 distinct statements of 99 000 bytes (filling the host's statement cache) and one of 1 MiB; the refusal of the long one is passed back as `storage` |
//! | `malformed-result` | damages rows, then returns `ok` with a claimed execution whose ids are not ids |
//! | anything else | returns `not-found(execution)` without touching the database |
//!
//! `read-execution` (behind `describe_execution`, `read_execution_state`, ...) always tries to
//! update every execution, and passes the refusal back as `storage`.
//!
//! `deliver-signal` with signal name `steal-secrets` tries to read, copy and replace the
//! waitpoint keystore's secrets ([`KEYSTORE_PROBES`]) and to get one from the host's token
//! signer: every refusal passed back as `storage` (all of them, joined), any success as
//! `validation(invalid-input)` naming what worked. Every other suspension export answers
//! `not-found(execution)`.
//!
//! `attach` attaches the path given in the claim's `attempt-policy-json` (a default path when
//! absent or empty), so a test can check that no file appeared. `ping` answers `ok` (a fresh
//! instance serves normally); every other export (the whole `streams` interface included) answers `not-found(execution)` and touches
//! nothing. Every SQL error passed back as `storage` is the `sql` error converted case for case
//! ([`storage`]).

mod bindings {
    wit_bindgen::generate!({ path: "../../../wit", world: "engine-backend" });
}

mod hardening;

use bindings::exports::flowfabric::backend::budgets::{
    self, AdmissionOutcome, BlockForAdmissionArgs, BlockForAdmissionOutcome, BudgetStatus,
    BudgetUsageAndLimits, CheckAdmissionArgs, CreateBudgetArgs, CreateOutcome,
    CreateQuotaPolicyArgs, QuotaPolicyLimits, ReconcileCounts, RecordSpendArgs,
    ReportUsageAdminArgs, ReportUsageArgs, UsageOutcome,
};
use bindings::exports::flowfabric::backend::flows::{
    self, AddExecutionArgs, AddExecutionOutcome, ApplyDependencyArgs, ApplyDependencyOutcome,
    CancelFlowHeaderArgs, CancelFlowHeaderOutcome, CancelFlowOutcome, CancelFlowPolicy,
    CascadeOutcome, ChildWaitLease, CreateFlowArgs, CreateFlowOutcome, EdgeDirection,
    EdgeGroupPolicy, EdgeView, FlowPage, FlowView, ResolveDependencyArgs, ResolveOutcome,
    StageEdgeArgs, StageEdgeOutcome,
};
use bindings::exports::flowfabric::backend::lease_holder::{
    self, CompleteExecutionArgs, FailExecutionArgs, FailOutcome, FailureClass, HandleLease,
    RenewLeaseArgs,
};
use bindings::exports::flowfabric::backend::operator::{self, ChangePriorityArgs, LanePage};
use bindings::exports::flowfabric::backend::reads::{self, ExecutionContext, ExecutionView};
use bindings::exports::flowfabric::backend::recovery::{
    self, CancelExecutionArgs, ClaimResumedExecutionArgs, ExpiredLease, IssueReclaimGrantArgs,
    IssueReclaimGrantOutcome, ListExpiredLeasesArgs, ReclaimExecutionArgs, ReclaimExecutionOutcome,
    ResumeExecutionArgs, ResumeGrantClaimArgs, RevokeLeaseArgs, RevokeLeaseOutcome,
};
use bindings::exports::flowfabric::backend::routing::{
    self, BlockRouteArgs, BlockRouteOutcome, ClaimForWorkerArgs, ClaimGrant, ScanEligibleArgs,
    UnblockExecutionArgs,
};
use bindings::exports::flowfabric::backend::scheduling::{
    self, ClaimArgs, ClaimExecutionArgs, ClaimGrantOutcome, CreateExecutionArgs,
    CreateExecutionOutcome, IssueClaimGrantArgs, IssueGrantAndClaimArgs,
};
use bindings::exports::flowfabric::backend::streams::{
    self, AppendFrameArgs, AppendFrameOutcome, FramePage, FrameQuery, Heads, Outbox, OutboxFilter,
    OutboxPage, SummaryDocument,
};
use bindings::exports::flowfabric::backend::suspension::{
    self, DeliverApprovalSignalArgs, DeliverSignalArgs, DeliverSignalOutcome,
    ListPendingWaitpointsArgs, ListSuspendedArgs, PendingWaitpointsPage, ResumeSignal,
    SignedWaitpoint, SuspendArgs, SuspendOutcome, SuspendedPage,
};
use bindings::exports::flowfabric::backend::tags;
use bindings::exports::flowfabric::backend::workers::{
    self, HeartbeatWorkerArgs, HeartbeatWorkerOutcome, ListWorkersArgs, MarkWorkerDeadArgs,
    MarkWorkerDeadOutcome, RegisterWorkerArgs, RegisterWorkerOutcome, WorkerPage,
};
use bindings::flowfabric::backend::types::{
    AttemptType, ClaimedExecution, EngineError, Entity, LeaseFence, PublicState, SqliteFailure,
    StorageError, TimestampMs, ValidationError, ValidationKind,
};
use bindings::flowfabric::backend::{sql, waitpoint_tokens};

/// `storage(error)`: the `sql` import's error as the engine's `storage-error`, case for case.
fn storage(error: sql::Error) -> EngineError {
    EngineError::Storage(match error {
        sql::Error::Busy => StorageError::Busy,
        sql::Error::Constraint(message) => StorageError::Constraint(message),
        sql::Error::Denied(message) => StorageError::Denied(message),
        sql::Error::TooLarge(message) => StorageError::TooLarge(message),
        sql::Error::Failure(sql::SqliteFailure { code, message }) => {
            StorageError::Failure(SqliteFailure { code, message })
        }
    })
}

/// Writes that would corrupt the execution's state if they were ever committed.
fn damage_rows() {
    for statement in [
        "UPDATE ff_exec_core SET lifecycle_phase = 'hacked', raw_fields = 'garbage'",
        "DELETE FROM ff_claim_grant",
        "INSERT INTO ff_lease_event (execution_id, event_type, occurred_at_ms, partition_key) \
         VALUES ('forged', 'acquired', 0, 0)",
    ] {
        sql::execute(statement, &[]).expect("the host allows ordinary writes");
    }
}

/// The statements the host must refuse, by the worker-id that runs them.
const FORBIDDEN_SQL: &[(&str, &str)] = &[
    ("drop-table", "DROP TABLE ff_exec_core"),
    ("attach", "ATTACH DATABASE ?1 AS stolen"),
    ("detach", "DETACH DATABASE stolen"),
    ("begin", "BEGIN"),
    ("commit", "COMMIT"),
    ("rollback", "ROLLBACK"),
    ("savepoint", "SAVEPOINT hostile"),
    ("release", "RELEASE hostile"),
    // The host's own statements, word for word (it keeps them prepared).
    ("host-begin", "BEGIN IMMEDIATE"),
    ("host-savepoint", "SAVEPOINT ff_operation"),
    ("host-release", "RELEASE ff_operation"),
    ("host-rollback-to", "ROLLBACK TO ff_operation"),
    ("pragma", "PRAGMA user_version = 99"),
    (
        "pragma-function",
        "SELECT name FROM pragma_table_info('ff_exec_core')",
    ),
    ("create-table", "CREATE TABLE hostile_stash (x)"),
    ("create-temp-table", "CREATE TEMP TABLE hostile_stash (x)"),
    (
        "create-trigger",
        "CREATE TRIGGER hostile_backdoor AFTER INSERT ON ff_exec_core \
         BEGIN DELETE FROM ff_claim_grant; END",
    ),
    (
        "create-index",
        "CREATE INDEX hostile_index ON ff_exec_core (priority)",
    ),
    (
        "alter-table",
        "ALTER TABLE ff_exec_core ADD COLUMN hostile TEXT",
    ),
    ("vacuum", "VACUUM"),
    ("reindex", "REINDEX"),
    ("analyze", "ANALYZE"),
    ("write-schema", "UPDATE sqlite_master SET sql = 'garbage'"),
    (
        "load-extension",
        "SELECT load_extension('/nonexistent/hostile-extension')",
    ),
];

/// Where `attach` points when the claim names no path.
const DEFAULT_ATTACH_PATH: &str = "hostile-attached.sqlite";

/// Ten million rows, more than any query limit allows.
const TEN_MILLION_ROWS: &str =
    "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n LIMIT 10000000)";

/// How many rows `slow-sql` counts when the claim names no number.
const DEFAULT_SLOW_ROWS: i64 = 2_000_000;

/// `validation(invalid-input, detail)`.
fn invalid_input(detail: String) -> EngineError {
    EngineError::Validation(ValidationError {
        kind: ValidationKind::InvalidInput,
        detail,
    })
}

/// Damage rows, then run a statement the host must refuse: its refusal comes back as
/// `storage`; if the host lets it through, the guest says so.
fn forbidden_sql(statement: &str, args: &ClaimExecutionArgs) -> EngineError {
    damage_rows();
    let params = if statement.contains("?1") {
        let path = match args.attempt_policy_json.as_deref() {
            None | Some("") => DEFAULT_ATTACH_PATH,
            Some(path) => path,
        };
        vec![sql::Value::Text(path.into())]
    } else {
        Vec::new()
    };
    match sql::execute(statement, &params) {
        Err(error) => storage(error),
        Ok(_) => invalid_input(format!("hostile guest: the host allowed `{statement}`")),
    }
}

/// Query `statement` (through `query-packed` when `packed`), which returns more than the host's
/// limits allow: the refusal comes back as `storage`; what got through is reported.
fn oversized_query(statement: &str, packed: bool) -> EngineError {
    damage_rows();
    let returned = if packed {
        sql::query_packed(statement, &[]).map(|bytes| format!("{} packed bytes", bytes.len()))
    } else {
        sql::query(statement, &[]).map(|rows| format!("{} rows", rows.rows.len()))
    };
    match returned {
        Err(error) => storage(error),
        Ok(what) => invalid_input(format!("hostile guest: the host returned {what}")),
    }
}

/// Parameters that break the packed format, one fault each.
const MALFORMED_PACKED: [&[u8]; 4] = [
    &[9],
    &[1, 1, 2, 3],
    &[3, 9, 0, 0, 0, b'a'],
    &[3, 1, 0, 0, 0, 0xff],
];

/// Send every [`MALFORMED_PACKED`] list through both packed calls; a refusal is expected each
/// time.
fn malformed_packed() -> EngineError {
    damage_rows();
    let mut refusals = Vec::new();
    for params in MALFORMED_PACKED {
        let statement = "SELECT ?1";
        for outcome in [
            sql::execute_packed(statement, params).map(drop),
            sql::query_packed(statement, params).map(drop),
        ] {
            match outcome {
                Err(sql::Error::Denied(why)) => refusals.push(why),
                Err(other) => return storage(other),
                Ok(()) => {
                    return invalid_input(format!("hostile guest: the host accepted {params:?}"));
                }
            }
        }
    }
    EngineError::Storage(StorageError::Denied(refusals.join("; ")))
}

/// Spin until the host stops us.
fn spin_forever() -> ! {
    let mut counter = 0u64;
    loop {
        counter = std::hint::black_box(counter.wrapping_add(1));
    }
}

/// Recurse without bound (each frame keeps a buffer alive so none can be optimized away).
#[allow(unconditional_recursion)] // the point
fn recurse(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth; 64]);
    std::hint::black_box(recurse(depth + 1)) + frame[0]
}

/// Allocate until the host refuses to grow memory (the allocator then aborts: a trap).
fn exhaust_memory() -> ! {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(vec![0xAB; 1 << 20]);
        std::hint::black_box(&hoard);
    }
}

/// How large a blob `huge-value` asks for when the claim names no size.
const DEFAULT_VALUE_BYTES: i64 = 256 << 20;

/// Query one blob of `attempt-policy-json` bytes (one value, far over the byte limit).
fn oversized_value(args: &ClaimExecutionArgs) -> EngineError {
    damage_rows();
    let size = args
        .attempt_policy_json
        .as_deref()
        .unwrap_or_default()
        .parse()
        .unwrap_or(DEFAULT_VALUE_BYTES);
    match sql::query("SELECT zeroblob(?1)", &[sql::Value::Integer(size)]) {
        Err(error) => storage(error),
        Ok(_) => invalid_input(format!("hostile guest: got a {size}-byte value")),
    }
}

/// One slow statement (counting `rows` CTE rows), then an error value.
fn slow_statement(args: &ClaimExecutionArgs) -> EngineError {
    damage_rows();
    let rows = args
        .attempt_policy_json
        .as_deref()
        .unwrap_or_default()
        .parse()
        .unwrap_or(DEFAULT_SLOW_ROWS);
    let counted = sql::query(
        "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n LIMIT ?1) \
         SELECT count(*) FROM n",
        &[sql::Value::Integer(rows)],
    );
    match counted {
        Err(error) => storage(error),
        Ok(_) => invalid_input(format!("hostile guest: counted {rows} rows")),
    }
}

/// Overwrite the state columns of every execution but `args.execution_id` with values no
/// engine writes, then claim to have leased `args.execution_id` without writing anything.
fn garbage_success(args: &ClaimExecutionArgs) -> Result<ClaimedExecution, EngineError> {
    let own_hex = args
        .execution_id
        .split_once("}:")
        .map(|(_, uuid)| uuid.replace('-', "").to_lowercase())
        .unwrap_or_default();
    sql::execute(
        "UPDATE ff_exec_core SET lifecycle_phase = 'garbage', ownership_state = 'garbage', \
             eligibility_state = 'garbage', public_state = 'nonsense', attempt_state = 'garbage' \
         WHERE lower(hex(execution_id)) <> ?1",
        &[sql::Value::Text(own_hex)],
    )
    .map_err(storage)?;
    Ok(ClaimedExecution {
        execution_id: args.execution_id.clone(),
        lease_id: args.lease_id.clone(),
        lease_epoch: 1,
        attempt_index: args.expected_attempt_index,
        attempt_id: args.attempt_id.clone(),
        attempt_type: AttemptType::Initial,
        lease_expires_at: args
            .now
            .saturating_add(i64::try_from(args.lease_ttl_ms).unwrap_or(i64::MAX)),
    })
}

/// What WASI gives the guest: environment, arguments, stdin, stdout, stderr and the clocks,
/// reported as an error value (`key=value` pairs).
fn probe_wasi() -> EngineError {
    use std::io::{Read, Write};
    let env = std::env::vars().count();
    let args = std::env::args().count();
    let mut input = Vec::new();
    let stdin = match std::io::stdin().read_to_end(&mut input) {
        Ok(read) => read.to_string(),
        Err(_) => "error".into(),
    };
    let stdout = std::io::stdout()
        .write_all(b"hostile guest: stdout\n")
        .is_ok();
    eprintln!("hostile guest: stderr");
    let wall_clock_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis());
    let started = std::time::Instant::now();
    let monotonic = started.elapsed() < std::time::Duration::from_secs(1);
    invalid_input(format!(
        "env={env} args={args} stdin={stdin} stdout={stdout} wall_clock_ms={wall_clock_ms} \
         monotonic={monotonic}"
    ))
}

/// Write 2 MiB to stderr, 1 KiB at a time; a refused write is reported as an error value.
fn flood_stderr() -> EngineError {
    use std::io::Write;
    damage_rows();
    let line = [b'x'; 1024];
    for written in 0..2048 {
        if let Err(error) = std::io::stderr().write_all(&line) {
            return invalid_input(format!(
                "hostile guest: stderr refused after {written} KiB: {error}"
            ));
        }
    }
    invalid_input("hostile guest: wrote 2 MiB to stderr".into())
}

/// How many `count-calls` claims this instance has served, reported in the error: shows
/// whether guest memory survives from one operation to the next.
fn count_calls() -> EngineError {
    static CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let calls = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
    invalid_input(format!("hostile guest: call {calls} on this instance"))
}

/// The answer of every export that does not misbehave.
const NOT_FOUND: EngineError = EngineError::NotFound(Entity::Execution);

struct Hostile;

impl scheduling::Guest for Hostile {
    fn claim_execution(args: ClaimExecutionArgs) -> Result<ClaimedExecution, EngineError> {
        match args.worker_id.as_str() {
            "panic-after-write" => {
                damage_rows();
                panic!("hostile guest: panicking after writing");
            }
            "error-after-write" => {
                damage_rows();
                Err(invalid_input("hostile guest: failing after writing".into()))
            }
            "infinite-loop" => {
                damage_rows();
                spin_forever()
            }
            "stack-overflow" => {
                damage_rows();
                Err(invalid_input(format!(
                    "hostile guest: recursed {} deep",
                    recurse(0)
                )))
            }
            "memory-bomb" => {
                damage_rows();
                exhaust_memory()
            }
            "huge-result" | "huge-result-packed" => Err(oversized_query(
                &format!("{TEN_MILLION_ROWS} SELECT x FROM n"),
                args.worker_id.ends_with("-packed"),
            )),
            "huge-bytes" | "huge-bytes-packed" => Err(oversized_query(
                &format!("{TEN_MILLION_ROWS} SELECT zeroblob(65536) FROM n"),
                args.worker_id.ends_with("-packed"),
            )),
            "malformed-packed" => Err(malformed_packed()),
            "huge-value" => Err(oversized_value(&args)),
            "slow-sql" => Err(slow_statement(&args)),
            "garbage-success" => garbage_success(&args),
            "wasi-probe" => Err(probe_wasi()),
            "stderr-flood" => Err(flood_stderr()),
            "count-calls" => Err(count_calls()),
            worker => match FORBIDDEN_SQL.iter().find(|(name, _)| *name == worker) {
                Some((_, statement)) => Err(forbidden_sql(statement, &args)),
                None => hardening::misbehave(worker, &args).unwrap_or(Err(NOT_FOUND)),
            },
        }
    }

    fn create_execution(_: CreateExecutionArgs) -> Result<CreateExecutionOutcome, EngineError> {
        Err(NOT_FOUND)
    }
    fn issue_claim_grant(_: IssueClaimGrantArgs) -> Result<(), EngineError> {
        Err(NOT_FOUND)
    }
    fn issue_grant_and_claim(_: IssueGrantAndClaimArgs) -> Result<ClaimGrantOutcome, EngineError> {
        Err(NOT_FOUND)
    }
    fn claim(_: ClaimArgs) -> Result<Option<ClaimedExecution>, EngineError> {
        Err(NOT_FOUND)
    }
    fn promote_delayed(_: String, _: TimestampMs) -> Result<(), EngineError> {
        Err(NOT_FOUND)
    }
}

impl lease_holder::Guest for Hostile {
    fn renew_lease(_: RenewLeaseArgs) -> Result<TimestampMs, EngineError> {
        Err(NOT_FOUND)
    }
    fn complete_execution(_: CompleteExecutionArgs) -> Result<(), EngineError> {
        Err(NOT_FOUND)
    }
    fn fail_execution(_: FailExecutionArgs) -> Result<FailOutcome, EngineError> {
        Err(NOT_FOUND)
    }
    fn renew(_: HandleLease, _: TimestampMs) -> Result<TimestampMs, EngineError> {
        Err(NOT_FOUND)
    }
    fn progress(
        _: HandleLease,
        _: Option<u8>,
        _: Option<String>,
        _: TimestampMs,
    ) -> Result<(), EngineError> {
        Err(NOT_FOUND)
    }
    fn complete(_: HandleLease, _: Option<Vec<u8>>, _: TimestampMs) -> Result<(), EngineError> {
        Err(NOT_FOUND)
    }
    fn fail(
        _: HandleLease,
        _: String,
        _: FailureClass,
        _: TimestampMs,
    ) -> Result<FailOutcome, EngineError> {
        Err(NOT_FOUND)
    }
}

impl recovery::Guest for Hostile {
    fn cancel_execution(_: CancelExecutionArgs) -> Result<(), EngineError> {
        Err(NOT_FOUND)
    }
    fn revoke_lease(_: RevokeLeaseArgs) -> Result<RevokeLeaseOutcome, EngineError> {
        Err(NOT_FOUND)
    }
    fn claim_resumed_execution(
        _: ClaimResumedExecutionArgs,
    ) -> Result<ClaimedExecution, EngineError> {
        Err(NOT_FOUND)
    }
    fn resume_execution(_: ResumeExecutionArgs) -> Result<PublicState, EngineError> {
        Err(NOT_FOUND)
    }
    fn mark_lease_expired_if_due(_: String, _: TimestampMs) -> Result<(), EngineError> {
        Err(NOT_FOUND)
    }
    fn list_expired_leases(_: ListExpiredLeasesArgs) -> Result<Vec<ExpiredLease>, EngineError> {
        Err(NOT_FOUND)
    }
    fn issue_reclaim_grant(
        _: IssueReclaimGrantArgs,
    ) -> Result<IssueReclaimGrantOutcome, EngineError> {
        Err(NOT_FOUND)
    }
    fn reclaim_execution(_: ReclaimExecutionArgs) -> Result<ReclaimExecutionOutcome, EngineError> {
        Err(NOT_FOUND)
    }
    fn claim_from_resume_grant(
        _: ResumeGrantClaimArgs,
    ) -> Result<Option<ClaimedExecution>, EngineError> {
        Err(NOT_FOUND)
    }
}

impl reads::Guest for Hostile {
    fn read_execution(_: String, _: TimestampMs) -> Result<Option<ExecutionView>, EngineError> {
        // Every read tries to write; the host runs reads read-only.
        match sql::execute("UPDATE ff_exec_core SET lifecycle_phase = 'hacked'", &[]) {
            Err(error) => Err(storage(error)),
            Ok(_) => Err(invalid_input(
                "hostile guest: a read operation wrote".into(),
            )),
        }
    }
    fn get_execution_result(_: String) -> Result<Option<Vec<u8>>, EngineError> {
        Err(NOT_FOUND)
    }
    fn read_execution_context(_: String) -> Result<Option<ExecutionContext>, EngineError> {
        Err(NOT_FOUND)
    }
    fn ping() -> Result<(), EngineError> {
        Ok(())
    }
}

/// The budgets family misbehaves in no way of its own: every export answers
/// `not-found(execution)` and touches nothing.
impl budgets::Guest for Hostile {
    fn create_budget(_: CreateBudgetArgs) -> Result<CreateOutcome, EngineError> {
        Err(NOT_FOUND)
    }
    fn reset_budget(_: String, _: TimestampMs) -> Result<Option<TimestampMs>, EngineError> {
        Err(NOT_FOUND)
    }
    fn get_budget_status(_: String) -> Result<BudgetStatus, EngineError> {
        Err(NOT_FOUND)
    }
    fn report_usage_admin(_: ReportUsageAdminArgs) -> Result<UsageOutcome, EngineError> {
        Err(NOT_FOUND)
    }
    fn report_usage(_: ReportUsageArgs) -> Result<UsageOutcome, EngineError> {
        Err(NOT_FOUND)
    }
    fn record_spend(_: RecordSpendArgs) -> Result<UsageOutcome, EngineError> {
        Err(NOT_FOUND)
    }
    fn release_budget(_: String, _: String, _: TimestampMs) -> Result<(), EngineError> {
        Err(NOT_FOUND)
    }
    fn read_budget_usage_and_limits(_: String) -> Result<BudgetUsageAndLimits, EngineError> {
        Err(NOT_FOUND)
    }
    fn due_budget_resets(_: TimestampMs, _: u32) -> Result<Vec<String>, EngineError> {
        Err(NOT_FOUND)
    }
    fn reset_budget_if_due(_: String, _: TimestampMs) -> Result<bool, EngineError> {
        Err(NOT_FOUND)
    }
    fn create_quota_policy(_: CreateQuotaPolicyArgs) -> Result<CreateOutcome, EngineError> {
        Err(NOT_FOUND)
    }
    fn check_admission(_: CheckAdmissionArgs) -> Result<AdmissionOutcome, EngineError> {
        Err(NOT_FOUND)
    }
    fn read_quota_policy_limits(_: String) -> Result<Option<QuotaPolicyLimits>, EngineError> {
        Err(NOT_FOUND)
    }
    fn release_admission(_: String, _: String) -> Result<(), EngineError> {
        Err(NOT_FOUND)
    }
    fn reconcile_quota_counters(_: TimestampMs) -> Result<ReconcileCounts, EngineError> {
        Err(NOT_FOUND)
    }
    fn block_execution_for_admission(
        _: BlockForAdmissionArgs,
    ) -> Result<BlockForAdmissionOutcome, EngineError> {
        Err(NOT_FOUND)
    }
    fn reconcile_budget_counters(_: TimestampMs) -> Result<ReconcileCounts, EngineError> {
        Err(NOT_FOUND)
    }
}

// The routing, worker-registry, tags and operator families do not misbehave: like every export without a
// misbehaviour, they answer `not-found(execution)` and touch nothing.

impl routing::Guest for Hostile {
    fn scan_eligible_executions(_: ScanEligibleArgs) -> Result<Vec<String>, EngineError> {
        Err(NOT_FOUND)
    }
    fn block_route(_: BlockRouteArgs) -> Result<BlockRouteOutcome, EngineError> {
        Err(NOT_FOUND)
    }
    fn unblock_execution(_: UnblockExecutionArgs) -> Result<(), EngineError> {
        Err(NOT_FOUND)
    }
    fn claim_for_worker(_: ClaimForWorkerArgs) -> Result<Option<ClaimGrant>, EngineError> {
        Err(NOT_FOUND)
    }
}

impl workers::Guest for Hostile {
    fn register_worker(_: RegisterWorkerArgs) -> Result<RegisterWorkerOutcome, EngineError> {
        Err(NOT_FOUND)
    }
    fn heartbeat_worker(_: HeartbeatWorkerArgs) -> Result<HeartbeatWorkerOutcome, EngineError> {
        Err(NOT_FOUND)
    }
    fn mark_worker_dead(_: MarkWorkerDeadArgs) -> Result<MarkWorkerDeadOutcome, EngineError> {
        Err(NOT_FOUND)
    }
    fn list_workers(_: ListWorkersArgs) -> Result<WorkerPage, EngineError> {
        Err(NOT_FOUND)
    }
    fn sweep_expired_workers(_: TimestampMs) -> Result<u32, EngineError> {
        Err(NOT_FOUND)
    }
}

impl tags::Guest for Hostile {
    fn set_execution_tag(_: String, _: String, _: String) -> Result<(), EngineError> {
        Err(NOT_FOUND)
    }
    fn get_execution_tag(_: String, _: String) -> Result<Option<String>, EngineError> {
        Err(NOT_FOUND)
    }
    fn get_execution_namespace(_: String) -> Result<Option<String>, EngineError> {
        Err(NOT_FOUND)
    }
}

impl operator::Guest for Hostile {
    fn change_priority(_: ChangePriorityArgs) -> Result<(), EngineError> {
        Err(NOT_FOUND)
    }
    fn read_exec_core_fields(
        _: String,
        _: Vec<String>,
    ) -> Result<Vec<Option<String>>, EngineError> {
        Err(NOT_FOUND)
    }
    fn list_lanes(_: Option<String>, _: u32) -> Result<LanePage, EngineError> {
        Err(NOT_FOUND)
    }
    fn server_time_ms() -> Result<TimestampMs, EngineError> {
        Err(NOT_FOUND)
    }
    fn replay_execution(_: String, _: TimestampMs) -> Result<PublicState, EngineError> {
        Err(NOT_FOUND)
    }
    fn list_executions(
        _: u16,
        _: Option<String>,
        _: u32,
    ) -> Result<operator::ExecutionPage, EngineError> {
        Err(NOT_FOUND)
    }
    fn expire_execution(
        _: String,
        _: operator::ExpirePhase,
        _: TimestampMs,
    ) -> Result<(), EngineError> {
        Err(NOT_FOUND)
    }
    fn reconcile_execution_index(
        _: u16,
        _: Vec<String>,
        _: operator::ExecutionFilter,
        _: TimestampMs,
    ) -> Result<operator::ReconcileCounts, EngineError> {
        Err(NOT_FOUND)
    }
    fn trim_retention(_: operator::TrimRetentionArgs) -> Result<u32, EngineError> {
        Err(NOT_FOUND)
    }
    fn due_expirations(
        _: TimestampMs,
        _: u32,
    ) -> Result<Vec<operator::DueExpiration>, EngineError> {
        Err(NOT_FOUND)
    }
    fn retention_targets(
        _: TimestampMs,
        _: u32,
    ) -> Result<Vec<operator::RetentionTarget>, EngineError> {
        Err(NOT_FOUND)
    }
}

/// Statements that would read, copy or replace the keystore's secrets.
const KEYSTORE_PROBES: &[&str] = &[
    "SELECT kid, secret FROM ff_waitpoint_hmac",
    "SELECT (SELECT secret FROM ff_waitpoint_hmac LIMIT 1)",
    "WITH s AS (SELECT secret FROM ff_waitpoint_hmac) SELECT hex(secret) FROM s",
    "SELECT w.token FROM ff_waitpoint_pending AS w JOIN ff_waitpoint_hmac AS h ON h.kid = w.token_kid",
    "SELECT count(*) FROM ff_waitpoint_hmac",
    "INSERT INTO ff_exec_core (partition_key, execution_id, lane_id, lifecycle_phase, ownership_state, \
         eligibility_state, public_state, attempt_state, created_at_ms, raw_fields) \
     SELECT 0, randomblob(16), hex(secret), 'x', 'x', 'x', 'x', 'x', 0, '{}' FROM ff_waitpoint_hmac",
    "INSERT INTO ff_waitpoint_hmac (kid, secret, rotated_at_ms, active) VALUES ('evil', x'00', 0, 1)",
    "UPDATE ff_waitpoint_hmac SET active = 0",
    "DELETE FROM ff_waitpoint_hmac",
];

/// Run every [`KEYSTORE_PROBES`] statement and ask the token signer for a token: the refusals
/// as `storage` (joined), or what worked as `validation(invalid-input)`.
fn steal_secrets() -> EngineError {
    let mut refusals = Vec::new();
    let mut worked = Vec::new();
    for probe in KEYSTORE_PROBES {
        let result = if probe.starts_with("SELECT") || probe.starts_with("WITH") {
            sql::query(probe, &[]).map(|rows| format!("{} rows", rows.rows.len()))
        } else {
            sql::execute(probe, &[]).map(|done| format!("{} changes", done.changes))
        };
        match result {
            Ok(what) => worked.push(format!("{probe}: {what}")),
            Err(error) => refusals.push(format!("{error:?}")),
        }
    }
    // The signer hands out tokens, never a secret: a token is `<kid>:<64 hex>`.
    match waitpoint_tokens::sign("probe") {
        Ok(signed) if signed.token.len() != signed.kid.len() + 65 => {
            worked.push(format!("sign returned {} bytes", signed.token.len()))
        }
        _ => {}
    }
    if worked.is_empty() {
        EngineError::Storage(StorageError::Denied(refusals.join(" | ")))
    } else {
        invalid_input(format!("hostile guest: {}", worked.join("; ")))
    }
}

impl suspension::Guest for Hostile {
    fn deliver_signal(args: DeliverSignalArgs) -> Result<DeliverSignalOutcome, EngineError> {
        match args.signal_name.as_str() {
            "steal-secrets" => Err(steal_secrets()),
            _ => Err(NOT_FOUND),
        }
    }
    fn suspend(_: suspension::HandleLease, _: SuspendArgs) -> Result<SuspendOutcome, EngineError> {
        Err(NOT_FOUND)
    }
    fn suspend_by_triple(
        _: String,
        _: LeaseFence,
        _: SuspendArgs,
    ) -> Result<SuspendOutcome, EngineError> {
        Err(NOT_FOUND)
    }
    fn create_waitpoint(
        _: suspension::HandleLease,
        _: String,
        _: TimestampMs,
        _: TimestampMs,
    ) -> Result<SignedWaitpoint, EngineError> {
        Err(NOT_FOUND)
    }
    fn observe_signals(_: suspension::HandleLease) -> Result<Vec<ResumeSignal>, EngineError> {
        Err(NOT_FOUND)
    }
    fn read_waitpoint_token(_: u16, _: String) -> Result<Option<String>, EngineError> {
        Err(NOT_FOUND)
    }
    fn deliver_approval_signal(
        _: DeliverApprovalSignalArgs,
    ) -> Result<DeliverSignalOutcome, EngineError> {
        Err(NOT_FOUND)
    }
    fn list_pending_waitpoints(
        _: ListPendingWaitpointsArgs,
    ) -> Result<PendingWaitpointsPage, EngineError> {
        Err(NOT_FOUND)
    }
    fn delay(
        _: suspension::HandleLease,
        _: TimestampMs,
        _: TimestampMs,
    ) -> Result<(), EngineError> {
        Err(NOT_FOUND)
    }
    fn cancel(_: suspension::HandleLease, _: String, _: TimestampMs) -> Result<(), EngineError> {
        Err(NOT_FOUND)
    }
    fn close_waitpoint(_: String, _: String, _: TimestampMs) -> Result<(), EngineError> {
        Err(NOT_FOUND)
    }
    fn expire_suspension(_: String, _: TimestampMs) -> Result<(), EngineError> {
        Err(NOT_FOUND)
    }
    fn list_suspended(_: ListSuspendedArgs) -> Result<SuspendedPage, EngineError> {
        Err(NOT_FOUND)
    }
}

/// Streams: every export answers `not-found(execution)` and touches nothing (this guest's
/// misbehaviour is driven through claims only).
impl streams::Guest for Hostile {
    fn append_frame(_: AppendFrameArgs) -> Result<AppendFrameOutcome, EngineError> {
        Err(NOT_FOUND)
    }
    fn read_frames(_: FrameQuery) -> Result<FramePage, EngineError> {
        Err(NOT_FOUND)
    }
    fn read_summary(_: String, _: u32) -> Result<Option<SummaryDocument>, EngineError> {
        Err(NOT_FOUND)
    }
    fn read_outbox(
        _: Outbox,
        _: i64,
        _: u32,
        _: u64,
        _: OutboxFilter,
    ) -> Result<OutboxPage, EngineError> {
        Err(NOT_FOUND)
    }
    fn change_heads() -> Result<Heads, EngineError> {
        Err(NOT_FOUND)
    }
}

/// The flows family: every operation answers `not-found(execution)` and touches nothing (the
/// misbehaviours live on the claim above; this block only completes the world).
impl flows::Guest for Hostile {
    fn create_flow(_: CreateFlowArgs) -> Result<CreateFlowOutcome, EngineError> {
        Err(NOT_FOUND)
    }
    fn add_execution_to_flow(_: AddExecutionArgs) -> Result<AddExecutionOutcome, EngineError> {
        Err(NOT_FOUND)
    }
    fn stage_dependency_edge(_: StageEdgeArgs) -> Result<StageEdgeOutcome, EngineError> {
        Err(NOT_FOUND)
    }
    fn apply_dependency_to_child(
        _: ApplyDependencyArgs,
    ) -> Result<ApplyDependencyOutcome, EngineError> {
        Err(NOT_FOUND)
    }
    fn evaluate_flow_eligibility(_: String) -> Result<String, EngineError> {
        Err(NOT_FOUND)
    }
    fn cancel_flow(
        _: String,
        _: CancelFlowPolicy,
        _: TimestampMs,
    ) -> Result<CancelFlowOutcome, EngineError> {
        Err(NOT_FOUND)
    }
    fn cancel_flow_header(_: CancelFlowHeaderArgs) -> Result<CancelFlowHeaderOutcome, EngineError> {
        Err(NOT_FOUND)
    }
    fn ack_cancel_member(_: String, _: String) -> Result<(), EngineError> {
        Err(NOT_FOUND)
    }
    fn set_flow_tag(_: String, _: String, _: String) -> Result<(), EngineError> {
        Err(NOT_FOUND)
    }
    fn get_flow_tag(_: String, _: String) -> Result<Option<String>, EngineError> {
        Err(NOT_FOUND)
    }
    fn describe_flow(_: String) -> Result<Option<FlowView>, EngineError> {
        Err(NOT_FOUND)
    }
    fn list_flows(_: u16, _: Option<String>, _: u32) -> Result<FlowPage, EngineError> {
        Err(NOT_FOUND)
    }
    fn list_edges(_: String, _: EdgeDirection) -> Result<Vec<EdgeView>, EngineError> {
        Err(NOT_FOUND)
    }
    fn describe_edge(_: String, _: String) -> Result<Option<EdgeView>, EngineError> {
        Err(NOT_FOUND)
    }
    fn resolve_execution_flow_id(_: String) -> Result<Option<String>, EngineError> {
        Err(NOT_FOUND)
    }
    fn set_edge_group_policy(
        _: String,
        _: String,
        _: EdgeGroupPolicy,
    ) -> Result<bool, EngineError> {
        Err(NOT_FOUND)
    }
    fn resolve_dependency(_: ResolveDependencyArgs) -> Result<ResolveOutcome, EngineError> {
        Err(NOT_FOUND)
    }
    fn cascade_completion(_: String, _: TimestampMs) -> Result<CascadeOutcome, EngineError> {
        Err(NOT_FOUND)
    }
    fn wait_children(_: ChildWaitLease, _: TimestampMs) -> Result<(), EngineError> {
        Err(NOT_FOUND)
    }
    fn drain_sibling_cancel_group(
        _: String,
        _: String,
        _: TimestampMs,
    ) -> Result<u32, EngineError> {
        Err(NOT_FOUND)
    }
    fn reconcile_sibling_cancel_group(
        _: String,
        _: String,
    ) -> Result<flows::SiblingCancelAction, EngineError> {
        Err(NOT_FOUND)
    }
    fn project_flow_summary(_: String, _: TimestampMs) -> Result<bool, EngineError> {
        Err(NOT_FOUND)
    }
}

// Exported only when built as a component: the export names are not valid symbols for a
// native shared library, and native builds exist only for unit tests and lints.
#[cfg(target_family = "wasm")]
bindings::export!(Hostile with_types_in bindings);
