//! The lease fixture only the recovery tests use; the shared ones live in `crate::testing`.

use crate::testing::{NOW, TTL, TestDb};

/// A database holding [`EXEC`](crate::testing::EXEC) leased the way upstream's tests seed it: no lease or attempt
/// ids recorded, attempt 0 at epoch 3, instance `wi-h`, expiring at `NOW + TTL`.
pub fn hand_leased() -> TestDb {
    let db = TestDb::runnable();
    db.exec(&format!(
        "UPDATE ff_exec_core SET lifecycle_phase = 'active', ownership_state = 'leased', \
             eligibility_state = 'not_applicable', public_state = 'running', \
             attempt_state = 'running_attempt';
         INSERT INTO ff_attempt (partition_key, execution_id, attempt_index, worker_id, \
             worker_instance_id, lease_epoch, lease_expires_at_ms, started_at_ms) \
         SELECT 0, execution_id, 0, 'worker-h', 'wi-h', 3, {}, {NOW} FROM ff_exec_core",
        NOW + TTL as i64
    ));
    db
}
