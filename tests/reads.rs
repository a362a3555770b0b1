//! Integration tests: reads.

mod support;
