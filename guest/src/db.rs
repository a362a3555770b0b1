//! The database as the engine logic sees it: two calls, `execute` and `query`.
//!
//! [`Db`] is deliberately tiny so that the logic can run against the host's `sql` import in
//! the component ([`HostDb`]) and against a native SQLite connection in unit tests.

use crate::errors::storage;
use crate::sql::{Error as SqlError, ExecResult, Value};
use crate::types::EngineError;

/// A SQL connection inside an open transaction.
pub trait Db {
    /// Run a statement for its effect.
    fn execute(&mut self, statement: &str, params: &[Value]) -> Result<ExecResult, SqlError>;
    /// Run a statement and return its rows, each a list of values in column order.
    fn query(&mut self, statement: &str, params: &[Value]) -> Result<Vec<Vec<Value>>, SqlError>;
}

/// The host's `sql` import: the database bound to the operation in progress. Parameters and
/// rows cross the boundary packed ([`crate::packed`]): one byte list each way instead of one
/// value at a time.
pub struct HostDb;

impl Db for HostDb {
    fn execute(&mut self, statement: &str, params: &[Value]) -> Result<ExecResult, SqlError> {
        crate::sql::execute_packed(statement, &crate::packed::encode_params(params))
    }

    fn query(&mut self, statement: &str, params: &[Value]) -> Result<Vec<Vec<Value>>, SqlError> {
        let rows = crate::sql::query_packed(statement, &crate::packed::encode_params(params))?;
        crate::packed::decode_rows(&rows)
    }
}

/// Conveniences over [`Db`] that turn SQL failures into [`EngineError::Storage`] (see
/// [`crate::errors::storage`]).
pub trait DbExt: Db {
    /// Run a statement for its effect; returns the number of changed rows.
    fn run(&mut self, statement: &str, params: &[Value]) -> Result<u64, EngineError> {
        Ok(self.execute(statement, params).map_err(storage)?.changes)
    }

    /// Run a statement expected to return at most one row; returns that row.
    fn first_row(&mut self, statement: &str, params: &[Value]) -> Result<Option<Row>, EngineError> {
        let rows = self.query(statement, params).map_err(storage)?;
        Ok(rows.into_iter().next().map(Row))
    }
}

impl<T: Db + ?Sized> DbExt for T {}

/// One result row with typed, lenient accessors by position.
#[derive(Debug)]
pub struct Row(pub Vec<Value>);

impl Row {
    /// The value at `index` as text: integers and reals are rendered, `NULL` and blobs are
    /// `None`.
    pub fn text(&self, index: usize) -> Option<String> {
        match self.0.get(index)? {
            Value::Text(text) => Some(text.clone()),
            Value::Integer(int) => Some(int.to_string()),
            Value::Real(real) => Some(real.to_string()),
            Value::Null | Value::Blob(_) => None,
        }
    }

    /// [`Row::text`], moving a text value out of the row instead of copying it (an empty text
    /// is left in its place).
    pub fn take_text(&mut self, index: usize) -> Option<String> {
        match self.0.get_mut(index)? {
            Value::Text(text) => Some(std::mem::take(text)),
            _ => self.text(index),
        }
    }

    /// The value at `index` as it came, moved out of the row (`NULL` is left in its place, and
    /// returned for a missing column).
    pub fn take_value(&mut self, index: usize) -> Value {
        self.0
            .get_mut(index)
            .map_or(Value::Null, |value| std::mem::replace(value, Value::Null))
    }

    /// The value at `index` as text, or the empty string.
    pub fn text_or_empty(&self, index: usize) -> String {
        self.text(index).unwrap_or_default()
    }

    /// The value at `index` as bytes: blobs as they are, text as its UTF-8 bytes, `NULL` and
    /// numbers as `None`.
    pub fn blob(&self, index: usize) -> Option<Vec<u8>> {
        match self.0.get(index)? {
            Value::Blob(bytes) => Some(bytes.clone()),
            Value::Text(text) => Some(text.as_bytes().to_vec()),
            Value::Null | Value::Integer(_) | Value::Real(_) => None,
        }
    }

    /// The value at `index` as an integer; `NULL` and non-numeric values are `None`.
    pub fn integer(&self, index: usize) -> Option<i64> {
        match self.0.get(index)? {
            Value::Integer(int) => Some(*int),
            Value::Real(real) => Some(*real as i64),
            Value::Text(text) => text.trim().parse().ok(),
            Value::Null | Value::Blob(_) => None,
        }
    }
}

/// Shorthands for building parameter lists.
pub fn int(value: impl Into<i64>) -> Value {
    Value::Integer(value.into())
}

/// A text parameter.
pub fn text(value: impl Into<String>) -> Value {
    Value::Text(value.into())
}

/// An optional integer parameter: `NULL` when absent.
pub fn opt_int(value: Option<i64>) -> Value {
    value.map_or(Value::Null, Value::Integer)
}
