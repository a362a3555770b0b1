//! The commands, one module each, as wasmtime's `src/commands/` does: each owns its clap
//! arguments and its `run`; `main.rs` only parses and dispatches.
//!
//! - [`demo`]: `ffwasm demo`;
//! - [`inspect`]: `ffwasm executions`, `ffwasm show`, `ffwasm stats`, `ffwasm budgets`, `ffwasm workers`, `ffwasm flows`;
//! - [`priority`]: `ffwasm priority <execution> <priority>`;
//! - [`replay`]: `ffwasm replay <execution>`;
//! - [`guest`]: `ffwasm guest wit | check | compile | compose`;
//! - [`watch`]: `ffwasm watch completions | leases | signals | tags`.

pub mod demo;
pub mod guest;
pub mod inspect;
pub mod priority;
pub mod replay;
pub mod watch;
