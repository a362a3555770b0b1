//! Integration tests: races.

mod support;
