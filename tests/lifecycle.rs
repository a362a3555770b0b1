//! Integration tests: lifecycle.

mod support;
