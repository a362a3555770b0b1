//! `claim-for-worker`; the rules are in the parent module's docs.

use super::eligible_predicate;
use crate::bindings::routing::{ClaimForWorkerArgs, ClaimGrant};
use crate::bindings::scheduling::IssueClaimGrantArgs;
use crate::db::{Db, DbExt, int, text};
use crate::errors::{corruption, require_positive, require_worker_id};
use crate::ids::ExecutionRef;
use crate::json;
use crate::scheduling::issue_claim_grant;
use crate::types::{EngineError, ValidationError, ValidationKind};

/// The best eligible execution of lane `?1` at `?2` whose non-empty required capabilities are
/// all in the JSON array `?3`, in any partition.
const CANDIDATE: &str = concat!(
    "SELECT e.partition_key, lower(hex(e.execution_id)) FROM ff_exec_core AS e \
     WHERE e.lane_id = ?1 AND ",
    eligible_predicate!("?2"),
    " AND NOT EXISTS (SELECT 1 FROM ff_execution_capabilities AS c \
         WHERE c.execution_id = e.execution_id AND c.capability <> '' \
             AND c.capability NOT IN (SELECT value FROM json_each(?3))) \
     ORDER BY e.priority DESC, e.created_at_ms, e.partition_key, e.execution_id LIMIT 1"
);

/// `Validation(InvalidCapabilities)` for a token that is empty or holds `,`, whitespace or a
/// control character (the tokens a worker may announce).
fn check_capabilities(capabilities: &[String]) -> Result<(), EngineError> {
    let bad = capabilities.iter().find(|token| {
        token.is_empty()
            || token
                .chars()
                .any(|c| c == ',' || c.is_whitespace() || c.is_control())
    });
    match bad {
        None => Ok(()),
        Some(token) => Err(EngineError::Validation(ValidationError {
            kind: ValidationKind::InvalidCapabilities,
            detail: format!(
                "capability token must be non-empty, without ',', whitespace or control characters: {token:?}"
            ),
        })),
    }
}

/// Grant the best eligible execution of the lane the worker covers; see the module docs.
pub fn claim_for_worker(
    db: &mut impl Db,
    args: &ClaimForWorkerArgs,
) -> Result<Option<ClaimGrant>, EngineError> {
    require_positive("grant_ttl_ms", args.grant_ttl_ms)?;
    require_worker_id(&args.worker_id)?;
    check_capabilities(&args.worker_capabilities)?;
    let capabilities = json::string_array(args.worker_capabilities.iter().map(String::as_str));
    let Some(row) = db.first_row(
        CANDIDATE,
        &[text(&args.lane_id), int(args.now), text(capabilities)],
    )?
    else {
        return Ok(None);
    };
    let (Some(partition), Some(hex)) = (row.integer(0), row.text(1)) else {
        return Err(corruption("claim_for_worker: execution key missing"));
    };
    let uuid = uuid::Uuid::try_parse(&hex)
        .map_err(|_| corruption(format!("claim_for_worker: bad execution id {hex}")))?;
    let id = ExecutionRef::parse(&format!("{{fp:{partition}}}:{uuid}"))?;
    issue_claim_grant(
        db,
        &IssueClaimGrantArgs {
            execution_id: id.canonical(),
            lane_id: args.lane_id.clone(),
            worker_id: args.worker_id.clone(),
            worker_instance_id: args.worker_instance_id.clone(),
            capability_hash: None,
            route_snapshot_json: None,
            admission_summary: None,
            worker_capabilities: args.worker_capabilities.clone(),
            grant_ttl_ms: args.grant_ttl_ms,
            now: args.now,
        },
    )?;
    let grant = db
        .first_row(
            "SELECT lower(hex(grant_id)), expires_at_ms FROM ff_claim_grant \
             WHERE partition_key = ?1 AND execution_id = ?2 AND kind = 'claim'",
            &[id.partition(), id.blob()],
        )?
        .ok_or_else(|| corruption("claim_for_worker: the grant just written is missing"))?;
    match (grant.text(0), grant.integer(1)) {
        (Some(grant_key), Some(expires_at_ms)) => Ok(Some(ClaimGrant {
            execution_id: id.canonical(),
            grant_key,
            expires_at_ms,
        })),
        _ => Err(corruption("claim_for_worker: unreadable grant row")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::invalid_input;
    use crate::routing::test_support::{id, seed};
    use crate::scheduling::claim_execution;
    use crate::testing::{NOW, TestDb, claim_args};

    fn args(capabilities: &[&str]) -> ClaimForWorkerArgs {
        ClaimForWorkerArgs {
            lane_id: "default".into(),
            worker_id: "worker-1".into(),
            worker_instance_id: "wi-1".into(),
            worker_capabilities: capabilities.iter().map(|c| c.to_string()).collect(),
            grant_ttl_ms: 5_000,
            now: NOW,
        }
    }

    #[test]
    fn grants_the_best_covered_execution_across_partitions_and_the_worker_claims_it() {
        let mut db = TestDb::new();
        seed(&db, 1, 0, 0, 10, &[]);
        seed(&db, 2, 3, 7, 20, &["gpu"]);
        seed(&db, 3, 2, 7, 30, &[]);
        let grant = claim_for_worker(&mut db, &args(&["cpu"]))
            .unwrap()
            .expect("granted");
        // 2 ranks first but needs gpu; 3 is the best this worker covers.
        assert_eq!(grant.execution_id, id(2, 3));
        assert_eq!(grant.expires_at_ms, NOW + 5_000);
        assert_eq!(grant.grant_key.len(), 32);
        assert_eq!(
            db.one(
                "SELECT lower(hex(grant_id)) || '|' || worker_id || '|' || worker_instance_id || '|' || \
                 lane_id || '|' || worker_capabilities || '|' || issued_at_ms FROM ff_claim_grant"
            ),
            format!("{}|worker-1|wi-1|default|[\"cpu\"]|{NOW}", grant.grant_key)
        );
        // The grant reserves 3: the next call grants the next best.
        let next = claim_for_worker(&mut db, &args(&["cpu"]))
            .unwrap()
            .expect("granted");
        assert_eq!(next.execution_id, id(0, 1));
        assert_eq!(claim_for_worker(&mut db, &args(&["cpu"])).unwrap(), None);
        // The worker consumes the grant the way every grant is consumed.
        let claimed = claim_execution(&mut db, &claim_args(&grant.execution_id)).unwrap();
        assert_eq!(claimed.execution_id, id(2, 3));
        let gpu = claim_for_worker(&mut db, &args(&["gpu"]))
            .unwrap()
            .expect("granted");
        assert_eq!(gpu.execution_id, id(3, 2));
    }

    #[test]
    fn no_work_writes_nothing() {
        let mut db = TestDb::new();
        seed(&db, 1, 0, 0, 10, &["gpu"]);
        seed(&db, 2, 0, 0, 10, &[]);
        db.exec("UPDATE ff_exec_core SET eligibility_state = 'blocked_by_route' WHERE execution_id = X'00000000000000000000000000000002'");
        let before = db.dump();
        assert_eq!(claim_for_worker(&mut db, &args(&["cpu"])).unwrap(), None);
        assert_eq!(db.dump(), before);
    }

    #[test]
    fn bad_input_is_typed_and_writes_nothing() {
        let mut db = TestDb::new();
        seed(&db, 1, 0, 0, 10, &[]);
        let mut zero = args(&[]);
        zero.grant_ttl_ms = 0;
        let err = db.fails_unchanged(|db| claim_for_worker(db, &zero));
        assert!(
            matches!(err, EngineError::Validation(ref v) if v.kind == ValidationKind::InvalidInput)
        );
        let mut anonymous = args(&[]);
        anonymous.worker_id = String::new();
        let err = db.fails_unchanged(|db| claim_for_worker(db, &anonymous));
        assert_eq!(err, invalid_input("worker_id must not be empty"));
        for token in ["", "a,b", "a b", "a\u{7}"] {
            let err = db.fails_unchanged(|db| claim_for_worker(db, &args(&[token])));
            assert!(
                matches!(err, EngineError::Validation(ref v) if v.kind == ValidationKind::InvalidCapabilities),
                "{token:?}: {err:?}"
            );
        }
    }
}
