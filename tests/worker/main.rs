//! `ff-test-worker`: a worker process for `tests/all/processes.rs`, driving its own
//! [`SqliteBackend`] on a database file through the public `EngineBackend` API only.
//!
//! ```text
//! ff-test-worker DATABASE (drain|crash|signal|append) LANE NAME [WORK_MS]
//! ```
//!
//! Start-up, in every mode (the process sets `FF_DEV_MODE=1` for itself):
//!
//! 1. a backend on a private in-memory database compiles the guest (seconds in a debug build),
//!    then the worker prints `warm`;
//! 2. it waits for one line on stdin (or its end): the parent's start signal, so that several
//!    workers start together, or a crash round starts with the guest already compiled;
//! 3. it opens `DATABASE` (replaying the WAL a killed predecessor left) and prints `ready`.
//!
//! Then:
//!
//! * `drain`: the lane scanner `claim` → `renew` → `complete` until the scanner finds nothing
//!   (exit 0), printing `completed <id>` after each completion and, last, `slowest <op> <ms>`
//!   (the longest any one operation took, waiting for the write lock included); with
//!   `WORK_MS`, the worker "works" that long (outside any transaction) after the claim and
//!   after the renewal;
//! * `crash`: works until it is killed, mixing every write path so that a kill can land in any
//!   of them: lapsed leases are marked and reclaimed (a new attempt, a higher epoch), executions
//!   are created, granted and claimed through `claim_execution` (one lease in three is left to
//!   lapse), a grant is left on disk each pass, and the lane scanner claims, renews and
//!   completes;
//! * `signal`: the lane scanner `claim` until it finds nothing: a fresh execution is suspended on
//!   one fresh waitpoint and signalled at once (the keystore must be seeded), printing
//!   `signalled <signal id>` after each delivery; the resumed execution, claimed again, is
//!   completed;
//! * `append`: claims one execution, prints `claimed <id>`, waits for one more line on stdin,
//!   appends one durable frame (`from another process`) to its stream, prints
//!   `appended <frame id>` and completes it.
//!
//! Every report is printed and flushed only after the operation it reports has returned `Ok`,
//! i.e. after its transaction committed: `granted <id>`, `claimed <id>`, `reclaimed <id>`,
//! `completed <id>`. Any error ends the worker with exit code 1 and the error's `Debug` form on
//! stderr, so a `SQLITE_BUSY` reaching a caller is seen by the test.

use std::error::Error;
use std::fmt::Debug;
use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::sync::Arc;

use ff_backend_sqlite_wasm::SqliteBackend;
use ff_core::backend::{CapabilitySet, ClaimPolicy, Frame, FrameKind, Handle};
use ff_core::contracts::{
    ClaimExecutionArgs, ClaimExecutionResult, CompleteExecutionArgs, CreateExecutionArgs,
    DeliverSignalArgs, IssueClaimGrantArgs, IssueReclaimGrantArgs, IssueReclaimGrantOutcome,
    ListExpiredLeasesArgs, ReclaimExecutionArgs, ReclaimExecutionOutcome, RenewLeaseArgs,
    ResumeCondition, ResumePolicy, SignalMatcher, SuspendArgs, SuspensionReasonCode,
    WaitpointBinding,
};
use ff_core::engine_backend::EngineBackend;
use ff_core::handle_codec;
use ff_core::partition::{Partition, PartitionFamily};
use ff_core::types::{
    AttemptId, AttemptIndex, CancelSource, ExecutionId, LaneId, LeaseFence, LeaseId, Namespace,
    SignalId, SuspensionId, TimestampMs, WaitpointId, WaitpointToken, WorkerId, WorkerInstanceId,
};

type Failure = Box<dyn Error>;

const USAGE: &str =
    "usage: ff-test-worker DATABASE (drain|crash|signal|append) LANE NAME [WORK_MS]";

/// Lease length of the lane scanner's claims in `drain` mode: long enough never to lapse.
const DRAIN_LEASE_MS: u32 = 60_000;

/// Lease length in `crash` mode: short, so that leases a killed worker left behind have lapsed
/// by the time a later worker looks and can be reclaimed.
const CRASH_LEASE_MS: u64 = 1_500;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (database, mode, lane, name, work_ms) = match args.as_slice() {
        [database, mode, lane, name] => (database, mode, lane, name, Ok(0)),
        [database, mode, lane, name, work_ms] => (database, mode, lane, name, work_ms.parse()),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(64);
        }
    };
    let Ok(work_ms) = work_ms else {
        eprintln!("{USAGE}");
        return ExitCode::from(64);
    };
    // SQLite backends are dev-only; this process opts in for itself.
    // SAFETY: no other thread exists yet (the runtime is built below).
    unsafe { std::env::set_var("FF_DEV_MODE", "1") };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("ff-test-worker {name}: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let worker = Worker {
        lane: LaneId::new(lane.as_str()),
        worker_id: WorkerId::new(name.as_str()),
        instance: WorkerInstanceId::new(format!("{name}-{}", std::process::id())),
        work: std::time::Duration::from_millis(work_ms),
    };
    let outcome = runtime.block_on(async {
        let warm_up = format!(
            "file:ff-test-worker-{}?mode=memory&cache=shared",
            std::process::id()
        );
        let warm = check(
            "open the warm-up database",
            SqliteBackend::new(&warm_up).await,
        )?;
        say("warm")?;
        std::io::stdin().lock().read_line(&mut String::new())?;
        drop(warm);
        let engine: Arc<dyn EngineBackend> = check(
            &format!("open {database}"),
            SqliteBackend::new(database).await,
        )?;
        say("ready")?;
        match mode.as_str() {
            "drain" => worker.drain(engine.as_ref()).await,
            "crash" => worker.crash(engine.as_ref()).await,
            "signal" => worker.signal(engine.as_ref()).await,
            "append" => worker.append(engine.as_ref()).await,
            other => Err(format!("unknown mode {other:?}; {USAGE}").into()),
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ff-test-worker {name}: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Print one line and flush it, so the parent sees it even if this process is killed next.
fn say(line: impl std::fmt::Display) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    Ok(())
}

/// `result`, with a failure named after the operation and showing the error's `Debug` form
/// (which names the SQLite error code of a `Transport` error).
fn check<T, E: Debug>(op: &str, result: Result<T, E>) -> Result<T, Failure> {
    result.map_err(|error| format!("{op} failed: {error:?}").into())
}

/// Who this worker is and which lane it works.
struct Worker {
    lane: LaneId,
    worker_id: WorkerId,
    instance: WorkerInstanceId,
    /// How long `drain` "works" after a claim and after a renewal.
    work: std::time::Duration,
}

impl Worker {
    /// Spend [`Worker::work`] outside any transaction, as a real worker would.
    async fn work(&self) {
        if !self.work.is_zero() {
            tokio::time::sleep(self.work).await;
        }
    }

    /// Claim → renew → complete until the lane is empty.
    async fn drain(&self, engine: &dyn EngineBackend) -> Result<(), Failure> {
        let policy = ClaimPolicy::new(
            self.worker_id.clone(),
            self.instance.clone(),
            DRAIN_LEASE_MS,
            None,
        );
        let mut slowest = Slowest::default();
        while let Some(handle) = slowest
            .time(
                "claim",
                engine.claim(&self.lane, &CapabilitySet::default(), policy.clone()),
            )
            .await?
        {
            let id = execution_of(&handle)?;
            self.work().await;
            slowest.time("renew", engine.renew(&handle)).await?;
            self.work().await;
            slowest
                .time(
                    "complete",
                    engine.complete(&handle, Some(b"drained".to_vec())),
                )
                .await?;
            say(format_args!("completed {id}"))?;
        }
        say(format_args!(
            "slowest {} {}",
            slowest.op,
            slowest.elapsed.as_millis()
        ))?;
        Ok(())
    }

    /// The lane scanner's claims: suspend and signal each fresh execution, complete each resumed
    /// one, until the lane is empty.
    async fn signal(&self, engine: &dyn EngineBackend) -> Result<(), Failure> {
        let policy = ClaimPolicy::new(
            self.worker_id.clone(),
            self.instance.clone(),
            DRAIN_LEASE_MS,
            None,
        );
        let mut signalled = std::collections::HashSet::new();
        while let Some(handle) = check(
            "claim",
            engine
                .claim(&self.lane, &CapabilitySet::default(), policy.clone())
                .await,
        )? {
            let id = execution_of(&handle)?;
            if signalled.contains(&id) {
                check("complete", engine.complete(&handle, None).await)?;
                continue;
            }
            let now = TimestampMs::now();
            let key = "wpk:cross-process".to_owned();
            let suspended = check(
                "suspend",
                engine
                    .suspend(
                        &handle,
                        SuspendArgs::new(
                            SuspensionId::new(),
                            WaitpointBinding::Fresh {
                                waitpoint_id: WaitpointId::new(),
                                waitpoint_key: key.clone(),
                            },
                            ResumeCondition::Single {
                                waitpoint_key: key,
                                matcher: SignalMatcher::Wildcard,
                            },
                            ResumePolicy::normal(),
                            SuspensionReasonCode::WaitingForSignal,
                            now,
                        ),
                    )
                    .await,
            )?;
            let details = suspended.details();
            let signal_id = SignalId::new();
            check(
                "deliver_signal",
                engine
                    .deliver_signal(DeliverSignalArgs {
                        execution_id: id.clone(),
                        waitpoint_id: details.waitpoint_id.clone(),
                        signal_id: signal_id.clone(),
                        signal_name: "ready".into(),
                        signal_category: "external".into(),
                        source_type: "worker".into(),
                        source_identity: self.worker_id.to_string(),
                        payload: None,
                        payload_encoding: None,
                        correlation_id: None,
                        idempotency_key: None,
                        target_scope: "execution".into(),
                        created_at: None,
                        dedup_ttl_ms: None,
                        resume_delay_ms: None,
                        max_signals_per_execution: None,
                        signal_maxlen: None,
                        waitpoint_token: WaitpointToken::from(
                            details.waitpoint_token.as_str().to_owned(),
                        ),
                        now: TimestampMs::now(),
                    })
                    .await,
            )?;
            signalled.insert(id);
            say(format_args!("signalled {signal_id}"))?;
        }
        Ok(())
    }

    /// Claim one execution, append one frame when told to, complete it.
    async fn append(&self, engine: &dyn EngineBackend) -> Result<(), Failure> {
        let policy = ClaimPolicy::new(
            self.worker_id.clone(),
            self.instance.clone(),
            DRAIN_LEASE_MS,
            None,
        );
        let handle = check(
            "claim",
            engine
                .claim(&self.lane, &CapabilitySet::default(), policy)
                .await,
        )?
        .ok_or("the lane holds no execution")?;
        say(format_args!("claimed {}", execution_of(&handle)?))?;
        std::io::stdin().lock().read_line(&mut String::new())?;
        let frame = Frame::new(b"from another process".to_vec(), FrameKind::Stdout);
        let appended = check("append_frame", engine.append_frame(&handle, frame).await)?;
        say(format_args!("appended {}", appended.stream_id))?;
        check("complete", engine.complete(&handle, None).await)?;
        Ok(())
    }

    /// Work every write path until killed.
    async fn crash(&self, engine: &dyn EngineBackend) -> Result<(), Failure> {
        let policy = ClaimPolicy::new(
            self.worker_id.clone(),
            self.instance.clone(),
            CRASH_LEASE_MS as u32,
            None,
        );
        for round in 0u64.. {
            self.reclaim_expired(engine).await?;

            // The typed path: create, grant, claim_execution, renew; complete two in three and
            // leave the third leased, to lapse and be reclaimed by a later pass or process.
            let id = new_execution_id();
            let now = TimestampMs::now();
            check(
                "create_execution",
                engine.create_execution(self.create(&id, now)).await,
            )?;
            check(
                "issue_claim_grant",
                engine.issue_claim_grant(self.grant(&id, now)).await,
            )?;
            say(format_args!("granted {id}"))?;
            let ClaimExecutionResult::Claimed(lease) = check(
                "claim_execution",
                engine.claim_execution(self.claim(&id, now)).await,
            )?
            else {
                return Err("claim_execution: unexpected result".into());
            };
            say(format_args!("claimed {id}"))?;
            let fence = LeaseFence {
                lease_id: lease.lease_id.clone(),
                lease_epoch: lease.lease_epoch,
                attempt_id: lease.attempt_id.clone(),
            };
            check(
                "renew_lease",
                engine
                    .renew_lease(RenewLeaseArgs {
                        execution_id: id.clone(),
                        attempt_index: lease.attempt_index,
                        fence: Some(fence.clone()),
                        lease_ttl_ms: CRASH_LEASE_MS,
                        lease_history_grace_ms: CRASH_LEASE_MS,
                    })
                    .await,
            )?;
            if round % 3 != 0 {
                check(
                    "complete_execution",
                    engine
                        .complete_execution(CompleteExecutionArgs {
                            execution_id: id.clone(),
                            fence: Some(fence),
                            attempt_index: lease.attempt_index,
                            result_payload: Some(b"typed".to_vec()),
                            result_encoding: None,
                            source: CancelSource::LeaseHolder,
                            now: TimestampMs::now(),
                        })
                        .await,
                )?;
                say(format_args!("completed {id}"))?;
            }

            // A grant left on disk: the lane scanner below (or a later one) takes it.
            let waiting = new_execution_id();
            let now = TimestampMs::now();
            check(
                "create_execution",
                engine.create_execution(self.create(&waiting, now)).await,
            )?;
            check(
                "issue_claim_grant",
                engine.issue_claim_grant(self.grant(&waiting, now)).await,
            )?;
            say(format_args!("granted {waiting}"))?;

            // The lane scanner and worker handles.
            if let Some(handle) = check(
                "claim",
                engine
                    .claim(&self.lane, &CapabilitySet::default(), policy.clone())
                    .await,
            )? {
                let id = execution_of(&handle)?;
                say(format_args!("claimed {id}"))?;
                check("renew", engine.renew(&handle).await)?;
                check(
                    "complete",
                    engine.complete(&handle, Some(b"scanned".to_vec())).await,
                )?;
                say(format_args!("completed {id}"))?;
            }
        }
        Ok(())
    }

    /// Mark, reclaim (a new attempt, a higher epoch) and complete a few lapsed leases.
    async fn reclaim_expired(&self, engine: &dyn EngineBackend) -> Result<(), Failure> {
        let mut list = ListExpiredLeasesArgs::new(TimestampMs::now());
        list.limit = Some(4);
        let expired = check(
            "list_expired_leases",
            engine.list_expired_leases(list).await,
        )?;
        for lease in expired.entries {
            let id = lease.execution_id.clone();
            let partition = Partition {
                family: PartitionFamily::Flow,
                index: id.partition(),
            };
            check(
                "mark_lease_expired_if_due",
                engine.mark_lease_expired_if_due(partition, &id).await,
            )?;
            let grant = check(
                "issue_reclaim_grant",
                engine
                    .issue_reclaim_grant(IssueReclaimGrantArgs::new(
                        id.clone(),
                        self.worker_id.clone(),
                        self.instance.clone(),
                        self.lane.clone(),
                        None,
                        10_000,
                        None,
                        None,
                        Default::default(),
                        TimestampMs::now(),
                    ))
                    .await,
            )?;
            if !matches!(grant, IssueReclaimGrantOutcome::Granted(_)) {
                return Err(format!("issue_reclaim_grant for {id}: {grant:?}").into());
            }
            let outcome = check(
                "reclaim_execution",
                engine
                    .reclaim_execution(ReclaimExecutionArgs::new(
                        id.clone(),
                        self.worker_id.clone(),
                        self.instance.clone(),
                        self.lane.clone(),
                        None,
                        LeaseId::new(),
                        CRASH_LEASE_MS,
                        AttemptId::new(),
                        String::new(),
                        None,
                        lease.worker_instance_id.clone(),
                        lease.attempt_index,
                    ))
                    .await,
            )?;
            let ReclaimExecutionOutcome::Claimed(handle) = outcome else {
                return Err(format!("reclaim_execution for {id}: {outcome:?}").into());
            };
            say(format_args!("reclaimed {id}"))?;
            check(
                "complete",
                engine.complete(&handle, Some(b"reclaimed".to_vec())).await,
            )?;
            say(format_args!("completed {id}"))?;
        }
        Ok(())
    }

    fn create(&self, id: &ExecutionId, now: TimestampMs) -> CreateExecutionArgs {
        CreateExecutionArgs {
            execution_id: id.clone(),
            namespace: Namespace::new("processes"),
            lane_id: self.lane.clone(),
            execution_kind: "crash-test".into(),
            input_payload: b"input".to_vec(),
            payload_encoding: None,
            priority: 0,
            creator_identity: "ff-test-worker".into(),
            idempotency_key: None,
            tags: Default::default(),
            policy: None,
            delay_until: None,
            execution_deadline_at: None,
            partition_id: 0,
            now,
        }
    }

    fn grant(&self, id: &ExecutionId, now: TimestampMs) -> IssueClaimGrantArgs {
        IssueClaimGrantArgs::new(
            id.clone(),
            self.lane.clone(),
            self.worker_id.clone(),
            self.instance.clone(),
            Partition {
                family: PartitionFamily::Flow,
                index: id.partition(),
            },
            Default::default(),
            60_000,
            now,
        )
    }

    fn claim(&self, id: &ExecutionId, now: TimestampMs) -> ClaimExecutionArgs {
        ClaimExecutionArgs::new(
            id.clone(),
            self.worker_id.clone(),
            self.instance.clone(),
            self.lane.clone(),
            LeaseId::new(),
            CRASH_LEASE_MS,
            AttemptId::new(),
            AttemptIndex::new(0),
            String::new(),
            None,
            None,
            now,
        )
    }
}

/// The slowest operation so far (for `drain`'s last line, `slowest <op> <ms>`).
#[derive(Default)]
struct Slowest {
    op: &'static str,
    elapsed: std::time::Duration,
}

impl Slowest {
    /// Await `operation`, remembering its time if it is the slowest yet; [`check`] its result.
    async fn time<T, E: Debug>(
        &mut self,
        op: &'static str,
        operation: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T, Failure> {
        let started = std::time::Instant::now();
        let result = operation.await;
        let elapsed = started.elapsed();
        if elapsed > self.elapsed {
            (self.op, self.elapsed) = (op, elapsed);
        }
        check(op, result)
    }
}

/// A fresh execution id on partition 0.
fn new_execution_id() -> ExecutionId {
    ExecutionId::parse(&format!("{{fp:0}}:{}", uuid::Uuid::new_v4()))
        .expect("a partition-0 id with a fresh UUID parses")
}

/// The execution a worker handle leases.
fn execution_of(handle: &Handle) -> Result<ExecutionId, Failure> {
    Ok(
        check("decode handle", handle_codec::decode(&handle.opaque))?
            .payload
            .execution_id,
    )
}
