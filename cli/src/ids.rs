//! Execution ids as users type them and as the schema stores them: `{fp:N}:<uuid>` is the
//! partition `N` (`partition_key`) and the UUID as a 16-byte blob (`execution_id`).

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

/// An execution id given on the command line: `{fp:N}:<uuid>`, or a bare UUID (any partition).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecutionKey {
    /// The partition, when the id named one.
    pub partition: Option<u16>,
    /// The execution's UUID.
    pub uuid: Uuid,
}

impl FromStr for ExecutionKey {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (partition, uuid) = match text.strip_prefix("{fp:") {
            Some(rest) => {
                let (partition, uuid) = rest.split_once("}:").ok_or(
                    "expected {fp:N}:<uuid>, e.g. {fp:0}:53ad96d2-6b08-4d0c-86e3-36598db2291c",
                )?;
                let partition = partition.parse().map_err(|_| {
                    format!("the partition {partition:?} is not a number from 0 to 65535")
                })?;
                (Some(partition), uuid)
            }
            None => (None, text),
        };
        let uuid = Uuid::parse_str(uuid).map_err(|_| {
            format!("{uuid:?} is not a UUID (expected {{fp:N}}:<uuid> or a bare UUID)")
        })?;
        Ok(Self { partition, uuid })
    }
}

impl fmt::Display for ExecutionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.partition {
            Some(partition) => write!(f, "{{fp:{partition}}}:{}", self.uuid),
            None => write!(f, "{}", self.uuid),
        }
    }
}

/// The id ff-core prints for the row with `partition_key` and the `execution_id` blob.
pub fn execution_id(partition_key: i64, blob: &[u8]) -> String {
    match Uuid::from_slice(blob) {
        Ok(uuid) => format!("{{fp:{partition_key}}}:{uuid}"),
        Err(_) => format!("{{fp:{partition_key}}}:<malformed {} byte id>", blob.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UUID: &str = "53ad96d2-6b08-4d0c-86e3-36598db2291c";

    #[test]
    fn full_and_bare_ids_parse() {
        let full: ExecutionKey = format!("{{fp:7}}:{UUID}").parse().unwrap();
        assert_eq!(full.partition, Some(7));
        assert_eq!(full.to_string(), format!("{{fp:7}}:{UUID}"));
        let bare: ExecutionKey = UUID.to_uppercase().parse().unwrap();
        assert_eq!(bare.partition, None);
        assert_eq!(bare.uuid, full.uuid);
    }

    #[test]
    fn malformed_ids_say_what_is_wrong() {
        assert!(
            ExecutionKey::from_str("{fp:x}:abc")
                .unwrap_err()
                .contains("partition")
        );
        assert!(
            ExecutionKey::from_str("{fp:1}")
                .unwrap_err()
                .contains("expected")
        );
        assert!(
            ExecutionKey::from_str("nope")
                .unwrap_err()
                .contains("not a UUID")
        );
    }

    #[test]
    fn stored_keys_print_as_ff_core_ids() {
        let uuid = Uuid::parse_str(UUID).unwrap();
        assert_eq!(execution_id(3, uuid.as_bytes()), format!("{{fp:3}}:{UUID}"));
        assert!(execution_id(0, b"short").contains("malformed"));
    }
}
