//! The notes shown under every command's help: the environment variables and exit statuses.

/// The environment and exit-status notes, as a literal (for `concat!` into a longer help text).
macro_rules! environment {
    () => {
        "Environment:
  RUST_LOG     log filter for messages on stderr (default: warn), e.g. RUST_LOG=info
  FF_DEV_MODE  ffwasm sets FF_DEV_MODE=1 for its own process: SQLite backends are dev-only and
               refuse to start without it

Exit status: 0 on success, 1 when the command failed, 2 for invalid arguments."
    };
}
pub(crate) use environment;

/// Shown under every command's help.
pub const ENVIRONMENT: &str = environment!();
