//! The scheduler and its fleet of workers. The scheduler owns the queue of attempts: whenever a
//! worker is idle and an attempt is due, it issues that worker a claim grant and hands it the
//! job; it puts retries back in the queue for the time their backoff ends, and stops the fleet
//! when every execution is completed or failed.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use ff_core::contracts::IssueClaimGrantArgs;
use ff_core::engine_backend::EngineBackend;
use ff_core::partition::{Partition, PartitionFamily};
use ff_core::types::TimestampMs;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::mpsc;

use super::plan::{GRANT_TTL_MS, Plan};
use super::worker::{Attempted, Job, Outcome, Worker};

/// How one execution fared.
#[derive(Debug, Clone)]
pub struct Record {
    /// The execution.
    pub job: Job,
    /// Attempts claimed.
    pub attempts: u32,
    /// `Completed` or `Failed` once it ended.
    pub outcome: Option<Outcome>,
}

/// What the fleet did.
#[derive(Debug, Clone)]
pub struct Report {
    /// One record per execution, in plan order.
    pub records: Vec<Record>,
    /// Every claim's round trip.
    pub claim_latencies: Vec<Duration>,
    /// From the first grant to the last execution ending.
    pub elapsed: Duration,
}

/// A worker's report of one attempt.
struct Done {
    worker: usize,
    job: Job,
    result: anyhow::Result<Attempted>,
}

/// An attempt waiting in the scheduler's queue, earliest `due` first.
#[derive(Debug)]
struct Queued {
    due: Instant,
    sequence: u64,
    job: Job,
}

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.sequence) == (other.due, other.sequence)
    }
}

impl Eq for Queued {}

impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Queued {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.due, self.sequence).cmp(&(other.due, other.sequence))
    }
}

/// Run every job to its end with `plan.workers` workers, each registered in the worker registry
/// first (and heartbeating after every claim); the first engine error stops the run.
pub async fn run(
    engine: Arc<dyn EngineBackend>,
    plan: Arc<Plan>,
    jobs: Vec<Job>,
) -> anyhow::Result<Report> {
    let (done_tx, mut done_rx) = mpsc::channel::<Done>(plan.workers as usize);
    let mut workers = Vec::new();
    let mut handles = Vec::new();
    for number in 0..plan.workers {
        let (job_tx, mut job_rx) = mpsc::channel::<Job>(1);
        let worker = Worker::new(number, &plan.run);
        worker.register(engine.as_ref(), &plan).await?;
        workers.push((worker.clone(), job_tx));
        let (engine, plan, done_tx) = (Arc::clone(&engine), Arc::clone(&plan), done_tx.clone());
        handles.push(tokio::spawn(async move {
            while let Some(job) = job_rx.recv().await {
                let result = worker.attempt(engine.as_ref(), &plan, &job).await;
                let done = Done {
                    worker: number as usize,
                    job,
                    result,
                };
                if done_tx.send(done).await.is_err() {
                    break;
                }
            }
        }));
    }
    drop(done_tx);

    let mut scheduler = Scheduler::new(&jobs);
    let started = Instant::now();
    let outcome = scheduler
        .drive(engine.as_ref(), &workers, &mut done_rx)
        .await;
    let elapsed = started.elapsed();
    // Closing the job channels stops the workers.
    drop(workers);
    for handle in handles {
        handle.await.context("a worker task panicked")?;
    }
    scheduler.progress.finish_and_clear();
    outcome?;
    Ok(Report {
        records: scheduler.records,
        claim_latencies: scheduler.claim_latencies,
        elapsed,
    })
}

/// The scheduler's state.
struct Scheduler {
    queue: BinaryHeap<Reverse<Queued>>,
    sequence: u64,
    idle: Vec<usize>,
    records: Vec<Record>,
    remaining: usize,
    failed: usize,
    retrying: usize,
    claim_latencies: Vec<Duration>,
    progress: ProgressBar,
}

impl Scheduler {
    fn new(jobs: &[Job]) -> Self {
        let progress = ProgressBar::new(jobs.len() as u64).with_style(
            ProgressStyle::with_template(
                "{spinner} running [{bar:20}] {pos}/{len} ended, {msg} ({elapsed})",
            )
            .expect("a valid progress template")
            .progress_chars("=> "),
        );
        progress.enable_steady_tick(Duration::from_millis(100));
        let now = Instant::now();
        let mut scheduler = Self {
            queue: BinaryHeap::new(),
            sequence: 0,
            idle: Vec::new(),
            records: jobs
                .iter()
                .map(|job| Record {
                    job: job.clone(),
                    attempts: 0,
                    outcome: None,
                })
                .collect(),
            remaining: jobs.len(),
            failed: 0,
            retrying: 0,
            claim_latencies: Vec::new(),
            progress,
        };
        for job in jobs {
            scheduler.enqueue(now, job.clone());
        }
        scheduler
    }

    fn enqueue(&mut self, due: Instant, job: Job) {
        self.sequence += 1;
        self.queue.push(Reverse(Queued {
            due,
            sequence: self.sequence,
            job,
        }));
    }

    /// Grant due attempts to idle workers and collect their reports until every execution ended.
    async fn drive(
        &mut self,
        engine: &dyn EngineBackend,
        workers: &[(Worker, mpsc::Sender<Job>)],
        done_rx: &mut mpsc::Receiver<Done>,
    ) -> anyhow::Result<()> {
        self.idle = (0..workers.len()).rev().collect();
        while self.remaining > 0 {
            while let Some(Reverse(next)) = self.queue.peek()
                && next.due <= Instant::now()
                && let Some(worker) = self.idle.pop()
            {
                let Some(Reverse(Queued { job, .. })) = self.queue.pop() else {
                    break;
                };
                let (identity, jobs) = &workers[worker];
                grant(engine, identity, &job).await?;
                jobs.send(job).await.context("a worker stopped early")?;
            }
            let next_due = self
                .queue
                .peek()
                .map(|Reverse(next)| next.due)
                .filter(|_| !self.idle.is_empty());
            tokio::select! {
                done = done_rx.recv() => {
                    let done = done.context("every worker stopped early")?;
                    self.idle.push(done.worker);
                    self.record(done)?;
                }
                () = sleep_until(next_due), if next_due.is_some() => {}
            }
        }
        Ok(())
    }

    /// Book a worker's report: an ended execution, or a retry back in the queue.
    fn record(&mut self, done: Done) -> anyhow::Result<()> {
        let attempted = done.result?;
        self.claim_latencies.push(attempted.claim_latency);
        let record = &mut self.records[done.job.index as usize];
        record.attempts += 1;
        if record.attempts > 1 {
            self.retrying -= 1;
        }
        match attempted.outcome {
            Outcome::Retry { due, next } => {
                self.retrying += 1;
                self.enqueue(
                    due,
                    Job {
                        attempt: next,
                        ..done.job
                    },
                );
            }
            ended => {
                record.outcome = Some(ended);
                self.remaining -= 1;
                if ended == Outcome::Failed {
                    self.failed += 1;
                }
                self.progress.inc(1);
            }
        }
        self.progress.set_message(format!(
            "{} failed, {} retrying",
            self.failed, self.retrying
        ));
        Ok(())
    }
}

/// Issue `worker` a claim grant for `job`'s execution.
async fn grant(engine: &dyn EngineBackend, worker: &Worker, job: &Job) -> anyhow::Result<()> {
    let partition = Partition {
        family: PartitionFamily::Flow,
        index: job.id.partition(),
    };
    engine
        .issue_claim_grant(IssueClaimGrantArgs::new(
            job.id.clone(),
            job.lane.clone(),
            worker.id.clone(),
            worker.instance.clone(),
            partition,
            Default::default(),
            GRANT_TTL_MS,
            TimestampMs::now(),
        ))
        .await
        .with_context(|| format!("granting {} to {}", job.id, worker.id))?;
    Ok(())
}

/// Sleep until `deadline` (never, for `None`).
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}
