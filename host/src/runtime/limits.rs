//! What one guest operation may use, and the store limiter that enforces the memory bound.
//!
//! A guest over a limit traps or gets an error value; either way the operation's transaction is
//! rolled back and the next operation runs on a fresh instance. How each limit shows up:
//!
//! | limit | enforced by | the caller sees |
//! |---|---|---|
//! | [`GuestLimits::operation_timeout`] | wasmtime epoch deadline (10 ms ticks) while guest code runs; SQLite's progress handler interrupts a guest statement still running at the deadline | `EngineError::Timeout { op, elapsed }` |
//! | [`GuestLimits::memory_bytes`] | [`MemoryLimiter`] refusing `memory.grow` | `EngineError::ResourceExhausted { pool: "guest_memory", max: <MiB>, .. }` |
//! | [`GuestLimits::query_rows`], [`GuestLimits::query_bytes`] | the `sql` import | the guest gets `error::too-large` |

use std::time::Duration;

use wasmtime::ResourceLimiter;

/// Bounds on one guest operation. `Default` gives safe values for the built-in guest; set
/// tighter ones for guests you do not trust, looser ones for guests that need them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct GuestLimits {
    /// Longest time one operation may run (default 2 s). Checked every 10 ms while guest code
    /// runs, and by SQLite's progress handler inside a guest's SQL statement, which is
    /// interrupted at the deadline.
    pub operation_timeout: Duration,
    /// Largest linear memory one instance may grow to (default 64 MiB). A payload argument
    /// larger than this could never be copied into the guest: the host refuses it before the
    /// call, as `Validation { PayloadTooLarge }`.
    pub memory_bytes: usize,
    /// Most rows one `query` may return (default 10 000).
    pub query_rows: usize,
    /// Most bytes one `query` may return (default 16 MiB): each value counts its length (text
    /// and blob bytes, 8 per number, none for `NULL`) plus 32, the host's slot for it, so the
    /// host's copy of a result stays near this bound whatever the values are.
    pub query_bytes: usize,
}

impl Default for GuestLimits {
    fn default() -> Self {
        Self {
            operation_timeout: Duration::from_secs(2),
            memory_bytes: 64 << 20,
            query_rows: 10_000,
            query_bytes: 16 << 20,
        }
    }
}

impl GuestLimits {
    /// These limits with `operation_timeout` replaced.
    pub fn with_operation_timeout(mut self, timeout: Duration) -> Self {
        self.operation_timeout = timeout;
        self
    }

    /// These limits with `memory_bytes` replaced.
    pub fn with_memory_bytes(mut self, bytes: usize) -> Self {
        self.memory_bytes = bytes;
        self
    }

    /// These limits with `query_rows` replaced.
    pub fn with_query_rows(mut self, rows: usize) -> Self {
        self.query_rows = rows;
        self
    }

    /// These limits with `query_bytes` replaced.
    pub fn with_query_bytes(mut self, bytes: usize) -> Self {
        self.query_bytes = bytes;
        self
    }
}

/// Refuses linear-memory growth beyond a bound and remembers that it did, so that the trap that
/// usually follows (the guest's allocator aborts) can be reported as exhaustion. The bound is
/// set per operation ([`MemoryLimiter::arm`]); the largest memory granted is kept, so that an
/// instance already bigger than the next operation's bound is not used for it.
#[derive(Debug)]
pub(crate) struct MemoryLimiter {
    max_bytes: usize,
    exceeded: bool,
    granted_bytes: usize,
}

/// WASI resources (pollables, streams, ...) one instance may hold at once in the host's resource
/// table. Ordinary guests hold a handful; a guest that creates resources and never drops them
/// (within one operation, or across the operations of a reused instance) gets an error from
/// the call that would pass this, which traps it, and the instance is dropped. Each entry
/// costs the host about a hundred bytes, so this bounds the table to about a megabyte.
pub(crate) const MAX_WASI_RESOURCES: usize = 10_000;

/// Table elements one instance may have (function tables of ordinary guests hold hundreds).
const MAX_TABLE_ELEMENTS: usize = 100_000;

impl MemoryLimiter {
    pub fn new(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            exceeded: false,
            granted_bytes: 0,
        }
    }

    /// Start an operation bounded by `max_bytes`.
    pub fn arm(&mut self, max_bytes: usize) {
        self.max_bytes = max_bytes;
        self.exceeded = false;
    }

    /// The largest linear memory this instance was granted so far.
    pub fn granted_bytes(&self) -> usize {
        self.granted_bytes
    }

    /// Whether the guest asked for more than the bound.
    pub fn exceeded(&self) -> bool {
        self.exceeded
    }

    /// The bound in whole MiB, as `EngineError::ResourceExhausted` reports it.
    pub fn max_mib(&self) -> u32 {
        u32::try_from(self.max_bytes >> 20).unwrap_or(u32::MAX)
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired <= self.max_bytes;
        self.exceeded |= !allowed;
        if allowed {
            self.granted_bytes = self.granted_bytes.max(desired);
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_beyond_the_bound_is_refused_and_remembered() {
        let mut limiter = MemoryLimiter::new(2 << 20);
        assert!(limiter.memory_growing(0, 1 << 20, None).unwrap());
        assert!(!limiter.exceeded());
        assert!(!limiter.memory_growing(1 << 20, 3 << 20, None).unwrap());
        assert!(limiter.exceeded());
        assert_eq!(limiter.max_mib(), 2);
        assert_eq!(limiter.granted_bytes(), 1 << 20);
        limiter.arm(4 << 20);
        assert!(!limiter.exceeded());
        assert!(limiter.memory_growing(1 << 20, 3 << 20, None).unwrap());
        assert_eq!(limiter.granted_bytes(), 3 << 20);
        assert!(
            !limiter
                .table_growing(0, MAX_TABLE_ELEMENTS + 1, None)
                .unwrap()
        );
    }
}
