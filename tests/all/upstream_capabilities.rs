//! Upstream's `capabilities.rs`: what the backend says about itself, with our identity
//! (`docs/semantics.md` § Upstream test ports, "Identity").

use crate::support::*;
use ff_core::engine_backend::EngineBackend;
use serial_test::parallel;

/// Upstream's flags, as ours stand. Differences, each a decision: the family and label are
/// `sqlite-wasm`; `rfc017_stage` is `unknown` (we hold no RFC-017 stage certificate);
/// `claim_for_worker` is built here (Postgres/Valkey semantics, § Routing), and so are the
/// flags upstream SQLite leaves false (`subscribe_instance_tags`, `block_execution_for_admission`).
#[tokio::test]
#[parallel(process)]
async fn capabilities_identity_and_supports() {
    dev_mode();
    let backend = ff_backend_sqlite_wasm::SqliteBackend::new(":memory:")
        .await
        .expect("init under FF_DEV_MODE=1");
    let caps = backend.capabilities();
    assert_eq!(caps.identity.family, "sqlite-wasm");
    assert_eq!(caps.identity.rfc017_stage, "unknown");
    let s = caps.supports;
    for (flag, name) in [
        (s.cancel_flow_wait_timeout, "cancel_flow_wait_timeout"),
        (s.cancel_flow_wait_indefinite, "cancel_flow_wait_indefinite"),
        (
            s.rotate_waitpoint_hmac_secret_all,
            "rotate_waitpoint_hmac_secret_all",
        ),
        (s.seed_waitpoint_hmac_secret, "seed_waitpoint_hmac_secret"),
        (s.subscribe_lease_history, "subscribe_lease_history"),
        (s.subscribe_completion, "subscribe_completion"),
        (s.stream_durable_summary, "stream_durable_summary"),
        (s.stream_best_effort_live, "stream_best_effort_live"),
        (s.cancel_execution, "cancel_execution"),
        (s.change_priority, "change_priority"),
        (s.revoke_lease, "revoke_lease"),
        (s.read_execution_state, "read_execution_state"),
        (s.read_execution_info, "read_execution_info"),
        (s.get_execution_result, "get_execution_result"),
        (s.budget_admin, "budget_admin"),
        (s.quota_admin, "quota_admin"),
        (s.list_pending_waitpoints, "list_pending_waitpoints"),
        (s.cancel_flow_header, "cancel_flow_header"),
        (s.ack_cancel_member, "ack_cancel_member"),
        (s.prepare, "prepare"),
        (s.claim_for_worker, "claim_for_worker"),
        (s.subscribe_signal_delivery, "subscribe_signal_delivery"),
        (s.subscribe_instance_tags, "subscribe_instance_tags"),
        (s.replay_execution, "replay_execution"),
        (
            s.block_execution_for_admission,
            "block_execution_for_admission",
        ),
    ] {
        assert!(flag, "{name}");
    }
    assert_eq!(backend.backend_label(), "sqlite-wasm");
}
