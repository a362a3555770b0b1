//! WASI's blocking calls, bounded by the operation's deadline.
//!
//! The epoch deadline that stops a spinning guest is checked only while guest code runs; a
//! guest that blocks inside a host call (`std::thread::sleep`, `wasi:clocks` `subscribe-*`
//! followed by `pollable.block`, `wasi:io/poll.poll` on any pollable) would hold the writer
//! thread, and the database's write lock, for as long as it asks. Every way a guest can wait in
//! WASI ends in one of the two functions of `wasi:io/poll` that wait (`poll` and
//! `[method]pollable.block`): the host replaces wasmtime-wasi's versions of them with ones that
//! wait at most until the operation's deadline and then fail the call with [`DeadlineReached`],
//! which ends the operation as a timeout (`EngineError::Timeout`), its writes rolled back and its
//! instance dropped. Everything else of `wasi:io/poll` (`ready`, dropping a pollable) is
//! wasmtime-wasi's own.
//!
//! The streams' `blocking-*` calls wait on the same pollables, but the only streams a guest
//! gets are its stdio, none of which ever waits: stdin is empty, stdout discards, stderr is a
//! bounded buffer ([`super::stderr`]).

use std::time::Instant;

use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wasmtime_wasi::WasiView;
use wasmtime_wasi::p2::DynPollable;
use wasmtime_wasi::p2::bindings::io::poll as async_poll;
use wasmtime_wasi::p2::bindings::sync::io::poll;
use wasmtime_wasi::runtime::in_tokio;

use super::store::GuestState;

/// A guest waited in `wasi:io/poll` until its operation's deadline: the call fails with this,
/// and the operation is reported as timed out.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the guest was still waiting in wasi:io/poll at its operation's deadline")]
pub(crate) struct DeadlineReached;

/// Replace `wasi:io/poll` (linked by `wasmtime_wasi::p2::add_to_linker_sync`) with its
/// deadline-bounded version.
pub(super) fn bound_poll_by_deadline(linker: &mut Linker<GuestState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let linked = poll::add_to_linker::<GuestState, BoundedByDeadline>(linker, |state| {
        let deadline = state.deadline;
        DeadlinePoll {
            table: state.ctx().table,
            deadline,
        }
    });
    linker.allow_shadowing(false);
    linked
}

/// `wasi:io/poll` over the guest's resource table, waiting no later than `deadline`.
pub(crate) struct DeadlinePoll<'a> {
    table: &'a mut ResourceTable,
    deadline: Instant,
}

/// Selects [`DeadlinePoll`] as the data `wasi:io/poll` runs on.
struct BoundedByDeadline;

impl HasData for BoundedByDeadline {
    type Data<'a> = DeadlinePoll<'a>;
}

/// Wait for `ready` until `deadline` at the latest.
fn until_deadline<T>(
    deadline: Instant,
    ready: impl Future<Output = wasmtime::Result<T>>,
) -> wasmtime::Result<T> {
    in_tokio(async {
        match tokio::time::timeout_at(deadline.into(), ready).await {
            Ok(outcome) => outcome,
            Err(_elapsed) => Err(wasmtime::Error::new(DeadlineReached)),
        }
    })
}

impl poll::Host for DeadlinePoll<'_> {
    fn poll(&mut self, pollables: Vec<Resource<DynPollable>>) -> wasmtime::Result<Vec<u32>> {
        until_deadline(
            self.deadline,
            async_poll::Host::poll(&mut *self.table, pollables),
        )
    }
}

impl poll::HostPollable for DeadlinePoll<'_> {
    fn ready(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<bool> {
        // Never waits: polls the pollable once.
        poll::HostPollable::ready(&mut *self.table, pollable)
    }

    fn block(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        until_deadline(
            self.deadline,
            async_poll::HostPollable::block(&mut *self.table, pollable),
        )
    }

    fn drop(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        poll::HostPollable::drop(&mut *self.table, pollable)
    }
}
