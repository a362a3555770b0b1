//! How a failure reaches the user: one short line on stderr (the error and its causes, no
//! backtrace) and a non-zero exit status. Invalid arguments are clap's: its usage message and
//! exit status 2.

use std::process::ExitCode;

/// Print `error` with its causes on one line and return the failure exit status (1).
pub fn report(error: &anyhow::Error) -> ExitCode {
    eprintln!("error: {}", one_line(error));
    ExitCode::FAILURE
}

/// The error and its causes joined by `: `, skipping a cause whose text the message already
/// holds (many errors repeat their source in their own message), on one line.
fn one_line(error: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if message.contains(&text) {
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&text);
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_causes_and_line_breaks_are_dropped() {
        let error = anyhow::anyhow!("disk says no")
            .context("cannot open x.sqlite: disk says no")
            .context("running the demo");
        assert_eq!(
            one_line(&error),
            "running the demo: cannot open x.sqlite: disk says no"
        );
        let error = anyhow::anyhow!("first line\n  second line");
        assert_eq!(one_line(&error), "first line second line");
    }
}
