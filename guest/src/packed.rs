//! The guest's side of the `sql` interface's packed values (`execute-packed`, `query-packed`;
//! the format is specified in `wit/sql.wit`): parameters encoded into one byte list, rows
//! decoded from one. `HostDb` (in `db`) talks to the host this way; the logic still sees
//! [`Value`]s.

use crate::sql::{Error as SqlError, SqliteFailure, Value};

/// The tag of each value in the packed format.
const NULL: u8 = 0;
const INTEGER: u8 = 1;
const REAL: u8 = 2;
const TEXT: u8 = 3;
const BLOB: u8 = 4;

/// `params`, packed.
pub fn encode_params(params: &[Value]) -> Vec<u8> {
    let size = params
        .iter()
        .map(|param| match param {
            Value::Null => 1,
            Value::Integer(_) | Value::Real(_) => 9,
            Value::Text(text) => 5 + text.len(),
            Value::Blob(blob) => 5 + blob.len(),
        })
        .sum();
    let mut bytes = Vec::with_capacity(size);
    for param in params {
        match param {
            Value::Null => bytes.push(NULL),
            Value::Integer(int) => {
                bytes.push(INTEGER);
                bytes.extend_from_slice(&int.to_le_bytes());
            }
            Value::Real(real) => {
                bytes.push(REAL);
                bytes.extend_from_slice(&real.to_le_bytes());
            }
            Value::Text(text) => push_sized(&mut bytes, TEXT, text.as_bytes()),
            Value::Blob(blob) => push_sized(&mut bytes, BLOB, blob),
        }
    }
    bytes
}

fn push_sized(bytes: &mut Vec<u8>, tag: u8, payload: &[u8]) {
    // A parameter of 4 GiB cannot exist in a 32-bit guest's memory.
    let length = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    bytes.push(tag);
    bytes.extend_from_slice(&length.to_le_bytes());
    bytes.extend_from_slice(payload);
}

/// Rows packed by the host's `query-packed`. A malformed list (a host bug) is a
/// `failure` naming the fault, never a panic.
pub fn decode_rows(bytes: &[u8]) -> Result<Vec<Vec<Value>>, SqlError> {
    let mut reader = Reader { bytes, at: 0 };
    let width = reader.length()?;
    let count = reader.length()?;
    let mut rows = Vec::with_capacity(count.min(bytes.len()));
    for _ in 0..count {
        let mut row = Vec::with_capacity(width.min(bytes.len()));
        for _ in 0..width {
            row.push(reader.value()?);
        }
        rows.push(row);
    }
    if reader.at != bytes.len() {
        return Err(malformed(reader.at, "bytes after the last row"));
    }
    Ok(rows)
}

/// A cursor over packed bytes.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, count: usize) -> Result<&[u8], SqlError> {
        let at = self.at;
        let taken = self
            .bytes
            .get(at..at.saturating_add(count))
            .ok_or_else(|| malformed(at, "truncated"))?;
        self.at += count;
        Ok(taken)
    }

    fn word(&mut self) -> Result<[u8; 8], SqlError> {
        let word = self.take(8)?;
        Ok(word.try_into().unwrap_or([0; 8]))
    }

    fn length(&mut self) -> Result<usize, SqlError> {
        let length = self.take(4)?;
        let length = u32::from_le_bytes(length.try_into().unwrap_or([0; 4]));
        Ok(usize::try_from(length).unwrap_or(usize::MAX))
    }

    fn value(&mut self) -> Result<Value, SqlError> {
        let at = self.at;
        let tag = self.take(1)?[0];
        Ok(match tag {
            NULL => Value::Null,
            INTEGER => Value::Integer(i64::from_le_bytes(self.word()?)),
            REAL => Value::Real(f64::from_le_bytes(self.word()?)),
            TEXT => {
                let length = self.length()?;
                let text = std::str::from_utf8(self.take(length)?)
                    .map_err(|_| malformed(at, "text that is not UTF-8"))?;
                Value::Text(text.to_owned())
            }
            BLOB => {
                let length = self.length()?;
                Value::Blob(self.take(length)?.to_vec())
            }
            _ => return Err(malformed(at, "an unknown tag")),
        })
    }
}

fn malformed(at: usize, fault: &str) -> SqlError {
    SqlError::Failure(SqliteFailure {
        code: 1,
        message: format!("malformed packed rows from the host at byte {at}: {fault}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_kinds() -> Vec<Value> {
        vec![
            Value::Null,
            Value::Integer(-7),
            Value::Real(2.5),
            Value::Text("hé".into()),
            Value::Blob(vec![0, 1, 2]),
            Value::Text(String::new()),
        ]
    }

    /// Rows as the host packs them: width, count, values.
    fn rows(width: u32, count: u32, values: &[Value]) -> Vec<u8> {
        let mut bytes = width.to_le_bytes().to_vec();
        bytes.extend_from_slice(&count.to_le_bytes());
        bytes.extend(encode_params(values));
        bytes
    }

    #[test]
    fn parameters_are_packed_as_the_wit_specifies() {
        let bytes = encode_params(&all_kinds());
        assert_eq!(
            &bytes[..10],
            &[0, 1, 0xf9, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
        );
        assert_eq!(&bytes[19..27], &[3, 3, 0, 0, 0, b'h', 0xc3, 0xa9]);
        assert_eq!(encode_params(&[]), Vec::<u8>::new());
    }

    #[test]
    fn rows_round_trip() {
        let values = all_kinds();
        let decoded = decode_rows(&rows(3, 2, &values)).unwrap();
        assert_eq!(decoded, vec![values[..3].to_vec(), values[3..].to_vec()]);
        assert_eq!(
            decode_rows(&rows(5, 0, &[])).unwrap(),
            Vec::<Vec<Value>>::new()
        );
    }

    #[test]
    fn malformed_rows_are_failures_not_panics() {
        let fault = |bytes: &[u8]| match decode_rows(bytes).unwrap_err() {
            SqlError::Failure(failure) => failure.message,
            other => panic!("{other:?}"),
        };
        assert!(fault(&[1, 0, 0]).contains("at byte 0: truncated"));
        assert!(fault(&rows(1, 2, &[Value::Null])).contains("at byte 9: truncated"));
        assert!(fault(&rows(1, 1, &[Value::Null, Value::Null])).contains("bytes after"));
        let mut bad_tag = rows(1, 1, &[]);
        bad_tag.push(9);
        assert!(fault(&bad_tag).contains("an unknown tag"));
        let mut bad_text = rows(1, 1, &[]);
        bad_text.extend_from_slice(&[3, 1, 0, 0, 0, 0xff]);
        assert!(fault(&bad_text).contains("not UTF-8"));
        let mut huge = rows(1, 1, &[]);
        huge.extend_from_slice(&[4, 0xff, 0xff, 0xff, 0xff]);
        assert!(fault(&huge).contains("truncated"));
        // A count far beyond the bytes does not allocate for it.
        assert!(fault(&rows(u32::MAX, u32::MAX, &[])).contains("truncated"));
    }
}
