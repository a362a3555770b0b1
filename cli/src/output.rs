//! Writing results to stdout. A reader that stops early (`ffwasm executions | head`) closes
//! the pipe: that ends the output quietly instead of panicking as `print!` would.

use std::io::{ErrorKind, Write};

/// Write `text` to stdout; a closed pipe is not an error.
pub fn print(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(error) if error.kind() == ErrorKind::BrokenPipe => Ok(()),
        result => Ok(result?),
    }
}

/// Write `text` and a line break to stdout; a closed pipe is not an error.
pub fn println(text: &str) -> anyhow::Result<()> {
    print(&format!("{text}\n"))
}
