//! `ffwasm guest wit | check | compile | compose`: the world a guest implements, checking a
//! component against it, precompiling one, and composing one with the SQLite provider into a
//! component that runs outside our host.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;
use ff_backend_sqlite_wasm::{
    BUILTIN_GUEST_COMPONENT, GUEST_WIT, OpenError, check_guest_component,
    precompile_guest_component,
};

use crate::compose::{self, Parts};
use crate::help::ENVIRONMENT;
use crate::{format, output};

/// Where `scripts/build-standalone.sh` puts the provider and the driver in this source tree.
const STANDALONE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/standalone");
/// The provider's file name there.
const PROVIDER_FILE: &str = "ff_sqlite_provider.wasm";
/// The driver's file name there.
const DRIVER_FILE: &str = "ff_standalone_driver.wasm";

/// `ffwasm guest …`.
#[derive(Debug, Subcommand)]
pub enum GuestCommand {
    /// Print the WIT package of the world every guest implements (the built-in guest's), file
    /// by file, or write its files into a directory to build a guest against.
    #[command(after_help = ENVIRONMENT)]
    Wit {
        /// Write the package's files (`world.wit`, `types.wit`, ...) into this directory
        /// (created if missing; existing files with other contents are not overwritten).
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
    },
    /// Check a component against the world without running it; lists every mismatch.
    #[command(after_help = ENVIRONMENT)]
    Check {
        /// The component (.wasm).
        #[arg(value_name = "FILE.wasm")]
        file: PathBuf,
    },
    /// Check and precompile a component for this build, so that `ffwasm demo
    /// --guest-precompiled` starts without compiling it.
    #[command(after_help = ENVIRONMENT)]
    Compile {
        /// The component (.wasm).
        #[arg(value_name = "FILE.wasm")]
        file: PathBuf,
        /// Where to write the precompiled artifact.
        #[arg(short, long, value_name = "OUT")]
        output: PathBuf,
    },
    /// Compose a guest with the SQLite provider into one component that imports only `wasi:*`:
    /// a library exporting the engine's operations (each one transaction), or with `--command`
    /// a `wasi:cli/run` command that runs a workload and inspection commands. Run it with
    /// `wasmtime run` or transpile it with jco (README, "Outside the host").
    Compose {
        /// The guest component (.wasm); the built-in guest when absent.
        #[arg(long, value_name = "FILE.wasm")]
        guest: Option<PathBuf>,
        /// Build the command component (the driver) instead of the library.
        #[arg(long)]
        command: bool,
        /// The directory holding the provider and driver components built by
        /// `scripts/build-standalone.sh`.
        #[arg(long, value_name = "DIR", default_value = STANDALONE_DIR)]
        standalone_dir: PathBuf,
        /// Where to write the composed component.
        #[arg(short, long, value_name = "OUT")]
        output: PathBuf,
    },
}

/// Run a `guest` subcommand.
pub fn run(command: &GuestCommand) -> anyhow::Result<()> {
    match command {
        GuestCommand::Wit { out_dir: None } => output::print(&wit_listing()),
        GuestCommand::Wit { out_dir: Some(dir) } => write_wit(dir),
        GuestCommand::Check { file } => check(file),
        GuestCommand::Compile { file, output } => compile(file, output),
        GuestCommand::Compose {
            guest,
            command,
            standalone_dir,
            output,
        } => compose_command(guest.as_deref(), *command, standalone_dir, output),
    }
}

/// The package's files one after another, each under a `// file: <name>` line.
fn wit_listing() -> String {
    GUEST_WIT
        .iter()
        .map(|(name, text)| format!("// file: {name}\n{text}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Write the package's files into `dir`; a file already there with other contents is an error
/// (and nothing is written).
fn write_wit(dir: &Path) -> anyhow::Result<()> {
    for &(name, text) in GUEST_WIT {
        let path = dir.join(name);
        if let Ok(existing) = std::fs::read_to_string(&path)
            && existing != text
        {
            anyhow::bail!(
                "{} exists with other contents; not overwriting it",
                path.display()
            );
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for &(name, text) in GUEST_WIT {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    output::println(&format!(
        "wrote {} WIT files to {}",
        GUEST_WIT.len(),
        dir.display()
    ))
}

/// Check `file` against the world; every mismatch is printed on its own line.
fn check(file: &Path) -> anyhow::Result<()> {
    let bytes = read(file)?;
    match check_guest_component(&bytes) {
        Ok(()) => output::println(&format!(
            "ok: {} fits the engine-backend world",
            file.display()
        )),
        Err(OpenError::GuestMismatch(mismatch)) => {
            output::println(&format!(
                "{} does not fit the engine-backend world:",
                file.display()
            ))?;
            for problem in &mismatch.problems {
                output::println(&format!("  - {problem}"))?;
            }
            anyhow::bail!(
                "{} does not fit the engine-backend world ({} problem{})",
                file.display(),
                mismatch.problems.len(),
                if mismatch.problems.len() == 1 {
                    ""
                } else {
                    "s"
                }
            )
        }
        Err(other) => {
            Err(other).with_context(|| format!("{} is not a usable guest", file.display()))
        }
    }
}

/// Check and precompile `file` into `path`.
fn compile(file: &Path, path: &Path) -> anyhow::Result<()> {
    let bytes = read(file)?;
    let artifact = precompile_guest_component(&bytes)
        .with_context(|| format!("cannot precompile {}", file.display()))?;
    write_atomically(path, &artifact)?;
    output::println(&format!(
        "wrote {} ({}); run it with: ffwasm demo --guest-precompiled {}",
        path.display(),
        format::bytes(artifact.len() as u64),
        path.display()
    ))
}

/// Compose the guest (`file`, or the built-in one) with the provider (and the driver when
/// `command`) from `dir` into `path`.
fn compose_command(
    file: Option<&Path>,
    command: bool,
    dir: &Path,
    path: &Path,
) -> anyhow::Result<()> {
    let guest = match file {
        Some(file) => read(file)?,
        None => BUILTIN_GUEST_COMPONENT.to_vec(),
    };
    let standalone = |name: &str| {
        let file = dir.join(name);
        std::fs::read(&file).with_context(|| {
            format!(
                "cannot read {}; build it with scripts/build-standalone.sh",
                file.display()
            )
        })
    };
    let provider = standalone(PROVIDER_FILE)?;
    let driver = if command {
        Some(standalone(DRIVER_FILE)?)
    } else {
        None
    };
    let composed = compose::compose(&Parts {
        guest: &guest,
        provider: &provider,
        driver: driver.as_deref(),
    })?;
    write_atomically(path, &composed)?;
    output::println(&format!(
        "wrote {} ({}), importing only wasi:*",
        path.display(),
        format::bytes(composed.len() as u64)
    ))
}

fn read(file: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))
}

/// Write `bytes` to a temporary file beside `path`, then rename it over `path`: a failed write
/// never leaves a half-written artifact.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let name = path
        .file_name()
        .with_context(|| format!("{} is not a file name", path.display()))?;
    let temporary = path.with_file_name(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    std::fs::write(&temporary, bytes)
        .with_context(|| format!("cannot write {}", temporary.display()))?;
    std::fs::rename(&temporary, path).map_err(|error| {
        let _ = std::fs::remove_file(&temporary);
        anyhow::Error::new(error).context(format!("cannot write {}", path.display()))
    })
}
