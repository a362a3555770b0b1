//! Builds the built-in guest component (`guest/`) and hands its path to the crate as
//! `FF_GUEST_WASM`, so `cargo build` and `cargo test` on a fresh clone need no extra step.
//! `FF_GUEST_WASM_OVERRIDE=<path>` skips the nested build and embeds that file instead.

#[path = "guest_build.rs"]
mod guest_build;

fn main() {
    println!("cargo:rerun-if-env-changed=FF_GUEST_WASM_OVERRIDE");
    let wasm = match std::env::var_os("FF_GUEST_WASM_OVERRIDE") {
        Some(path) => {
            let path = std::path::PathBuf::from(path);
            println!("cargo:rerun-if-changed={}", path.display());
            path
        }
        None => guest_build::build_component("ff-engine-guest"),
    };
    println!("cargo:rustc-env=FF_GUEST_WASM={}", wasm.display());
}
