//! Misbehaviours of the hardening issue (issue 14), kept apart from the original ones: a guest
//! that waits in WASI instead of spinning, a writing statement that runs past the deadline
//! (after which SQLite has ended the host's transaction), and a success whose values the host
//! cannot parse. Selected by the claim's `worker-id` ([`misbehave`]); the table in the crate
//! docs lists them.

use crate::bindings::exports::flowfabric::backend::scheduling::ClaimExecutionArgs;
use crate::bindings::flowfabric::backend::sql;
use crate::bindings::flowfabric::backend::types::{
    AttemptType, ClaimedExecution, EngineError, StorageError,
};
use crate::{damage_rows, invalid_input, storage};

/// The two WASI interfaces a guest waits with, as WASI 0.2.0 defines them (the standard library
/// imports the same ones; the component merges them).
mod wasi_waits {
    wit_bindgen::generate!({
        inline: r#"
            package ff:hostile-waits;

            world waits {
                import wasi:clocks/monotonic-clock@0.2.0;
                import wasi:io/poll@0.2.0;
            }

            package wasi:io@0.2.0 {
                interface poll {
                    resource pollable {
                        ready: func() -> bool;
                        block: func();
                    }
                    poll: func(in: list<borrow<pollable>>) -> list<u32>;
                }
            }

            package wasi:clocks@0.2.0 {
                interface monotonic-clock {
                    use wasi:io/poll@0.2.0.{pollable};
                    type instant = u64;
                    type duration = u64;
                    now: func() -> instant;
                    resolution: func() -> duration;
                    subscribe-instant: func(when: instant) -> pollable;
                    subscribe-duration: func(when: duration) -> pollable;
                }
            }
        "#,
        world: "ff:hostile-waits/waits",
        generate_all,
    });
}

use wasi_waits::wasi::clocks::monotonic_clock;
use wasi_waits::wasi::io::poll;

/// How long the waiting misbehaviours wait when the claim names no number of milliseconds.
const DEFAULT_WAIT_MS: u64 = 10_000;

/// `NULL` parameters `null-params` sends when the claim names no number.
const DEFAULT_NULL_PARAMS: usize = 1_000_000;

/// `NULL` bytes `null-params-packed` sends when the claim names no number.
const DEFAULT_NULL_PARAMS_PACKED: usize = 40 << 20;

/// Pollables `leak-pollables` creates and never drops when the claim names no number.
const DEFAULT_LEAKED_POLLABLES: usize = 1_000_000;

/// Rows the slow writing statement would insert when the claim names no number.
const DEFAULT_SLOW_WRITE_ROWS: i64 = 50_000_000;

/// The lease event `slow-write` inserts after its slow statement was stopped: if it is ever
/// found in the database, a statement ran outside the host's transaction and was kept.
pub const WRITTEN_AFTER_INTERRUPT: &str = "hostile-after-interrupt";

/// The misbehaviour named `worker`, if it is one of this module's: `None` for any other name.
pub fn misbehave(
    worker: &str,
    args: &ClaimExecutionArgs,
) -> Option<Result<ClaimedExecution, EngineError>> {
    let parameter = args.attempt_policy_json.as_deref().unwrap_or_default();
    let wait_ms = parameter.parse().unwrap_or(DEFAULT_WAIT_MS);
    Some(match worker {
        "sleep" => {
            damage_rows();
            std::thread::sleep(std::time::Duration::from_millis(wait_ms));
            Err(invalid_input(format!("hostile guest: slept {wait_ms} ms")))
        }
        "block-on-clock" => {
            damage_rows();
            monotonic_clock::subscribe_duration(wait_ms * 1_000_000).block();
            Err(invalid_input(format!(
                "hostile guest: blocked {wait_ms} ms on a clock pollable"
            )))
        }
        "poll" => {
            damage_rows();
            let first = monotonic_clock::subscribe_duration(wait_ms * 1_000_000);
            let second = monotonic_clock::subscribe_duration(wait_ms * 2_000_000);
            let ready = poll::poll(&[&first, &second]);
            Err(invalid_input(format!(
                "hostile guest: poll returned {ready:?}"
            )))
        }
        "null-flood" | "null-flood-packed" => Err(null_flood(worker.ends_with("-packed"))),
        "null-params" => Err(null_params(
            parameter.parse().unwrap_or(DEFAULT_NULL_PARAMS),
        )),
        "null-params-packed" => Err(null_params_packed(
            parameter.parse().unwrap_or(DEFAULT_NULL_PARAMS_PACKED),
        )),
        "temp-flood" => Err(temp_flood()),
        "long-statements" => Err(long_statements()),
        "leak-pollables" => {
            // Created and never dropped: each stays in the host's resource table, across the
            // operations of a reused instance too.
            let count: usize = parameter.parse().unwrap_or(DEFAULT_LEAKED_POLLABLES);
            for _ in 0..count {
                std::mem::forget(monotonic_clock::subscribe_duration(1));
            }
            Err(invalid_input(format!(
                "hostile guest: leaked {count} pollables"
            )))
        }
        "slow-write" => Err(slow_write(
            parameter.parse().unwrap_or(DEFAULT_SLOW_WRITE_ROWS),
        )),
        "malformed-result" => {
            damage_rows();
            Ok(malformed_claim(args))
        }
        _ => return None,
    })
}

/// Damage rows, run one `INSERT ... SELECT` of `rows` rows (stopped at the deadline, which
/// ends SQLite's transaction under the operation), then insert [`WRITTEN_AFTER_INTERRUPT`] and
/// report how each step went.
fn slow_write(rows: i64) -> EngineError {
    damage_rows();
    let slow = sql::execute(
        "INSERT INTO ff_lease_event (execution_id, event_type, occurred_at_ms, partition_key) \
         SELECT 'hostile-slow', 'acquired', x, 0 FROM \
         (WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n LIMIT ?1) \
          SELECT x FROM n)",
        &[sql::Value::Integer(rows)],
    );
    let after = sql::execute(
        "INSERT INTO ff_lease_event (execution_id, event_type, occurred_at_ms, partition_key) \
         VALUES (?1, 'acquired', 0, 0)",
        &[sql::Value::Text(WRITTEN_AFTER_INTERRUPT.into())],
    );
    match (slow, after) {
        (Err(slow), Err(after)) => EngineError::Storage(StorageError::Denied(format!(
            "slow write: {:?}; write after it: {:?}",
            storage(slow),
            storage(after)
        ))),
        (Err(slow), Ok(_)) => EngineError::Storage(StorageError::Denied(format!(
            "slow write: {:?}; write after it: accepted",
            storage(slow)
        ))),
        (Ok(_), _) => invalid_input(format!("hostile guest: inserted {rows} rows")),
    }
}

/// A claim whose ids are not ids: the host must refuse it before anything it wrote is kept.
fn malformed_claim(args: &ClaimExecutionArgs) -> ClaimedExecution {
    ClaimedExecution {
        execution_id: "not an execution id".into(),
        lease_id: "not a lease id".into(),
        lease_epoch: 1,
        attempt_index: args.expected_attempt_index,
        attempt_id: "not an attempt id".into(),
        attempt_type: AttemptType::Initial,
        lease_expires_at: args.now,
    }
}

/// Query 10 000 rows of 2 000 `NULL`s each (through `query-packed` when `packed`): 20 million
/// values, each one byte or none of the data but a slot in the host's copy; the refusal comes
/// back as `storage`, what got through is reported.
fn null_flood(packed: bool) -> EngineError {
    damage_rows();
    let columns = vec!["NULL"; 2_000].join(", ");
    let statement = format!(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 10000) \
         SELECT {columns} FROM c"
    );
    let returned = if packed {
        sql::query_packed(&statement, &[]).map(|bytes| format!("{} packed bytes", bytes.len()))
    } else {
        sql::query(&statement, &[]).map(|rows| format!("{} rows", rows.rows.len()))
    };
    match returned {
        Err(error) => storage(error),
        Ok(what) => invalid_input(format!("hostile guest: the host returned {what}")),
    }
}

/// Send `count` typed `NULL` parameters with a one-parameter statement: the host lifts the
/// whole list (bounded by the guest's memory) before SQLite refuses the extra ones.
fn null_params(count: usize) -> EngineError {
    damage_rows();
    let params = vec![sql::Value::Null; count];
    match sql::query("SELECT ?1", &params) {
        Err(error) => storage(error),
        Ok(_) => invalid_input(format!("hostile guest: {count} parameters were bound")),
    }
}

/// Send `count` packed `NULL` parameters (one byte each) with a one-parameter statement.
fn null_params_packed(count: usize) -> EngineError {
    damage_rows();
    let params = vec![0_u8; count];
    match sql::query_packed("SELECT ?1", &params) {
        Err(error) => storage(error),
        Ok(_) => invalid_input(format!(
            "hostile guest: {count} packed parameters were bound"
        )),
    }
}

/// Make SQLite build a temporary index of 4 KB keys without end (`DISTINCT` over an endless
/// CTE): SQLite's temporary storage grows until the deadline stops the statement.
fn temp_flood() -> EngineError {
    damage_rows();
    let statement = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) \
                     SELECT COUNT(*) FROM (SELECT DISTINCT x, zeroblob(4000) FROM c)";
    match sql::query(statement, &[]) {
        Err(error) => storage(error),
        Ok(_) => invalid_input("hostile guest: an endless query ended".into()),
    }
}

/// A statement of `length` bytes, `SELECT <n> /* xxx... */`, distinct per `n` (SQLite keeps a
/// prepared statement's text with it; the comment makes it long and cheap to compile).
fn long_statement(n: usize, length: usize) -> String {
    let head = format!("SELECT {n} /* ");
    let padding = length.saturating_sub(head.len() + 3);
    format!("{head}{} */", "x".repeat(padding))
}

/// Fill the host's statement cache with 128 distinct statements just under the host's length
/// limit (each stays prepared between operations), then send one of 1 MiB; the refusal of the
/// long one comes back as `storage`, its acceptance is reported.
fn long_statements() -> EngineError {
    damage_rows();
    for n in 0..128 {
        if let Err(error) = sql::query(&long_statement(n, 99_000), &[]) {
            return invalid_input(format!(
                "hostile guest: a 99 000-byte statement was refused: {error:?}"
            ));
        }
    }
    match sql::query(&long_statement(128, 1 << 20), &[]) {
        Err(error) => storage(error),
        Ok(_) => invalid_input("hostile guest: a 1 MiB statement ran".into()),
    }
}
