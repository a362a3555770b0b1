//! The process's one wasmtime [`Engine`], with epoch interruption on and a thread that
//! advances the epoch: operation timeouts are counted in its ticks.

use std::sync::OnceLock;
use std::time::Duration;

use wasmtime::{Config, Engine};

/// How often the engine's epoch advances: the granularity of operation timeouts.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The process's one wasmtime `Engine`, with epoch interruption on and a thread advancing the
/// epoch every [`EPOCH_TICK`] (it holds only a weak reference to the engine).
pub(crate) fn shared_engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut config = Config::new();
        config.epoch_interruption(true);
        let engine = Engine::new(&config).expect("the engine configuration is valid");
        let weak = engine.weak();
        std::thread::Builder::new()
            .name("ff-wasm-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })
            .expect("spawning the epoch thread");
        engine
    })
}

/// Epoch ticks covering `timeout` (at least one; the deadline counts from the current tick).
pub(super) fn deadline_ticks(timeout: Duration) -> u64 {
    let ticks = timeout.as_nanos().div_ceil(EPOCH_TICK.as_nanos());
    u64::try_from(ticks).unwrap_or(u64::MAX).saturating_add(1)
}
