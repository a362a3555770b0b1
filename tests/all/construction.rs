//! Constructing backends: the dev-mode guard, URI forms, sharing one database per URI, file
//! settings, and what the backend says about itself.

use crate::support::*;
use ff_backend_sqlite_wasm::{OpenError, SqliteBackend};
use ff_core::engine_backend::EngineBackend;
use ff_core::engine_error::BackendError;
use serial_test::{parallel, serial};
use std::sync::Arc;

/// Alone in the process (`#[serial(process)]`): it removes and changes `FF_DEV_MODE`, which every
/// other test's constructions read.
#[tokio::test]
#[serial(process)]
async fn refuses_without_dev_mode() {
    for value in [None, Some("0"), Some("true"), Some(" 1")] {
        // SAFETY: this test runs alone (`#[serial(process)]`): no other test reads or writes
        // the environment meanwhile.
        unsafe {
            match value {
                Some(v) => std::env::set_var("FF_DEV_MODE", v),
                None => std::env::remove_var("FF_DEV_MODE"),
            }
        }
        let error = SqliteBackend::new(&memory_uri("guard"))
            .await
            .expect_err("must refuse");
        assert!(
            matches!(error, OpenError::RequiresDevMode),
            "{value:?}: {error:?}"
        );
        assert!(error.to_string().contains("FF_DEV_MODE=1"));
        assert!(matches!(
            BackendError::from(error),
            BackendError::RequiresDevMode
        ));
    }
    dev_mode();
    SqliteBackend::new(":memory:")
        .await
        .expect("accepted with FF_DEV_MODE=1");
}

#[tokio::test]
#[parallel(process)]
async fn the_same_uri_shares_one_database_and_distinct_uris_do_not() {
    dev_mode();
    let uri = memory_uri("shared");
    let first = SqliteBackend::new(&uri).await.unwrap();
    let second = SqliteBackend::new(&uri).await.unwrap();
    let other = SqliteBackend::new(&memory_uri("other")).await.unwrap();
    seed_runnable(&first.connection_for_test());
    let count =
        |backend: &SqliteBackend| count_rows(&backend.connection_for_test(), "ff_exec_core");
    assert_eq!(count(&second), 1);
    assert_eq!(count(&other), 0);
    drop(first);
    assert_eq!(
        count(&second),
        1,
        "dropping one backend leaves the database to the other"
    );
}

#[tokio::test]
#[parallel(process)]
async fn a_memory_database_dies_with_its_last_backend() {
    dev_mode();
    let uri = memory_uri("dies");
    let backend = SqliteBackend::new(&uri).await.unwrap();
    seed_runnable(&backend.connection_for_test());
    drop(backend);
    let again = SqliteBackend::new(&uri).await.unwrap();
    assert_eq!(count_rows(&again.connection_for_test(), "ff_exec_core"), 0);
}

#[tokio::test]
#[parallel(process)]
async fn a_file_database_uses_wal_and_keeps_its_data() {
    dev_mode();
    let dir = std::env::temp_dir().join(format!("ffwasm-construction-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("engine.sqlite");
    let path_text = path.to_str().unwrap().to_owned();
    {
        let backend = SqliteBackend::new(&path_text).await.unwrap();
        let conn = backend.connection_for_test();
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        let synchronous: i64 = conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        // Waiting for another process's lock is the host's own busy handler (polling every
        // millisecond for up to 5 s), exercised by `processes.rs`. `synchronous=FULL` with
        // `checkpoint_fullfsync`: a commit's sync writes its gathered WAL frames, the disk
        // flush comes from the sync thread before any answer (`group_commit.rs`), and the
        // syncs that guard the database file reach the disk (`docs/semantics.md`).
        let checkpoint_fullfsync: i64 = conn
            .query_row("PRAGMA checkpoint_fullfsync", [], |r| r.get(0))
            .unwrap();
        assert_eq!(
            (mode.as_str(), synchronous, checkpoint_fullfsync),
            ("wal", 2, 1)
        );
        let temp_store: i64 = conn
            .query_row("PRAGMA temp_store", [], |r| r.get(0))
            .unwrap();
        assert_eq!(
            temp_store, 1,
            "temporary storage spills to files past the caches (docs/security.md, host memory)"
        );
        seed_runnable(&conn);
    }
    // Another spelling of the same file reaches the same data after a reopen.
    let backend = SqliteBackend::new(&format!("file:{path_text}?mode=rwc"))
        .await
        .unwrap();
    assert_eq!(
        count_rows(&backend.connection_for_test(), "ff_exec_core"),
        1
    );
    drop(backend);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
#[parallel(process)]
async fn an_unopenable_path_is_a_clear_error() {
    dev_mode();
    let error = SqliteBackend::new("/nonexistent-dir/for/sure/engine.sqlite")
        .await
        .expect_err("must fail");
    assert!(matches!(error, OpenError::Open { .. }), "{error:?}");
}

#[tokio::test]
#[parallel(process)]
async fn a_component_that_is_not_a_guest_is_refused() {
    dev_mode();
    let error = SqliteBackend::builder(memory_uri("bad-guest"))
        .guest_bytes(b"not wasm at all".to_vec())
        .open()
        .await
        .expect_err("must refuse");
    assert!(matches!(error, OpenError::Guest(_)), "{error:?}");
}

#[tokio::test]
#[parallel(process)]
async fn label_capabilities_and_unbuilt_operations_tell_the_truth() {
    let backend = fresh_backend("identity").await;
    let engine: Arc<dyn EngineBackend> = backend.clone();
    assert_eq!(engine.backend_label(), "sqlite-wasm");
    let downcast = engine
        .as_any()
        .downcast_ref::<SqliteBackend>()
        .expect("as_any is the backend itself");
    assert!(std::ptr::eq(downcast, backend.as_ref()));
    let capabilities = engine.capabilities();
    assert_eq!(capabilities.identity.family, "sqlite-wasm");
    let supports = capabilities.supports;
    // Every flag ff-core 0.15 defines: each operation is built.
    for (flag, name) in [
        (supports.cancel_execution, "cancel_execution"),
        (supports.change_priority, "change_priority"),
        (supports.replay_execution, "replay_execution"),
        (supports.revoke_lease, "revoke_lease"),
        (supports.read_execution_state, "read_execution_state"),
        (supports.read_execution_info, "read_execution_info"),
        (supports.get_execution_result, "get_execution_result"),
        (supports.budget_admin, "budget_admin"),
        (supports.quota_admin, "quota_admin"),
        (
            supports.rotate_waitpoint_hmac_secret_all,
            "rotate_waitpoint_hmac_secret_all",
        ),
        (
            supports.seed_waitpoint_hmac_secret,
            "seed_waitpoint_hmac_secret",
        ),
        (supports.list_pending_waitpoints, "list_pending_waitpoints"),
        (supports.cancel_flow_header, "cancel_flow_header"),
        (
            supports.cancel_flow_wait_timeout,
            "cancel_flow_wait_timeout",
        ),
        (
            supports.cancel_flow_wait_indefinite,
            "cancel_flow_wait_indefinite",
        ),
        (supports.ack_cancel_member, "ack_cancel_member"),
        (supports.claim_for_worker, "claim_for_worker"),
        (supports.issue_reclaim_grant, "issue_reclaim_grant"),
        (supports.prepare, "prepare"),
        (supports.subscribe_lease_history, "subscribe_lease_history"),
        (supports.subscribe_completion, "subscribe_completion"),
        (
            supports.subscribe_signal_delivery,
            "subscribe_signal_delivery",
        ),
        (supports.subscribe_instance_tags, "subscribe_instance_tags"),
        (supports.stream_durable_summary, "stream_durable_summary"),
        (supports.stream_best_effort_live, "stream_best_effort_live"),
        (supports.register_worker, "register_worker"),
        (supports.heartbeat_worker, "heartbeat_worker"),
        (supports.mark_worker_dead, "mark_worker_dead"),
        (supports.list_expired_leases, "list_expired_leases"),
        (supports.list_workers, "list_workers"),
        (supports.release_admission, "release_admission"),
        (
            supports.read_quota_policy_limits,
            "read_quota_policy_limits",
        ),
        (
            supports.block_execution_for_admission,
            "block_execution_for_admission",
        ),
        (
            supports.read_budget_usage_and_limits,
            "read_budget_usage_and_limits",
        ),
    ] {
        assert!(flag, "{name} works and says so");
    }
    let flow = ff_core::types::FlowId::new();
    assert!(
        matches!(
            engine
                .project_flow_summary(
                    ff_core::partition::Partition {
                        family: ff_core::partition::PartitionFamily::Flow,
                        index: 0,
                    },
                    &flow,
                    ff_core::types::TimestampMs::now(),
                )
                .await,
            Ok(false)
        ),
        "project_flow_summary is built (flows): an absent flow has nothing to project"
    );
}

/// The `.cwasm` entries in a compiled-component cache directory.
fn cache_entries(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "cwasm"))
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[tokio::test]
#[parallel(process)]
async fn the_compiled_cache_is_filled_once_and_damaged_entries_are_rebuilt_not_loaded() {
    dev_mode();
    const GUEST: &str = env!("FF_HOSTILE_GUEST_WASM");
    let cache = std::env::temp_dir().join(format!("ffwasm-cache-{}", uuid::Uuid::new_v4()));
    let open = || async {
        let backend = SqliteBackend::builder(memory_uri("cache"))
            .guest_file(GUEST)
            .compiled_cache_dir(&cache)
            .open()
            .await
            .expect("the guest loads whatever the cache holds");
        // The guest runs: its ordinary answer to a claim of an unknown execution.
        let (_, eid) = seed_granted(&backend.connection_for_test(), "worker-1");
        assert_execution_not_found(
            backend
                .claim_execution(claim_args(eid, "anyone"))
                .await
                .unwrap_err(),
        );
    };

    open().await;
    let entries = cache_entries(&cache);
    assert_eq!(entries.len(), 1, "one entry per component: {entries:?}");
    let entry = entries[0].clone();
    let good = std::fs::read(&entry).unwrap();
    let inode = |path: &std::path::Path| {
        std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(path).unwrap())
    };
    let first_inode = inode(&entry);
    open().await;
    assert_eq!(
        inode(&entry),
        first_inode,
        "a valid entry is loaded, not compiled and written again"
    );
    assert_eq!(std::fs::read(&entry).unwrap(), good);

    // A flipped byte in the machine code, a truncated file, and a flipped byte in the artifact's
    // header: each is refused by its checksum or trailer, compiled again and rewritten (the
    // unit tests of `compiled_cache.rs` pin each rejection, another component's key included).
    let mut flipped = good.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x40;
    let mut header = good.clone();
    header[20] ^= 0x01;
    for damaged in [flipped, good[..good.len() / 3].to_vec(), header] {
        std::fs::write(&entry, &damaged).unwrap();
        open().await;
        assert_eq!(
            std::fs::read(&entry).unwrap(),
            good,
            "the entry was rebuilt"
        );
    }
    assert_eq!(cache_entries(&cache).len(), 1);

    // Without a cache nothing is written (the last cache setting wins).
    let unused = cache.join("unused");
    SqliteBackend::builder(memory_uri("no-cache"))
        .guest_file(GUEST)
        .compiled_cache_dir(&unused)
        .no_compiled_cache()
        .open()
        .await
        .unwrap();
    assert!(cache_entries(&unused).is_empty());
    std::fs::remove_dir_all(&cache).unwrap();
}

/// Poll `future` to completion on this thread, with no runtime of any kind.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// `SqliteBackend::new` awaited outside a Tokio runtime opens the database on the calling
/// thread (inside one it uses the runtime's blocking pool), and the backend serves without a
/// runtime too.
#[test]
#[parallel(process)]
fn a_backend_opens_and_serves_outside_a_tokio_runtime() {
    assert!(tokio::runtime::Handle::try_current().is_err());
    dev_mode();
    let backend = block_on(SqliteBackend::new(&memory_uri("no-runtime"))).expect("opens");
    block_on(backend.ping()).expect("serves");
    let execution_id = new_execution_id();
    block_on(backend.create_execution(create_args(execution_id.clone(), "default", now_ms())))
        .expect("creates");
    assert_eq!(
        block_on(backend.read_execution_state(&execution_id)).unwrap(),
        Some(ff_core::state::PublicState::Waiting)
    );
}

/// A file in rollback-journal mode (SQLite's default), set up by `setup`.
fn journal_mode_file(path: &str, setup: &str) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(setup).unwrap();
}

/// The journal mode a plain connection finds in `path`.
fn journal_mode(path: &str) -> String {
    rusqlite::Connection::open(path)
        .unwrap()
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .unwrap()
}

/// Files that are not this backend's are refused with a typed `OpenError` naming what was
/// found, before the switch to WAL and before any migration: their bytes and journal mode stay
/// as they were, and no WAL appears.
#[tokio::test]
#[parallel(process)]
async fn files_that_are_not_ours_are_refused_and_left_untouched() {
    let dir = ScratchDir::new("foreign-files");
    let garbage = dir.file("garbage.sqlite");
    std::fs::write(&garbage, vec![b'x'; 4096]).unwrap();
    let other_app = dir.file("other-app.sqlite");
    journal_mode_file(
        &other_app,
        "CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL); \
         INSERT INTO invoices VALUES (1, 9.5)",
    );
    let newer = dir.file("newer.sqlite");
    journal_mode_file(
        &newer,
        "CREATE TABLE ff_exec_core (execution_id BLOB); PRAGMA user_version = 99",
    );
    let upstream = dir.file("upstream.sqlite");
    journal_mode_file(
        &upstream,
        "CREATE TABLE _sqlx_migrations (version INTEGER PRIMARY KEY, success BOOLEAN); \
         CREATE TABLE ff_exec_core (execution_id BLOB); INSERT INTO _sqlx_migrations VALUES (1, 1)",
    );
    dev_mode();
    for path in [&garbage, &other_app, &newer, &upstream] {
        let before = std::fs::read(path).unwrap();
        let mode_before = (path != &garbage).then(|| journal_mode(path));
        let error = SqliteBackend::new(path)
            .await
            .expect_err("a file that is not ours is refused");
        eprintln!("{path}: {error}");
        match (path, &error) {
            (p, OpenError::NotADatabase { detail, .. }) if p == &garbage => {
                assert!(detail.contains("not a database"), "{detail}")
            }
            (
                p,
                OpenError::Foreign {
                    tables,
                    user_version: 0,
                    ..
                },
            ) if p == &other_app => {
                assert_eq!(tables, &["invoices"])
            }
            (p, OpenError::SchemaTooNew { found: 99, .. }) if p == &newer => {}
            (p, OpenError::UpstreamDatabase { .. }) if p == &upstream => {}
            (p, other) => panic!("{p}: unexpected {other:?}"),
        }
        assert!(error.to_string().contains("untouched"), "{error}");
        assert_eq!(
            std::fs::read(path).unwrap(),
            before,
            "{path}: bytes unchanged"
        );
        assert!(
            !std::path::Path::new(&format!("{path}-wal")).exists(),
            "{path}: no WAL"
        );
        if let Some(mode) = mode_before {
            assert_eq!(mode, "delete");
            assert_eq!(journal_mode(path), mode, "{path}: journal mode unchanged");
        }
    }
    // An empty file is a new database: set up.
    let empty = dir.file("empty.sqlite");
    std::fs::write(&empty, b"").unwrap();
    let backend = SqliteBackend::new(&empty)
        .await
        .expect("an empty file is set up");
    backend.ping().await.unwrap();
}

/// A relative path names the file it named when the backend was opened: SQLite resolves it
/// to an absolute path at open, and the WAL the host syncs and the registry key are SQLite's,
/// so a later `chdir` changes neither. (Before, the sync thread opened the relative
/// `<name>-wal` at the first commit, in whatever directory the process was in by then, and
/// answered `SyncFailed` for a commit it had made.) Alone in the process
/// (`#[serial(process)]`): it changes the working directory, which every relative path reads.
#[tokio::test]
#[serial(process)]
async fn a_relative_path_stays_the_same_file_after_a_chdir() {
    dev_mode();
    let scratch = ScratchDir::new("chdir");
    let home = std::path::PathBuf::from(scratch.file("home"));
    let elsewhere = std::path::PathBuf::from(scratch.file("elsewhere"));
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    let previous = std::env::current_dir().unwrap();
    std::env::set_current_dir(&home).unwrap();
    let opened = SqliteBackend::new("relative.sqlite").await;
    std::env::set_current_dir(&elsewhere).unwrap();
    let backend = opened.expect("open a relative path");
    let execution_id = new_execution_id();
    let created = backend
        .create_execution(create_args(execution_id.clone(), "default", now_ms()))
        .await;
    let again = SqliteBackend::new("relative.sqlite").await;
    std::env::set_current_dir(previous).unwrap();
    created.expect("committed and synced: the WAL is the one beside the file");
    assert!(home.join("relative.sqlite-wal").exists());
    let by_absolute_path = SqliteBackend::new(home.join("relative.sqlite").to_str().unwrap())
        .await
        .unwrap();
    assert!(
        by_absolute_path
            .describe_execution(&execution_id)
            .await
            .unwrap()
            .is_some(),
        "the absolute path is the same database"
    );
    // After the chdir the same text names another file, as it would for SQLite.
    let other = again.expect("open the relative path in the other directory");
    assert!(elsewhere.join("relative.sqlite").exists());
    assert!(
        other
            .describe_execution(&execution_id)
            .await
            .unwrap()
            .is_none()
    );
}
