//! Opening SQLite: which strings mean a file and which an in-memory database, the connection
//! settings, and the per-process registry that gives each database exactly one connection and
//! one writer thread.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::batch::Job;
use super::connection::{CommitStats, ConnectionSlot};
use super::durability::DatabaseFile;
use super::writer::{Submitted, Writer};
use super::{schema, wal_gather};
use crate::error::OpenError;
use crate::wake::Wakes;

/// One open database: its registry key, its connection and the writer thread that runs every
/// operation on it ([`super::writer`]).
pub(crate) struct Database {
    key: String,
    slot: Arc<ConnectionSlot>,
    writer: Writer,
    memory: bool,
    wakes: Arc<Wakes>,
}

/// Open databases by key; entries die with the last backend using them.
static REGISTRY: Mutex<Option<HashMap<String, Weak<Database>>>> = Mutex::new(None);

impl Database {
    /// The database `uri` names, opened (and migrated) if no live backend has it open already.
    pub fn open_shared(uri: &str) -> Result<Arc<Self>, OpenError> {
        let location = Location::parse(uri);
        let key = location.key();
        let mut registry = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
        let registry = registry.get_or_insert_with(HashMap::new);
        registry.retain(|_, database| database.strong_count() > 0);
        // A database whose connection a writer panic took down is replaced: its backends keep
        // failing with `ConnectionLost`, new ones get a new connection.
        if let Some(database) = registry.get(&key).and_then(Weak::upgrade)
            && !database.slot.is_lost()
        {
            return Ok(database);
        }
        let connection = location.open(uri)?;
        let slot = Arc::new(ConnectionSlot::new(connection));
        let file = match &location {
            Location::Memory { .. } => None,
            Location::File { path, target } => {
                let mut wal = path.clone().into_os_string();
                wal.push("-wal");
                Some(DatabaseFile {
                    target: target.clone(),
                    wal: wal.into(),
                })
            }
        };
        let writer = Writer::start(Arc::clone(&slot), file).map_err(|error| {
            OpenError::Guest(format!("cannot start the writer thread: {error}"))
        })?;
        let database = Arc::new(Self {
            key: key.clone(),
            slot,
            writer,
            memory: matches!(location, Location::Memory { .. }),
            wakes: Arc::new(Wakes::default()),
        });
        registry.insert(key, Arc::downgrade(&database));
        tracing::info!(database = %database.key, "opened SQLite database for the FlowFabric wasm backend (dev-only)");
        Ok(database)
    }

    /// The wake-ups of this database's long-lived reads (see [`crate::wake`]).
    pub fn wakes(&self) -> &Arc<Wakes> {
        &self.wakes
    }

    /// The registry key: the absolute file path, or the in-memory URI.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// What this database's transactions committed so far.
    pub fn commit_stats(&self) -> CommitStats {
        self.slot.commit_stats()
    }

    /// Lock the connection between batches (for tests that seed and inspect rows).
    pub fn lock(&self) -> MutexGuard<'_, Option<Connection>> {
        self.slot.lock()
    }

    /// Queue an operation for the writer thread (see [`Writer::submit`]); gives it back if the
    /// thread is gone.
    pub fn submit(&self, job: Box<dyn Job>) -> Result<Submitted, Box<dyn Job>> {
        self.writer.submit(job)
    }

    /// Whether the database lives in memory (its operations never wait for a disk).
    pub fn is_memory(&self) -> bool {
        self.memory
    }
}

/// SQLite's page cache per connection: 64 MiB (`cache_size` is in KiB when negative), up from
/// SQLite's 2 MiB, so that the hot pages of a large queue stay in memory.
pub(crate) const PAGE_CACHE_KIB: i64 = -65_536;

/// How long a statement waits for another process's lock before failing with `busy`.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_millis(5_000);

/// How often a connection waiting for another process's lock tries again.
const BUSY_POLL: Duration = Duration::from_millis(1);

/// SQLite's busy handler: poll every [`BUSY_POLL`] until [`BUSY_TIMEOUT`] has passed since the
/// first refusal. (SQLite's own `busy_timeout` backs off to 100 ms sleeps, so a process that
/// commits back to back can starve another until its timeout; polling often takes the lock in
/// the gaps between the other's transactions.)
fn wait_for_lock(attempt: i32) -> bool {
    thread_local! {
        static WAITING_SINCE: std::cell::Cell<Option<std::time::Instant>> = const { std::cell::Cell::new(None) };
    }
    let now = std::time::Instant::now();
    let since = WAITING_SINCE.with(|since| {
        if attempt == 0 || since.get().is_none() {
            since.set(Some(now));
        }
        since.get().unwrap_or(now)
    });
    if now.duration_since(since) >= BUSY_TIMEOUT {
        return false;
    }
    std::thread::sleep(BUSY_POLL);
    true
}

/// Where a database lives, parsed from the string given to `SqliteBackend::new`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Location {
    /// An in-memory database: `:memory:`, `file::memory:…`, or a `file:` URI with `mode=memory`.
    Memory {
        /// The URI SQLite opens (`:memory:` becomes `file::memory:?cache=shared`).
        uri: String,
    },
    /// A database file, given as a path or a `file:` URI.
    File {
        /// The string SQLite opens.
        target: String,
        /// The file's path, for the registry key.
        path: PathBuf,
    },
}

impl Location {
    /// Classify `uri` as upstream does: exactly `:memory:`, a `file::memory:` prefix, or a
    /// `file:` URI whose query has an exact `mode=memory` pair is memory; anything else is a file.
    pub fn parse(uri: &str) -> Self {
        if uri == ":memory:" {
            return Self::Memory {
                uri: "file::memory:?cache=shared".to_owned(),
            };
        }
        if uri.starts_with("file::memory:") {
            return Self::Memory {
                uri: uri.to_owned(),
            };
        }
        if let Some(rest) = uri.strip_prefix("file:") {
            let rest = rest.split('#').next().unwrap_or_default();
            let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
            if query.split('&').any(|pair| pair == "mode=memory") {
                return Self::Memory {
                    uri: uri.to_owned(),
                };
            }
            return Self::File {
                target: uri.to_owned(),
                path: PathBuf::from(path),
            };
        }
        Self::File {
            target: uri.to_owned(),
            path: PathBuf::from(uri),
        }
    }

    /// The registry key: the URI for memory databases, the absolute file path for files (the
    /// same file reached through different relative paths or links shares one key).
    pub fn key(&self) -> String {
        match self {
            Self::Memory { uri } => uri.clone(),
            Self::File { path, .. } => absolute(path).display().to_string(),
        }
    }

    /// Open the database, apply the connection settings and the migrations.
    pub fn open(&self, given: &str) -> Result<Connection, OpenError> {
        let open_error = |source| OpenError::Open {
            uri: given.to_owned(),
            source,
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let target = match self {
            Self::Memory { uri } => uri,
            Self::File { target, .. } => target,
        };
        let mut conn = match self {
            Self::Memory { .. } => Connection::open_with_flags(target, flags),
            Self::File { .. } => {
                // The WAL's writes are gathered into one per commit (see `wal_gather`).
                wal_gather::register().map_err(|code| {
                    open_error(rusqlite::Error::SqliteFailure(
                        rusqlite::ffi::Error::new(code),
                        Some("cannot register the ff-gather VFS".into()),
                    ))
                })?;
                Connection::open_with_flags_and_vfs(target, flags, wal_gather::VFS_NAME)
            }
        }
        .map_err(open_error)?;
        conn.busy_handler(Some(wait_for_lock)).map_err(open_error)?;
        // Before anything writes: a file that is not ours stays byte for byte as it was.
        schema::check_ours(&conn, given)?;
        if let Self::File { .. } = self {
            conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
                .map_err(open_error)?;
            // `FULL` makes SQLite sync the WAL before it publishes a commit, which is where
            // `wal_gather` writes the commit's frames; that sync goes no further than the
            // file. Durability comes from the sync thread's `fdatasync` of the WAL before any
            // answer (see `durability`), which equals `FULL` for every answered operation.
            // `checkpoint_fullfsync` marks the syncs that guard the database file (before a
            // checkpoint, after a WAL restart) so that `wal_gather` passes them to the disk.
            conn.pragma_update(None, "synchronous", "FULL")
                .map_err(open_error)?;
            conn.pragma_update(None, "checkpoint_fullfsync", "ON")
                .map_err(open_error)?;
            // Checkpoints run when the durability layer asks for them (see `durability::Checkpointer`).
            conn.pragma_update(None, "wal_autocheckpoint", 0)
                .map_err(open_error)?;
        }
        conn.set_prepared_statement_cache_capacity(128);
        conn.pragma_update(None, "cache_size", PAGE_CACHE_KIB)
            .map_err(open_error)?;
        // Savepoint journals (one per operation in a batch) and sorts stay in memory.
        conn.pragma_update(None, "temp_store", "MEMORY")
            .map_err(open_error)?;
        limit_value_length(&conn);
        schema::migrate(&mut conn, given)?;
        Ok(conn)
    }
}

/// The longest string or blob SQLite may build on this connection (64 MiB, down from 1 GB), so
/// that a statement such as `SELECT zeroblob(1e9)` fails inside SQLite instead of allocating.
/// Payloads are at most 8 MiB (`MAX_PAYLOAD_BYTES` in the guest).
const MAX_VALUE_LENGTH: i32 = 64 << 20;

fn limit_value_length(conn: &Connection) {
    // SAFETY: `handle` is this open connection's own pointer, used for one `sqlite3_limit` call
    // on the thread that owns the connection.
    unsafe {
        rusqlite::ffi::sqlite3_limit(
            conn.handle(),
            rusqlite::ffi::SQLITE_LIMIT_LENGTH,
            MAX_VALUE_LENGTH,
        );
    }
}

/// `path` made absolute with its directory resolved (the file itself may not exist yet).
fn absolute(path: &Path) -> PathBuf {
    if let Ok(resolved) = std::fs::canonicalize(path) {
        return resolved;
    }
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    match (std::fs::canonicalize(parent), path.file_name()) {
        (Ok(dir), Some(name)) => dir.join(name),
        _ => path.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_memory(uri: &str) -> bool {
        matches!(Location::parse(uri), Location::Memory { .. })
    }

    #[test]
    fn classifies_memory_and_file_uris_like_upstream() {
        assert!(is_memory(":memory:"));
        assert!(is_memory("file::memory:"));
        assert!(is_memory("file::memory:?cache=shared"));
        assert!(is_memory("file:abc?mode=memory&cache=shared"));
        assert!(is_memory("file:abc?cache=shared&mode=memory#frag"));
        assert!(!is_memory("file:my_mode=memory_db.sqlite"));
        assert!(!is_memory("file:abc?mode=memory_extra"));
        assert!(!is_memory("data.sqlite"));
        assert_eq!(
            Location::parse(":memory:").key(),
            "file::memory:?cache=shared"
        );
    }

    #[test]
    fn a_file_has_one_key_before_and_after_it_exists() {
        let dir = std::env::temp_dir().join(format!("ffwasm-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("k.sqlite");
        let before = Location::parse(file.to_str().unwrap()).key();
        std::fs::write(&file, b"").unwrap();
        let after = Location::parse(file.to_str().unwrap()).key();
        let via_uri = Location::parse(&format!("file:{}?mode=rwc", file.display())).key();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(before, after);
        assert_eq!(after, via_uri);
    }
}
