//! Constructors for the engine errors the logic returns, and SQL failures as engine errors.

use crate::sql::{self, Error as SqlError};
use crate::types::{
    ContentionKind, EngineError, ExecutionNotActive, SqliteFailure, StorageError, ValidationError,
    ValidationKind,
};

/// `Validation { kind: InvalidInput, detail }`.
pub fn invalid_input(detail: impl Into<String>) -> EngineError {
    EngineError::Validation(ValidationError {
        kind: ValidationKind::InvalidInput,
        detail: detail.into(),
    })
}

/// `Validation(InvalidInput, "<name> must be positive")` when `value` is 0.
pub fn require_positive(name: &str, value: u64) -> Result<(), EngineError> {
    if value == 0 {
        return Err(invalid_input(format!("{name} must be positive")));
    }
    Ok(())
}

/// `Validation(InvalidInput, "worker_id must not be empty")` when `worker_id` is empty: every
/// operation that records a worker checks this before it writes.
pub fn require_worker_id(worker_id: &str) -> Result<(), EngineError> {
    if worker_id.is_empty() {
        return Err(invalid_input("worker_id must not be empty"));
    }
    Ok(())
}

/// `Validation(InvalidInput, "worker_instance_id must not be empty")` when `worker_instance_id`
/// is empty: checked right after [`require_worker_id`], wherever that is.
pub fn require_worker_instance_id(worker_instance_id: &str) -> Result<(), EngineError> {
    if worker_instance_id.is_empty() {
        return Err(invalid_input("worker_instance_id must not be empty"));
    }
    Ok(())
}

/// `Validation { kind: Corruption, detail }`: stored data the logic cannot make sense of.
pub fn corruption(detail: impl Into<String>) -> EngineError {
    EngineError::Validation(ValidationError {
        kind: ValidationKind::Corruption,
        detail: detail.into(),
    })
}

/// `Validation { kind: PayloadTooLarge, detail }`.
pub fn payload_too_large(detail: impl Into<String>) -> EngineError {
    EngineError::Validation(ValidationError {
        kind: ValidationKind::PayloadTooLarge,
        detail: detail.into(),
    })
}

/// `Contention(kind)`.
pub fn contention(kind: ContentionKind) -> EngineError {
    EngineError::Contention(kind)
}

/// `Contention(ExecutionNotActive { .. })` with the observed state.
pub fn not_active(
    terminal_outcome: Option<String>,
    lease_epoch: Option<String>,
    lifecycle_phase: String,
    attempt_id: Option<String>,
) -> EngineError {
    contention(ContentionKind::ExecutionNotActive(ExecutionNotActive {
        terminal_outcome,
        lease_epoch,
        lifecycle_phase,
        attempt_id,
    }))
}

/// `Storage(error)`: a SQL failure the logic did not expect, passed up as it came.
pub fn storage(error: SqlError) -> EngineError {
    EngineError::Storage(error.into())
}

/// The `sql` import's error as the engine's own `storage-error`, case for case.
impl From<SqlError> for StorageError {
    fn from(error: SqlError) -> Self {
        match error {
            SqlError::Busy => StorageError::Busy,
            SqlError::Constraint(message) => StorageError::Constraint(message),
            SqlError::Denied(message) => StorageError::Denied(message),
            SqlError::TooLarge(message) => StorageError::TooLarge(message),
            SqlError::Failure(sql::SqliteFailure { code, message }) => {
                StorageError::Failure(SqliteFailure { code, message })
            }
        }
    }
}
