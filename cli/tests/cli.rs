//! The `ffwasm` binary, driven as a user would: the demo in an empty directory (twice), the
//! inspection commands on what it wrote, bad arguments, missing and damaged database files, and
//! the guest commands. The custom guest example is driven through the binary in `tests/all/custom_guest.rs`.

use std::path::PathBuf;
use std::process::{Command, Output};

/// The binary under test; cargo builds it for this package's integration tests.
const FFWASM: &str = env!("CARGO_BIN_EXE_ffwasm");

/// The built-in guest component, as the library exports it; [`Scratch::builtin_guest`] writes it
/// to a file for the commands that take one.
use ff_backend_sqlite_wasm::BUILTIN_GUEST_COMPONENT;

/// A WebAssembly core module, not a component.
const CORE_MODULE: &[u8] = b"\0asm\x01\0\0\0";

/// A valid component with no imports and no exports.
const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";

/// A directory of its own for one test, removed afterwards.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("ffwasm-cli-{name}-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// The built-in guest component as a file in this directory; returns its path.
    fn builtin_guest(&self) -> String {
        let path = self.path("builtin-guest.wasm");
        std::fs::write(&path, BUILTIN_GUEST_COMPONENT).unwrap();
        path.to_str().unwrap().to_owned()
    }

    /// Run `ffwasm args…` in this directory, without `FF_DEV_MODE` or `RUST_LOG` in its
    /// environment (ffwasm sets the first itself).
    fn ffwasm(&self, args: &[&str]) -> Run {
        self.ffwasm_with(args, &[])
    }

    fn ffwasm_with(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut command = Command::new(FFWASM);
        command
            .args(args)
            .current_dir(&self.0)
            .env_remove("FF_DEV_MODE")
            .env_remove("RUST_LOG");
        for (key, value) in env {
            command.env(key, value);
        }
        Run(command.output().expect("ffwasm runs"))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A finished `ffwasm` process.
struct Run(Output);

impl Run {
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }

    /// Assert the exit status, showing the output when it differs.
    fn status(&self, code: i32) -> &Self {
        assert_eq!(
            self.0.status.code(),
            Some(code),
            "exit status\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout(),
            self.stderr()
        );
        self
    }

    /// Assert a failure whose one-line message on stderr contains `text`.
    fn fails_with(&self, text: &str) {
        self.status(1);
        let stderr = self.stderr();
        assert!(
            stderr.starts_with("error: ") && stderr.contains(text),
            "stderr: {stderr}"
        );
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "one line, no backtrace: {stderr}"
        );
    }
}

/// The cells of the summary's `total` row: executions, completed, failed, attempts, retries.
fn summary_totals(stdout: &str) -> Vec<u64> {
    let line = stdout
        .lines()
        .find(|line| line.starts_with("total "))
        .unwrap_or_else(|| panic!("no total row in:\n{stdout}"));
    line.split_whitespace()
        .skip(1)
        .map(|cell| cell.parse().unwrap())
        .collect()
}

/// The execution ids in the first column of an `executions` table.
fn listed_ids(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter(|line| line.starts_with("{fp:"))
        .map(|line| line.split_whitespace().next().unwrap().to_owned())
        .collect()
}

#[test]
fn the_demo_runs_twice_in_one_directory_and_the_inspection_commands_read_what_it_wrote() {
    let dir = Scratch::new("demo");
    // Every attempt fails and is retried once: 30 terminal failures after 60 attempts.
    let first = dir.ffwasm(&[
        "demo",
        "-n",
        "30",
        "-w",
        "4",
        "--failure-rate",
        "1",
        "--max-retries",
        "1",
        "--approvals",
        "0",
    ]);
    let stdout = first.status(0).stdout();
    assert!(stdout.contains("ffwasm-demo.sqlite (created)"), "{stdout}");
    // The operator made the last execution urgent before the workers started; it is stored.
    let urgent = stdout
        .lines()
        .find_map(|line| line.strip_prefix("operator  raised "))
        .and_then(|rest| rest.split("'s priority to 100 (change_priority)").next())
        .unwrap_or_else(|| panic!("an operator line: {stdout}"))
        .to_owned();
    let shown = dir.ffwasm(&["show", &urgent]).status(0).stdout();
    assert!(
        shown
            .lines()
            .any(|line| line.starts_with("priority") && line.contains("100")),
        "{shown}"
    );
    assert!(stdout.contains("Executions by final state"), "{stdout}");
    assert!(
        stdout.contains("lane     executions  completed  failed  attempts  retries"),
        "{stdout}"
    );
    assert_eq!(summary_totals(&stdout), [30, 0, 30, 60, 30]);
    assert!(
        stdout.contains("claim latency  p50 ") && stdout.contains(" p99 "),
        "{stdout}"
    );
    assert!(stdout.contains("executions/s"), "{stdout}");
    // The run's flow: fan-out, fan-in, and the failing branch's dependants skipped.
    let flow = stdout.split("\nFlow ").nth(1).expect("a flow section");
    for (step, state) in [
        ("extract", "completed"),
        ("transform-c", "failed"),
        ("load", "completed"),
        ("audit", "skipped"),
        ("notify", "skipped"),
    ] {
        assert!(
            flow.lines()
                .any(|line| line.starts_with(step) && line.contains(&format!(" {state} "))),
            "{step} {state}: {stdout}"
        );
    }
    assert!(
        stdout.contains("tokens reported by 60 attempts; soft limit 3600 crossed by"),
        "{stdout}"
    );
    assert!(dir.path("ffwasm-demo.sqlite").is_file());

    // Again in the same directory: the file is reused and this run is summarized on its own.
    let second = dir.ffwasm(&[
        "demo",
        "-n",
        "30",
        "-w",
        "4",
        "--failure-rate",
        "0",
        "--approvals",
        "0",
    ]);
    let stdout = second.status(0).stdout();
    assert!(stdout.contains("(reused"), "{stdout}");
    assert_eq!(summary_totals(&stdout), [30, 30, 0, 30, 0]);

    // Each run registered its four workers; `--all` lists them whether or not they lapsed.
    let workers = dir.ffwasm(&["workers", "--all"]).status(0).stdout();
    let demo_workers = workers
        .lines()
        .filter(|line| line.starts_with("ffwasm-demo ") && line.contains("demo-worker-"))
        .count();
    assert_eq!(demo_workers, 8, "{workers}");
    assert!(
        workers.contains("alerts") || workers.contains("email"),
        "{workers}"
    );
    let elsewhere = dir
        .ffwasm(&["workers", "--all", "--namespace", "elsewhere"])
        .status(0)
        .stdout();
    assert!(
        elsewhere.contains("No live workers in namespace elsewhere"),
        "{elsewhere}"
    );

    let stats = dir.ffwasm(&["stats"]).status(0).stdout();
    // Each run: 30 executions on the fleet's lanes and a flow of 7 on lane `dag`.
    assert!(stats.contains("executions         74"), "{stats}");
    assert!(
        stats.contains("budgets            2 (0 reports refused at a hard limit)"),
        "{stats}"
    );
    // One budget per run, each with its run's token usage against its soft limit.
    let budgets = dir.ffwasm(&["budgets"]).status(0).stdout();
    let rows: Vec<&str> = budgets
        .lines()
        .filter(|line| line.contains("demo-run:"))
        .collect();
    assert_eq!(rows.len(), 2, "{budgets}");
    assert!(
        rows.iter()
            .all(|row| row.contains(" tokens ") && row.contains(" 3600 ")),
        "{budgets}"
    );
    assert!(budgets.contains("Quota policies\n(none)"), "{budgets}");
    assert!(
        stats.contains("attempts           100 (30 retries)"),
        "{stats}"
    );
    let total = stats
        .lines()
        .find(|line| line.starts_with("total "))
        .unwrap();
    assert_eq!(
        total.split_whitespace().collect::<Vec<_>>(),
        ["total", "38", "32", "4", "74"],
        "{stats}"
    );

    let all = dir
        .ffwasm(&["executions", "--limit", "0"])
        .status(0)
        .stdout();
    assert_eq!(listed_ids(&all).len(), 74, "{all}");
    let some = dir.ffwasm(&["executions"]).status(0).stdout();
    assert!(
        some.contains("50 of 74 executions, most recent first"),
        "{some}"
    );
    let failed = dir
        .ffwasm(&["executions", "--state", "failed", "--limit", "0"])
        .status(0)
        .stdout();
    assert_eq!(listed_ids(&failed).len(), 32, "{failed}");
    // The fleet's failures (the flows' failing steps ran one attempt each).
    let failed = dir
        .ffwasm(&[
            "executions",
            "--lane",
            "email",
            "--state",
            "failed",
            "--limit",
            "0",
        ])
        .status(0)
        .stdout();
    assert_eq!(listed_ids(&failed).len(), 10, "{failed}");
    let email = dir
        .ffwasm(&[
            "executions",
            "--lane",
            "email",
            "--state",
            "completed",
            "--limit",
            "0",
        ])
        .status(0)
        .stdout();
    assert_eq!(listed_ids(&email).len(), 10, "{email}");
    assert!(
        email
            .lines()
            .skip(2)
            .all(|line| line.contains(" email ") && line.contains(" completed "))
    );
    let none = dir
        .ffwasm(&["executions", "--lane", "no-such-lane"])
        .status(0)
        .stdout();
    assert_eq!(none.trim(), "No executions in lane no-such-lane.");

    // A failed execution in full: both attempts and the lease history of each.
    let id = &listed_ids(&failed)[0];
    let shown = dir.ffwasm(&["show", id]).status(0).stdout();
    assert!(shown.contains(&format!("execution     {id}")), "{shown}");
    assert!(shown.contains("state         failed"), "{shown}");
    assert!(shown.contains("attempts      2 (current: #1)"), "{shown}");
    let attempts = shown.split("\nAttempts\n").nth(1).unwrap();
    assert!(
        attempts
            .lines()
            .any(|line| line.starts_with("0  initial") && line.contains(" retry ")),
        "{shown}"
    );
    assert!(
        attempts
            .lines()
            .any(|line| line.starts_with("1  retry") && line.contains(" failed ")),
        "{shown}"
    );
    let frames = shown
        .split("\nStream frames\n")
        .nth(1)
        .unwrap()
        .split("\nLease history\n")
        .next()
        .unwrap();
    assert!(
        frames.contains("attempt 0 running on demo-worker-")
            && frames.contains("attempt 1 running on demo-worker-"),
        "every attempt appended a progress frame: {shown}"
    );
    let history = shown.split("\nLease history\n").nth(1).unwrap();
    assert_eq!(history.matches(" acquired ").count(), 2, "{shown}");
    assert_eq!(history.matches(" renewed ").count(), 2, "{shown}");
    // The bare UUID finds it too.
    let uuid = id.split_once("}:").unwrap().1;
    assert!(
        dir.ffwasm(&["show", uuid])
            .status(0)
            .stdout()
            .contains(id.as_str())
    );
    dir.ffwasm(&["show", "53ad96d2-6b08-4d0c-86e3-36598db2291c"])
        .fails_with("no execution or flow 53ad96d2");

    // The flows: one per run, each with its members by state; `show` prints one's members,
    // edges and edge groups, and a member's own edges.
    let flows = dir.ffwasm(&["flows"]).status(0).stdout();
    let rows: Vec<&str> = flows
        .lines()
        .filter(|line| line.contains(" demo.dag "))
        .collect();
    assert_eq!(rows.len(), 2, "{flows}");
    assert!(
        rows.iter()
            .all(|row| row.contains("4 completed, 2 skipped, 1 failed")
                && row.split_whitespace().nth(3) == Some("7")
                && row.split_whitespace().nth(4) == Some("7")),
        "{flows}"
    );
    let flow_id = rows[0].split_whitespace().next().unwrap();
    let shown_flow = dir.ffwasm(&["show", flow_id]).status(0).stdout();
    assert!(
        shown_flow.contains(&format!("flow            {flow_id}")),
        "{shown_flow}"
    );
    let members = shown_flow.split("\nMembers\n").nth(1).unwrap();
    assert_eq!(members.matches(" demo.dag.").count(), 7, "{shown_flow}");
    let edges = shown_flow.split("\nEdges\n").nth(1).unwrap();
    assert_eq!(edges.matches(" satisfied ").count(), 5, "{shown_flow}");
    assert_eq!(edges.matches(" impossible ").count(), 2, "{shown_flow}");
    let skipped = members
        .lines()
        .find(|line| line.contains(" skipped "))
        .and_then(|line| line.split_whitespace().next())
        .unwrap();
    let shown_member = dir.ffwasm(&["show", skipped]).status(0).stdout();
    assert!(
        shown_member.contains(&format!("\nFlow {flow_id} "))
            && shown_member.contains(" impossible "),
        "{shown_member}"
    );

    // A suspension as the backend stores one (rows written here: the demo does not suspend).
    assert!(shown.contains("\nSuspension\n(none)\n"), "{shown}");
    let completed = &listed_ids(&email)[0];
    let blob = uuid::Uuid::parse_str(completed.split_once("}:").unwrap().1).unwrap();
    let db = rusqlite::Connection::open(dir.path("ffwasm-demo.sqlite")).unwrap();
    db.execute(
        "INSERT INTO ff_suspension_current (partition_key, execution_id, suspension_id, \
             suspended_at_ms, reason_code, condition, member_map, timeout_behavior) \
         SELECT partition_key, execution_id, x'cccccccccccc4ccc8ccccccccccccccc', 1700000000000, \
             'waiting_for_approval', '\"OperatorOnly\"', \
             '{\"wpk:a\":[{\"signal_id\":\"dddddddd-dddd-4ddd-8ddd-dddddddddddd\",\"signal_name\":\"approved\",\"source_type\":\"operator\",\"source_identity\":\"ops\",\"accepted_at\":1700000001000}]}', \
             'fail' \
         FROM ff_exec_core WHERE execution_id = ?1",
        [blob.as_bytes().as_slice()],
    )
    .unwrap();
    db.execute(
        "INSERT INTO ff_waitpoint_pending (partition_key, waitpoint_id, execution_id, token_kid, token, \
             created_at_ms, waitpoint_key, state, required_signal_names) \
         SELECT partition_key, x'aaaaaaaaaaaa4aaa8aaaaaaaaaaaaaaa', execution_id, 'kid-1', 'kid-1:secretdigest', \
             1700000000000, 'wpk:a', 'active', '[\"approved\"]' \
         FROM ff_exec_core WHERE execution_id = ?1",
        [blob.as_bytes().as_slice()],
    )
    .unwrap();
    drop(db);
    let shown = dir.ffwasm(&["show", completed]).status(0).stdout();
    let suspension = shown.split("\nSuspension\n").nth(1).unwrap();
    assert!(
        suspension.contains("cccccccc-cccc-4ccc-8ccc-cccccccccccc")
            && suspension.contains("waiting_for_approval"),
        "{shown}"
    );
    let waitpoints = shown.split("\nWaitpoints\n").nth(1).unwrap();
    assert!(
        waitpoints.contains("aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa")
            && waitpoints.contains(" wpk:a ")
            && waitpoints.contains(" active "),
        "{shown}"
    );
    assert!(
        !shown.contains("secretdigest"),
        "tokens are not shown: {shown}"
    );
    let signals = shown.split("\nSignals\n").nth(1).unwrap();
    assert!(
        signals.contains(" approved ") && signals.contains("operator:ops"),
        "{shown}"
    );

    // `watch` replays the outboxes from the start: the first run's 30 terminal failures come
    // first, in commit order, one line each.
    let watched = dir
        .ffwasm(&["watch", "completions", "--from-start", "--count", "30"])
        .status(0)
        .stdout();
    let lines: Vec<&str> = watched.lines().collect();
    assert_eq!(lines.len(), 30, "{watched}");
    assert!(
        lines
            .iter()
            .all(|line| line.ends_with("completed: Failure")),
        "{watched}"
    );
    let leases = dir
        .ffwasm(&["watch", "leases", "--from-start", "--count", "2"])
        .status(0)
        .stdout();
    assert_eq!(
        leases.matches("lease acquired").count() + leases.matches("lease renewed").count(),
        2,
        "{leases}"
    );
}

/// The demo's approval jobs: suspended until the signaller approves them, resumed and
/// completed; `watch signals` replays the deliveries, `show` prints a job's stream and the
/// deliveries it received (which outlive its suspension).
#[test]
fn the_demo_approval_jobs_suspend_until_signalled_and_show_and_watch_report_them() {
    let dir = Scratch::new("approvals");
    let run = dir.ffwasm(&["demo", "-n", "4", "-w", "2", "--approvals", "3"]);
    let stdout = run.status(0).stdout();
    assert!(
        stdout.contains("Approval jobs (lane approvals)")
            && stdout.contains("suspended  3 on a waitpoint")
            && stdout.contains("signalled  3 by the signaller; 3 reported satisfied")
            && stdout.contains("resumed    3 on the same attempt, then completed"),
        "{stdout}"
    );
    let jobs = dir
        .ffwasm(&["executions", "--lane", "approvals", "--state", "completed"])
        .status(0)
        .stdout();
    let ids = listed_ids(&jobs);
    assert_eq!(ids.len(), 3, "{jobs}");
    let watched = dir
        .ffwasm(&["watch", "signals", "--from-start", "--count", "3"])
        .status(0)
        .stdout();
    let lines: Vec<&str> = watched.lines().collect();
    assert_eq!(lines.len(), 3, "{watched}");
    assert!(
        lines
            .iter()
            .all(|line| line.ends_with("satisfied its waitpoint")),
        "{watched}"
    );
    assert!(
        ids.iter().all(|id| watched.contains(id.as_str())),
        "{watched}"
    );
    let shown = dir.ffwasm(&["show", &ids[0]]).status(0).stdout();
    let frames = shown
        .split("\nStream frames\n")
        .nth(1)
        .unwrap()
        .split("\nLease history\n")
        .next()
        .unwrap();
    assert!(
        frames.contains("waiting for approval") && frames.contains("resumed by 1 signal(s)"),
        "{shown}"
    );
    let deliveries = shown.split("\nSignal deliveries\n").nth(1).unwrap();
    assert!(
        deliveries.contains("demo-signaller") && deliveries.contains("resume_condition_satisfied"),
        "{shown}"
    );
}

#[test]
fn a_precompiled_guest_runs_the_demo_and_logs_follow_rust_log() {
    let dir = Scratch::new("precompiled");
    let artifact = dir.path("guest.cwasm");
    let builtin = dir.builtin_guest();
    let compiled = dir.ffwasm(&[
        "guest",
        "compile",
        &builtin,
        "-o",
        artifact.to_str().unwrap(),
    ]);
    assert!(compiled.status(0).stdout().contains("--guest-precompiled"));
    assert!(artifact.is_file());

    let run = dir.ffwasm_with(
        &[
            "demo",
            "-n",
            "10",
            "-w",
            "2",
            "--lanes",
            "2",
            "--db",
            "other.sqlite",
            "--guest-precompiled",
            "guest.cwasm",
        ],
        &[("RUST_LOG", "info"), ("FF_DEV_MODE", "0")],
    );
    let stdout = run.status(0).stdout();
    assert!(stdout.contains("guest.cwasm (precompiled)"), "{stdout}");
    assert_eq!(summary_totals(&stdout)[0], 10, "{stdout}");
    assert!(
        stdout.contains("ffwasm stats --db other.sqlite"),
        "{stdout}"
    );
    assert!(
        run.stderr().contains("opened SQLite database"),
        "RUST_LOG=info shows the backend's logs: {}",
        run.stderr()
    );
    assert!(
        !dir.path("ffwasm-demo.sqlite").exists(),
        "--db chose the file"
    );
}

#[test]
fn invalid_arguments_exit_with_status_2_and_a_usage_message() {
    let dir = Scratch::new("arguments");
    for args in [
        &[][..],
        &["frobnicate"],
        &["demo", "--executions", "0"],
        &["demo", "--failure-rate", "1.5"],
        &["demo", "--workers", "many"],
        &[
            "demo",
            "--guest",
            "a.wasm",
            "--guest-precompiled",
            "b.cwasm",
        ],
        &["demo", "--no-such-flag"],
        &["executions", "--state", "finished"],
        &["show"],
        &["show", "not-an-id"],
        &["guest", "compile", "a.wasm"],
    ] {
        let run = dir.ffwasm(args);
        run.status(2);
        let stderr = run.stderr();
        assert!(
            stderr.contains("Usage: ffwasm")
                || stderr.contains("For more information, try '--help'"),
            "{args:?}: {stderr}"
        );
    }
    assert!(
        !dir.path("ffwasm-demo.sqlite").exists(),
        "nothing was created"
    );
}

#[test]
fn every_command_has_help() {
    let dir = Scratch::new("help");
    for command in [
        &[][..],
        &["demo"],
        &["executions"],
        &["show"],
        &["stats"],
        &["workers"],
        &["flows"],
        &["watch"],
        &["guest"],
        &["guest", "wit"],
        &["guest", "check"],
        &["guest", "compile"],
    ] {
        let mut args = command.to_vec();
        args.push("--help");
        let help = dir.ffwasm(&args).status(0).stdout();
        assert!(help.contains("Usage: ffwasm"), "{args:?}: {help}");
        assert!(
            help.contains("FF_DEV_MODE=1"),
            "{args:?} says ffwasm sets FF_DEV_MODE: {help}"
        );
    }
    let demo = dir.ffwasm(&["demo", "--help"]).stdout();
    for flag in [
        "--executions",
        "--workers",
        "--failure-rate",
        "--db",
        "--guest",
        "--guest-precompiled",
    ] {
        assert!(demo.contains(flag), "{flag}: {demo}");
    }
    assert!(
        demo.contains("reuses it"),
        "running twice is documented: {demo}"
    );
}

#[test]
fn a_file_that_is_not_a_flowfabric_database_is_refused_and_left_unchanged() {
    let dir = Scratch::new("damaged");
    let mut damaged = b"SQLite format 3\0".to_vec();
    damaged.extend(std::iter::repeat_n(0xA5, 8192));
    let foreign = dir.path("foreign.sqlite");
    rusqlite::Connection::open(&foreign)
        .unwrap()
        .execute_batch("CREATE TABLE notes (body TEXT);")
        .unwrap();
    let newer = dir.path("newer.sqlite");
    rusqlite::Connection::open(&newer)
        .unwrap()
        .execute_batch("CREATE TABLE ff_exec_core (x); PRAGMA user_version = 999;")
        .unwrap();
    std::fs::write(dir.path("text.sqlite"), b"not a database at all\n").unwrap();
    std::fs::write(dir.path("damaged.sqlite"), &damaged).unwrap();

    for (file, message) in [
        (
            "text.sqlite",
            "text.sqlite is not a SQLite database; it was left untouched",
        ),
        (
            "damaged.sqlite",
            "damaged.sqlite is a damaged SQLite database",
        ),
        (
            "foreign.sqlite",
            "foreign.sqlite is a SQLite database but not a FlowFabric one (its tables: notes)",
        ),
        (
            "newer.sqlite",
            "newer.sqlite has FlowFabric schema version 999",
        ),
    ] {
        let before = std::fs::read(dir.path(file)).unwrap();
        dir.ffwasm(&["demo", "-n", "3", "--db", file])
            .fails_with(message);
        for command in [
            &["stats"][..],
            &["executions"],
            &["flows"],
            &["show", "53ad96d2-6b08-4d0c-86e3-36598db2291c"],
        ] {
            let mut args = command.to_vec();
            args.extend(["--db", file]);
            dir.ffwasm(&args).fails_with(message);
        }
        assert_eq!(
            std::fs::read(dir.path(file)).unwrap(),
            before,
            "{file} is byte-for-byte unchanged"
        );
    }
}

/// `executions --partition/--after` pages in id order with the next page's `--after`; `replay`
/// lifts a finished execution back to waiting; `priority` changes a waiting one's priority and
/// refuses a finished one.
#[test]
fn executions_page_by_partition_and_replay_and_priority_change_an_execution() {
    let dir = Scratch::new("operator");
    dir.ffwasm(&[
        "demo",
        "-n",
        "12",
        "-w",
        "1",
        "--failure-rate",
        "0",
        "--lanes",
        "1",
    ])
    .status(0);
    // The partition holding the most executions (the demo spreads them over a few).
    let all = listed_ids(
        &dir.ffwasm(&["executions", "--limit", "0"])
            .status(0)
            .stdout(),
    );
    let partition_of = |id: &str| id[4..id.find('}').unwrap()].to_owned();
    let partition = all
        .iter()
        .map(|id| partition_of(id))
        .max_by_key(|p| all.iter().filter(|id| &partition_of(id) == p).count())
        .unwrap();
    let mut expected: Vec<String> = all
        .iter()
        .filter(|id| partition_of(id) == partition)
        .cloned()
        .collect();
    expected.sort();
    assert!(expected.len() >= 2, "{all:?}");
    let first_size = (expected.len() - 1).to_string();
    let first = dir
        .ffwasm(&[
            "executions",
            "--partition",
            &partition,
            "--limit",
            &first_size,
        ])
        .status(0)
        .stdout();
    let page = listed_ids(&first);
    assert_eq!(page, expected[..expected.len() - 1], "id order: {first}");
    let next = first
        .lines()
        .find_map(|line| line.strip_prefix("next page: --after "))
        .unwrap_or_else(|| panic!("no next page in:\n{first}"))
        .to_owned();
    assert_eq!(&next, page.last().unwrap());
    let second = dir
        .ffwasm(&["executions", "--after", &next, "--limit", &first_size])
        .status(0)
        .stdout();
    assert_eq!(
        listed_ids(&second),
        expected[expected.len() - 1..],
        "{second}"
    );
    assert!(!second.contains("next page"), "{second}");

    // A fleet execution (the demo's flow members and approval jobs end in other ways).
    let completed = listed_ids(
        &dir.ffwasm(&["executions", "--lane", "email", "--state", "completed"])
            .status(0)
            .stdout(),
    );
    let id = completed
        .first()
        .unwrap_or_else(|| panic!("no completed email execution"));
    dir.ffwasm(&["priority", id, "7"])
        .fails_with(&format!("cannot change the priority of {id}"));
    dir.ffwasm(&["priority", id, "7"])
        .fails_with("ExecutionNotEligible");
    let replayed = dir.ffwasm(&["replay", id]).status(0).stdout();
    assert_eq!(replayed.trim(), format!("{id}: replayed, now waiting"));
    let changed = dir.ffwasm(&["priority", id, "12000"]).status(0).stdout();
    assert_eq!(changed.trim(), format!("{id}: priority 9000"));
    dir.ffwasm(&["replay", id])
        .fails_with("ExecutionNotTerminal");
    dir.ffwasm(&["replay", "not-an-id"]).status(2);
}

#[test]
fn inspection_commands_report_a_missing_database_without_creating_it() {
    let dir = Scratch::new("missing");
    for command in [
        &["stats"][..],
        &["executions"],
        &["workers"],
        &["flows"],
        &["show", "53ad96d2-6b08-4d0c-86e3-36598db2291c"],
        &["replay", "{fp:0}:53ad96d2-6b08-4d0c-86e3-36598db2291c"],
        &[
            "priority",
            "{fp:0}:53ad96d2-6b08-4d0c-86e3-36598db2291c",
            "5",
        ],
    ] {
        dir.ffwasm(command)
            .fails_with("no database at ffwasm-demo.sqlite (run `ffwasm demo`");
    }
    assert_eq!(
        std::fs::read_dir(&dir.0).unwrap().count(),
        0,
        "nothing was created"
    );
    dir.ffwasm(&["demo", "--db", "no-such-directory/x.sqlite"])
        .fails_with("the directory");
}

#[test]
fn guest_compose_names_what_is_missing_and_writes_nothing() {
    let dir = Scratch::new("compose");
    std::fs::create_dir_all(dir.path("parts")).unwrap();
    dir.ffwasm(&[
        "guest",
        "compose",
        "--standalone-dir",
        "parts",
        "-o",
        "engine.wasm",
    ])
    .fails_with("build it with scripts/build-standalone.sh");
    // A provider that exports nothing leaves the guest's `sql` import unsatisfied.
    std::fs::write(dir.path("parts/ff_sqlite_provider.wasm"), EMPTY_COMPONENT).unwrap();
    dir.ffwasm(&[
        "guest",
        "compose",
        "--standalone-dir",
        "parts",
        "-o",
        "engine.wasm",
    ])
    .fails_with(
        "the guest imports `flowfabric:backend/sql@0.1.0`, which none of the components exports",
    );
    std::fs::write(dir.path("core.wasm"), CORE_MODULE).unwrap();
    dir.ffwasm(&[
        "guest",
        "compose",
        "--guest",
        "core.wasm",
        "--standalone-dir",
        "parts",
        "-o",
        "engine.wasm",
    ])
    .fails_with("the guest is not a component");
    assert!(!dir.path("engine.wasm").exists());
}

#[test]
fn guest_commands_print_check_and_compile() {
    let dir = Scratch::new("guest");
    let wit = dir.ffwasm(&["guest", "wit"]).status(0).stdout();
    for &(name, text) in ff_backend_sqlite_wasm::GUEST_WIT {
        assert!(
            wit.contains(&format!("// file: {name}\n{text}")),
            "{name} is printed"
        );
    }
    assert!(wit.contains("world engine-backend"));
    let written = dir
        .ffwasm(&["guest", "wit", "--out-dir", "wit"])
        .status(0)
        .stdout();
    assert!(
        written.starts_with(&format!(
            "wrote {} WIT files",
            ff_backend_sqlite_wasm::GUEST_WIT.len()
        )),
        "{written}"
    );
    let names: Vec<&str> = ff_backend_sqlite_wasm::GUEST_WIT
        .iter()
        .map(|(name, _)| *name)
        .collect();
    for name in [
        "world.wit",
        "types.wit",
        "sql.wit",
        "scheduling.wit",
        "reads.wit",
    ] {
        assert!(
            names.contains(&name),
            "{name} is part of the package: {names:?}"
        );
    }
    for &(name, text) in ff_backend_sqlite_wasm::GUEST_WIT {
        assert_eq!(
            std::fs::read_to_string(dir.path("wit").join(name)).unwrap(),
            text
        );
    }
    std::fs::write(dir.path("wit").join("world.wit"), "changed").unwrap();
    dir.ffwasm(&["guest", "wit", "--out-dir", "wit"])
        .fails_with("exists with other contents");
    assert_eq!(
        std::fs::read_to_string(dir.path("wit").join("world.wit")).unwrap(),
        "changed",
        "an existing file is not overwritten"
    );

    let builtin = dir.builtin_guest();
    let ok = dir.ffwasm(&["guest", "check", &builtin]).status(0).stdout();
    assert!(
        ok.starts_with("ok: ") && ok.contains("fits the engine-backend world"),
        "{ok}"
    );

    std::fs::write(dir.path("core.wasm"), CORE_MODULE).unwrap();
    dir.ffwasm(&["guest", "check", "core.wasm"])
        .fails_with("not a valid WebAssembly component");

    std::fs::write(dir.path("empty.wasm"), EMPTY_COMPONENT).unwrap();
    let mismatch = dir.ffwasm(&["guest", "check", "empty.wasm"]);
    let families = [
        "scheduling",
        "lease-holder",
        "recovery",
        "reads",
        "budgets",
        "routing",
        "workers",
        "tags",
        "operator",
        "flows",
        "suspension",
    ];
    for family in families {
        assert!(
            mismatch.stdout().contains(&format!(
                "  - does not export `flowfabric:backend/{family}@0.1.0`"
            )),
            "every mismatch is listed: {}",
            mismatch.stdout()
        );
    }
    mismatch.fails_with("empty.wasm does not fit the engine-backend world (12 problems)");

    dir.ffwasm(&["guest", "compile", "empty.wasm", "-o", "empty.cwasm"])
        .fails_with("cannot precompile empty.wasm");
    assert!(
        !dir.path("empty.cwasm").exists(),
        "no artifact for a component that does not fit"
    );
    dir.ffwasm(&["guest", "check", "missing.wasm"])
        .fails_with("cannot read missing.wasm");
    dir.ffwasm(&["demo", "--guest", "empty.wasm"])
        .fails_with("does not export `flowfabric:backend/scheduling@0.1.0`");
    assert!(
        !dir.path("ffwasm-demo.sqlite").exists(),
        "a guest that does not load creates no database"
    );
}
