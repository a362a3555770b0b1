//! `ffwasm demo`: the whole system on one database file. It creates executions across a few
//! lanes, then a scheduler issues claim grants to a fleet of worker tasks that claim, renew,
//! report token usage against the run's budget, complete and fail them (retries come back on
//! their own once their backoff ends), all through the public `EngineBackend` API of a
//! [`SqliteBackend`] and so through the guest. It ends with every execution's state and the
//! budget read back, and a summary table.
//!
//! Besides, a few approval jobs are suspended on a waitpoint until a signaller approves them,
//! then resumed and completed (`approvals`).
//!
//! Its arguments are [`DemoArgs`]. Modules: `plan` (what the run does, decided up front from
//! the arguments), `fleet` (the scheduler and its workers), `worker` (one attempt), `summary`
//! (the final states read back, and the table), `approvals` (the approval jobs), `dag` (a small
//! flow run after the fleet: fan-out, fan-in, a failing branch whose dependants are skipped).

mod approvals;
mod dag;
mod fleet;
mod plan;
mod summary;
mod worker;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use ff_backend_sqlite_wasm::SqliteBackend;
use ff_core::contracts::ChangePriorityArgs;
use ff_core::engine_backend::EngineBackend;
use ff_core::types::{AttemptIndex, TimestampMs};
use indicatif::{ProgressBar, ProgressStyle};

use crate::database::{self, DEFAULT_DB, DatabaseArg, Found};
use crate::table::fields;
use crate::{format, help, output};

use plan::{LANE_NAMES, Plan};
use worker::Job;

/// Shown under `ffwasm demo --help`.
pub const HELP: &str = concat!(
    "The database file is created when it does not exist. Running the demo again on the same file
reuses it: the new executions are added next to the earlier ones, the summary covers this run,
and `ffwasm stats` covers them all. A file that is not a FlowFabric SQLite database (or comes
from a newer build) is refused and left untouched.

",
    help::environment!()
);

/// `ffwasm demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The database.
    #[command(flatten)]
    pub database: DatabaseArg,
    /// How many executions to create.
    #[arg(short = 'n', long, value_name = "N", default_value_t = 200,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub executions: u32,
    /// How many worker tasks claim and run them.
    #[arg(short, long, value_name = "N", default_value_t = 8,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub workers: u32,
    /// How many lanes the executions are spread across.
    #[arg(long, value_name = "N", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..=LANE_NAMES.len() as i64))]
    pub lanes: u32,
    /// The probability that an attempt fails, from 0 to 1. A failed attempt is retried with
    /// backoff until its execution runs out of retries.
    #[arg(long, value_name = "P", default_value_t = 0.2, value_parser = probability)]
    pub failure_rate: f64,
    /// How many times a failed execution is retried before it fails for good.
    #[arg(long, value_name = "N", default_value_t = 2,
          value_parser = clap::value_parser!(u32).range(0..=10))]
    pub max_retries: u32,
    /// How many approval jobs run besides the executions: each is suspended on a waitpoint
    /// until a signaller approves it, then resumed and completed (lane `approvals`).
    #[arg(long, value_name = "N", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(0..=1000))]
    pub approvals: u32,
    /// Seed for the failure decisions, to repeat a run (default: random).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// The guest to run.
    #[command(flatten)]
    pub guest: GuestChoice,
}

/// Which guest component the backend runs.
#[derive(Debug, Clone, Default, Args)]
#[group(multiple = false)]
pub struct GuestChoice {
    /// Run this guest component (a wasm32-wasip2 component of the engine-backend world)
    /// instead of the built-in guest.
    #[arg(long, value_name = "FILE.wasm")]
    pub guest: Option<PathBuf>,
    /// Run a guest precompiled by `ffwasm guest compile` (only files you made yourself: they
    /// contain machine code).
    #[arg(long, value_name = "FILE")]
    pub guest_precompiled: Option<PathBuf>,
}

/// A probability: a number from 0 to 1.
fn probability(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        Ok(_) => Err("must be between 0 and 1".into()),
        Err(_) => Err("must be a number between 0 and 1 (e.g. 0.2)".into()),
    }
}

/// Run the demo as `args` say and print its summary.
pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let given = &args.database.db;
    let found = database::examine(given, true)?;
    let path = std::path::absolute(given)
        .with_context(|| format!("cannot resolve the path {}", given.display()))?;
    if found == Found::Missing
        && let Some(directory) = path.parent()
        && !directory.is_dir()
    {
        anyhow::bail!(
            "cannot create {}: the directory {} does not exist",
            given.display(),
            directory.display()
        );
    }
    let plan = Arc::new(Plan::new(&args));
    output::println(&intro(&plan))?;

    let opening = Instant::now();
    let spinner =
        ProgressBar::new_spinner().with_message("starting the engine (loading the guest)");
    spinner.enable_steady_tick(Duration::from_millis(100));
    let engine = open_backend(&path, &args.guest).await;
    spinner.finish_and_clear();
    let engine: Arc<dyn EngineBackend> = engine
        .with_context(|| format!("cannot start the engine backend on {}", given.display()))?;
    output::println(&setup(&args, &found, opening.elapsed()))?;

    engine
        .create_budget(plan.budget_args())
        .await
        .context("creating the run's budget")?;
    let jobs = create(engine.as_ref(), &plan).await?;
    if let Some(raised) = raise_priority(engine.as_ref(), &jobs).await? {
        output::println(&raised)?;
    }
    let report = fleet::run(Arc::clone(&engine), Arc::clone(&plan), jobs).await?;
    let approved = approvals::run(Arc::clone(&engine), &plan, args.approvals).await?;
    let states = summary::read_back(engine.as_ref(), &plan, &report).await?;
    let flow = dag::run(engine.as_ref(), &plan.run).await?;
    output::println(&states.render(&report))?;
    if args.approvals > 0 {
        output::println(&approved.render())?;
    }
    output::println(&flow.render())?;
    output::println(&inspect_hint(&args.database.db, &report, &flow))?;
    Ok(())
}

/// Open the backend on `path` with the chosen guest.
async fn open_backend(path: &Path, guest: &GuestChoice) -> anyhow::Result<Arc<SqliteBackend>> {
    let uri = path
        .to_str()
        .with_context(|| format!("the database path {} is not valid UTF-8", path.display()))?;
    let builder = SqliteBackend::builder(uri);
    let builder = match (&guest.guest, &guest.guest_precompiled) {
        (Some(file), _) => builder.guest_file(file),
        (_, Some(file)) => builder.guest_precompiled_file(file),
        (None, None) => builder,
    };
    Ok(builder.open().await?)
}

/// What the run is about to do.
fn intro(plan: &Plan) -> String {
    let lanes: Vec<&str> = plan.lanes.iter().map(|lane| lane.as_str()).collect();
    format!(
        "ffwasm demo: {} executions on {} lane{} ({}), {} workers, failure rate {}%, up to {} retries (seed {})",
        plan.executions,
        lanes.len(),
        if lanes.len() == 1 { "" } else { "s" },
        lanes.join(", "),
        plan.workers,
        (plan.failure_rate * 1000.0).round() / 10.0,
        plan.max_retries,
        plan.seed,
    )
}

/// The database and the guest the run uses.
fn setup(args: &DemoArgs, found: &Found, opened_in: Duration) -> String {
    let database = match found {
        Found::Missing => "created",
        Found::Empty => "empty file, schema created",
        Found::FlowFabric { .. } => "reused: earlier runs' executions stay, this run adds its own",
    };
    let guest = match (&args.guest.guest, &args.guest.guest_precompiled) {
        (Some(file), _) => format!("{} (custom)", file.display()),
        (_, Some(file)) => format!("{} (precompiled)", file.display()),
        (None, None) => "built-in".to_owned(),
    };
    fields(&[
        (
            "database",
            format!("{} ({database})", args.database.db.display()),
        ),
        (
            "guest",
            format!("{guest}, engine ready in {}", format::duration(opened_in)),
        ),
    ])
}

/// Create the plan's executions; returns their first attempts.
async fn create(engine: &dyn EngineBackend, plan: &Plan) -> anyhow::Result<Vec<Job>> {
    let progress = ProgressBar::new(u64::from(plan.executions)).with_style(
        ProgressStyle::with_template("{spinner} creating [{bar:32}] {pos}/{len}")
            .expect("a valid progress template")
            .progress_chars("=> "),
    );
    let mut jobs = Vec::with_capacity(plan.executions as usize);
    for index in 0..plan.executions {
        let (id, lane) = plan.execution(index);
        engine
            .create_execution(plan.create_args(index, id.clone(), lane.clone()))
            .await
            .with_context(|| format!("creating execution {id}"))?;
        jobs.push(Job {
            index,
            id,
            lane,
            attempt: AttemptIndex::new(0),
        });
        progress.inc(1);
    }
    progress.finish_and_clear();
    Ok(jobs)
}

/// The priority the operator gives one execution before the workers start.
const URGENT_PRIORITY: i32 = 100;

/// The operator's part: the last execution created is made urgent (`change_priority`) before any
/// worker runs; `None` when the plan has no executions.
async fn raise_priority(
    engine: &dyn EngineBackend,
    jobs: &[Job],
) -> anyhow::Result<Option<String>> {
    let Some(job) = jobs.last() else {
        return Ok(None);
    };
    engine
        .change_priority(ChangePriorityArgs {
            execution_id: job.id.clone(),
            new_priority: URGENT_PRIORITY,
            lane_id: job.lane.clone(),
            now: TimestampMs::now(),
        })
        .await
        .context("raising one execution's priority")?;
    Ok(Some(fields(&[(
        "operator",
        format!(
            "raised {}'s priority to {URGENT_PRIORITY} (change_priority)",
            job.id
        ),
    )])))
}

/// How to look at what the run wrote.
fn inspect_hint(db: &Path, report: &fleet::Report, flow: &dag::DagReport) -> String {
    let db = if db == Path::new(DEFAULT_DB) {
        String::new()
    } else {
        format!(" --db {}", db.display())
    };
    let example = report
        .records
        .iter()
        .max_by_key(|record| record.attempts)
        .map_or_else(
            || "<execution-id>".to_owned(),
            |record| record.job.id.to_string(),
        );
    format!(
        "Inspect it: ffwasm executions{db} | ffwasm stats{db} | ffwasm show{db} '{example}' | ffwasm flows{db} | ffwasm show{db} {}",
        flow.flow()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probabilities_are_checked() {
        assert_eq!(probability("0.25"), Ok(0.25));
        assert!(probability("1.5").is_err());
        assert!(probability("often").is_err());
    }
}
