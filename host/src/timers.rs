//! Host timers: background tasks that run a pass on a fixed period (the budget reset pass
//! today; sweeps and retention hooks can join), owned by a [`crate::SqliteBackend`] and stopped
//! by `shutdown_prepare` or by dropping the backend.
//!
//! A timer's first pass runs one period after it starts; a pass that overruns delays the next
//! tick instead of bunching them. The stop signal is checked between passes, never inside one:
//! each pass is a few short operations, and [`Timers::stop`] aborts whatever has not finished
//! when its grace period ends.

use std::future::Future;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

/// The periodic tasks of one backend.
pub(crate) struct Timers {
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Timers {
    /// No timers yet.
    pub fn new() -> Self {
        Self {
            stop: watch::Sender::new(false),
            tasks: Mutex::new(Vec::new()),
        }
    }

    /// Run `pass` every `period` on the current tokio runtime until the timers stop or `pass`
    /// returns `false` (its backend is gone). A zero period starts nothing. Timers started after
    /// [`Timers::stop`] end at once.
    pub fn start<F, Fut>(&self, period: Duration, mut pass: F)
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = bool> + Send + 'static,
    {
        if period.is_zero() {
            return;
        }
        let mut stop = self.stop.subscribe();
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval_at(Instant::now() + period, period);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                if *stop.borrow_and_update() {
                    break;
                }
                tokio::select! {
                    changed = stop.changed() => {
                        if changed.is_err() {
                            break;
                        }
                    }
                    _ = ticks.tick() => {
                        if !pass().await {
                            break;
                        }
                    }
                }
            }
        });
        self.tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(task);
    }

    /// Signal every timer to stop and wait up to `grace` for them; the ones still running then
    /// are aborted. Returns how many were aborted. A second call finds nothing to wait for.
    pub async fn stop(&self, grace: Duration) -> usize {
        self.stop.send_replace(true);
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(PoisonError::into_inner));
        let deadline = Instant::now() + grace;
        let mut aborted = 0;
        for mut task in tasks {
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                task.abort();
                aborted += 1;
            }
        }
        aborted
    }
}

impl Drop for Timers {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}
