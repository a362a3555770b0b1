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
    Migration {
        version: 4,
        sql: include_str!("../../migrations/0004_suspension.sql"),
    },
    Migration {
        version: 5,
        sql: include_str!("../../migrations/0005_budgets.sql"),
    },
    Migration {
        version: 6,
        sql: include_str!("../../migrations/0006_streams.sql"),
    },
    Migration {
        version: 7,
        sql: include_str!("../../migrations/0007_workers.sql"),
    },
    Migration {
        version: 8,
        sql: include_str!("../../migrations/0008_execution_idempotency.sql"),
    },
    Migration {
        version: 9,
        sql: include_str!("../../migrations/0009_subscriptions.sql"),
    },
];

/// The newest schema version (SQLite's `PRAGMA user_version`, see `host/migrations/`) this build
/// knows. A backend refuses to open a database with a newer one.
pub const SCHEMA_VERSION: u32 = 9;

/// The table of execution rows, which every database this backend has set up holds (from schema
/// version 1 on): how a tool tells a FlowFabric database from another SQLite file.
pub const EXEC_CORE_TABLE: &str = "ff_exec_core";

/// SQLite's table of sqlx's migrations, which upstream's `ff-backend-sqlite` databases have.
const SQLX_MIGRATIONS_TABLE: &str = "_sqlx_migrations";

/// Refuse a database this backend must not touch, before anything writes to it (the switch to
/// WAL, the migrations): a file that is not a SQLite database, another application's database,
/// an upstream (sqlx) FlowFabric database, a schema newer than this build's. An empty database
/// (a new file) and one this backend set up are accepted. Reads only.
pub(crate) fn check_ours(conn: &Connection, uri: &str) -> Result<(), OpenError> {
    let read_error = |source: rusqlite::Error| match source.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase) => OpenError::NotADatabase {
            uri: uri.to_owned(),
            detail: source.to_string(),
        },
        _ => OpenError::Open {
            uri: uri.to_owned(),
            source,
        },
    };
    let user_version: u32 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(read_error)?;
    let tables: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' \
             ESCAPE '\\' ORDER BY name",
        )
        .and_then(|mut statement| {
            statement
                .query_map([], |row| row.get(0))?
                .collect::<Result<_, _>>()
        })
        .map_err(read_error)?;
    if tables.iter().any(|table| table == SQLX_MIGRATIONS_TABLE) {
        return Err(OpenError::UpstreamDatabase {
            uri: uri.to_owned(),
        });
    }
    if user_version > SCHEMA_VERSION {
        return Err(OpenError::SchemaTooNew {
            uri: uri.to_owned(),
            found: user_version,
            supported: SCHEMA_VERSION,
        });
    }
    let empty = tables.is_empty() && user_version == 0;
    let ours = user_version > 0 && tables.iter().any(|table| table == EXEC_CORE_TABLE);
    if empty || ours {
        Ok(())
    } else {
        Err(OpenError::Foreign {
            uri: uri.to_owned(),
            tables,
            user_version,
        })
    }
}

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
    fn only_empty_databases_and_our_own_are_accepted() {
        let conn = Connection::open_in_memory().unwrap();
        check_ours(&conn, ":memory:").expect("an empty database");
        let mut ours = Connection::open_in_memory().unwrap();
        migrate(&mut ours, ":memory:").unwrap();
        check_ours(&ours, ":memory:").expect("one this backend set up");

        conn.execute_batch("CREATE TABLE invoices (id INTEGER)")
            .unwrap();
        assert!(matches!(
            check_ours(&conn, ":memory:"),
            Err(OpenError::Foreign { tables, user_version: 0, .. }) if tables == ["invoices"]
        ));
        conn.execute_batch("CREATE TABLE _sqlx_migrations (version INTEGER)")
            .unwrap();
        assert!(matches!(
            check_ours(&conn, ":memory:"),
            Err(OpenError::UpstreamDatabase { .. })
        ));
        let versioned = Connection::open_in_memory().unwrap();
        versioned.pragma_update(None, "user_version", 1).unwrap();
        assert!(matches!(
            check_ours(&versioned, ":memory:"),
            Err(OpenError::Foreign { tables, user_version: 1, .. }) if tables.is_empty()
        ));
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
