//! The changed policy: the lane scanner takes the oldest claimable execution of the lane,
//! whatever its priority. Which executions count as claimable, the capability match and the way
//! the lease is taken are the built-in guest's (`ff_engine_guest::scheduling::claim`); only the
//! `ORDER BY` differs.

use ff_engine_guest::bindings::scheduling::ClaimArgs;
use ff_engine_guest::claimable_scan;
use ff_engine_guest::db::Db;
use ff_engine_guest::scheduling::claim_first;
use ff_engine_guest::types::{ClaimedExecution, EngineError};

/// The oldest claimable execution of the lane: the built-in scanner's filter, ordered by
/// creation time only.
const OLDEST_CLAIMABLE: &str =
    claimable_scan!("e.created_at_ms ASC, e.partition_key, e.execution_id");

/// Lease the oldest claimable execution of `args.lane_id` that the worker's capabilities
/// cover; `None` (nothing written) when there is none. Validates and leases as the built-in
/// scanner does.
pub fn claim(db: &mut impl Db, args: &ClaimArgs) -> Result<Option<ClaimedExecution>, EngineError> {
    claim_first(db, args, OLDEST_CLAIMABLE)
}
