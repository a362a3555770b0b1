//! What SQL a guest may run, and for how long: a SQLite authorizer and a progress handler
//! installed once on the connection, switched between the host's own statements (everything
//! allowed, no deadline) and the guest's.
//!
//! The progress handler interrupts a guest's statement once the operation's deadline has passed
//! (the epoch deadline only fires while guest code runs, not inside one long SQL call), so one
//! statement cannot hold the database past the operation timeout.
//!
//! The authorizer decides when a statement is prepared, so a refused statement never runs and
//! never enters the statement cache; switching modes costs one atomic store (installing and
//! removing an authorizer per operation would expire every cached statement).
//!
//! Refused to every guest: transaction control (`BEGIN`, `COMMIT`, `ROLLBACK`, `SAVEPOINT`,
//! `RELEASE`), any statement touching the waitpoint keystore (`ff_waitpoint_hmac`: reads and
//! writes, so that token secrets never reach a guest), `ATTACH`/`DETACH`, `PRAGMA` (statements and pragma functions), schema changes
//! (`CREATE`, `DROP`, `ALTER`, `REINDEX`, `ANALYZE`, virtual tables), `load_extension`, writes to
//! SQLite's own `sqlite_*` tables, and anything SQLite reports as unknown. A read-only operation
//! is also refused `INSERT`, `UPDATE` and `DELETE`. (`VACUUM` cannot run inside the host's
//! transaction at all.) The guest sees `error::denied`.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use rusqlite::Connection;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};

/// The waitpoint keystore's table (`super::keystore`): its secrets never reach a guest, so every
/// guest read or write of it is refused. Defined here, with the rest of the policy, so that the
/// standalone SQLite provider (which shares this file) enforces it too.
pub(crate) const KEYSTORE_TABLE: &str = "ff_waitpoint_hmac";

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

/// SQLite virtual-machine steps between two deadline checks.
const PROGRESS_STEPS: i32 = 1_000;

/// The switch the connection's authorizer and progress handler read.
#[derive(Debug, Clone, Default)]
pub(crate) struct SqlPolicy(Arc<PolicyState>);

#[derive(Debug, Default)]
struct PolicyState {
    mode: AtomicU8,
    deadline: Mutex<Option<Instant>>,
    interrupted: AtomicBool,
}

impl PolicyState {
    /// Whether the running statement must stop: a guest is running and its deadline passed.
    fn past_deadline(&self) -> bool {
        if self.mode.load(Ordering::Acquire) == SqlMode::Host as u8 {
            return false;
        }
        let deadline = *self.deadline.lock().unwrap_or_else(PoisonError::into_inner);
        let past = deadline.is_some_and(|deadline| Instant::now() >= deadline);
        if past {
            self.interrupted.store(true, Ordering::Release);
        }
        past
    }
}

impl SqlPolicy {
    /// Install the authorizer and the progress handler on `connection`; they start in
    /// [`SqlMode::Host`].
    pub fn install(connection: &Connection) -> Self {
        let policy = Self::default();
        let state = Arc::clone(&policy.0);
        connection.authorizer(Some(move |context: AuthContext<'_>| {
            decide(state.mode.load(Ordering::Acquire), &context.action)
        }));
        let state = Arc::clone(&policy.0);
        connection.progress_handler(PROGRESS_STEPS, Some(move || state.past_deadline()));
        policy
    }

    /// Run `work` with the connection in `mode` until `deadline`, back in host mode afterwards.
    /// Also returns whether a statement was interrupted because the deadline passed.
    pub fn with_mode<T>(
        &self,
        mode: SqlMode,
        deadline: Instant,
        work: impl FnOnce() -> T,
    ) -> (T, bool) {
        *self
            .0
            .deadline
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(deadline);
        self.0.interrupted.store(false, Ordering::Release);
        self.0.mode.store(mode as u8, Ordering::Release);
        let result = work();
        self.0.mode.store(SqlMode::Host as u8, Ordering::Release);
        *self
            .0
            .deadline
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
        (result, self.0.interrupted.swap(false, Ordering::AcqRel))
    }
}

impl SqlPolicy {
    /// Run `work` in [`SqlMode::Host`] in the middle of a guest's operation (a host import
    /// touching host-owned tables), then give the guest its mode back.
    pub fn as_host<T>(&self, work: impl FnOnce() -> T) -> T {
        let mode = self.0.mode.swap(SqlMode::Host as u8, Ordering::AcqRel);
        let result = work();
        self.0.mode.store(mode, Ordering::Release);
        result
    }
}

/// The authorizer's decision for `action` in `mode` (a `SqlMode` as `u8`).
fn decide(mode: u8, action: &AuthAction<'_>) -> Authorization {
    if mode == SqlMode::Host as u8 {
        return Authorization::Allow;
    }
    let read_only = mode == SqlMode::GuestRead as u8;
    let internal =
        |table: &str| table.starts_with("sqlite_") || table.eq_ignore_ascii_case(KEYSTORE_TABLE);
    let allowed = match action {
        AuthAction::Read { table_name, .. } => !table_name.eq_ignore_ascii_case(KEYSTORE_TABLE),
        AuthAction::Select | AuthAction::Recursive => true,
        AuthAction::Function { function_name } => {
            !function_name.eq_ignore_ascii_case("load_extension")
        }
        AuthAction::Insert { table_name } | AuthAction::Delete { table_name } => {
            !read_only && !internal(table_name)
        }
        AuthAction::Update { table_name, .. } => !read_only && !internal(table_name),
        _ => false,
    };
    if allowed {
        Authorization::Allow
    } else {
        Authorization::Deny
    }
}

/// The host's transaction control: a batch's transaction and the savepoint around each
/// operation in it. Prepared once and kept in the connection's statement cache; the guest may
/// not run them (see [`HOST_STATEMENTS`]).
pub(crate) const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";
pub(crate) const BEGIN_READ: &str = "BEGIN DEFERRED";
pub(crate) const SAVEPOINT: &str = "SAVEPOINT ff_operation";
pub(crate) const RELEASE: &str = "RELEASE ff_operation";
pub(crate) const ROLLBACK_TO: &str = "ROLLBACK TO ff_operation";
pub(crate) const COMMIT: &str = "COMMIT";
pub(crate) const ROLLBACK: &str = "ROLLBACK";

/// The statements the host caches for itself. SQLite's authorizer rules on a statement when it
/// is prepared, not when a cached one runs again, so the `sql` import refuses these exact texts
/// to the guest instead of handing it the host's cached statement.
pub(crate) const HOST_STATEMENTS: [&str; 7] = [
    BEGIN_WRITE,
    BEGIN_READ,
    SAVEPOINT,
    RELEASE,
    ROLLBACK_TO,
    COMMIT,
    ROLLBACK,
];

#[cfg(test)]
mod tests {
    use super::*;

    fn connection() -> (Connection, SqlPolicy) {
        let connection = Connection::open_in_memory().unwrap();
        connection
            .execute_batch(
                "CREATE TABLE t (x INTEGER); \
                 CREATE TABLE ff_waitpoint_hmac (kid TEXT, secret BLOB, rotated_at_ms INTEGER, active INTEGER)",
            )
            .unwrap();
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
        let far = Instant::now() + std::time::Duration::from_secs(60);
        policy.with_mode(SqlMode::GuestWrite, far, || {
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
            for sql in [
                "SELECT secret FROM ff_waitpoint_hmac",
                "SELECT count(kid) FROM FF_WAITPOINT_HMAC",
                "INSERT INTO ff_waitpoint_hmac (kid, secret, rotated_at_ms) VALUES ('k', x'00', 0)",
                "UPDATE ff_waitpoint_hmac SET active = 0",
                "DELETE FROM ff_waitpoint_hmac",
            ] {
                assert!(denied(&connection, sql), "{sql} must be denied");
            }
            // In the middle of a guest operation, the host's own import may use the keystore.
            policy.as_host(|| connection.execute_batch("SELECT secret FROM ff_waitpoint_hmac").unwrap());
            assert!(denied(&connection, "SELECT kid FROM ff_waitpoint_hmac"), "the guest's mode is back");
            // These fail whatever the policy says (extension loading is disabled at run time, the
            // schema table is read-only); the policy denies them too when SQLite asks.
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
        let far = Instant::now() + std::time::Duration::from_secs(60);
        policy.with_mode(SqlMode::GuestRead, far, || {
            connection.execute_batch("SELECT * FROM t").unwrap();
            assert!(denied(&connection, "INSERT INTO t VALUES (1)"));
        });
        connection
            .execute_batch("BEGIN; CREATE TABLE u (x); PRAGMA user_version = 3; COMMIT")
            .unwrap();
    }

    #[test]
    fn a_guest_statement_is_interrupted_at_the_deadline_and_the_host_is_not() {
        let (connection, policy) = connection();
        let slow = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n";
        let started = Instant::now();
        let deadline = started + std::time::Duration::from_millis(50);
        let (result, interrupted) = policy.with_mode(SqlMode::GuestWrite, deadline, || {
            connection.execute_batch(slow)
        });
        assert!(
            matches!(result, Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::OperationInterrupted)
        );
        assert!(interrupted);
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        // In host mode nothing interrupts (a bounded query here, to finish).
        connection.execute_batch("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000) SELECT count(*) FROM n").unwrap();
    }
}
