//! What this backend reports about itself: its identity and which operations it supports.

use ff_core::capability::{BackendIdentity, Capabilities, Supports, Version};

use crate::error::BACKEND_LABEL;

/// The capability set: `true` exactly for the operations that are built.
pub(super) fn capabilities() -> Capabilities {
    let mut supports = Supports::none();
    supports.cancel_execution = true;
    supports.revoke_lease = true;
    supports.read_execution_state = true;
    supports.read_execution_info = true;
    supports.get_execution_result = true;
    supports.issue_reclaim_grant = true;
    supports.prepare = true;
    supports.list_expired_leases = true;
    supports.budget_admin = true;
    supports.quota_admin = true;
    supports.read_budget_usage_and_limits = true;
    supports.read_quota_policy_limits = true;
    supports.release_admission = true;
    supports.block_execution_for_admission = true;
    supports.claim_for_worker = true;
    supports.change_priority = true;
    supports.replay_execution = true;
    supports.register_worker = true;
    supports.heartbeat_worker = true;
    supports.mark_worker_dead = true;
    supports.list_workers = true;
    supports.seed_waitpoint_hmac_secret = true;
    supports.rotate_waitpoint_hmac_secret_all = true;
    supports.list_pending_waitpoints = true;

    supports.stream_durable_summary = true;
    supports.stream_best_effort_live = true;
    supports.subscribe_completion = true;
    supports.subscribe_lease_history = true;
    supports.subscribe_signal_delivery = true;
    supports.subscribe_instance_tags = true;
    supports.cancel_flow_wait_timeout = true;
    supports.cancel_flow_wait_indefinite = true;
    supports.cancel_flow_header = true;
    supports.ack_cancel_member = true;
    Capabilities::new(
        BackendIdentity::new(BACKEND_LABEL, crate_version(), "unknown"),
        supports,
    )
}

/// This crate's version, as ff-core's `Version`.
fn crate_version() -> Version {
    let part = |text: &str| text.parse().unwrap_or(0);
    Version::new(
        part(env!("CARGO_PKG_VERSION_MAJOR")),
        part(env!("CARGO_PKG_VERSION_MINOR")),
        part(env!("CARGO_PKG_VERSION_PATCH")),
    )
}
