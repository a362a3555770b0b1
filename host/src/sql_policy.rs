//! What SQL a guest may run: a SQLite authorizer installed once on the connection, switched
//! between the host's own statements (everything allowed) and the guest's.
//!
//! The authorizer decides when a statement is prepared, so a refused statement never runs and
//! never enters the statement cache; switching modes costs one atomic store (installing and
//! removing an authorizer per operation would expire every cached statement).
//!
//! Refused to every guest: transaction control (`BEGIN`, `COMMIT`, `ROLLBACK`, `SAVEPOINT`,
//! `RELEASE`), `ATTACH`/`DETACH`, `PRAGMA` (statements and pragma functions), schema changes
//! (`CREATE`, `DROP`, `ALTER`, `REINDEX`, `ANALYZE`, virtual tables), `load_extension`, writes to
//! SQLite's own `sqlite_*` tables, and anything SQLite reports as unknown. A read-only operation
//! is also refused `INSERT`, `UPDATE` and `DELETE`. (`VACUUM` cannot run inside the host's
//! transaction at all.) The guest sees `error::denied`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use rusqlite::Connection;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};

/// Who is running statements on the connection right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum SqlMode {
    /// The host: migrations, transaction control, tests' seeding.
    Host = 0,
    /// A guest operation that may write.
    GuestWrite = 1,
    /// A guest operation that only reads.
    GuestRead = 2,
}

/// The switch the connection's authorizer reads.
#[derive(Debug, Clone, Default)]
pub(crate) struct SqlPolicy(Arc<AtomicU8>);

impl SqlPolicy {
    /// Install the authorizer on `connection`; it starts in [`SqlMode::Host`].
    pub fn install(connection: &Connection) -> Self {
        let policy = Self::default();
        let mode = Arc::clone(&policy.0);
        connection.authorizer(Some(move |context: AuthContext<'_>| decide(mode.load(Ordering::Acquire), &context.action)));
        policy
    }

    /// Run `work` with the connection in `mode`, back in host mode afterwards.
    pub fn with_mode<T>(&self, mode: SqlMode, work: impl FnOnce() -> T) -> T {
        self.0.store(mode as u8, Ordering::Release);
        let result = work();
        self.0.store(SqlMode::Host as u8, Ordering::Release);
        result
    }
}

/// The authorizer's decision for `action` in `mode` (a `SqlMode` as `u8`).
fn decide(mode: u8, action: &AuthAction<'_>) -> Authorization {
    if mode == SqlMode::Host as u8 {
        return Authorization::Allow;
    }
    let read_only = mode == SqlMode::GuestRead as u8;
    let internal = |table: &str| table.starts_with("sqlite_");
    let allowed = match action {
        AuthAction::Select | AuthAction::Read { .. } | AuthAction::Recursive => true,
        AuthAction::Function { function_name } => !function_name.eq_ignore_ascii_case("load_extension"),
        AuthAction::Insert { table_name } | AuthAction::Delete { table_name } => !read_only && !internal(table_name),
        AuthAction::Update { table_name, .. } => !read_only && !internal(table_name),
        _ => false,
    };
    if allowed { Authorization::Allow } else { Authorization::Deny }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connection() -> (Connection, SqlPolicy) {
        let connection = Connection::open_in_memory().unwrap();
        connection.execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
        let policy = SqlPolicy::install(&connection);
        (connection, policy)
    }

    fn denied(connection: &Connection, sql: &str) -> bool {
        matches!(
            connection.execute_batch(sql),
            Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::AuthorizationForStatementDenied
        )
    }

    #[test]
    fn guests_may_read_and_write_rows_but_nothing_else() {
        let (connection, policy) = connection();
        policy.with_mode(SqlMode::GuestWrite, || {
            connection.execute_batch("INSERT INTO t VALUES (1); UPDATE t SET x = 2; SELECT json_extract('{}', '$'); DELETE FROM t").unwrap();
            for sql in [
                "BEGIN",
                "SAVEPOINT s",
                "ATTACH ':memory:' AS other",
                "PRAGMA user_version = 7",
                "SELECT * FROM pragma_table_info('t')",
                "CREATE TABLE u (x)",
                "DROP TABLE t",
                "ALTER TABLE t ADD COLUMN y",
                "CREATE INDEX i ON t (x)",
            ] {
                assert!(denied(&connection, sql), "{sql} must be denied");
            }
            // SQLite refuses these itself before asking (no `load_extension` in the bundled build;
            // the schema table is read-only); the policy denies them too if it is asked.
            for sql in ["SELECT load_extension('x')", "DELETE FROM sqlite_master"] {
                assert!(connection.execute_batch(sql).is_err(), "{sql} must fail");
            }
            assert_eq!(decide(SqlMode::GuestWrite as u8, &AuthAction::Delete { table_name: "sqlite_master" }), Authorization::Deny);
            assert_eq!(
                decide(SqlMode::GuestWrite as u8, &AuthAction::Function { function_name: "load_extension" }),
                Authorization::Deny
            );
        });
    }

    #[test]
    fn read_only_guests_may_not_write_and_the_host_may_do_anything() {
        let (connection, policy) = connection();
        policy.with_mode(SqlMode::GuestRead, || {
            connection.execute_batch("SELECT * FROM t").unwrap();
            assert!(denied(&connection, "INSERT INTO t VALUES (1)"));
        });
        connection.execute_batch("BEGIN; CREATE TABLE u (x); PRAGMA user_version = 3; COMMIT").unwrap();
    }
}
