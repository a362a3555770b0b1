//! Integration tests: completion.

mod support;
