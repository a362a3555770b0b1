//! The native baseline: the guest's engine logic compiled for the host and run directly on a
//! rusqlite connection, one `BEGIN IMMEDIATE … COMMIT` per operation. It issues exactly the SQL
//! the wasm guest issues, so the difference between the two columns is what the sandbox, the
//! component boundary and the backend's scheduling cost (or save, with group commit).

use std::path::Path;

pub use ff_engine_guest::native_db::NativeDb;
use ff_engine_guest::types::EngineError;
use rusqlite::{Connection, OpenFlags};

/// The backend's page cache setting (64 MiB).
const PAGE_CACHE_KIB: i64 = -65_536;

/// The host's migrations, in order (the baseline's schema is the backend's).
const MIGRATIONS: &[&str] = &[
    include_str!("../../host/migrations/0001_hot_path.sql"),
    include_str!("../../host/migrations/0002_claim_scan.sql"),
    include_str!("../../host/migrations/0003_flows.sql"),
    include_str!("../../host/migrations/0004_suspension.sql"),
    include_str!("../../host/migrations/0005_budgets.sql"),
    include_str!("../../host/migrations/0006_streams.sql"),
    include_str!("../../host/migrations/0007_workers.sql"),
    include_str!("../../host/migrations/0008_execution_idempotency.sql"),
    include_str!("../../host/migrations/0009_subscriptions.sql"),
];

/// A connection with the backend's settings: WAL and `synchronous=FULL` for files, a statement
/// cache of 128, the schema applied.
pub fn open(uri: &str, file: bool) -> anyhow::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(uri, flags)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    if file {
        conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
        conn.pragma_update(None, "synchronous", "FULL")?;
    }
    conn.set_prepared_statement_cache_capacity(128);
    conn.pragma_update(None, "cache_size", PAGE_CACHE_KIB)?;
    conn.pragma_update(None, "temp_store", "FILE")?;
    for migration in MIGRATIONS {
        conn.execute_batch(migration)?;
    }
    Ok(conn)
}

/// A database file path as the URI [`open`] takes.
pub fn file_uri(path: &Path) -> String {
    path.display().to_string()
}

/// Run `operation` in its own `BEGIN IMMEDIATE … COMMIT` (rolled back on an error), as a
/// native backend without group commit would.
pub fn in_transaction<T>(
    conn: &Connection,
    operation: impl FnOnce(&mut NativeDb<'_>) -> Result<T, EngineError>,
) -> anyhow::Result<T> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    match operation(&mut NativeDb(conn)) {
        Ok(value) => {
            conn.execute_batch("COMMIT")?;
            Ok(value)
        }
        Err(error) => {
            conn.execute_batch("ROLLBACK")?;
            anyhow::bail!("native operation failed: {error:?}")
        }
    }
}
