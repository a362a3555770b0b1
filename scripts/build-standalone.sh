#!/usr/bin/env bash
# Build the components that run the guest outside our host (README, "Outside the host"):
# the SQLite provider and the command-line driver, for wasm32-wasip2, into target/standalone/.
# SQLite's C is compiled for wasm with Debian's clang-19 and wasi-libc
# (scripts/install-standalone-tools.sh installs them).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/target/standalone"
if ! command -v clang-19 >/dev/null || [ ! -d /usr/include/wasm32-wasi ]; then
    echo "clang-19 and wasi-libc are missing: run scripts/install-standalone-tools.sh" >&2
    exit 1
fi
# cc passes --target=wasm32-wasip2, for which clang 19 finds no sysroot and falls back to glibc's
# headers; a later --target=wasm32-wasi wins and finds Debian's wasi-libc.
export CC_wasm32_wasip2=clang-19 AR_wasm32_wasip2=llvm-ar-19 CFLAGS_wasm32_wasip2=--target=wasm32-wasi
cd "$root/standalone"
CARGO_TARGET_DIR="$root/target/standalone-build" cargo build --locked --release --target wasm32-wasip2
mkdir -p "$out"
for crate in ff_sqlite_provider ff-standalone-driver; do
    cp "$root/target/standalone-build/wasm32-wasip2/release/$crate.wasm" "$out/${crate//-/_}.wasm"
done
ls -l "$out"
