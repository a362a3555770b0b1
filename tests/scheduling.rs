//! Integration tests: scheduling.

mod support;
