//! What one guest instance's `Store` holds ([`GuestState`]) and what the host links into it
//! ([`host_linker`]): WASI that grants nothing (no files, no environment, no network, stdin
//! closed, stdout discarded, stderr captured per operation) and whose waits end at the
//! operation's deadline ([`super::blocking`]), the `sql` import and the `waitpoint-tokens`
//! import (both served by [`SqlAccess`], the operation's connection).

use std::time::Instant;

use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::limits::MemoryLimiter;
use super::shared_engine::shared_engine;
use super::stderr::StderrCapture;
use crate::bindings::GuestWorld;
use crate::sql::SqlAccess;

/// How much the guest may write to stderr in one operation (1 MiB); further writes fail, which
/// a Rust guest's `eprintln!` turns into a trap.
const STDERR_CAPACITY: usize = 1 << 20;

/// Everything the host gives a guest: WASI (io, cli, clocks, random), the `sql` interface and
/// the `waitpoint-tokens` interface.
pub(crate) fn host_linker() -> wasmtime::Result<Linker<GuestState>> {
    let mut linker = Linker::new(shared_engine());
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    super::blocking::bound_poll_by_deadline(&mut linker)?;
    GuestWorld::add_to_linker::<_, HasSelf<SqlAccess>>(&mut linker, |state: &mut GuestState| {
        &mut state.sql
    })?;
    Ok(linker)
}

/// Store data of one guest instance. The connection is bound only while an operation runs.
pub(crate) struct GuestState {
    pub(super) sql: SqlAccess,
    wasi: WasiCtx,
    table: ResourceTable,
    pub(super) memory: MemoryLimiter,
    pub(super) stderr: StderrCapture,
    /// When the operation in progress must end: a guest waiting in `wasi:io/poll` is stopped
    /// then ([`super::blocking`]). Between operations, a moment already past.
    pub(super) deadline: Instant,
}

impl GuestState {
    /// A fresh state: no connection bound, no memory granted, empty stderr.
    pub(super) fn new() -> Self {
        let stderr = StderrCapture::new(STDERR_CAPACITY);
        Self {
            sql: SqlAccess::unbound(),
            wasi: WasiCtx::builder().stderr(stderr.clone()).build(),
            table: {
                let mut table = ResourceTable::new();
                table.set_max_capacity(super::limits::MAX_WASI_RESOURCES);
                table
            },
            memory: MemoryLimiter::new(0),
            stderr,
            deadline: Instant::now(),
        }
    }
}

impl WasiView for GuestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}
