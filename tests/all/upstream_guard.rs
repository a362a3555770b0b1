//! Upstream's `guard.rs` (the dev-mode guard and one database per URI), kept by name with the
//! set-up changed: our backend, our test URIs (`support::memory_uri`), our label
//! (`sqlite-wasm`, `docs/semantics.md` § Construction). The refusal itself needs the
//! environment to itself and is `construction::refuses_without_dev_mode`; upstream's pool
//! tuning (`new_with_tuning`, `pool_for_test().acquire()`) has no counterpart: one connection
//! serves each database here, so its "pool cycle" becomes operations and backends coming and
//! going on the same database.

use crate::support::*;
use ff_backend_sqlite_wasm::{OpenError, SqliteBackend};
use ff_core::engine_backend::EngineBackend;
use ff_core::engine_error::BackendError;
use serial_test::parallel;

/// The refusal as ff-core renders it: upstream's text and documentation link (the refusal is
/// `construction::refuses_without_dev_mode`).
#[test]
fn refuses_without_ff_dev_mode() {
    let error = BackendError::from(OpenError::RequiresDevMode);
    assert!(matches!(error, BackendError::RequiresDevMode));
    let rendered = error.to_string();
    assert!(
        rendered.contains("SqliteBackend requires FF_DEV_MODE=1"),
        "unexpected render: {rendered}"
    );
    assert!(
        rendered.contains("docs/dev-harness.md"),
        "render missing docs URL: {rendered}"
    );
    assert!(
        OpenError::RequiresDevMode
            .to_string()
            .contains("SqliteBackend requires FF_DEV_MODE=1")
    );
}

#[tokio::test]
#[parallel(process)]
async fn accepts_with_ff_dev_mode() {
    dev_mode();
    SqliteBackend::new(":memory:")
        .await
        .expect("must accept under FF_DEV_MODE=1");
}

/// Open a backend on `first` and one on `second`, seed an execution through the first, drop
/// it, and return how many executions the second sees (after checking its label).
async fn executions_seen_by_the_second(first: &str, second: &str) -> i64 {
    dev_mode();
    let a = SqliteBackend::new(first).await.expect("a");
    let b = SqliteBackend::new(second).await.expect("b");
    seed_runnable(&a.connection_for_test());
    drop(a);
    assert_eq!(b.backend_label(), "sqlite-wasm");
    count_rows(&b.connection_for_test(), "ff_exec_core")
}

#[tokio::test]
#[parallel(process)]
async fn two_news_same_path_share_handle() {
    let uri = memory_uri("guard-dedup");
    assert_eq!(
        executions_seen_by_the_second(&uri, &uri).await,
        1,
        "the second backend shares the first one's database"
    );
}

#[tokio::test]
#[parallel(process)]
async fn memory_shared_cache_survives_pool_cycle() {
    dev_mode();
    let uri = memory_uri("guard-cycle");
    let backend = SqliteBackend::new(&uri).await.expect("construct");
    {
        let conn = backend.connection_for_test();
        conn.execute("CREATE TABLE f1 (v INTEGER)", [])
            .expect("create");
        conn.execute("INSERT INTO f1 VALUES (42)", [])
            .expect("insert");
    }
    for _ in 0..8 {
        backend.ping().await.expect("an operation on the database");
    }
    let second = SqliteBackend::new(&uri).await.expect("a second backend");
    second
        .ping()
        .await
        .expect("an operation through the second backend");
    drop(second);
    let v: i64 = backend
        .connection_for_test()
        .query_row("SELECT v FROM f1", [], |row| row.get(0))
        .expect("select");
    assert_eq!(v, 42);
}

#[tokio::test]
#[parallel(process)]
async fn distinct_memory_uris_are_distinct() {
    let (a, b) = (memory_uri("guard-dist-a"), memory_uri("guard-dist-b"));
    assert_eq!(executions_seen_by_the_second(&a, &b).await, 0);
}
