//! Several processes on one database file, each with its own backend (`ff-test-worker`,
//! `tests/worker/main.rs`): two workers draining one lane together, and a worker killed with
//! SIGKILL at random moments, the database checked after every kill.
//!
//! Each test runs alone in the test process (`#[serial(process)]`): the workers' timing is
//! asserted (no operation waits a second for the lock, both workers progress, most kills land
//! while the worker works), and other tests' load on the same cores would distort it.

use crate::support::*;
use ff_backend_sqlite_wasm::SqliteBackend;
use ff_core::engine_backend::EngineBackend;
use rusqlite::{Connection, OpenFlags};
use serial_test::serial;
use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The worker program, built by Cargo with this package.
const WORKER: &str = env!("CARGO_BIN_EXE_ff-test-worker");

/// How long a worker may take to compile its guest (debug builds on a busy machine are slow).
const STARTUP: Duration = Duration::from_secs(120);

// ── Two processes, one lane ─────────────────────────────────────────────────────────────────

#[test]
#[serial(process)]
fn two_processes_share_one_file_database() {
    // Each worker "works" 1 ms after its claims and renewals, as real workers do; see the next
    // test for workers that do not.
    drain_together("two processes", 200, 1, None);
}

/// The scenario with workers that never pause between transactions: each process
/// commits back to back. With SQLite's own busy timeout (sleeps backing off to 100 ms) the waiting
/// process almost never hits the microseconds between the other's transactions: it starved
/// (no progress at all, single operations waiting seconds, or `SQLITE_BUSY` as a `Transport`
/// error after the 5 s timeout, depending on the machine's load; here single operations waited
/// 2.2 s even on a busy machine). The host now polls for the lock every millisecond (slowest
/// operation about 0.1 s), so no operation may wait a second.
#[test]
#[serial(process)]
fn two_processes_without_pauses_both_progress_and_never_wait_long() {
    drain_together(
        "two processes without pauses",
        600,
        0,
        Some(Duration::from_secs(1)),
    );
}

/// Create `executions` on one lane of a fresh file database, drop the parent's backend, start
/// two `drain` workers together (each "working" `work_ms` after its claims and renewals), and
/// check: both exit cleanly and made progress, every execution was completed exactly once, and
/// each is `completed` with exactly one attempt row at lease epoch 1; with `max_wait`, also that
/// no single operation took that long (waiting for the write lock included).
fn drain_together(label: &str, executions: usize, work_ms: u64, max_wait: Option<Duration>) {
    let started = Instant::now();
    let dir = ScratchDir::new("two-processes");
    let database = dir.file("shared.sqlite");
    let created = runtime().block_on(async {
        dev_mode();
        let backend = SqliteBackend::new(&database).await.expect("construct");
        let now = now_ms();
        let mut created = BTreeSet::new();
        for _ in 0..executions {
            let eid = new_execution_id();
            backend
                .create_execution(create_args(eid.clone(), "shared", now))
                .await
                .expect("create");
            created.insert(eid.to_string());
        }
        created
        // The backend is dropped here: the workers are the only processes left on the file.
    });

    let work = work_ms.to_string();
    let mut workers = ["worker-a", "worker-b"]
        .map(|name| Worker::spawn(&database, "drain", "shared", name, &[&work]));
    for worker in &mut workers {
        worker.wait_for("warm", STARTUP);
    }
    // Both have compiled their guest: start them together.
    let working = Instant::now();
    for worker in &mut workers {
        worker.start();
    }
    let reports = workers.map(|mut worker| (worker.name.clone(), worker.finish(STARTUP)));
    let work_time = working.elapsed();

    let counts: Vec<_> = reports
        .iter()
        .map(|(name, lines)| (name.as_str(), reported(lines, "completed").len()))
        .collect();
    let slowest: Vec<_> = reports
        .iter()
        .map(|(name, lines)| (name.as_str(), reported(lines, "slowest").concat()))
        .collect();
    println!(
        "{label}: {executions} executions drained in {work_time:.1?}; completed {counts:?}; \
         slowest operation (name, ms) {slowest:?}"
    );
    if let Some(max_wait) = max_wait {
        for (name, lines) in &reports {
            let ms: u128 = reported(lines, "slowest")
                .concat()
                .rsplit(' ')
                .next()
                .and_then(|ms| ms.parse().ok())
                .expect("a `slowest <op> <ms>` line");
            assert!(
                ms < max_wait.as_millis(),
                "{name} waited {ms} ms for one operation (the other process held the write lock)"
            );
        }
    }
    let mut seen = BTreeSet::new();
    for (name, lines) in &reports {
        let completed = reported(lines, "completed");
        assert!(
            !completed.is_empty(),
            "{name} made no progress; completions: {counts:?}"
        );
        for id in completed {
            assert!(seen.insert(id.clone()), "{id} was completed twice");
        }
    }
    assert_eq!(seen, created, "every execution is completed exactly once");

    let conn = Connection::open(&database).expect("open the file");
    for id in &created {
        let key = key_of(id);
        let state: String = conn
            .query_row(
                "SELECT lifecycle_phase || '|' || public_state FROM ff_exec_core \
                 WHERE execution_id = ?1",
                [&key],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(state, "terminal|completed", "{id}");
        let attempts: Vec<(i64, i64)> = conn
            .prepare("SELECT attempt_index, lease_epoch FROM ff_attempt WHERE execution_id = ?1")
            .unwrap()
            .query_map([&key], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(attempts, [(0, 1)], "{id}: one attempt at lease epoch 1");
    }
    drop(conn);
    println!("{label}: test {:.1?}", started.elapsed());
}

// ── A subscription sees another process's commits ───────────────────────────────────────────

/// A completion subscription in this process, opened "from now", sees every completion a
/// `drain` worker process commits on the same file, exactly once and in the worker's commit
/// order, although nothing is committed in this process (so only the change watcher's poll of
/// the outbox heads, every 100 ms, can reveal them).
#[test]
#[serial(process)]
fn a_subscription_sees_completions_committed_by_another_process() {
    use ff_core::backend::ScannerFilter;
    use ff_core::stream_subscribe::StreamCursor;
    use tokio_stream::StreamExt;

    let dir = ScratchDir::new("cross-process-subscription");
    let database = dir.file("shared.sqlite");
    let runtime = runtime();
    let (backend, mut events) = runtime.block_on(async {
        dev_mode();
        let backend = SqliteBackend::new(&database).await.expect("construct");
        let now = now_ms();
        for _ in 0..20 {
            backend
                .create_execution(create_args(new_execution_id(), "shared", now))
                .await
                .expect("create");
        }
        let events = backend
            .subscribe_completion(StreamCursor::empty(), &ScannerFilter::default())
            .await
            .expect("subscribe");
        (backend, events)
    });
    // Let the subscription catch up and park: it then waits on the outbox heads, which only the
    // watcher's poll can move (this process commits nothing more).
    runtime.block_on(async { tokio::time::sleep(Duration::from_millis(300)).await });
    let mut worker = Worker::spawn(&database, "drain", "shared", "worker-a", &["0"]);
    worker.wait_for("warm", STARTUP);
    worker.start();
    let completed = reported(&worker.finish(STARTUP), "completed");
    assert_eq!(completed.len(), 20, "the worker drained the lane");
    runtime.block_on(async {
        for expected in &completed {
            let event = tokio::time::timeout(STARTUP, events.next())
                .await
                .expect("the other process's completion arrives")
                .expect("the stream is open")
                .expect("an event");
            assert_eq!(event.execution_id.to_string(), *expected);
        }
    });
    drop(events);
    drop(backend);
}

/// A signal-delivery subscription in this process, opened "from now", sees every signal a
/// `signal` worker process delivers on the same file, exactly once and in the worker's commit
/// order, with nothing committed here meanwhile (so only the watcher's poll reveals them).
#[test]
#[serial(process)]
fn a_signal_subscription_sees_signals_delivered_by_another_process() {
    use ff_core::backend::ScannerFilter;
    use ff_core::contracts::SeedWaitpointHmacSecretArgs;
    use ff_core::stream_subscribe::StreamCursor;
    use tokio_stream::StreamExt;

    let dir = ScratchDir::new("cross-process-signals");
    let database = dir.file("shared.sqlite");
    let runtime = runtime();
    let (backend, mut events) = runtime.block_on(async {
        dev_mode();
        let backend = SqliteBackend::new(&database).await.expect("construct");
        backend
            .seed_waitpoint_hmac_secret(SeedWaitpointHmacSecretArgs::new(
                "kid-cross",
                "cafebabe".repeat(8),
            ))
            .await
            .expect("seed the keystore");
        let now = now_ms();
        for _ in 0..10 {
            backend
                .create_execution(create_args(new_execution_id(), "signals", now))
                .await
                .expect("create");
        }
        let events = backend
            .subscribe_signal_delivery(StreamCursor::empty(), &ScannerFilter::default())
            .await
            .expect("subscribe");
        (backend, events)
    });
    runtime.block_on(async { tokio::time::sleep(Duration::from_millis(300)).await });
    let mut worker = Worker::spawn(&database, "signal", "signals", "signaller", &[]);
    worker.wait_for("warm", STARTUP);
    worker.start();
    let signalled = reported(&worker.finish(STARTUP), "signalled");
    assert_eq!(signalled.len(), 10, "the worker signalled every execution");
    runtime.block_on(async {
        for expected in &signalled {
            let event = tokio::time::timeout(STARTUP, events.next())
                .await
                .expect("the other process's signal arrives")
                .expect("the stream is open")
                .expect("an event");
            assert_eq!(event.signal_id.to_string(), *expected);
        }
    });
    drop(events);
    drop(backend);
}

/// A `tail_stream` parked in this process returns the frame another process appends to its
/// stream (seen by the watcher's poll; nothing is committed here meanwhile).
#[test]
#[serial(process)]
fn a_parked_tail_sees_a_frame_appended_by_another_process() {
    use ff_core::backend::TailVisibility;
    use ff_core::contracts::StreamCursor;
    use ff_core::types::{AttemptIndex, ExecutionId};

    let dir = ScratchDir::new("cross-process-tail");
    let database = dir.file("shared.sqlite");
    let runtime = runtime();
    let backend = runtime.block_on(async {
        dev_mode();
        let backend = SqliteBackend::new(&database).await.expect("construct");
        backend
            .create_execution(create_args(new_execution_id(), "tail", now_ms()))
            .await
            .expect("create");
        backend
    });
    let mut worker = Worker::spawn(&database, "append", "tail", "appender", &[]);
    worker.wait_for("warm", STARTUP);
    worker.send("go");
    worker.wait_for("ready", STARTUP);
    let claimed = worker.next_line(STARTUP);
    let id = claimed
        .strip_prefix("claimed ")
        .unwrap_or_else(|| worker.fail(&format!("expected `claimed <id>`, got `{claimed}`")));
    let execution = ExecutionId::parse(id).expect("an execution id");
    let frames = runtime.block_on(async {
        let tail_backend = backend.clone();
        let tail = tokio::spawn(async move {
            tail_backend
                .tail_stream(
                    &execution,
                    AttemptIndex::new(0),
                    StreamCursor::At("0-0".into()),
                    3_600_000,
                    10,
                    TailVisibility::All,
                )
                .await
        });
        // The tail read its first (empty) page; it is parked or about to be.
        while backend.tail_pages_for_test() == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        worker.send("append");
        tokio::time::timeout(STARTUP, tail)
            .await
            .expect("the tail returns the other process's frame")
            .expect("the tail task")
            .expect("tail_stream")
    });
    let appended = reported(&worker.finish(STARTUP), "appended");
    assert_eq!(frames.frames.len(), 1);
    assert_eq!(frames.frames[0].id, appended[0]);
    assert_eq!(
        frames.frames[0].fields.get("payload").map(String::as_str),
        Some("from another process")
    );
    drop(backend);
}

// ── SIGKILL at random moments ───────────────────────────────────────────────────────────────

/// Kills (and database checks).
const KILLS: u64 = 30;
/// Workers compiling their guest while an earlier one works (compilation dominates a round).
const WARM_AHEAD: usize = 2;

#[test]
#[serial(process)]
fn sigkill_at_random_moments_keeps_the_database_consistent() {
    let started = Instant::now();
    let dir = ScratchDir::new("sigkill");
    let database = dir.file("crash.sqlite");
    let spawn = |n: u64| Worker::spawn(&database, "crash", "crash", &format!("crasher-{n}"), &[]);
    let mut warming: VecDeque<Worker> = (0..WARM_AHEAD as u64).map(spawn).collect();
    let mut history = History::default();
    let mut worked = 0;
    let mut on_wal = 0;

    for round in 0..KILLS {
        let mut worker = warming.pop_front().expect("a warm worker");
        worker.wait_for("warm", STARTUP);
        let spare = round + WARM_AHEAD as u64;
        if spare < KILLS {
            warming.push_back(spawn(spare));
        }
        let seed = 0x5eed_0000_u64 + round;
        let delay = 20 + splitmix64(seed) % 281;
        // The WAL file the killed predecessor left (the checks open the file read-only, so they
        // neither checkpoint nor remove it): the worker recovers it when it opens the database.
        let wal = std::fs::metadata(format!("{database}-wal")).map_or(0, |wal| wal.len());
        on_wal += usize::from(wal > 0);
        // The delay runs from the start signal: the worker opens the file, prints `ready` and
        // works until the kill.
        worker.start();
        std::thread::sleep(Duration::from_millis(delay));
        let lines = worker.kill();
        let ready = lines.iter().any(|line| line == "ready");
        worked += usize::from(ready);
        println!(
            "round {round}: seed {seed:#x}, started on a {wal}-byte WAL file, SIGKILL after {delay} ms, \
             {} reports{}",
            lines.len(),
            if ready { "" } else { " (killed while opening)" }
        );
        history.record(&lines);
        history
            .check(&database)
            .unwrap_or_else(|problem| panic!("after kill {round} (seed {seed:#x}): {problem}"));
    }
    assert!(
        worked * 2 >= KILLS as usize,
        "most kills must land while the worker works, not while it opens ({worked}/{KILLS})"
    );
    assert!(
        on_wal * 2 >= KILLS as usize,
        "most workers must start on a WAL file left by a kill ({on_wal}/{KILLS})"
    );
    println!(
        "{KILLS} kills ({worked} while working, {on_wal} workers started on a WAL file): {} executions, {} granted, {} claimed, {} \
         reclaimed, {} completed, highest epoch {}; test {:.1?}",
        history.executions.len(),
        history.granted.len(),
        history.claimed.len(),
        history.reclaimed,
        history.completed.len(),
        history.epochs.values().max().copied().unwrap_or(0),
        started.elapsed()
    );
}

/// What the killed workers reported and what the database held at earlier checks.
#[derive(Default)]
struct History {
    granted: BTreeSet<String>,
    claimed: BTreeSet<String>,
    completed: BTreeSet<String>,
    reclaimed: usize,
    /// Every execution seen so far (hex UUID).
    executions: BTreeSet<String>,
    /// The lease epoch seen per (execution hex UUID, attempt index).
    epochs: BTreeMap<(String, i64), i64>,
}

impl History {
    /// Remember a killed worker's reports (each was printed after its transaction committed).
    fn record(&mut self, lines: &[String]) {
        for line in lines {
            match line.split_once(' ') {
                Some(("granted", id)) => _ = self.granted.insert(id.to_owned()),
                Some(("claimed", id)) => _ = self.claimed.insert(id.to_owned()),
                Some(("reclaimed", id)) => {
                    self.claimed.insert(id.to_owned());
                    self.reclaimed += 1;
                }
                Some(("completed", id)) => _ = self.completed.insert(id.to_owned()),
                _ => {}
            }
        }
    }

    /// Open the file as the next process would (read-only, so that the WAL stays for the next
    /// worker to replay) and check integrity and the invariants.
    fn check(&mut self, database: &str) -> Result<(), String> {
        let nothing_acknowledged = self.granted.is_empty() && self.executions.is_empty();
        if !std::path::Path::new(database).exists() && nothing_acknowledged {
            // Every worker so far was killed before it created the file.
            return Ok(());
        }
        let conn = Connection::open_with_flags(database, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|error| format!("open read-only: {error}"))?;
        let integrity: Vec<String> = strings(&conn, "PRAGMA integrity_check");
        if integrity != ["ok"] {
            return Err(format!("integrity_check: {integrity:?}"));
        }
        let schema_tables = strings(
            &conn,
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'ff_exec_core'",
        );
        if schema_tables.is_empty() {
            // Killed while opening, before the migrations committed: nothing may be missing.
            return if nothing_acknowledged {
                Ok(())
            } else {
                Err("the schema is missing although operations were acknowledged".into())
            };
        }

        let leased_without_attempt = strings(
            &conn,
            "SELECT lower(hex(e.execution_id)) FROM ff_exec_core AS e \
             LEFT JOIN ff_attempt AS a ON a.partition_key = e.partition_key \
                 AND a.execution_id = e.execution_id AND a.attempt_index = e.attempt_index \
             WHERE e.ownership_state = 'leased' AND (a.execution_id IS NULL \
                 OR a.worker_instance_id IS NULL OR a.lease_expires_at_ms IS NULL)",
        );
        if !leased_without_attempt.is_empty() {
            return Err(format!(
                "leased executions without a held attempt row: {leased_without_attempt:?}"
            ));
        }
        let pending_with_attempt = strings(
            &conn,
            "SELECT lower(hex(e.execution_id)) FROM ff_exec_core AS e \
             WHERE e.lifecycle_phase = 'runnable' AND e.ownership_state = 'unowned' \
                 AND e.attempt_state = 'pending_first_attempt' \
                 AND EXISTS (SELECT 1 FROM ff_attempt AS a WHERE a.partition_key = e.partition_key \
                     AND a.execution_id = e.execution_id)",
        );
        if !pending_with_attempt.is_empty() {
            return Err(format!(
                "unclaimed executions with an attempt row (half a claim): {pending_with_attempt:?}"
            ));
        }

        let executions: HashSet<String> =
            strings(&conn, "SELECT lower(hex(execution_id)) FROM ff_exec_core")
                .into_iter()
                .collect();
        if let Some(lost) = self.executions.iter().find(|id| !executions.contains(*id)) {
            return Err(format!("execution {lost} vanished"));
        }
        self.executions.extend(executions.iter().cloned());
        let with_grant: HashSet<String> = strings(
            &conn,
            "SELECT lower(hex(execution_id)) FROM ff_claim_grant WHERE kind = 'claim'",
        )
        .into_iter()
        .collect();
        let with_attempt: HashSet<String> = strings(
            &conn,
            "SELECT DISTINCT lower(hex(execution_id)) FROM ff_attempt",
        )
        .into_iter()
        .collect();
        let terminal: HashSet<String> = strings(
            &conn,
            "SELECT lower(hex(execution_id)) FROM ff_exec_core \
             WHERE lifecycle_phase = 'terminal' AND public_state = 'completed'",
        )
        .into_iter()
        .collect();
        for id in &self.granted {
            let key = hex_of(id);
            if !executions.contains(&key) {
                return Err(format!("granted execution {id} is missing"));
            }
            if !with_grant.contains(&key) && !with_attempt.contains(&key) {
                return Err(format!(
                    "the grant of {id} is gone but nothing claimed it (no attempt row)"
                ));
            }
        }
        if let Some(id) = self
            .claimed
            .iter()
            .find(|id| !with_attempt.contains(&hex_of(id)))
        {
            return Err(format!("claimed execution {id} has no attempt row"));
        }
        if let Some(id) = self
            .completed
            .iter()
            .find(|id| !terminal.contains(&hex_of(id)))
        {
            return Err(format!(
                "completed execution {id} is not terminal/completed"
            ));
        }

        let mut statement = conn
            .prepare("SELECT lower(hex(execution_id)), attempt_index, lease_epoch FROM ff_attempt")
            .map_err(|error| error.to_string())?;
        let attempts: BTreeMap<(String, i64), i64> = statement
            .query_map([], |row| Ok(((row.get(0)?, row.get(1)?), row.get(2)?)))
            .and_then(|rows| rows.collect())
            .map_err(|error| error.to_string())?;
        for (attempt, before) in &self.epochs {
            match attempts.get(attempt) {
                None => return Err(format!("attempt {attempt:?} vanished")),
                Some(now) if now < before => {
                    return Err(format!(
                        "attempt {attempt:?}: lease epoch went back from {before} to {now}"
                    ));
                }
                Some(_) => {}
            }
        }
        self.epochs = attempts;
        Ok(())
    }
}

// ── Worker processes ────────────────────────────────────────────────────────────────────────

/// One `ff-test-worker` process, its stdout as a channel of complete lines, its stderr
/// collected by a thread.
struct Worker {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stderr: Option<JoinHandle<String>>,
}

impl Worker {
    fn spawn(database: &str, mode: &str, lane: &str, name: &str, extra: &[&str]) -> Self {
        let mut child = Command::new(WORKER)
            .args([database, mode, lane, name])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("spawn {WORKER}: {error}"));
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            let mut stdout = stdout;
            let mut line = String::new();
            // A line cut short by the kill has no newline: it reports nothing.
            while matches!(stdout.read_line(&mut line), Ok(n) if n > 0) && line.ends_with('\n') {
                if sender.send(line.trim_end().to_owned()).is_err() {
                    break;
                }
                line.clear();
            }
        });
        let mut stderr = child.stderr.take().expect("piped stderr");
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
            text
        });
        Self {
            name: name.to_owned(),
            stdin: child.stdin.take(),
            child,
            lines,
            stderr: Some(stderr),
        }
    }

    /// Read lines until `expected`; fail (with the worker's stderr) on anything else.
    fn wait_for(&mut self, expected: &str, timeout: Duration) {
        match self.lines.recv_timeout(timeout) {
            Ok(line) if line == expected => {}
            Ok(line) => self.fail(&format!("expected `{expected}`, got `{line}`")),
            Err(RecvTimeoutError::Timeout) => {
                self.fail(&format!("no `{expected}` within {timeout:?}"))
            }
            Err(RecvTimeoutError::Disconnected) => {
                self.fail(&format!("exited before `{expected}`"))
            }
        }
    }

    /// Send one line, keeping stdin open for more.
    fn send(&mut self, line: &str) {
        let written = match self.stdin.as_mut() {
            Some(stdin) => writeln!(stdin, "{line}").and_then(|()| stdin.flush()),
            None => self.fail("stdin is closed"),
        };
        if let Err(error) = written {
            self.fail(&format!("cannot send `{line}`: {error}"));
        }
    }

    /// The next line the worker prints.
    fn next_line(&mut self, timeout: Duration) -> String {
        match self.lines.recv_timeout(timeout) {
            Ok(line) => line,
            Err(_) => self.fail(&format!("no line within {timeout:?}")),
        }
    }

    /// Send the start signal.
    fn start(&mut self) {
        let mut stdin = self.stdin.take().expect("started once");
        if let Err(error) = stdin.write_all(b"go\n") {
            self.fail(&format!("cannot send the start signal: {error}"));
        }
    }

    /// Wait (at most `timeout`) for a successful exit; return every line it printed.
    fn finish(&mut self, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut lines = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => lines.push(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    self.fail(&format!("still running after {timeout:?}"))
                }
            }
        }
        let status = self.child.wait().expect("wait for the worker");
        if !status.success() {
            self.fail(&format!("exited with {status}"));
        }
        lines
    }

    /// SIGKILL the worker, which must still be running; return every line it printed.
    fn kill(&mut self) -> Vec<String> {
        if let Ok(Some(status)) = self.child.try_wait() {
            self.fail(&format!("exited on its own ({status}) before the kill"));
        }
        self.child.kill().expect("SIGKILL the worker");
        let status = self.child.wait().expect("wait for the worker");
        assert_killed(status);
        self.lines.iter().collect()
    }

    /// Kill the worker if it still runs, and panic with `problem` and its stderr.
    fn fail(&mut self, problem: &str) -> ! {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let stderr = self
            .stderr
            .take()
            .and_then(|thread| thread.join().ok())
            .unwrap_or_default();
        panic!("worker {}: {problem}; stderr:\n{stderr}", self.name);
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // A failing test must not leave workers behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(unix)]
fn assert_killed(status: ExitStatus) {
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(9), "killed by SIGKILL: {status}");
}

#[cfg(not(unix))]
fn assert_killed(status: ExitStatus) {
    assert!(!status.success(), "killed: {status}");
}

// ── Small helpers ───────────────────────────────────────────────────────────────────────────

/// A current-thread runtime for the parent's own backend.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

/// The ids a worker reported with `verb`.
fn reported(lines: &[String], verb: &str) -> Vec<String> {
    lines
        .iter()
        .filter_map(|line| line.strip_prefix(verb)?.strip_prefix(' '))
        .map(str::to_owned)
        .collect()
}

/// The `ff_exec_core.execution_id` blob of an execution id's text form.
fn key_of(id: &str) -> Vec<u8> {
    blob(uuid_of(
        &ff_core::types::ExecutionId::parse(id).expect("a reported execution id"),
    ))
}

/// The lowercase hex of an execution id's UUID, as `lower(hex(execution_id))` gives it.
fn hex_of(id: &str) -> String {
    key_of(id)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The first column of every row of `sql`, as text.
fn strings(conn: &Connection, sql: &str) -> Vec<String> {
    conn.prepare(sql)
        .and_then(|mut statement| {
            statement
                .query_map([], |row| row.get(0))?
                .collect::<Result<_, _>>()
        })
        .unwrap_or_else(|error| panic!("{sql}: {error}"))
}

/// SplitMix64: a small deterministic generator; the same seed gives the same kill moment.
fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
