//! FlowFabric's engine logic as a WebAssembly component.
//!
//! The host (`ff-backend-sqlite-wasm`) owns SQLite, the transaction and the clock; this crate
//! decides. Each exported operation validates its arguments and the stored state in
//! upstream's order, then writes through the host's `sql` import. The host commits only when
//! the operation returns `Ok`.
//!
//! Layout:
//! - `bindings`: the wit-bindgen glue (the `engine-backend` world's generated types);
//! - [`db`], the small [`db::Db`] trait the logic talks to, and its implementation over the
//!   host's `sql` import;
//! - [`ids`], execution id parsing;
//! - [`claim`], `claim-execution`.
//!
//! The logic modules depend only on [`db::Db`], so they are unit-tested natively against a
//! real SQLite database (see `tests` in each module).

mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "engine-backend",
        additional_derives: [PartialEq],
    });
}

pub mod claim;
pub mod db;
pub mod errors;
pub mod ids;
#[cfg(test)]
mod testing;

pub use bindings::exports::flowfabric::backend::engine;
pub use bindings::flowfabric::backend::sql;

use engine::{ClaimExecutionArgs, ClaimedExecution, EngineError};

/// The component: each export forwards to the logic with the host's database.
struct Component;

impl engine::Guest for Component {
    fn claim_execution(args: ClaimExecutionArgs) -> Result<ClaimedExecution, EngineError> {
        claim::claim_execution(&mut db::HostDb, &args)
    }
}

bindings::export!(Component with_types_in bindings);
