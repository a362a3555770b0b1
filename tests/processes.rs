//! Integration tests: processes.

mod support;
