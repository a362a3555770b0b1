//! Execution tags and namespace: `set_execution_tag`, `get_execution_tag`,
//! `get_execution_namespace`; the guest's `tags` interface.

use ff_core::engine_error::EngineError;
use ff_core::types::ExecutionId;

use crate::backend::SqliteBackend;
use crate::operation::Tx;

pub(super) async fn set_execution_tag(
    backend: &SqliteBackend,
    execution_id: &ExecutionId,
    key: &str,
    value: &str,
) -> Result<(), EngineError> {
    let (id, key, value) = (execution_id.to_string(), key.to_owned(), value.to_owned());
    backend
        .run("set_execution_tag", Tx::Write, move |guest, store| {
            guest
                .flowfabric_backend_tags()
                .call_set_execution_tag(store, &id, &key, &value)
        })
        .await
}

pub(super) async fn get_execution_tag(
    backend: &SqliteBackend,
    execution_id: &ExecutionId,
    key: &str,
) -> Result<Option<String>, EngineError> {
    let (id, key) = (execution_id.to_string(), key.to_owned());
    backend
        .run("get_execution_tag", Tx::Read, move |guest, store| {
            guest
                .flowfabric_backend_tags()
                .call_get_execution_tag(store, &id, &key)
        })
        .await
}

pub(super) async fn get_execution_namespace(
    backend: &SqliteBackend,
    execution_id: &ExecutionId,
) -> Result<Option<String>, EngineError> {
    let id = execution_id.to_string();
    backend
        .run("get_execution_namespace", Tx::Read, move |guest, store| {
            guest
                .flowfabric_backend_tags()
                .call_get_execution_namespace(store, &id)
        })
        .await
}
