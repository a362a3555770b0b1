//! One guest operation as a job for the writer thread ([`GuestJob`]): the only module that
//! names both the runtime (the guest call, its instance and limits) and the storage layer (the
//! job, the connection it runs on, the SQL policy it runs under).
//!
//! The writer runs the job inside the batch's transaction; the job switches the connection to
//! the guest's SQL rights and deadline, calls the guest on a pooled instance, turns the guest's
//! answer (checked and converted there, so that a malformed value fails the operation before
//! its writes could be kept), a trap or a timeout into the operation's result, and answers the
//! caller once the batch's fate is known.

use std::sync::Arc;
use std::time::Instant;

use ff_core::engine_error::EngineError;
use rusqlite::Connection;
use wasmtime::Store;

use crate::bindings::{GuestWorld, engine_error, types};
use crate::error::OperationFailure;
use crate::runtime::{GuestLimits, GuestRuntime, GuestState, Invocation};
use crate::storage::{BatchFailure, Job, SqlMode, SqlPolicy};

/// What an operation's transaction may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tx {
    /// Reads and writes.
    Write,
    /// Reads only: the guest's SQL is refused any write.
    Read,
}

/// One guest call queued for the writer thread, with the caller's reply channel.
pub(crate) struct GuestJob<G, T, F, C> {
    op: &'static str,
    tx: Tx,
    guest: Arc<GuestRuntime>,
    limits: GuestLimits,
    reuse_instance: bool,
    /// The guest call; it may run more than once (see `writer`: a batch rolled back by another
    /// operation's failure runs again).
    call: F,
    /// Turns the guest's value into the operation's result, before the writer decides whether
    /// the operation's writes are kept: a value it refuses fails the operation.
    check: C,
    result: Option<Result<T, EngineError>>,
    reply: tokio::sync::oneshot::Sender<Result<T, EngineError>>,
    guest_value: std::marker::PhantomData<fn() -> G>,
}

impl<G, T, F, C> GuestJob<G, T, F, C>
where
    G: Send + 'static,
    T: Send + 'static,
    F: Fn(&GuestWorld, &mut Store<GuestState>) -> wasmtime::Result<Result<G, types::EngineError>>
        + Send
        + 'static,
    C: Fn(G) -> Result<T, EngineError> + Send + 'static,
{
    /// The job for `call` (operation `op`, in a `tx` transaction) on `guest` within `limits`,
    /// its value checked and converted by `check`, and the receiver its answer arrives on.
    pub fn new(
        op: &'static str,
        tx: Tx,
        guest: Arc<GuestRuntime>,
        limits: GuestLimits,
        reuse_instance: bool,
        call: F,
        check: C,
    ) -> (Self, Answer<T>) {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job = Self {
            op,
            tx,
            guest,
            limits,
            reuse_instance,
            call,
            check,
            result: None,
            reply,
            guest_value: std::marker::PhantomData,
        };
        (job, answer)
    }
}

/// Where a [`GuestJob`]'s caller receives its answer.
pub(crate) type Answer<T> = tokio::sync::oneshot::Receiver<Result<T, EngineError>>;

impl<G, T, F, C> Job for GuestJob<G, T, F, C>
where
    G: Send + 'static,
    T: Send + 'static,
    F: Fn(&GuestWorld, &mut Store<GuestState>) -> wasmtime::Result<Result<G, types::EngineError>>
        + Send
        + 'static,
    C: Fn(G) -> Result<T, EngineError> + Send + 'static,
{
    fn op(&self) -> &'static str {
        self.op
    }

    fn writes(&self) -> bool {
        self.tx == Tx::Write
    }

    /// The guest call under the guest's SQL rights and this backend's limits.
    fn run(&mut self, connection: Connection, policy: &SqlPolicy) -> (Connection, bool) {
        let op = self.op;
        let call = &self.call;
        let read_only = self.tx == Tx::Read;
        let mode = if read_only {
            SqlMode::GuestRead
        } else {
            SqlMode::GuestWrite
        };
        let started = Instant::now();
        let deadline = started + self.limits.operation_timeout;
        let ((connection, outcome), interrupted) = policy.with_mode(mode, deadline, || {
            let invocation = Invocation {
                op,
                limits: &self.limits,
                deadline,
                read_only,
                reuse: self.reuse_instance,
            };
            self.guest.invoke(&invocation, (connection, policy), call)
        });
        // A statement stopped at the deadline ends the operation as a timeout, whatever the guest
        // made of the interruption; a transaction SQLite ended under the operation fails it,
        // whatever the guest answered (the writer runs the rest of the batch again).
        let transaction_ended = connection.is_autocommit();
        let result = match outcome {
            _ if interrupted => Err(OperationFailure::TimedOut {
                op,
                elapsed: started.elapsed(),
            }
            .into()),
            Ok(Ok(_)) if transaction_ended => Err(OperationFailure::TransactionEnded { op }.into()),
            Ok(Ok(value)) => (self.check)(value),
            Ok(Err(error)) => Err(engine_error::engine_error(op, error)),
            Err(failure) => Err(failure.into()),
        };
        let succeeded = result.is_ok();
        self.result = Some(result);
        (connection, succeeded)
    }

    fn fail(&mut self, failure: OperationFailure) {
        self.result = Some(Err(failure.into()));
    }

    fn answer(self: Box<Self>, batch: Option<&BatchFailure>) {
        let result = match (self.result, batch) {
            (Some(Err(error)), _) => Err(error),
            (_, Some(failure)) => Err(failure.for_op(self.op).into()),
            (Some(Ok(value)), None) => Ok(value),
            (None, None) => Err(writer_gone(self.op)),
        };
        // The caller may have stopped waiting; then nobody needs the answer.
        let _ = self.reply.send(result);
    }
}

/// An operation the host runs itself, with no guest, in the batch's transaction under the
/// host's SQL rights: the waitpoint keystore's seed and rotation, which handle secrets that must
/// never reach a guest.
pub(crate) struct HostJob<T, F> {
    op: &'static str,
    /// The work; it may run twice, like a guest call (see [`GuestJob`]).
    call: F,
    result: Option<Result<T, EngineError>>,
    reply: tokio::sync::oneshot::Sender<Result<T, EngineError>>,
}

impl<T, F> HostJob<T, F>
where
    T: Send + 'static,
    F: Fn(&Connection) -> Result<T, EngineError> + Send + 'static,
{
    /// The job for `call` (operation `op`, a writing transaction), and the receiver its answer
    /// arrives on.
    pub fn new(op: &'static str, call: F) -> (Self, Answer<T>) {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job = Self {
            op,
            call,
            result: None,
            reply,
        };
        (job, answer)
    }
}

impl<T, F> Job for HostJob<T, F>
where
    T: Send + 'static,
    F: Fn(&Connection) -> Result<T, EngineError> + Send + 'static,
{
    fn op(&self) -> &'static str {
        self.op
    }

    fn writes(&self) -> bool {
        true
    }

    /// The host's work; the writer runs jobs with the host's SQL rights.
    fn run(&mut self, connection: Connection, _policy: &SqlPolicy) -> (Connection, bool) {
        let result = (self.call)(&connection);
        let succeeded = result.is_ok();
        self.result = Some(result);
        (connection, succeeded)
    }

    fn fail(&mut self, failure: OperationFailure) {
        self.result = Some(Err(failure.into()));
    }

    fn answer(self: Box<Self>, batch: Option<&BatchFailure>) {
        let result = match (self.result, batch) {
            (Some(Err(error)), _) => Err(error),
            (_, Some(failure)) => Err(failure.for_op(self.op).into()),
            (Some(Ok(value)), None) => Ok(value),
            (None, None) => Err(writer_gone(self.op)),
        };
        let _ = self.reply.send(result);
    }
}

/// The error of an operation dropped unanswered: the database's writer thread panicked while
/// running it (a host or wasmtime bug), or is gone.
pub(crate) fn writer_gone(op: &'static str) -> EngineError {
    OperationFailure::TaskFailed {
        op,
        detail: "the database's writer thread panicked while running it (see the logs); the \
                 connection is lost, open a new backend"
            .into(),
    }
    .into()
}
