//! The compiled-component cache: machine code of guest components, kept on disk so that a new
//! process loads it in a few milliseconds instead of compiling the guest again.
//!
//! An entry is keyed by the SHA-256 of the engine's compatibility hash (wasmtime's version and
//! every setting that changes code generation) and of the component's bytes, and records the
//! SHA-256 of the artifact it holds. An entry is used only if its key is the one asked for and
//! its artifact matches the recorded digest; anything else (a truncated, corrupt or foreign file)
//! is ignored, reported in the logs, and replaced by a fresh compilation. Entries are written
//! to a temporary file and renamed into place, so a reader never sees half an entry; a
//! directory keeps the [`MAX_ENTRIES`] most recently written.
//!
//! The files contain machine code that the process will run: the directory must be writable only
//! by the user running the backend. The default directory is created with mode 0700.

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Engine, Precompiled};

/// The first bytes of every cache entry (the last byte is the format version).
const MAGIC: &[u8; 8] = b"FFWASMC\x01";
/// Magic, key, artifact digest.
const HEADER_LEN: usize = 8 + 32 + 32;
/// Entries a cache directory keeps; storing one more removes the least recently written (every
/// rebuilt guest is a new component, so a developer's cache would otherwise only grow).
const MAX_ENTRIES: usize = 16;

/// A directory of compiled components.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CompiledCache {
    dir: PathBuf,
}

/// How a component was obtained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Loaded from a valid cache entry.
    Loaded,
    /// Compiled; `stored` tells whether the cache now holds it.
    Compiled {
        /// Whether writing the entry succeeded.
        stored: bool,
        /// Why an existing entry was not used, if there was one.
        rejected: Option<Rejection>,
    },
}

/// Why an existing cache entry was not loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Rejection {
    /// The file is shorter than an entry's header, or lacks the entry marker.
    #[error("not a cache entry of this format")]
    NotAnEntry,
    /// The entry is for another component or another engine configuration.
    #[error("the entry belongs to another component or engine")]
    Foreign,
    /// The artifact does not match the digest recorded with it.
    #[error("the artifact does not match its recorded digest")]
    Corrupt,
    /// wasmtime refused the artifact.
    #[error("wasmtime refused the artifact: {0}")]
    Refused(String),
}

impl CompiledCache {
    /// A cache in `dir` (created on first store).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// `$XDG_CACHE_HOME/ff-backend-sqlite-wasm`, else `$HOME/.cache/ff-backend-sqlite-wasm`;
    /// `None` when neither variable is set.
    pub fn default_location() -> Option<Self> {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .filter(|dir| !dir.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME")
                    .filter(|dir| !dir.is_empty())
                    .map(|home| PathBuf::from(home).join(".cache"))
            })?;
        Some(Self::new(base.join("ff-backend-sqlite-wasm")))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The component `bytes` compile to with `engine`: from a valid entry, or compiled (and
    /// stored for next time).
    pub fn component(
        &self,
        engine: &Engine,
        bytes: &[u8],
    ) -> wasmtime::Result<(Component, Origin)> {
        let key = entry_key(engine, bytes);
        let path = self.entry_path(&key);
        let rejected = match fs::read(&path) {
            Ok(entry) => match load(engine, &key, &entry) {
                Ok(component) => return Ok((component, Origin::Loaded)),
                Err(rejection) => {
                    tracing::warn!(path = %path.display(), %rejection, "ignoring compiled-component cache entry; compiling again");
                    Some(rejection)
                }
            },
            Err(_) => None,
        };
        let artifact = engine.precompile_component(bytes)?;
        // SAFETY: the artifact was produced by this engine a moment ago.
        let component = unsafe { Component::deserialize(engine, &artifact)? };
        let stored = match self.store(&key, &artifact) {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!(dir = %self.dir.display(), %error, "cannot write the compiled-component cache");
                false
            }
        };
        Ok((component, Origin::Compiled { stored, rejected }))
    }

    /// The file of the entry with `key`.
    pub fn entry_path(&self, key: &[u8; 32]) -> PathBuf {
        self.dir.join(format!("{}.cwasm", hex(key)))
    }

    fn store(&self, key: &[u8; 32], artifact: &[u8]) -> std::io::Result<()> {
        create_private_dir(&self.dir)?;
        let final_path = self.entry_path(key);
        let temporary = self.dir.join(format!(
            ".{}.{}.{}.tmp",
            hex(key),
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        let written = (|| {
            let mut file = fs::File::create(&temporary)?;
            file.write_all(MAGIC)?;
            file.write_all(key)?;
            file.write_all(&Sha256::digest(artifact))?;
            file.write_all(artifact)?;
            file.sync_all()?;
            fs::rename(&temporary, &final_path)
        })();
        if written.is_err() {
            let _ = fs::remove_file(&temporary);
        } else {
            self.prune();
        }
        written
    }

    /// Remove the oldest entries beyond [`MAX_ENTRIES`] (best effort).
    fn prune(&self) {
        let Ok(listing) = fs::read_dir(&self.dir) else {
            return;
        };
        let mut entries: Vec<(std::time::SystemTime, PathBuf)> = listing
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "cwasm"))
            .filter_map(|path| Some((fs::metadata(&path).ok()?.modified().ok()?, path)))
            .collect();
        if entries.len() <= MAX_ENTRIES {
            return;
        }
        entries.sort();
        for (_, path) in &entries[..entries.len() - MAX_ENTRIES] {
            let _ = fs::remove_file(path);
        }
    }
}

/// The cache key of `bytes` compiled by `engine`.
pub(crate) fn entry_key(engine: &Engine, bytes: &[u8]) -> [u8; 32] {
    let mut hasher = DigestHasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    let mut digest = hasher.0;
    digest.update(Sha256::digest(bytes));
    digest.finalize().into()
}

/// The component in `entry` if it is a valid entry for `key`.
fn load(engine: &Engine, key: &[u8; 32], entry: &[u8]) -> Result<Component, Rejection> {
    if entry.len() < HEADER_LEN || &entry[..8] != MAGIC {
        return Err(Rejection::NotAnEntry);
    }
    if &entry[8..40] != key {
        return Err(Rejection::Foreign);
    }
    let artifact = &entry[HEADER_LEN..];
    if Sha256::digest(artifact).as_slice() != &entry[40..72] {
        return Err(Rejection::Corrupt);
    }
    if Engine::detect_precompiled(artifact) != Some(Precompiled::Component) {
        return Err(Rejection::Refused("not a precompiled component".into()));
    }
    // SAFETY: the artifact is byte for byte what this engine configuration produced for this
    // component when the entry was written (key and digest checked above); wasmtime checks its
    // version and settings again. The directory is the user's own (see the module docs).
    unsafe { Component::deserialize(engine, artifact) }
        .map_err(|error| Rejection::Refused(format!("{error:#}")))
}

/// A `Hasher` that feeds SHA-256, so that wasmtime's `impl Hash` compatibility value becomes a
/// stable digest.
struct DigestHasher(Sha256);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        unreachable!("only the digest is used")
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Create `dir` (and its parents) readable and writable by this user only.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::shared_engine::shared_engine;

    /// A tiny valid component.
    const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";

    fn temp_cache(name: &str) -> CompiledCache {
        let dir = std::env::temp_dir().join(format!(
            "ffwasm-cache-{name}-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        CompiledCache::new(dir)
    }

    #[test]
    fn a_stored_entry_is_loaded_the_next_time() {
        let cache = temp_cache("hit");
        let engine = shared_engine();
        let (_, first) = cache.component(engine, EMPTY_COMPONENT).unwrap();
        assert_eq!(
            first,
            Origin::Compiled {
                stored: true,
                rejected: None
            }
        );
        let (_, second) = cache.component(engine, EMPTY_COMPONENT).unwrap();
        assert_eq!(second, Origin::Loaded);
        fs::remove_dir_all(cache.dir()).unwrap();
    }

    #[test]
    fn damaged_or_foreign_entries_are_rejected_and_replaced() {
        let cache = temp_cache("reject");
        let engine = shared_engine();
        cache.component(engine, EMPTY_COMPONENT).unwrap();
        let path = cache.entry_path(&entry_key(engine, EMPTY_COMPONENT));
        let good = fs::read(&path).unwrap();

        let mut flipped = good.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0x55;
        let mut foreign = good.clone();
        foreign[8] ^= 0x01;
        let cases: [(&[u8], Rejection); 4] = [
            (&flipped, Rejection::Corrupt),
            (&foreign, Rejection::Foreign),
            (&good[..40], Rejection::NotAnEntry),
            (
                b"not a cache entry at all, but long enough to hold a header of 72 bytes......",
                Rejection::NotAnEntry,
            ),
        ];
        for (content, expected) in cases {
            fs::write(&path, content).unwrap();
            let (_, origin) = cache.component(engine, EMPTY_COMPONENT).unwrap();
            assert_eq!(
                origin,
                Origin::Compiled {
                    stored: true,
                    rejected: Some(expected)
                }
            );
            assert_eq!(fs::read(&path).unwrap(), good, "the entry is rebuilt");
        }
        fs::remove_dir_all(cache.dir()).unwrap();
    }

    #[test]
    fn the_key_depends_on_the_component() {
        let engine = shared_engine();
        let other = b"\0asm\x0d\0\x01\0\0\x01\0";
        assert_ne!(entry_key(engine, EMPTY_COMPONENT), entry_key(engine, other));
        assert_eq!(
            entry_key(engine, EMPTY_COMPONENT),
            entry_key(engine, EMPTY_COMPONENT)
        );
    }

    #[test]
    fn the_oldest_entries_beyond_the_bound_are_removed() {
        let cache = temp_cache("prune");
        fs::create_dir_all(cache.dir()).unwrap();
        let stale = |n: usize| cache.dir().join(format!("{n:064}.cwasm"));
        for n in 0..MAX_ENTRIES {
            fs::write(stale(n), b"old").unwrap();
            let age = std::time::Duration::from_secs(1_000 - n as u64);
            let when = std::time::SystemTime::now() - age;
            fs::File::options()
                .write(true)
                .open(stale(n))
                .unwrap()
                .set_modified(when)
                .unwrap();
        }
        let unrelated = cache.dir().join("notes.txt");
        fs::write(&unrelated, b"kept").unwrap();
        cache.component(shared_engine(), EMPTY_COMPONENT).unwrap();
        assert!(!stale(0).exists(), "the oldest entry made room");
        assert!(stale(1).exists() && stale(MAX_ENTRIES - 1).exists());
        assert!(
            cache
                .entry_path(&entry_key(shared_engine(), EMPTY_COMPONENT))
                .exists()
        );
        assert!(unrelated.exists(), "only entries are pruned");
        fs::remove_dir_all(cache.dir()).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn the_directory_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let cache = temp_cache("mode");
        cache.component(shared_engine(), EMPTY_COMPONENT).unwrap();
        let mode = fs::metadata(cache.dir()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        fs::remove_dir_all(cache.dir()).unwrap();
    }
}
