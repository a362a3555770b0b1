//! The compiled-component cache: machine code of guest components, kept on disk so that a new
//! process loads it in a few milliseconds instead of compiling the guest again.
//!
//! An entry is the artifact wasmtime produced followed by a trailer: the entry's key (the
//! SHA-256 of the engine's compatibility hash — wasmtime's version and every setting that
//! changes code generation — and of the component's SHA-256), the artifact's CRC-32 and length,
//! and a format marker. An entry is used only if its key is the one asked for and its artifact
//! matches the recorded length and checksum; anything else (a truncated, corrupt or foreign
//! file) is ignored, reported in the logs, and replaced by a fresh compilation. A checked entry
//! is mapped from the file, not copied: only the machine code a guest runs is paged in. Entries
//! are written to a temporary file and renamed into place, so a reader never sees half an entry;
//! a directory keeps the [`MAX_ENTRIES`] most recently written.
//!
//! The files contain machine code that the process will run: the directory must be writable only
//! by the user running the backend. The default directory is created with mode 0700. The
//! checksum detects damage, not tampering: that is what the directory's permissions are for.

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// The last bytes of every cache entry (the last byte is the format version).
const MAGIC: &[u8; 8] = b"FFWASMC\x02";
/// The trailer after the artifact: key, artifact CRC-32, artifact length, magic.
const TRAILER_LEN: usize = 32 + 4 + 8 + 8;
/// The bytes read at a time while checking an entry's artifact.
const CHECK_CHUNK: usize = 64 * 1024;
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
    /// The file is shorter than an entry's trailer, lacks the entry marker, or its length is not
    /// the one recorded.
    #[error("not a cache entry of this format")]
    NotAnEntry,
    /// The entry is for another component or another engine configuration.
    #[error("the entry belongs to another component or engine")]
    Foreign,
    /// The artifact does not match the checksum recorded with it.
    #[error("the artifact does not match its recorded checksum")]
    Corrupt,
    /// The file could not be read.
    #[error("cannot read the entry: {0}")]
    Unreadable(String),
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

    /// The component `source` compiles to with `engine`: from a valid entry, or compiled (and
    /// stored for next time).
    pub fn component(
        &self,
        engine: &Engine,
        source: ComponentSource<'_>,
    ) -> wasmtime::Result<(Component, Origin)> {
        let key = entry_key(engine, &source.digest);
        let path = self.entry_path(&key);
        let rejected = match fs::File::open(&path) {
            Ok(file) => match load(engine, &key, file, &path) {
                Ok(component) => return Ok((component, Origin::Loaded)),
                Err(rejection) => {
                    tracing::warn!(path = %path.display(), %rejection, "ignoring compiled-component cache entry; compiling again");
                    Some(rejection)
                }
            },
            Err(_) => None,
        };
        let artifact = engine.precompile_component(source.bytes)?;
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
            file.write_all(artifact)?;
            file.write_all(&trailer(key, artifact))?;
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

/// A component binary and its SHA-256 (part of its cache key).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ComponentSource<'a> {
    /// The component binary.
    pub bytes: &'a [u8],
    /// Its SHA-256.
    pub digest: [u8; 32],
}

impl<'a> ComponentSource<'a> {
    /// `bytes`, hashed now.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            digest: Sha256::digest(bytes).into(),
        }
    }
}

/// The cache key of a component with SHA-256 `digest` compiled by `engine`.
pub(crate) fn entry_key(engine: &Engine, digest: &[u8; 32]) -> [u8; 32] {
    let mut hasher = DigestHasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    let mut key = hasher.0;
    key.update(digest);
    key.finalize().into()
}

/// The trailer written after `artifact` in the entry with `key`.
fn trailer(key: &[u8; 32], artifact: &[u8]) -> [u8; TRAILER_LEN] {
    let mut trailer = [0; TRAILER_LEN];
    trailer[..32].copy_from_slice(key);
    trailer[32..36].copy_from_slice(&crc32fast::hash(artifact).to_le_bytes());
    trailer[36..44].copy_from_slice(&(artifact.len() as u64).to_le_bytes());
    trailer[44..].copy_from_slice(MAGIC);
    trailer
}

/// The component in `file` (at `path`) if it is a valid entry for `key`: the trailer and the
/// artifact's checksum are checked by reading the file once, then wasmtime maps the file.
fn load(
    engine: &Engine,
    key: &[u8; 32],
    mut file: fs::File,
    path: &Path,
) -> Result<Component, Rejection> {
    let unreadable = |error: std::io::Error| Rejection::Unreadable(error.to_string());
    let len = file.metadata().map_err(unreadable)?.len();
    let artifact_len = len
        .checked_sub(TRAILER_LEN as u64)
        .ok_or(Rejection::NotAnEntry)?;
    let mut trailer = [0; TRAILER_LEN];
    file.seek(SeekFrom::Start(artifact_len))
        .map_err(unreadable)?;
    file.read_exact(&mut trailer).map_err(unreadable)?;
    let recorded_len = u64::from_le_bytes(trailer[36..44].try_into().expect("8 bytes"));
    if &trailer[44..] != MAGIC || recorded_len != artifact_len {
        return Err(Rejection::NotAnEntry);
    }
    if &trailer[..32] != key {
        return Err(Rejection::Foreign);
    }
    file.seek(SeekFrom::Start(0)).map_err(unreadable)?;
    let mut checksum = crc32fast::Hasher::new();
    let mut chunk = vec![0; CHECK_CHUNK];
    let mut remaining = artifact_len;
    while remaining > 0 {
        let take = remaining.min(CHECK_CHUNK as u64) as usize;
        file.read_exact(&mut chunk[..take]).map_err(unreadable)?;
        checksum.update(&chunk[..take]);
        remaining -= take as u64;
    }
    if checksum.finalize().to_le_bytes() != trailer[32..36] {
        return Err(Rejection::Corrupt);
    }
    // SAFETY: the artifact is byte for byte what this engine configuration produced for this
    // component when the entry was written (key, length and checksum checked above); wasmtime
    // checks again that it is a component artifact of its version and settings, and ignores the
    // trailer after the artifact. The
    // directory is the user's own (see the module docs): nobody else replaces the file between
    // the check and the mapping.
    unsafe { Component::deserialize_file(engine, path) }
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

    fn empty() -> ComponentSource<'static> {
        ComponentSource::new(EMPTY_COMPONENT)
    }

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
        let (_, first) = cache.component(engine, empty()).unwrap();
        assert_eq!(
            first,
            Origin::Compiled {
                stored: true,
                rejected: None
            }
        );
        let (_, second) = cache.component(engine, empty()).unwrap();
        assert_eq!(second, Origin::Loaded);
        fs::remove_dir_all(cache.dir()).unwrap();
    }

    #[test]
    fn damaged_or_foreign_entries_are_rejected_and_replaced() {
        let cache = temp_cache("reject");
        let engine = shared_engine();
        cache.component(engine, empty()).unwrap();
        let path = cache.entry_path(&entry_key(engine, &empty().digest));
        let good = fs::read(&path).unwrap();

        let artifact_len = good.len() - TRAILER_LEN;
        let mut flipped = good.clone();
        flipped[artifact_len / 2] ^= 0x55;
        let mut foreign = good.clone();
        foreign[artifact_len] ^= 0x01;
        let mut marker = good.clone();
        *marker.last_mut().unwrap() ^= 0x01;
        let mut longer = good[..artifact_len].to_vec();
        longer.push(0);
        longer.extend_from_slice(&good[artifact_len..]);
        let cases: [(&[u8], Rejection); 6] = [
            (&flipped, Rejection::Corrupt),
            (&foreign, Rejection::Foreign),
            (&marker, Rejection::NotAnEntry),
            (&longer, Rejection::NotAnEntry),
            (&good[..good.len() - 1], Rejection::NotAnEntry),
            (
                b"not a cache entry at all, but long enough to hold a trailer of 52 bytes......",
                Rejection::NotAnEntry,
            ),
        ];
        for (content, expected) in cases {
            fs::write(&path, content).unwrap();
            let (_, origin) = cache.component(engine, empty()).unwrap();
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
        assert_ne!(
            entry_key(engine, &empty().digest),
            entry_key(engine, &ComponentSource::new(other).digest)
        );
        assert_eq!(
            entry_key(engine, &empty().digest),
            entry_key(engine, &empty().digest)
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
        cache.component(shared_engine(), empty()).unwrap();
        assert!(!stale(0).exists(), "the oldest entry made room");
        assert!(stale(1).exists() && stale(MAX_ENTRIES - 1).exists());
        assert!(
            cache
                .entry_path(&entry_key(shared_engine(), &empty().digest))
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
        cache.component(shared_engine(), empty()).unwrap();
        let mode = fs::metadata(cache.dir()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        fs::remove_dir_all(cache.dir()).unwrap();
    }
}
