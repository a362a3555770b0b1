//! A native [`Db`] over rusqlite with the host's schema, for unit tests of the logic.

use crate::db::Db;
use crate::sql::{Error as SqlError, ExecResult, Rows, SqliteFailure, Value};
use rusqlite::types::{ToSqlOutput, Value as SqliteValue, ValueRef};

/// The host's migrations, applied in order to every test database.
const MIGRATIONS: &[&str] = &[
    include_str!("../../host/migrations/0001_hot_path.sql"),
    include_str!("../../host/migrations/0002_claim_scan.sql"),
];

/// An in-memory database with the full schema.
pub struct TestDb(rusqlite::Connection);

impl TestDb {
    pub fn new() -> Self {
        let conn = rusqlite::Connection::open_in_memory().expect("open");
        for migration in MIGRATIONS {
            conn.execute_batch(migration).expect("migrate");
        }
        Self(conn)
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
        let uuid = execution_id
            .split_once("}:")
            .expect("id")
            .1
            .replace('-', "");
        self.exec(&format!(
            "INSERT INTO ff_exec_core (partition_key, execution_id, lane_id, attempt_index, lifecycle_phase, \
                 ownership_state, eligibility_state, public_state, attempt_state, priority, created_at_ms, raw_fields) \
             VALUES (0, X'{uuid}', 'default', 0, 'runnable', 'unowned', 'eligible_now', 'waiting', \
                 'pending_first_attempt', 0, 1, '{{\"namespace\":\"ns\",\"tags\":{{\"cairn.instance_id\":\"inst\"}}}}')"
        ));
    }

    /// A claim grant for `worker_id`.
    pub fn seed_grant(&self, execution_id: &str, worker_id: &str, expires_at_ms: i64) {
        let uuid = execution_id
            .split_once("}:")
            .expect("id")
            .1
            .replace('-', "");
        self.exec(&format!(
            "INSERT INTO ff_claim_grant (partition_key, grant_id, execution_id, kind, worker_id, \
                 worker_instance_id, lane_id, grant_ttl_ms, issued_at_ms, expires_at_ms) \
             VALUES (0, randomblob(16), X'{uuid}', 'claim', '{worker_id}', 'wi', 'default', 60000, 0, {expires_at_ms})"
        ));
    }

    fn run(&self, statement: &str, params: &[Value]) -> rusqlite::Result<Rows> {
        let mut stmt = self.0.prepare(statement)?;
        let columns: Vec<String> = stmt.column_names().into_iter().map(String::from).collect();
        let bound: Vec<ToSqlOutput<'_>> = params.iter().map(to_sql).collect();
        let mut rows = stmt.query(rusqlite::params_from_iter(bound))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let mut values = Vec::with_capacity(columns.len());
            for index in 0..columns.len() {
                values.push(from_sql(row.get_ref(index)?));
            }
            out.push(values);
        }
        Ok(Rows { columns, rows: out })
    }
}

impl Db for TestDb {
    fn execute(&mut self, statement: &str, params: &[Value]) -> Result<ExecResult, SqlError> {
        self.run(statement, params).map_err(to_sql_error)?;
        Ok(ExecResult {
            changes: self.0.changes(),
            last_insert_rowid: self.0.last_insert_rowid(),
        })
    }

    fn query(&mut self, statement: &str, params: &[Value]) -> Result<Rows, SqlError> {
        self.run(statement, params).map_err(to_sql_error)
    }
}

fn to_sql(value: &Value) -> ToSqlOutput<'_> {
    ToSqlOutput::Borrowed(match value {
        Value::Null => ValueRef::Null,
        Value::Integer(i) => ValueRef::Integer(*i),
        Value::Real(r) => ValueRef::Real(*r),
        Value::Text(t) => ValueRef::Text(t.as_bytes()),
        Value::Blob(b) => ValueRef::Blob(b),
    })
}

fn from_sql(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Real(r) => Value::Real(r),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}

fn to_sql_error(error: rusqlite::Error) -> SqlError {
    let code = match &error {
        rusqlite::Error::SqliteFailure(failure, _) => failure.extended_code,
        _ => 1,
    };
    SqlError::Failure(SqliteFailure {
        code,
        message: error.to_string(),
    })
}
