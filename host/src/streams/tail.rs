//! `tail_stream`'s wait: page; if empty and the stream is open, wait for an append of this
//! stream (or one by another process, or shutdown, or the deadline) and page again. A closed
//! stream takes no more frames, so a tail of one returns at once. The wake registration is taken before
//! the first page, so no append between the page and the wait is missed, and the deadline
//! ends with a last page, so a frame committed just before it is returned.

use std::time::Duration;

use ff_core::engine_error::EngineError;
use tokio::time::Instant;

use crate::backend::SqliteBackend;
use crate::bindings::streams::{FramePage, FrameQuery};
use crate::operation::Tx;

use super::ensure_watcher;

/// Frames after the query's start; waits up to `block_ms` for the first one unless the stream
/// is closed.
pub(crate) async fn tail(
    backend: &SqliteBackend,
    query: FrameQuery,
    block_ms: u64,
) -> Result<FramePage, EngineError> {
    let wakes = backend.wakes();
    let mut appends = wakes.stream((query.execution_id.clone(), query.attempt_index));
    let mut foreign = wakes.foreign_frames();
    let mut shutdown = backend.shutdown_signal();
    wakes.count_tail_page();
    let first = page(backend, &query).await?;
    let shutting_down = *shutdown.borrow_and_update();
    if !first.frames.is_empty() || first.closed.is_some() || block_ms == 0 || shutting_down {
        return Ok(first);
    }
    ensure_watcher(backend);
    let deadline = Instant::now() + Duration::from_millis(block_ms);
    loop {
        let last = tokio::select! {
            _ = appends.receiver().changed() => false,
            _ = foreign.changed() => false,
            _ = shutdown.wait_for(|down| *down) => true,
            () = tokio::time::sleep_until(deadline) => true,
        };
        wakes.count_tail_page();
        let next = page(backend, &query).await?;
        if last || !next.frames.is_empty() || next.closed.is_some() {
            return Ok(next);
        }
    }
}

/// One page of the query.
pub(crate) async fn page(
    backend: &SqliteBackend,
    query: &FrameQuery,
) -> Result<FramePage, EngineError> {
    let query = query.clone();
    backend
        .run("read_stream", Tx::Read, move |guest, store| {
            guest
                .flowfabric_backend_streams()
                .call_read_frames(store, &query)
        })
        .await
}
