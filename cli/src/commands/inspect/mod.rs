//! The inspection commands: `executions`, `show`, `stats`, `budgets`, `workers` and `flows`. They read the database directly
//! over a read-only SQLite connection (the schema is `host/migrations/`), never through the
//! backend, so they work while a demo is writing and never change the file.

pub mod budgets;
pub mod executions;
pub mod flows;
pub mod show;
pub mod stats;
pub mod workers;
