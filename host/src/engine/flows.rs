//! Flows and dependencies: the guest's `flows` interface. Each operation converts its
//! arguments, makes one guest call in one transaction, and converts the result back.

use std::collections::BTreeMap;

use ff_core::backend::{CancelFlowPolicy, CancelFlowWait, CompletionPayload, Handle};
use ff_core::contracts::{
    AddExecutionToFlowArgs, AddExecutionToFlowResult, ApplyDependencyToChildArgs,
    ApplyDependencyToChildResult, CancelFlowArgs, CancelFlowHeader, CancelFlowResult,
    CascadeOutcome, CreateFlowArgs, CreateFlowResult, EdgeDependencyPolicy, EdgeDirection,
    EdgeGroupSnapshot, EdgeGroupState, EdgeSnapshot, EvaluateFlowEligibilityArgs,
    EvaluateFlowEligibilityResult, FlowSnapshot, FlowStatus, FlowSummary, ListFlowsPage,
    OnSatisfied, ResolveDependencyArgs, ResolveDependencyOutcome, SetEdgeGroupPolicyResult,
    StageDependencyEdgeArgs, StageDependencyEdgeResult,
};
use ff_core::engine_backend::SiblingCancelReconcileAction;
use ff_core::engine_error::{ConflictKind, EngineError, ValidationKind};
use ff_core::partition::{Partition, PartitionFamily, PartitionKey};
use ff_core::types::{EdgeId, ExecutionId, FlowId, Namespace, TimestampMs};

use crate::backend::SqliteBackend;
use crate::bindings::args::{handle_lease, validation};
use crate::bindings::flows;
use crate::bindings::results::execution_id;
use crate::error::OperationFailure;
use crate::operation::Tx;

use super::inputs::wall_clock;

/// Parse a flow id the guest returned.
fn flow_id(op: &'static str, text: &str) -> Result<FlowId, EngineError> {
    FlowId::parse(text).map_err(|_| OperationFailure::malformed(op, "flow_id", text).into())
}

/// Parse an edge id the guest returned.
fn edge_id(op: &'static str, text: &str) -> Result<EdgeId, EngineError> {
    EdgeId::parse(text).map_err(|_| OperationFailure::malformed(op, "edge_id", text).into())
}

/// An edge the guest returned, as ff-core's snapshot.
fn edge_snapshot(op: &'static str, edge: flows::EdgeView) -> Result<EdgeSnapshot, EngineError> {
    Ok(EdgeSnapshot::new(
        edge_id(op, &edge.edge_id)?,
        flow_id(op, &edge.flow_id)?,
        execution_id(op, &edge.upstream_execution_id)?,
        execution_id(op, &edge.downstream_execution_id)?,
        edge.dependency_kind,
        edge.satisfaction_condition,
        edge.data_passing_ref,
        edge.edge_state,
        TimestampMs(edge.created_at),
        edge.created_by,
    ))
}

fn on_satisfied_to_guest(on: &OnSatisfied) -> flows::OnSatisfied {
    match on {
        OnSatisfied::LetRun => flows::OnSatisfied::LetRun,
        _ => flows::OnSatisfied::CancelRemaining,
    }
}

fn on_satisfied_from_guest(on: flows::OnSatisfied) -> OnSatisfied {
    match on {
        flows::OnSatisfied::LetRun => OnSatisfied::LetRun,
        flows::OnSatisfied::CancelRemaining => OnSatisfied::CancelRemaining,
    }
}

fn group_policy(policy: flows::EdgeGroupPolicy) -> EdgeDependencyPolicy {
    match policy {
        flows::EdgeGroupPolicy::AllOf => EdgeDependencyPolicy::AllOf,
        flows::EdgeGroupPolicy::AnyOf(on) => EdgeDependencyPolicy::AnyOf {
            on_satisfied: on_satisfied_from_guest(on),
        },
        flows::EdgeGroupPolicy::Quorum(quorum) => EdgeDependencyPolicy::Quorum {
            k: quorum.k,
            on_satisfied: on_satisfied_from_guest(quorum.on_satisfied),
        },
    }
}

fn group_state(state: flows::EdgeGroupState) -> EdgeGroupState {
    match state {
        flows::EdgeGroupState::Pending => EdgeGroupState::Pending,
        flows::EdgeGroupState::Satisfied => EdgeGroupState::Satisfied,
        flows::EdgeGroupState::Impossible => EdgeGroupState::Impossible,
        flows::EdgeGroupState::Cancelled => EdgeGroupState::Cancelled,
    }
}

fn flow_snapshot(op: &'static str, view: flows::FlowView) -> Result<FlowSnapshot, EngineError> {
    let edge_groups = view
        .edge_groups
        .into_iter()
        .map(|group| {
            Ok(EdgeGroupSnapshot::new(
                execution_id(op, &group.downstream_execution_id)?,
                group_policy(group.policy),
                group.total_deps,
                group.satisfied_count,
                group.failed_count,
                group.skipped_count,
                group.running_count,
                group_state(group.group_state),
            ))
        })
        .collect::<Result<_, EngineError>>()?;
    Ok(FlowSnapshot::new(
        flow_id(op, &view.flow_id)?,
        view.flow_kind,
        Namespace::new(view.namespace),
        view.public_flow_state,
        view.graph_revision,
        view.node_count,
        view.edge_count,
        TimestampMs(view.created_at),
        TimestampMs(view.last_mutation_at),
        view.cancelled_at.map(TimestampMs),
        view.cancel_reason,
        view.cancellation_policy,
        view.tags.into_iter().collect::<BTreeMap<_, _>>(),
        edge_groups,
    ))
}

/// Member ids the guest returned, as ff-core's wire texts (checked).
fn member_ids(op: &'static str, ids: Vec<String>) -> Result<Vec<String>, EngineError> {
    ids.into_iter()
        .map(|id| execution_id(op, &id).map(|parsed| parsed.to_string()))
        .collect()
}

pub(super) async fn create_flow(
    backend: &SqliteBackend,
    args: CreateFlowArgs,
) -> Result<CreateFlowResult, EngineError> {
    let guest_args = flows::CreateFlowArgs {
        flow_id: args.flow_id.to_string(),
        flow_kind: args.flow_kind.clone(),
        namespace: args.namespace.to_string(),
        now: args.now.0,
    };
    let outcome = backend
        .run("create_flow", Tx::Write, move |guest, store| {
            guest
                .flowfabric_backend_flows()
                .call_create_flow(store, &guest_args)
        })
        .await?;
    Ok(match outcome {
        flows::CreateFlowOutcome::Created => CreateFlowResult::Created {
            flow_id: args.flow_id,
        },
        flows::CreateFlowOutcome::AlreadySatisfied => CreateFlowResult::AlreadySatisfied {
            flow_id: args.flow_id,
        },
    })
}

pub(super) async fn add_execution_to_flow(
    backend: &SqliteBackend,
    args: AddExecutionToFlowArgs,
) -> Result<AddExecutionToFlowResult, EngineError> {
    let guest_args = flows::AddExecutionArgs {
        flow_id: args.flow_id.to_string(),
        execution_id: args.execution_id.to_string(),
        now: args.now.0,
    };
    let outcome = backend
        .run("add_execution_to_flow", Tx::Write, move |guest, store| {
            guest
                .flowfabric_backend_flows()
                .call_add_execution_to_flow(store, &guest_args)
        })
        .await?;
    Ok(match outcome {
        flows::AddExecutionOutcome::Added(new_node_count) => AddExecutionToFlowResult::Added {
            execution_id: args.execution_id,
            new_node_count,
        },
        flows::AddExecutionOutcome::AlreadyMember(node_count) => {
            AddExecutionToFlowResult::AlreadyMember {
                execution_id: args.execution_id,
                node_count,
            }
        }
    })
}

pub(super) async fn stage_dependency_edge(
    backend: &SqliteBackend,
    args: StageDependencyEdgeArgs,
) -> Result<StageDependencyEdgeResult, EngineError> {
    const OP: &str = "stage_dependency_edge";
    let guest_args = flows::StageEdgeArgs {
        flow_id: args.flow_id.to_string(),
        edge_id: args.edge_id.to_string(),
        upstream_execution_id: args.upstream_execution_id.to_string(),
        downstream_execution_id: args.downstream_execution_id.to_string(),
        dependency_kind: args.dependency_kind.clone(),
        data_passing_ref: args.data_passing_ref.clone(),
        expected_graph_revision: args.expected_graph_revision,
        now: args.now.0,
    };
    let outcome = backend
        .run(OP, Tx::Write, move |guest, store| {
            guest
                .flowfabric_backend_flows()
                .call_stage_dependency_edge(store, &guest_args)
        })
        .await?;
    match outcome {
        flows::StageEdgeOutcome::Staged(new_graph_revision) => {
            Ok(StageDependencyEdgeResult::Staged {
                edge_id: args.edge_id,
                new_graph_revision,
            })
        }
        flows::StageEdgeOutcome::AlreadyExists(existing) => Err(EngineError::Conflict(
            ConflictKind::DependencyAlreadyExists {
                existing: edge_snapshot(OP, existing)?,
            },
        )),
    }
}

pub(super) async fn apply_dependency_to_child(
    backend: &SqliteBackend,
    args: ApplyDependencyToChildArgs,
) -> Result<ApplyDependencyToChildResult, EngineError> {
    let guest_args = flows::ApplyDependencyArgs {
        flow_id: args.flow_id.to_string(),
        edge_id: args.edge_id.to_string(),
        downstream_execution_id: args.downstream_execution_id.to_string(),
        upstream_execution_id: args.upstream_execution_id.to_string(),
        graph_revision: args.graph_revision,
        dependency_kind: args.dependency_kind.clone(),
        data_passing_ref: args.data_passing_ref.clone(),
        now: args.now.0,
    };
    let outcome = backend
        .run(
            "apply_dependency_to_child",
            Tx::Write,
            move |guest, store| {
                guest
                    .flowfabric_backend_flows()
                    .call_apply_dependency_to_child(store, &guest_args)
            },
        )
        .await?;
    Ok(match outcome {
        flows::ApplyDependencyOutcome::Applied(unsatisfied_count) => {
            ApplyDependencyToChildResult::Applied { unsatisfied_count }
        }
        flows::ApplyDependencyOutcome::AlreadyApplied => {
            ApplyDependencyToChildResult::AlreadyApplied
        }
    })
}

pub(super) async fn evaluate_flow_eligibility(
    backend: &SqliteBackend,
    args: EvaluateFlowEligibilityArgs,
) -> Result<EvaluateFlowEligibilityResult, EngineError> {
    let id = args.execution_id.to_string();
    let status = backend
        .run(
            "evaluate_flow_eligibility",
            Tx::Read,
            move |guest, store| {
                guest
                    .flowfabric_backend_flows()
                    .call_evaluate_flow_eligibility(store, &id)
            },
        )
        .await?;
    Ok(EvaluateFlowEligibilityResult::Status { status })
}

pub(super) async fn cancel_flow(
    backend: &SqliteBackend,
    id: &FlowId,
    policy: CancelFlowPolicy,
    _wait: CancelFlowWait,
) -> Result<CancelFlowResult, EngineError> {
    const OP: &str = "cancel_flow";
    let flow = id.to_string();
    // Members are cancelled inside the call, so there is nothing to wait for afterwards.
    let policy = match policy {
        CancelFlowPolicy::CancelAll => flows::CancelFlowPolicy::CancelAll,
        CancelFlowPolicy::CancelPending => flows::CancelFlowPolicy::CancelPending,
        _ => flows::CancelFlowPolicy::FlowOnly,
    };
    let now = wall_clock();
    let outcome = backend
        .run(OP, Tx::Write, move |guest, store| {
            guest
                .flowfabric_backend_flows()
                .call_cancel_flow(store, &flow, policy, now)
        })
        .await?;
    Ok(CancelFlowResult::Cancelled {
        cancellation_policy: outcome.cancellation_policy,
        member_execution_ids: member_ids(OP, outcome.member_execution_ids)?,
    })
}

pub(super) async fn cancel_flow_header(
    backend: &SqliteBackend,
    args: CancelFlowArgs,
) -> Result<CancelFlowHeader, EngineError> {
    const OP: &str = "cancel_flow_header";
    let guest_args = flows::CancelFlowHeaderArgs {
        flow_id: args.flow_id.to_string(),
        reason: args.reason.clone(),
        cancellation_policy: args.cancellation_policy.clone(),
        now: args.now.0,
    };
    let outcome = backend
        .run(OP, Tx::Write, move |guest, store| {
            guest
                .flowfabric_backend_flows()
                .call_cancel_flow_header(store, &guest_args)
        })
        .await?;
    Ok(match outcome {
        flows::CancelFlowHeaderOutcome::Cancelled(members) => CancelFlowHeader::Cancelled {
            cancellation_policy: args.cancellation_policy,
            member_execution_ids: member_ids(OP, members)?,
        },
        flows::CancelFlowHeaderOutcome::AlreadyTerminal(stored) => {
            CancelFlowHeader::AlreadyTerminal {
                stored_cancellation_policy: stored.stored_cancellation_policy,
                stored_cancel_reason: stored.stored_cancel_reason,
                member_execution_ids: member_ids(OP, stored.member_execution_ids)?,
            }
        }
    })
}

pub(super) async fn ack_cancel_member(
    backend: &SqliteBackend,
    flow: &FlowId,
    member: &ExecutionId,
) -> Result<(), EngineError> {
    let (flow, member) = (flow.to_string(), member.to_string());
    backend
        .run("ack_cancel_member", Tx::Write, move |guest, store| {
            guest
                .flowfabric_backend_flows()
                .call_ack_cancel_member(store, &flow, &member)
        })
        .await
}

pub(super) async fn set_flow_tag(
    backend: &SqliteBackend,
    flow: &FlowId,
    key: &str,
    value: &str,
) -> Result<(), EngineError> {
    ff_core::engine_backend::validate_tag_key(key)?;
    let (flow, key, value) = (flow.to_string(), key.to_owned(), value.to_owned());
    backend
        .run("set_flow_tag", Tx::Write, move |guest, store| {
            guest
                .flowfabric_backend_flows()
                .call_set_flow_tag(store, &flow, &key, &value)
        })
        .await
}

pub(super) async fn get_flow_tag(
    backend: &SqliteBackend,
    flow: &FlowId,
    key: &str,
) -> Result<Option<String>, EngineError> {
    ff_core::engine_backend::validate_tag_key(key)?;
    let (flow, key) = (flow.to_string(), key.to_owned());
    backend
        .run("get_flow_tag", Tx::Read, move |guest, store| {
            guest
                .flowfabric_backend_flows()
                .call_get_flow_tag(store, &flow, &key)
        })
        .await
}

pub(super) async fn describe_flow(
    backend: &SqliteBackend,
    id: &FlowId,
) -> Result<Option<FlowSnapshot>, EngineError> {
    const OP: &str = "describe_flow";
    let flow = id.to_string();
    let view = backend
        .run(OP, Tx::Read, move |guest, store| {
            guest
                .flowfabric_backend_flows()
                .call_describe_flow(store, &flow)
        })
        .await?;
    view.map(|view| flow_snapshot(OP, view)).transpose()
}

pub(super) async fn list_flows(
    backend: &SqliteBackend,
    partition: PartitionKey,
    cursor: Option<FlowId>,
    limit: usize,
) -> Result<ListFlowsPage, EngineError> {
    const OP: &str = "list_flows";
    if limit == 0 {
        return Ok(ListFlowsPage::new(Vec::new(), None));
    }
    let index = partition
        .parse()
        .map_err(|error| {
            validation(
                ValidationKind::InvalidInput,
                format!("partition_key: {error}"),
            )
        })?
        .index;
    let cursor = cursor.map(|flow| flow.to_string());
    let limit = u32::try_from(limit).unwrap_or(u32::MAX - 1);
    let page = backend
        .run(OP, Tx::Read, move |guest, store| {
            guest
                .flowfabric_backend_flows()
                .call_list_flows(store, index, cursor.as_deref(), limit)
        })
        .await?;
    let flows = page
        .flows
        .into_iter()
        .map(|flow| {
            Ok(FlowSummary::new(
                flow_id(OP, &flow.flow_id)?,
                TimestampMs(flow.created_at),
                FlowStatus::from_public_flow_state(&flow.public_flow_state),
            ))
        })
        .collect::<Result<_, EngineError>>()?;
    let next_cursor = page
        .next_cursor
        .map(|cursor| flow_id(OP, &cursor))
        .transpose()?;
    Ok(ListFlowsPage::new(flows, next_cursor))
}

pub(super) async fn list_edges(
    backend: &SqliteBackend,
    flow: &FlowId,
    direction: EdgeDirection,
) -> Result<Vec<EdgeSnapshot>, EngineError> {
    const OP: &str = "list_edges";
    let flow = flow.to_string();
    let direction = match direction {
        EdgeDirection::Outgoing { from_node } => {
            flows::EdgeDirection::Outgoing(from_node.to_string())
        }
        EdgeDirection::Incoming { to_node } => flows::EdgeDirection::Incoming(to_node.to_string()),
    };
    let edges = backend
        .run(OP, Tx::Read, move |guest, store| {
            guest
                .flowfabric_backend_flows()
                .call_list_edges(store, &flow, &direction)
        })
        .await?;
    edges
        .into_iter()
        .map(|edge| edge_snapshot(OP, edge))
        .collect()
}

pub(super) async fn describe_edge(
    backend: &SqliteBackend,
    flow: &FlowId,
    edge: &EdgeId,
) -> Result<Option<EdgeSnapshot>, EngineError> {
    const OP: &str = "describe_edge";
    let (flow, edge) = (flow.to_string(), edge.to_string());
    let view = backend
        .run(OP, Tx::Read, move |guest, store| {
            guest
                .flowfabric_backend_flows()
                .call_describe_edge(store, &flow, &edge)
        })
        .await?;
    view.map(|view| edge_snapshot(OP, view)).transpose()
}

pub(super) async fn resolve_execution_flow_id(
    backend: &SqliteBackend,
    id: &ExecutionId,
) -> Result<Option<FlowId>, EngineError> {
    const OP: &str = "resolve_execution_flow_id";
    let id = id.to_string();
    let flow = backend
        .run(OP, Tx::Read, move |guest, store| {
            guest
                .flowfabric_backend_flows()
                .call_resolve_execution_flow_id(store, &id)
        })
        .await?;
    flow.map(|flow| flow_id(OP, &flow)).transpose()
}

pub(super) async fn set_edge_group_policy(
    backend: &SqliteBackend,
    flow: &FlowId,
    downstream: &ExecutionId,
    policy: EdgeDependencyPolicy,
) -> Result<SetEdgeGroupPolicyResult, EngineError> {
    let policy = match &policy {
        EdgeDependencyPolicy::AllOf => flows::EdgeGroupPolicy::AllOf,
        EdgeDependencyPolicy::AnyOf { on_satisfied } => {
            flows::EdgeGroupPolicy::AnyOf(on_satisfied_to_guest(on_satisfied))
        }
        EdgeDependencyPolicy::Quorum { k, on_satisfied } => {
            flows::EdgeGroupPolicy::Quorum(flows::QuorumPolicy {
                k: *k,
                on_satisfied: on_satisfied_to_guest(on_satisfied),
            })
        }
        _ => {
            return Err(validation(
                ValidationKind::InvalidInput,
                "unknown EdgeDependencyPolicy variant",
            ));
        }
    };
    let (flow, downstream) = (flow.to_string(), downstream.to_string());
    let set = backend
        .run("set_edge_group_policy", Tx::Write, move |guest, store| {
            guest.flowfabric_backend_flows().call_set_edge_group_policy(
                store,
                &flow,
                &downstream,
                policy,
            )
        })
        .await?;
    Ok(if set {
        SetEdgeGroupPolicyResult::Set
    } else {
        SetEdgeGroupPolicyResult::AlreadySet
    })
}

pub(super) async fn resolve_dependency(
    backend: &SqliteBackend,
    args: ResolveDependencyArgs,
) -> Result<ResolveDependencyOutcome, EngineError> {
    let guest_args = flows::ResolveDependencyArgs {
        flow_id: args.flow_id.to_string(),
        edge_id: args.edge_id.to_string(),
        downstream_execution_id: args.downstream_execution_id.to_string(),
        upstream_execution_id: args.upstream_execution_id.to_string(),
        upstream_outcome: args.upstream_outcome.clone(),
        now: args.now.0,
    };
    let outcome = backend
        .run("resolve_dependency", Tx::Write, move |guest, store| {
            guest
                .flowfabric_backend_flows()
                .call_resolve_dependency(store, &guest_args)
        })
        .await?;
    Ok(match outcome {
        flows::ResolveOutcome::Satisfied => ResolveDependencyOutcome::Satisfied,
        flows::ResolveOutcome::Impossible => ResolveDependencyOutcome::Impossible,
        flows::ResolveOutcome::AlreadyResolved => ResolveDependencyOutcome::AlreadyResolved,
    })
}

pub(super) async fn cascade_completion(
    backend: &SqliteBackend,
    payload: &CompletionPayload,
) -> Result<CascadeOutcome, EngineError> {
    if payload.flow_id.is_none() {
        return Ok(CascadeOutcome::synchronous(0, 0));
    }
    let id = payload.execution_id.to_string();
    let now = wall_clock();
    let outcome = backend
        .run("cascade_completion", Tx::Write, move |guest, store| {
            guest
                .flowfabric_backend_flows()
                .call_cascade_completion(store, &id, now)
        })
        .await?;
    Ok(CascadeOutcome::synchronous(
        outcome.resolved as usize,
        outcome.cascaded_children as usize,
    ))
}

pub(super) async fn wait_children(
    backend: &SqliteBackend,
    handle: &Handle,
) -> Result<(), EngineError> {
    let (lease, _) = handle_lease(handle)?;
    let lease = flows::ChildWaitLease {
        execution_id: lease.execution_id,
        attempt_index: lease.attempt_index,
        attempt_id: lease.attempt_id,
        lease_id: lease.lease_id,
        lease_epoch: lease.lease_epoch,
    };
    let now = wall_clock();
    backend
        .run("wait_children", Tx::Write, move |guest, store| {
            guest
                .flowfabric_backend_flows()
                .call_wait_children(store, &lease, now)
        })
        .await
}

/// The flow partition argument of the sibling-cancel and summary operations: flows live on
/// partition 0 of the flow family (`Execution` is its routing alias); anything else cannot hold
/// a flow here and is `Validation { InvalidInput }`.
fn require_flow_partition(partition: Partition) -> Result<(), EngineError> {
    if matches!(
        partition.family,
        PartitionFamily::Flow | PartitionFamily::Execution
    ) && partition.index == 0
    {
        return Ok(());
    }
    Err(validation(
        ValidationKind::InvalidInput,
        format!(
            "flow partition mismatch: flows live on {{fp:0}}, got {}",
            partition.hash_tag()
        ),
    ))
}

pub(super) async fn drain_sibling_cancel_group(
    backend: &SqliteBackend,
    partition: Partition,
    flow: &FlowId,
    downstream: &ExecutionId,
) -> Result<(), EngineError> {
    require_flow_partition(partition)?;
    let (flow, downstream) = (flow.to_string(), downstream.to_string());
    let now = wall_clock();
    backend
        .run(
            "drain_sibling_cancel_group",
            Tx::Write,
            move |guest, store| {
                guest
                    .flowfabric_backend_flows()
                    .call_drain_sibling_cancel_group(store, &flow, &downstream, now)
            },
        )
        .await?;
    Ok(())
}

pub(super) async fn reconcile_sibling_cancel_group(
    backend: &SqliteBackend,
    partition: Partition,
    flow: &FlowId,
    downstream: &ExecutionId,
) -> Result<SiblingCancelReconcileAction, EngineError> {
    require_flow_partition(partition)?;
    let (flow, downstream) = (flow.to_string(), downstream.to_string());
    let action = backend
        .run(
            "reconcile_sibling_cancel_group",
            Tx::Write,
            move |guest, store| {
                guest
                    .flowfabric_backend_flows()
                    .call_reconcile_sibling_cancel_group(store, &flow, &downstream)
            },
        )
        .await?;
    Ok(match action {
        flows::SiblingCancelAction::SremmedStale => SiblingCancelReconcileAction::SremmedStale,
        flows::SiblingCancelAction::CompletedDrain => SiblingCancelReconcileAction::CompletedDrain,
        flows::SiblingCancelAction::NoOp => SiblingCancelReconcileAction::NoOp,
    })
}

pub(super) async fn project_flow_summary(
    backend: &SqliteBackend,
    partition: Partition,
    flow: &FlowId,
    now: TimestampMs,
) -> Result<bool, EngineError> {
    require_flow_partition(partition)?;
    let flow = flow.to_string();
    backend
        .run("project_flow_summary", Tx::Write, move |guest, store| {
            guest
                .flowfabric_backend_flows()
                .call_project_flow_summary(store, &flow, now.0)
        })
        .await
}
