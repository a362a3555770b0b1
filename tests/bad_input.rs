//! Integration tests: bad_input.

mod support;
