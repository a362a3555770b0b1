//! Upstream's `subscribe.rs` test that the streams port (`streams.rs`) left out: a lease-history
//! subscription filtered by instance tag. Set-up changed only: our backend, executions created
//! and claimed through the public API.

use crate::support::*;
use ff_backend_sqlite_wasm::SqliteBackend;
use ff_core::backend::{CapabilitySet, Handle, ScannerFilter};
use ff_core::engine_backend::EngineBackend;
use ff_core::stream_events::LeaseHistoryEvent;
use ff_core::stream_subscribe::StreamCursor;
use ff_core::types::{ExecutionId, LaneId};
use serial_test::parallel;
use std::time::Duration;
use tokio_stream::StreamExt;
use uuid::Uuid;

/// A safety net against a hung test (not an assertion on timing).
const PATIENCE: Duration = Duration::from_secs(20);

/// Upstream's `create_and_claim_tagged`: an execution with the `tag` (if any) on a lane of its
/// own, leased by the lane scanner.
async fn create_and_claim_tagged(
    backend: &SqliteBackend,
    tag: Option<(&str, &str)>,
) -> (ExecutionId, Handle) {
    let lane = LaneId::new(format!("lane-{}", Uuid::new_v4()));
    let eid = new_execution_id();
    let mut args = upstream_create_args(&eid, &lane);
    args.tags = tag
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .into_iter()
        .collect();
    backend.create_execution(args).await.expect("create");
    let handle = backend
        .claim(&lane, &CapabilitySet::default(), claim_policy())
        .await
        .expect("claim")
        .expect("handle");
    (eid, handle)
}

#[tokio::test]
#[parallel(process)]
async fn subscribe_lease_history_filter_by_instance_tag_receives_events() {
    let backend = fresh_backend("subscribe-lease-tag").await;
    let filter = ScannerFilter::new().with_instance_tag("cairn.instance_id", "i-42");
    let mut stream = backend
        .subscribe_lease_history(StreamCursor::empty(), &filter)
        .await
        .expect("subscribe");

    // Untagged: the filter drops its events.
    let (_, untagged) = create_and_claim_tagged(&backend, None).await;
    backend
        .complete(&untagged, None)
        .await
        .expect("complete untagged");
    // Tagged: acquired and revoked both pass.
    let (tagged_eid, tagged) =
        create_and_claim_tagged(&backend, Some(("cairn.instance_id", "i-42"))).await;
    backend
        .complete(&tagged, None)
        .await
        .expect("complete tagged");

    let mut events = Vec::new();
    for _ in 0..2 {
        let event = tokio::time::timeout(PATIENCE, stream.next())
            .await
            .expect("an event within the patience window")
            .expect("the stream is open")
            .expect("an event, not an error");
        events.push(event);
    }
    // Beyond upstream: both events are the tagged execution's (the untagged one's would match
    // the two variants too).
    assert!(
        events
            .iter()
            .all(|event| event.execution_id() == &tagged_eid),
        "{events:?}"
    );
    assert!(
        matches!(events[0], LeaseHistoryEvent::Acquired { .. }),
        "{events:?}"
    );
    assert!(
        matches!(events[1], LeaseHistoryEvent::Revoked { .. }),
        "{events:?}"
    );
}
