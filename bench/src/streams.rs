//! Stream and subscription rows: `append_frame` throughput against the native baseline, the
//! time from a commit to a waiting reader seeing it (a parked `tail_stream`, a completion
//! subscription, a signal-delivery subscription), and what 1000 idle subscriptions cost (memory, CPU while idle, and the time
//! until all of them saw one event).

use std::sync::Arc;
use std::time::{Duration, Instant};

use ff_backend_sqlite_wasm::SqliteBackend;
use ff_core::backend::{Frame, FrameKind, Handle, ScannerFilter, TailVisibility};
use ff_core::contracts::StreamCursor;
use ff_core::engine_backend::EngineBackend;
use ff_core::stream_subscribe;
use ff_core::types::{AttemptIndex, ExecutionId};
use ff_engine_guest::bindings::{lease_holder, streams};
use tokio_stream::StreamExt;

use crate::native::in_transaction;
use crate::stats::{Table, median, show_duration, show_rate};
use crate::workload::{
    LANE, LEASE_TTL_MS, claim_args, claimed, complete_args, create_args, execution_ids, grant_args,
    guest_claim, now_ms, seed,
};

/// Idle subscriptions in the cost row.
const IDLE_SUBSCRIBERS: usize = 1_000;
/// How long the idle subscriptions are watched for CPU use.
const IDLE_WINDOW: Duration = Duration::from_secs(5);
/// Commit-to-reader samples per latency row.
const LATENCY_SAMPLES: usize = 200;

/// A leased execution on the backend, and its handle.
async fn leased(backend: &SqliteBackend) -> anyhow::Result<(ExecutionId, Handle)> {
    let id = execution_ids(1).remove(0);
    backend.create_execution(create_args(&id)).await?;
    backend.issue_claim_grant(grant_args(&id)).await?;
    let claimed = claimed(backend.claim_execution(claim_args(&id)).await?);
    Ok((id, claimed.handle))
}

/// The rows.
pub async fn rows(
    table: &mut Table,
    backend: Arc<SqliteBackend>,
    native: rusqlite::Connection,
    appends: usize,
) -> anyhow::Result<()> {
    // Append throughput.
    let (_, handle) = leased(&backend).await?;
    let started = Instant::now();
    for n in 0..appends {
        let frame = Frame::new(format!("line {n}").into_bytes(), FrameKind::Stdout);
        backend.append_frame(&handle, frame).await?;
    }
    let ours = appends as f64 / started.elapsed().as_secs_f64();
    let id = execution_ids(1).remove(0);
    seed(&native, std::slice::from_ref(&id), true)?;
    let claim = guest_claim(&id);
    let lease_claimed = in_transaction(&native, |db| {
        ff_engine_guest::scheduling::claim_execution(db, &claim)
    })?;
    let lease = lease_holder::HandleLease {
        execution_id: id.to_string(),
        attempt_index: lease_claimed.attempt_index,
        attempt_id: lease_claimed.attempt_id.clone(),
        lease_id: lease_claimed.lease_id.clone(),
        lease_epoch: lease_claimed.lease_epoch,
        lease_ttl_ms: LEASE_TTL_MS,
        lane_id: LANE.into(),
        worker_instance_id: claim.worker_instance_id.clone(),
    };
    let started = Instant::now();
    for n in 0..appends {
        let args = streams::AppendFrameArgs {
            lease: lease.clone(),
            payload: format!("line {n}").into_bytes(),
            frame_type: "stdout".into(),
            correlation_id: None,
            mode: streams::FrameMode::Durable,
            best_effort: None,
            now: now_ms(),
        };
        in_transaction(&native, |db| {
            ff_engine_guest::streams::append_frame(db, &args)
        })?;
    }
    let native_rate = appends as f64 / started.elapsed().as_secs_f64();
    table.row(
        "append_frame, memory, sequential",
        show_rate(ours),
        show_rate(native_rate),
        format!("{:.2}× native throughput", ours / native_rate),
        "—",
    );

    // Commit → parked tail.
    let (id, handle) = leased(&backend).await?;
    let mut samples = Vec::with_capacity(LATENCY_SAMPLES);
    let mut after = "0-0".to_owned();
    for n in 0..LATENCY_SAMPLES {
        let tail_backend = Arc::clone(&backend);
        let tail_id = id.clone();
        let cursor = StreamCursor::At(after.clone());
        let tail = tokio::spawn(async move {
            let frames = tail_backend
                .tail_stream(
                    &tail_id,
                    AttemptIndex::new(0),
                    cursor,
                    10_000,
                    10,
                    TailVisibility::All,
                )
                .await;
            (frames, Instant::now())
        });
        tokio::time::sleep(Duration::from_millis(2)).await;
        let frame = Frame::new(format!("tick {n}").into_bytes(), FrameKind::Stdout);
        let outcome = backend.append_frame(&handle, frame).await?;
        let committed = Instant::now();
        let (frames, seen) = tail.await?;
        anyhow::ensure!(!frames?.frames.is_empty(), "the tail returned no frame");
        samples.push(seen.saturating_duration_since(committed).as_secs_f64());
        after = outcome.stream_id;
    }
    table.row(
        "tail_stream: append answered → parked tail returns (median)",
        show_duration(Duration::from_secs_f64(median(samples))),
        "—",
        "—",
        "—",
    );

    // Commit → completion subscriber.
    let mut events = backend
        .subscribe_completion(
            stream_subscribe::StreamCursor::empty(),
            &ScannerFilter::default(),
        )
        .await?;
    let mut samples = Vec::with_capacity(LATENCY_SAMPLES);
    for _ in 0..LATENCY_SAMPLES {
        let id = execution_ids(1).remove(0);
        backend.create_execution(create_args(&id)).await?;
        backend.issue_claim_grant(grant_args(&id)).await?;
        let lease = claimed(backend.claim_execution(claim_args(&id)).await?);
        backend
            .complete_execution(complete_args(&id, &lease))
            .await?;
        let committed = Instant::now();
        let event = events.next().await.expect("open")?;
        samples.push(committed.elapsed().as_secs_f64());
        anyhow::ensure!(event.execution_id == id, "events out of order");
    }
    drop(events);
    table.row(
        "subscribe_completion: completion answered → subscriber sees it (median)",
        show_duration(Duration::from_secs_f64(median(samples))),
        "—",
        "—",
        "—",
    );

    // Signal delivered → signal-delivery subscriber.
    crate::suspension::seed_backend(backend.as_ref()).await?;
    let mut deliveries = backend
        .subscribe_signal_delivery(
            stream_subscribe::StreamCursor::empty(),
            &ScannerFilter::default(),
        )
        .await?;
    let mut samples = Vec::with_capacity(LATENCY_SAMPLES);
    for _ in 0..LATENCY_SAMPLES {
        let (id, handle) = leased(&backend).await?;
        let suspended = backend
            .suspend(&handle, crate::suspension::suspend_args())
            .await?;
        let details = suspended.details().clone();
        backend
            .deliver_signal(crate::suspension::signal_args(
                &id,
                details.waitpoint_id,
                details.waitpoint_token.as_str(),
            ))
            .await?;
        let committed = Instant::now();
        let event = deliveries.next().await.expect("open")?;
        samples.push(committed.elapsed().as_secs_f64());
        anyhow::ensure!(event.execution_id == id, "deliveries out of order");
    }
    drop(deliveries);
    table.row(
        "subscribe_signal_delivery: signal answered → subscriber sees it (median)",
        show_duration(Duration::from_secs_f64(median(samples))),
        "—",
        "—",
        "—",
    );

    // 1000 idle subscribers.
    let rss_before = rss_kib()?;
    let mut idle = Vec::with_capacity(IDLE_SUBSCRIBERS);
    for _ in 0..IDLE_SUBSCRIBERS {
        idle.push(
            backend
                .subscribe_completion(
                    stream_subscribe::StreamCursor::empty(),
                    &ScannerFilter::default(),
                )
                .await?,
        );
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_after = rss_kib()?;
    let cpu_before = cpu_seconds()?;
    let idle_started = Instant::now();
    tokio::time::sleep(IDLE_WINDOW).await;
    let cpu = (cpu_seconds()? - cpu_before) / idle_started.elapsed().as_secs_f64();
    table.row(
        format!("{IDLE_SUBSCRIBERS} idle subscribe_completion streams: memory, CPU while idle"),
        format!(
            "{:.1} KiB each, {:.2}% of a core",
            rss_after.saturating_sub(rss_before) as f64 / IDLE_SUBSCRIBERS as f64,
            cpu * 100.0
        ),
        "—",
        "—",
        "≤ 8 KiB each, ≤ 2% of a core",
    );
    let id = execution_ids(1).remove(0);
    backend.create_execution(create_args(&id)).await?;
    backend.issue_claim_grant(grant_args(&id)).await?;
    let lease = claimed(backend.claim_execution(claim_args(&id)).await?);
    backend
        .complete_execution(complete_args(&id, &lease))
        .await?;
    let committed = Instant::now();
    for stream in &mut idle {
        stream.next().await.expect("open")?;
    }
    table.row(
        format!("one completion answered → all {IDLE_SUBSCRIBERS} subscribers saw it"),
        show_duration(committed.elapsed()),
        "—",
        "—",
        "—",
    );
    Ok(())
}

/// This process's resident set (`VmRSS`), in KiB.
fn rss_kib() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmRSS in /proc/self/status"))
}

/// CPU time this process used so far (user + system), in seconds.
fn cpu_seconds() -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // Fields after the command name (which may hold spaces) end with ')'.
    let rest = stat
        .rsplit_once(')')
        .ok_or_else(|| anyhow::anyhow!("malformed /proc/self/stat"))?
        .1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    let ticks: f64 = fields
        .get(11..13)
        .ok_or_else(|| anyhow::anyhow!("short /proc/self/stat"))?
        .iter()
        .map(|field| field.parse::<f64>().unwrap_or(0.0))
        .sum();
    Ok(ticks / 100.0)
}
