//! The guest outside our host (README, "Outside the host"): the components `ffwasm guest
//! compose` builds, run by the stock `wasmtime` CLI and by Node through jco, and the database
//! they write opened by our native host afterwards.
//!
//! The tools come from `scripts/install-standalone-tools.sh` (`.ci/run` calls it); a missing
//! tool fails the test with that command. The provider and driver are built once per run by
//! `scripts/build-standalone.sh`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use ff_backend_sqlite_wasm::SqliteBackend;
use ff_core::engine_backend::EngineBackend;
use ff_core::state::PublicState;
use ff_core::types::ExecutionId;
use rusqlite::Connection;
use serial_test::parallel;
use uuid::Uuid;

use crate::support::{now_ms, snapshot};

const INSTALL: &str = "scripts/install-standalone-tools.sh";

/// The composed components, built once.
struct Components {
    /// The built-in guest as a library (`ffwasm guest compose`).
    engine: PathBuf,
    /// The built-in guest as a command (`--command`).
    command: PathBuf,
    /// The hostile test guest, a custom guest composed the same way.
    hostile: PathBuf,
}

fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

/// Run `command`, failing the test with its output when it cannot start or fails.
fn run_ok(command: &mut Command) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("cannot run {command:?}: {error}; run {INSTALL}"));
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Fail with the install command when `tool` does not run.
fn require(tool: &str, version_flag: &str) {
    let runs = Command::new(tool)
        .arg(version_flag)
        .output()
        .is_ok_and(|output| output.status.success());
    assert!(runs, "`{tool}` is missing: run {INSTALL}");
}

fn components() -> &'static Components {
    static COMPONENTS: OnceLock<Components> = OnceLock::new();
    COMPONENTS.get_or_init(|| {
        require("clang-19", "--version");
        require("wasmtime", "--version");
        run_ok(
            Command::new(workspace().join("scripts/build-standalone.sh"))
                .env_remove("CARGO_ENCODED_RUSTFLAGS")
                .env_remove("RUSTFLAGS")
                .env_remove("CARGO_TARGET_DIR"),
        );
        let dir = workspace().join("target/standalone-test");
        std::fs::create_dir_all(&dir).unwrap();
        let compose = |out: &str, extra: &[&str]| {
            let path = dir.join(out);
            run_ok(
                Command::new(crate::custom_guest::ffwasm())
                    .args(["guest", "compose", "-o"])
                    .arg(&path)
                    .args(extra),
            );
            path
        };
        Components {
            engine: compose("engine.wasm", &[]),
            command: compose("command.wasm", &["--command"]),
            hostile: compose("hostile.wasm", &["--guest", env!("FF_HOSTILE_GUEST_WASM")]),
        }
    })
}

/// A directory of its own for one test's database, removed afterwards.
struct DataDir(PathBuf);

impl DataDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("ff-standalone-{name}-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn database(&self) -> PathBuf {
        self.0.join("flowfabric.sqlite")
    }

    /// `wasmtime run` with this directory preopened as `/data` and the database in it.
    fn wasmtime(&self) -> Command {
        let mut command = Command::new("wasmtime");
        command
            .arg("run")
            .arg("--dir")
            .arg(format!("{}::/data", self.0.display()))
            .args(["--env", "FF_DB=/data/flowfabric.sqlite"]);
        command
    }

    /// `wasmtime run --invoke <call>` of `component`; returns what it printed.
    fn invoke(&self, component: &Path, call: &str) -> String {
        let output = run_ok(self.wasmtime().args(["--invoke", call]).arg(component));
        String::from_utf8(output.stdout).unwrap()
    }

    /// The database as rows, read natively (which also rolls back a transaction a dead process
    /// left in SQLite's journal).
    fn snapshot(&self) -> Vec<String> {
        snapshot(&Connection::open(self.database()).unwrap())
    }

    fn integrity_check(&self) -> String {
        Connection::open(self.database())
            .unwrap()
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))
            .unwrap()
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The number after `field: ` in a WAVE value.
fn field(output: &str, field: &str) -> u64 {
    let start = output
        .find(&format!("{field}: "))
        .unwrap_or_else(|| panic!("no {field} in {output}"))
        + field.len()
        + 2;
    output[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap()
}

fn create_call(execution_id: &str) -> String {
    format!(
        "create-execution({{execution-id: \"{execution_id}\", namespace: \"ns\", lane-id: \
         \"default\", execution-kind: \"k\", input-payload: [1, 2, 3], payload-encoding: none, \
         priority: 0, creator-identity: \"tests\", idempotency-key: none, tags: [], policy-json: \
         none, required-capabilities: [], delay-until: none, execution-deadline-at: none, now: {}}})",
        now_ms()
    )
}

fn claim_call(execution_id: &str, worker_id: &str, lease_id: Uuid, attempt_id: Uuid) -> String {
    format!(
        "claim-execution({{execution-id: \"{execution_id}\", worker-id: \"{worker_id}\", \
         worker-instance-id: \"wi-1\", lane-id: \"default\", lease-id: \"{lease_id}\", \
         lease-ttl-ms: 60000, attempt-id: \"{attempt_id}\", expected-attempt-index: 0, \
         attempt-policy-json: none, attempt-timeout-ms: none, execution-deadline-at: none, \
         now: {}}})",
        now_ms()
    )
}

fn new_execution_id() -> String {
    format!("{{fp:0}}:{}", Uuid::new_v4())
}

/// Our native host's view of `execution_id` in `database`.
fn native_state(database: &Path, execution_id: &str) -> Option<PublicState> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    crate::support::dev_mode();
    runtime.block_on(async {
        let backend = SqliteBackend::builder(database.display().to_string())
            .open()
            .await
            .unwrap();
        let engine: &dyn EngineBackend = &*backend;
        engine
            .read_execution_state(&ExecutionId::parse(execution_id).unwrap())
            .await
            .unwrap()
    })
}

#[test]
#[parallel(process)]
fn the_composed_components_import_only_wasi() {
    let components = components();
    for path in [&components.engine, &components.command, &components.hostile] {
        let output = run_ok(
            Command::new("wasm-tools")
                .args(["component", "wit"])
                .arg(path),
        );
        let wit = String::from_utf8(output.stdout).unwrap();
        let imports: Vec<&str> = wit
            .lines()
            .map(str::trim)
            .filter(|line| line.starts_with("import "))
            .collect();
        assert!(!imports.is_empty());
        assert!(
            imports.iter().all(|line| line.starts_with("import wasi:")),
            "{}: {imports:?}",
            path.display()
        );
        run_ok(Command::new("wasm-tools").arg("validate").arg(path));
    }
}

#[test]
#[parallel(process)]
fn wasmtime_invoke_runs_create_grant_claim_renew_complete_read() {
    let engine = &components().engine;
    let data = DataDir::new("invoke");
    let execution_id = new_execution_id();
    let created = data.invoke(engine, &create_call(&execution_id));
    assert!(created.starts_with("ok(created(waiting"), "{created}");
    let granted = data.invoke(
        engine,
        &format!(
            "issue-claim-grant({{execution-id: \"{execution_id}\", lane-id: \"default\", \
             worker-id: \"w1\", worker-instance-id: \"wi-1\", capability-hash: none, \
             route-snapshot-json: none, admission-summary: none, worker-capabilities: [], \
             grant-ttl-ms: 60000, now: {}}})",
            now_ms()
        ),
    );
    assert_eq!(granted.trim(), "ok");
    let (lease_id, attempt_id) = (Uuid::new_v4(), Uuid::new_v4());
    let claimed = data.invoke(
        engine,
        &claim_call(&execution_id, "w1", lease_id, attempt_id),
    );
    assert!(claimed.starts_with("ok("), "{claimed}");
    let epoch = field(&claimed, "lease-epoch");
    let index = field(&claimed, "attempt-index");
    let fence = format!(
        "some({{lease-id: \"{lease_id}\", lease-epoch: {epoch}, attempt-id: \"{attempt_id}\"}})"
    );
    let renewed = data.invoke(
        engine,
        &format!(
            "renew-lease({{execution-id: \"{execution_id}\", attempt-index: {index}, fence: \
             {fence}, lease-ttl-ms: 60000, now: {}}})",
            now_ms()
        ),
    );
    assert!(renewed.starts_with("ok("), "{renewed}");
    let completed = data.invoke(
        engine,
        &format!(
            "complete-execution({{execution-id: \"{execution_id}\", fence: {fence}, \
             attempt-index: {index}, result-payload: some([100, 111, 110, 101]), \
             result-encoding: none, source: lease-holder, now: {}}})",
            now_ms()
        ),
    );
    assert_eq!(completed.trim(), "ok");
    let read = data.invoke(
        engine,
        &format!("read-execution(\"{execution_id}\", {})", now_ms()),
    );
    assert!(read.contains("public-state: \"completed\""), "{read}");
    let result = data.invoke(engine, &format!("get-execution-result(\"{execution_id}\")"));
    assert_eq!(result.trim(), "ok(some([100, 111, 110, 101]))");

    assert_eq!(data.integrity_check(), "ok");
    assert_eq!(
        native_state(&data.database(), &execution_id),
        Some(PublicState::Completed)
    );
}

#[test]
#[parallel(process)]
fn the_command_component_runs_its_workload_and_inspection_commands() {
    let command = &components().command;
    let data = DataDir::new("command");
    let output = run_ok(data.wasmtime().arg(command).args(["workload", "4"]));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        stdout.contains("workload: 4 created, 4 completed"),
        "{stdout}"
    );
    let stats = run_ok(data.wasmtime().arg(command).arg("stats"));
    let stats = String::from_utf8(stats.stdout).unwrap();
    assert!(stats.contains("completed 4"), "{stats}");
    let first = stdout
        .lines()
        .find_map(|line| line.strip_prefix("claimed "))
        .and_then(|rest| rest.split(' ').next())
        .unwrap()
        .to_owned();
    let shown = run_ok(data.wasmtime().arg(command).args(["show", &first]));
    assert!(
        String::from_utf8(shown.stdout)
            .unwrap()
            .contains("\"completed\"")
    );
    // A failing command exits non-zero.
    let missing = data
        .wasmtime()
        .arg(command)
        .args(["show", &new_execution_id()])
        .output()
        .unwrap();
    assert!(!missing.status.success());

    assert_eq!(data.integrity_check(), "ok");
    let completed = stdout
        .lines()
        .filter_map(|line| line.strip_prefix("read "))
        .filter_map(|rest| rest.split(' ').next())
        .filter(|id| native_state(&data.database(), id) == Some(PublicState::Completed))
        .count();
    assert_eq!(completed, 4, "{stdout}");
}

#[test]
#[parallel(process)]
fn a_failing_operation_leaves_nothing_behind_under_wasmtime() {
    let components = components();
    let data = DataDir::new("rollback");
    for _ in 0..3 {
        let created = data.invoke(&components.engine, &create_call(&new_execution_id()));
        assert!(created.starts_with("ok("), "{created}");
    }
    let before = data.snapshot();
    assert!(!before.is_empty());

    // The hostile guest, composed the same way, damages rows and then returns `err`: the
    // adapter rolls the transaction back.
    let execution_id = new_execution_id();
    let failed = data.invoke(
        &components.hostile,
        &claim_call(
            &execution_id,
            "error-after-write",
            Uuid::new_v4(),
            Uuid::new_v4(),
        ),
    );
    assert!(failed.starts_with("err("), "{failed}");
    assert_eq!(data.snapshot(), before);

    // It damages rows and then traps: the transaction is never committed, and SQLite rolls it
    // back from the journal at the next open.
    let trapped = data
        .wasmtime()
        .args([
            "--invoke",
            &claim_call(
                &execution_id,
                "panic-after-write",
                Uuid::new_v4(),
                Uuid::new_v4(),
            ),
        ])
        .arg(&components.hostile)
        .output()
        .unwrap();
    assert!(!trapped.status.success());
    assert_eq!(data.snapshot(), before);
    assert_eq!(data.integrity_check(), "ok");

    // The dead process left its dotfile lock (WASI has no locks that die with a process): the
    // next operation is refused, naming the lock, until it is removed.
    let lock = data.0.join("flowfabric.sqlite.lock");
    assert!(lock.exists());
    let refused = data
        .wasmtime()
        .args(["--invoke", "ping()"])
        .arg(&components.hostile)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr)
            .contains("remove the /data/flowfabric.sqlite.lock directory")
    );
    std::fs::remove_dir_all(&lock).unwrap();
    // The custom guest serves an ordinary call once the lock is gone.
    assert_eq!(data.invoke(&components.hostile, "ping()").trim(), "ok");
    assert_eq!(data.snapshot(), before);

    // A guest that damages rows and then never returns is stopped by the runtime's own time
    // limit (the composition has none), and its writes are rolled back like a trap's.
    let stopped = data
        .wasmtime()
        .args([
            "-W",
            "timeout=1s",
            "--invoke",
            &claim_call(
                &execution_id,
                "infinite-loop",
                Uuid::new_v4(),
                Uuid::new_v4(),
            ),
        ])
        .arg(&components.hostile)
        .output()
        .unwrap();
    assert!(!stopped.status.success());
    assert_eq!(data.snapshot(), before);
}

#[test]
#[parallel(process)]
fn node_runs_the_flow_through_jco_and_our_host_reads_it() {
    let engine = &components().engine;
    let example = workspace().join("examples/node");
    let jco = example.join("node_modules/.bin/jco");
    assert!(jco.exists(), "jco is missing: run {INSTALL}");
    require("node", "--version");
    let transpiled = example.join(format!("build/test-{}", Uuid::new_v4()));
    run_ok(
        Command::new(&jco)
            .args(["transpile", "--quiet", "--name", "engine", "-o"])
            .arg(&transpiled)
            .arg(engine),
    );
    let data = DataDir::new("node");
    let output = Command::new("node")
        .current_dir(&example)
        .arg("engine.mjs")
        .arg(&transpiled)
        .arg(&data.0)
        .output();
    let _ = std::fs::remove_dir_all(&transpiled);
    let output = output.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains(r#""publicState":"completed""#), "{stdout}");
    // The failing call (completing twice) left the execution as it was.
    assert!(stdout.contains(r#""step":"complete-again""#), "{stdout}");
    let execution_id = stdout
        .lines()
        .find_map(|line| line.split(r#""executionId":""#).nth(1))
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    assert_eq!(data.integrity_check(), "ok");
    assert_eq!(
        native_state(&data.database(), &execution_id),
        Some(PublicState::Completed)
    );
}

#[test]
#[parallel(process)]
fn a_database_our_host_has_open_is_refused_and_one_it_closed_is_taken_over() {
    let engine = &components().engine;
    let data = DataDir::new("native");
    let execution_id = new_execution_id();
    assert!(
        data.invoke(engine, &create_call(&execution_id))
            .starts_with("ok(")
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    crate::support::dev_mode();
    let backend = runtime.block_on(async {
        SqliteBackend::builder(data.database().display().to_string())
            .open()
            .await
            .unwrap()
    });
    // Our host has the file open in WAL mode; its locks are invisible under WASI.
    let refused = data
        .wasmtime()
        .args(["--invoke", "ping()"])
        .arg(engine)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("-shm exists"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    drop(backend);
    drop(runtime);
    // Closed, the file has no -shm; the provider takes it over (rollback-journal mode again).
    let shm = data.0.join("flowfabric.sqlite-shm");
    assert!(!shm.exists(), "our host left {}", shm.display());
    let read = data.invoke(
        engine,
        &format!("read-execution(\"{execution_id}\", {})", now_ms()),
    );
    assert!(read.contains("public-state: \"waiting\""), "{read}");
    assert_eq!(data.integrity_check(), "ok");
}

#[test]
#[parallel(process)]
fn the_provider_applies_the_hosts_sql_policy_and_limits() {
    let components = components();
    let data = DataDir::new("policy");
    assert!(
        data.invoke(&components.engine, &create_call(&new_execution_id()))
            .starts_with("ok(")
    );
    let before = data.snapshot();
    let execution_id = new_execution_id();
    for (worker_id, refusal) in [
        ("begin", "denied("),
        ("commit", "denied("),
        ("savepoint", "denied("),
        ("attach", "denied("),
        ("pragma", "denied("),
        ("pragma-function", "denied("),
        ("create-table", "denied("),
        ("drop-table", "denied("),
        // SQLite for WASI is built without extension loading: the function does not exist.
        ("load-extension", "no such function: load_extension"),
        ("malformed-packed", "denied("),
        ("huge-result", "too-large("),
        ("huge-bytes-packed", "too-large("),
    ] {
        let output = data.invoke(
            &components.hostile,
            &claim_call(&execution_id, worker_id, Uuid::new_v4(), Uuid::new_v4()),
        );
        assert!(
            output.starts_with("err(storage(") && output.contains(refusal),
            "{worker_id}: {output}"
        );
    }
    assert_eq!(data.snapshot(), before);
    assert!(!data.0.join("hostile-attached.sqlite").exists());
}

#[test]
#[parallel(process)]
fn two_wasm_processes_on_one_file_take_turns() {
    let command = &components().command;
    let data = DataDir::new("two-processes");
    let children: Vec<_> = (0..2)
        .map(|_| {
            data.wasmtime()
                .arg(command)
                .args(["workload", "5"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.contains("workload: 5 created, 5 completed"),
            "{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let stats = run_ok(data.wasmtime().arg(command).arg("stats"));
    assert!(String::from_utf8_lossy(&stats.stdout).contains("completed 10"));
    assert_eq!(data.integrity_check(), "ok");
    assert!(!data.0.join("flowfabric.sqlite.lock").exists());
}
