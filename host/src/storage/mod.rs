//! SQLite, and nothing of wasmtime: opening a database ([`database`]), its one connection
//! ([`connection`]), the guest's SQL rights on it ([`policy`]), the writer thread that runs
//! operations in shared transactions ([`writer`], with its vocabulary in [`batch`]), making
//! them durable before answering ([`durability`], [`wal_gather`]), the schema
//! ([`schema`]) and the host-owned waitpoint keystore ([`keystore`]).
//!
//! An operation reaches this layer as a [`Job`]: the layer knows when and in which transaction
//! it runs, never what it does.

pub(crate) mod batch;
pub(crate) mod connection;
pub(crate) mod database;
pub(crate) mod durability;
#[cfg(test)]
pub(crate) mod faults;
pub(crate) mod keystore;
pub(crate) mod policy;
pub(crate) mod schema;
pub(crate) mod wal_gather;
pub(crate) mod writer;

pub(crate) use batch::{BatchFailure, Job};
pub(crate) use connection::CommitStats;
pub(crate) use database::Database;
pub(crate) use policy::{HOST_STATEMENTS, SqlMode, SqlPolicy};
pub(crate) use writer::Submitted;
