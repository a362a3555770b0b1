//! Operator operations and low-level reads: `change_priority`, `read_exec_core_fields`,
//! `list_lanes`, `server_time_ms` (the database's clock); the guest's `operator` interface.

use std::collections::HashMap;

use ff_core::contracts::{ChangePriorityArgs, ChangePriorityResult, ListLanesPage};
use ff_core::engine_error::{EngineError, ValidationKind};
use ff_core::partition::Partition;
use ff_core::types::{ExecutionId, LaneId};

use crate::backend::SqliteBackend;
use crate::bindings::args::validation;
use crate::bindings::operator;
use crate::error::OperationFailure;
use crate::operation::Tx;

pub(super) async fn change_priority(
    backend: &SqliteBackend,
    args: ChangePriorityArgs,
) -> Result<ChangePriorityResult, EngineError> {
    let guest_args = operator::ChangePriorityArgs {
        execution_id: args.execution_id.to_string(),
        new_priority: args.new_priority,
        now: args.now.0,
    };
    backend
        .run("change_priority", Tx::Write, move |guest, store| {
            guest
                .flowfabric_backend_operator()
                .call_change_priority(store, &guest_args)
        })
        .await?;
    Ok(ChangePriorityResult::Changed {
        execution_id: args.execution_id,
    })
}

pub(super) async fn read_exec_core_fields(
    backend: &SqliteBackend,
    partition: Partition,
    execution_id: &ExecutionId,
    fields: &[&str],
) -> Result<HashMap<String, Option<String>>, EngineError> {
    if fields.is_empty() {
        return Ok(HashMap::new());
    }
    if partition.index != execution_id.partition() {
        return Err(validation(
            ValidationKind::InvalidInput,
            format!(
                "read_exec_core_fields: partition mismatch (arg={}, eid={})",
                partition.index,
                execution_id.partition()
            ),
        ));
    }
    let id = execution_id.to_string();
    let names: Vec<String> = fields.iter().map(|name| (*name).to_owned()).collect();
    let asked = names.clone();
    let values = backend
        .run("read_exec_core_fields", Tx::Read, move |guest, store| {
            guest
                .flowfabric_backend_operator()
                .call_read_exec_core_fields(store, &id, &asked)
        })
        .await?;
    Ok(names.into_iter().zip(values).collect())
}

pub(super) async fn list_lanes(
    backend: &SqliteBackend,
    cursor: Option<LaneId>,
    limit: usize,
) -> Result<ListLanesPage, EngineError> {
    let after = cursor.map(|lane| lane.to_string());
    let limit = u32::try_from(limit).unwrap_or(u32::MAX);
    let page = backend
        .run("list_lanes", Tx::Read, move |guest, store| {
            guest
                .flowfabric_backend_operator()
                .call_list_lanes(store, after.as_deref(), limit)
        })
        .await?;
    let lane = |text: String| {
        LaneId::try_new(text.clone()).map_err(|_| {
            EngineError::from(OperationFailure::malformed("list_lanes", "lane_id", &text))
        })
    };
    Ok(ListLanesPage::new(
        page.lanes.into_iter().map(lane).collect::<Result<_, _>>()?,
        page.next_cursor.map(lane).transpose()?,
    ))
}

pub(super) async fn server_time_ms(backend: &SqliteBackend) -> Result<u64, EngineError> {
    let now = backend
        .run("server_time_ms", Tx::Read, move |guest, store| {
            guest
                .flowfabric_backend_operator()
                .call_server_time_ms(store)
        })
        .await?;
    // The guest refuses a negative clock.
    Ok(u64::try_from(now).unwrap_or(0))
}
