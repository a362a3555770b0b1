//! What the read operations report.

use crate::db::Db;
use crate::engine::*;

pub fn read_execution(
    _db: &mut impl Db,
    _execution_id: &str,
    _now: i64,
) -> Result<Option<ExecutionView>, EngineError> {
    Err(crate::errors::unbuilt("read_execution"))
}

pub fn get_execution_result(
    _db: &mut impl Db,
    _execution_id: &str,
) -> Result<Option<Vec<u8>>, EngineError> {
    Err(crate::errors::unbuilt("get_execution_result"))
}

pub fn read_execution_context(
    _db: &mut impl Db,
    _execution_id: &str,
) -> Result<Option<ExecutionContext>, EngineError> {
    Err(crate::errors::unbuilt("read_execution_context"))
}

pub fn ping(_db: &mut impl Db) -> Result<(), EngineError> {
    Err(crate::errors::unbuilt("ping"))
}
