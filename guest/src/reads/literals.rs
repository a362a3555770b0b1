//! Stored state literals as ff-core's serde names: the translations in the table of the parent
//! module's docs, and the terminal outcome a read reports.

/// The execution's terminal outcome as ff-core's serde name: `None` unless the execution is
/// terminal; `cancelled` for upstream's `cancelled` lifecycle; otherwise the recorded outcome,
/// else the current attempt's, when it is one ff-core knows (`None` when neither is).
pub(super) fn terminal_outcome(
    raw_lifecycle: &str,
    lifecycle_phase: &str,
    recorded: Option<String>,
    attempt_outcome: Option<String>,
) -> Option<String> {
    if lifecycle_phase != "terminal" {
        return None;
    }
    if raw_lifecycle == "cancelled" {
        return Some("cancelled".into());
    }
    let known = |outcome: &str| {
        matches!(
            outcome,
            "success" | "failed" | "cancelled" | "expired" | "skipped"
        )
    };
    recorded
        .filter(|outcome| known(outcome))
        .or(attempt_outcome.filter(|outcome| known(outcome)))
}

/// `lifecycle_phase` as ff-core's serde name.
pub(super) fn normalize_lifecycle(raw: &str) -> &str {
    match raw {
        "cancelled" | "terminal" => "terminal",
        "pending" | "runnable" | "eligible" | "blocked" => "runnable",
        other => other,
    }
}

/// `ownership_state` as ff-core's serde name.
pub(super) fn normalize_ownership(raw: &str) -> String {
    match raw {
        "released" | "unowned" => "unowned".into(),
        other => other.into(),
    }
}

/// `eligibility_state` as ff-core's serde name.
pub(super) fn normalize_eligibility(raw: &str) -> String {
    match raw {
        "cancelled" => "not_applicable".into(),
        "pending_claim" => "eligible_now".into(),
        other => other.into(),
    }
}

/// `attempt_state` as ff-core's serde name.
pub(super) fn normalize_attempt_state(raw: &str) -> String {
    match raw {
        "pending" | "pending_claim" | "initial" => "pending_first_attempt".into(),
        "running" => "running_attempt".into(),
        "cancelled" => "attempt_terminal".into(),
        other => other.into(),
    }
}

/// `public_state` as ff-core's serde name.
pub(super) fn normalize_public(raw: &str) -> String {
    match raw {
        "running" | "claimed" => "active".into(),
        "pending" => "waiting".into(),
        other => other.into(),
    }
}
