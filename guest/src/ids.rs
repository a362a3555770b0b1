//! Identifiers: execution ids (`{fp:N}:<uuid>`), lane ids, and fresh random UUIDs.

use crate::db::{Db, DbExt};
use crate::errors::{corruption, invalid_input};
use crate::sql::Value;
use crate::types::EngineError;

/// The longest lane id ff-core's `LaneId::try_new` accepts, in bytes.
const LANE_ID_MAX_BYTES: usize = 64;

/// A parsed execution id: the partition and the UUID, in the forms the schema stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionRef {
    partition: u16,
    uuid: uuid::Uuid,
}

impl ExecutionRef {
    /// Parse `{fp:N}:<uuid>` as ff-core's `ExecutionId::parse` does: the `{fp:` prefix, a
    /// `u16` partition up to the first `}:`, then any UUID form `Uuid::parse_str` accepts.
    pub fn parse(text: &str) -> Result<Self, EngineError> {
        let invalid = |why: &str| invalid_input(format!("execution_id {why}: {text:?}"));
        let rest = text
            .strip_prefix("{fp:")
            .ok_or_else(|| invalid("lacks the {fp:N}: tag"))?;
        let (partition, uuid) = rest
            .split_once("}:")
            .ok_or_else(|| invalid("lacks the {fp:N}: tag"))?;
        let partition = partition
            .parse()
            .map_err(|_| invalid("has an invalid partition"))?;
        let uuid = uuid::Uuid::parse_str(uuid).map_err(|_| invalid("has an invalid UUID"))?;
        Ok(Self { partition, uuid })
    }

    /// The id of the execution stored as `blob` (a 16-byte UUID) on `partition`; `None` when the
    /// blob is not 16 bytes.
    pub fn from_stored(partition: u16, blob: &[u8]) -> Option<Self> {
        let uuid = uuid::Uuid::from_slice(blob).ok()?;
        Some(Self { partition, uuid })
    }

    /// The UUID.
    pub fn uuid(&self) -> uuid::Uuid {
        self.uuid
    }

    /// The partition number.
    pub fn partition_number(&self) -> u16 {
        self.partition
    }

    /// The primary-key parameters `?1` (partition) and `?2` (UUID blob) of the state tables.
    pub fn key(&self) -> [Value; 2] {
        [self.partition(), self.blob()]
    }

    /// The canonical `{fp:N}:<lowercase uuid>` text.
    pub fn canonical(&self) -> String {
        format!("{{fp:{}}}:{}", self.partition, self.uuid.hyphenated())
    }

    /// The `partition_key` column value.
    pub fn partition(&self) -> Value {
        Value::Integer(i64::from(self.partition))
    }

    /// The `execution_id` column value of the state tables: the UUID's 16 bytes.
    pub fn blob(&self) -> Value {
        Value::Blob(self.uuid.as_bytes().to_vec())
    }

    /// The bare lowercase UUID, without the partition tag.
    pub fn bare_uuid(&self) -> String {
        self.uuid.hyphenated().to_string()
    }

    /// The `execution_id` column value of the outbox tables: [`ExecutionRef::bare_uuid`].
    pub fn bare_text(&self) -> Value {
        Value::Text(self.bare_uuid())
    }
}

/// ff-core's `LaneId::try_new` rules: non-empty, at most 64 bytes, printable ASCII only
/// (`0x20..=0x7e`); otherwise `Validation(InvalidInput)` saying which rule failed.
pub fn validate_lane_id(lane_id: &str) -> Result<(), EngineError> {
    if lane_id.is_empty() {
        return Err(invalid_input("lane_id must not be empty"));
    }
    if lane_id.len() > LANE_ID_MAX_BYTES {
        return Err(invalid_input(format!(
            "lane_id is {} bytes (max {LANE_ID_MAX_BYTES})",
            lane_id.len()
        )));
    }
    if let Some(index) = lane_id.bytes().position(|b| !(0x20..=0x7e).contains(&b)) {
        return Err(invalid_input(format!(
            "lane_id has a non-printable byte at index {index}"
        )));
    }
    Ok(())
}

/// A fresh random version-4 UUID from SQLite's `randomblob` (the guest has no randomness).
pub fn random_uuid(db: &mut impl Db) -> Result<uuid::Uuid, EngineError> {
    let row = db
        .first_row("SELECT randomblob(16)", &[])?
        .ok_or_else(|| corruption("randomblob(16) returned no row"))?;
    let bytes: [u8; 16] = match row.0.first() {
        Some(Value::Blob(bytes)) => bytes.as_slice().try_into().ok(),
        _ => None,
    }
    .ok_or_else(|| corruption("randomblob(16) did not return 16 bytes"))?;
    Ok(uuid::Builder::from_random_bytes(bytes).into_uuid())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{EngineError, ValidationKind};

    #[test]
    fn parses_canonical_and_uppercase_ids_to_the_same_bytes() {
        let lower = ExecutionRef::parse("{fp:0}:53ad96d2-6b08-4d0c-86e3-36598db2291c").unwrap();
        let upper = ExecutionRef::parse("{fp:0}:53AD96D2-6B08-4D0C-86E3-36598DB2291C").unwrap();
        assert_eq!(lower, upper);
        assert_eq!(lower.partition(), Value::Integer(0));
        assert_eq!(
            lower.bare_text(),
            Value::Text("53ad96d2-6b08-4d0c-86e3-36598db2291c".into())
        );
        let Value::Blob(bytes) = lower.blob() else {
            panic!("blob")
        };
        assert_eq!(bytes[0], 0x53);
        assert_eq!(bytes.len(), 16);
    }

    #[test]
    fn rejects_malformed_ids_as_invalid_input() {
        for bad in [
            "fp:0:abc",
            "{fp:65536}:53ad96d2-6b08-4d0c-86e3-36598db2291c",
            "{fp:-1}:x",
            "{fp:0}:nope",
            "",
        ] {
            match ExecutionRef::parse(bad) {
                Err(EngineError::Validation(v)) => {
                    assert_eq!(v.kind, ValidationKind::InvalidInput, "{bad}")
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
    }
}
