//! The crate's error types: [`OpenError`] for construction, [`OperationFailure`] for what an
//! operation reports as `EngineError::Transport` (its `source`, which callers may downcast).

use ff_core::engine_error::{BackendError, BackendErrorKind, EngineError};

/// The label this backend reports in `EngineError::Transport` and `capabilities()`.
pub const BACKEND_LABEL: &str = "sqlite-wasm";

/// Why [`SqliteBackend::new`](crate::SqliteBackend::new) could not build a backend.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The `FF_DEV_MODE` environment variable is not exactly `1`. SQLite backends are
    /// development tools upstream; this one keeps the same opt-in.
    #[error(
        "SqliteBackend requires FF_DEV_MODE=1 to activate. SQLite is dev-only; set FF_DEV_MODE=1 \
         in the environment of the process that constructs the backend"
    )]
    RequiresDevMode,
    /// SQLite could not open the database or apply its settings.
    #[error("cannot open SQLite database {uri:?}: {source}")]
    Open {
        /// The URI or path as given.
        uri: String,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// Applying the schema migrations failed; the database is unchanged.
    #[error("cannot migrate SQLite database {uri:?} to schema version {version}: {source}")]
    Migrate {
        /// The URI or path as given.
        uri: String,
        /// The migration that failed.
        version: u32,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The database was written by a newer build with a schema this build does not know.
    #[error(
        "SQLite database {uri:?} has schema version {found}; this build supports up to \
         {supported}; it was left untouched"
    )]
    SchemaTooNew {
        /// The URI or path as given.
        uri: String,
        /// The database's `user_version`.
        found: u32,
        /// The newest schema version this build knows.
        supported: u32,
    },
    /// The file is not a SQLite database (garbage, damaged, or encrypted). Nothing was written
    /// to it.
    #[error("{uri:?} is not a SQLite database ({detail}); it was left untouched")]
    NotADatabase {
        /// The URI or path as given.
        uri: String,
        /// What SQLite reported.
        detail: String,
    },
    /// A SQLite database of some other application: it has tables, and they are not a
    /// FlowFabric schema this backend set up. Nothing was written to it.
    #[error(
        "{uri:?} is a SQLite database but not a FlowFabric one (tables: {}; user_version \
         {user_version}); it was left untouched",
        if tables.is_empty() { "none".to_owned() } else { tables.join(", ") }
    )]
    Foreign {
        /// The URI or path as given.
        uri: String,
        /// Its tables (SQLite's own excepted), by name.
        tables: Vec<String>,
        /// Its `PRAGMA user_version`.
        user_version: u32,
    },
    /// A FlowFabric database created by upstream's `ff-backend-sqlite` (sqlx migrations):
    /// this backend keeps its own schema history and does not adopt it. Nothing was written to
    /// it.
    #[error(
        "{uri:?} was created by upstream ff-backend-sqlite (its schema is tracked by sqlx's \
         _sqlx_migrations, not by this backend); it was left untouched: open it with \
         ff-backend-sqlite, or give this backend a new database"
    )]
    UpstreamDatabase {
        /// The URI or path as given.
        uri: String,
    },
    /// SQLite would not put the database file in WAL mode (a VFS without shared memory, say):
    /// this backend makes commits durable by syncing the WAL, so it refuses the file instead of
    /// committing operations it could not make durable. The journal mode was left as reported.
    #[error(
        "SQLite database {uri:?} cannot be in WAL mode (its journal mode stays {journal_mode:?}); \
         this backend needs WAL"
    )]
    NotWal {
        /// The URI or path as given.
        uri: String,
        /// The journal mode SQLite answered to `PRAGMA journal_mode = WAL`.
        journal_mode: String,
    },
    /// The guest component could not be read, compiled or linked.
    #[error("cannot load the guest component: {0}")]
    Guest(String),
    /// A background task was asked for (e.g. the builder's `budget_reset_interval`) but `open`
    /// ran outside a tokio runtime, which the task would run on.
    #[error("{what} needs a tokio runtime (with the time driver) when the backend is opened")]
    NeedsRuntime {
        /// The builder option that asked for a background task.
        what: &'static str,
    },
    /// The guest component does not fit the `engine-backend` world.
    #[error("the guest component does not fit the engine-backend world: {0}")]
    GuestMismatch(GuestMismatch),
}

/// Every way a guest component does not fit the `engine-backend` world.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", problems.join("; "))]
pub struct GuestMismatch {
    /// One sentence per mismatch: a missing or extra function, a different signature, an
    /// import the host does not provide.
    pub problems: Vec<String>,
}

impl From<OpenError> for BackendError {
    /// For callers written against upstream's constructor, which returns ff-core's
    /// `BackendError`.
    fn from(error: OpenError) -> Self {
        match error {
            OpenError::RequiresDevMode => BackendError::RequiresDevMode,
            OpenError::Open { .. } => BackendError::Valkey {
                kind: BackendErrorKind::Transport,
                message: error.to_string(),
            },
            other => BackendError::Valkey {
                kind: BackendErrorKind::Protocol,
                message: other.to_string(),
            },
        }
    }
}

/// Why an operation failed outside the engine's own rules. Delivered as
/// `EngineError::Transport { backend: "sqlite-wasm", source }` with this as the `source`, except
/// the two limits, which become ff-core's `Timeout` and `ResourceExhausted`; in every case the
/// operation's transaction was rolled back.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OperationFailure {
    /// The guest ran longer than its operation timeout. Reported as `EngineError::Timeout`.
    #[error("guest ran past its time limit during {op} ({elapsed:?})")]
    TimedOut {
        /// The engine operation.
        op: &'static str,
        /// How long it ran.
        elapsed: std::time::Duration,
    },
    /// The guest asked for more memory than its limit. Reported as
    /// `EngineError::ResourceExhausted { pool: "guest_memory", .. }`.
    #[error("guest exceeded its memory limit of {max_mib} MiB during {op}")]
    MemoryExhausted {
        /// The engine operation.
        op: &'static str,
        /// The limit in MiB.
        max_mib: u32,
    },
    /// The guest trapped (panic, out-of-bounds access, ...). The next operation runs on a
    /// fresh instance.
    #[error("guest trapped during {op}: {detail}")]
    GuestTrapped {
        /// The engine operation.
        op: &'static str,
        /// The trap code, when wasmtime reported one.
        trap: Option<wasmtime::Trap>,
        /// wasmtime's message, followed by whatever the guest wrote to stderr.
        detail: String,
    },
    /// The guest returned a value the host cannot interpret.
    #[error("guest returned a malformed {field} during {op}: {value:?}")]
    MalformedResult {
        /// The engine operation.
        op: &'static str,
        /// The offending field.
        field: &'static str,
        /// Its value.
        value: String,
    },
    /// A SQL statement of the guest failed in a way the guest did not handle.
    #[error("SQL failure during {op}: {detail}")]
    Storage {
        /// The engine operation.
        op: &'static str,
        /// The SQL error as the guest received it.
        detail: String,
    },
    /// SQLite ended the operation's transaction under it (a statement failed with `FULL`,
    /// `NOMEM`, `IOERR` or `BUSY` and rolled the transaction back) and the guest still reported
    /// success: none of its writes were kept, and the statements it ran afterwards were refused.
    #[error("SQLite rolled back the transaction during {op}; none of its writes were kept")]
    TransactionEnded {
        /// The engine operation.
        op: &'static str,
    },
    /// The host's own SQLite work (opening, committing or rolling back the transaction) failed.
    #[error("database failure during {op}: {source}")]
    Database {
        /// The engine operation.
        op: &'static str,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The operation's batch committed, but syncing the WAL failed: the outcome is in the
    /// database file's WAL yet may not survive a power loss. Read the state back before
    /// retrying.
    #[error(
        "{op} committed, but the WAL could not be synced ({detail}); its durability is unknown"
    )]
    SyncFailed {
        /// The engine operation.
        op: &'static str,
        /// The I/O error.
        detail: String,
    },
    /// The database was closed after an earlier failure: a panic of the host's writer or sync
    /// thread, or a WAL that could not be synced (`SyncFailed`). Nothing ran; a new backend
    /// reopens the file (SQLite's recovery keeps every operation that was answered with
    /// success).
    #[error(
        "the database connection was closed after an earlier failure (a host thread panicked or \
         the WAL could not be synced; see the logs); nothing ran: open a new backend"
    )]
    ConnectionLost,
    /// The thread running the operation stopped before answering (the database's writer thread
    /// panicked).
    #[error("the task running {op} did not finish: {detail}")]
    TaskFailed {
        /// The engine operation.
        op: &'static str,
        /// What stopped it.
        detail: String,
    },
}

impl OperationFailure {
    pub(crate) fn malformed(op: &'static str, field: &'static str, value: &str) -> Self {
        Self::MalformedResult {
            op,
            field,
            value: value.to_owned(),
        }
    }
}

impl From<OperationFailure> for EngineError {
    /// Limits become ff-core's typed `Timeout` and `ResourceExhausted`; everything else is
    /// `Transport` with the failure as its source.
    fn from(failure: OperationFailure) -> Self {
        match failure {
            OperationFailure::TimedOut { op, elapsed } => EngineError::Timeout { op, elapsed },
            OperationFailure::MemoryExhausted { max_mib, .. } => EngineError::ResourceExhausted {
                pool: "guest_memory",
                max: max_mib,
                retry_after_ms: None,
            },
            failure => EngineError::Transport {
                backend: BACKEND_LABEL,
                source: Box::new(failure),
            },
        }
    }
}
