//! The demo's flow: a small DAG run through the flow operations after the fleet finished.
//!
//! ```text
//!            ┌─> transform-a ─┐
//! extract ───┼─> transform-b ─┴─> load          (fan-out, then fan-in)
//!            └─> transform-c ───> audit ───> notify
//! ```
//!
//! `transform-c` fails for good, so `audit` can no longer run and is skipped, and `notify` after
//! it (transitively); `load` runs once both of its parents completed. One worker runs whatever
//! the engine lets it claim, until nothing is claimable: the order comes from the edges alone.

use anyhow::{Context, bail};
use ff_core::contracts::{
    AddExecutionToFlowArgs, ApplyDependencyToChildArgs, ClaimExecutionArgs, ClaimExecutionResult,
    CompleteExecutionArgs, CreateExecutionArgs, CreateFlowArgs, EvaluateFlowEligibilityArgs,
    EvaluateFlowEligibilityResult, FailExecutionArgs, IssueClaimGrantArgs, StageDependencyEdgeArgs,
    StageDependencyEdgeResult,
};
use ff_core::engine_backend::EngineBackend;
use ff_core::partition::{Partition, PartitionFamily};
use ff_core::types::{
    AttemptId, AttemptIndex, CancelSource, EdgeId, ExecutionId, FlowId, LaneId, LeaseFence,
    LeaseId, Namespace, TimestampMs, WorkerId, WorkerInstanceId,
};

use super::plan::{GRANT_TTL_MS, LEASE_TTL_MS, NAMESPACE};
use crate::table::Table;

/// The lane the flow's executions run on (no fleet worker serves it).
const LANE: &str = "dag";
/// The worker that runs the flow.
const WORKER: &str = "demo-dag-worker";

/// The DAG's steps, in creation order.
const STEPS: [&str; 7] = [
    "extract",
    "transform-a",
    "transform-b",
    "transform-c",
    "load",
    "audit",
    "notify",
];
/// Its edges, upstream → downstream, as indexes into [`STEPS`].
const EDGES: [(usize, usize); 7] = [(0, 1), (0, 2), (0, 3), (1, 4), (2, 4), (3, 5), (5, 6)];
/// The step whose execution fails for good.
const FAILING: usize = 3;

/// What the flow did: each step's execution and final public state, in [`STEPS`] order.
#[derive(Debug, Clone)]
pub struct DagReport {
    flow: FlowId,
    steps: Vec<(ExecutionId, String)>,
    /// The steps in the order the worker ran them.
    ran: Vec<usize>,
}

/// Build the flow, run it to the end with one worker, and read back every step's state.
pub async fn run(engine: &dyn EngineBackend, run_tag: &str) -> anyhow::Result<DagReport> {
    let flow = FlowId::new();
    let now = TimestampMs::now;
    engine
        .create_flow(CreateFlowArgs {
            flow_id: flow.clone(),
            flow_kind: "demo.dag".into(),
            namespace: Namespace::new(NAMESPACE),
            now: now(),
        })
        .await
        .context("creating the demo's flow")?;
    let mut ids = Vec::new();
    for (index, step) in STEPS.iter().enumerate() {
        // Flows hold `{fp:0}` executions.
        let id = ExecutionId::parse(&format!("{{fp:0}}:{}", uuid::Uuid::new_v4()))
            .context("a flow member id")?;
        engine
            .create_execution(create_args(&id, step, index, run_tag))
            .await
            .with_context(|| format!("creating the flow step {step}"))?;
        engine
            .add_execution_to_flow(AddExecutionToFlowArgs {
                flow_id: flow.clone(),
                execution_id: id.clone(),
                now: now(),
            })
            .await
            .with_context(|| format!("adding {step} to the flow"))?;
        ids.push(id);
    }
    let mut revision = STEPS.len() as u64;
    for (up, down) in EDGES {
        let staged = engine
            .stage_dependency_edge(StageDependencyEdgeArgs {
                flow_id: flow.clone(),
                edge_id: EdgeId::new(),
                upstream_execution_id: ids[up].clone(),
                downstream_execution_id: ids[down].clone(),
                dependency_kind: "success_only".into(),
                data_passing_ref: None,
                expected_graph_revision: revision,
                now: now(),
            })
            .await
            .with_context(|| format!("staging {} → {}", STEPS[up], STEPS[down]))?;
        let StageDependencyEdgeResult::Staged {
            edge_id,
            new_graph_revision,
        } = staged;
        revision = new_graph_revision;
        engine
            .apply_dependency_to_child(ApplyDependencyToChildArgs {
                flow_id: flow.clone(),
                edge_id,
                downstream_execution_id: ids[down].clone(),
                upstream_execution_id: ids[up].clone(),
                graph_revision: revision,
                dependency_kind: "success_only".into(),
                data_passing_ref: None,
                now: now(),
            })
            .await
            .with_context(|| format!("applying {} → {}", STEPS[up], STEPS[down]))?;
    }

    let mut ran = Vec::new();
    loop {
        let mut claimable = None;
        for (index, id) in ids.iter().enumerate() {
            let EvaluateFlowEligibilityResult::Status { status } = engine
                .evaluate_flow_eligibility(EvaluateFlowEligibilityArgs {
                    execution_id: id.clone(),
                })
                .await
                .with_context(|| format!("evaluating {}", STEPS[index]))?;
            if status == "eligible" {
                claimable = Some(index);
                break;
            }
        }
        let Some(index) = claimable else { break };
        run_step(engine, &ids[index], index == FAILING)
            .await
            .with_context(|| format!("running the flow step {}", STEPS[index]))?;
        ran.push(index);
        if ran.len() > STEPS.len() {
            bail!("the flow ran more steps than it has");
        }
    }

    let mut steps = Vec::new();
    for id in ids {
        let state = engine
            .read_execution_state(&id)
            .await
            .with_context(|| format!("reading the state of {id}"))?
            .with_context(|| format!("flow member {id} is missing"))?;
        steps.push((id, state.as_str().to_owned()));
    }
    Ok(DagReport { flow, steps, ran })
}

/// A flow step's execution on [`LANE`].
fn create_args(id: &ExecutionId, step: &str, index: usize, run_tag: &str) -> CreateExecutionArgs {
    CreateExecutionArgs {
        execution_id: id.clone(),
        namespace: Namespace::new(NAMESPACE),
        execution_kind: format!("demo.dag.{step}"),
        lane_id: LaneId::new(LANE),
        input_payload: format!("{{\"step\":{index}}}").into_bytes(),
        payload_encoding: Some("json".into()),
        priority: 0,
        creator_identity: "ffwasm demo".into(),
        idempotency_key: None,
        tags: [("ffwasm.run".to_owned(), run_tag.to_owned())]
            .into_iter()
            .collect(),
        policy: None,
        delay_until: None,
        execution_deadline_at: None,
        partition_id: 0,
        now: TimestampMs::now(),
    }
}

/// Grant, claim, then complete the step (or fail it for good when `fails`).
async fn run_step(engine: &dyn EngineBackend, id: &ExecutionId, fails: bool) -> anyhow::Result<()> {
    let (worker, instance) = (WorkerId::new(WORKER), WorkerInstanceId::new(WORKER));
    engine
        .issue_claim_grant(IssueClaimGrantArgs::new(
            id.clone(),
            LaneId::new(LANE),
            worker.clone(),
            instance.clone(),
            Partition {
                family: PartitionFamily::Flow,
                index: 0,
            },
            Default::default(),
            GRANT_TTL_MS,
            TimestampMs::now(),
        ))
        .await?;
    let ClaimExecutionResult::Claimed(lease) = engine
        .claim_execution(ClaimExecutionArgs::new(
            id.clone(),
            worker,
            instance,
            LaneId::new(LANE),
            LeaseId::new(),
            LEASE_TTL_MS,
            AttemptId::new(),
            AttemptIndex::new(0),
            String::new(),
            None,
            None,
            TimestampMs::now(),
        ))
        .await?
    else {
        bail!("the claim of {id} was not granted");
    };
    let fence = LeaseFence {
        lease_id: lease.lease_id.clone(),
        lease_epoch: lease.lease_epoch,
        attempt_id: lease.attempt_id.clone(),
    };
    if fails {
        engine
            .fail_execution(FailExecutionArgs {
                execution_id: id.clone(),
                fence: Some(fence),
                attempt_index: lease.attempt_index,
                failure_reason: "simulated failure (no retries)".into(),
                failure_category: "demo".into(),
                retry_policy_json: String::new(),
                next_attempt_policy_json: String::new(),
                source: CancelSource::LeaseHolder,
            })
            .await?;
    } else {
        engine
            .complete_execution(CompleteExecutionArgs {
                execution_id: id.clone(),
                fence: Some(fence),
                attempt_index: lease.attempt_index,
                result_payload: None,
                result_encoding: None,
                source: CancelSource::LeaseHolder,
                now: TimestampMs::now(),
            })
            .await?;
    }
    Ok(())
}

impl DagReport {
    /// The flow's section of the summary: each step, what it waited on, and how it ended.
    pub fn render(&self) -> String {
        let mut table = Table::new(&["step", "waits on", "final state", "ran"]);
        for (index, (_, state)) in self.steps.iter().enumerate() {
            let parents: Vec<&str> = EDGES
                .iter()
                .filter(|(_, down)| *down == index)
                .map(|(up, _)| STEPS[*up])
                .collect();
            let ran = self
                .ran
                .iter()
                .position(|step| *step == index)
                .map_or("-".to_owned(), |order| format!("#{}", order + 1));
            table.row(vec![
                STEPS[index].to_owned(),
                if parents.is_empty() {
                    "-".to_owned()
                } else {
                    parents.join(", ")
                },
                state.clone(),
                ran,
            ]);
        }
        format!(
            "Flow {} (fan-out, fan-in; {} fails, its dependants are skipped)\n{}",
            self.flow,
            STEPS[FAILING],
            table.render()
        )
    }

    /// The flow's id, for `ffwasm show`.
    pub fn flow(&self) -> &FlowId {
        &self.flow
    }
}
