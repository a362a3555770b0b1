//! Integration tests: sandbox.

mod support;
