//! FlowFabric's engine logic as a WebAssembly component.
//!
//! The host (`ff-backend-sqlite-wasm`) owns SQLite, the transaction and the clock; this crate
//! decides. Each exported operation validates its arguments and the stored state in
//! upstream's order, then writes through the host's `sql` import. The host commits only when
//! the operation returns `Ok`.
//!
//! Layout:
//! - the component: [`bindings`], the wit-bindgen glue (the `engine-backend` world's generated
//!   types and traits, and the `export!` macro custom guests use); [`component`], the built-in
//!   [`Component`] (one `Guest` implementation per exported interface), its export and its
//!   allocator;
//! - the operation families, one folder per exported WIT interface:
//!   - [`scheduling`]: creating executions, granting, `claim-execution`, the lane scanner,
//!     delays;
//!   - [`lease_holder`]: the lease holder's operations: renew, complete, fail, progress;
//!   - [`recovery`]: cancel, revoke, suspension resume, lease expiry and reclaim;
//!   - [`reads`]: what the read operations report;
//!   - [`budgets`]: budgets, usage reports, quota policies and admission;
//!   - [`suspension`]: suspending on waitpoints, signals, resumable executions (tokens signed
//!     by the host);
//!   - [`streams`]: attempt output streams (append, pages, the summary document) and pages
//!     of the outboxes that subscriptions follow;
//!   - [`flows`]: flows, dependency edges and their enforcement;
//! - what the families share:
//!   - [`db`], the small [`db::Db`] trait the logic talks to, and its implementation over the
//!     host's `sql` import ([`packed`]: the parameters and rows as it sends them);
//!   - [`errors`], the engine errors the logic returns (and SQL failures as `storage` errors);
//!   - [`ids`], execution id parsing;
//!   - [`exec`], the execution and attempt rows, the state vectors, fencing, the outbox;
//!   - [`lease`], the one write path every claim takes;
//!   - [`json`], writing JSON text (SQLite reads it);
//!   - [`small_blocks`], the component's allocator (free lists of small blocks);
//!   - `native_db` (feature `native-db`), the logic's [`db::Db`] over rusqlite, to run it
//!     natively.
//!
//! The logic modules depend only on [`db::Db`], so they are unit-tested natively against a
//! real SQLite database (see `tests` in each module).

pub mod bindings;
pub mod component;

pub mod budgets;
pub mod flows;
pub mod lease_holder;
pub mod operator;
pub mod reads;
pub mod recovery;
pub mod routing;
pub mod scheduling;
pub mod streams;
pub mod suspension;
pub mod tags;
pub mod workers;

pub mod db;
pub mod errors;
pub mod exec;
#[cfg(test)]
mod flow_enforcement_tests;
pub mod ids;
pub mod json;
pub mod lease;
#[cfg(feature = "native-db")]
pub mod native_db;
pub mod packed;
pub mod small_blocks;
#[cfg(test)]
mod testing;

pub use bindings::{sql, types};
pub use component::Component;
