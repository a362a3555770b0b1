//! The schema, as numbered migrations tracked in SQLite's `user_version`.
//!
//! Migrations run at construction inside one `BEGIN IMMEDIATE` transaction, so two processes
//! opening the same file cannot both apply one, and a failed migration leaves nothing behind.

use rusqlite::Connection;

use crate::error::OpenError;

/// One schema step.
struct Migration {
    version: u32,
    sql: &'static str,
}

/// Every migration, in order. `version` is the `user_version` after applying it.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sql: include_str!("../../migrations/0001_hot_path.sql"),
    },
    Migration {
        version: 2,
        sql: include_str!("../../migrations/0002_claim_scan.sql"),
    },
    Migration {
        version: 3,
        sql: include_str!("../../migrations/0003_flows.sql"),
    },
];

/// The newest schema version (SQLite's `PRAGMA user_version`, see `host/migrations/`) this build
/// knows. A backend refuses to open a database with a newer one.
pub const SCHEMA_VERSION: u32 = 3;

/// The table of execution rows, which every database this backend has set up holds (from schema
/// version 1 on): how a tool tells a FlowFabric database from another SQLite file.
pub const EXEC_CORE_TABLE: &str = "ff_exec_core";

/// Bring the database to [`SCHEMA_VERSION`].
pub(crate) fn migrate(conn: &mut Connection, uri: &str) -> Result<(), OpenError> {
    let open_error = |source| OpenError::Open {
        uri: uri.to_owned(),
        source,
    };
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(open_error)?;
    let found: u32 = tx
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(open_error)?;
    if found > SCHEMA_VERSION {
        return Err(OpenError::SchemaTooNew {
            uri: uri.to_owned(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for migration in MIGRATIONS.iter().filter(|m| m.version > found) {
        let migrate_error = |source| OpenError::Migrate {
            uri: uri.to_owned(),
            version: migration.version,
            source,
        };
        tx.execute_batch(migration.sql).map_err(migrate_error)?;
        tx.pragma_update(None, "user_version", migration.version)
            .map_err(migrate_error)?;
    }
    tx.commit().map_err(open_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_version_is_the_last_migration() {
        assert_eq!(MIGRATIONS.last().map(|m| m.version), Some(SCHEMA_VERSION));
        assert!(
            MIGRATIONS
                .windows(2)
                .all(|pair| pair[0].version < pair[1].version)
        );
    }

    #[test]
    fn migrating_twice_is_a_no_op_and_newer_schemas_are_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn, ":memory:").unwrap();
        migrate(&mut conn, ":memory:").unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        assert!(
            matches!(migrate(&mut conn, ":memory:"), Err(OpenError::SchemaTooNew { found, .. }) if found == SCHEMA_VERSION + 1)
        );
    }
}
