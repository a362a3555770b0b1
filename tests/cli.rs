//! Integration tests: cli.

mod support;
