# Recipes over cargo; `just` is optional (each recipe is one or two plain commands).

# Build the guest component alone (the host's build script also does this).
build-guest:
    rustup target add wasm32-wasip2
    CARGO_TARGET_DIR=target/guest cargo build --locked -p ff-engine-guest --target wasm32-wasip2 --profile guest
    ls -l target/guest/wasm32-wasip2/guest/ff_engine_guest.wasm

# The README's test command (installs the standalone tools first, then cargo test).
test:
    bash scripts/test.sh

# The guest outside our host: build the provider and driver, compose the library and the command.
standalone:
    bash scripts/build-standalone.sh
    cargo run -p ffwasm -- guest compose -o engine.wasm
    cargo run -p ffwasm -- guest compose --command -o ffengine.wasm

# The main job: `ffwasm demo` (the README's first command); flags pass through, e.g.
# `just demo -n 1000 -w 16 --db big.sqlite`.
demo *flags:
    cargo run --release -p ffwasm -- demo {{flags}}

# The benchmark (README, "Performance"): the full table takes about two minutes; flags pass
# through, e.g. `just bench --quick` or `just bench --only "64 tasks"`.
bench *flags:
    cargo run --release -p ff-bench -- {{flags}}

# Formatting and lints, warnings as errors.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets --locked -- -D warnings
    cd standalone && cargo fmt --all -- --check

# Everything CI runs.
ci:
    bash .ci/run
