//! FlowFabric's SQLite [`EngineBackend`](ff_core::engine_backend::EngineBackend), with the
//! engine logic in a sandboxed WebAssembly component.
//!
//! [`SqliteBackend`] looks like any other backend to its callers (`Arc<dyn EngineBackend>`).
//! Inside, every operation runs in a SQLite transaction that this crate opens (in its own
//! savepoint when concurrent operations share one: group commit); the decisions (validation,
//! state transitions, the SQL) are made by a guest component that reaches the database only
//! through the `flowfabric:backend/sql` interface (`wit/`). The host keeps an operation's
//! writes when the guest returns `Ok` and rolls them back on an error value or a trap, and
//! answers only once the transaction is durable.
//!
//! ```
//! use ff_backend_sqlite_wasm::SqliteBackend;
//! use ff_core::contracts::ClaimExecutionArgs;
//! use ff_core::engine_backend::EngineBackend;
//! use ff_core::engine_error::{ContentionKind, EngineError};
//! use ff_core::types::*;
//! use std::sync::Arc;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // SQLite backends are dev-only upstream; ours keeps the same guard.
//! unsafe { std::env::set_var("FF_DEV_MODE", "1") };
//! let backend = SqliteBackend::new("file:doc-example?mode=memory&cache=shared").await?;
//! let engine: Arc<dyn EngineBackend> = backend.clone();
//!
//! let execution = ExecutionId::parse("{fp:0}:53ad96d2-6b08-4d0c-86e3-36598db2291c")?;
//! let args = ClaimExecutionArgs::new(
//!     execution, WorkerId::new("worker-1"), WorkerInstanceId::new("wi-1"),
//!     LaneId::new("default"), LeaseId::new(), 30_000, AttemptId::new(), AttemptIndex::new(0),
//!     String::new(), None, None, TimestampMs::now(),
//! );
//! // Nothing was created yet, so the guest reports a typed error and the host rolls back.
//! assert!(matches!(engine.claim_execution(args).await, Err(EngineError::NotFound { entity: "execution" })));
//! # let _ = ContentionKind::LeaseConflict;
//! # Ok(())
//! # }
//! ```
//!
//! Modules, one concept each:
//! - `backend`: [`SqliteBackend`], its construction and the transaction around each guest call;
//! - `engine`: the `EngineBackend` implementation, one method per operation;
//! - `bindings`: the generated WIT bindings and the conversions to and from ff-core types;
//! - `writer`: each database's writer thread, which runs operations in shared transactions
//!   (group commit, a savepoint per operation);
//! - `durability`: syncing a file's WAL before answering, and checkpoints;
//! - `guest`: the wasmtime engine, the pre-instantiated component, instances reused until one
//!   fails;
//! - `stderr`: the guest's stderr, captured per operation;
//! - `component`: checking a user's guest component against the world;
//! - `compiled_cache`: compiled guests kept on disk, keyed by engine and component hashes;
//! - `limits`: what one guest operation may use ([`GuestLimits`]);
//! - `sql_policy`: the SQLite authorizer that keeps guest SQL to rows;
//! - `sql`: the `sql` interface the guest imports, over rusqlite;
//! - `database`: opening SQLite (URIs, pragmas) and the per-process registry;
//! - `schema`: migrations;
//! - `error`: construction errors and the sources of `EngineError::Transport`.

#![deny(missing_docs)]
// `EngineError` is ff-core's, and the trait makes it the error type of every operation.
#![allow(clippy::result_large_err)]

mod backend;
mod bindings;
mod compiled_cache;
mod component;
mod database;
mod durability;
mod engine;
mod error;
mod guest;
mod limits;
mod packed;
mod schema;
mod sql;
mod sql_policy;
mod stderr;
mod wal_gather;
mod writer;

pub use backend::{ConnectionForTest, SqliteBackend, SqliteBackendBuilder};
pub use component::{GUEST_WIT, check_guest_component, precompile_guest_component};
pub use database::CommitStats;
pub use error::{GuestMismatch, OpenError, OperationFailure};
pub use limits::GuestLimits;

/// The label this backend reports in `EngineError::Transport` and `capabilities()`.
pub const BACKEND_LABEL: &str = "sqlite-wasm";

/// The newest schema version (SQLite's `PRAGMA user_version`, see `host/migrations/`) this build
/// knows. A backend refuses to open a database with a newer one.
pub const SCHEMA_VERSION: u32 = schema::LATEST_VERSION;

/// The table of execution rows, which every database this backend has set up holds (from schema
/// version 1 on): how a tool tells a FlowFabric database from another SQLite file.
pub const EXEC_CORE_TABLE: &str = "ff_exec_core";

/// The built-in guest component (a `wasm32-wasip2` component of the `engine-backend` world), the
/// one a [`SqliteBackend`] runs unless its builder names another: to check, precompile or
/// compose it outside the backend.
pub const BUILTIN_GUEST_COMPONENT: &[u8] = include_bytes!(env!("FF_GUEST_WASM"));
