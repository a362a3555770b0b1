//! Builds the test-only guest components (`tests/guests/`) and hands their paths to the
//! tests as environment variables.

#[path = "../host/guest_build.rs"]
mod guest_build;

fn main() {
    let hostile = guest_build::build_component("ff-hostile-guest");
    println!(
        "cargo:rustc-env=FF_HOSTILE_GUEST_WASM={}",
        hostile.display()
    );
}
