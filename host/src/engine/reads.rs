//! Reads: an execution's state, info, attempts, result and context, and `ping`; the guest's
//! `reads` interface.

use ff_core::contracts::{ExecutionContext, ExecutionInfo, ExecutionSnapshot};
use ff_core::engine_error::{EngineError, ValidationKind};
use ff_core::state::PublicState;
use ff_core::types::{AttemptIndex, ExecutionId};

use crate::backend::SqliteBackend;
use crate::bindings::args::validation;
use crate::bindings::reads;
use crate::bindings::results::{self};
use crate::operation::Tx;

use super::inputs::wall_clock;

/// `Validation { InvalidInput, "<op>: execution not found: <id>" }`, for the reads ff-core
/// documents that way.
fn execution_not_found(op: &str, execution_id: &ExecutionId) -> EngineError {
    validation(
        ValidationKind::InvalidInput,
        format!("{op}: execution not found: {execution_id}"),
    )
}

/// The execution as reads report it.
async fn read_view(
    backend: &SqliteBackend,
    op: &'static str,
    id: &ExecutionId,
) -> Result<Option<reads::ExecutionView>, EngineError> {
    let execution_id = id.to_string();
    let now = wall_clock();
    backend
        .run(op, Tx::Read, move |guest, store| {
            guest
                .flowfabric_backend_reads()
                .call_read_execution(store, &execution_id, now)
        })
        .await
}

pub(super) async fn describe_execution(
    backend: &SqliteBackend,
    id: &ExecutionId,
) -> Result<Option<ExecutionSnapshot>, EngineError> {
    read_view(backend, "describe_execution", id)
        .await?
        .map(|view| results::execution_snapshot(id, view))
        .transpose()
}

pub(super) async fn read_execution_state(
    backend: &SqliteBackend,
    id: &ExecutionId,
) -> Result<Option<PublicState>, EngineError> {
    read_view(backend, "read_execution_state", id)
        .await?
        .map(|view| results::view_public_state(&view))
        .transpose()
}

pub(super) async fn read_execution_info(
    backend: &SqliteBackend,
    id: &ExecutionId,
) -> Result<Option<ExecutionInfo>, EngineError> {
    read_view(backend, "read_execution_info", id)
        .await?
        .map(|view| results::execution_info(id, view))
        .transpose()
}

pub(super) async fn read_current_attempt_index(
    backend: &SqliteBackend,
    execution_id: &ExecutionId,
) -> Result<AttemptIndex, EngineError> {
    const OP: &str = "read_current_attempt_index";
    let view = read_view(backend, OP, execution_id).await?;
    view.map(|view| AttemptIndex::new(view.attempt_index))
        .ok_or_else(|| execution_not_found(OP, execution_id))
}

pub(super) async fn read_total_attempt_count(
    backend: &SqliteBackend,
    execution_id: &ExecutionId,
) -> Result<AttemptIndex, EngineError> {
    const OP: &str = "read_total_attempt_count";
    let view = read_view(backend, OP, execution_id).await?;
    view.map(|view| AttemptIndex::new(view.total_attempt_count))
        .ok_or_else(|| execution_not_found(OP, execution_id))
}

pub(super) async fn get_execution_result(
    backend: &SqliteBackend,
    id: &ExecutionId,
) -> Result<Option<Vec<u8>>, EngineError> {
    let execution_id = id.to_string();
    backend
        .run("get_execution_result", Tx::Read, move |guest, store| {
            guest
                .flowfabric_backend_reads()
                .call_get_execution_result(store, &execution_id)
        })
        .await
}

pub(super) async fn read_execution_context(
    backend: &SqliteBackend,
    execution_id: &ExecutionId,
) -> Result<ExecutionContext, EngineError> {
    const OP: &str = "read_execution_context";
    let id = execution_id.to_string();
    let context = backend
        .run(OP, Tx::Read, move |guest, store| {
            guest
                .flowfabric_backend_reads()
                .call_read_execution_context(store, &id)
        })
        .await?
        .ok_or_else(|| execution_not_found(OP, execution_id))?;
    Ok(ExecutionContext::new(
        context.input_payload,
        context.execution_kind,
        context.tags.into_iter().collect(),
    ))
}

pub(super) async fn ping(backend: &SqliteBackend) -> Result<(), EngineError> {
    backend
        .run("ping", Tx::Read, |guest, store| {
            guest.flowfabric_backend_reads().call_ping(store)
        })
        .await
}
