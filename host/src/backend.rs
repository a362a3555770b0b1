//! [`SqliteBackend`]: the `EngineBackend` callers hold.
//!
//! Every operation runs on a blocking thread (`spawn_blocking`): it locks the backend's one
//! connection, opens `BEGIN IMMEDIATE`, calls the guest on a fresh instance, and commits only
//! when the guest returned `Ok`. An error value, a trap or a failed `COMMIT` rolls back.
//! Operations on one backend are therefore serialized in-process, so no `SQLITE_BUSY` or
//! `SQLITE_LOCKED` can arise between them; across processes SQLite's busy timeout applies.

use std::ops::Deref;
use std::path::PathBuf;
use std::sync::{Arc, MutexGuard};
use std::time::Instant;

use ff_core::capability::Version;
use ff_core::engine_error::EngineError;
use rusqlite::Connection;
use wasmtime::Store;

use crate::bindings::{GuestWorld, errors, wit};
use crate::database::Database;
use crate::error::{OpenError, OperationFailure};
use crate::guest::{GuestRuntime, GuestState};
use crate::limits::GuestLimits;
use crate::sql_policy::{SqlMode, SqlPolicy};

/// FlowFabric's SQLite engine backend, with the engine logic in a WebAssembly guest.
///
/// Construct with [`SqliteBackend::new`] (the built-in guest) or [`SqliteBackend::builder`]
/// (your own guest component); use as `Arc<dyn EngineBackend>`. Backends built for the same
/// database (the same file, or the same in-memory URI) share one connection while any of them
/// is alive, whichever guest each runs. Dropping the last one closes the database; an in-memory
/// database is then gone.
pub struct SqliteBackend {
    database: Arc<Database>,
    guest: Arc<GuestRuntime>,
    limits: GuestLimits,
}

impl SqliteBackend {
    /// Open (creating if needed) the database at `uri` and return a backend for it that runs
    /// the built-in guest.
    ///
    /// `uri` is a file path, `:memory:`, or a SQLite URI such as
    /// `file:name?mode=memory&cache=shared`. Files get WAL journaling, `synchronous=FULL` and a
    /// 5 s busy timeout. The schema is migrated to this build's version. Requires the
    /// environment variable `FF_DEV_MODE=1`, as upstream's SQLite backend does.
    pub async fn new(uri: &str) -> Result<Arc<Self>, OpenError> {
        Self::builder(uri).open().await
    }

    /// Start configuring a backend for the database at `uri` (see [`SqliteBackend::new`]).
    pub fn builder(uri: impl Into<String>) -> SqliteBackendBuilder {
        SqliteBackendBuilder {
            uri: uri.into(),
            guest: GuestSource::Builtin,
            limits: GuestLimits::default(),
        }
    }

    /// Lend the backend's connection to a test, for seeding and inspecting rows with raw SQL
    /// (upstream's `pool_for_test()`). Operations wait while the guard is held.
    #[doc(hidden)]
    pub fn connection_for_test(&self) -> ConnectionForTest<'_> {
        ConnectionForTest(self.database.lock())
    }

    /// Run one guest operation in its own transaction on a blocking thread.
    pub(crate) async fn run<T, F>(
        &self,
        op: &'static str,
        tx: Tx,
        call: F,
    ) -> Result<T, EngineError>
    where
        T: Send + 'static,
        F: FnOnce(
                &GuestWorld,
                &mut Store<GuestState>,
            ) -> wasmtime::Result<Result<T, wit::EngineError>>
            + Send
            + 'static,
    {
        let database = Arc::clone(&self.database);
        let guest = Arc::clone(&self.guest);
        let limits = self.limits;
        tokio::task::spawn_blocking(move || {
            let session = Session {
                guest: &guest,
                policy: database.policy(),
                limits: &limits,
                op,
                tx,
            };
            database.with_connection(|connection| session.run(connection, call))?
        })
        .await
        .unwrap_or_else(|join| {
            Err(OperationFailure::TaskFailed {
                op,
                detail: join.to_string(),
            }
            .into())
        })
    }
}

/// How an operation's transaction begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tx {
    /// `BEGIN IMMEDIATE`: takes the write lock up front, so the operation's reads and writes
    /// see one state and cannot deadlock with another writer half-way.
    Write,
    /// `BEGIN DEFERRED`: a consistent snapshot for reads.
    Read,
}

impl Tx {
    fn begin(self) -> &'static str {
        match self {
            Tx::Write => "BEGIN IMMEDIATE",
            Tx::Read => "BEGIN DEFERRED",
        }
    }
}

/// One operation's guest, SQL rights, limits and transaction.
struct Session<'a> {
    guest: &'a GuestRuntime,
    policy: &'a SqlPolicy,
    limits: &'a GuestLimits,
    op: &'static str,
    tx: Tx,
}

impl Session<'_> {
    /// `BEGIN`, the guest call under the guest's SQL rights, then `COMMIT` on `Ok` or
    /// `ROLLBACK` on anything else.
    fn run<T>(
        &self,
        connection: Connection,
        call: impl FnOnce(
            &GuestWorld,
            &mut Store<GuestState>,
        ) -> wasmtime::Result<Result<T, wit::EngineError>>,
    ) -> (Connection, Result<T, EngineError>) {
        let op = self.op;
        if let Err(source) = connection.execute_batch(self.tx.begin()) {
            return (
                connection,
                Err(OperationFailure::Database { op, source }.into()),
            );
        }
        let read_only = self.tx == Tx::Read;
        let mode = if read_only {
            SqlMode::GuestRead
        } else {
            SqlMode::GuestWrite
        };
        let started = Instant::now();
        let deadline = started + self.limits.operation_timeout;
        let ((connection, outcome), interrupted) = self.policy.with_mode(mode, deadline, || {
            self.guest
                .invoke(op, connection, self.limits, read_only, call)
        });
        // A statement stopped at the deadline ends the operation as a timeout, whatever the guest
        // made of the interruption.
        let outcome = match outcome {
            Ok(Ok(value)) if !interrupted => Ok(Ok(value)),
            _ if interrupted => Err(OperationFailure::TimedOut {
                op,
                elapsed: started.elapsed(),
            }),
            other => other,
        };
        let result = match outcome {
            Ok(Ok(value)) => connection
                .execute_batch("COMMIT")
                .map(|()| value)
                .map_err(|source| OperationFailure::Database { op, source }.into()),
            Ok(Err(error)) => Err(errors::engine_error(op, error)),
            Err(failure) => Err(failure.into()),
        };
        // Anything but a successful COMMIT leaves the transaction open: undo it all.
        if !connection.is_autocommit()
            && let Err(error) = connection.execute_batch("ROLLBACK")
        {
            tracing::error!(op, %error, "rollback failed");
        }
        (connection, result)
    }
}

/// Where a backend's guest component comes from.
enum GuestSource {
    Builtin,
    Bytes(Vec<u8>),
    File(PathBuf),
    PrecompiledFile(PathBuf),
}

/// Configures a [`SqliteBackend`]; made by [`SqliteBackend::builder`].
#[must_use = "a builder does nothing until `open` is called"]
pub struct SqliteBackendBuilder {
    uri: String,
    guest: GuestSource,
    limits: GuestLimits,
}

impl SqliteBackendBuilder {
    /// Run this component (a `wasm32-wasip2` component binary implementing the
    /// `flowfabric:backend/engine-backend` world) instead of the built-in guest.
    pub fn guest_bytes(mut self, component: impl Into<Vec<u8>>) -> Self {
        self.guest = GuestSource::Bytes(component.into());
        self
    }

    /// Run the component in this file instead of the built-in guest.
    pub fn guest_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.guest = GuestSource::File(path.into());
        self
    }

    /// Run the component precompiled into this file by
    /// [`precompile_guest_component`](crate::precompile_guest_component) (`ffwasm guest
    /// compile`): no compilation at start-up. Only load artifacts you made yourself: they
    /// contain machine code.
    pub fn guest_precompiled_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.guest = GuestSource::PrecompiledFile(path.into());
        self
    }

    /// Bound every operation of this backend's guest by `limits` (default:
    /// [`GuestLimits::default`]).
    pub fn limits(mut self, limits: GuestLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Check `FF_DEV_MODE=1`, load the guest, open and migrate the database.
    pub async fn open(self) -> Result<Arc<SqliteBackend>, OpenError> {
        if std::env::var("FF_DEV_MODE").as_deref() != Ok("1") {
            return Err(OpenError::RequiresDevMode);
        }
        tokio::task::spawn_blocking(move || self.open_blocking())
            .await
            .unwrap_or_else(|join| {
                Err(OpenError::Guest(format!(
                    "construction task failed: {join}"
                )))
            })
    }

    fn open_blocking(self) -> Result<Arc<SqliteBackend>, OpenError> {
        let guest = match self.guest {
            GuestSource::Builtin => GuestRuntime::builtin()?,
            GuestSource::Bytes(bytes) => GuestRuntime::from_component(&bytes)?,
            GuestSource::File(path) => GuestRuntime::from_component(&read_guest(&path)?)?,
            GuestSource::PrecompiledFile(path) => {
                GuestRuntime::from_precompiled(&read_guest(&path)?)?
            }
        };
        let database = Database::open_shared(&self.uri)?;
        Ok(Arc::new(SqliteBackend {
            database,
            guest,
            limits: self.limits,
        }))
    }
}

/// The bytes of a guest file.
fn read_guest(path: &std::path::Path) -> Result<Vec<u8>, OpenError> {
    std::fs::read(path)
        .map_err(|error| OpenError::Guest(format!("cannot read {}: {error}", path.display())))
}

/// The backend's connection, lent to a test by [`SqliteBackend::connection_for_test`].
pub struct ConnectionForTest<'a>(MutexGuard<'a, Option<Connection>>);

impl Deref for ConnectionForTest<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.0
            .as_ref()
            .expect("the connection was lost by an earlier failed operation")
    }
}

impl std::fmt::Debug for SqliteBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteBackend")
            .field("database", &self.database.key())
            .finish()
    }
}

/// This crate's version, as ff-core's `Version`.
pub(crate) fn crate_version() -> Version {
    let part = |text: &str| text.parse().unwrap_or(0);
    Version::new(
        part(env!("CARGO_PKG_VERSION_MAJOR")),
        part(env!("CARGO_PKG_VERSION_MINOR")),
        part(env!("CARGO_PKG_VERSION_PATCH")),
    )
}
