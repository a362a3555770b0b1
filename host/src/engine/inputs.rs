//! What the engine layer supplies that ff-core's arguments lack: the wall clock for operations
//! whose arguments carry no `now`, fresh lease and attempt ids, and the partition check. The
//! guest itself reads no clock and mints no ids, so it stays deterministic.

use ff_core::engine_error::{EngineError, ValidationKind};
use ff_core::partition::{Partition, PartitionFamily};
use ff_core::types::{AttemptId, ExecutionId, LeaseId, TimestampMs};

use crate::bindings::args::validation;

/// The wall clock, for operations whose ff-core arguments carry no `now`.
pub(super) fn wall_clock() -> i64 {
    TimestampMs::now().0
}

/// `Validation { InvalidInput }` unless `partition` is the execution id's own (flow/execution)
/// partition.
pub(super) fn check_partition(
    partition: &Partition,
    execution_id: &ExecutionId,
) -> Result<(), EngineError> {
    let execution_family = matches!(
        partition.family,
        PartitionFamily::Flow | PartitionFamily::Execution
    );
    if execution_family && partition.index == execution_id.partition() {
        Ok(())
    } else {
        Err(validation(
            ValidationKind::InvalidInput,
            format!(
                "partition {} does not hold execution {execution_id}",
                partition.index
            ),
        ))
    }
}

/// A fresh lease id and attempt id.
pub(super) fn fresh_ids() -> (LeaseId, AttemptId) {
    (LeaseId::new(), AttemptId::new())
}
