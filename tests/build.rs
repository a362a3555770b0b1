//! Builds the test-only guest components (`tests/guests/`) and the custom guest example
//! (`examples/custom-guest/`) and hands their paths to the tests as environment variables.

#[path = "../host/guest_build.rs"]
mod guest_build;

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let hostile = guest_build::build_component("ff-hostile-guest");
    println!(
        "cargo:rustc-env=FF_HOSTILE_GUEST_WASM={}",
        hostile.display()
    );
    let custom = build_custom_guest_example();
    println!("cargo:rustc-env=FF_CUSTOM_GUEST_WASM={}", custom.display());
}

/// Build `ff-custom-guest-example` into `target/guest-examples`, not `target/guest`: it links
/// `ff-engine-guest` without its `export` feature, and cargo would put that variant's
/// `ff_engine_guest.wasm` (a component with no exports) over the built-in guest the host embeds
/// from `target/guest`. Same flags as `guest_build::build_component` otherwise (which has
/// already checked that the wasm target is installed).
fn build_custom_guest_example() -> PathBuf {
    let manifest_dir =
        PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir
        .parent()
        .expect("tests/ is inside the workspace");
    let target_dir = workspace.join("target").join("guest-examples");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(workspace)
        .args(["build", "--locked", "--package", "ff-custom-guest-example"])
        .args(["--target", "wasm32-wasip2", "--profile", "guest"])
        .env("CARGO_TARGET_DIR", &target_dir)
        .env("CARGO_BUILD_BUILD_DIR", &target_dir)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_MAKEFLAGS")
        .status()
        .expect("failed to run cargo for the custom guest example");
    assert!(
        status.success(),
        "building the custom guest example failed; see the errors above"
    );
    for input in [
        "examples/custom-guest",
        "guest/src",
        "guest/Cargo.toml",
        "wit",
    ] {
        println!("cargo:rerun-if-changed={}", workspace.join(input).display());
    }
    target_dir
        .join("wasm32-wasip2")
        .join("guest")
        .join("ff_custom_guest_example.wasm")
}
