//! The guest's stderr: captured in memory, drained after every operation, at most
//! [`StderrCapture::capacity`] bytes per operation. A write past the bound fails, which a Rust
//! guest's `eprintln!` turns into a trap (so a guest cannot fill the host's memory or logs).
//!
//! A guest instance lives across operations (see `guest`), so the capture is per operation, not
//! per instance: [`StderrCapture::take`] empties it and restores the full allowance.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// A shared, bounded buffer the guest's stderr writes into.
#[derive(Debug, Clone)]
pub(crate) struct StderrCapture {
    buffer: Arc<Mutex<Vec<u8>>>,
    capacity: usize,
}

impl StderrCapture {
    /// A capture accepting `capacity` bytes per operation.
    pub fn new(capacity: usize) -> Self {
        Self {
            buffer: Arc::default(),
            capacity,
        }
    }

    /// What the guest wrote since the last `take`, as text; empties the buffer.
    pub fn take(&self) -> String {
        let bytes = std::mem::take(&mut *self.lock());
        String::from_utf8_lossy(&bytes).into_owned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
        self.buffer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Append `bytes` if they fit in what is left of this operation's allowance.
    fn append(&self, bytes: &[u8]) -> Result<(), usize> {
        let mut buffer = self.lock();
        let room = self.capacity.saturating_sub(buffer.len());
        if bytes.len() > room {
            return Err(room);
        }
        buffer.extend_from_slice(bytes);
        Ok(())
    }

    fn room(&self) -> usize {
        self.capacity.saturating_sub(self.lock().len())
    }
}

impl IsTerminal for StderrCapture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for StderrCapture {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[async_trait::async_trait]
impl OutputStream for StderrCapture {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.append(&bytes).map_err(|room| {
            StreamError::Trap(wasmtime::format_err!(
                "the guest wrote more than {} bytes to stderr in one operation ({room} left, {} written)",
                self.capacity,
                bytes.len()
            ))
        })
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        match self.room() {
            0 => Err(StreamError::Closed),
            room => Ok(room),
        }
    }
}

#[async_trait::async_trait]
impl Pollable for StderrCapture {
    async fn ready(&mut self) {}
}

impl AsyncWrite for StderrCapture {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(
            self.append(bytes).map(|()| bytes.len()).map_err(|_| {
                io::Error::new(io::ErrorKind::StorageFull, "stderr allowance used up")
            }),
        )
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_operation_gets_the_full_allowance_after_take() {
        let mut capture = StderrCapture::new(8);
        capture.write(Bytes::from_static(b"12345")).unwrap();
        assert!(capture.write(Bytes::from_static(b"6789")).is_err());
        assert_eq!(capture.check_write().unwrap(), 3);
        assert_eq!(capture.take(), "12345");
        capture.write(Bytes::from_static(b"12345678")).unwrap();
        assert!(matches!(capture.check_write(), Err(StreamError::Closed)));
        assert_eq!(capture.take(), "12345678");
        assert_eq!(capture.take(), "");
    }
}
