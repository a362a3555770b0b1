//! Integration tests: recovery.

mod support;
