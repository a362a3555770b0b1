//! The integration tests of `ff-backend-sqlite-wasm`, in one binary (as wasmtime's `tests/all`):
//! one module per topic, and `support`, the helpers they share.
//!
//! Every test that constructs a backend is `#[serial(ff_dev_mode)]`: constructions read
//! `FF_DEV_MODE`, which `construction::refuses_without_dev_mode` removes and changes.

mod support;

mod bad_input;
mod claim_execution;
mod completion;
mod construction;
mod custom_guest;
mod group_commit;
mod guest_containment;
mod lifecycle;
mod processes;
mod races;
mod reads;
mod recovery;
mod sandbox;
mod scheduling;
mod typed_claim_execution;
