#!/usr/bin/env bash
# The README's test command: installs what the tests of the guest outside our host need
# (scripts/install-standalone-tools.sh; quick when it is all there), then runs every test.
# Arguments are passed to `cargo test` (e.g. `scripts/test.sh -- standalone`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-standalone-tools.sh
cargo test --workspace --locked "$@"
