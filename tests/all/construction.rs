//! Constructing backends: the dev-mode guard, URI forms, sharing one database per URI, file
//! settings, and what the backend says about itself.

use crate::support::*;
use ff_backend_sqlite_wasm::{OpenError, SqliteBackend};
use ff_core::engine_backend::EngineBackend;
use ff_core::engine_error::{BackendError, EngineError};
use ff_core::types::LaneId;
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
        assert_eq!(temp_store, 2, "savepoint journals stay in memory");
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
    let capabilities = engine.capabilities();
    assert_eq!(capabilities.identity.family, "sqlite-wasm");
    let supports = capabilities.supports;
    for (flag, name) in [
        (supports.cancel_execution, "cancel_execution"),
        (supports.revoke_lease, "revoke_lease"),
        (supports.read_execution_state, "read_execution_state"),
        (supports.read_execution_info, "read_execution_info"),
        (supports.get_execution_result, "get_execution_result"),
        (supports.issue_reclaim_grant, "issue_reclaim_grant"),
        (supports.list_expired_leases, "list_expired_leases"),
        (supports.prepare, "prepare"),
        (supports.cancel_flow_header, "cancel_flow_header"),
        (supports.ack_cancel_member, "ack_cancel_member"),
    ] {
        assert!(flag, "{name} works and says so");
    }
    for (flag, name) in [
        (supports.change_priority, "change_priority"),
        (supports.replay_execution, "replay_execution"),
        (supports.claim_for_worker, "claim_for_worker"),
        (supports.subscribe_lease_history, "subscribe_lease_history"),
        (supports.subscribe_completion, "subscribe_completion"),
        (supports.budget_admin, "budget_admin"),
        (supports.stream_durable_summary, "stream_durable_summary"),
    ] {
        assert!(!flag, "{name} is not built and must not claim support");
    }
    let eid = new_execution_id();
    assert!(matches!(
        engine
            .change_priority(ff_core::contracts::ChangePriorityArgs {
                execution_id: eid.clone(),
                new_priority: 1,
                lane_id: LaneId::new("default"),
                now: ff_core::types::TimestampMs::now(),
            })
            .await,
        Err(EngineError::Unavailable {
            op: "change_priority"
        })
    ));
    let flow = ff_core::types::FlowId::new();
    assert!(matches!(
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
        Err(EngineError::Unavailable {
            op: "project_flow_summary"
        })
    ));
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
    open().await;
    assert_eq!(
        std::fs::read(&entry).unwrap(),
        good,
        "a valid entry is reused as is"
    );

    // A flipped byte in the machine code, a truncated file, and another component's entry under
    // this name: each is refused by its digest or key, compiled again and rewritten.
    let mut flipped = good.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x40;
    let mut foreign = good.clone();
    foreign[20] ^= 0x01;
    for damaged in [flipped, good[..good.len() / 3].to_vec(), foreign] {
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
