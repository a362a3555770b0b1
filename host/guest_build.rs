//! Building a guest component for `wasm32-wasip2` from a build script, shared by
//! `host/build.rs` (the built-in guest) and `tests/build.rs` (test-only guests) through
//! `#[path]`.
//!
//! The nested cargo gets its own target directory (`target/guest`): sharing the outer one
//! deadlocks on cargo's build-directory lock. Host-only flags (`CARGO_ENCODED_RUSTFLAGS`,
//! `RUSTFLAGS`) are not passed on. The component is rebuilt whenever a source listed in its
//! dep-info changes.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";
const PROFILE: &str = "guest";

/// Build workspace package `package` as a component and return the `.wasm` path.
pub fn build_component(package: &str) -> PathBuf {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let workspace = workspace_root(&manifest_dir);
    let target_dir = workspace.join("target").join("guest");
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());

    require_target(&cargo);

    let status = Command::new(&cargo)
        .current_dir(&workspace)
        .args([
            "build",
            "--locked",
            "--package",
            package,
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
        .expect("failed to run cargo for a guest component");
    if !status.success() {
        panic!("building the guest component {package} for {TARGET} failed; see the errors above");
    }

    let crate_name = package.replace('-', "_");
    let artifact_dir = target_dir.join(TARGET).join(PROFILE);
    emit_rerun_from_dep_info(&artifact_dir.join(format!("{crate_name}.d")), &workspace);
    artifact_dir.join(format!("{crate_name}.wasm"))
}

/// The directory holding the workspace's `Cargo.lock`.
fn workspace_root(manifest_dir: &Path) -> PathBuf {
    manifest_dir
        .ancestors()
        .find(|dir| dir.join("Cargo.lock").exists())
        .unwrap_or(manifest_dir)
        .to_path_buf()
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
    // The `guest` profile lives in the workspace manifest.
    println!(
        "cargo:rerun-if-changed={}",
        workspace.join("Cargo.toml").display()
    );
}
