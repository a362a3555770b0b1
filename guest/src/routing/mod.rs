//! The `routing` interface: the scheduler-side claim path (what FlowFabric's worker SDK does in
//! `claim_next_via_backend`, and what `claim-for-worker` does in one call). It composes with
//! `scheduling`: the grants it writes are [`crate::scheduling::issue_claim_grant`]'s, consumed
//! by [`crate::scheduling::claim_execution`].
//!
//! *Eligible* means what `claim-execution` accepts without a grant check failing: `runnable`,
//! `unowned`, `eligible_now`, `attempt_state` a pending state (a new attempt; interrupted
//! executions are claimed through `claim-resumed-execution` or the lane scanner), and no
//! unexpired claim grant (expired: `0 < expires_at_ms < now`). Order: `priority DESC`,
//! `created_at_ms`, then key. A delayed execution is not eligible until `promote-delayed` (or
//! the lane scanner) picks it up.
//!
//! ## `scan-eligible-executions` ([`scan_eligible_executions`])
//!
//! Read-only; no errors of its own. Up to `limit` eligible ids of the lane in the partition
//! (`limit = 0` → none), served by `ff_exec_core_route_scan_idx` (migration 0007).
//!
//! ## `block-route` ([`block_route`])
//!
//! | # | check | result |
//! |---|---|---|
//! | 1 | `reason_code` is `waiting_for_budget`, `waiting_for_quota`, `waiting_for_capable_worker`, `paused_by_operator` or `paused_by_policy` | `Validation(InvalidBlockingReason)` |
//! | 2 | `execution_id` parses | `Validation(InvalidInput)` |
//! | 3 | the execution exists | `NotFound(execution)` |
//! | 4 | `lane_id` is the execution's lane | `Validation(InvalidInput)` |
//! | 5 | not terminal | `Ok(Rejected("execution_not_active"))` |
//! | 6 | `runnable` and `unowned`, eligibility `eligible_now` or `blocked_by_*` | `Ok(Rejected("execution_not_eligible"))` |
//!
//! Writes: `eligibility_state` from the reason (`blocked_by_budget`, `blocked_by_quota`,
//! `blocked_by_route`, `blocked_by_operator`, `blocked_by_lane_state`), `blocking_reason` =
//! the code, `public_state = rate_limited`, `raw_fields.blocking_detail` and
//! `raw_fields.last_mutation_at`; lifecycle, ownership and `attempt_state` are kept.
//!
//! ## `unblock-execution` ([`unblock_execution`])
//!
//! | # | check | result |
//! |---|---|---|
//! | 1 | `expected_blocking_reason` is `waiting_for_budget`, `waiting_for_quota` or `waiting_for_capable_worker` | `Validation(InvalidBlockingReason)` |
//! | 2 | `execution_id` parses | `Validation(InvalidInput)` |
//! | 3 | the execution exists | `NotFound(execution)` |
//! | 4 | `lane_id` is the execution's lane | `Validation(InvalidInput)` |
//! | 5 | `runnable`, eligibility `blocked_by_budget`/`_quota`/`_route`/`_operator`, `blocking_reason` = the expected one | else `Ok(())`, nothing written |
//!
//! Writes: `eligible_now`, `public_state = waiting`, `blocking_reason = waiting_for_worker`,
//! `raw_fields.blocking_detail` removed, `raw_fields.last_mutation_at`.
//!
//! ## `claim-for-worker` ([`claim_for_worker`])
//!
//! | # | check | error |
//! |---|---|---|
//! | 1 | `grant_ttl_ms > 0` | `Validation(InvalidInput)` |
//! | 2 | `worker_id` is not empty | `Validation(InvalidInput)` |
//! | 3 | every capability is non-empty, without `,`, whitespace or control characters | `Validation(InvalidCapabilities)` |
//!
//! The best eligible execution of the lane in any partition whose non-empty required
//! capabilities the worker covers; none → `Ok(None)`, nothing written. Otherwise its claim
//! grant is written by [`crate::scheduling::issue_claim_grant`] (same row, same checks) and
//! returned with the grant's id as `grant_key`.

mod block;
mod claim_for_worker;
mod scan;

pub use block::{block_route, unblock_execution};
pub(crate) use block::{is_blockable, park};
pub use claim_for_worker::claim_for_worker;
pub use scan::scan_eligible_executions;

use crate::errors::invalid_input;
use crate::exec::Exec;
use crate::types::EngineError;

/// `Validation(InvalidInput)` unless `lane_id` is the execution's lane.
pub(crate) fn require_lane(exec: &Exec, lane_id: &str) -> Result<(), EngineError> {
    if exec.lane_id == lane_id {
        Ok(())
    } else {
        Err(invalid_input(format!(
            "lane_id {lane_id:?} is not the execution's lane {:?}",
            exec.lane_id
        )))
    }
}

/// The SQL predicate (over `ff_exec_core AS e`, with `now` as `?NOW`) for "eligible" in the
/// module docs' sense, minus the lane and partition.
macro_rules! eligible_predicate {
    ($now:literal) => {
        concat!(
            "e.lifecycle_phase = 'runnable' AND e.ownership_state = 'unowned' \
             AND e.eligibility_state = 'eligible_now' \
             AND e.attempt_state IN ('pending_first_attempt', 'pending', 'initial', \
                 'pending_retry_attempt', 'pending_replay_attempt') \
             AND NOT EXISTS (SELECT 1 FROM ff_claim_grant AS g \
                 WHERE g.partition_key = e.partition_key AND g.execution_id = e.execution_id \
                     AND g.kind = 'claim' AND NOT (g.expires_at_ms > 0 AND g.expires_at_ms < ",
            $now,
            "))"
        )
    };
}
use eligible_predicate;

#[cfg(test)]
mod test_support {
    use crate::ids::ExecutionRef;
    use crate::testing::TestDb;

    /// The canonical id of the execution [`seed`] writes as `n` in `partition`.
    pub fn id(partition: u16, n: u8) -> String {
        ExecutionRef::parse(&format!(
            "{{fp:{partition}}}:{}",
            uuid::Uuid::from_u128(u128::from(n)).hyphenated()
        ))
        .unwrap()
        .canonical()
    }

    /// Seed an eligible execution `n` (lane `default`) in `partition` with the given priority,
    /// creation time and required capabilities.
    pub fn seed(db: &TestDb, n: u8, partition: u16, priority: i64, created: i64, caps: &[&str]) {
        let hex = format!("{n:032x}");
        db.exec(&format!(
            "INSERT INTO ff_exec_core (partition_key, execution_id, lane_id, attempt_index, lifecycle_phase, \
                 ownership_state, eligibility_state, public_state, attempt_state, priority, created_at_ms, raw_fields) \
             VALUES ({partition}, X'{hex}', 'default', 0, 'runnable', 'unowned', 'eligible_now', 'waiting', \
                 'pending_first_attempt', {priority}, {created}, '{{\"namespace\":\"ns\"}}')"
        ));
        for cap in caps {
            db.exec(&format!(
                "INSERT INTO ff_execution_capabilities VALUES (X'{hex}', '{cap}')"
            ));
        }
    }
}
