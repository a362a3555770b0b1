//! FlowFabric execution ids: `{fp:N}:<uuid>`.

use crate::engine::EngineError;
use crate::errors::invalid_input;
use crate::sql::Value;

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

    /// The `execution_id` column value of the outbox tables: the bare lowercase UUID.
    pub fn bare_text(&self) -> Value {
        Value::Text(self.uuid.hyphenated().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{EngineError, ValidationKind};

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
