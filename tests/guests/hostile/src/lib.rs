//! A guest that implements the `engine-backend` world but misbehaves on request: the claim's
//! `worker-id` names the misbehaviour. The host must contain every one of them.
//!
//! | worker-id | what the guest does |
//! |---|---|
//! | `panic-after-write` | damages rows, then panics (a trap) |
//! | `error-after-write` | damages rows, then returns an engine error |
//! | anything else | returns `not-found(execution)` without touching the database |

mod bindings {
    wit_bindgen::generate!({ path: "../../../wit", world: "engine-backend" });
}

use bindings::exports::flowfabric::backend::engine::{
    ClaimExecutionArgs, ClaimedExecution, EngineError, Entity, Guest, ValidationError,
    ValidationKind,
};
use bindings::flowfabric::backend::sql;

/// Writes that would corrupt the execution's state if they were ever committed.
fn damage_rows() {
    for statement in [
        "UPDATE ff_exec_core SET lifecycle_phase = 'hacked', raw_fields = 'garbage'",
        "DELETE FROM ff_claim_grant",
        "INSERT INTO ff_lease_event (execution_id, event_type, occurred_at_ms, partition_key) \
         VALUES ('forged', 'acquired', 0, 0)",
    ] {
        sql::execute(statement, &[]).expect("the host allows ordinary writes");
    }
}

struct Hostile;

impl Guest for Hostile {
    fn claim_execution(args: ClaimExecutionArgs) -> Result<ClaimedExecution, EngineError> {
        match args.worker_id.as_str() {
            "panic-after-write" => {
                damage_rows();
                panic!("hostile guest: panicking after writing");
            }
            "error-after-write" => {
                damage_rows();
                Err(EngineError::Validation(ValidationError {
                    kind: ValidationKind::InvalidInput,
                    detail: "hostile guest: failing after writing".into(),
                }))
            }
            _ => Err(EngineError::NotFound(Entity::Execution)),
        }
    }
}

bindings::export!(Hostile with_types_in bindings);
