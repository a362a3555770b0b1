//! Creating executions, granting them to workers, the lane scanner and delays.

use crate::db::Db;
use crate::engine::*;

pub fn create_execution(
    _db: &mut impl Db,
    _args: &CreateExecutionArgs,
) -> Result<CreateExecutionOutcome, EngineError> {
    Err(crate::errors::unbuilt("create_execution"))
}

pub fn issue_claim_grant(
    _db: &mut impl Db,
    _args: &IssueClaimGrantArgs,
) -> Result<(), EngineError> {
    Err(crate::errors::unbuilt("issue_claim_grant"))
}

pub fn issue_grant_and_claim(
    _db: &mut impl Db,
    _args: &IssueGrantAndClaimArgs,
) -> Result<ClaimGrantOutcome, EngineError> {
    Err(crate::errors::unbuilt("issue_grant_and_claim"))
}

pub fn claim(
    _db: &mut impl Db,
    _args: &ClaimArgs,
) -> Result<Option<ClaimedExecution>, EngineError> {
    Err(crate::errors::unbuilt("claim"))
}

pub fn promote_delayed(
    _db: &mut impl Db,
    _execution_id: &str,
    _now: i64,
) -> Result<(), EngineError> {
    Err(crate::errors::unbuilt("promote_delayed"))
}
