//! Builds the guest component (`guest/`, target `wasm32-wasip2`) and hands its path to the
//! crate as `FF_GUEST_WASM`, so `cargo build`/`cargo test` on a fresh clone need no extra step.
//!
//! The nested cargo gets its own target directory (`target/guest`): sharing the outer one
//! deadlocks on cargo's build-directory lock. Host-only flags (`CARGO_ENCODED_RUSTFLAGS`) are
//! not passed on. `FF_GUEST_WASM_OVERRIDE=<path>` skips the nested build and embeds that file.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const GUEST_PACKAGE: &str = "ff-engine-guest";
const GUEST_ARTIFACT: &str = "ff_engine_guest.wasm";
const TARGET: &str = "wasm32-wasip2";
const PROFILE: &str = "guest";

fn main() {
    println!("cargo:rerun-if-env-changed=FF_GUEST_WASM_OVERRIDE");
    if let Some(path) = env::var_os("FF_GUEST_WASM_OVERRIDE") {
        let path = PathBuf::from(path);
        println!("cargo:rerun-if-changed={}", path.display());
        println!("cargo:rustc-env=FF_GUEST_WASM={}", path.display());
        return;
    }

    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir
        .parent()
        .expect("host/ lives in the workspace root");
    let target_dir = workspace.join("target").join("guest");
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());

    require_target(&cargo);

    let status = Command::new(&cargo)
        .current_dir(workspace)
        .args([
            "build",
            "--locked",
            "--package",
            GUEST_PACKAGE,
            "--target",
            TARGET,
            "--profile",
            PROFILE,
        ])
        .env("CARGO_TARGET_DIR", &target_dir)
        .env("CARGO_BUILD_BUILD_DIR", &target_dir)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_MAKEFLAGS")
        .status()
        .expect("failed to run cargo for the guest component");
    if !status.success() {
        panic!(
            "building the guest component ({GUEST_PACKAGE}, {TARGET}) failed; see the errors above"
        );
    }

    let artifact_dir = target_dir.join(TARGET).join(PROFILE);
    let wasm = artifact_dir.join(GUEST_ARTIFACT);
    emit_rerun_from_dep_info(&artifact_dir.join("ff_engine_guest.d"), workspace);
    println!("cargo:rustc-env=FF_GUEST_WASM={}", wasm.display());
}

/// Fail early, naming the fix, when the wasm target is not installed.
fn require_target(cargo: &std::ffi::OsStr) {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let libdir = Command::new(&rustc)
        .args(["--print", "target-libdir", "--target", TARGET])
        .output();
    let installed = match libdir {
        Ok(out) if out.status.success() => {
            Path::new(String::from_utf8_lossy(&out.stdout).trim()).exists()
        }
        _ => false,
    };
    if !installed {
        panic!(
            "\n\nThe Rust target `{TARGET}` is not installed, and the guest component needs it.\n\
             Fix: rustup target add {TARGET}\n(cargo: {})\n",
            Path::new(cargo).display()
        );
    }
}

/// Re-run this script when any source the guest build read changes (from cargo's dep-info).
fn emit_rerun_from_dep_info(dep_info: &Path, workspace: &Path) {
    match std::fs::read_to_string(dep_info) {
        Ok(text) => {
            for line in text.lines() {
                let Some((_, deps)) = line.split_once(": ") else {
                    continue;
                };
                for dep in deps.split_whitespace() {
                    println!("cargo:rerun-if-changed={dep}");
                }
            }
        }
        // Without dep-info, fall back to whole directories.
        Err(_) => {
            for dir in ["guest", "wit"] {
                println!("cargo:rerun-if-changed={}", workspace.join(dir).display());
            }
        }
    }
    println!(
        "cargo:rerun-if-changed={}",
        workspace.join("Cargo.lock").display()
    );
    println!(
        "cargo:rerun-if-changed={}",
        workspace.join("guest").join("Cargo.toml").display()
    );
}
