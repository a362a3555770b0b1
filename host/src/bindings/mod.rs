//! The generated bindings of the `engine-backend` world, and the conversions between its
//! types and ff-core's: [`args`] turns ff-core arguments into guest records, [`results`] turns
//! guest results back, [`engine_error`] maps the guest's error values ([`SqlError`] is the `sql` import's). The rest of the crate never
//! names a generated path directly.

pub(crate) mod args;
pub(crate) mod engine_error;
pub(crate) mod results;
mod sql_error;

pub(crate) use sql_error::SqlError;

mod generated {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "engine-backend",
        imports: { default: trappable },
        trappable_error_type: { "flowfabric:backend/sql.error" => crate::bindings::SqlError },
    });
}

pub(crate) use generated::EngineBackend as GuestWorld;
pub(crate) use generated::EngineBackendPre as GuestWorldPre;
pub(crate) use generated::exports::flowfabric::backend::{
    budgets, flows, lease_holder, operator, reads, recovery, routing, scheduling, streams,
    suspension, workers,
};
pub(crate) use generated::flowfabric::backend::sql as wit_sql;
pub(crate) use generated::flowfabric::backend::types;
pub(crate) use generated::flowfabric::backend::waitpoint_tokens;
