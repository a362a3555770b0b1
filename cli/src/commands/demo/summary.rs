//! The end of a demo run: every execution's final state read back through the guest, checked
//! against what the workers saw, and the summary table.

use std::time::Duration;

use anyhow::{Context, bail};
use ff_core::contracts::BudgetStatus;
use ff_core::engine_backend::EngineBackend;
use ff_core::types::LaneId;

use super::fleet::Report;
use super::plan::Plan;
use super::worker::Outcome;
use crate::format;
use crate::table::{Table, fields};

/// Engine operations per attempt: grant, claim, renew, report usage, then complete or fail.
const OPERATIONS_PER_ATTEMPT: u64 = 5;

/// One lane's line of the summary.
#[derive(Debug, Clone, Default)]
struct LaneCounts {
    executions: u64,
    attempts: u64,
    /// Executions by the public state the database reports, e.g. `completed`.
    states: Vec<(String, u64)>,
}

impl LaneCounts {
    fn add(&mut self, state: &str, attempts: u32) {
        self.executions += 1;
        self.attempts += u64::from(attempts);
        match self.states.iter_mut().find(|(name, _)| name == state) {
            Some((_, count)) => *count += 1,
            None => self.states.push((state.to_owned(), 1)),
        }
    }

    fn count(&self, state: &str) -> u64 {
        self.states
            .iter()
            .find(|(name, _)| name == state)
            .map_or(0, |(_, count)| *count)
    }
}

/// The run's executions by lane and final state, as the database reports them.
#[derive(Debug, Clone)]
pub struct FinalStates {
    lanes: Vec<(LaneId, LaneCounts)>,
    budget: BudgetStatus,
}

/// Read every execution's state through the engine and check it against the workers' view.
pub async fn read_back(
    engine: &dyn EngineBackend,
    plan: &Plan,
    report: &Report,
) -> anyhow::Result<FinalStates> {
    let mut counts: Vec<(LaneId, LaneCounts)> = plan
        .lanes
        .iter()
        .map(|lane| (lane.clone(), LaneCounts::default()))
        .collect();
    let mut disagreements = Vec::new();
    for record in &report.records {
        let id = &record.job.id;
        let state = engine
            .read_execution_state(id)
            .await
            .with_context(|| format!("reading the state of {id}"))?
            .with_context(|| format!("execution {id} is missing from the database"))?;
        let expected = match record.outcome {
            Some(Outcome::Completed) => "completed",
            Some(Outcome::Failed) => "failed",
            _ => "ended",
        };
        if state.as_str() != expected {
            disagreements.push(format!("{id} is {state}, the worker saw it {expected}"));
        }
        if let Some((_, lane)) = counts.iter_mut().find(|(lane, _)| *lane == record.job.lane) {
            lane.add(state.as_str(), record.attempts);
        }
    }
    if let Some(first) = disagreements.first() {
        bail!(
            "the database disagrees with the workers about {} executions (first: {first})",
            disagreements.len()
        );
    }
    let budget = engine
        .get_budget_status(&plan.budget)
        .await
        .context("reading the run's budget")?;
    let reported: u64 = report
        .records
        .iter()
        .flat_map(|record| {
            (0..record.attempts).map(|attempt| plan.tokens(record.job.index, attempt))
        })
        .sum();
    let used = budget.usage.get("tokens").copied().unwrap_or(0);
    if used != reported {
        bail!("the run's budget holds {used} tokens, the workers reported {reported}");
    }
    Ok(FinalStates {
        lanes: counts,
        budget,
    })
}

impl FinalStates {
    /// The summary: executions by lane and final state, then throughput and claim latency.
    pub fn render(&self, report: &Report) -> String {
        // Completed and failed always, then any state an execution unexpectedly ended in.
        let mut states = vec!["completed".to_owned(), "failed".to_owned()];
        let unexpected: std::collections::BTreeSet<&String> = self
            .lanes
            .iter()
            .flat_map(|(_, lane)| lane.states.iter().map(|(state, _)| state))
            .filter(|state| !states.contains(state))
            .collect();
        states.extend(unexpected.into_iter().cloned());

        let mut header = vec!["lane", "executions"];
        header.extend(states.iter().map(String::as_str));
        header.extend(["attempts", "retries"]);
        let mut table = Table::new(&header).right(&(1..header.len()).collect::<Vec<_>>());
        let mut total = LaneCounts::default();
        for (lane, counts) in &self.lanes {
            table.row(row(lane.as_str(), counts, &states));
            total.executions += counts.executions;
            total.attempts += counts.attempts;
            for (state, count) in &counts.states {
                match total.states.iter_mut().find(|(name, _)| name == state) {
                    Some((_, sum)) => *sum += count,
                    None => total.states.push((state.clone(), *count)),
                }
            }
        }
        if self.lanes.len() > 1 {
            table.row(row("total", &total, &states));
        }

        let mut latencies = report.claim_latencies.clone();
        latencies.sort();
        let operations = total.attempts * OPERATIONS_PER_ATTEMPT;
        let throughput = format!(
            "{} executions/s, {} engine operations/s ({} executions in {})",
            format::rate(total.executions, report.elapsed),
            format::rate(operations, report.elapsed),
            total.executions,
            format::duration(report.elapsed)
        );
        let latency = match (percentile(&latencies, 0.50), percentile(&latencies, 0.99)) {
            (Some(p50), Some(p99)) => format!(
                "p50 {}, p99 {} ({} claims)",
                format::duration(p50),
                format::duration(p99),
                latencies.len()
            ),
            _ => "-".to_owned(),
        };
        let budget = &self.budget;
        let budget_line = format!(
            "{} tokens reported by {} attempts; soft limit {} crossed by {} reports ({})",
            budget.usage.get("tokens").copied().unwrap_or(0),
            total.attempts,
            budget.soft_limits.get("tokens").copied().unwrap_or(0),
            budget.soft_breach_count,
            budget.budget_id,
        );
        format!(
            "Executions by final state (read back through the guest)\n{}\n{}",
            table.render(),
            fields(&[
                ("throughput", throughput),
                ("claim latency", latency),
                ("budget", budget_line)
            ])
        )
    }
}

/// A lane's table row.
fn row(lane: &str, counts: &LaneCounts, states: &[String]) -> Vec<String> {
    let mut cells = vec![lane.to_owned(), counts.executions.to_string()];
    cells.extend(states.iter().map(|state| counts.count(state).to_string()));
    cells.push(counts.attempts.to_string());
    cells.push(
        counts
            .attempts
            .saturating_sub(counts.executions)
            .to_string(),
    );
    cells
}

/// The nearest-rank percentile `p` (0–1) of sorted `values`.
fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let values: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&values, 0.50), Some(Duration::from_millis(50)));
        assert_eq!(percentile(&values, 0.99), Some(Duration::from_millis(99)));
        assert_eq!(
            percentile(&values[..1], 0.99),
            Some(Duration::from_millis(1))
        );
        assert_eq!(percentile(&[], 0.5), None);
    }

    #[test]
    fn lane_counts_tally_states_and_retries() {
        let mut counts = LaneCounts::default();
        counts.add("completed", 1);
        counts.add("completed", 3);
        counts.add("failed", 3);
        assert_eq!(
            row("email", &counts, &["completed".into(), "failed".into()]),
            ["email", "3", "2", "1", "7", "4"]
        );
    }
}
