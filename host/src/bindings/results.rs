//! The guest's results as ff-core types. Identifiers the guest returns are parsed back (a
//! malformed one is the guest's fault: `OperationFailure::MalformedResult`); state literals are
//! parsed with ff-core's own serde names (an unknown one is stored corruption:
//! `Validation { Corruption }`); worker handles are encoded here with ff-core's codec.

use std::collections::BTreeMap;

use ff_core::backend::{BackendTag, Handle, HandleKind};
use ff_core::contracts::{AttemptSummary, ExecutionInfo, ExecutionSnapshot, LeaseSummary};
use ff_core::engine_error::{EngineError, ValidationKind};
use ff_core::handle_codec::{HandlePayload, encode};
use ff_core::state::{AttemptType, PublicState, StateVector};
use ff_core::types::{
    AttemptId, AttemptIndex, ExecutionId, FlowId, LaneId, LeaseEpoch, LeaseId, Namespace,
    TimestampMs, WorkerInstanceId,
};
use serde::de::DeserializeOwned;

use super::args::validation;
use super::{reads, types};
use crate::error::OperationFailure;

/// A lease the guest granted, with its identifiers parsed.
pub(crate) struct Lease {
    pub execution_id: ExecutionId,
    pub lease_id: LeaseId,
    pub lease_epoch: LeaseEpoch,
    pub attempt_index: AttemptIndex,
    pub attempt_id: AttemptId,
    pub attempt_type: AttemptType,
    pub lease_expires_at: TimestampMs,
}

impl Lease {
    /// Parse the guest's `claimed-execution`.
    pub fn parse(op: &'static str, claimed: types::ClaimedExecution) -> Result<Self, EngineError> {
        Ok(Self {
            execution_id: execution_id(op, &claimed.execution_id)?,
            lease_id: LeaseId::parse(&claimed.lease_id)
                .map_err(|_| OperationFailure::malformed(op, "lease_id", &claimed.lease_id))?,
            lease_epoch: LeaseEpoch::new(claimed.lease_epoch),
            attempt_index: AttemptIndex::new(claimed.attempt_index),
            attempt_id: AttemptId::parse(&claimed.attempt_id)
                .map_err(|_| OperationFailure::malformed(op, "attempt_id", &claimed.attempt_id))?,
            attempt_type: attempt_type(claimed.attempt_type),
            lease_expires_at: TimestampMs::from_millis(claimed.lease_expires_at),
        })
    }

    /// A worker handle for this lease, which the handle-based operations accept.
    pub fn handle(
        &self,
        kind: HandleKind,
        lease_ttl_ms: u64,
        lane_id: &LaneId,
        worker_instance_id: &WorkerInstanceId,
    ) -> Handle {
        let payload = HandlePayload::new(
            self.execution_id.clone(),
            self.attempt_index,
            self.attempt_id.clone(),
            self.lease_id.clone(),
            self.lease_epoch,
            lease_ttl_ms,
            lane_id.clone(),
            worker_instance_id.clone(),
        );
        Handle::new(
            BackendTag::Sqlite,
            kind,
            encode(BackendTag::Sqlite, &payload),
        )
    }
}

/// Parse an execution id the guest returned.
pub(crate) fn execution_id(op: &'static str, text: &str) -> Result<ExecutionId, EngineError> {
    ExecutionId::parse(text)
        .map_err(|_| OperationFailure::malformed(op, "execution_id", text).into())
}

/// Parse a lease id the guest returned.
pub(crate) fn lease_id(op: &'static str, text: &str) -> Result<LeaseId, EngineError> {
    LeaseId::parse(text).map_err(|_| OperationFailure::malformed(op, "lease_id", text).into())
}

fn attempt_type(attempt_type: types::AttemptType) -> AttemptType {
    match attempt_type {
        types::AttemptType::Initial => AttemptType::Initial,
        types::AttemptType::Retry => AttemptType::Retry,
        types::AttemptType::Reclaim => AttemptType::Reclaim,
        types::AttemptType::Replay => AttemptType::Replay,
        types::AttemptType::Fallback => AttemptType::Fallback,
    }
}

/// The guest's public state as ff-core's.
pub(crate) fn public_state(state: types::PublicState) -> PublicState {
    match state {
        types::PublicState::Waiting => PublicState::Waiting,
        types::PublicState::Delayed => PublicState::Delayed,
        types::PublicState::RateLimited => PublicState::RateLimited,
        types::PublicState::WaitingChildren => PublicState::WaitingChildren,
        types::PublicState::Active => PublicState::Active,
        types::PublicState::Suspended => PublicState::Suspended,
        types::PublicState::Resumable => PublicState::Resumable,
        types::PublicState::Completed => PublicState::Completed,
        types::PublicState::Failed => PublicState::Failed,
        types::PublicState::Cancelled => PublicState::Cancelled,
        types::PublicState::Expired => PublicState::Expired,
        types::PublicState::Skipped => PublicState::Skipped,
    }
}

/// A state literal parsed with ff-core's serde names; unknown → `Validation { Corruption }`.
fn parse_literal<T: DeserializeOwned>(field: &str, raw: &str) -> Result<T, EngineError> {
    serde_json::from_value(serde_json::Value::String(raw.to_owned())).map_err(|error| {
        validation(
            ValidationKind::Corruption,
            format!("exec_core: {field}: '{raw}' is not a known value: {error}"),
        )
    })
}

/// The execution's public state (the same value every read reports).
pub(crate) fn view_public_state(view: &reads::ExecutionView) -> Result<PublicState, EngineError> {
    parse_literal("public_state", &view.public_state)
}

/// ff-core's `ExecutionInfo` for `read_execution_info`.
pub(crate) fn execution_info(
    id: &ExecutionId,
    view: reads::ExecutionView,
) -> Result<ExecutionInfo, EngineError> {
    let state_vector = StateVector {
        lifecycle_phase: parse_literal("lifecycle_phase", &view.lifecycle_phase)?,
        ownership_state: parse_literal("ownership_state", &view.ownership_state)?,
        eligibility_state: parse_literal("eligibility_state", &view.eligibility_state)?,
        blocking_reason: parse_literal(
            "blocking_reason",
            view.blocking_reason.as_deref().unwrap_or("none"),
        )?,
        terminal_outcome: parse_literal(
            "terminal_outcome",
            view.terminal_outcome.as_deref().unwrap_or("none"),
        )?,
        attempt_state: parse_literal("attempt_state", &view.attempt_state)?,
        public_state: view_public_state(&view)?,
    };
    Ok(ExecutionInfo {
        execution_id: id.clone(),
        namespace: view.namespace,
        lane_id: view.lane_id,
        priority: i32::try_from(view.priority).map_err(|_| {
            validation(
                ValidationKind::Corruption,
                format!("exec_core: priority {}", view.priority),
            )
        })?,
        execution_kind: view.execution_kind,
        public_state: state_vector.public_state,
        state_vector,
        created_at: view.created_at.to_string(),
        started_at: view.started_at.map(|t| t.to_string()),
        completed_at: view.completed_at.map(|t| t.to_string()),
        current_attempt_index: view.attempt_index,
        flow_id: view.flow_id,
        blocking_detail: view.blocking_detail.unwrap_or_default(),
    })
}

/// ff-core's `ExecutionSnapshot` for `describe_execution`.
pub(crate) fn execution_snapshot(
    id: &ExecutionId,
    view: reads::ExecutionView,
) -> Result<ExecutionSnapshot, EngineError> {
    const OP: &str = "describe_execution";
    let public_state = view_public_state(&view)?;
    let flow_id = view
        .flow_id
        .as_deref()
        .map(|text| {
            FlowId::parse(text).map_err(|_| OperationFailure::malformed(OP, "flow_id", text))
        })
        .transpose()?;
    let current_attempt = view
        .attempt_id
        .as_deref()
        .map(|text| {
            AttemptId::parse(text)
                .map(|attempt_id| {
                    AttemptSummary::new(attempt_id, AttemptIndex::new(view.attempt_index))
                })
                .map_err(|_| OperationFailure::malformed(OP, "attempt_id", text))
        })
        .transpose()?;
    let current_lease = view
        .current_lease
        .map(|lease| -> Result<LeaseSummary, EngineError> {
            Ok(LeaseSummary::new(
                LeaseEpoch::new(lease.lease_epoch),
                WorkerInstanceId::new(lease.worker_instance_id),
                TimestampMs::from_millis(lease.expires_at),
            )
            .with_lease_id(lease_id(OP, &lease.lease_id)?)
            .with_attempt_index(AttemptIndex::new(lease.attempt_index)))
        })
        .transpose()?;
    Ok(ExecutionSnapshot::new(
        id.clone(),
        flow_id,
        LaneId::new(view.lane_id),
        Namespace::new(view.namespace),
        public_state,
        view.blocking_reason,
        view.blocking_detail,
        current_attempt,
        current_lease,
        None,
        TimestampMs::from_millis(view.created_at),
        TimestampMs::from_millis(view.last_mutation_at),
        view.total_attempt_count,
        view.tags.into_iter().collect::<BTreeMap<_, _>>(),
    ))
}
