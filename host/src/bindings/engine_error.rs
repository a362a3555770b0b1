//! The guest's `engine-error` values as the exact ff-core `EngineError` variants.

use ff_core::engine_error::{
    BugKind, ConflictKind, ContentionKind, EngineError, StateKind, ValidationKind,
};

use super::types;
use crate::error::OperationFailure;

/// The guest's error value as the exact `EngineError` it stands for.
pub(crate) fn engine_error(op: &'static str, error: types::EngineError) -> EngineError {
    match error {
        types::EngineError::NotFound(entity) => EngineError::NotFound {
            entity: entity_name(entity),
        },
        types::EngineError::Validation(v) => EngineError::Validation {
            kind: validation_kind(v.kind),
            detail: v.detail,
        },
        types::EngineError::Contention(kind) => EngineError::Contention(contention_kind(kind)),
        types::EngineError::Conflict(kind) => EngineError::Conflict(conflict_kind(kind)),
        types::EngineError::State(kind) => EngineError::State(state_kind(kind)),
        types::EngineError::Bug(types::BugKind::AttemptNotInCreatedState) => {
            EngineError::Bug(BugKind::AttemptNotInCreatedState)
        }
        types::EngineError::Storage(error) => OperationFailure::Storage {
            op,
            detail: describe_storage_error(&error),
        }
        .into(),
    }
}

fn entity_name(entity: types::Entity) -> &'static str {
    match entity {
        types::Entity::Execution => "execution",
        types::Entity::Attempt => "attempt",
        types::Entity::Flow => "flow",
        types::Entity::Waitpoint => "waitpoint",
        types::Entity::Budget => "budget",
        types::Entity::Suspension => "suspension",
    }
}

/// A readable description of a storage error the guest passed up.
fn describe_storage_error(error: &types::StorageError) -> String {
    match error {
        types::StorageError::Busy => "database busy".to_owned(),
        types::StorageError::Constraint(message) => format!("constraint failed: {message}"),
        types::StorageError::Denied(message) => format!("statement denied: {message}"),
        types::StorageError::TooLarge(message) => format!("result too large: {message}"),
        types::StorageError::Failure(failure) => {
            format!("sqlite error {}: {}", failure.code, failure.message)
        }
    }
}

fn validation_kind(kind: types::ValidationKind) -> ValidationKind {
    use types::ValidationKind as W;
    match kind {
        W::InvalidInput => ValidationKind::InvalidInput,
        W::CapabilityMismatch => ValidationKind::CapabilityMismatch,
        W::InvalidCapabilities => ValidationKind::InvalidCapabilities,
        W::InvalidPolicyJson => ValidationKind::InvalidPolicyJson,
        W::PayloadTooLarge => ValidationKind::PayloadTooLarge,
        W::SignalLimitExceeded => ValidationKind::SignalLimitExceeded,
        W::InvalidWaitpointKey => ValidationKind::InvalidWaitpointKey,
        W::InvalidToken => ValidationKind::InvalidToken,
        W::WaitpointNotTokenBound => ValidationKind::WaitpointNotTokenBound,
        W::RetentionLimitExceeded => ValidationKind::RetentionLimitExceeded,
        W::InvalidLeaseForSuspend => ValidationKind::InvalidLeaseForSuspend,
        W::InvalidDependency => ValidationKind::InvalidDependency,
        W::InvalidWaitpointForExecution => ValidationKind::InvalidWaitpointForExecution,
        W::InvalidBlockingReason => ValidationKind::InvalidBlockingReason,
        W::InvalidOffset => ValidationKind::InvalidOffset,
        W::Unauthorized => ValidationKind::Unauthorized,
        W::InvalidBudgetScope => ValidationKind::InvalidBudgetScope,
        W::BudgetOverrideNotAllowed => ValidationKind::BudgetOverrideNotAllowed,
        W::InvalidQuotaSpec => ValidationKind::InvalidQuotaSpec,
        W::InvalidKid => ValidationKind::InvalidKid,
        W::InvalidSecretHex => ValidationKind::InvalidSecretHex,
        W::InvalidGraceMs => ValidationKind::InvalidGraceMs,
        W::InvalidTagKey => ValidationKind::InvalidTagKey,
        W::InvalidFrameType => ValidationKind::InvalidFrameType,
        W::Corruption => ValidationKind::Corruption,
        W::HandleFromOtherBackend => ValidationKind::HandleFromOtherBackend,
    }
}

fn contention_kind(kind: types::ContentionKind) -> ContentionKind {
    use types::ContentionKind as W;
    match kind {
        W::UseClaimResumedExecution => ContentionKind::UseClaimResumedExecution,
        W::NotAResumedExecution => ContentionKind::NotAResumedExecution,
        W::ExecutionNotLeaseable => ContentionKind::ExecutionNotLeaseable,
        W::LeaseConflict => ContentionKind::LeaseConflict,
        W::InvalidClaimGrant => ContentionKind::InvalidClaimGrant,
        W::ClaimGrantExpired => ContentionKind::ClaimGrantExpired,
        W::NoEligibleExecution => ContentionKind::NoEligibleExecution,
        W::WaitpointNotFound => ContentionKind::WaitpointNotFound,
        W::WaitpointPendingUseBufferScript => ContentionKind::WaitpointPendingUseBufferScript,
        W::StaleGraphRevision => ContentionKind::StaleGraphRevision,
        W::ExecutionNotActive(state) => ContentionKind::ExecutionNotActive {
            terminal_outcome: state.terminal_outcome.unwrap_or_else(|| "none".to_owned()),
            lease_epoch: state.lease_epoch.unwrap_or_default(),
            lifecycle_phase: state.lifecycle_phase,
            attempt_id: state.attempt_id.unwrap_or_default(),
        },
        W::ExecutionNotEligible => ContentionKind::ExecutionNotEligible,
        W::ExecutionNotInEligibleSet => ContentionKind::ExecutionNotInEligibleSet,
        W::ExecutionNotReclaimable => ContentionKind::ExecutionNotReclaimable,
        W::NoActiveLease => ContentionKind::NoActiveLease,
        W::RateLimitExceeded => ContentionKind::RateLimitExceeded,
        W::ConcurrencyLimitExceeded => ContentionKind::ConcurrencyLimitExceeded,
        W::RetryExhausted => ContentionKind::RetryExhausted,
    }
}

fn conflict_kind(kind: types::ConflictKind) -> ConflictKind {
    use types::ConflictKind as W;
    match kind {
        W::CycleDetected => ConflictKind::CycleDetected,
        W::SelfReferencingEdge => ConflictKind::SelfReferencingEdge,
        W::ExecutionAlreadyInFlow => ConflictKind::ExecutionAlreadyInFlow,
        W::WaitpointAlreadyExists => ConflictKind::WaitpointAlreadyExists,
        W::BudgetAttachConflict => ConflictKind::BudgetAttachConflict,
        W::QuotaAttachConflict => ConflictKind::QuotaAttachConflict,
        W::RotationConflict(detail) => ConflictKind::RotationConflict(detail),
        W::ActiveAttemptExists => ConflictKind::ActiveAttemptExists,
    }
}

fn state_kind(kind: types::StateKind) -> StateKind {
    use types::StateKind as W;
    match kind {
        W::StaleLease => StateKind::StaleLease,
        W::LeaseExpired => StateKind::LeaseExpired,
        W::LeaseRevoked => StateKind::LeaseRevoked,
        W::ExecutionNotSuspended => StateKind::ExecutionNotSuspended,
        W::AlreadySuspended => StateKind::AlreadySuspended,
        W::WaitpointClosed => StateKind::WaitpointClosed,
        W::TargetNotSignalable => StateKind::TargetNotSignalable,
        W::DuplicateSignal => StateKind::DuplicateSignal,
        W::ResumeConditionNotMet => StateKind::ResumeConditionNotMet,
        W::WaitpointNotPending => StateKind::WaitpointNotPending,
        W::PendingWaitpointExpired => StateKind::PendingWaitpointExpired,
        W::WaitpointNotOpen => StateKind::WaitpointNotOpen,
        W::ExecutionNotTerminal => StateKind::ExecutionNotTerminal,
        W::MaxReplaysExhausted => StateKind::MaxReplaysExhausted,
        W::StreamClosed => StateKind::StreamClosed,
        W::StaleOwnerCannotAppend => StateKind::StaleOwnerCannotAppend,
        W::GrantAlreadyExists => StateKind::GrantAlreadyExists,
        W::ExecutionNotInFlow => StateKind::ExecutionNotInFlow,
        W::FlowAlreadyTerminal => StateKind::FlowAlreadyTerminal,
        W::DepsNotSatisfied => StateKind::DepsNotSatisfied,
        W::NotBlockedByDeps => StateKind::NotBlockedByDeps,
        W::NotRunnable => StateKind::NotRunnable,
        W::Terminal => StateKind::Terminal,
        W::BudgetExceeded => StateKind::BudgetExceeded,
        W::BudgetSoftExceeded => StateKind::BudgetSoftExceeded,
        W::OkAlreadyApplied => StateKind::OkAlreadyApplied,
        W::AttemptNotStarted => StateKind::AttemptNotStarted,
        W::AttemptAlreadyTerminal => StateKind::AttemptAlreadyTerminal,
        W::ExecutionNotEligibleForAttempt => StateKind::ExecutionNotEligibleForAttempt,
        W::ReplayNotAllowed => StateKind::ReplayNotAllowed,
        W::MaxRetriesExhausted => StateKind::MaxRetriesExhausted,
        W::StreamAlreadyClosed => StateKind::StreamAlreadyClosed,
        W::AlreadySatisfied => StateKind::AlreadySatisfied,
    }
}
