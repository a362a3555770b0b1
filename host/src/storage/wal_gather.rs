//! Gathered WAL writes: a SQLite VFS for the writer's connection that hands a transaction's WAL
//! frames to the operating system in large writes (at most [`MAX_WRITE`] bytes each) instead of
//! two per page.
//!
//! SQLite appends a committing transaction to the WAL as a 24-byte header and a page for every
//! frame, each its own `pwrite`: 50 system calls for a batch of four claims, which on this
//! project's machines cost as much as the rest of the commit. The VFS `ff-gather` wraps the
//! platform's default VFS and changes one thing: the WAL file's contiguous writes collect in a
//! buffer and reach the file in one write when SQLite next does anything else with the file —
//! syncs, reads, truncates, asks its size, or closes it — or when the buffer passes
//! [`MAX_GATHERED`]. Every other file (the database, its shared-memory index) is the default
//! VFS's own object, untouched.
//!
//! # When frames become visible and durable
//!
//! SQLite publishes a commit to other connections by updating the WAL index in shared memory,
//! which goes through no call on the WAL file. What makes the gathering safe is the order SQLite
//! keeps with `synchronous=FULL`: it syncs the WAL after writing a commit's frames and before it
//! publishes them, and the sync is where the buffer is written. So the writer's connection runs
//! with `synchronous=FULL` (see `database`), and no reader, in this process or another, can see a
//! frame that is still in the buffer.
//!
//! That commit sync is only a flush of the buffer: durability comes from the sync thread's
//! `fdatasync` of the WAL before any caller is answered ([`super::durability`]), as before. The
//! syncs that protect the database file itself stay real: the writer's connection also runs with
//! `checkpoint_fullfsync=ON`, which makes SQLite ask for a `SQLITE_SYNC_FULL` sync before a
//! checkpoint copies frames into the database and when a restarted WAL's new header is written,
//! and a full sync is passed through to the default VFS. (The writer's connection checkpoints only
//! when it closes; the other checkpoints run on a connection of their own with the default VFS.)
//!
//! # Failures
//!
//! A write the buffer accepted can still fail when it reaches the file: the error is returned by
//! the call that flushed it — for a commit, its sync — so the commit fails and SQLite rolls the
//! transaction back, as if the frame's own write had failed.

use std::ffi::{CStr, c_int, c_void};
use std::ptr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicPtr, Ordering};

use rusqlite::ffi;

/// The VFS's name, for `Connection::open_with_flags_and_vfs`.
pub(crate) const VFS_NAME: &CStr = c"ff-gather";

/// Gathered bytes above which the buffer is written out without waiting for a sync (a large
/// transaction's frames then reach the file in slices of about this size).
const MAX_GATHERED: usize = 1 << 20;

/// The most bytes the default VFS writes in one call (the Unix VFS masks a larger count to its
/// low 17 bits).
const MAX_WRITE: usize = 0x1_ffff;

/// The default VFS this one wraps.
static DEFAULT_VFS: AtomicPtr<ffi::sqlite3_vfs> = AtomicPtr::new(ptr::null_mut());

/// Register `ff-gather` (once per process); `Err` with SQLite's code if it cannot be.
pub(crate) fn register() -> Result<(), c_int> {
    static REGISTERED: OnceLock<Result<(), c_int>> = OnceLock::new();
    *REGISTERED.get_or_init(|| {
        // SAFETY: `sqlite3_vfs_find(NULL)` returns the default VFS, which SQLite never frees.
        // The new VFS is a copy of it with our name, size and `xOpen`; it is leaked, as SQLite
        // keeps the pointer for the life of the process.
        unsafe {
            let default = ffi::sqlite3_vfs_find(ptr::null());
            if default.is_null() {
                return Err(ffi::SQLITE_ERROR);
            }
            DEFAULT_VFS.store(default, Ordering::Release);
            let mut vfs = *default;
            vfs.zName = VFS_NAME.as_ptr();
            vfs.pNext = ptr::null_mut();
            vfs.szOsFile = gathered_offset(default) as c_int + size_of::<Gathered>() as c_int;
            vfs.xOpen = Some(open);
            let rc = ffi::sqlite3_vfs_register(Box::into_raw(Box::new(vfs)), 0);
            if rc == ffi::SQLITE_OK {
                Ok(())
            } else {
                Err(rc)
            }
        }
    })
}

/// A WAL file's buffer, stored right after the default VFS's file object in the memory SQLite
/// allocated for the file (`szOsFile` covers both).
struct Gathered {
    /// The default VFS's methods for this file (its own `pMethods`, which ours replaced).
    methods: *const ffi::sqlite3_io_methods,
    /// Bytes written by SQLite and not yet by us, meant for the file from `start` on.
    bytes: Vec<u8>,
    start: i64,
    /// The WAL's path, for the tests' injected faults ([`super::faults`]).
    #[cfg(test)]
    path: std::path::PathBuf,
}

/// Where [`Gathered`] starts in a file object of the default VFS `default`.
///
/// # Safety
/// `default` is a live VFS.
unsafe fn gathered_offset(default: *const ffi::sqlite3_vfs) -> usize {
    // SAFETY: the caller's promise.
    let size = usize::try_from(unsafe { (*default).szOsFile }).unwrap_or(0);
    size.next_multiple_of(align_of::<Gathered>())
}

/// The [`Gathered`] of a WAL file opened by [`open`].
///
/// # Safety
/// `file` was opened by [`open`] as a WAL file and not closed yet.
unsafe fn gathered<'a>(file: *mut ffi::sqlite3_file) -> &'a mut Gathered {
    // SAFETY: `open` wrote a `Gathered` at this offset, inside the allocation SQLite made for
    // `file`; SQLite calls a file's methods from one thread at a time.
    unsafe {
        let offset = gathered_offset(DEFAULT_VFS.load(Ordering::Acquire));
        &mut *file.cast::<u8>().add(offset).cast::<Gathered>()
    }
}

/// `xOpen`: open with the default VFS; a WAL file gets our methods and a buffer.
unsafe extern "C" fn open(
    _vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    // SAFETY: `file` has room for the default VFS's file object and a `Gathered` after it
    // (`szOsFile`); the default VFS fills the first part and we the second.
    unsafe {
        let default = DEFAULT_VFS.load(Ordering::Acquire);
        let Some(default_open) = (*default).xOpen else {
            return ffi::SQLITE_ERROR;
        };
        let rc = default_open(default, name, file, flags, out_flags);
        if rc != ffi::SQLITE_OK || flags & ffi::SQLITE_OPEN_WAL == 0 || (*file).pMethods.is_null() {
            return rc;
        }
        let offset = gathered_offset(default);
        ptr::write(
            file.cast::<u8>().add(offset).cast::<Gathered>(),
            Gathered {
                methods: (*file).pMethods,
                bytes: Vec::new(),
                start: 0,
                #[cfg(test)]
                path: if name.is_null() {
                    std::path::PathBuf::new()
                } else {
                    CStr::from_ptr(name).to_string_lossy().into_owned().into()
                },
            },
        );
        (*file).pMethods = &GATHERING_METHODS;
        rc
    }
}

/// Write the buffer to the file; SQLite's error code if that fails (the bytes are dropped
/// either way: the failure fails the transaction that wrote them).
///
/// # Safety
/// As for [`gathered`].
unsafe fn flush(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: the caller's promise; the default VFS's `xWrite` gets its own file object.
    unsafe {
        let gathered = gathered(file);
        if gathered.bytes.is_empty() {
            return ffi::SQLITE_OK;
        }
        #[cfg(test)]
        {
            use super::faults::{Fault, take};
            for (fault, code) in [
                (Fault::WalWriteError, ffi::SQLITE_IOERR_WRITE),
                (Fault::WalWriteFull, ffi::SQLITE_FULL),
            ] {
                if take(&gathered.path, fault) {
                    gathered.bytes.clear();
                    return code;
                }
            }
        }
        let Some(write) = (*gathered.methods).xWrite else {
            gathered.bytes.clear();
            return ffi::SQLITE_IOERR_WRITE;
        };
        let mut rc = ffi::SQLITE_OK;
        let mut offset = gathered.start;
        for chunk in gathered.bytes.chunks(MAX_WRITE) {
            // A chunk's length is at most `MAX_WRITE`, which fits.
            rc = write(file, chunk.as_ptr().cast(), chunk.len() as c_int, offset);
            if rc != ffi::SQLITE_OK {
                break;
            }
            offset += chunk.len() as i64;
        }
        gathered.bytes.clear();
        rc
    }
}

/// [`flush`], then `call` if the buffer reached the file.
///
/// # Safety
/// As for [`gathered`].
unsafe fn after_flush(file: *mut ffi::sqlite3_file, call: impl FnOnce() -> c_int) -> c_int {
    // SAFETY: the caller's promise.
    match unsafe { flush(file) } {
        ffi::SQLITE_OK => call(),
        failed => failed,
    }
}

/// The default VFS's method `$name` for `$file`, or `$missing` if it has none.
macro_rules! default_method {
    ($file:expr, $name:ident, $missing:expr) => {
        match (*gathered($file).methods).$name {
            Some(method) => method,
            None => return $missing,
        }
    };
}

unsafe extern "C" fn close(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: SQLite closes a file once; the `Gathered` is moved out and dropped here, and the
    // file gets the default VFS's methods back before they close it.
    unsafe {
        let flushed = flush(file);
        let offset = gathered_offset(DEFAULT_VFS.load(Ordering::Acquire));
        let gathered = ptr::read(file.cast::<u8>().add(offset).cast::<Gathered>());
        (*file).pMethods = gathered.methods;
        let closed = match (*gathered.methods).xClose {
            Some(close) => close(file),
            None => ffi::SQLITE_OK,
        };
        if flushed != ffi::SQLITE_OK {
            flushed
        } else {
            closed
        }
    }
}

unsafe extern "C" fn write(
    file: *mut ffi::sqlite3_file,
    data: *const c_void,
    amount: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    // SAFETY: SQLite passes `amount` readable bytes at `data`.
    unsafe {
        let buffered = gathered(file);
        let follows = offset == buffered.start + buffered.bytes.len() as i64;
        if !buffered.bytes.is_empty() && !follows {
            let rc = flush(file);
            if rc != ffi::SQLITE_OK {
                return rc;
            }
        }
        let gathered = gathered(file);
        if gathered.bytes.is_empty() {
            gathered.start = offset;
        }
        let length = usize::try_from(amount).unwrap_or(0);
        gathered
            .bytes
            .extend_from_slice(std::slice::from_raw_parts(data.cast::<u8>(), length));
        if gathered.bytes.len() >= MAX_GATHERED {
            return flush(file);
        }
        ffi::SQLITE_OK
    }
}

unsafe extern "C" fn read(
    file: *mut ffi::sqlite3_file,
    data: *mut c_void,
    amount: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    // SAFETY: forwarded as SQLite called us, after the buffer reached the file.
    unsafe {
        after_flush(file, || {
            default_method!(file, xRead, ffi::SQLITE_IOERR_READ)(file, data, amount, offset)
        })
    }
}

unsafe extern "C" fn truncate(file: *mut ffi::sqlite3_file, size: ffi::sqlite3_int64) -> c_int {
    // SAFETY: as for `read`.
    unsafe {
        after_flush(file, || {
            default_method!(file, xTruncate, ffi::SQLITE_IOERR_TRUNCATE)(file, size)
        })
    }
}

/// `xSync`: write the buffer; pass a `SQLITE_SYNC_FULL` sync on to the disk (see the module
/// docs), leave a commit's normal sync to the sync thread.
unsafe extern "C" fn sync(file: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    // SAFETY: as for `read`.
    unsafe {
        after_flush(file, || {
            if flags & 0x0f != ffi::SQLITE_SYNC_FULL {
                return ffi::SQLITE_OK;
            }
            default_method!(file, xSync, ffi::SQLITE_IOERR_FSYNC)(file, flags)
        })
    }
}

unsafe extern "C" fn file_size(
    file: *mut ffi::sqlite3_file,
    size: *mut ffi::sqlite3_int64,
) -> c_int {
    // SAFETY: as for `read`.
    unsafe {
        after_flush(file, || {
            default_method!(file, xFileSize, ffi::SQLITE_IOERR_FSTAT)(file, size)
        })
    }
}

unsafe extern "C" fn lock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    // SAFETY: forwarded as SQLite called us.
    unsafe { default_method!(file, xLock, ffi::SQLITE_IOERR_LOCK)(file, level) }
}

unsafe extern "C" fn unlock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    // SAFETY: forwarded as SQLite called us.
    unsafe { default_method!(file, xUnlock, ffi::SQLITE_IOERR_UNLOCK)(file, level) }
}

unsafe extern "C" fn check_reserved_lock(file: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
    // SAFETY: forwarded as SQLite called us.
    unsafe {
        default_method!(
            file,
            xCheckReservedLock,
            ffi::SQLITE_IOERR_CHECKRESERVEDLOCK
        )(file, out)
    }
}

unsafe extern "C" fn file_control(
    file: *mut ffi::sqlite3_file,
    op: c_int,
    arg: *mut c_void,
) -> c_int {
    // SAFETY: as for `read` (a file control may look at the file's contents or size).
    unsafe {
        after_flush(file, || {
            default_method!(file, xFileControl, ffi::SQLITE_NOTFOUND)(file, op, arg)
        })
    }
}

unsafe extern "C" fn sector_size(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: forwarded as SQLite called us.
    unsafe { default_method!(file, xSectorSize, 4096)(file) }
}

unsafe extern "C" fn device_characteristics(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: forwarded as SQLite called us.
    unsafe { default_method!(file, xDeviceCharacteristics, 0)(file) }
}

unsafe extern "C" fn shm_map(
    file: *mut ffi::sqlite3_file,
    region: c_int,
    size: c_int,
    extend: c_int,
    out: *mut *mut c_void,
) -> c_int {
    // SAFETY: forwarded as SQLite called us (SQLite maps shared memory through the database
    // file, never the WAL; forwarded for completeness).
    unsafe {
        default_method!(file, xShmMap, ffi::SQLITE_IOERR_SHMMAP)(file, region, size, extend, out)
    }
}

unsafe extern "C" fn shm_lock(
    file: *mut ffi::sqlite3_file,
    offset: c_int,
    n: c_int,
    flags: c_int,
) -> c_int {
    // SAFETY: as for `shm_map`.
    unsafe { default_method!(file, xShmLock, ffi::SQLITE_IOERR_SHMLOCK)(file, offset, n, flags) }
}

unsafe extern "C" fn shm_barrier(file: *mut ffi::sqlite3_file) {
    // SAFETY: as for `shm_map`.
    unsafe {
        if let Some(barrier) = (*gathered(file).methods).xShmBarrier {
            barrier(file);
        }
    }
}

unsafe extern "C" fn shm_unmap(file: *mut ffi::sqlite3_file, delete: c_int) -> c_int {
    // SAFETY: as for `shm_map`.
    unsafe { default_method!(file, xShmUnmap, ffi::SQLITE_OK)(file, delete) }
}

unsafe extern "C" fn fetch(
    file: *mut ffi::sqlite3_file,
    offset: ffi::sqlite3_int64,
    amount: c_int,
    out: *mut *mut c_void,
) -> c_int {
    // SAFETY: as for `read` (a memory map must see the written bytes).
    unsafe {
        after_flush(file, || {
            default_method!(file, xFetch, ffi::SQLITE_OK)(file, offset, amount, out)
        })
    }
}

unsafe extern "C" fn unfetch(
    file: *mut ffi::sqlite3_file,
    offset: ffi::sqlite3_int64,
    page: *mut c_void,
) -> c_int {
    // SAFETY: forwarded as SQLite called us.
    unsafe { default_method!(file, xUnfetch, ffi::SQLITE_OK)(file, offset, page) }
}

/// The methods of a WAL file opened through `ff-gather`.
static GATHERING_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 3,
    xClose: Some(close),
    xRead: Some(read),
    xWrite: Some(write),
    xTruncate: Some(truncate),
    xSync: Some(sync),
    xFileSize: Some(file_size),
    xLock: Some(lock),
    xUnlock: Some(unlock),
    xCheckReservedLock: Some(check_reserved_lock),
    xFileControl: Some(file_control),
    xSectorSize: Some(sector_size),
    xDeviceCharacteristics: Some(device_characteristics),
    xShmMap: Some(shm_map),
    xShmLock: Some(shm_lock),
    xShmBarrier: Some(shm_barrier),
    xShmUnmap: Some(shm_unmap),
    xFetch: Some(fetch),
    xUnfetch: Some(unfetch),
};

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::{Connection, OpenFlags};

    /// A connection set up as the writer's: through `ff-gather`, WAL, `synchronous=FULL`,
    /// `checkpoint_fullfsync=ON`.
    fn gathering_connection(path: &std::path::Path) -> Connection {
        register().expect("register ff-gather");
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE;
        let conn = Connection::open_with_flags_and_vfs(path, flags, VFS_NAME).unwrap();
        conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
            .unwrap();
        conn.pragma_update(None, "synchronous", "FULL").unwrap();
        conn.pragma_update(None, "checkpoint_fullfsync", "ON")
            .unwrap();
        conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        conn
    }

    fn temp_file(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("ffwasm-gather-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("db.sqlite")
    }

    #[test]
    fn a_commit_is_in_the_file_before_other_connections_see_it() {
        let path = temp_file("visible");
        let writer = gathering_connection(&path);
        writer
            .execute_batch("CREATE TABLE t (n INTEGER PRIMARY KEY, body BLOB)")
            .unwrap();
        // A reader with the default VFS, as another process would have.
        let reader = Connection::open(&path).unwrap();
        for n in 1..=200_i64 {
            writer
                .execute("INSERT INTO t VALUES (?1, zeroblob(?1 * 50))", [n])
                .unwrap();
            let (count, bytes): (i64, i64) = reader
                .query_row("SELECT COUNT(*), SUM(length(body)) FROM t", [], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })
                .unwrap();
            assert_eq!(
                (count, bytes),
                (n, 50 * n * (n + 1) / 2),
                "after commit {n}"
            );
        }
        drop((reader, writer));
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_transaction_larger_than_the_buffer_arrives_whole() {
        let path = temp_file("large");
        let writer = gathering_connection(&path);
        writer
            .execute_batch("CREATE TABLE t (n INTEGER PRIMARY KEY, body BLOB)")
            .unwrap();
        // 3 MiB of distinct pages: several buffer flushes, each in several writes.
        let body: Vec<u8> = (0..3 * MAX_GATHERED).map(|i| (i % 251) as u8).collect();
        writer
            .execute("INSERT INTO t VALUES (1, ?1)", [&body])
            .unwrap();
        let reader = Connection::open(&path).unwrap();
        let read: Vec<u8> = reader
            .query_row("SELECT body FROM t WHERE n = 1", [], |row| row.get(0))
            .unwrap();
        assert!(read == body, "the blob read back differs");
        drop(reader);
        // Closing the last connection checkpoints the WAL into the database file and deletes
        // the WAL: the file alone then holds everything.
        drop(writer);
        assert!(!path.with_extension("sqlite-wal").exists());
        let reopened = Connection::open(&path).unwrap();
        let check: String = reopened
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))
            .unwrap();
        assert_eq!(check, "ok");
        let length: i64 = reopened
            .query_row("SELECT length(body) FROM t WHERE n = 1", [], |row| {
                row.get(0)
            })
            .unwrap();
        assert_eq!(length as usize, body.len());
        drop(reopened);
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }
}
