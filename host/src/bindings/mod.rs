//! The generated bindings of the `engine-backend` world, and the conversions between its
//! types and ff-core's: [`args`] turns ff-core arguments into guest records, [`results`] turns
//! guest results back, [`errors`] maps the guest's error values. The rest of the crate never
//! names a generated path directly.

pub(crate) mod args;
pub(crate) mod errors;
pub(crate) mod results;

mod generated {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "engine-backend",
        imports: { default: trappable },
        trappable_error_type: { "flowfabric:backend/sql.error" => crate::sql::SqlError },
    });
}

pub(crate) use generated::EngineBackend as GuestWorld;
pub(crate) use generated::EngineBackendPre as GuestWorldPre;
pub(crate) use generated::exports::flowfabric::backend::engine as wit;
pub(crate) use generated::flowfabric::backend::sql as wit_sql;
