//! Embeds the host's migrations (`host/migrations/NNNN_*.sql`, `NNNN` = the `user_version` after
//! applying it), so the provider sets a database up exactly as our host does and picks up every
//! new migration without a change here.

use std::fmt::Write as _;
use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let dir = manifest.join("../../host/migrations");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut migrations: Vec<(u32, PathBuf)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "sql"))
        .map(|path| {
            let name = path
                .file_name()
                .expect("a file")
                .to_string_lossy()
                .into_owned();
            let version = name
                .split('_')
                .next()
                .and_then(|number| number.parse().ok())
                .unwrap_or_else(|| panic!("{name}: a migration's name starts with its number"));
            (version, path.canonicalize().expect("an existing file"))
        })
        .collect();
    migrations.sort();
    let mut code = String::from(
        "/// Every migration, in order: (`user_version` after it, its SQL).\nconst MIGRATIONS: &[(u32, &str)] = &[\n",
    );
    for (version, path) in &migrations {
        writeln!(
            code,
            "    ({version}, include_str!({:?})),",
            path.display().to_string()
        )
        .expect("a string");
    }
    code.push_str("];\n");
    let out =
        PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo")).join("migrations.rs");
    std::fs::write(out, code).expect("OUT_DIR is writable");
}
