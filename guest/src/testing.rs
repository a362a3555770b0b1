//! A native [`Db`] over rusqlite with the host's schema, and the fixtures the unit tests of the
//! logic share: the ids and times they use, seeded and leased executions, a full-database dump
//! (for "an error writes nothing"), and [`Interloper`], a [`Db`] wrapper that lets a test
//! change the database between two statements of an operation.

use std::fmt::Debug;

use crate::bindings::scheduling::ClaimExecutionArgs;
use crate::db::Db;
use crate::native_db::NativeDb;
use crate::scheduling::claim_execution;
use crate::sql::{Error as SqlError, ExecResult, Value};
use crate::types::{ClaimedExecution, EngineError};
use rusqlite::types::Value as SqliteValue;

/// The host's migrations, applied in order to every test database.
const MIGRATIONS: &[&str] = &[
    include_str!("../../host/migrations/0001_hot_path.sql"),
    include_str!("../../host/migrations/0002_claim_scan.sql"),
    include_str!("../../host/migrations/0003_flows.sql"),
    include_str!("../../host/migrations/0004_suspension.sql"),
    include_str!("../../host/migrations/0005_budgets.sql"),
    include_str!("../../host/migrations/0006_streams.sql"),
    include_str!("../../host/migrations/0007_workers.sql"),
    include_str!("../../host/migrations/0008_execution_idempotency.sql"),
    include_str!("../../host/migrations/0009_subscriptions.sql"),
];

/// The execution most tests use.
pub const EXEC: &str = "{fp:0}:53ad96d2-6b08-4d0c-86e3-36598db2291c";
/// [`EXEC`]'s bare UUID text (the outbox form).
pub const EXEC_UUID: &str = "53ad96d2-6b08-4d0c-86e3-36598db2291c";
/// The time of the seeded claims (and of most operations under test).
pub const NOW: i64 = 1_700_000_000_000;
/// The length of the leases [`claim_args`] asks for.
pub const TTL: u64 = 30_000;
/// The lease id [`claim_args`] mints.
pub const LEASE: &str = "11111111-1111-4111-8111-111111111111";
/// The attempt id [`claim_args`] mints.
pub const ATTEMPT: &str = "22222222-2222-4222-8222-222222222222";

/// The claim arguments the seeded leases use: `worker-1`/`wi-1` on lane `default`, attempt 0,
/// lease [`LEASE`] and attempt [`ATTEMPT`], a [`TTL`] lease at [`NOW`].
pub fn claim_args(execution_id: &str) -> ClaimExecutionArgs {
    ClaimExecutionArgs {
        execution_id: execution_id.into(),
        worker_id: "worker-1".into(),
        worker_instance_id: "wi-1".into(),
        lane_id: "default".into(),
        lease_id: LEASE.into(),
        lease_ttl_ms: TTL,
        attempt_id: ATTEMPT.into(),
        expected_attempt_index: 0,
        attempt_policy_json: None,
        attempt_timeout_ms: None,
        execution_deadline_at: None,
        now: NOW,
    }
}

/// The hex of an execution id's UUID, for `X'..'` literals.
pub fn hex(execution_id: &str) -> String {
    execution_id
        .split_once("}:")
        .expect("id")
        .1
        .replace('-', "")
}

/// An in-memory database with the full schema.
pub struct TestDb(rusqlite::Connection);

impl TestDb {
    /// An empty database.
    pub fn new() -> Self {
        let conn = rusqlite::Connection::open_in_memory().expect("open");
        for migration in MIGRATIONS {
            conn.execute_batch(migration).expect("migrate");
        }
        Self(conn)
    }

    /// A database holding [`EXEC`], runnable, unowned and eligible ([`TestDb::seed_runnable`]).
    pub fn runnable() -> Self {
        let db = Self::new();
        db.seed_runnable(EXEC);
        db
    }

    /// A database holding [`EXEC`] leased through `claim_execution` ([`TestDb::claim`]):
    /// attempt 0, epoch 1, lease [`LEASE`], attempt [`ATTEMPT`], instance `wi-1`, expiring at
    /// `NOW + TTL`.
    pub fn leased() -> Self {
        let mut db = Self::new();
        db.claim(EXEC);
        db
    }

    /// Run raw SQL (seeding and mutations).
    pub fn exec(&self, sql: &str) {
        self.0
            .execute_batch(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// The first column of the first row, as text.
    pub fn one(&self, sql: &str) -> String {
        self.0
            .query_row(sql, [], |row| row.get::<_, SqliteValue>(0))
            .map(|value| match value {
                SqliteValue::Null => "NULL".to_string(),
                SqliteValue::Integer(i) => i.to_string(),
                SqliteValue::Real(r) => r.to_string(),
                SqliteValue::Text(t) => t,
                SqliteValue::Blob(b) => format!("{b:?}"),
            })
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// A runnable, unowned, eligible execution, as upstream's claim test seeds it.
    pub fn seed_runnable(&self, execution_id: &str) {
        self.exec(&format!(
            "INSERT INTO ff_exec_core (partition_key, execution_id, lane_id, attempt_index, lifecycle_phase, \
                 ownership_state, eligibility_state, public_state, attempt_state, priority, created_at_ms, raw_fields) \
             VALUES (0, X'{}', 'default', 0, 'runnable', 'unowned', 'eligible_now', 'waiting', \
                 'pending_first_attempt', 0, 1, '{{\"namespace\":\"ns\",\"tags\":{{\"cairn.instance_id\":\"inst\"}}}}')",
            hex(execution_id)
        ));
    }

    /// A claim grant for `worker_id`.
    pub fn seed_grant(&self, execution_id: &str, worker_id: &str, expires_at_ms: i64) {
        self.exec(&format!(
            "INSERT INTO ff_claim_grant (partition_key, grant_id, execution_id, kind, worker_id, \
                 worker_instance_id, lane_id, grant_ttl_ms, issued_at_ms, expires_at_ms) \
             VALUES (0, randomblob(16), X'{}', 'claim', '{worker_id}', 'wi', 'default', 60000, 0, {expires_at_ms})",
            hex(execution_id)
        ));
    }

    /// Seed `execution_id` runnable with a grant for `worker-1`, then claim it through
    /// `claim_execution` with [`claim_args`].
    pub fn claim(&mut self, execution_id: &str) -> ClaimedExecution {
        self.seed_runnable(execution_id);
        self.seed_grant(execution_id, "worker-1", NOW + 60_000);
        claim_execution(self, &claim_args(execution_id)).expect("claim")
    }

    /// Every row of `table`, rendered as `table: [values]` and sorted.
    pub fn dump_table(&self, table: &str) -> Vec<String> {
        let rows = self.rows(&format!("SELECT * FROM \"{table}\""), &[]);
        let mut rendered: Vec<String> =
            rows.iter().map(|row| format!("{table}: {row:?}")).collect();
        rendered.sort();
        rendered
    }

    /// Every row of every table (`sqlite_sequence` included), table by table: equal dumps
    /// mean an unchanged database.
    pub fn dump(&self) -> Vec<String> {
        let tables = self.rows(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name",
            &[],
        );
        tables
            .iter()
            .flat_map(|table| match table.first() {
                Some(Value::Text(name)) => self.dump_table(name),
                other => panic!("table name: {other:?}"),
            })
            .collect()
    }

    /// Run `op`, which must fail; assert that it changed nothing and return its error.
    pub fn fails_unchanged<T: Debug>(
        &mut self,
        op: impl FnOnce(&mut TestDb) -> Result<T, EngineError>,
    ) -> EngineError {
        let before = self.dump();
        let err = op(self).expect_err("the operation should fail");
        assert_eq!(self.dump(), before, "{err:?} changed the database");
        err
    }

    /// The rows `statement` returns (panics on a SQL error: for the tests' own statements).
    pub fn rows(&self, statement: &str, params: &[Value]) -> Vec<Vec<Value>> {
        NativeDb(&self.0)
            .query(statement, params)
            .unwrap_or_else(|error| panic!("{statement}: {error:?}"))
    }
}

impl Db for TestDb {
    fn execute(&mut self, statement: &str, params: &[Value]) -> Result<ExecResult, SqlError> {
        NativeDb(&self.0).execute(statement, params)
    }

    fn query(&mut self, statement: &str, params: &[Value]) -> Result<Vec<Vec<Value>>, SqlError> {
        NativeDb(&self.0).query(statement, params)
    }
}

/// A [`Db`] that runs `sql` on the database right before the first statement containing
/// `trigger`: another writer getting in between an operation's read and its write.
pub struct Interloper<'a> {
    /// The database underneath.
    pub db: &'a mut TestDb,
    /// A fragment of the statement to get in before.
    pub trigger: &'static str,
    /// What the other writer runs.
    pub sql: &'static str,
    /// Whether the other writer got in.
    pub fired: bool,
}

impl Interloper<'_> {
    fn maybe_fire(&mut self, statement: &str) {
        if !self.fired && statement.contains(self.trigger) {
            self.fired = true;
            self.db.exec(self.sql);
        }
    }
}

impl Db for Interloper<'_> {
    fn execute(&mut self, statement: &str, params: &[Value]) -> Result<ExecResult, SqlError> {
        self.maybe_fire(statement);
        self.db.execute(statement, params)
    }

    fn query(&mut self, statement: &str, params: &[Value]) -> Result<Vec<Vec<Value>>, SqlError> {
        self.maybe_fire(statement);
        self.db.query(statement, params)
    }
}

/// A [`Db`] that keeps every statement it runs (with its parameters), so that a test can check
/// each one's query plan.
pub struct Recording<'a> {
    /// The database underneath.
    pub db: &'a mut TestDb,
    /// What ran, in order.
    pub statements: Vec<(String, Vec<Value>)>,
}

impl Recording<'_> {
    /// Every plan step of every recorded statement that reads a whole table (`SCAN <table>`) or
    /// sorts through a temporary b-tree, with the statement: empty when indexes serve them all.
    pub fn unindexed_steps(&mut self) -> Vec<String> {
        let mut found = Vec::new();
        for (statement, params) in &self.statements {
            let plan = self
                .db
                .rows(&format!("EXPLAIN QUERY PLAN {statement}"), params);
            for row in plan {
                if let Some(Value::Text(detail)) = row.last()
                    && (detail.starts_with("SCAN ") || detail.contains("TEMP B-TREE"))
                {
                    found.push(format!("{detail}: {statement}"));
                }
            }
        }
        found
    }
}

impl Db for Recording<'_> {
    fn execute(&mut self, statement: &str, params: &[Value]) -> Result<ExecResult, SqlError> {
        self.statements
            .push((statement.to_owned(), params.to_vec()));
        self.db.execute(statement, params)
    }

    fn query(&mut self, statement: &str, params: &[Value]) -> Result<Vec<Vec<Value>>, SqlError> {
        self.statements
            .push((statement.to_owned(), params.to_vec()));
        self.db.query(statement, params)
    }
}
