//! The wit-bindgen glue: the `engine-backend` world's generated types and traits, and the
//! `export!` macro a custom guest uses to export its own implementation of the world
//! (`ff_engine_guest::bindings::export!(MyGuest with_types_in ff_engine_guest::bindings)`).
//!
//! The generated modules sit at wit-bindgen's paths (`exports::flowfabric::backend::<family>`
//! for the exported families, `flowfabric::backend::{sql, types}` for the imports); the
//! re-exports below name each interface by its WIT name alone: [`scheduling`],
//! [`lease_holder`], [`recovery`], [`reads`], [`budgets`], [`routing`], [`workers`], [`tags`],
//! [`operator`], [`suspension`], [`streams`] and [`flows`] (each with its `Guest` trait and its own records), [`types`]
//! (shared by the families), [`sql`] (the host's database) and [`waitpoint_tokens`] (the host's
//! token signer).

wit_bindgen::generate!({
    path: "../wit",
    world: "engine-backend",
    additional_derives: [PartialEq],
    pub_export_macro: true,
});

pub use exports::flowfabric::backend::{
    budgets, flows, lease_holder, operator, reads, recovery, routing, scheduling, streams,
    suspension, tags, workers,
};
pub use flowfabric::backend::{sql, types, waitpoint_tokens};
