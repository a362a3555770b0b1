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
    ///
    /// Which database that is, is SQLite's decision, not the text's: a file is keyed by the
    /// path SQLite resolved (`sqlite3_db_filename`, which undoes percent-encoding and
    /// `//localhost`, and is absolute, so a later `chdir` changes nothing), and its WAL is the
    /// one SQLite names (`sqlite3_filename_wal`); a shared-cache memory database by its name
    /// (whatever the order of the URI's parameters); a private memory database and a temporary
    /// database (`""`) are new databases at every open, as SQLite makes them.
    pub fn open_shared(uri: &str) -> Result<Arc<Self>, OpenError> {
        let location = Location::parse(uri);
        let mut registry = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
        let registry = registry.get_or_insert_with(HashMap::new);
        registry.retain(|_, database| database.strong_count() > 0);
        // A database whose connection was closed after a failure (a writer panic, a failed
        // sync) is replaced: its backends keep failing with `ConnectionLost`, new ones get a
        // new connection.
        let live = |key: &str| {
            registry
                .get(key)
                .and_then(Weak::upgrade)
                .filter(|database| !database.slot.is_lost())
        };
        let (key, connection, file) = match &location {
            Location::Memory { key, .. } => {
                if let Some(database) = live(key) {
                    return Ok(database);
                }
                (key.clone(), location.connect(uri)?, None)
            }
            Location::File { .. } => {
                let connection = location.connect(uri)?;
                match resolved_file(&connection) {
                    Some(file) => {
                        let key = absolute(Path::new(&file.target)).display().to_string();
                        if let Some(database) = live(&key) {
                            return Ok(database);
                        }
                        (key, connection, Some(file))
                    }
                    None => (unique_key("temporary"), connection, None),
                }
            }
        };
        let connection = configure(connection, uri, file.is_some())?;
        let slot = Arc::new(ConnectionSlot::new(connection));
        let memory = file.is_none();
        let writer = Writer::start(Arc::clone(&slot), file).map_err(|error| {
            OpenError::Guest(format!("cannot start the writer thread: {error}"))
        })?;
        let database = Arc::new(Self {
            key: key.clone(),
            slot,
            writer,
            memory,
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

    /// The registry key: the absolute file path SQLite resolved, `memory:<name>` for a
    /// shared-cache memory database, a unique `memory-private:<n>` or `temporary:<n>` otherwise.
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

    /// Whether the database lives in memory or in a temporary file SQLite deletes on close (its
    /// operations never wait for a disk).
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
        /// The registry key: `memory:<name>` for a shared-cache database (its percent-decoded
        /// name: every URI naming it shares it, as in SQLite), a unique key for a private one.
        key: String,
    },
    /// A database file (or `""`, a temporary database), given as a path or a `file:` URI;
    /// which file is SQLite's decision once it is open (see [`Database::open_shared`]).
    File {
        /// The string SQLite opens.
        target: String,
    },
}

impl Location {
    /// Classify `uri` as upstream does: exactly `:memory:`, a `file::memory:` prefix, or a
    /// `file:` URI whose query has an exact `mode=memory` pair is memory; anything else is a file.
    pub fn parse(uri: &str) -> Self {
        if uri == ":memory:" {
            let uri = "file::memory:?cache=shared";
            return Self::Memory {
                key: memory_key(uri),
                uri: uri.to_owned(),
            };
        }
        if let Some(rest) = uri.strip_prefix("file:") {
            let (_, query) = split_uri(rest);
            if rest.starts_with(":memory:") || query.split('&').any(|pair| pair == "mode=memory") {
                return Self::Memory {
                    key: memory_key(uri),
                    uri: uri.to_owned(),
                };
            }
        }
        Self::File {
            target: uri.to_owned(),
        }
    }

    /// Open the database with the host's flags (a file through `ff-gather`) and busy handler;
    /// nothing is read or written yet.
    fn connect(&self, given: &str) -> Result<Connection, OpenError> {
        let open_error = |source| OpenError::Open {
            uri: given.to_owned(),
            source,
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = match self {
            Self::Memory { uri, .. } => Connection::open_with_flags(uri, flags),
            Self::File { target } => {
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
        Ok(conn)
    }
}

/// `rest` (a `file:` URI without its scheme) split into its path and query, without a fragment.
fn split_uri(rest: &str) -> (&str, &str) {
    let rest = rest.split('#').next().unwrap_or_default();
    rest.split_once('?').unwrap_or((rest, ""))
}

/// The registry key of the memory database `uri` (see [`Location::Memory`]).
fn memory_key(uri: &str) -> String {
    let rest = uri.strip_prefix("file:").unwrap_or(uri);
    let (name, query) = split_uri(rest);
    // SQLite's last `cache=` wins; without one, a memory database is private.
    let shared = query
        .split('&')
        .filter_map(|pair| pair.strip_prefix("cache="))
        .next_back()
        == Some("shared");
    if shared {
        format!("memory:{}", percent_decode(name))
    } else {
        unique_key("memory-private")
    }
}

/// `prefix:<n>` with a number no other key of this process has.
fn unique_key(prefix: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{prefix}:{n}")
}

/// `text` with `%XX` escapes decoded, as SQLite decodes a URI's path (an invalid escape stays).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|pair| std::str::from_utf8(pair).ok())
            .and_then(|pair| u8::from_str_radix(pair, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                decoded.push(byte);
                i += 3;
            }
            (byte, _) => {
                decoded.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

/// The database file `connection` has open and its WAL, as SQLite names them; `None` for a
/// temporary database (`""`), which has no file name.
fn resolved_file(connection: &Connection) -> Option<DatabaseFile> {
    // SAFETY: `handle` is this open connection's own pointer; the returned strings are
    // SQLite's, valid while the connection is open, and copied at once.
    unsafe {
        let name = rusqlite::ffi::sqlite3_db_filename(connection.handle(), c"main".as_ptr());
        if name.is_null() || *name == 0 {
            return None;
        }
        let wal = rusqlite::ffi::sqlite3_filename_wal(name);
        if wal.is_null() {
            return None;
        }
        let text = |pointer| {
            std::ffi::CStr::from_ptr(pointer)
                .to_string_lossy()
                .into_owned()
        };
        Some(DatabaseFile {
            target: text(name),
            wal: text(wal).into(),
        })
    }
}

/// Apply the connection settings and the migrations to a freshly opened `conn`; `durable` for a
/// database file (WAL mode, synced by the writer's sync thread).
fn configure(mut conn: Connection, given: &str, durable: bool) -> Result<Connection, OpenError> {
    let open_error = |source| OpenError::Open {
        uri: given.to_owned(),
        source,
    };
    // Before anything writes: a file that is not ours stays byte for byte as it was.
    schema::check_ours(&conn, given)?;
    if durable {
        let journal_mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(open_error)?;
        if !journal_mode.eq_ignore_ascii_case("wal") {
            return Err(OpenError::NotWal {
                uri: given.to_owned(),
                journal_mode,
            });
        }
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
    // SQLite's temporary storage (sorts, `DISTINCT`, temporary b-trees, savepoint journals)
    // lives in memory up to the page caches and SQLite's 64 KiB journal spill, beyond that in
    // unlinked temporary files: a guest's statement cannot grow it in memory without bound
    // (with `MEMORY` it grew until the deadline). Small ones never touch a file.
    conn.pragma_update(None, "temp_store", "FILE")
        .map_err(open_error)?;
    limit_value_length(&conn);
    schema::migrate(&mut conn, given)?;
    // After the migrations, whose scripts are longer: every later statement is one of the
    // host's or a guest's.
    limit_statement_length(&conn);
    Ok(conn)
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

/// The longest SQL text a statement may have on the host's connections (SQLite's default is
/// 1 GB): the statement cache keeps up to 128 compiled statements between operations, and a
/// compiled statement grows with its text, so this bounds what a guest's cached statements can
/// hold (SQLite's own hardening advice suggests this figure). The built-in guest's longest
/// statement is under 2 KB.
pub(crate) const MAX_STATEMENT_LENGTH: i32 = 100_000;

fn limit_statement_length(conn: &Connection) {
    // SAFETY: as in `limit_value_length`.
    unsafe {
        rusqlite::ffi::sqlite3_limit(
            conn.handle(),
            rusqlite::ffi::SQLITE_LIMIT_SQL_LENGTH,
            MAX_STATEMENT_LENGTH,
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
    use crate::storage::faults::{self, create_probe_table, insert};

    fn is_memory(uri: &str) -> bool {
        matches!(Location::parse(uri), Location::Memory { .. })
    }

    /// A new empty directory for one test.
    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ffwasm-db-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::canonicalize(dir).unwrap()
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
    }

    #[test]
    fn a_shared_memory_database_is_one_database_whatever_its_uri_spells() {
        let key = |uri: &str| match Location::parse(uri) {
            Location::Memory { key, .. } => key,
            Location::File { .. } => panic!("{uri} is memory"),
        };
        assert_eq!(key(":memory:"), key("file::memory:?cache=shared"));
        assert_eq!(
            key("file:abc?mode=memory&cache=shared"),
            key("file:abc?cache=shared&mode=memory#frag")
        );
        assert_eq!(
            key("file:a%62c?mode=memory&cache=shared"),
            key("file:abc?mode=memory&cache=shared")
        );
        // Without a shared cache SQLite gives every connection its own memory database.
        assert_ne!(key("file:abc?mode=memory"), key("file:abc?mode=memory"));

        let one = Database::open_shared("file:reordered?mode=memory&cache=shared").unwrap();
        let other = Database::open_shared("file:reordered?cache=shared&mode=memory").unwrap();
        assert!(Arc::ptr_eq(&one, &other), "one writer for the database");
        let first = Database::open_shared("file:private?mode=memory").unwrap();
        let second = Database::open_shared("file:private?mode=memory").unwrap();
        assert!(!Arc::ptr_eq(&first, &second));
        create_probe_table(&first);
        assert_eq!(insert(&first, 1, 0), Ok(()));
        let tables: i64 = second
            .lock()
            .as_ref()
            .unwrap()
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'probe'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(tables, 0, "a private memory database is its own");
    }

    /// Every spelling SQLite resolves to `file` opens the one database with one writer, whose
    /// commits are synced (a sync of another file would fail them with `SyncFailed`).
    fn assert_spellings_share_one_database(file: &Path, spellings: &[String]) {
        let plain = Database::open_shared(file.to_str().unwrap()).unwrap();
        create_probe_table(&plain);
        assert_eq!(plain.key(), file.display().to_string());
        for (n, spelling) in spellings.iter().enumerate() {
            let database = Database::open_shared(spelling)
                .unwrap_or_else(|error| panic!("{spelling}: {error}"));
            assert!(Arc::ptr_eq(&plain, &database), "{spelling} is {file:?}");
            assert_eq!(insert(&database, n as i64, 0), Ok(()), "{spelling}");
        }
        let mut wal = file.as_os_str().to_owned();
        wal.push("-wal");
        assert!(Path::new(&wal).exists(), "the WAL beside {file:?}");
        assert_eq!(faults::directory_syncs(Path::new(&wal)), 1);
    }

    #[test]
    fn percent_encoded_and_localhost_uris_name_the_file_sqlite_opens() {
        let dir = temp_dir("spellings");
        let file = dir.join("a b%.sqlite");
        let encoded = format!("{}/a%20b%25.sqlite", dir.display());
        assert_spellings_share_one_database(
            &file,
            &[
                format!("file:{encoded}"),
                format!("file://localhost{encoded}?mode=rwc"),
                format!("file://{encoded}"),
                format!("{}/./a b%.sqlite", dir.display()),
            ],
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_wal_directory_is_synced_once_when_the_wal_is_created() {
        let dir = temp_dir("dirsync");
        let file = dir.join("d.sqlite");
        let database = Database::open_shared(file.to_str().unwrap()).unwrap();
        create_probe_table(&database);
        let wal = dir.join("d.sqlite-wal");
        for n in 0..5 {
            assert_eq!(insert(&database, n, 100), Ok(()));
            assert_eq!(
                faults::directory_syncs(&wal),
                1,
                "after commit {n}: once, with the first sync"
            );
        }
        drop(database);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn statements_longer_than_the_limit_are_refused() {
        let database = Database::open_shared("file:long-sql?mode=memory&cache=shared").unwrap();
        let connection = database.lock();
        let connection = connection.as_ref().unwrap();
        let statement = |length: usize| {
            let prefix = "SELECT 1 WHERE 1 IN (1";
            let mut sql = prefix.to_owned();
            while sql.len() + 3 < length {
                sql.push_str(",1");
            }
            sql.push(')');
            sql
        };
        let longest = statement(MAX_STATEMENT_LENGTH as usize);
        assert!(connection.prepare(&longest).is_ok());
        let refused = connection
            .prepare(&statement(MAX_STATEMENT_LENGTH as usize + 10))
            .unwrap_err();
        assert!(refused.to_string().contains("too long"), "{refused}");
    }

    #[test]
    fn temporary_databases_are_each_their_own_and_answer_without_a_wal() {
        let one = Database::open_shared("").unwrap();
        let other = Database::open_shared("").unwrap();
        assert!(
            !Arc::ptr_eq(&one, &other),
            "SQLite makes a new one per open"
        );
        assert!(one.is_memory(), "nothing to sync");
        create_probe_table(&one);
        assert_eq!(insert(&one, 1, 10), Ok(()), "never SyncFailed");
    }

    #[test]
    fn a_database_that_cannot_be_in_wal_mode_is_refused_before_anything_commits() {
        // Without locks SQLite cannot share a WAL index: it keeps the rollback journal.
        let dir = temp_dir("not-wal");
        let file = dir.join("n.sqlite");
        let refused = Database::open_shared(&format!("file:{}?nolock=1", file.display()));
        match refused {
            Err(OpenError::NotWal { journal_mode, .. }) => assert_eq!(journal_mode, "delete"),
            Err(other) => panic!("expected NotWal, got {other}"),
            Ok(_) => panic!("expected NotWal, got a database"),
        }
        assert_eq!(
            std::fs::metadata(&file).unwrap().len(),
            0,
            "nothing written"
        );
        assert!(!dir.join("n.sqlite-wal").exists());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
