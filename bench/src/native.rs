//! The native baseline: the guest's engine logic compiled for the host and run directly on a
//! rusqlite connection, one `BEGIN IMMEDIATE … COMMIT` per operation. It issues exactly the SQL
//! the wasm guest issues, so the difference between the two columns is what the sandbox, the
//! component boundary and the backend's scheduling cost (or save, with group commit).

use std::path::Path;

use ff_engine_guest::db::Db;
use ff_engine_guest::engine::EngineError;
use ff_engine_guest::sql::{Error as SqlError, ExecResult, SqliteFailure, Value};
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags, ToSql};

/// The backend's page cache setting (64 MiB).
const PAGE_CACHE_KIB: i64 = -65_536;

/// The host's migrations, in order (the baseline's schema is the backend's).
const MIGRATIONS: &[&str] = &[
    include_str!("../../host/migrations/0001_hot_path.sql"),
    include_str!("../../host/migrations/0002_claim_scan.sql"),
];

/// A connection with the backend's settings: WAL and `synchronous=FULL` for files, a statement
/// cache of 128, the schema applied.
pub fn open(uri: &str, file: bool) -> anyhow::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(uri, flags)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    if file {
        conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
        conn.pragma_update(None, "synchronous", "FULL")?;
    }
    conn.set_prepared_statement_cache_capacity(128);
    conn.pragma_update(None, "cache_size", PAGE_CACHE_KIB)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    for migration in MIGRATIONS {
        conn.execute_batch(migration)?;
    }
    Ok(conn)
}

/// A database file path as the URI [`open`] takes.
pub fn file_uri(path: &Path) -> String {
    path.display().to_string()
}

/// The engine logic's [`Db`] over a borrowed rusqlite connection.
pub struct NativeDb<'a>(pub &'a Connection);

impl NativeDb<'_> {
    fn run(&self, statement: &str, params: &[Value]) -> rusqlite::Result<Vec<Vec<Value>>> {
        let mut prepared = self.0.prepare_cached(statement)?;
        let width = prepared.column_count();
        let mut rows = prepared.query(rusqlite::params_from_iter(params.iter().map(Param)))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let mut values = Vec::with_capacity(width);
            for index in 0..width {
                values.push(from_sql(row.get_ref(index)?));
            }
            out.push(values);
        }
        Ok(out)
    }
}

impl Db for NativeDb<'_> {
    fn execute(&mut self, statement: &str, params: &[Value]) -> Result<ExecResult, SqlError> {
        let mut prepared = self.0.prepare_cached(statement).map_err(sql_error)?;
        let mut rows = prepared
            .query(rusqlite::params_from_iter(params.iter().map(Param)))
            .map_err(sql_error)?;
        while rows.next().map_err(sql_error)?.is_some() {}
        Ok(ExecResult {
            changes: self.0.changes(),
            last_insert_rowid: self.0.last_insert_rowid(),
        })
    }

    fn query(&mut self, statement: &str, params: &[Value]) -> Result<Vec<Vec<Value>>, SqlError> {
        self.run(statement, params).map_err(sql_error)
    }
}

/// Run `operation` in its own `BEGIN IMMEDIATE … COMMIT` (rolled back on an error), as a
/// native backend without group commit would.
pub fn in_transaction<T>(
    conn: &Connection,
    operation: impl FnOnce(&mut NativeDb<'_>) -> Result<T, EngineError>,
) -> anyhow::Result<T> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    match operation(&mut NativeDb(conn)) {
        Ok(value) => {
            conn.execute_batch("COMMIT")?;
            Ok(value)
        }
        Err(error) => {
            conn.execute_batch("ROLLBACK")?;
            anyhow::bail!("native operation failed: {error:?}")
        }
    }
}

struct Param<'a>(&'a Value);

impl ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self.0 {
            Value::Null => ValueRef::Null,
            Value::Integer(value) => ValueRef::Integer(*value),
            Value::Real(value) => ValueRef::Real(*value),
            Value::Text(value) => ValueRef::Text(value.as_bytes()),
            Value::Blob(value) => ValueRef::Blob(value),
        }))
    }
}

fn from_sql(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(value) => Value::Integer(value),
        ValueRef::Real(value) => Value::Real(value),
        ValueRef::Text(bytes) => Value::Text(String::from_utf8_lossy(bytes).into_owned()),
        ValueRef::Blob(bytes) => Value::Blob(bytes.to_vec()),
    }
}

fn sql_error(error: rusqlite::Error) -> SqlError {
    let code = match &error {
        rusqlite::Error::SqliteFailure(failure, _) => failure.extended_code,
        _ => 1,
    };
    SqlError::Failure(SqliteFailure {
        code,
        message: error.to_string(),
    })
}
