//! The database a command works on (`--db`), looking at its file before anything writes to it,
//! and opening it read-only.
//!
//! SQLite turns any path into a database: it creates a missing file, treats an empty one as an
//! empty database, and the backend switches an existing one to WAL and migrates it. So the
//! demo checks the file first and refuses (leaving it byte-for-byte as it was) anything that
//! is not a FlowFabric database this build can use; the inspection commands only ever open it
//! read-only.

use std::io::Read;
use std::path::{Path, PathBuf};

use clap::Args;
use ff_backend_sqlite_wasm::{EXEC_CORE_TABLE, SCHEMA_VERSION};
use rusqlite::{Connection, OpenFlags};

/// The database every command uses unless `--db` says otherwise.
pub const DEFAULT_DB: &str = "ffwasm-demo.sqlite";

/// The first 16 bytes of every SQLite database file.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// The database a command works on.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArg {
    /// The SQLite database file.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_DB)]
    pub db: PathBuf,
}

/// What is at a database path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// Nothing: the demo creates the file.
    Missing,
    /// An empty file or an empty SQLite database: the demo sets up the schema.
    Empty,
    /// A FlowFabric database at a schema version this build knows.
    FlowFabric {
        /// Its `PRAGMA user_version`.
        schema_version: u32,
    },
}

/// Why a file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    /// The inspection commands never create a database.
    #[error("no database at {0} (run `ffwasm demo` to create one, or pass --db PATH)")]
    Missing(PathBuf),
    /// The inspection commands have nothing to read in an empty database.
    #[error("{0} is empty: it holds no FlowFabric data yet (run `ffwasm demo --db {0}`)")]
    Empty(PathBuf),
    /// The path is a directory or something else that is not a file.
    #[error("{0} is not a file")]
    NotAFile(PathBuf),
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The file does not start with SQLite's header.
    #[error("{0} is not a SQLite database; it was left untouched (choose another file with --db)")]
    NotSqlite(PathBuf),
    /// SQLite cannot read the file's schema or finds it damaged.
    #[error("{path} is a damaged SQLite database ({detail}); it was left untouched")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What SQLite reported.
        detail: String,
    },
    /// A SQLite database of some other application.
    #[error(
        "{path} is a SQLite database but not a FlowFabric one (its tables: {tables}); it was left \
         untouched (choose another file with --db)"
    )]
    Foreign {
        /// The file.
        path: PathBuf,
        /// Its tables, comma-separated.
        tables: String,
    },
    /// A FlowFabric database from a newer build.
    #[error(
        "{path} has FlowFabric schema version {found}, newer than this build's {SCHEMA_VERSION}; \
         it was left untouched (use a newer ffwasm)"
    )]
    TooNew {
        /// The file.
        path: PathBuf,
        /// Its schema version.
        found: u32,
    },
}

/// Examine the file at `path` without changing it. `check_integrity` also runs SQLite's
/// `quick_check` over every page (for the demo, which is about to write).
pub fn examine(path: &Path, check_integrity: bool) -> Result<Found, DatabaseError> {
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Found::Missing),
        Err(source) => {
            return Err(DatabaseError::Unreadable {
                path: path.into(),
                source,
            });
        }
    };
    if !metadata.is_file() {
        return Err(DatabaseError::NotAFile(path.into()));
    }
    if metadata.len() == 0 {
        return Ok(Found::Empty);
    }
    if !starts_with_sqlite_header(path)? {
        return Err(DatabaseError::NotSqlite(path.into()));
    }
    let damaged = |error: rusqlite::Error| DatabaseError::Damaged {
        path: path.into(),
        detail: one_line(&error.to_string()),
    };
    let connection = open_read_only_unchecked(path).map_err(damaged)?;
    let schema_version: u32 = connection
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(damaged)?;
    let tables = table_names(&connection).map_err(damaged)?;
    if check_integrity {
        let verdict: String = connection
            .query_row("PRAGMA quick_check(1)", [], |row| row.get(0))
            .map_err(damaged)?;
        if verdict != "ok" {
            return Err(DatabaseError::Damaged {
                path: path.into(),
                detail: one_line(&verdict),
            });
        }
    }
    if tables.is_empty() && schema_version == 0 {
        return Ok(Found::Empty);
    }
    if schema_version == 0 || !tables.iter().any(|table| table == EXEC_CORE_TABLE) {
        return Err(DatabaseError::Foreign {
            path: path.into(),
            tables: if tables.is_empty() {
                "none".into()
            } else {
                tables.join(", ")
            },
        });
    }
    // The backend refuses a newer schema version too, but only after switching the file to WAL.
    if schema_version > SCHEMA_VERSION {
        return Err(DatabaseError::TooNew {
            path: path.into(),
            found: schema_version,
        });
    }
    Ok(Found::FlowFabric { schema_version })
}

/// Open an existing FlowFabric database read-only for the inspection commands, inside one read
/// transaction: every query of the command sees the same snapshot, even while a demo writes.
pub fn open_read_only(path: &Path) -> Result<Connection, DatabaseError> {
    let damaged = |error: rusqlite::Error| DatabaseError::Damaged {
        path: path.into(),
        detail: one_line(&error.to_string()),
    };
    match examine(path, false)? {
        Found::Missing => Err(DatabaseError::Missing(path.into())),
        Found::Empty => Err(DatabaseError::Empty(path.into())),
        Found::FlowFabric { .. } => {
            let connection = open_read_only_unchecked(path).map_err(damaged)?;
            connection.execute_batch("BEGIN").map_err(damaged)?;
            Ok(connection)
        }
    }
}

/// SQLite's report on one line, without its `*** in database main ***` banner.
fn one_line(report: &str) -> String {
    report
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with("***"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Open `path` read-only; SQLite reads nothing yet.
fn open_read_only_unchecked(path: &Path) -> rusqlite::Result<Connection> {
    Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
}

/// Whether the file begins with SQLite's 16-byte header.
fn starts_with_sqlite_header(path: &Path) -> Result<bool, DatabaseError> {
    let unreadable = |source| DatabaseError::Unreadable {
        path: path.into(),
        source,
    };
    let mut header = [0u8; 16];
    let mut file = std::fs::File::open(path).map_err(unreadable)?;
    let mut filled = 0;
    while filled < header.len() {
        match file.read(&mut header[filled..]).map_err(unreadable)? {
            0 => return Ok(false),
            read => filled += read,
        }
    }
    Ok(&header == SQLITE_HEADER)
}

/// The database's tables, sorted.
fn table_names(connection: &Connection) -> rusqlite::Result<Vec<String>> {
    connection
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")?
        .query_map([], |row| row.get(0))?
        .collect()
}

/// A backend on the FlowFabric database at `path`, for the commands that change it through the
/// guest: a missing or empty file is refused (nothing is created), as is anything
/// [`examine`] refuses.
pub async fn open_backend(
    path: &Path,
) -> anyhow::Result<std::sync::Arc<ff_backend_sqlite_wasm::SqliteBackend>> {
    match examine(path, false)? {
        Found::FlowFabric { .. } => {}
        Found::Missing => return Err(DatabaseError::Missing(path.into()).into()),
        Found::Empty => return Err(DatabaseError::Empty(path.into()).into()),
    }
    let Some(uri) = path.to_str() else {
        anyhow::bail!("{} is not a UTF-8 path", path.display());
    };
    Ok(ff_backend_sqlite_wasm::SqliteBackend::new(uri).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh file path in a new temporary directory (removed with the returned guard).
    fn scratch(name: &str) -> (TempDir, PathBuf) {
        let dir = TempDir::new();
        let path = dir.0.join(name);
        (dir, path)
    }

    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> Self {
            let dir = std::env::temp_dir().join(format!("ffwasm-db-test-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn database(path: &Path, sql: &str) {
        Connection::open(path).unwrap().execute_batch(sql).unwrap();
    }

    #[test]
    fn missing_empty_and_flowfabric_files_are_told_apart() {
        let (_dir, path) = scratch("db.sqlite");
        assert_eq!(examine(&path, true).unwrap(), Found::Missing);
        std::fs::write(&path, b"").unwrap();
        assert_eq!(examine(&path, true).unwrap(), Found::Empty);
        database(
            &path,
            "CREATE TABLE ff_exec_core (x); PRAGMA user_version = 2;",
        );
        assert_eq!(
            examine(&path, true).unwrap(),
            Found::FlowFabric { schema_version: 2 }
        );
    }

    #[test]
    fn other_files_are_refused_and_left_unchanged() {
        let (_dir, path) = scratch("db.sqlite");
        std::fs::write(&path, b"hello, I am a text file").unwrap();
        assert!(matches!(
            examine(&path, true),
            Err(DatabaseError::NotSqlite(_))
        ));
        assert_eq!(std::fs::read(&path).unwrap(), b"hello, I am a text file");

        std::fs::remove_file(&path).unwrap();
        database(&path, "CREATE TABLE notes (x);");
        let error = examine(&path, true).unwrap_err();
        assert!(error.to_string().contains("its tables: notes"), "{error}");

        std::fs::remove_file(&path).unwrap();
        database(
            &path,
            "CREATE TABLE ff_exec_core (x); PRAGMA user_version = 99;",
        );
        let error = examine(&path, true).unwrap_err();
        assert!(error.to_string().contains("schema version 99"), "{error}");
    }

    #[test]
    fn a_damaged_file_is_refused() {
        let (_dir, path) = scratch("db.sqlite");
        let mut bytes = SQLITE_HEADER.to_vec();
        bytes.extend(std::iter::repeat_n(0xA5, 4096));
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(
            examine(&path, true),
            Err(DatabaseError::Damaged { .. })
        ));
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
        assert_eq!(
            one_line("*** in database main ***\nPage 5: bad\nPage 6: worse\n"),
            "Page 5: bad; Page 6: worse"
        );
    }

    #[test]
    fn inspection_needs_an_existing_flowfabric_database() {
        let (_dir, path) = scratch("db.sqlite");
        assert!(matches!(
            open_read_only(&path),
            Err(DatabaseError::Missing(_))
        ));
        assert!(!path.exists(), "inspection must not create the file");
    }
}
