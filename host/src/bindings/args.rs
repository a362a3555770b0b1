//! ff-core arguments as the guest's records. Identifiers become their canonical text; the
//! host decodes what the guest cannot (worker handles, retry policy JSON) and supplies the
//! clock and fresh ids where ff-core's arguments carry none.

use std::collections::HashMap;

use ff_core::backend::{FailureClass, Handle, HandleKind};
use ff_core::contracts::{
    CancelExecutionArgs, ClaimExecutionArgs, ClaimResumedExecutionArgs, CompleteExecutionArgs,
    CreateExecutionArgs, FailExecutionArgs, IssueClaimGrantArgs, IssueReclaimGrantArgs,
    ReclaimExecutionArgs, RenewLeaseArgs, ResumeExecutionArgs, RevokeLeaseArgs,
};
use ff_core::engine_error::{EngineError, ValidationKind};
use ff_core::handle_codec::{self, HandlePayload};
use ff_core::policy::{BackoffStrategy, RetryPolicy};
use ff_core::types::{CancelSource, LeaseFence};

use super::{lease_holder, recovery, scheduling, types};

/// ff-core's claim arguments.
pub(crate) fn claim_execution(args: &ClaimExecutionArgs) -> scheduling::ClaimExecutionArgs {
    scheduling::ClaimExecutionArgs {
        execution_id: args.execution_id.to_string(),
        worker_id: args.worker_id.to_string(),
        worker_instance_id: args.worker_instance_id.to_string(),
        lane_id: args.lane_id.to_string(),
        lease_id: args.lease_id.to_string(),
        lease_ttl_ms: args.lease_ttl_ms,
        attempt_id: args.attempt_id.to_string(),
        expected_attempt_index: args.expected_attempt_index.0,
        attempt_policy_json: some_unless_empty(&args.attempt_policy_json),
        attempt_timeout_ms: args.attempt_timeout_ms,
        execution_deadline_at: args.execution_deadline_at,
        now: args.now.0,
    }
}

/// ff-core's create arguments; the policy is serialized and its required capabilities
/// extracted (sorted, empty tokens dropped).
pub(crate) fn create_execution(
    args: &CreateExecutionArgs,
) -> Result<scheduling::CreateExecutionArgs, EngineError> {
    let policy_json = args
        .policy
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|error| {
            validation(
                ValidationKind::InvalidPolicyJson,
                format!("policy: {error}"),
            )
        })?;
    let required_capabilities = args
        .policy
        .as_ref()
        .and_then(|policy| policy.routing_requirements.as_ref())
        .map(|routing| {
            routing
                .required_capabilities
                .iter()
                .filter(|token| !token.is_empty())
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    Ok(scheduling::CreateExecutionArgs {
        execution_id: args.execution_id.to_string(),
        namespace: args.namespace.to_string(),
        lane_id: args.lane_id.to_string(),
        execution_kind: args.execution_kind.clone(),
        input_payload: args.input_payload.clone(),
        payload_encoding: args.payload_encoding.clone(),
        priority: args.priority,
        creator_identity: args.creator_identity.clone(),
        idempotency_key: args.idempotency_key.clone(),
        tags: sorted(&args.tags),
        policy_json,
        required_capabilities,
        delay_until: args.delay_until.map(|t| t.0),
        execution_deadline_at: args.execution_deadline_at.map(|t| t.0),
        now: args.now.0,
    })
}

/// ff-core's grant arguments.
pub(crate) fn issue_claim_grant(args: &IssueClaimGrantArgs) -> scheduling::IssueClaimGrantArgs {
    scheduling::IssueClaimGrantArgs {
        execution_id: args.execution_id.to_string(),
        lane_id: args.lane_id.to_string(),
        worker_id: args.worker_id.to_string(),
        worker_instance_id: args.worker_instance_id.to_string(),
        capability_hash: args.capability_hash.clone(),
        route_snapshot_json: args.route_snapshot_json.clone(),
        admission_summary: args.admission_summary.clone(),
        worker_capabilities: args.worker_capabilities.iter().cloned().collect(),
        grant_ttl_ms: args.grant_ttl_ms,
        now: args.now.0,
    }
}

/// ff-core's renew arguments at `now`.
pub(crate) fn renew_lease(args: &RenewLeaseArgs, now: i64) -> lease_holder::RenewLeaseArgs {
    lease_holder::RenewLeaseArgs {
        execution_id: args.execution_id.to_string(),
        attempt_index: args.attempt_index.0,
        fence: args.fence.as_ref().map(fence),
        lease_ttl_ms: args.lease_ttl_ms,
        now,
    }
}

/// ff-core's complete arguments.
pub(crate) fn complete_execution(
    args: &CompleteExecutionArgs,
) -> lease_holder::CompleteExecutionArgs {
    lease_holder::CompleteExecutionArgs {
        execution_id: args.execution_id.to_string(),
        fence: args.fence.as_ref().map(fence),
        attempt_index: args.attempt_index.0,
        result_payload: args.result_payload.clone(),
        result_encoding: args.result_encoding.clone(),
        source: cancel_source(&args.source),
        now: args.now.0,
    }
}

/// ff-core's fail arguments at `now`; a non-empty `retry_policy_json` must parse as ff-core's
/// `RetryPolicy` (else `Validation { InvalidPolicyJson }`).
pub(crate) fn fail_execution(
    args: &FailExecutionArgs,
    now: i64,
) -> Result<lease_holder::FailExecutionArgs, EngineError> {
    let retry_policy = if args.retry_policy_json.trim().is_empty() {
        None
    } else {
        let policy: RetryPolicy =
            serde_json::from_str(&args.retry_policy_json).map_err(|error| {
                validation(
                    ValidationKind::InvalidPolicyJson,
                    format!("retry_policy_json: {error}"),
                )
            })?;
        Some(retry_policy(&policy))
    };
    Ok(lease_holder::FailExecutionArgs {
        execution_id: args.execution_id.to_string(),
        fence: args.fence.as_ref().map(fence),
        attempt_index: args.attempt_index.0,
        failure_reason: args.failure_reason.clone(),
        failure_category: args.failure_category.clone(),
        retry_policy,
        source: cancel_source(&args.source),
        now,
    })
}

/// ff-core's cancel arguments.
pub(crate) fn cancel_execution(args: &CancelExecutionArgs) -> recovery::CancelExecutionArgs {
    recovery::CancelExecutionArgs {
        execution_id: args.execution_id.to_string(),
        reason: args.reason.clone(),
        source: cancel_source(&args.source),
        lease_id: args.lease_id.as_ref().map(ToString::to_string),
        lease_epoch: args.lease_epoch.map(|epoch| epoch.0),
        attempt_id: args.attempt_id.as_ref().map(ToString::to_string),
        now: args.now.0,
    }
}

/// ff-core's revoke arguments at `now`.
pub(crate) fn revoke_lease(args: &RevokeLeaseArgs, now: i64) -> recovery::RevokeLeaseArgs {
    recovery::RevokeLeaseArgs {
        execution_id: args.execution_id.to_string(),
        expected_lease_id: args.expected_lease_id.clone(),
        worker_instance_id: args.worker_instance_id.to_string(),
        reason: args.reason.clone(),
        now,
    }
}

/// ff-core's resumed-claim arguments with a fresh attempt id.
pub(crate) fn claim_resumed_execution(
    args: &ClaimResumedExecutionArgs,
    attempt_id: String,
) -> recovery::ClaimResumedExecutionArgs {
    recovery::ClaimResumedExecutionArgs {
        execution_id: args.execution_id.to_string(),
        worker_id: args.worker_id.to_string(),
        worker_instance_id: args.worker_instance_id.to_string(),
        lane_id: args.lane_id.to_string(),
        lease_id: args.lease_id.to_string(),
        lease_ttl_ms: args.lease_ttl_ms,
        attempt_id,
        now: args.now.0,
    }
}

/// ff-core's resume arguments at `now`.
pub(crate) fn resume_execution(
    args: &ResumeExecutionArgs,
    now: i64,
) -> recovery::ResumeExecutionArgs {
    recovery::ResumeExecutionArgs {
        execution_id: args.execution_id.to_string(),
        trigger_type: args.trigger_type.clone(),
        resume_delay_ms: args.resume_delay_ms,
        now,
    }
}

/// ff-core's reclaim-grant arguments.
pub(crate) fn issue_reclaim_grant(args: &IssueReclaimGrantArgs) -> recovery::IssueReclaimGrantArgs {
    recovery::IssueReclaimGrantArgs {
        execution_id: args.execution_id.to_string(),
        worker_id: args.worker_id.to_string(),
        worker_instance_id: args.worker_instance_id.to_string(),
        lane_id: args.lane_id.to_string(),
        capability_hash: args.capability_hash.clone(),
        grant_ttl_ms: args.grant_ttl_ms,
        route_snapshot_json: args.route_snapshot_json.clone(),
        admission_summary: args.admission_summary.clone(),
        worker_capabilities: args.worker_capabilities.iter().cloned().collect(),
        now: args.now.0,
    }
}

/// ff-core's reclaim arguments at `now`.
pub(crate) fn reclaim_execution(
    args: &ReclaimExecutionArgs,
    now: i64,
) -> recovery::ReclaimExecutionArgs {
    recovery::ReclaimExecutionArgs {
        execution_id: args.execution_id.to_string(),
        worker_id: args.worker_id.to_string(),
        worker_instance_id: args.worker_instance_id.to_string(),
        lane_id: args.lane_id.to_string(),
        lease_id: args.lease_id.to_string(),
        lease_ttl_ms: args.lease_ttl_ms,
        attempt_id: args.attempt_id.to_string(),
        attempt_policy_json: some_unless_empty(&args.attempt_policy_json),
        max_reclaim_count: args.max_reclaim_count,
        now,
    }
}

/// The lease a worker handle encodes, after checking it is one of ours.
pub(crate) fn handle_lease(
    handle: &Handle,
) -> Result<(lease_holder::HandleLease, HandleKind), EngineError> {
    use ff_core::backend::BackendTag;
    if handle.backend != BackendTag::Sqlite {
        return Err(validation(
            ValidationKind::HandleFromOtherBackend,
            format!("expected=Sqlite actual={:?}", handle.backend),
        ));
    }
    let decoded = handle_codec::decode(&handle.opaque)?;
    if decoded.tag != BackendTag::Sqlite {
        return Err(validation(
            ValidationKind::HandleFromOtherBackend,
            format!("expected=Sqlite actual={:?} (embedded tag)", decoded.tag),
        ));
    }
    Ok((lease_of(&decoded.payload), handle.kind))
}

fn lease_of(payload: &HandlePayload) -> lease_holder::HandleLease {
    lease_holder::HandleLease {
        execution_id: payload.execution_id.to_string(),
        attempt_index: payload.attempt_index.0,
        attempt_id: payload.attempt_id.to_string(),
        lease_id: payload.lease_id.to_string(),
        lease_epoch: payload.lease_epoch.0,
        lease_ttl_ms: payload.lease_ttl_ms,
        lane_id: payload.lane_id.to_string(),
        worker_instance_id: payload.worker_instance_id.to_string(),
    }
}

/// ff-core's failure class; classes added after 0.15 count as transient, as upstream.
pub(crate) fn failure_class(class: FailureClass) -> lease_holder::FailureClass {
    match class {
        FailureClass::Permanent => lease_holder::FailureClass::Permanent,
        FailureClass::Timeout => lease_holder::FailureClass::Timeout,
        FailureClass::Cancelled => lease_holder::FailureClass::Cancelled,
        FailureClass::InfraCrash => lease_holder::FailureClass::InfraCrash,
        _ => lease_holder::FailureClass::Transient,
    }
}

fn fence(fence: &LeaseFence) -> types::LeaseFence {
    types::LeaseFence {
        lease_id: fence.lease_id.to_string(),
        lease_epoch: fence.lease_epoch.0,
        attempt_id: fence.attempt_id.to_string(),
    }
}

fn cancel_source(source: &CancelSource) -> types::CancelSource {
    match source {
        CancelSource::OperatorOverride => types::CancelSource::OperatorOverride,
        CancelSource::LeaseHolder => types::CancelSource::LeaseHolder,
        CancelSource::FlowCascade => types::CancelSource::FlowCascade,
        CancelSource::SystemTimeout => types::CancelSource::SystemTimeout,
        other => types::CancelSource::Custom(other.as_str().to_owned()),
    }
}

fn retry_policy(policy: &RetryPolicy) -> lease_holder::RetryPolicy {
    let backoff = match &policy.backoff {
        BackoffStrategy::Fixed { delay_ms } => lease_holder::Backoff::Fixed(*delay_ms),
        BackoffStrategy::Exponential {
            initial_delay_ms,
            max_delay_ms,
            multiplier,
            ..
        } => lease_holder::Backoff::Exponential(lease_holder::ExponentialBackoff {
            initial_delay_ms: *initial_delay_ms,
            max_delay_ms: *max_delay_ms,
            multiplier: *multiplier,
        }),
    };
    lease_holder::RetryPolicy {
        max_retries: policy.max_retries,
        backoff,
        retryable_categories: policy.retryable_categories.clone(),
    }
}

fn sorted(tags: &HashMap<String, String>) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> =
        tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    pairs.sort();
    pairs
}

/// `EngineError::Validation { kind, detail }`.
pub(crate) fn validation(kind: ValidationKind, detail: impl Into<String>) -> EngineError {
    EngineError::Validation {
        kind,
        detail: detail.into(),
    }
}

/// `None` for ff-core's empty-string "no value", else the text.
fn some_unless_empty(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_owned())
}
