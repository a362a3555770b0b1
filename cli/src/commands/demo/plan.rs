//! What a demo run does: its executions, lanes, partitions, failures and retry policy, all
//! decided up front from the arguments.

use ff_core::contracts::{CreateBudgetArgs, CreateExecutionArgs};
use ff_core::types::{BudgetId, ExecutionId, LaneId, Namespace, TimestampMs};

use super::DemoArgs;

/// The lanes executions are spread across, in order (`--lanes N` uses the first N).
pub const LANE_NAMES: [&str; 8] = [
    "email", "images", "reports", "billing", "search", "exports", "backups", "alerts",
];

/// Executions are spread across this many flow partitions (`{fp:0}` … `{fp:3}`).
const PARTITIONS: u32 = 4;
/// The lease a worker takes on each claim.
pub const LEASE_TTL_MS: u64 = 30_000;

/// The namespace of the demo's executions and workers.
pub const NAMESPACE: &str = "ffwasm-demo";
/// How long a claim grant stays valid.
pub const GRANT_TTL_MS: u64 = 10_000;
/// The first retry's backoff; each further retry doubles it, up to [`MAX_BACKOFF_MS`].
const INITIAL_BACKOFF_MS: u64 = 50;
/// The longest backoff.
const MAX_BACKOFF_MS: u64 = 1_000;

/// One demo run's parameters.
#[derive(Debug, Clone)]
pub struct Plan {
    /// How many executions to create.
    pub executions: u32,
    /// How many worker tasks.
    pub workers: u32,
    /// The lanes in use.
    pub lanes: Vec<LaneId>,
    /// The probability that an attempt fails.
    pub failure_rate: f64,
    /// Retries before an execution fails for good.
    pub max_retries: u32,
    /// The seed of the failure decisions.
    pub seed: u64,
    /// A short id of this run, in worker instance ids and execution tags.
    pub run: String,
    /// The run's budget: every attempt reports the tokens it used against it.
    pub budget: BudgetId,
}

impl Plan {
    /// The plan for `args`; a random seed unless one was given.
    pub fn new(args: &DemoArgs) -> Self {
        let random = uuid::Uuid::new_v4().as_u64_pair();
        Self {
            executions: args.executions,
            workers: args.workers,
            lanes: LANE_NAMES[..args.lanes as usize]
                .iter()
                .map(|name| LaneId::new(*name))
                .collect(),
            failure_rate: args.failure_rate,
            max_retries: args.max_retries,
            seed: args.seed.unwrap_or(random.0),
            run: format!("{:08x}", random.1 as u32),
            budget: BudgetId::new(),
        }
    }

    /// The tokens attempt `attempt` of execution `index` reports using: 100 to 199.
    pub fn tokens(&self, index: u32, attempt: u32) -> u64 {
        100 + u64::from(
            index
                .wrapping_mul(37)
                .wrapping_add(attempt.wrapping_mul(11))
                % 100,
        )
    }

    /// The arguments that create the run's budget: `tokens` with a soft limit of 120 per
    /// execution (some runs cross it) and no hard limit, so usage never stops a run.
    pub fn budget_args(&self) -> CreateBudgetArgs {
        CreateBudgetArgs {
            budget_id: self.budget.clone(),
            scope_type: "demo-run".into(),
            scope_id: self.run.clone(),
            enforcement_mode: "strict".into(),
            on_hard_limit: "fail".into(),
            on_soft_limit: "warn".into(),
            reset_interval_ms: 0,
            dimensions: vec!["tokens".into()],
            hard_limits: vec![0],
            soft_limits: vec![u64::from(self.executions) * 120],
            now: TimestampMs::now(),
        }
    }

    /// The id (a fresh UUID on partition `index % 4`) and lane of execution `index`.
    pub fn execution(&self, index: u32) -> (ExecutionId, LaneId) {
        let id = format!("{{fp:{}}}:{}", index % PARTITIONS, uuid::Uuid::new_v4());
        let id = ExecutionId::parse(&id).expect("a {fp:N}:<uuid> id parses");
        (id, self.lanes[index as usize % self.lanes.len()].clone())
    }

    /// The arguments that create execution `index`.
    pub fn create_args(&self, index: u32, id: ExecutionId, lane: LaneId) -> CreateExecutionArgs {
        CreateExecutionArgs {
            execution_id: id,
            namespace: Namespace::new(NAMESPACE),
            execution_kind: format!("demo.{lane}"),
            lane_id: lane,
            input_payload: format!("{{\"job\":{index}}}").into_bytes(),
            payload_encoding: Some("json".into()),
            priority: 0,
            creator_identity: "ffwasm demo".into(),
            idempotency_key: None,
            tags: [("ffwasm.run".to_owned(), self.run.clone())]
                .into_iter()
                .collect(),
            policy: None,
            delay_until: None,
            execution_deadline_at: None,
            partition_id: 0,
            now: TimestampMs::now(),
        }
    }

    /// The retry policy every failure is reported with: `max_retries`, exponential backoff.
    pub fn retry_policy_json(&self) -> String {
        format!(
            r#"{{"max_retries":{},"backoff":{{"type":"exponential","initial_delay_ms":{INITIAL_BACKOFF_MS},"max_delay_ms":{MAX_BACKOFF_MS},"multiplier":2.0}}}}"#,
            self.max_retries
        )
    }

    /// Whether attempt `attempt` of execution `index` fails: decided by the seed alone, so a
    /// seed repeats a run's failures whatever order the workers run in.
    pub fn attempt_fails(&self, index: u32, attempt: u32) -> bool {
        let draw = split_mix(self.seed ^ (u64::from(index) << 20) ^ u64::from(attempt));
        let uniform = (draw >> 11) as f64 / (1u64 << 53) as f64; // in [0, 1)
        uniform < self.failure_rate
    }
}

/// SplitMix64: one well-mixed 64-bit value from `x`.
fn split_mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(failure_rate: f64) -> Plan {
        Plan {
            executions: 10_000,
            workers: 1,
            lanes: vec![LaneId::new("a"), LaneId::new("b")],
            failure_rate,
            max_retries: 2,
            seed: 42,
            run: "run".into(),
            budget: BudgetId::new(),
        }
    }

    #[test]
    fn every_attempt_reports_between_100_and_199_tokens() {
        let plan = plan(0.0);
        let tokens: Vec<u64> = (0..1_000).map(|i| plan.tokens(i, i % 3)).collect();
        assert!(tokens.iter().all(|t| (100..200).contains(t)));
        assert!(tokens.iter().any(|t| *t != tokens[0]));
        assert_eq!(plan.budget_args().soft_limits, [1_200_000]);
    }

    #[test]
    fn the_failure_rate_is_respected_and_repeatable() {
        let failures = |rate| {
            (0..10_000)
                .filter(|&i| plan(rate).attempt_fails(i, 0))
                .count()
        };
        assert_eq!(failures(0.0), 0);
        assert_eq!(failures(1.0), 10_000);
        let some = failures(0.2);
        assert!((1_800..2_200).contains(&some), "{some}");
        assert_eq!(failures(0.2), some);
    }

    #[test]
    fn executions_cycle_through_lanes_and_partitions() {
        let plan = plan(0.0);
        let (id, lane) = plan.execution(5);
        assert_eq!(id.partition(), 1);
        assert_eq!(lane.as_str(), "b");
        assert!(plan.retry_policy_json().contains(r#""max_retries":2"#));
    }
}
