//! The custom guest example (`examples/custom-guest`, built by `tests/build.rs`): it fits the
//! world, its different claim policy (the lane scanner takes the oldest execution first,
//! ignoring priority) is observable through `SqliteBackend::builder(..).guest_file(..)`, and the
//! `ffwasm` binary loads it with `--guest`. The rest of the binary is tested in
//! `host/tests/all/custom_guest.rs`, where cargo hands the tests its path.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::SystemTime;

use crate::support::*;
use ff_backend_sqlite_wasm::{SqliteBackend, check_guest_component};
use ff_core::backend::{CapabilitySet, ClaimPolicy};
use ff_core::engine_backend::EngineBackend;
use ff_core::state::PublicState;
use ff_core::types::{ExecutionId, LaneId, WorkerId, WorkerInstanceId};
use serial_test::parallel;

/// The custom guest example's component.
const CUSTOM_GUEST: &str = env!("FF_CUSTOM_GUEST_WASM");

/// Create an old execution at priority 0 and a newer one at priority 10 on lane `default`, let
/// the lane scanner claim once, and return which of the two it leased (`"old"` or `"new"`).
async fn scanner_pick(engine: &dyn EngineBackend) -> &'static str {
    let (old, new) = (new_execution_id(), new_execution_id());
    let now = now_ms();
    engine
        .create_execution(create_args(old.clone(), "default", now - 1_000))
        .await
        .unwrap();
    let mut urgent = create_args(new.clone(), "default", now);
    urgent.priority = 10;
    engine.create_execution(urgent).await.unwrap();

    let policy = ClaimPolicy::new(
        WorkerId::new("w"),
        WorkerInstanceId::new("wi"),
        30_000,
        None,
    );
    engine
        .claim(&LaneId::new("default"), &CapabilitySet::default(), policy)
        .await
        .unwrap()
        .expect("both executions are claimable");
    let active = |id: ExecutionId| async move {
        engine.read_execution_state(&id).await.unwrap() == Some(PublicState::Active)
    };
    match (active(old).await, active(new).await) {
        (true, false) => "old",
        (false, true) => "new",
        other => panic!("exactly one execution is leased, got {other:?}"),
    }
}

#[tokio::test]
#[parallel(process)]
async fn the_custom_guest_claims_the_oldest_execution_where_the_built_in_one_claims_the_most_urgent()
 {
    dev_mode();
    let bytes = std::fs::read(CUSTOM_GUEST).unwrap();
    check_guest_component(&bytes).expect("the example fits the engine-backend world");

    let custom: Arc<dyn EngineBackend> = SqliteBackend::builder(memory_uri("custom-guest"))
        .guest_file(CUSTOM_GUEST)
        .open()
        .await
        .unwrap();
    let builtin: Arc<dyn EngineBackend> = SqliteBackend::new(&memory_uri("builtin-guest"))
        .await
        .unwrap();
    assert_eq!(scanner_pick(custom.as_ref()).await, "old");
    assert_eq!(scanner_pick(builtin.as_ref()).await, "new");
}

/// The `ffwasm` binary cargo built beside this test (`target/<profile>/ffwasm`). Cargo builds it
/// for the host package's own integration tests, so `cargo test --workspace` always has a fresh
/// one; when only this package is tested it may be missing or older than the sources, and the
/// test says how to build it rather than test a stale binary.
pub(crate) fn ffwasm() -> PathBuf {
    let test = std::env::current_exe().unwrap();
    let profile_dir = test.parent().and_then(Path::parent).unwrap();
    let binary = profile_dir.join(format!("ffwasm{}", std::env::consts::EXE_SUFFIX));
    let build = "run `cargo test --workspace`, or `cargo build -p ffwasm` first";
    let built =
        modified(&binary).unwrap_or_else(|| panic!("{} is missing: {build}", binary.display()));
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let sources =
        ["host/src", "host/Cargo.toml", "guest/src", "wit"].map(|path| workspace.join(path));
    let newest = sources
        .iter()
        .filter_map(|path| newest_modification(path))
        .max()
        .unwrap();
    assert!(
        built >= newest,
        "{} is older than its sources: {build}",
        binary.display()
    );
    binary
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path)
        .and_then(|metadata| metadata.modified())
        .ok()
}

/// The latest modification time of `path` or anything under it.
fn newest_modification(path: &Path) -> Option<SystemTime> {
    let own = modified(path);
    let children = std::fs::read_dir(path).into_iter().flatten().flatten();
    children
        .filter_map(|entry| newest_modification(&entry.path()))
        .chain(own)
        .max()
}

#[test]
#[parallel(process)]
fn ffwasm_checks_the_custom_guest_and_runs_the_demo_with_it() {
    let dir = std::env::temp_dir().join(format!("ffwasm-custom-guest-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let run = |args: &[&str]| {
        let output = Command::new(ffwasm())
            .args(args)
            .current_dir(&dir)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "{args:?}: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    };

    let checked = run(&["guest", "check", CUSTOM_GUEST]);
    assert!(checked.starts_with("ok: "), "{checked}");

    let demo = run(&["demo", "-n", "20", "-w", "3", "--guest", CUSTOM_GUEST]);
    assert!(demo.contains("(custom)"), "{demo}");
    let total = demo
        .lines()
        .find(|line| line.starts_with("total "))
        .expect("a total row");
    assert_eq!(total.split_whitespace().nth(1), Some("20"), "{demo}");
    std::fs::remove_dir_all(&dir).unwrap();
}
