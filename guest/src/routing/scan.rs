//! `scan-eligible-executions`; the rules are in the parent module's docs.

use super::eligible_predicate;
use crate::bindings::routing::ScanEligibleArgs;
use crate::db::{Db, Row, int, text};
use crate::errors::{corruption, storage};
use crate::ids::ExecutionRef;
use crate::types::EngineError;

const SCAN: &str = concat!(
    "SELECT lower(hex(e.execution_id)) FROM ff_exec_core AS e \
     WHERE e.partition_key = ?1 AND e.lane_id = ?2 AND ",
    eligible_predicate!("?3"),
    " ORDER BY e.priority DESC, e.created_at_ms, e.execution_id LIMIT ?4"
);

/// Up to `args.limit` eligible executions of the lane in the partition, best first.
pub fn scan_eligible_executions(
    db: &mut impl Db,
    args: &ScanEligibleArgs,
) -> Result<Vec<String>, EngineError> {
    if args.limit == 0 {
        return Ok(Vec::new());
    }
    let rows = db
        .query(
            SCAN,
            &[
                int(args.partition),
                text(&args.lane_id),
                int(args.now),
                int(args.limit),
            ],
        )
        .map_err(storage)?;
    rows.into_iter()
        .map(|row| {
            let hex = Row(row)
                .text(0)
                .ok_or_else(|| corruption("scan_eligible_executions: execution id missing"))?;
            let uuid = uuid::Uuid::try_parse(&hex)
                .map_err(|_| corruption(format!("scan_eligible_executions: bad id {hex}")))?;
            let id = ExecutionRef::parse(&format!("{{fp:{}}}:{uuid}", args.partition))?;
            Ok(id.canonical())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::test_support::{id, seed};
    use crate::testing::{NOW, Recording, TestDb};

    fn args(partition: u16, limit: u32) -> ScanEligibleArgs {
        ScanEligibleArgs {
            lane_id: "default".into(),
            partition,
            limit,
            now: NOW,
        }
    }

    #[test]
    fn returns_the_partitions_eligible_executions_best_first() {
        let mut db = TestDb::new();
        seed(&db, 1, 0, 0, 30, &[]);
        seed(&db, 2, 0, 5, 40, &[]);
        seed(&db, 3, 0, 0, 20, &["gpu"]);
        seed(&db, 4, 1, 9, 10, &[]);
        let before = db.dump();
        assert_eq!(
            scan_eligible_executions(&mut db, &args(0, 10)).unwrap(),
            vec![id(0, 2), id(0, 3), id(0, 1)]
        );
        assert_eq!(
            scan_eligible_executions(&mut db, &args(0, 1)).unwrap(),
            vec![id(0, 2)]
        );
        assert_eq!(
            scan_eligible_executions(&mut db, &args(1, 10)).unwrap(),
            vec![id(1, 4)]
        );
        assert!(
            scan_eligible_executions(&mut db, &args(0, 0))
                .unwrap()
                .is_empty()
        );
        assert!(
            scan_eligible_executions(&mut db, &args(2, 10))
                .unwrap()
                .is_empty()
        );
        assert_eq!(db.dump(), before);
    }

    #[test]
    fn skips_what_claim_execution_would_refuse() {
        let mut db = TestDb::new();
        for n in 1..=7 {
            seed(&db, n, 0, 0, i64::from(n), &[]);
        }
        let hex = |n: u8| format!("{n:032x}");
        db.exec(&format!(
            "UPDATE ff_exec_core SET lane_id = 'other' WHERE execution_id = X'{}'",
            hex(1)
        ));
        db.exec(&format!(
            "UPDATE ff_exec_core SET eligibility_state = 'blocked_by_route' WHERE execution_id = X'{}'",
            hex(2)
        ));
        db.exec(&format!(
            "UPDATE ff_exec_core SET eligibility_state = 'not_eligible_until_time' WHERE execution_id = X'{}'",
            hex(3)
        ));
        db.exec(&format!(
            "UPDATE ff_exec_core SET attempt_state = 'attempt_interrupted' WHERE execution_id = X'{}'",
            hex(4)
        ));
        // A live grant reserves 5; 6's grant expired, so 6 is eligible again.
        for (n, expires) in [(5, NOW), (6, NOW - 1)] {
            db.exec(&format!(
                "INSERT INTO ff_claim_grant (partition_key, grant_id, execution_id, kind, worker_id, \
                     worker_instance_id, grant_ttl_ms, issued_at_ms, expires_at_ms) \
                 VALUES (0, randomblob(16), X'{}', 'claim', 'w', 'wi', 1, 0, {expires})",
                hex(n)
            ));
        }
        assert_eq!(
            scan_eligible_executions(&mut db, &args(0, 10)).unwrap(),
            vec![id(0, 6), id(0, 7)]
        );
    }

    #[test]
    fn the_scan_is_served_by_an_index() {
        let mut db = TestDb::new();
        seed(&db, 1, 0, 0, 1, &[]);
        let mut recording = Recording {
            db: &mut db,
            statements: Vec::new(),
        };
        scan_eligible_executions(&mut recording, &args(0, 5)).unwrap();
        assert_eq!(recording.unindexed_steps(), Vec::<String>::new());
    }
}
