//! The host's side of the `sql` interface's packed values (`execute-packed`, `query-packed`;
//! the format is specified in `wit/sql.wit`): parameters decoded from the guest's bytes without
//! copying them, rows encoded into one byte list.
//!
//! The bytes come from an untrusted guest: every length is checked against what is left, text
//! must be UTF-8, and a malformed list is refused as a whole with a description of the first
//! fault (the `sql` import reports it as `error::denied`).

use rusqlite::ToSql;
use rusqlite::types::{ToSqlOutput, ValueRef};

/// The tag of each value in the packed format.
const NULL: u8 = 0;
const INTEGER: u8 = 1;
const REAL: u8 = 2;
const TEXT: u8 = 3;
const BLOB: u8 = 4;

/// One decoded parameter, borrowing the guest's bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct PackedParam<'a>(ValueRef<'a>);

impl ToSql for PackedParam<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(self.0))
    }
}

/// The most parameters a statement can have: SQLite's `SQLITE_MAX_VARIABLE_NUMBER` (32 766 in
/// the bundled build). More could never be bound, so a list with more is refused before it is
/// decoded further: a one-byte `NULL` would otherwise cost the host a 24-byte slot.
pub(crate) const MAX_PARAMS: usize = 32_766;

/// Decode `bytes` (values back to back) into parameters, or say what is malformed.
pub(crate) fn decode_params(bytes: &[u8]) -> Result<Vec<PackedParam<'_>>, String> {
    // At least 9 bytes per number, 5 per text or blob: one allocation.
    let mut params = Vec::with_capacity((bytes.len() / 5).min(MAX_PARAMS));
    let mut rest = bytes;
    while let Some((&tag, after_tag)) = rest.split_first() {
        let at = bytes.len() - rest.len();
        if params.len() == MAX_PARAMS {
            return Err(format!(
                "parameter at byte {at}: more than {MAX_PARAMS} parameters"
            ));
        }
        let (value, after) = match tag {
            NULL => (ValueRef::Null, after_tag),
            INTEGER => {
                let (word, after) = take_word(after_tag, at)?;
                (ValueRef::Integer(i64::from_le_bytes(word)), after)
            }
            REAL => {
                let (word, after) = take_word(after_tag, at)?;
                (ValueRef::Real(f64::from_le_bytes(word)), after)
            }
            TEXT => {
                let (text, after) = take_sized(after_tag, at)?;
                std::str::from_utf8(text)
                    .map_err(|_| format!("parameter at byte {at}: text is not UTF-8"))?;
                (ValueRef::Text(text), after)
            }
            BLOB => {
                let (blob, after) = take_sized(after_tag, at)?;
                (ValueRef::Blob(blob), after)
            }
            other => return Err(format!("parameter at byte {at}: unknown tag {other}")),
        };
        params.push(PackedParam(value));
        rest = after;
    }
    Ok(params)
}

/// The 8 bytes of a number, and what follows them.
fn take_word(bytes: &[u8], at: usize) -> Result<([u8; 8], &[u8]), String> {
    match bytes.split_first_chunk::<8>() {
        Some((word, rest)) => Ok((*word, rest)),
        None => Err(format!("parameter at byte {at}: truncated number")),
    }
}

/// A length-prefixed run of bytes, and what follows it.
fn take_sized(bytes: &[u8], at: usize) -> Result<(&[u8], &[u8]), String> {
    let truncated = || format!("parameter at byte {at}: truncated text or blob");
    let (length, rest) = bytes.split_first_chunk::<4>().ok_or_else(truncated)?;
    let length = usize::try_from(u32::from_le_bytes(*length)).map_err(|_| truncated())?;
    if rest.len() < length {
        return Err(truncated());
    }
    Ok(rest.split_at(length))
}

/// Rows encoded as the packed format's row list: the column count, the row count, then every
/// row's values in column order.
pub(crate) struct PackedRows {
    bytes: Vec<u8>,
    rows: u32,
}

impl PackedRows {
    /// An empty result whose rows have `width` columns.
    pub fn new(width: usize) -> Self {
        // A typical row of short texts and numbers fits without growing.
        let mut bytes = Vec::with_capacity(8 + 24 * width);
        bytes.extend_from_slice(&u32::try_from(width).unwrap_or(u32::MAX).to_le_bytes());
        bytes.extend_from_slice(&0u32.to_le_bytes());
        Self { bytes, rows: 0 }
    }

    /// Start the next row (its values follow through [`PackedRows::push`]).
    pub fn start_row(&mut self) {
        self.rows = self.rows.saturating_add(1);
    }

    /// Append one value of the current row.
    pub fn push(&mut self, value: ValueRef<'_>) {
        match value {
            ValueRef::Null => self.bytes.push(NULL),
            ValueRef::Integer(int) => {
                self.bytes.push(INTEGER);
                self.bytes.extend_from_slice(&int.to_le_bytes());
            }
            ValueRef::Real(real) => {
                self.bytes.push(REAL);
                self.bytes.extend_from_slice(&real.to_le_bytes());
            }
            ValueRef::Text(text) => self.push_sized(TEXT, text),
            ValueRef::Blob(blob) => self.push_sized(BLOB, blob),
        }
    }

    fn push_sized(&mut self, tag: u8, bytes: &[u8]) {
        // Values are bounded far below 4 GiB (the connection's length limit and the query byte
        // limit), so the length always fits.
        let length = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        self.bytes.push(tag);
        self.bytes.extend_from_slice(&length.to_le_bytes());
        self.bytes.extend_from_slice(bytes);
    }

    /// The encoded rows.
    pub fn finish(mut self) -> Vec<u8> {
        self.bytes[4..8].copy_from_slice(&self.rows.to_le_bytes());
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn more_parameters_than_sqlite_can_bind_are_refused() {
        let most = vec![NULL; MAX_PARAMS];
        assert_eq!(decode_params(&most).unwrap().len(), MAX_PARAMS);
        let one_more = vec![NULL; MAX_PARAMS + 1];
        let refused = decode_params(&one_more).unwrap_err();
        assert!(refused.contains("more than 32766 parameters"), "{refused}");
    }

    /// The guest's encoding of `values` (written out by hand, as the WIT specifies it).
    fn packed(values: &[ValueRef<'_>]) -> Vec<u8> {
        let mut rows = PackedRows::new(0);
        for value in values {
            rows.push(*value);
        }
        rows.finish()[8..].to_vec()
    }

    #[test]
    fn every_kind_of_parameter_decodes_without_copying() {
        let values = [
            ValueRef::Null,
            ValueRef::Integer(-7),
            ValueRef::Real(2.5),
            ValueRef::Text(b"h\xc3\xa9"),
            ValueRef::Blob(&[0, 1, 2]),
            ValueRef::Text(b""),
        ];
        let bytes = packed(&values);
        assert_eq!(
            &bytes[..9],
            &[0, 1, 0xf9, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
        );
        let decoded = decode_params(&bytes).unwrap();
        assert_eq!(
            decoded.iter().map(|param| param.0).collect::<Vec<_>>(),
            values
        );
        assert_eq!(decode_params(&[]).unwrap(), []);
    }

    #[test]
    fn malformed_parameters_are_refused_with_the_fault() {
        let refused = |bytes: &[u8]| decode_params(bytes).unwrap_err();
        assert_eq!(refused(&[9]), "parameter at byte 0: unknown tag 9");
        assert_eq!(
            refused(&[0, 1, 1, 2]),
            "parameter at byte 1: truncated number"
        );
        assert_eq!(
            refused(&[3, 5, 0, 0, 0, b'a']),
            "parameter at byte 0: truncated text or blob"
        );
        assert_eq!(
            refused(&[4, 0xff, 0xff, 0xff, 0xff]),
            "parameter at byte 0: truncated text or blob"
        );
        assert_eq!(
            refused(&[3, 1, 0, 0, 0, 0xff]),
            "parameter at byte 0: text is not UTF-8"
        );
    }

    #[test]
    fn rows_carry_their_width_and_count() {
        let mut rows = PackedRows::new(2);
        for (id, name) in [(1, "a"), (2, "b")] {
            rows.start_row();
            rows.push(ValueRef::Integer(id));
            rows.push(ValueRef::Text(name.as_bytes()));
        }
        let bytes = rows.finish();
        assert_eq!(&bytes[..8], &[2, 0, 0, 0, 2, 0, 0, 0]);
        let values = decode_params(&bytes[8..]).unwrap();
        assert_eq!(values.len(), 4);
        assert_eq!(values[3].0, ValueRef::Text(b"b"));
        assert_eq!(PackedRows::new(3).finish(), [3, 0, 0, 0, 0, 0, 0, 0]);
    }
}
