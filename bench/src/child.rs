//! Rows measured in fresh processes: construction time (cold, and with the compiled component
//! cached) and peak resident memory. The benchmark runs itself as `ffbench child …`, which
//! prints one `key=value` line for the parent to read.

use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use clap::{Subcommand, ValueEnum};
use ff_backend_sqlite_wasm::SqliteBackend;

use crate::scenarios::{self, Work};
use crate::stats::{Table, show_duration};
use crate::workload::{execution_ids, seed};

/// Claims a child makes after construction, so that its peak memory includes real work.
const CHILD_CLAIMS: usize = 1_000;

/// What a child process measures.
#[derive(Debug, Subcommand)]
pub enum ChildCommand {
    /// (internal) Construct one backend or native connection, make claims, report.
    #[command(hide = true)]
    Child {
        /// Which side to construct.
        #[arg(value_enum)]
        side: Side,
        /// The compiled-component cache directory the backend uses.
        #[arg(long)]
        cache_dir: Option<std::path::PathBuf>,
    },
}

/// The two sides of the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Side {
    /// ff-backend-sqlite-wasm.
    Wasm,
    /// The native baseline.
    Native,
}

/// In the child: construct, claim, print `construct_us=… rss_kib=…`.
pub fn run(command: ChildCommand) -> anyhow::Result<()> {
    let ChildCommand::Child { side, cache_dir } = command;
    let uri = format!(
        "file:ffbench-child-{}?mode=memory&cache=shared",
        std::process::id()
    );
    let ids = execution_ids(CHILD_CLAIMS);
    let construct = match side {
        Side::Wasm => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let started = Instant::now();
                let mut builder = SqliteBackend::builder(&uri);
                if let Some(dir) = cache_dir {
                    builder = builder.compiled_cache_dir(dir);
                }
                let backend = builder.open().await?;
                let construct = started.elapsed();
                seed(&backend.connection_for_test(), &ids, true)?;
                scenarios::through_backend(&backend, ids, 1, Work::Claim).await;
                anyhow::Ok(construct)
            })?
        }
        Side::Native => {
            let started = Instant::now();
            let conn = crate::native::open(&uri, false)?;
            let construct = started.elapsed();
            seed(&conn, &ids, true)?;
            scenarios::native(&Mutex::new(conn), ids, 1, Work::Claim);
            construct
        }
    };
    println!(
        "construct_us={} rss_kib={}",
        construct.as_micros(),
        peak_rss_kib()?
    );
    Ok(())
}

/// This process's peak resident set (`VmHWM`), in KiB.
fn peak_rss_kib() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmHWM in /proc/self/status"))
}

/// What one child reported.
struct ChildReport {
    construct: Duration,
    rss_kib: u64,
}

fn spawn_child(side: Side, cache_dir: Option<&Path>) -> anyhow::Result<ChildReport> {
    let mut command = Command::new(std::env::current_exe()?);
    command.arg("child").arg(match side {
        Side::Wasm => "wasm",
        Side::Native => "native",
    });
    if let Some(dir) = cache_dir {
        command.arg("--cache-dir").arg(dir);
    }
    let output = command.output()?;
    anyhow::ensure!(
        output.status.success(),
        "child failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout)?;
    let field = |name: &str| -> anyhow::Result<u64> {
        stdout
            .split_whitespace()
            .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
            .and_then(|value| value.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("child printed no {name}: {stdout}"))
    };
    Ok(ChildReport {
        construct: Duration::from_micros(field("construct_us")?),
        rss_kib: field("rss_kib")?,
    })
}

/// Construction (cold process with an empty cache; cold process with the cache filled by the
/// first) and peak memory, from child processes.
pub fn construction_rows(table: &mut Table, dir: &Path) -> anyhow::Result<()> {
    let cache = dir.join("compiled-cache");
    let _ = std::fs::remove_dir_all(&cache);
    eprintln!("construction: child processes ...");
    let native = spawn_child(Side::Native, None)?;
    let cold = spawn_child(Side::Wasm, Some(&cache))?;
    let warm = (0..5)
        .map(|_| spawn_child(Side::Wasm, Some(&cache)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let warm_median = {
        let mut times: Vec<Duration> = warm.iter().map(|r| r.construct).collect();
        times.sort();
        times[times.len() / 2]
    };
    table.row(
        "construction, new process, empty compiled cache",
        show_duration(cold.construct),
        show_duration(native.construct),
        "compiles the guest",
        "—",
    );
    table.row(
        "construction, new process, warm compiled cache (median of 5)",
        show_duration(warm_median),
        show_duration(native.construct),
        "loads the cached machine code",
        "< 10 ms",
    );
    table.row(
        format!("peak RSS, process with one backend after {CHILD_CLAIMS} claims"),
        format!("{:.1} MiB", warm[0].rss_kib as f64 / 1024.0),
        format!("{:.1} MiB", native.rss_kib as f64 / 1024.0),
        format!("{:.2}×", warm[0].rss_kib as f64 / native.rss_kib as f64),
        "—",
    );
    Ok(())
}
