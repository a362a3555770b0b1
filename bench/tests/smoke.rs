//! `ffbench` end to end with tiny sizes: every row of the table is produced (the numbers
//! themselves are for people to read, not for tests to assert).

use std::process::Command;

#[test]
fn a_tiny_run_prints_every_row_of_the_table() {
    let dir = std::env::temp_dir().join(format!("ffbench-smoke-{}", std::process::id()));
    let output = Command::new(env!("CARGO_BIN_EXE_ffbench"))
        .args([
            "--claims",
            "60",
            "--scale",
            "100,300",
            "--scale-claims",
            "20",
        ])
        .arg("--dir")
        .arg(&dir)
        .output()
        .expect("ffbench runs");
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    for row in [
        "claims, memory, sequential",
        "claims, file, sequential",
        "claims, file, 8 tasks",
        "claims, file, 64 tasks",
        "lifecycle ops, memory, sequential",
        "lifecycle ops, file, 8 tasks",
        "report_usage, memory, sequential",
        "report_usage, file, 8 tasks",
        "suspension cycle, memory, sequential",
        "subscribe_signal_delivery: signal answered → subscriber sees it",
        "claim latency, memory, 100 executions",
        "claim latency, memory, 300 executions",
        "construction, new process, empty compiled cache",
        "construction, new process, warm compiled cache",
        "peak RSS",
    ] {
        assert!(stdout.contains(row), "missing row {row:?}:\n{stdout}");
    }
    assert!(
        stderr.contains("done in"),
        "progress goes to stderr: {stderr}"
    );
}
