//! Cancel, revoke, suspension resume, lease expiry and reclaim.

use crate::db::Db;
use crate::engine::*;

pub fn cancel_execution(_db: &mut impl Db, _args: &CancelExecutionArgs) -> Result<(), EngineError> {
    Err(crate::errors::unbuilt("cancel_execution"))
}

pub fn revoke_lease(
    _db: &mut impl Db,
    _args: &RevokeLeaseArgs,
) -> Result<RevokeLeaseOutcome, EngineError> {
    Err(crate::errors::unbuilt("revoke_lease"))
}

pub fn claim_resumed_execution(
    _db: &mut impl Db,
    _args: &ClaimResumedExecutionArgs,
) -> Result<ClaimedExecution, EngineError> {
    Err(crate::errors::unbuilt("claim_resumed_execution"))
}

pub fn resume_execution(
    _db: &mut impl Db,
    _args: &ResumeExecutionArgs,
) -> Result<PublicState, EngineError> {
    Err(crate::errors::unbuilt("resume_execution"))
}

pub fn mark_lease_expired_if_due(
    _db: &mut impl Db,
    _execution_id: &str,
    _now: i64,
) -> Result<(), EngineError> {
    Err(crate::errors::unbuilt("mark_lease_expired_if_due"))
}

pub fn list_expired_leases(
    _db: &mut impl Db,
    _args: &ListExpiredLeasesArgs,
) -> Result<Vec<ExpiredLease>, EngineError> {
    Err(crate::errors::unbuilt("list_expired_leases"))
}

pub fn issue_reclaim_grant(
    _db: &mut impl Db,
    _args: &IssueReclaimGrantArgs,
) -> Result<IssueReclaimGrantOutcome, EngineError> {
    Err(crate::errors::unbuilt("issue_reclaim_grant"))
}

pub fn reclaim_execution(
    _db: &mut impl Db,
    _args: &ReclaimExecutionArgs,
) -> Result<ReclaimExecutionOutcome, EngineError> {
    Err(crate::errors::unbuilt("reclaim_execution"))
}

pub fn claim_from_resume_grant(
    _db: &mut impl Db,
    _args: &ResumeGrantClaimArgs,
) -> Result<Option<ClaimedExecution>, EngineError> {
    Err(crate::errors::unbuilt("claim_from_resume_grant"))
}
