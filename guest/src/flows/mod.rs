//! The `flows` interface: flows, dependency edges and their enforcement.
//!
//! A flow is a row of `ff_flow_core` (partition 0) whose members are `{fp:0}` executions
//! (`ff_exec_core.flow_id`). Edges (`ff_edge`) are staged between members, then applied to
//! their downstream; each downstream with applied edges has one edge group (`ff_edge_group`)
//! holding its policy (`all_of`, `any_of`, `quorum(k)`) and counters: `running_count` (applied,
//! unresolved), `success_count`, `fail_count`, `skip_count`. The group's state is derived
//! from the counters ([`common::group_state`]), never stored.
//!
//! # Enforcement
//!
//! * Applying an edge to a runnable, unowned downstream whose group is not satisfied makes it
//!   `blocked_by_dependencies` (public `waiting_children`, attempt state kept): no claim path
//!   takes it (the scanner, grants and `claim-execution` all require `eligible_now` or a due
//!   delay).
//! * Every terminal write (complete, fail, cancel, reclaim-cap failure, flow cancel) calls
//!   [`resolve::on_terminal`] in the same transaction: each applied edge leaving the execution
//!   resolves (`satisfied` for `success`, else `impossible`), and the downstream's group is
//!   re-evaluated: satisfied releases a blocked downstream (`eligible_now`), impossible skips
//!   it (terminal, public `skipped`, `terminal_outcome = skipped`, CE(`skipped`), a live lease
//!   revoked), and a skip resolves the skipped execution's own edges in turn. A member is
//!   skipped at most once and a flow holds at most [`common::MAX_FLOW_MEMBERS`] members, which
//!   bounds a cascade. An execution outside any flow pays nothing.
//! * An edge applied after its upstream finished resolves at once.
//!
//! # Checks (every check before the first write)
//!
//! | operation | check, in order | error |
//! |---|---|---|
//! | all | ids parse | `Validation { InvalidInput }` |
//! | add, stage, apply, set-edge-group-policy | member ids are `{fp:0}` | `Validation { InvalidInput }` |
//! | add | the flow exists / is not terminal | `NotFound(flow)` / `State(FlowAlreadyTerminal)` |
//! | add | the execution exists / is in no other flow | `NotFound(execution)` / `Conflict(ExecutionAlreadyInFlow)` |
//! | add | the flow has fewer than 10 000 members | `Validation { InvalidInput, "flow_member_limit: .." }` |
//! | stage | upstream != downstream | `Conflict(SelfReferencingEdge)` |
//! | stage | the flow exists / is not terminal | `NotFound(flow)` / `State(FlowAlreadyTerminal)` |
//! | stage | revision equals the expected one and the flow is `open` | `Contention(StaleGraphRevision)` |
//! | stage | both ends are members | `State(ExecutionNotInFlow)` |
//! | stage | the edge id is new | `Conflict(DependencyAlreadyExists { existing })` (host) |
//! | stage | no path downstream → upstream (at most 1 000 executions walked) | `Conflict(CycleDetected)` |
//! | apply | the flow exists | `NotFound(flow)` |
//! | apply | the edge exists and joins the given ends | `Validation { InvalidDependency }` |
//! | apply | the downstream exists | `NotFound(execution)` |
//! | set-edge-group-policy | `quorum` k >= 1; the flow exists; no edge into the downstream staged | `Validation { InvalidInput }` / `NotFound(flow)` / `Validation { InvalidInput }` |
//! | set-flow-tag | the key matches ff-core's tag pattern; the flow exists | `Validation { InvalidInput }` / `NotFound(flow)` |
//! | cancel-flow-header | the flow exists | `NotFound(flow)` |
//! | resolve-dependency | the edge exists, joins the given ends and was applied | `Validation { InvalidDependency }` |
//! | wait-children | as the handle operations (`lease-holder`) | |

mod cancel;
pub mod common;
mod reads;
pub mod resolve;
mod siblings;
mod structure;
mod summary;

pub use summary::project_flow_summary;

pub use cancel::{ack_cancel_member, cancel_flow, cancel_flow_header};
pub use reads::{
    describe_edge, describe_flow, evaluate_flow_eligibility, get_flow_tag, list_edges, list_flows,
};
pub use resolve::{
    cascade_completion, on_terminal, resolve_dependency, resolve_execution_flow_id, wait_children,
};
pub use siblings::{drain_sibling_cancel_group, reconcile_sibling_cancel_group};
pub use structure::{
    add_execution_to_flow, apply_dependency_to_child, create_flow, set_edge_group_policy,
    set_flow_tag, stage_dependency_edge,
};
