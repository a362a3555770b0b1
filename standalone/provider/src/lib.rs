//! The SQLite provider component: FlowFabric's `sql` interface over a database file, for running
//! the engine guest outside our host (README, "Outside the host").
//!
//! It applies the rules our host applies to a guest, reusing the host's own code where it has no
//! wasmtime in it: the authorizer policy (`host/src/storage/policy.rs`: no transaction control,
//! `ATTACH`, `PRAGMA`, schema changes or extensions) and the packed value format
//! (`host/src/sql/packed.rs`) are compiled in from the host's files; the row and byte limits are
//! the host's defaults (`GuestLimits::default()`); the migrations are the host's
//! (`host/migrations/*.sql`, embedded by `build.rs`), applied when the database is opened.
//!
//! The database is `$FF_DB` (default `flowfabric.sqlite`), a path inside a directory the runtime
//! preopened. It is opened at the first `transaction.begin`.
//!
//! The `waitpoint-tokens` import the guest's suspension family uses is served here too, from
//! the keystore table (`host/src/storage/keystore.rs`, compiled in) with upstream's token format;
//! as in our host, the guest's own SQL can neither read nor change that table.
//!
//! # Transactions
//!
//! Every `sql` call must run inside a transaction started with `transaction.begin`; a call
//! outside one traps, as it does in our host (the adapter that `ffwasm guest compose` puts in
//! front of the guest opens and closes one per engine operation).
//!
//! # Locking
//!
//! WASI has no POSIX advisory locks, so the provider uses SQLite's `unix-dotfile` VFS: a writer
//! holds a `<db>.lock` directory for the length of its transaction. Two processes running the
//! provider on the same file therefore exclude each other (the second waits up to
//! [`BUSY_TIMEOUT`], then its operation traps). A process that dies inside a transaction leaves
//! the directory behind and every later open reports the database as locked until it is removed
//! (the transaction itself is rolled back from SQLite's journal at the next open). A native
//! process (our host) sees none of this, and the provider cannot see its locks: a database that
//! has a `<db>-shm` file (our host keeps one while it has the file open in WAL mode) is refused
//! rather than risked. A WAL database that no process has open is taken over: the provider
//! switches it to rollback-journal mode (our host switches it back when it opens it).

use std::cell::RefCell;
use std::time::{Duration, Instant};

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, ErrorCode, OpenFlags, ToSql};

/// The host's authorizer policy, compiled in from the host's file.
#[path = "../../../host/src/storage/policy.rs"]
mod policy;

/// The host's waitpoint keystore queries, compiled in from the host's file (seeding and
/// rotation are the host's: this provider only signs and verifies).
#[path = "../../../host/src/storage/keystore.rs"]
#[allow(dead_code)]
mod keystore;

/// The host's packed value format, compiled in from the host's file.
#[path = "../../../host/src/sql/packed.rs"]
mod packed;

include!(concat!(env!("OUT_DIR"), "/migrations.rs"));

wit_bindgen::generate!({
    path: ["../../wit", "../wit"],
    world: "flowfabric:standalone/sqlite-provider",
});

use exports::flowfabric::backend::sql::{self, ExecResult, Rows, SqliteFailure, Value};
use exports::flowfabric::backend::waitpoint_tokens::{self, SignedToken, TokenError};
use hmac::{Hmac, Mac};
use policy::{HOST_STATEMENTS, SqlMode, SqlPolicy};
use sha2::Sha256;

/// Rows one `query` may return (the host's default `GuestLimits::query_rows`).
const MAX_ROWS: usize = 10_000;
/// Bytes one `query` may return (the host's default `GuestLimits::query_bytes`).
const MAX_BYTES: usize = 16 << 20;
/// The longest string or blob SQLite may build (the host's `MAX_VALUE_LENGTH`).
const MAX_VALUE_LENGTH: i32 = 64 << 20;
/// How long a statement waits for another process's lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// The VFS: locks that work without POSIX locks (see the module documentation).
const VFS: &str = "unix-dotfile";
/// The database when `FF_DB` is not set.
const DEFAULT_DATABASE: &str = "flowfabric.sqlite";

/// The open database and whether an operation's transaction is running.
struct Database {
    path: String,
    connection: Connection,
    policy: SqlPolicy,
    in_transaction: bool,
}

thread_local! {
    static DATABASE: RefCell<Option<Database>> = const { RefCell::new(None) };
}

/// Why a statement failed, before it becomes a `sql.error`.
enum Failure {
    Sqlite(rusqlite::Error),
    Denied(String),
    TooLarge(String),
}

impl From<rusqlite::Error> for Failure {
    fn from(error: rusqlite::Error) -> Self {
        Self::Sqlite(error)
    }
}

impl From<Failure> for sql::Error {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Sqlite(error) => classify(error),
            Failure::Denied(why) => sql::Error::Denied(why),
            Failure::TooLarge(what) => sql::Error::TooLarge(what),
        }
    }
}

/// The `sql.error` case for a SQLite error (the host's classification).
fn classify(error: rusqlite::Error) -> sql::Error {
    let message = error.to_string();
    match &error {
        rusqlite::Error::SqliteFailure(failure, _) => match failure.code {
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => sql::Error::Busy,
            ErrorCode::ConstraintViolation => sql::Error::Constraint(message),
            ErrorCode::AuthorizationForStatementDenied => sql::Error::Denied(message),
            _ if message.contains("not authorized") => sql::Error::Denied(message),
            _ => sql::Error::Failure(SqliteFailure {
                code: failure.extended_code,
                message,
            }),
        },
        _ => sql::Error::Failure(SqliteFailure {
            code: rusqlite::ffi::SQLITE_ERROR,
            message,
        }),
    }
}

/// `error`, with what to do about a lock when it is one.
fn explain(error: &rusqlite::Error, path: &str) -> String {
    if error.sqlite_error_code() == Some(ErrorCode::DatabaseBusy) {
        format!(
            "{error}: another process holds {path}.lock; if none does, a process died inside a \
             transaction (SQLite rolls its writes back at the next open): remove the {path}.lock \
             directory"
        )
    } else {
        error.to_string()
    }
}

/// Open `path`, refuse it when a native process may have it open, and migrate it.
fn open(path: &str) -> Result<Database, String> {
    let shm = format!("{path}-shm");
    if std::fs::metadata(&shm).is_ok() {
        return Err(format!(
            "{shm} exists: a process using WAL mode (our native host?) has {path} open, and its \
             locks are invisible here; close it first"
        ));
    }
    let fail = |error: rusqlite::Error| format!("cannot open {path}: {}", explain(&error, path));
    let mut connection = Connection::open_with_flags_and_vfs(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        VFS,
    )
    .map_err(fail)?;
    connection.busy_timeout(BUSY_TIMEOUT).map_err(fail)?;
    // A WAL database (left by our host) opens only in exclusive locking mode without shared
    // memory; switch it to rollback-journal mode, then lock per transaction again.
    connection
        .execute_batch(
            "PRAGMA locking_mode = EXCLUSIVE; PRAGMA journal_mode = DELETE; \
             PRAGMA locking_mode = NORMAL; PRAGMA synchronous = FULL; \
             PRAGMA temp_store = MEMORY;",
        )
        .map_err(fail)?;
    // As in our host: SQLite builds no string or blob over 64 MiB for a guest's statement.
    // SAFETY: `handle` is this open connection's own pointer, used for one `sqlite3_limit` call
    // on the only thread.
    unsafe {
        rusqlite::ffi::sqlite3_limit(
            connection.handle(),
            rusqlite::ffi::SQLITE_LIMIT_LENGTH,
            MAX_VALUE_LENGTH,
        );
    }
    migrate(&mut connection).map_err(|error| format!("cannot migrate {path}: {error}"))?;
    let policy = SqlPolicy::install(&connection);
    Ok(Database {
        path: path.to_owned(),
        connection,
        policy,
        in_transaction: false,
    })
}

/// Bring the database to the newest migration, in one transaction; a newer schema is refused.
fn migrate(connection: &mut Connection) -> Result<(), String> {
    let newest = MIGRATIONS.last().map_or(0, |(version, _)| *version);
    let tx = connection
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(|error| error.to_string())?;
    let found: u32 = tx
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(|error| error.to_string())?;
    if found > newest {
        return Err(format!(
            "schema version {found} is newer than this build's {newest}"
        ));
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(version, _)| *version > found) {
        tx.execute_batch(sql)
            .and_then(|()| tx.pragma_update(None, "user_version", version))
            .map_err(|error| format!("migration {version}: {error}"))?;
    }
    tx.commit().map_err(|error| error.to_string())
}

/// Run `work` on the database inside the operation's transaction with the guest's rules on.
/// Traps (as our host does for a call outside an operation) when no transaction is running.
fn with_guest_connection<T>(
    work: impl FnOnce(&Connection) -> Result<T, Failure>,
) -> Result<T, sql::Error> {
    DATABASE.with_borrow(|database| {
        let Some(database) = database.as_ref().filter(|d| d.in_transaction) else {
            panic!("sql called outside an operation's transaction (transaction.begin)");
        };
        let unbounded = Instant::now() + Duration::from_secs(365 * 24 * 3600);
        let (result, _) = database
            .policy
            .with_mode(SqlMode::GuestWrite, unbounded, || {
                work(&database.connection)
            });
        result.map_err(sql::Error::from)
    })
}

/// Prepare (or reuse) `statement`, refusing the host's own transaction statements (a cached
/// statement is not seen by the authorizer again).
fn prepare<'c>(
    connection: &'c Connection,
    statement: &str,
) -> Result<rusqlite::CachedStatement<'c>, Failure> {
    if HOST_STATEMENTS.contains(&statement) {
        return Err(Failure::Denied(
            "transaction control belongs to the host".into(),
        ));
    }
    Ok(connection.prepare_cached(statement)?)
}

/// Run `statement` to completion and report what it changed.
fn run_to_completion<P: ToSql>(
    connection: &Connection,
    statement: &str,
    params: impl IntoIterator<Item = P>,
) -> Result<ExecResult, Failure> {
    let mut prepared = prepare(connection, statement)?;
    let mut rows = prepared.query(rusqlite::params_from_iter(params))?;
    while rows.next()?.is_some() {}
    Ok(ExecResult {
        changes: connection.changes(),
        last_insert_rowid: connection.last_insert_rowid(),
    })
}

/// A guest value bound as a parameter.
struct Param<'a>(&'a Value);

impl ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self.0 {
            Value::Null => ValueRef::Null,
            Value::Integer(value) => ValueRef::Integer(*value),
            Value::Real(value) => ValueRef::Real(*value),
            Value::Text(value) => ValueRef::Text(value.as_bytes()),
            Value::Blob(value) => ValueRef::Blob(value),
        }))
    }
}

/// Where [`collect_bounded_rows`] puts the rows.
trait RowSink {
    fn start_row(&mut self, width: usize);
    fn push(&mut self, value: ValueRef<'_>);
}

impl RowSink for Vec<Vec<Value>> {
    fn start_row(&mut self, width: usize) {
        self.push(Vec::with_capacity(width));
    }

    fn push(&mut self, value: ValueRef<'_>) {
        if let Some(row) = self.last_mut() {
            row.push(match value {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(value) => Value::Integer(value),
                ValueRef::Real(value) => Value::Real(value),
                ValueRef::Text(bytes) => Value::Text(String::from_utf8_lossy(bytes).into_owned()),
                ValueRef::Blob(bytes) => Value::Blob(bytes.to_vec()),
            });
        }
    }
}

impl RowSink for packed::PackedRows {
    fn start_row(&mut self, _width: usize) {
        packed::PackedRows::start_row(self);
    }

    fn push(&mut self, value: ValueRef<'_>) {
        packed::PackedRows::push(self, value);
    }
}

/// Run `prepared` and hand its rows to `sink` within the row and byte limits.
fn collect_bounded_rows<P: ToSql>(
    prepared: &mut rusqlite::CachedStatement<'_>,
    params: impl IntoIterator<Item = P>,
    sink: &mut impl RowSink,
) -> Result<(), Failure> {
    let width = prepared.column_count();
    let mut rows = prepared.query(rusqlite::params_from_iter(params))?;
    let (mut count, mut bytes) = (0usize, 0usize);
    while let Some(row) = rows.next()? {
        if count == MAX_ROWS {
            return Err(Failure::TooLarge(format!("the limit of {MAX_ROWS} rows")));
        }
        count += 1;
        sink.start_row(width);
        for index in 0..width {
            let value = row.get_ref(index)?;
            bytes = bytes.saturating_add(match value {
                ValueRef::Null => 1,
                ValueRef::Integer(_) | ValueRef::Real(_) => 8,
                ValueRef::Text(b) | ValueRef::Blob(b) => b.len(),
            });
            if bytes > MAX_BYTES {
                return Err(Failure::TooLarge(format!("the limit of {MAX_BYTES} bytes")));
            }
            sink.push(value);
        }
    }
    Ok(())
}

/// The component.
struct Provider;

impl sql::Guest for Provider {
    fn execute(statement: String, params: Vec<Value>) -> Result<ExecResult, sql::Error> {
        with_guest_connection(|c| run_to_completion(c, &statement, params.iter().map(Param)))
    }

    fn query(statement: String, params: Vec<Value>) -> Result<Rows, sql::Error> {
        with_guest_connection(|c| {
            let mut prepared = prepare(c, &statement)?;
            let columns = prepared
                .column_names()
                .into_iter()
                .map(str::to_owned)
                .collect();
            let mut rows = Vec::new();
            collect_bounded_rows(&mut prepared, params.iter().map(Param), &mut rows)?;
            Ok(Rows { columns, rows })
        })
    }

    fn execute_packed(statement: String, params: Vec<u8>) -> Result<ExecResult, sql::Error> {
        with_guest_connection(|c| {
            let params = packed::decode_params(&params).map_err(Failure::Denied)?;
            run_to_completion(c, &statement, params)
        })
    }

    fn query_packed(statement: String, params: Vec<u8>) -> Result<Vec<u8>, sql::Error> {
        with_guest_connection(|c| {
            let params = packed::decode_params(&params).map_err(Failure::Denied)?;
            let mut prepared = prepare(c, &statement)?;
            let mut rows = packed::PackedRows::new(prepared.column_count());
            collect_bounded_rows(&mut prepared, params, &mut rows)?;
            Ok(rows.finish())
        })
    }
}

impl exports::flowfabric::standalone::transaction::Guest for Provider {
    fn begin() {
        DATABASE.with_borrow_mut(|database| {
            if database.is_none() {
                let path = std::env::var("FF_DB").unwrap_or_else(|_| DEFAULT_DATABASE.to_owned());
                *database = Some(open(&path).unwrap_or_else(|why| panic!("{why}")));
            }
            let database = database.as_mut().expect("opened above");
            assert!(
                !database.in_transaction,
                "transaction.begin inside a transaction"
            );
            database
                .connection
                .execute_batch(policy::BEGIN_WRITE)
                .unwrap_or_else(|error| {
                    panic!(
                        "cannot begin the operation's transaction: {}",
                        explain(&error, &database.path)
                    )
                });
            database.in_transaction = true;
        });
    }

    fn commit() {
        end_transaction(policy::COMMIT);
    }

    fn rollback() {
        end_transaction(policy::ROLLBACK);
    }
}

/// `COMMIT` or `ROLLBACK` the operation's transaction; a failure traps.
fn end_transaction(statement: &str) {
    DATABASE.with_borrow_mut(|database| {
        let database = database
            .as_mut()
            .filter(|d| d.in_transaction)
            .unwrap_or_else(|| panic!("{statement} without a transaction"));
        database.in_transaction = false;
        database
            .connection
            .execute_batch(statement)
            .unwrap_or_else(|error| panic!("{statement} failed: {error}"));
    });
}

impl waitpoint_tokens::Guest for Provider {
    fn sign(message: String) -> Result<SignedToken, TokenError> {
        match with_keystore(keystore::active_key) {
            None => Err(TokenError::KeystoreEmpty),
            Some(key) => Ok(SignedToken {
                token: hmac_token(&key.secret, &key.kid, &message),
                kid: key.kid,
            }),
        }
    }

    fn verify(kid: String, message: String, token: String, now: i64) -> Result<(), TokenError> {
        // As in our host: a grace period counts from the later of the caller's clock and ours.
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| {
                i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
            });
        let now = now.max(wall);
        let secret = match with_keystore(|c| keystore::verification_key(c, &kid, now)) {
            Ok(secret) => secret,
            Err(keystore::KeyRefusal::Unknown) => return Err(TokenError::UnknownKid(kid)),
            Err(keystore::KeyRefusal::Expired) => return Err(TokenError::KidExpired(kid)),
        };
        let (token_kid, hex_digest) = token.split_once(':').ok_or(TokenError::Malformed)?;
        if token_kid != kid {
            return Err(TokenError::WrongKid(token_kid.to_owned()));
        }
        let digest = hex::decode(hex_digest).map_err(|_| TokenError::Malformed)?;
        keyed_mac(&secret, &kid, &message)
            .verify_slice(&digest)
            .map_err(|_| TokenError::SignatureMismatch)
    }
}

/// Read the keystore with the host's rights (the guest's statements are refused it); a failure
/// traps, as a keystore failure does in our host.
fn with_keystore<T>(read: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> T {
    DATABASE.with_borrow(|database| {
        let database = database
            .as_ref()
            .expect("waitpoint tokens are used inside an operation, after transaction.begin");
        read(&database.connection).unwrap_or_else(|error| panic!("waitpoint keystore: {error}"))
    })
}

/// HMAC-SHA256 keyed with `secret` over `<kid>:<message>` (upstream's token digest).
fn keyed_mac(secret: &[u8], kid: &str, message: &str) -> Hmac<Sha256> {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC-SHA256 takes any key length");
    mac.update(kid.as_bytes());
    mac.update(b":");
    mac.update(message.as_bytes());
    mac
}

/// A token in upstream's format: `<kid>:<hex digest>`.
fn hmac_token(secret: &[u8], kid: &str, message: &str) -> String {
    let digest = keyed_mac(secret, kid, message).finalize().into_bytes();
    format!("{kid}:{}", hex::encode(digest))
}

export!(Provider);
