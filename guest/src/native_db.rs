//! The engine logic's [`Db`] over a rusqlite connection (feature `native-db`): how the unit
//! tests, and the benchmark's native baseline, run the logic without the host. Statements go
//! through rusqlite's statement cache, as the host's `sql` import does.

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, ToSql};

use crate::db::Db;
use crate::sql::{Error as SqlError, ExecResult, SqliteFailure, Value};

/// A [`Db`] on a borrowed connection (inside whatever transaction its owner opened).
pub struct NativeDb<'a>(pub &'a Connection);

impl NativeDb<'_> {
    fn rows(&self, statement: &str, params: &[Value]) -> rusqlite::Result<Vec<Vec<Value>>> {
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
        self.rows(statement, params).map_err(sql_error)?;
        Ok(ExecResult {
            changes: self.0.changes(),
            last_insert_rowid: self.0.last_insert_rowid(),
        })
    }

    fn query(&mut self, statement: &str, params: &[Value]) -> Result<Vec<Vec<Value>>, SqlError> {
        self.rows(statement, params).map_err(sql_error)
    }
}

/// A guest value bound as a statement parameter, without copying.
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

/// A rusqlite error as the `sql` import would report it (`failure` with SQLite's code).
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
