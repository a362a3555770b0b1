//! Fixtures shared by the recovery tests: seeded leases (through `claim_execution`, or by hand
//! as upstream's tests seed them), a full-database dump, and a [`Db`] wrapper that lets a test
//! change the database between two statements of an operation.

use crate::claim::claim_execution;
use crate::db::Db;
use crate::engine::{ClaimExecutionArgs, ClaimedExecution};
use crate::sql::{Error as SqlError, ExecResult, Rows, Value};
use crate::testing::TestDb;

/// The execution most tests use.
pub const EXEC: &str = "{fp:0}:53ad96d2-6b08-4d0c-86e3-36598db2291c";
/// [`EXEC`]'s bare UUID (the outbox form).
pub const BARE: &str = "53ad96d2-6b08-4d0c-86e3-36598db2291c";
/// The time of the seeded claims.
pub const NOW: i64 = 1_700_000_000_000;
/// The seeded leases' length.
pub const TTL: u64 = 30_000;
/// The seeded leases' id.
pub const LEASE: &str = "11111111-1111-4111-8111-111111111111";
/// The seeded attempts' id.
pub const ATTEMPT: &str = "22222222-2222-4222-8222-222222222222";

/// The claim arguments the seeded leases use: worker-1/wi-1, attempt 0, a 30 s lease at NOW.
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
        attempt_policy_json: String::new(),
        attempt_timeout_ms: None,
        execution_deadline_at: None,
        now: NOW,
    }
}

/// Claim a seeded runnable execution with [`claim_args`].
pub fn claim(db: &mut TestDb, execution_id: &str) -> ClaimedExecution {
    db.seed_runnable(execution_id);
    db.seed_grant(execution_id, "worker-1", NOW + 60_000);
    claim_execution(db, &claim_args(execution_id)).expect("claim")
}

/// A database holding [`EXEC`] leased through `claim_execution`: attempt 0, epoch 1, lease
/// [`LEASE`], attempt [`ATTEMPT`], instance `wi-1`, expiring at `NOW + TTL`.
pub fn leased() -> TestDb {
    let mut db = TestDb::new();
    claim(&mut db, EXEC);
    db
}

/// A database holding [`EXEC`] leased the way upstream's tests seed it: no lease or attempt
/// ids recorded, attempt 0 at epoch 3, instance `wi-h`, expiring at `NOW + TTL`.
pub fn hand_leased() -> TestDb {
    let db = TestDb::new();
    db.seed_runnable(EXEC);
    db.exec(&format!(
        "UPDATE ff_exec_core SET lifecycle_phase = 'active', ownership_state = 'leased', \
             eligibility_state = 'not_applicable', public_state = 'running', \
             attempt_state = 'running_attempt';
         INSERT INTO ff_attempt (partition_key, execution_id, attempt_index, worker_id, \
             worker_instance_id, lease_epoch, lease_expires_at_ms, started_at_ms) \
         SELECT 0, execution_id, 0, 'worker-h', 'wi-h', 3, {}, {NOW} FROM ff_exec_core",
        NOW + TTL as i64
    ));
    db
}

/// Every row of every table, rendered and sorted: equal dumps mean an unchanged database.
pub fn dump(db: &mut TestDb) -> Vec<String> {
    let tables = db
        .query(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name",
            &[],
        )
        .expect("tables");
    let mut out = Vec::new();
    for table in tables.rows {
        let Some(Value::Text(name)) = table.first() else {
            continue;
        };
        let rows = db
            .query(&format!("SELECT * FROM \"{name}\""), &[])
            .expect("rows");
        let mut rendered: Vec<String> = rows
            .rows
            .iter()
            .map(|row| format!("{name}: {row:?}"))
            .collect();
        rendered.sort();
        out.extend(rendered);
    }
    out
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

    fn query(&mut self, statement: &str, params: &[Value]) -> Result<Rows, SqlError> {
        self.maybe_fire(statement);
        self.db.query(statement, params)
    }
}
