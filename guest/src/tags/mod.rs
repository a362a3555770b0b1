//! The `tags` interface: execution tags (flat string members of `raw_fields.tags`) and the
//! execution's namespace (`raw_fields.namespace`).
//!
//! ## `set-execution-tag` ([`set_execution_tag`])
//!
//! | # | check | error |
//! |---|---|---|
//! | 1 | `key` matches `^[a-z][a-z0-9_]*\.[a-z0-9_][a-z0-9_.]*$` ([`validate_tag_key`]) | `Validation(InvalidInput)` |
//! | 2 | `execution_id` parses | `Validation(InvalidInput)` |
//! | 3 | the execution exists | `NotFound(execution)` |
//! | 4 | `raw_fields` is a JSON object and its `tags` member, if any, an object | `Validation(Corruption)` |
//!
//! Writes `raw_fields.tags."<key>" = value` (the key quoted in the JSON path, so its dots are
//! literal; the `tags` object is created when absent) and the change to the instance-tag outbox
//! (`ff_instance_tag_event`, read by `subscribe_instance_tags`): `attached` `<key>=<value>`,
//! preceded by `cleared` `<key>=<old value>` when the tag held another value; setting the value
//! the tag already holds changes nothing and records nothing. No `last_mutation_at`.
//!
//! ## `get-execution-tag` ([`get_execution_tag`]), `get-execution-namespace` ([`get_execution_namespace`])
//!
//! Read-only. Checks 1–2 as above (the namespace read has no key); a missing execution or
//! member (or a JSON `null`) is `None`; unreadable `raw_fields` or a member that is not a string is
//! `Validation(Corruption)`.

use crate::db::{Db, DbExt, text};
use crate::errors::{corruption, invalid_input};
use crate::ids::ExecutionRef;
use crate::types::{EngineError, Entity};

/// `Validation(InvalidInput)` unless `key` matches `^[a-z][a-z0-9_]*\.[a-z0-9_][a-z0-9_.]*$`
/// (ff-core's `validate_tag_key`, same message).
pub fn validate_tag_key(key: &str) -> Result<(), EngineError> {
    let bad = || {
        invalid_input(format!(
            "invalid tag key: {key:?} (must match ^[a-z][a-z0-9_]*\\.[a-z0-9_][a-z0-9_.]*$)"
        ))
    };
    let Some((prefix, name)) = key.split_once('.') else {
        return Err(bad());
    };
    let mut prefix_chars = prefix.chars();
    let prefix_ok = prefix_chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && prefix_chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    let mut name_chars = name.chars();
    let name_ok = name_chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name_chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.');
    if prefix_ok && name_ok {
        Ok(())
    } else {
        Err(bad())
    }
}

/// The JSON path of tag `key` (already validated: no quotes).
pub fn tag_path(key: &str) -> String {
    format!("$.tags.\"{key}\"")
}

/// Set one tag; see the module docs.
pub fn set_execution_tag(
    db: &mut impl Db,
    execution_id: &str,
    key: &str,
    value: &str,
) -> Result<(), EngineError> {
    validate_tag_key(key)?;
    let id = ExecutionRef::parse(execution_id)?;
    let [partition, blob] = id.key();
    let Some(row) = db.first_row(
        "SELECT CASE WHEN json_valid(raw_fields) AND json_type(raw_fields) = 'object' \
             THEN COALESCE(json_type(raw_fields, '$.tags'), 'absent') ELSE 'unreadable' END, \
             CASE WHEN json_valid(raw_fields) AND json_type(raw_fields, ?3) = 'text' \
                 THEN json_extract(raw_fields, ?3) END \
         FROM ff_exec_core WHERE partition_key = ?1 AND execution_id = ?2",
        &[partition.clone(), blob.clone(), text(tag_path(key))],
    )?
    else {
        return Err(EngineError::NotFound(Entity::Execution));
    };
    match row.text(0).as_deref() {
        Some("absent" | "object") => {}
        other => {
            return Err(corruption(format!(
                "set_execution_tag: raw_fields.tags of {execution_id} is {}, not an object",
                other.unwrap_or("unreadable")
            )));
        }
    }
    let previous = row.text(1);
    if previous.as_deref() == Some(value) {
        return Ok(());
    }
    db.run(
        "UPDATE ff_exec_core SET raw_fields = json_set(raw_fields, ?3, ?4) \
         WHERE partition_key = ?1 AND execution_id = ?2",
        &[partition, blob, text(tag_path(key)), text(value)],
    )?;
    if let Some(previous) = previous {
        record_tag_event(db, &id, "cleared", &format!("{key}={previous}"))?;
    }
    record_tag_event(db, &id, "attached", &format!("{key}={value}"))
}

/// Append one row to the instance-tag outbox, at the database's clock (the operation takes no
/// time argument).
fn record_tag_event(
    db: &mut impl Db,
    id: &ExecutionRef,
    event_type: &str,
    tag: &str,
) -> Result<(), EngineError> {
    db.run(
        "INSERT INTO ff_instance_tag_event (execution_id, event_type, tag, occurred_at_ms, partition_key) \
         VALUES (?2, ?3, ?4, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), ?1)",
        &[id.partition(), id.bare_text(), text(event_type), text(tag)],
    )?;
    Ok(())
}

/// One string member of the execution's `raw_fields` at `path`; see the module docs.
fn string_member(
    db: &mut impl Db,
    execution_id: &str,
    path: &str,
) -> Result<Option<String>, EngineError> {
    let id = ExecutionRef::parse(execution_id)?;
    let [partition, blob] = id.key();
    let Some(row) = db.first_row(
        "SELECT CASE WHEN json_valid(raw_fields) THEN json_type(raw_fields, ?3) ELSE 'unreadable' END, \
             CASE WHEN json_valid(raw_fields) THEN json_extract(raw_fields, ?3) END \
         FROM ff_exec_core WHERE partition_key = ?1 AND execution_id = ?2",
        &[partition, blob, text(path)],
    )?
    else {
        return Ok(None);
    };
    match row.text(0).as_deref() {
        None | Some("null") => Ok(None),
        Some("text") => Ok(row.text(1)),
        Some(other) => Err(corruption(format!(
            "raw_fields at {path} of {execution_id} is {other}, not a string"
        ))),
    }
}

/// One tag's value; see the module docs.
pub fn get_execution_tag(
    db: &mut impl Db,
    execution_id: &str,
    key: &str,
) -> Result<Option<String>, EngineError> {
    validate_tag_key(key)?;
    string_member(db, execution_id, &tag_path(key))
}

/// The execution's namespace; see the module docs.
pub fn get_execution_namespace(
    db: &mut impl Db,
    execution_id: &str,
) -> Result<Option<String>, EngineError> {
    string_member(db, execution_id, "$.namespace")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{EXEC, TestDb};
    use crate::types::ValidationKind;

    fn raw_fields(db: &TestDb) -> String {
        db.one("SELECT raw_fields FROM ff_exec_core")
    }

    #[test]
    fn the_key_grammar_matches_ff_core() {
        for good in [
            "cairn.x",
            "a.b",
            "a1_.0",
            "cairn.session_id",
            "c.a.b",
            "c._",
            "c.x..y",
        ] {
            assert_eq!(validate_tag_key(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "Cairn.x",
            "cairn",
            "cairn.",
            "cairn..x",
            "1cairn.x",
            "cairn.foo bar",
            "cairn.foo\"bar",
            "cairn.Foo",
            "cairn.foo-bar",
            ".x",
            "_a.x",
            "é.x",
        ] {
            assert_eq!(
                validate_tag_key(bad),
                Err(invalid_input(format!(
                    "invalid tag key: {bad:?} (must match ^[a-z][a-z0-9_]*\\.[a-z0-9_][a-z0-9_.]*$)"
                ))),
                "{bad}"
            );
        }
    }

    #[test]
    fn set_get_and_overwrite_flat_keys() {
        let mut db = TestDb::runnable();
        db.exec("UPDATE ff_exec_core SET raw_fields = '{\"namespace\":\"ns\"}'");
        assert_eq!(
            get_execution_tag(&mut db, EXEC, "cairn.session_id").unwrap(),
            None
        );
        set_execution_tag(&mut db, EXEC, "cairn.session_id", "s-1").unwrap();
        set_execution_tag(&mut db, EXEC, "cairn.session_id", "s-2").unwrap();
        set_execution_tag(&mut db, EXEC, "cairn.project", "p \"1\"").unwrap();
        assert_eq!(
            raw_fields(&db),
            "{\"namespace\":\"ns\",\"tags\":{\"cairn.session_id\":\"s-2\",\"cairn.project\":\"p \\\"1\\\"\"}}"
        );
        assert_eq!(
            get_execution_tag(&mut db, EXEC, "cairn.project")
                .unwrap()
                .as_deref(),
            Some("p \"1\"")
        );
        assert_eq!(
            get_execution_namespace(&mut db, EXEC).unwrap().as_deref(),
            Some("ns")
        );
    }

    #[test]
    fn tag_changes_are_recorded_in_the_instance_tag_outbox() {
        let mut db = TestDb::runnable();
        db.exec("UPDATE ff_exec_core SET raw_fields = '{}'");
        set_execution_tag(&mut db, EXEC, "cairn.instance_id", "i-1").unwrap();
        set_execution_tag(&mut db, EXEC, "cairn.instance_id", "i-1").unwrap();
        set_execution_tag(&mut db, EXEC, "cairn.instance_id", "i-2").unwrap();
        set_execution_tag(&mut db, EXEC, "cairn.project", "p=1").unwrap();
        assert_eq!(
            db.one(
                "SELECT group_concat(event_type || ' ' || tag || ' ' || execution_id || ' ' || partition_key, ';') \
                 FROM (SELECT * FROM ff_instance_tag_event ORDER BY event_id)"
            ),
            format!(
                "attached cairn.instance_id=i-1 {u} 0;cleared cairn.instance_id=i-1 {u} 0;\
                 attached cairn.instance_id=i-2 {u} 0;attached cairn.project=p=1 {u} 0",
                u = crate::testing::EXEC_UUID
            ),
            "the same value again records nothing; a new value clears the old pair first"
        );
        assert_eq!(
            db.one(
                "SELECT count(*) FROM ff_instance_tag_event WHERE occurred_at_ms > 1700000000000"
            ),
            "4",
            "stamped with the database's clock"
        );
    }

    #[test]
    fn a_tag_write_that_cannot_store_is_an_error_and_writes_nothing() {
        for stored in ["{\"tags\":\"flat\"}", "{\"tags\":[1]}", "[]", "not json"] {
            let mut db = TestDb::runnable();
            db.exec(&format!("UPDATE ff_exec_core SET raw_fields = '{stored}'"));
            let err = db.fails_unchanged(|db| set_execution_tag(db, EXEC, "cairn.x", "v"));
            assert!(
                matches!(err, EngineError::Validation(ref v) if v.kind == ValidationKind::Corruption),
                "{stored}: {err:?}"
            );
        }
    }

    #[test]
    fn missing_executions_and_members_and_bad_input() {
        let mut db = TestDb::new();
        let err = db.fails_unchanged(|db| set_execution_tag(db, EXEC, "cairn.x", "v"));
        assert_eq!(err, EngineError::NotFound(Entity::Execution));
        assert_eq!(get_execution_tag(&mut db, EXEC, "cairn.x").unwrap(), None);
        assert_eq!(get_execution_namespace(&mut db, EXEC).unwrap(), None);
        let err = db.fails_unchanged(|db| set_execution_tag(db, EXEC, "Bad", "v"));
        assert!(
            matches!(err, EngineError::Validation(ref v) if v.kind == ValidationKind::InvalidInput)
        );
        let err = db.fails_unchanged(|db| set_execution_tag(db, "nonsense", "cairn.x", "v"));
        assert!(
            matches!(err, EngineError::Validation(ref v) if v.kind == ValidationKind::InvalidInput)
        );
        db.seed_runnable(EXEC);
        db.exec(
            "UPDATE ff_exec_core SET raw_fields = '{\"namespace\":7,\"tags\":{\"cairn.n\":1}}'",
        );
        for err in [
            get_execution_namespace(&mut db, EXEC).unwrap_err(),
            get_execution_tag(&mut db, EXEC, "cairn.n").unwrap_err(),
        ] {
            assert!(
                matches!(err, EngineError::Validation(ref v) if v.kind == ValidationKind::Corruption),
                "{err:?}"
            );
        }
        db.exec("UPDATE ff_exec_core SET raw_fields = '{\"namespace\":\"\"}'");
        assert_eq!(
            get_execution_namespace(&mut db, EXEC).unwrap().as_deref(),
            Some("")
        );
    }
}
