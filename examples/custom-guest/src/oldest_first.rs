//! The changed policy: the lane scanner takes the oldest claimable execution of the lane,
//! whatever its priority. Which executions count as claimable, the capability match and the way
//! the lease is taken are the built-in guest's (`ff_engine_guest::scheduling::claim`); only the
//! `ORDER BY` differs.

use ff_engine_guest::db::{Db, DbExt, int, text};
use ff_engine_guest::engine::{ClaimArgs, ClaimedExecution, EngineError};
use ff_engine_guest::errors::{corruption, require_positive, require_worker_id};
use ff_engine_guest::exec::Exec;
use ff_engine_guest::ids::ExecutionRef;
use ff_engine_guest::json;
use ff_engine_guest::lease::Claimant;
use ff_engine_guest::scheduling::lease_claimable;

/// The oldest claimable execution of lane `?1` at time `?2` whose required capabilities are
/// all in the JSON array `?3`: the built-in scanner's filter, ordered by creation time only.
const OLDEST_CLAIMABLE: &str = "SELECT partition_key, lower(hex(execution_id)) FROM ff_exec_core AS e \
     WHERE e.lane_id = ?1 AND e.lifecycle_phase = 'runnable' AND e.ownership_state = 'unowned' \
         AND (e.eligibility_state = 'eligible_now' \
             OR (e.eligibility_state = 'not_eligible_until_time' \
                 AND CAST(json_extract(e.raw_fields, '$.delay_until') AS INTEGER) <= ?2)) \
         AND e.attempt_state IN ('attempt_interrupted', 'pending_first_attempt', 'pending', 'initial', \
             'pending_retry_attempt', 'pending_replay_attempt') \
         AND NOT EXISTS (SELECT 1 FROM ff_execution_capabilities AS c \
             WHERE c.execution_id = e.execution_id AND c.capability <> '' \
                 AND c.capability NOT IN (SELECT value FROM json_each(?3))) \
     ORDER BY e.created_at_ms ASC, e.partition_key, e.execution_id \
     LIMIT 1";

/// Lease the oldest claimable execution of `args.lane_id` that the worker's capabilities
/// cover; `None` (nothing written) when there is none. Validates as the built-in scanner does.
pub fn claim(db: &mut impl Db, args: &ClaimArgs) -> Result<Option<ClaimedExecution>, EngineError> {
    require_positive("lease_ttl_ms", args.lease_ttl_ms)?;
    require_worker_id(&args.worker_id)?;
    let capabilities = json::string_array(args.capabilities.iter().map(String::as_str));
    let Some(row) = db.first_row(
        OLDEST_CLAIMABLE,
        &[text(&args.lane_id), int(args.now), text(capabilities)],
    )?
    else {
        return Ok(None);
    };
    let (Some(partition), Some(uuid)) = (row.integer(0), row.text(1)) else {
        return Err(corruption("claim: execution key missing"));
    };
    let id = ExecutionRef::parse(&format!("{{fp:{partition}}}:{uuid}")).map_err(|_| {
        corruption(format!(
            "claim: unreadable execution key {partition}:{uuid}"
        ))
    })?;
    let exec = Exec::require(db, &id)?;
    let claimant = Claimant {
        worker_id: &args.worker_id,
        worker_instance_id: &args.worker_instance_id,
        lease_id: &args.lease_id,
        attempt_id: &args.attempt_id,
        lease_ttl_ms: args.lease_ttl_ms,
        now: args.now,
    };
    // The query only returns executions in a state the built-in lease path handles.
    let leased = lease_claimable(db, &exec, &claimant)?.ok_or_else(|| {
        corruption(format!(
            "claim: {} is in no claimable attempt state",
            id.canonical()
        ))
    })?;
    Ok(Some(leased.claimed(id.canonical(), &claimant)))
}
