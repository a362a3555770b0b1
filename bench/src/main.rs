//! `ffbench`: claim throughput, latency, lifecycle throughput, `report_usage` throughput, stream
//! appends, the time from a commit to a waiting tail or subscriber, idle subscriptions,
//! `list_executions` page latency at scale,
//! construction time and memory of
//! ff-backend-sqlite-wasm, each beside a native baseline that runs the same engine logic (the
//! guest crate compiled for the host) directly on rusqlite, one transaction per operation.
//!
//! ```text
//! cargo run --release -p ff-bench            # the full table (several minutes)
//! cargo run --release -p ff-bench -- --quick # a smaller run
//! ```
//!
//! Progress goes to stderr; the table (Markdown) to stdout.

mod child;
mod flows;
mod listing;
mod native;
mod scenarios;
mod stats;
mod streams;
mod suspension;
mod usage;
mod workload;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use clap::Parser;
use ff_backend_sqlite_wasm::SqliteBackend;
use ff_core::types::ExecutionId;

use crate::scenarios::Work;
use crate::stats::{Comparison, Run, Table, growth, show_duration, show_rate};
use crate::workload::{execution_ids, seed, seed_through_backend};

/// Benchmark ff-backend-sqlite-wasm against the same engine logic run natively on rusqlite.
#[derive(Debug, Parser)]
#[command(name = "ffbench")]
struct Cli {
    /// Claims per throughput row (the file rows with 8 and 64 tasks use twice as many).
    #[arg(long, default_value_t = 3_000)]
    claims: usize,
    /// Executions in the database for the latency-at-scale rows (claims and `list_executions`
    /// pages), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1000,100000,1000000")]
    scale: Vec<usize>,
    /// Claims (and `list_executions` pages) measured at each scale.
    #[arg(long, default_value_t = 1_000)]
    scale_claims: usize,
    /// A short run: 300 claims per row, scales 1k and 10k.
    #[arg(long)]
    quick: bool,
    /// Run only the rows whose description contains this text (e.g. `memory`, `64 tasks`,
    /// `lifecycle`, `report_usage`, `latency`, `list_executions`, `construction`).
    #[arg(long)]
    only: Option<String>,
    /// Where the database files and the compiled-component caches go (default: a new
    /// directory under the system's temp directory, removed afterwards).
    #[arg(long)]
    dir: Option<PathBuf>,
    #[command(subcommand)]
    child: Option<child::ChildCommand>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // SAFETY: set before any thread starts; the backend refuses to open without it.
    unsafe { std::env::set_var("FF_DEV_MODE", "1") };
    if let Some(command) = cli.child {
        return child::run(command);
    }
    let (claims, scales, scale_claims) = if cli.quick {
        (300, vec![1_000, 10_000], 200)
    } else {
        (cli.claims, cli.scale.clone(), cli.scale_claims)
    };
    let dir = match &cli.dir {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir().join(format!("ffbench-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let bench = Bench {
        dir: dir.clone(),
        only: cli.only.clone(),
    };
    let mut table = Table::default();
    let started = Instant::now();
    let outcome = runtime.block_on(bench.all(&mut table, claims, &scales, scale_claims));
    if cli.dir.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    outcome?;
    eprintln!("done in {:.0} s", started.elapsed().as_secs_f64());
    println!("{}", table.render());
    Ok(())
}

/// One size of the latency-at-scale rows: a database per side and the executions to claim.
struct ScaleStep {
    size: usize,
    backend: Arc<SqliteBackend>,
    native: Mutex<rusqlite::Connection>,
    ours_ids: Vec<ExecutionId>,
    native_ids: Vec<ExecutionId>,
}

/// Where a row's database lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Storage {
    /// A shared-cache in-memory database.
    Memory,
    /// A file in WAL mode with `synchronous=FULL`.
    File,
}

/// Concurrent tasks seeding the backend for the scale rows.
const SEED_TASKS: usize = 16;

/// Unmeasured claims on each side after seeding a scale step.
const SCALE_WARM_UP: usize = 50;

/// Rounds each comparison alternates between the two sides.
const ROUNDS: usize = 20;

struct Bench {
    dir: PathBuf,
    only: Option<String>,
}

impl Bench {
    /// Whether the row described as `what` is to run.
    fn wanted(&self, what: &str) -> bool {
        self.only.as_deref().is_none_or(|only| what.contains(only))
    }

    async fn all(
        &self,
        table: &mut Table,
        claims: usize,
        scales: &[usize],
        scale_claims: usize,
    ) -> anyhow::Result<()> {
        let rows = [
            ("claims, memory, sequential", Storage::Memory, 1, claims),
            ("claims, file, sequential", Storage::File, 1, claims / 3),
            ("claims, file, 8 tasks", Storage::File, 8, claims),
            ("claims, file, 64 tasks", Storage::File, 64, claims * 2),
        ];
        for (what, storage, tasks, count) in rows {
            if !self.wanted(what) {
                continue;
            }
            let compared = self
                .compare(what, storage, tasks, count, Work::Claim)
                .await?;
            let comparison = if tasks == 1 && storage == Storage::Memory {
                format!(
                    "{:.2}× native time per claim",
                    1.0 / compared.median_speedup()
                )
            } else {
                format!("{:.2}× native throughput", compared.median_speedup())
            };
            let (ours, native) = (compared.ours(), compared.native());
            let target = match (storage, tasks) {
                (Storage::Memory, _) => "≤ 1.3× time",
                (Storage::File, 1) => "—",
                (Storage::File, _) => "≥ 5× throughput",
            };
            table.row(
                what,
                throughput(ours),
                throughput(native),
                comparison,
                target,
            );
        }

        let lifecycles = [
            ("lifecycle ops, memory, sequential", Storage::Memory, 1),
            ("lifecycle ops, file, 8 tasks", Storage::File, 8),
        ];
        for (what, storage, tasks) in lifecycles {
            if !self.wanted(what) {
                continue;
            }
            let count = claims / 4;
            let compared = self
                .compare(what, storage, tasks, count, Work::Lifecycle)
                .await?;
            table.row(
                format!("{what} (grant→claim→renew→complete)"),
                show_rate(compared.ours().rate()),
                show_rate(compared.native().rate()),
                format!("{:.2}× native throughput", compared.median_speedup()),
                "—",
            );
        }

        let usage_rows = [
            ("report_usage, memory, sequential", Storage::Memory, 1),
            ("report_usage, file, 8 tasks", Storage::File, 8),
        ];
        for (what, storage, tasks) in usage_rows {
            if !self.wanted(what) {
                continue;
            }
            let compared = self
                .compare_report_usage(what, storage, tasks, claims)
                .await?;
            table.row(
                format!("{what} (one lease, one budget, a dedup key each)"),
                throughput(compared.ours()),
                throughput(compared.native()),
                format!("{:.2}× native throughput", compared.median_speedup()),
                "—",
            );
        }

        let what = "suspension cycle, memory, sequential";
        if self.wanted(what) {
            let compared = self
                .compare(what, Storage::Memory, 1, claims / 4, Work::Suspension)
                .await?;
            table.row(
                format!("{what} (claim→suspend→signal→claim resumed→complete)"),
                show_rate(compared.ours().rate()),
                show_rate(compared.native().rate()),
                format!("{:.2}× native throughput", compared.median_speedup()),
                "—",
            );
        }

        if self.wanted("flow") {
            self.flow_rows(table).await?;
        }
        if self.wanted("claim latency at scale") {
            self.scale_rows(table, scales, scale_claims).await?;
        }
        if self.wanted("list_executions") {
            self.list_rows(table, scales, scale_claims).await?;
        }
        if self.wanted("stream") || self.wanted("subscri") || self.wanted("append") {
            let backend = self.backend(Storage::Memory, "wasm-streams").await?;
            let native = self.native_connection(Storage::Memory, "native-streams")?;
            streams::rows(table, backend, native, claims).await?;
        }
        if self.wanted("construction and peak RSS") {
            child::construction_rows(table, &self.dir)?;
        }
        Ok(())
    }

    /// Run `work` on `count` fresh executions through the backend and natively, in
    /// [`ROUNDS`] alternating rounds (so that both sides see the same machine: this one has two
    /// cores and neighbours), after a warm-up on each side.
    async fn compare(
        &self,
        what: &str,
        storage: Storage,
        tasks: usize,
        count: usize,
        work: Work,
    ) -> anyhow::Result<Comparison> {
        let grant = work != Work::Lifecycle;
        let tag = what.replace([',', ' ', '(', ')'], "");
        let backend = self.backend(storage, &format!("wasm-{tag}")).await?;
        let native = Mutex::new(self.native_connection(storage, &format!("native-{tag}"))?);
        let warm_up = 200;
        let ours_ids = execution_ids(count + warm_up);
        let native_ids = execution_ids(count + warm_up);
        eprintln!(
            "{what}: seeding {} executions on each side ...",
            count + warm_up
        );
        // Each side writes its rows the way it runs: the backend through its API (its writer
        // thread), the baseline on this thread, where its sequential rows also run.
        seed_through_backend(&backend, &ours_ids, grant, SEED_TASKS).await?;
        seed(&native.lock().expect("lock"), &native_ids, grant)?;
        if work == Work::Suspension {
            suspension::seed_backend(&*backend).await?;
            suspension::seed_native(&native.lock().expect("lock"))?;
        }
        let (ours_warm_up, ours_ids) = ours_ids.split_at(warm_up);
        let (native_warm_up, native_ids) = native_ids.split_at(warm_up);
        scenarios::through_backend(&backend, ours_warm_up.to_vec(), 1, work).await;
        tokio::task::block_in_place(|| {
            scenarios::native(&native, native_warm_up.to_vec(), 1, work)
        });

        eprintln!(
            "{what}: {} operations on each side, {ROUNDS} alternating rounds ...",
            count * work.ops()
        );
        let mut ours = Vec::new();
        let mut theirs = Vec::new();
        let round = count.div_ceil(ROUNDS).max(1);
        for (ours_chunk, native_chunk) in ours_ids.chunks(round).zip(native_ids.chunks(round)) {
            ours.push(scenarios::through_backend(&backend, ours_chunk.to_vec(), tasks, work).await);
            theirs.push(tokio::task::block_in_place(|| {
                scenarios::native(&native, native_chunk.to_vec(), tasks, work)
            }));
        }
        Ok(Comparison::new(ours, theirs))
    }

    /// `count` usage reports through the backend and natively, in [`ROUNDS`] alternating rounds
    /// after a warm-up on each side, as [`Bench::compare`].
    async fn compare_report_usage(
        &self,
        what: &str,
        storage: Storage,
        tasks: usize,
        count: usize,
    ) -> anyhow::Result<Comparison> {
        let tag = what.replace([',', ' ', '(', ')'], "");
        let backend = self.backend(storage, &format!("wasm-{tag}")).await?;
        let native = Mutex::new(self.native_connection(storage, &format!("native-{tag}"))?);
        let (handle, budget) = usage::prepare_backend(&backend).await?;
        let (lease, native_budget) = usage::prepare_native(&native.lock().expect("lock"))?;
        let warm_up = 200;
        usage::through_backend(&backend, &handle, &budget, usage::keys(0, warm_up), 1).await;
        tokio::task::block_in_place(|| {
            usage::native(&native, &lease, &native_budget, usage::keys(0, warm_up), 1)
        });
        eprintln!("{what}: {count} reports on each side, {ROUNDS} alternating rounds ...");
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        let round = count.div_ceil(ROUNDS).max(1);
        for first in (warm_up..warm_up + count).step_by(round) {
            let keys = usage::keys(first, round.min(warm_up + count - first));
            ours.push(
                usage::through_backend(&backend, &handle, &budget, keys.clone(), tasks).await,
            );
            theirs.push(tokio::task::block_in_place(|| {
                usage::native(&native, &lease, &native_budget, keys, tasks)
            }));
        }
        Ok(Comparison::new(ours, theirs))
    }

    /// Claim latency with 1k, 100k, 1M … executions: one memory database per size and side,
    /// all seeded first, then measured in [`ROUNDS`] rounds that visit every size on both
    /// sides, so that each size is measured under the same machine conditions. The growth is
    /// the median over rounds of a size's p50 over the first size's p50 in the same round.
    async fn scale_rows(
        &self,
        table: &mut Table,
        scales: &[usize],
        claims: usize,
    ) -> anyhow::Result<()> {
        let mut sizes = Vec::new();
        for &size in scales {
            sizes.push(self.seed_scale(size, claims).await?);
        }
        eprintln!(
            "latency at scale: {claims} claims per size on each side, {ROUNDS} interleaved rounds ..."
        );
        let round = claims.div_ceil(ROUNDS).max(1);
        let mut ours: Vec<Vec<Run>> = vec![Vec::new(); sizes.len()];
        let mut theirs: Vec<Vec<Run>> = vec![Vec::new(); sizes.len()];
        for index in 0..ROUNDS {
            for (scale, size) in sizes.iter().enumerate() {
                let chunk =
                    |ids: &[ExecutionId]| ids.chunks(round).nth(index).map(<[ExecutionId]>::to_vec);
                let (Some(ours_chunk), Some(native_chunk)) =
                    (chunk(&size.ours_ids), chunk(&size.native_ids))
                else {
                    continue;
                };
                ours[scale].push(
                    scenarios::through_backend(&size.backend, ours_chunk, 1, Work::Claim).await,
                );
                theirs[scale].push(tokio::task::block_in_place(|| {
                    scenarios::native(&size.native, native_chunk, 1, Work::Claim)
                }));
            }
        }
        for (scale, size) in sizes.iter().enumerate() {
            table.row(
                format!(
                    "claim latency, memory, {} executions",
                    count_label(size.size)
                ),
                latency(&Run::combine(ours[scale].clone())),
                latency(&Run::combine(theirs[scale].clone())),
                format!(
                    "p50 {:.2}× ours at {} (native {:.2}×)",
                    growth(&ours, scale),
                    count_label(sizes[0].size),
                    growth(&theirs, scale)
                ),
                "≤ 1.5× growth",
            );
        }
        Ok(())
    }

    /// `list_executions` page latency (100 ids a page) with each of `scales` executions in the
    /// partition: one memory database per size and side, bulk-seeded, then `pages` pages per
    /// size and side in [`ROUNDS`] interleaved rounds. The growth is as in the claim rows.
    async fn list_rows(
        &self,
        table: &mut Table,
        scales: &[usize],
        pages: usize,
    ) -> anyhow::Result<()> {
        let mut sizes = Vec::new();
        for &size in scales {
            eprintln!("list_executions at {size} executions: bulk-seeding each side ...");
            let backend = self
                .backend(Storage::Memory, &format!("wasm-list-{size}"))
                .await?;
            listing::bulk_seed(&backend.connection_for_test(), size)?;
            let native = self.native_connection(Storage::Memory, &format!("native-list-{size}"))?;
            listing::bulk_seed(&native, size)?;
            sizes.push((size, backend, native, None, None));
        }
        let round = pages.div_ceil(ROUNDS).max(1);
        let mut ours: Vec<Vec<Run>> = vec![Vec::new(); sizes.len()];
        let mut theirs: Vec<Vec<Run>> = vec![Vec::new(); sizes.len()];
        for _ in 0..ROUNDS {
            for (scale, (_, backend, native, our_cursor, native_cursor)) in
                sizes.iter_mut().enumerate()
            {
                ours[scale].push(listing::through_backend(backend, our_cursor, round).await);
                theirs[scale].push(tokio::task::block_in_place(|| {
                    listing::native(native, native_cursor, round)
                }));
            }
        }
        for (scale, (size, ..)) in sizes.iter().enumerate() {
            table.row(
                format!(
                    "list_executions page of {}, memory, {} executions",
                    listing::PAGE,
                    count_label(*size)
                ),
                latency(&Run::combine(ours[scale].clone())),
                latency(&Run::combine(theirs[scale].clone())),
                format!(
                    "p50 {:.2}× ours at {} (native {:.2}×)",
                    growth(&ours, scale),
                    count_label(sizes[0].0),
                    growth(&theirs, scale)
                ),
                "≤ 1.5× growth",
            );
        }
        Ok(())
    }

    /// The flow rows at 10 and 10 000 members (see [`flows`]): stage, apply and a parent's
    /// completion per operation, and the single operation of a failing parent skipping its
    /// fan-out; the comparison gives the p50 against native and against the small flow.
    async fn flow_rows(&self, table: &mut Table) -> anyhow::Result<()> {
        let mut small: Option<flows::Figures> = None;
        for size in [10, 10_000] {
            let backend = self
                .backend(Storage::Memory, &format!("wasm-flows-{size}"))
                .await?;
            let native =
                self.native_connection(Storage::Memory, &format!("native-flows-{size}"))?;
            eprintln!("flows at {size} members: through the backend ...");
            let ours = flows::through_backend(&backend, size).await?;
            eprintln!("flows at {size} members: natively ...");
            let theirs = tokio::task::block_in_place(|| flows::native(&native, size))?;
            let label = count_label(size);
            let p50 = |run: &Run| run.percentile(0.5).as_secs_f64();
            let pick = |figures: &flows::Figures, op: usize| -> Run {
                match op {
                    0 => figures.stage.clone(),
                    1 => figures.apply.clone(),
                    _ => figures.complete.clone(),
                }
            };
            let names = [
                "stage_dependency_edge",
                "apply_dependency_to_child",
                "complete a parent (resolves its edge)",
            ];
            for (op, name) in names.iter().enumerate() {
                let (ours_run, native_run) = (pick(&ours, op), pick(&theirs, op));
                let growth = small.as_ref().map_or(String::new(), |ours_small| {
                    format!(
                        "; {:.2}× ours at 10",
                        p50(&ours_run) / p50(&pick(ours_small, op))
                    )
                });
                table.row(
                    format!("flow of {label} members, {} edges: {name}", size - 1),
                    latency(&ours_run),
                    latency(&native_run),
                    format!(
                        "p50 {:.2}× native{growth}",
                        p50(&ours_run) / p50(&native_run)
                    ),
                    "flat with flow size",
                );
            }
            table.row(
                format!(
                    "flow of {label} members: a failing parent skips {} children (one operation)",
                    size - 1
                ),
                show_duration(ours.skip_fan_out),
                show_duration(theirs.skip_fan_out),
                format!(
                    "{:.2}× native",
                    ours.skip_fan_out.as_secs_f64() / theirs.skip_fan_out.as_secs_f64()
                ),
                "< 2 s (the operation limit)",
            );
            if small.is_none() {
                small = Some(ours);
            }
        }
        Ok(())
    }

    /// A memory database of `size` executions on each side, `claims` of them (written first,
    /// so that they are not the most recently written) ready to be claimed, after a few
    /// unmeasured claims.
    async fn seed_scale(&self, size: usize, claims: usize) -> anyhow::Result<ScaleStep> {
        let backend = self
            .backend(Storage::Memory, &format!("wasm-scale-{size}"))
            .await?;
        let native =
            Mutex::new(self.native_connection(Storage::Memory, &format!("native-scale-{size}"))?);
        let extra = size.saturating_sub(claims + SCALE_WARM_UP);
        eprintln!("latency at {size} executions: seeding each side ...");
        let ours_ids = execution_ids(claims + SCALE_WARM_UP);
        let native_ids = execution_ids(claims + SCALE_WARM_UP);
        // Each side writes its rows from the thread that later claims them: the backend
        // through its own API (its writer thread), the baseline on this thread.
        seed_through_backend(&backend, &ours_ids, true, SEED_TASKS).await?;
        seed(&native.lock().expect("lock"), &native_ids, true)?;
        seed_through_backend(&backend, &execution_ids(extra), false, SEED_TASKS).await?;
        seed(&native.lock().expect("lock"), &execution_ids(extra), false)?;
        let (ours_warm_up, ours_ids) = ours_ids.split_at(SCALE_WARM_UP);
        let (native_warm_up, native_ids) = native_ids.split_at(SCALE_WARM_UP);
        scenarios::through_backend(&backend, ours_warm_up.to_vec(), 1, Work::Claim).await;
        tokio::task::block_in_place(|| {
            scenarios::native(&native, native_warm_up.to_vec(), 1, Work::Claim)
        });
        Ok(ScaleStep {
            size,
            backend,
            native,
            ours_ids: ours_ids.to_vec(),
            native_ids: native_ids.to_vec(),
        })
    }

    async fn backend(&self, storage: Storage, name: &str) -> anyhow::Result<Arc<SqliteBackend>> {
        Ok(SqliteBackend::new(&self.uri(storage, name)).await?)
    }

    fn native_connection(
        &self,
        storage: Storage,
        name: &str,
    ) -> anyhow::Result<rusqlite::Connection> {
        native::open(&self.uri(storage, name), storage == Storage::File)
    }

    fn uri(&self, storage: Storage, name: &str) -> String {
        match storage {
            Storage::Memory => format!(
                "file:ffbench-{name}-{}?mode=memory&cache=shared",
                std::process::id()
            ),
            Storage::File => native::file_uri(&self.dir.join(format!("{name}.sqlite"))),
        }
    }
}

/// `12345/s · p50 80 µs · p99 210 µs`.
fn throughput(run: &Run) -> String {
    format!("{} · {}", show_rate(run.rate()), latency(run))
}

/// `p50 80 µs · p99 210 µs`.
fn latency(run: &Run) -> String {
    format!(
        "p50 {} · p99 {}",
        show_duration(run.percentile(0.5)),
        show_duration(run.percentile(0.99))
    )
}

/// `1k`, `100k`, `1M`.
fn count_label(count: usize) -> String {
    match count {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}
