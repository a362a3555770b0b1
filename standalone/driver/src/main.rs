//! The command-line driver of the composed engine (`ffwasm guest compose --command`): runs a
//! small workload and inspection commands on the database the provider opens (`$FF_DB`, default
//! `flowfabric.sqlite` in a preopened directory). Every engine call is one transaction (the
//! atomic adapter's); a failed call is printed and makes the command exit with status 1.

use std::process::ExitCode;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

wit_bindgen::generate!({
    path: ["../../wit", "../wit"],
    world: "flowfabric:standalone/driver",
    generate_all,
});

use flowfabric::backend::lease_holder::{self, CompleteExecutionArgs, RenewLeaseArgs};
use flowfabric::backend::reads;
use flowfabric::backend::scheduling::{
    self, ClaimGrantOutcome, CreateExecutionArgs, IssueGrantAndClaimArgs,
};
use flowfabric::backend::sql;
use flowfabric::backend::types::{CancelSource, EngineError, LeaseFence};
use flowfabric::standalone::transaction;

const USAGE: &str = "usage: driver <command>
  workload [N]          create N executions (default 10), then grant and claim, renew,
                        complete and read each one; prints one line per step and a summary
  claim-loop [N]        create N executions (default 1000), then claim them one by one
                        (issue-grant-and-claim); prints claims per second
  show <execution-id>   one execution as the engine reads it
  stats                 executions by public state, and the schema version";

/// The lane the workload uses.
const LANE: &str = "default";
/// Lease length the workload asks for.
const LEASE_MS: u64 = 30_000;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let count = |default: usize| -> Result<usize, String> {
        args.get(1).map_or(Ok(default), |n| {
            n.parse().map_err(|_| format!("not a count: {n}"))
        })
    };
    let outcome = match args.first().map(String::as_str) {
        Some("workload") => count(10).and_then(workload),
        Some("claim-loop") => count(1000).and_then(claim_loop),
        Some("show") => args
            .get(1)
            .ok_or_else(|| USAGE.to_owned())
            .and_then(|id| show(id)),
        Some("stats") => stats(),
        _ => Err(USAGE.to_owned()),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("{why}");
            ExitCode::FAILURE
        }
    }
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A fresh UUID (version 4 layout) from the clock and a counter: unique within a run and across
/// runs on one machine, which is all the workload needs.
fn fresh_uuid(counter: &mut u64) -> String {
    *counter += 1;
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mixed = (nanos ^ (u128::from(*counter) << 64) ^ u128::from(*counter))
        .wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835);
    let bits = (mixed & !(0xF000u128 << 64) | (0x4000u128 << 64)) & !(0xC000u128 << 48)
        | (0x8000u128 << 48);
    let hex = format!("{bits:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn describe(error: &EngineError) -> String {
    format!("{error:?}")
}

/// Create `count` executions in [`LANE`]; returns their ids.
fn create(count: usize, ids: &mut u64) -> Result<Vec<String>, String> {
    (0..count)
        .map(|index| {
            let execution_id = format!("{{fp:0}}:{}", fresh_uuid(ids));
            scheduling::create_execution(&CreateExecutionArgs {
                execution_id: execution_id.clone(),
                namespace: "standalone".into(),
                lane_id: LANE.into(),
                execution_kind: "demo".into(),
                input_payload: format!("{{\"n\":{index}}}").into_bytes(),
                payload_encoding: Some("json".into()),
                priority: 0,
                creator_identity: "ff-standalone-driver".into(),
                idempotency_key: None,
                tags: Vec::new(),
                policy_json: None,
                required_capabilities: Vec::new(),
                delay_until: None,
                execution_deadline_at: None,
                now: now_ms(),
            })
            .map_err(|e| format!("create-execution {execution_id}: {}", describe(&e)))?;
            Ok(execution_id)
        })
        .collect()
}

/// Grant and claim `execution_id` in one operation.
fn grant_and_claim(
    execution_id: &str,
    ids: &mut u64,
) -> Result<(ClaimGrantOutcome, String), String> {
    let attempt_id = fresh_uuid(ids);
    let outcome = scheduling::issue_grant_and_claim(&IssueGrantAndClaimArgs {
        execution_id: execution_id.into(),
        lane_id: LANE.into(),
        lease_duration_ms: LEASE_MS,
        lease_id: fresh_uuid(ids),
        attempt_id: attempt_id.clone(),
        now: now_ms(),
    })
    .map_err(|e| format!("issue-grant-and-claim {execution_id}: {}", describe(&e)))?;
    Ok((outcome, attempt_id))
}

fn workload(count: usize) -> Result<(), String> {
    let mut ids = 0;
    let created = create(count, &mut ids)?;
    println!("created {}", created.len());
    let mut completed = 0;
    for execution_id in &created {
        let (claimed, attempt_id) = grant_and_claim(execution_id, &mut ids)?;
        println!("claimed {execution_id} epoch {}", claimed.lease_epoch);
        let fence = LeaseFence {
            lease_id: claimed.lease_id.clone(),
            lease_epoch: claimed.lease_epoch,
            attempt_id,
        };
        let expires = lease_holder::renew_lease(&RenewLeaseArgs {
            execution_id: execution_id.clone(),
            attempt_index: claimed.attempt_index,
            fence: Some(fence.clone()),
            lease_ttl_ms: LEASE_MS,
            now: now_ms(),
        })
        .map_err(|e| format!("renew-lease {execution_id}: {}", describe(&e)))?;
        println!("renewed {execution_id} until {expires}");
        lease_holder::complete_execution(&CompleteExecutionArgs {
            execution_id: execution_id.clone(),
            fence: Some(fence),
            attempt_index: claimed.attempt_index,
            result_payload: Some(b"done".to_vec()),
            result_encoding: Some("text".into()),
            source: CancelSource::LeaseHolder,
            now: now_ms(),
        })
        .map_err(|e| format!("complete-execution {execution_id}: {}", describe(&e)))?;
        let view = reads::read_execution(execution_id, now_ms())
            .map_err(|e| format!("read-execution {execution_id}: {}", describe(&e)))?
            .ok_or_else(|| format!("read-execution {execution_id}: not found"))?;
        println!("read {execution_id} {}", view.public_state);
        if view.public_state == "completed" {
            completed += 1;
        }
    }
    println!("workload: {count} created, {completed} completed");
    if completed == count {
        Ok(())
    } else {
        Err(format!("only {completed} of {count} executions completed"))
    }
}

fn claim_loop(count: usize) -> Result<(), String> {
    let mut ids = 0;
    let started = Instant::now();
    let created = create(count, &mut ids)?;
    let creating = started.elapsed();
    let started = Instant::now();
    for execution_id in &created {
        grant_and_claim(execution_id, &mut ids)?;
    }
    let claiming = started.elapsed();
    println!(
        "created {count} in {:.3} s ({:.0}/s); claimed {count} in {:.3} s ({:.0} claims/s)",
        creating.as_secs_f64(),
        count as f64 / creating.as_secs_f64(),
        claiming.as_secs_f64(),
        count as f64 / claiming.as_secs_f64()
    );
    Ok(())
}

fn show(execution_id: &str) -> Result<(), String> {
    match reads::read_execution(execution_id, now_ms())
        .map_err(|e| format!("read-execution {execution_id}: {}", describe(&e)))?
    {
        Some(view) => {
            println!("{view:#?}");
            Ok(())
        }
        None => Err(format!("{execution_id}: no such execution")),
    }
}

/// Executions by public state, read through `sql` in a transaction that is rolled back.
fn stats() -> Result<(), String> {
    transaction::begin();
    let rows = sql::query(
        "SELECT public_state, COUNT(*) FROM ff_exec_core GROUP BY public_state ORDER BY 1",
        &[],
    );
    transaction::rollback();
    let rows = rows.map_err(|e| format!("stats: {e:?}"))?;
    let mut total = 0;
    for row in &rows.rows {
        if let [sql::Value::Text(state), sql::Value::Integer(count)] = &row[..] {
            println!("{state:>12} {count}");
            total += count;
        }
    }
    println!("{:>12} {total}", "total");
    Ok(())
}
