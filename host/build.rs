//! Builds the built-in guest component (`guest/`) and hands its path to the crate as
//! `FF_GUEST_WASM`, so `cargo build` and `cargo test` on a fresh clone need no extra step.
//! `FF_GUEST_WASM_OVERRIDE=<path>` skips the nested build and embeds that file instead.
//! It records the component's SHA-256 (`guest_digest.rs`, the compiled cache's key) and lists
//! the WIT package's files (`wit/*.wit`, the world first) for `GUEST_WIT`, so a
//! new interface file is part of it without anyone editing a list.

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
    write_guest_digest(&wasm);
    write_wit_listing();
}

/// Write `$OUT_DIR/guest_digest.rs`: the SHA-256 of the built-in guest component, so that a
/// backend finds the guest's compiled-cache entry without hashing the component at run time.
fn write_guest_digest(wasm: &std::path::Path) {
    use sha2::{Digest, Sha256};
    let bytes = std::fs::read(wasm).expect("reading the built guest component");
    let digest: [u8; 32] = Sha256::digest(&bytes).into();
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out.join("guest_digest.rs"), format!("{digest:?}\n"))
        .expect("writing the guest digest");
}

/// Write `$OUT_DIR/guest_wit.rs`: the `(file name, contents)` of every `.wit` file of the
/// package, `world.wit` first and the rest by name.
fn write_wit_listing() {
    let manifest_dir = std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    );
    let wit_dir = manifest_dir.join("../wit");
    println!("cargo:rerun-if-changed={}", wit_dir.display());
    let mut names: Vec<String> = std::fs::read_dir(&wit_dir)
        .expect("the wit directory beside the host crate")
        .map(|entry| entry.expect("a wit directory entry").file_name())
        .map(|name| name.to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".wit"))
        .collect();
    names.sort_by_key(|name| (name != "world.wit", name.clone()));
    let entries: String = names
        .iter()
        .map(|name| {
            let path = wit_dir.join(name);
            println!("cargo:rerun-if-changed={}", path.display());
            format!(
                "    ({name:?}, include_str!({:?})),\n",
                path.display().to_string()
            )
        })
        .collect();
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out.join("guest_wit.rs"), format!("&[\n{entries}]\n"))
        .expect("writing the WIT listing");
}
