//! The lease holder's operations: renew, complete, fail (with the retry policy) and progress,
//! through the typed API (fences) and through worker handles.

use crate::db::Db;
use crate::engine::*;

pub fn renew_lease(_db: &mut impl Db, _args: &RenewLeaseArgs) -> Result<i64, EngineError> {
    Err(crate::errors::unbuilt("renew_lease"))
}

pub fn complete_execution(
    _db: &mut impl Db,
    _args: &CompleteExecutionArgs,
) -> Result<(), EngineError> {
    Err(crate::errors::unbuilt("complete_execution"))
}

pub fn fail_execution(
    _db: &mut impl Db,
    _args: &FailExecutionArgs,
) -> Result<FailOutcome, EngineError> {
    Err(crate::errors::unbuilt("fail_execution"))
}

pub fn renew(_db: &mut impl Db, _lease: &HandleLease, _now: i64) -> Result<i64, EngineError> {
    Err(crate::errors::unbuilt("renew"))
}

pub fn progress(
    _db: &mut impl Db,
    _lease: &HandleLease,
    _percent: Option<u8>,
    _message: Option<&str>,
    _now: i64,
) -> Result<(), EngineError> {
    Err(crate::errors::unbuilt("progress"))
}

pub fn complete(
    _db: &mut impl Db,
    _lease: &HandleLease,
    _payload: Option<&[u8]>,
    _now: i64,
) -> Result<(), EngineError> {
    Err(crate::errors::unbuilt("complete"))
}

pub fn fail(
    _db: &mut impl Db,
    _lease: &HandleLease,
    _message: &str,
    _class: FailureClass,
    _now: i64,
) -> Result<FailOutcome, EngineError> {
    Err(crate::errors::unbuilt("fail"))
}
