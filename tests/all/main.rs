//! The integration tests of `ff-backend-sqlite-wasm`, in one binary (as wasmtime's `tests/all`):
//! one module per topic, and `support`, the helpers they share.
//!
//! # Sharing the process
//!
//! Tests run in parallel (libtest's threads), grouped with `serial_test` under one key,
//! `process`:
//!
//! * `#[parallel(process)]`: every test that constructs a backend or drives one. These run
//!   alongside each other; each has databases, files and URIs of its own (`support::memory_uri`,
//!   `support::ScratchDir`, fresh temp directories), and the process-wide state they share is
//!   set up once and not changed while they run (wasmtime's engine, compiled guests, the
//!   `ff-gather` VFS, `FF_DEV_MODE=1` through `support::dev_mode`).
//! * `#[serial(process)]`: a test that needs the process to itself; it waits until no
//!   `#[parallel(process)]` test runs and holds them back until it ends:
//!   - `construction::refuses_without_dev_mode` removes and changes `FF_DEV_MODE`, which every
//!     construction reads;
//!   - `construction::a_relative_path_stays_the_same_file_after_a_chdir` changes the working
//!     directory, which every relative path reads;
//!   - `sandbox::host_memory_stays_within_the_documented_bound` measures the process's peak
//!     RSS, which other tests' allocations would raise;
//!   - `processes::*` asserts the timing of worker processes (no operation waits a second for
//!     the write lock, both workers progress, most kills land while the worker works);
//!   - `sandbox::{a_slow_statement_is_interrupted_at_the_timeout,
//!     a_sleeping_guest_releases_the_database_at_its_deadline}` assert wall-clock bounds (the
//!     200 ms timeout plus one second);
//!   - `group_commit::{failures_that_wrote_nothing_share_a_batch_without_running_it_again,
//!     a_failure_that_wrote_makes_its_batch_run_again_with_savepoints,
//!     a_write_stopped_at_its_deadline_fails_only_its_own_operation}` rely on fixed pauses for
//!     spawned tasks to reach the writer as one batch;
//!   - `group_commit::the_wal_starts_over_even_when_writes_never_pause` bounds the WAL's length,
//!     which grows with the batches, which grow when the writer falls behind.
//!
//!   Other tests' load on the same cores would distort those timings.
//! * Neither: a test that touches no backend
//!   (`sandbox::the_default_limits_are_the_documented_ones`).
//!
//! So no suite needs a process of its own. A new test that constructs a backend takes
//! `#[parallel(process)]` (or `#[serial(process)]`, with its reason added above).

mod support;

mod bad_input;
mod budgets;
mod claim_execution;
mod completion;
mod construction;
mod custom_guest;
mod flows;
mod group_commit;
mod guest_containment;
mod lifecycle;
mod operator;
mod processes;
mod races;
mod reads;
mod recovery;
mod routing;
mod sandbox;
mod scanner_hooks;
mod scheduling;
mod sdk;
mod semantics_review;
mod signal_events;
mod standalone;
mod streams;
mod suspension;
mod tags;
mod typed_claim_execution;
mod upstream_capabilities;
mod upstream_guard;
mod upstream_hot_path;
mod upstream_migrations;
mod upstream_reads;
mod upstream_reclaim;
mod upstream_subscribe;
mod workers;
