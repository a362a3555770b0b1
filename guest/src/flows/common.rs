//! What the flow operations share: flow and edge ids, the flow row, the state vectors a
//! dependency writes, and the edge-group arithmetic.

use crate::bindings::flows::{EdgeGroupPolicy, EdgeGroupState, OnSatisfied, QuorumPolicy};
use crate::db::{Db, DbExt, Row, int};
use crate::errors::{corruption, invalid_input};
use crate::exec::StateVector;
use crate::ids::ExecutionRef;
use crate::sql::Value;
use crate::types::{EngineError, Entity, StateKind, ValidationError, ValidationKind};

/// Flow rows, edges and groups live on partition 0 (upstream's single-partition rule).
pub const FLOW_PARTITION: i64 = 0;

/// The most members a flow holds: a skip cascade visits each member at most once, so this also
/// bounds the work one terminal write can cause.
pub const MAX_FLOW_MEMBERS: i64 = 10_000;

/// The most executions the cycle check visits before it refuses the edge (Valkey's bound): a
/// staging never walks more than this, whatever the flow's size.
pub const MAX_CYCLE_SEARCH: usize = 1_000;

/// A flow or edge id: a hyphenated UUID text, stored as its 16 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uuid16(pub uuid::Uuid);

impl Uuid16 {
    /// Parse `text` (any form `Uuid::parse_str` accepts); `what` names the argument in the
    /// `Validation { InvalidInput }` error.
    pub fn parse(what: &str, text: &str) -> Result<Self, EngineError> {
        uuid::Uuid::parse_str(text)
            .map(Self)
            .map_err(|_| invalid_input(format!("{what} is not a UUID: {text:?}")))
    }

    /// The stored column value (16 bytes).
    pub fn blob(&self) -> Value {
        Value::Blob(self.0.as_bytes().to_vec())
    }

    /// The lowercase hyphenated text.
    pub fn text(&self) -> String {
        self.0.hyphenated().to_string()
    }

    /// The id stored in `row` at `index`, as text (`Validation { Corruption }` when not 16 bytes).
    pub fn text_at(row: &Row, index: usize, what: &str) -> Result<String, EngineError> {
        row.blob(index)
            .and_then(|bytes| uuid::Uuid::from_slice(&bytes).ok())
            .map(|uuid| uuid.hyphenated().to_string())
            .ok_or_else(|| corruption(format!("{what} is not a 16-byte UUID")))
    }
}

/// A member execution id: parsed, and on partition 0 (`Validation { InvalidInput }` otherwise).
pub fn member_ref(text: &str) -> Result<ExecutionRef, EngineError> {
    let id = ExecutionRef::parse(text)?;
    if id.partition_number() != 0 {
        return Err(invalid_input(format!(
            "execution partition mismatch: flows hold {{fp:0}} executions only, got {}",
            id.canonical()
        )));
    }
    Ok(id)
}

/// The `{fp:0}:<uuid>` id of a member stored as `row[index]`.
pub fn member_text(row: &Row, index: usize) -> Result<String, EngineError> {
    Ok(format!(
        "{{fp:0}}:{}",
        Uuid16::text_at(row, index, "execution id")?
    ))
}

/// The execution stored as `row[index]` on partition 0.
pub fn member_at(row: &Row, index: usize) -> Result<ExecutionRef, EngineError> {
    row.blob(index)
        .and_then(|bytes| ExecutionRef::from_stored(0, &bytes))
        .ok_or_else(|| corruption("execution id is not a 16-byte UUID"))
}

/// `Validation { InvalidDependency, detail }`.
pub fn invalid_dependency(detail: impl Into<String>) -> EngineError {
    EngineError::Validation(ValidationError {
        kind: ValidationKind::InvalidDependency,
        detail: detail.into(),
    })
}

/// What the dependency operations read of a staged edge (its `policy` JSON).
pub struct StagedEdge {
    /// `edge_state`: absent until applied, then `applied`, `satisfied` or `impossible`.
    pub edge_state: Option<String>,
    /// `applied_at_ms`: when the edge was applied to its child, if it was.
    pub applied_at_ms: Option<i64>,
}

/// The edge `edge_id` of `flow`, checked to join `upstream` to `downstream` as the caller
/// says: `InvalidDependency` `edge_not_found` or `edge_endpoint_mismatch` otherwise.
pub fn staged_edge(
    db: &mut impl Db,
    flow: &Uuid16,
    edge_id: &Uuid16,
    upstream: &ExecutionRef,
    downstream: &ExecutionRef,
) -> Result<StagedEdge, EngineError> {
    let edge = db
        .first_row(
            "SELECT upstream_eid, downstream_eid, json_extract(policy, '$.edge_state'), \
                 json_extract(policy, '$.applied_at_ms') \
             FROM ff_edge WHERE partition_key = ?1 AND flow_id = ?2 AND edge_id = ?3",
            &[int(FLOW_PARTITION), flow.blob(), edge_id.blob()],
        )?
        .ok_or_else(|| invalid_dependency("edge_not_found"))?;
    if edge.blob(0).as_deref() != Some(upstream.uuid().as_bytes())
        || edge.blob(1).as_deref() != Some(downstream.uuid().as_bytes())
    {
        return Err(invalid_dependency(
            "edge_endpoint_mismatch: the arguments name other executions than the staged edge",
        ));
    }
    Ok(StagedEdge {
        edge_state: edge.text(2),
        applied_at_ms: edge.integer(3),
    })
}

/// The flow row's state columns.
#[derive(Debug, Clone)]
pub struct FlowRow {
    /// `public_flow_state`.
    pub state: String,
    /// `graph_revision`.
    pub graph_revision: i64,
    /// `raw_fields.node_count` (absent or not a number: 0).
    pub node_count: i64,
}

impl FlowRow {
    /// The flow, or `None`.
    pub fn load(db: &mut impl Db, flow: &Uuid16) -> Result<Option<FlowRow>, EngineError> {
        Ok(db
            .first_row(
                "SELECT public_flow_state, graph_revision, \
                     COALESCE(CAST(json_extract(raw_fields, '$.node_count') AS INTEGER), 0) \
                 FROM ff_flow_core WHERE partition_key = ?1 AND flow_id = ?2",
                &[Value::Integer(FLOW_PARTITION), flow.blob()],
            )?
            .map(|row| FlowRow {
                state: row.text_or_empty(0),
                graph_revision: row.integer(1).unwrap_or(0),
                node_count: row.integer(2).unwrap_or(0),
            }))
    }

    /// The flow, or `NotFound(flow)`.
    pub fn require(db: &mut impl Db, flow: &Uuid16) -> Result<FlowRow, EngineError> {
        Self::load(db, flow)?.ok_or(EngineError::NotFound(Entity::Flow))
    }

    /// The flow, open to structural changes: it exists (`NotFound(flow)`) and is not terminal
    /// (`State(FlowAlreadyTerminal)`).
    pub fn require_open(db: &mut impl Db, flow: &Uuid16) -> Result<FlowRow, EngineError> {
        let row = Self::require(db, flow)?;
        if matches!(
            row.state.as_str(),
            "cancelled" | "completed" | "failed" | "terminal"
        ) {
            return Err(EngineError::State(StateKind::FlowAlreadyTerminal));
        }
        Ok(row)
    }
}

/// The attempt states a waiting execution keeps, as the `'static` literals a [`StateVector`]
/// holds; anything else counts as a first attempt.
fn kept_attempt_state(attempt_state: &str) -> &'static str {
    match attempt_state {
        "pending_retry_attempt" => "pending_retry_attempt",
        "attempt_interrupted" => "attempt_interrupted",
        "pending_replay_attempt" => "pending_replay_attempt",
        _ => "pending_first_attempt",
    }
}

/// Waiting for its dependencies: runnable but not claimable (`blocked_by_dependencies`,
/// public `waiting_children`), keeping its attempt state.
pub fn blocked_by_dependencies(attempt_state: &str) -> StateVector {
    StateVector {
        lifecycle_phase: "runnable",
        ownership_state: "unowned",
        eligibility_state: "blocked_by_dependencies",
        public_state: "waiting_children",
        attempt_state: kept_attempt_state(attempt_state),
        blocking_reason: Some("waiting_for_children"),
    }
}

/// Its dependencies are satisfied: claimable now, keeping its attempt state.
pub fn released(attempt_state: &str) -> StateVector {
    StateVector {
        lifecycle_phase: "runnable",
        ownership_state: "unowned",
        eligibility_state: "eligible_now",
        public_state: "waiting",
        attempt_state: kept_attempt_state(attempt_state),
        blocking_reason: Some("waiting_for_worker"),
    }
}

/// Skipped: a required dependency can no longer be satisfied.
pub const SKIPPED: StateVector = StateVector {
    lifecycle_phase: "terminal",
    ownership_state: "unowned",
    eligibility_state: "not_applicable",
    public_state: "skipped",
    attempt_state: "attempt_terminal",
    blocking_reason: None,
};

/// A group policy as stored in `ff_edge_group.policy`: ff-core's serde shape of
/// `EdgeDependencyPolicy` (`{"kind":"all_of"}`, `{"kind":"any_of","on_satisfied":..}`,
/// `{"kind":"quorum","k":K,"on_satisfied":..}`).
pub fn encode_policy(policy: &EdgeGroupPolicy) -> String {
    let on = |on: &OnSatisfied| match on {
        OnSatisfied::CancelRemaining => "cancel_remaining",
        OnSatisfied::LetRun => "let_run",
    };
    match policy {
        EdgeGroupPolicy::AllOf => r#"{"kind":"all_of"}"#.into(),
        EdgeGroupPolicy::AnyOf(on_satisfied) => format!(
            r#"{{"kind":"any_of","on_satisfied":"{}"}}"#,
            on(on_satisfied)
        ),
        EdgeGroupPolicy::Quorum(quorum) => format!(
            r#"{{"kind":"quorum","k":{},"on_satisfied":"{}"}}"#,
            quorum.k,
            on(&quorum.on_satisfied)
        ),
    }
}

/// The stored group policy from its `kind`, `k` and `on_satisfied` members: `any_of`, `quorum`
/// (`k` default 1, `on_satisfied` default `cancel_remaining`), anything else `all_of`.
pub fn decode_policy(
    kind: Option<&str>,
    k: Option<i64>,
    on_satisfied: Option<&str>,
) -> EdgeGroupPolicy {
    let on = match on_satisfied {
        Some("let_run") => OnSatisfied::LetRun,
        _ => OnSatisfied::CancelRemaining,
    };
    match kind {
        Some("any_of") => EdgeGroupPolicy::AnyOf(on),
        Some("quorum") => EdgeGroupPolicy::Quorum(QuorumPolicy {
            k: u32::try_from(k.unwrap_or(1).max(1)).unwrap_or(u32::MAX),
            on_satisfied: on,
        }),
        _ => EdgeGroupPolicy::AllOf,
    }
}

/// A group's resolution counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupCounts {
    /// Edges whose upstream succeeded.
    pub success: i64,
    /// Edges whose upstream failed, was cancelled or expired.
    pub fail: i64,
    /// Edges whose upstream was skipped.
    pub skip: i64,
    /// Applied edges not resolved yet.
    pub running: i64,
}

impl GroupCounts {
    /// Applied edges.
    pub fn total(&self) -> i64 {
        self.success + self.fail + self.skip + self.running
    }
}

/// The group's state under `policy`: `all_of` is impossible once any upstream did not succeed
/// and satisfied once every applied edge succeeded; `any_of` (k = 1) and `quorum(k)` are
/// satisfied once `k` upstreams succeeded and impossible once fewer than `k` can still succeed.
/// A group with no applied edge is pending.
pub fn group_state(policy: &EdgeGroupPolicy, counts: &GroupCounts) -> EdgeGroupState {
    let k = match policy {
        EdgeGroupPolicy::AllOf => {
            if counts.fail + counts.skip > 0 {
                return EdgeGroupState::Impossible;
            }
            if counts.running == 0 && counts.success > 0 {
                return EdgeGroupState::Satisfied;
            }
            return EdgeGroupState::Pending;
        }
        EdgeGroupPolicy::AnyOf(_) => 1,
        EdgeGroupPolicy::Quorum(quorum) => i64::from(quorum.k.max(1)),
    };
    if counts.success >= k {
        EdgeGroupState::Satisfied
    } else if counts.total() > 0 && counts.total() - (counts.fail + counts.skip) < k {
        EdgeGroupState::Impossible
    } else {
        EdgeGroupState::Pending
    }
}

/// One downstream's edge group as stored.
#[derive(Debug, Clone)]
pub struct Group {
    /// The policy.
    pub policy: EdgeGroupPolicy,
    /// The counters.
    pub counts: GroupCounts,
}

impl Group {
    /// The columns [`Group::from_row`] reads, from `ff_edge_group`.
    pub const COLUMNS: &'static str = "json_extract(policy, '$.kind'), \
         CAST(json_extract(policy, '$.k') AS INTEGER), json_extract(policy, '$.on_satisfied'), \
         success_count, fail_count, skip_count, running_count";

    /// The group from [`Group::COLUMNS`] starting at `first`.
    pub fn from_row(row: &Row, first: usize) -> Group {
        let count = |index: usize| row.integer(first + index).unwrap_or(0).max(0);
        Group {
            policy: decode_policy(
                row.text(first).as_deref(),
                row.integer(first + 1),
                row.text(first + 2).as_deref(),
            ),
            counts: GroupCounts {
                success: count(3),
                fail: count(4),
                skip: count(5),
                running: count(6),
            },
        }
    }

    /// The downstream's group, or `None`.
    pub fn load(
        db: &mut impl Db,
        flow: &Value,
        downstream: &Value,
    ) -> Result<Option<Group>, EngineError> {
        Ok(db
            .first_row(
                &format!(
                    "SELECT {} FROM ff_edge_group \
                     WHERE partition_key = 0 AND flow_id = ?1 AND downstream_eid = ?2",
                    Group::COLUMNS
                ),
                &[flow.clone(), downstream.clone()],
            )?
            .map(|row| Group::from_row(&row, 0)))
    }

    /// The group's state.
    pub fn state(&self) -> EdgeGroupState {
        group_state(&self.policy, &self.counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(success: i64, fail: i64, skip: i64, running: i64) -> GroupCounts {
        GroupCounts {
            success,
            fail,
            skip,
            running,
        }
    }

    #[test]
    fn all_of_needs_every_edge_and_fails_on_any_failure() {
        let all = EdgeGroupPolicy::AllOf;
        assert_eq!(
            group_state(&all, &counts(0, 0, 0, 0)),
            EdgeGroupState::Pending
        );
        assert_eq!(
            group_state(&all, &counts(1, 0, 0, 1)),
            EdgeGroupState::Pending
        );
        assert_eq!(
            group_state(&all, &counts(2, 0, 0, 0)),
            EdgeGroupState::Satisfied
        );
        assert_eq!(
            group_state(&all, &counts(1, 1, 0, 1)),
            EdgeGroupState::Impossible
        );
        assert_eq!(
            group_state(&all, &counts(0, 0, 1, 0)),
            EdgeGroupState::Impossible
        );
    }

    #[test]
    fn any_of_and_quorum_count_successes_against_what_can_still_succeed() {
        let any = EdgeGroupPolicy::AnyOf(OnSatisfied::LetRun);
        assert_eq!(
            group_state(&any, &counts(0, 2, 0, 1)),
            EdgeGroupState::Pending
        );
        assert_eq!(
            group_state(&any, &counts(1, 2, 0, 0)),
            EdgeGroupState::Satisfied
        );
        assert_eq!(
            group_state(&any, &counts(0, 2, 1, 0)),
            EdgeGroupState::Impossible
        );
        let two = EdgeGroupPolicy::Quorum(QuorumPolicy {
            k: 2,
            on_satisfied: OnSatisfied::LetRun,
        });
        assert_eq!(
            group_state(&two, &counts(1, 1, 0, 1)),
            EdgeGroupState::Pending
        );
        assert_eq!(
            group_state(&two, &counts(2, 1, 0, 0)),
            EdgeGroupState::Satisfied
        );
        assert_eq!(
            group_state(&two, &counts(1, 2, 0, 0)),
            EdgeGroupState::Impossible
        );
    }

    #[test]
    fn policies_round_trip_through_their_stored_form() {
        let cases = [
            (EdgeGroupPolicy::AllOf, r#"{"kind":"all_of"}"#, None, None),
            (
                EdgeGroupPolicy::AnyOf(OnSatisfied::LetRun),
                r#"{"kind":"any_of","on_satisfied":"let_run"}"#,
                None,
                Some("let_run"),
            ),
            (
                EdgeGroupPolicy::Quorum(QuorumPolicy {
                    k: 3,
                    on_satisfied: OnSatisfied::CancelRemaining,
                }),
                r#"{"kind":"quorum","k":3,"on_satisfied":"cancel_remaining"}"#,
                Some(3),
                Some("cancel_remaining"),
            ),
        ];
        for (policy, stored, k, on_satisfied) in cases {
            assert_eq!(encode_policy(&policy), stored);
            let kind = stored.split('"').nth(3);
            assert_eq!(decode_policy(kind, k, on_satisfied), policy);
        }
    }
}
