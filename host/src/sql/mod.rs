//! The `flowfabric:backend/sql` interface the guest imports, implemented over rusqlite.
//!
//! [`SqlAccess`] is the guest's view of the database: the connection bound to the operation in
//! progress (inside the host's transaction) and the per-query limits. Statements are prepared
//! through rusqlite's statement cache, so a guest repeating the same SQL text pays for parsing
//! once per connection. SQL failures become `sql.error` values in [`convert_error`]; only a
//! call with no bound connection (a host bug) traps.
//!
//! [`convert_error`]: wit_sql::Host::convert_error

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, ErrorCode, ToSql};

mod packed;
mod tokens;

use crate::bindings::{SqlError, types, wit_sql};
use crate::storage::{HOST_STATEMENTS, SqlPolicy};

/// Bounds on what one `query` may return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QueryLimits {
    /// Rows per result.
    pub max_rows: usize,
    /// Host bytes per result: each value counts its length (text and blob bytes, 8 per
    /// number, none for `NULL`) plus [`VALUE_SLOT`], what holding it costs the host, so that
    /// the host's copy of a result stays within a small multiple of this bound whatever the
    /// values are (a result of `NULL`s included).
    pub max_bytes: usize,
}

/// The database as the guest sees it: the connection bound to the operation in progress, if
/// any. An instance outlives its operations; between them nothing is bound and every call fails.
pub(crate) struct SqlAccess {
    connection: Option<Connection>,
    /// The connection's policy, for the host's own statements during the operation (the
    /// `waitpoint-tokens` import).
    policy: Option<SqlPolicy>,
    limits: QueryLimits,
    read_only: bool,
}

impl SqlAccess {
    /// Nothing bound yet.
    pub fn unbound() -> Self {
        Self {
            connection: None,
            policy: None,
            limits: QueryLimits {
                max_rows: 0,
                max_bytes: 0,
            },
            read_only: true,
        }
    }

    /// Bind `connection` (already inside the operation's transaction, under `policy`) for one
    /// operation; a `read_only` operation may only run statements that do not write.
    pub fn bind(
        &mut self,
        connection: Connection,
        policy: &SqlPolicy,
        limits: QueryLimits,
        read_only: bool,
    ) {
        self.connection = Some(connection);
        self.policy = Some(policy.clone());
        self.limits = limits;
        self.read_only = read_only;
    }

    /// Take the connection back once the guest returned or trapped.
    pub fn unbind(&mut self) -> Option<Connection> {
        self.policy = None;
        self.connection.take()
    }

    fn connection(&self) -> Result<&Connection, SqlError> {
        self.connection.as_ref().ok_or(SqlError::Unbound)
    }

    /// Prepare (or reuse) `statement`. The authorizer ruled on it when it was first prepared;
    /// a cached statement that writes is refused here when the operation is read-only. Every
    /// statement runs inside the host's transaction or not at all: once SQLite has ended that
    /// transaction under the operation, everything is refused ([`SqlError::TransactionEnded`]).
    fn prepare(&self, statement: &str) -> Result<rusqlite::CachedStatement<'_>, SqlError> {
        if HOST_STATEMENTS.contains(&statement) {
            return Err(SqlError::Denied(
                "transaction control belongs to the host".into(),
            ));
        }
        let connection = self.connection()?;
        if connection.is_autocommit() {
            return Err(SqlError::TransactionEnded);
        }
        let prepared = connection.prepare_cached(statement)?;
        if self.read_only && !prepared.readonly() {
            return Err(SqlError::Denied(
                "a read-only operation may not write".into(),
            ));
        }
        Ok(prepared)
    }

    /// `execute`: run `statement` to completion (rows from `RETURNING` are discarded) and
    /// report what it changed.
    fn run_to_completion<P: ToSql>(
        &self,
        statement: &str,
        params: impl IntoIterator<Item = P>,
    ) -> Result<wit_sql::ExecResult, SqlError> {
        let mut prepared = self.prepare(statement)?;
        let mut rows = prepared.query(rusqlite::params_from_iter(params))?;
        while rows.next()?.is_some() {}
        drop(rows);
        drop(prepared);
        let connection = self.connection()?;
        Ok(wit_sql::ExecResult {
            changes: connection.changes(),
            last_insert_rowid: connection.last_insert_rowid(),
        })
    }
}

/// A guest value bound as a statement parameter, without copying.
struct Param<'a>(&'a wit_sql::Value);

impl ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self.0 {
            wit_sql::Value::Null => ValueRef::Null,
            wit_sql::Value::Integer(value) => ValueRef::Integer(*value),
            wit_sql::Value::Real(value) => ValueRef::Real(*value),
            wit_sql::Value::Text(value) => ValueRef::Text(value.as_bytes()),
            wit_sql::Value::Blob(value) => ValueRef::Blob(value),
        }))
    }
}

/// What every value of a result counts against [`QueryLimits::max_bytes`] besides its length:
/// the host's slot for it in a typed result (a `wit_sql::Value`, 32 bytes on 64-bit targets).
/// A packed result spends less (1–9 bytes); both are counted alike.
pub(crate) const VALUE_SLOT: usize = std::mem::size_of::<wit_sql::Value>();

/// What a value counts against [`QueryLimits::max_bytes`], known before it is copied.
fn size_of(value: ValueRef<'_>) -> usize {
    VALUE_SLOT
        + match value {
            ValueRef::Null => 0,
            ValueRef::Integer(_) | ValueRef::Real(_) => 8,
            ValueRef::Text(bytes) | ValueRef::Blob(bytes) => bytes.len(),
        }
}

fn to_guest(value: ValueRef<'_>) -> wit_sql::Value {
    match value {
        ValueRef::Null => wit_sql::Value::Null,
        ValueRef::Integer(value) => wit_sql::Value::Integer(value),
        ValueRef::Real(value) => wit_sql::Value::Real(value),
        ValueRef::Text(bytes) => wit_sql::Value::Text(String::from_utf8_lossy(bytes).into_owned()),
        ValueRef::Blob(bytes) => wit_sql::Value::Blob(bytes.to_vec()),
    }
}

/// The world's `types` interface defines types only; a guest that uses them imports it, and
/// there is nothing to provide.
impl types::Host for SqlAccess {}

impl wit_sql::Host for SqlAccess {
    fn execute(
        &mut self,
        statement: String,
        params: Vec<wit_sql::Value>,
    ) -> Result<wit_sql::ExecResult, SqlError> {
        self.run_to_completion(&statement, params.iter().map(Param))
    }

    fn query(
        &mut self,
        statement: String,
        params: Vec<wit_sql::Value>,
    ) -> Result<wit_sql::Rows, SqlError> {
        let limits = self.limits;
        let mut prepared = self.prepare(&statement)?;
        let columns: Vec<String> = prepared
            .column_names()
            .into_iter()
            .map(str::to_owned)
            .collect();
        let rows = bounded_rows(&mut prepared, &params, limits)?;
        Ok(wit_sql::Rows { columns, rows })
    }

    fn execute_packed(
        &mut self,
        statement: String,
        params: Vec<u8>,
    ) -> Result<wit_sql::ExecResult, SqlError> {
        let params = packed::decode_params(&params).map_err(SqlError::Malformed)?;
        self.run_to_completion(&statement, params)
    }

    fn query_packed(&mut self, statement: String, params: Vec<u8>) -> Result<Vec<u8>, SqlError> {
        let params = packed::decode_params(&params).map_err(SqlError::Malformed)?;
        let limits = self.limits;
        let mut prepared = self.prepare(&statement)?;
        let mut packed = packed::PackedRows::new(prepared.column_count());
        collect_bounded_rows(&mut prepared, params, limits, &mut packed)?;
        Ok(packed.finish())
    }

    fn convert_error(&mut self, error: SqlError) -> wasmtime::Result<wit_sql::Error> {
        match error {
            SqlError::Sqlite(error) => Ok(classify(error)),
            SqlError::Denied(why) => Ok(wit_sql::Error::Denied(why)),
            SqlError::Malformed(_) | SqlError::TransactionEnded => {
                Ok(wit_sql::Error::Denied(error.to_string()))
            }
            SqlError::TooLarge(what) => Ok(wit_sql::Error::TooLarge(what)),
            SqlError::Unbound => Err(wasmtime::format_err!("{}", SqlError::Unbound)),
        }
    }
}

/// Run `prepared` with `params` and collect its rows within `limits`.
fn bounded_rows(
    prepared: &mut rusqlite::CachedStatement<'_>,
    params: &[wit_sql::Value],
    limits: QueryLimits,
) -> Result<Vec<Vec<wit_sql::Value>>, SqlError> {
    let mut rows = Vec::new();
    collect_bounded_rows(prepared, params.iter().map(Param), limits, &mut rows)?;
    Ok(rows)
}

/// Where [`collect_bounded_rows`] puts the rows: guest values, or packed bytes.
trait RowSink {
    /// The next row begins; `width` values follow.
    fn start_row(&mut self, width: usize);
    /// One value of the current row.
    fn push(&mut self, value: ValueRef<'_>);
}

impl RowSink for Vec<Vec<wit_sql::Value>> {
    fn start_row(&mut self, width: usize) {
        self.push(Vec::with_capacity(width));
    }

    fn push(&mut self, value: ValueRef<'_>) {
        if let Some(row) = self.last_mut() {
            row.push(to_guest(value));
        }
    }
}

impl RowSink for packed::PackedRows {
    fn start_row(&mut self, _width: usize) {
        packed::PackedRows::start_row(self);
    }

    fn push(&mut self, value: ValueRef<'_>) {
        packed::PackedRows::push(self, value);
    }
}

/// Run `prepared` with `params` and hand its rows to `sink`, within `limits` (a value's size
/// is counted before it is copied, so an oversized one is refused without a host copy).
fn collect_bounded_rows<P: ToSql>(
    prepared: &mut rusqlite::CachedStatement<'_>,
    params: impl IntoIterator<Item = P>,
    limits: QueryLimits,
    sink: &mut impl RowSink,
) -> Result<(), SqlError> {
    let width = prepared.column_count();
    let mut rows = prepared.query(rusqlite::params_from_iter(params))?;
    let (mut count, mut bytes) = (0usize, 0usize);
    while let Some(row) = rows.next()? {
        if count == limits.max_rows {
            return Err(SqlError::TooLarge(format!(
                "the limit of {} rows",
                limits.max_rows
            )));
        }
        count += 1;
        sink.start_row(width);
        for index in 0..width {
            let value = row.get_ref(index)?;
            bytes = bytes.saturating_add(size_of(value));
            if bytes > limits.max_bytes {
                return Err(SqlError::TooLarge(format!(
                    "the limit of {} bytes",
                    limits.max_bytes
                )));
            }
            sink.push(value);
        }
    }
    Ok(())
}

/// The `sql.error` case for a SQLite error.
fn classify(error: rusqlite::Error) -> wit_sql::Error {
    let message = error.to_string();
    match &error {
        rusqlite::Error::SqliteFailure(failure, _) => match failure.code {
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => wit_sql::Error::Busy,
            ErrorCode::ConstraintViolation => wit_sql::Error::Constraint(message),
            ErrorCode::AuthorizationForStatementDenied => wit_sql::Error::Denied(message),
            // A function the authorizer refused is reported as a plain error.
            _ if message.contains("not authorized") => wit_sql::Error::Denied(message),
            _ => wit_sql::Error::Failure(wit_sql::SqliteFailure {
                code: failure.extended_code,
                message,
            }),
        },
        _ => wit_sql::Error::Failure(wit_sql::SqliteFailure {
            code: rusqlite::ffi::SQLITE_ERROR,
            message,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wit_sql::{Host as _, Value};

    const LIMITS: QueryLimits = QueryLimits {
        max_rows: 10_000,
        max_bytes: 16 << 20,
    };

    fn access(limits: QueryLimits) -> SqlAccess {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE, data BLOB); BEGIN",
        )
        .unwrap();
        let mut access = SqlAccess::unbound();
        access.bind(conn, &SqlPolicy::default(), limits, false);
        access
    }

    #[test]
    fn values_round_trip_through_execute_and_query() {
        let mut sql = access(LIMITS);
        let inserted = sql
            .execute(
                "INSERT INTO t (name, data) VALUES (?1, ?2)".into(),
                vec![Value::Text("a".into()), Value::Blob(vec![1, 2, 3])],
            )
            .unwrap();
        assert_eq!((inserted.changes, inserted.last_insert_rowid), (1, 1));
        let rows = sql
            .query(
                "SELECT id, name, data, 1.5, NULL FROM t WHERE name = ?1".into(),
                vec![Value::Text("a".into())],
            )
            .unwrap();
        assert_eq!(rows.columns, ["id", "name", "data", "1.5", "NULL"]);
        assert!(matches!(
            &rows.rows[..],
            [row] if matches!(&row[..], [Value::Integer(1), Value::Text(n), Value::Blob(b), Value::Real(r), Value::Null]
                if n == "a" && b == &[1, 2, 3] && *r == 1.5)
        ));
    }

    #[test]
    fn failures_are_classified() {
        let mut sql = access(LIMITS);
        sql.execute("INSERT INTO t (name) VALUES ('x')".into(), vec![])
            .unwrap();
        let duplicate = sql
            .execute("INSERT INTO t (name) VALUES ('x')".into(), vec![])
            .unwrap_err();
        assert!(matches!(
            sql.convert_error(duplicate).unwrap(),
            wit_sql::Error::Constraint(_)
        ));
        let syntax = sql.query("SELEKT".into(), vec![]).unwrap_err();
        assert!(
            matches!(sql.convert_error(syntax).unwrap(), wit_sql::Error::Failure(f) if f.code == 1)
        );
    }

    #[test]
    fn results_over_the_limits_are_refused() {
        let mut sql = access(QueryLimits {
            max_rows: 2,
            max_bytes: 100,
        });
        for name in ["a", "b", "c"] {
            sql.execute(
                "INSERT INTO t (name) VALUES (?1)".into(),
                vec![Value::Text(name.into())],
            )
            .unwrap();
        }
        let too_many = sql.query("SELECT name FROM t".into(), vec![]).unwrap_err();
        assert!(matches!(
            sql.convert_error(too_many).unwrap(),
            wit_sql::Error::TooLarge(_)
        ));
        let too_big = sql
            .query("SELECT zeroblob(500)".into(), vec![])
            .unwrap_err();
        assert!(matches!(
            sql.convert_error(too_big).unwrap(),
            wit_sql::Error::TooLarge(_)
        ));
    }

    #[test]
    fn every_value_counts_the_hosts_slot_for_it_nulls_included() {
        let nulls = |count: usize| {
            format!(
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {count}) \
                 SELECT NULL FROM c"
            )
        };
        let mut sql = access(QueryLimits {
            max_rows: 10_000,
            max_bytes: 100 * VALUE_SLOT,
        });
        assert_eq!(sql.query(nulls(100), vec![]).unwrap().rows.len(), 100);
        // One byte per NULL would have let 3 200 through (3 200 bytes of the limit).
        let refused = sql.query(nulls(101), vec![]).unwrap_err();
        assert!(matches!(
            sql.convert_error(refused).unwrap(),
            wit_sql::Error::TooLarge(_)
        ));
    }

    #[test]
    fn a_read_only_operation_may_not_run_a_cached_write() {
        let mut sql = access(LIMITS);
        let insert = "INSERT INTO t (name) VALUES ('w')".to_string();
        sql.execute(insert.clone(), vec![]).unwrap();
        let conn = sql.unbind().unwrap();
        assert!(matches!(
            sql.execute("SELECT 1".into(), vec![]),
            Err(SqlError::Unbound)
        ));
        let mut read_only = SqlAccess::unbound();
        read_only.bind(conn, &SqlPolicy::default(), LIMITS, true);
        let error = read_only.execute(insert, vec![]).unwrap_err();
        assert!(matches!(
            read_only.convert_error(error).unwrap(),
            wit_sql::Error::Denied(_)
        ));
        read_only
            .query("SELECT COUNT(*) FROM t".into(), vec![])
            .unwrap();
    }

    #[test]
    fn nothing_runs_once_the_transaction_has_ended() {
        let mut sql = access(LIMITS);
        sql.execute("INSERT INTO t (name) VALUES ('kept')".into(), vec![])
            .unwrap();
        // What an interrupted write or a FULL/NOMEM/IOERR failure does to the transaction.
        sql.connection().unwrap().execute_batch("ROLLBACK").unwrap();
        for statement in ["INSERT INTO t (name) VALUES ('late')", "SELECT 1"] {
            let error = sql.execute(statement.into(), vec![]).unwrap_err();
            assert!(matches!(error, SqlError::TransactionEnded), "{error:?}");
            assert!(matches!(
                sql.convert_error(error).unwrap(),
                wit_sql::Error::Denied(why) if why.contains("transaction was ended")
            ));
        }
        let conn = sql.unbind().unwrap();
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM t", [], |row| row.get(0))
            .unwrap();
        assert_eq!(rows, 0, "nothing ran in autocommit mode");
    }

    #[test]
    fn a_call_without_a_connection_traps() {
        let mut sql = SqlAccess {
            policy: None,
            connection: None,
            limits: LIMITS,
            read_only: false,
        };
        let error = sql.query("SELECT 1".into(), vec![]).unwrap_err();
        assert!(sql.convert_error(error).is_err());
    }
}
