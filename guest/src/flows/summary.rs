//! `project-flow-summary`: Postgres's flow summary projection. Members are counted by public
//! state and a derived rollup state is computed; the summary is stored in the flow row's
//! `raw_fields.summary` (there is no summary table), never in `public_flow_state`, which stays
//! the authoritative guard state written by create and cancel.

use crate::db::{Db, DbExt, int, text};
use crate::types::EngineError;

use super::common::{FLOW_PARTITION, Uuid16};

/// The public states counted, in the order of the summary's `members_<state>` fields.
const COUNTED: [&str; 11] = [
    "completed",
    "failed",
    "cancelled",
    "expired",
    "skipped",
    "active",
    "suspended",
    "waiting",
    "delayed",
    "rate_limited",
    "waiting_children",
];

/// The rollup state of a flow from its member counts (indexed as [`COUNTED`]) and member total:
/// every member terminal → `failed` if any failed, was cancelled or expired, else `completed`;
/// otherwise `running` if any is active; `blocked` if any is suspended, delayed, rate limited
/// or waiting for children; else `open`.
pub fn rollup_state(counts: &[i64; 11], total: i64) -> &'static str {
    let [
        completed,
        failed,
        cancelled,
        expired,
        skipped,
        active,
        suspended,
        _,
        delayed,
        limited,
        children,
    ] = *counts;
    if completed + failed + cancelled + expired + skipped == total {
        if failed + cancelled + expired > 0 {
            "failed"
        } else {
            "completed"
        }
    } else if active > 0 {
        "running"
    } else if suspended + delayed + limited + children > 0 {
        "blocked"
    } else {
        "open"
    }
}

/// Count the flow's members by public state and store the summary (`total_members`,
/// `sampled_members`, `members_<state>` for each counted state, `public_flow_state` (the
/// rollup), `last_summary_update_at`) in `raw_fields.summary`. `false`, nothing written, when
/// the flow does not exist or has no members.
pub fn project_flow_summary(
    db: &mut impl Db,
    flow_id: &str,
    now: i64,
) -> Result<bool, EngineError> {
    let flow = Uuid16::parse("flow_id", flow_id)?;
    let exists = db
        .first_row(
            "SELECT 1 FROM ff_flow_core WHERE partition_key = ?1 AND flow_id = ?2",
            &[int(FLOW_PARTITION), flow.blob()],
        )?
        .is_some();
    if !exists {
        return Ok(false);
    }
    let sums: Vec<String> = COUNTED
        .iter()
        .map(|state| format!("COALESCE(SUM(public_state = '{state}'), 0)"))
        .collect();
    let Some(row) = db.first_row(
        &format!(
            "SELECT COUNT(*), {} FROM ff_exec_core WHERE partition_key = 0 AND flow_id = ?1",
            sums.join(", ")
        ),
        &[flow.blob()],
    )?
    else {
        return Ok(false);
    };
    let total = row.integer(0).unwrap_or(0);
    if total == 0 {
        return Ok(false);
    }
    let mut counts = [0_i64; 11];
    for (index, count) in counts.iter_mut().enumerate() {
        *count = row.integer(index + 1).unwrap_or(0);
    }
    let mut summary = serde_json::Map::new();
    summary.insert("total_members".into(), total.into());
    summary.insert("sampled_members".into(), total.into());
    for (state, count) in COUNTED.iter().zip(counts) {
        summary.insert(format!("members_{state}"), count.into());
    }
    summary.insert(
        "public_flow_state".into(),
        rollup_state(&counts, total).into(),
    );
    summary.insert("last_summary_update_at".into(), now.into());
    db.run(
        "UPDATE ff_flow_core SET raw_fields = json_set(raw_fields, '$.summary', json(?3)) \
         WHERE partition_key = ?1 AND flow_id = ?2",
        &[
            int(FLOW_PARTITION),
            flow.blob(),
            text(serde_json::Value::Object(summary).to_string()),
        ],
    )?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::rollup_state;

    fn counts(pairs: &[(usize, i64)]) -> [i64; 11] {
        let mut counts = [0; 11];
        for &(index, count) in pairs {
            counts[index] = count;
        }
        counts
    }

    #[test]
    fn the_rollup_follows_postgres_precedence() {
        assert_eq!(rollup_state(&counts(&[(0, 3)]), 3), "completed");
        assert_eq!(rollup_state(&counts(&[(0, 2), (4, 1)]), 3), "completed");
        assert_eq!(rollup_state(&counts(&[(0, 2), (2, 1)]), 3), "failed");
        assert_eq!(
            rollup_state(&counts(&[(0, 1), (5, 1), (10, 1)]), 3),
            "running"
        );
        assert_eq!(rollup_state(&counts(&[(0, 1), (10, 1)]), 3), "blocked");
        assert_eq!(rollup_state(&counts(&[(7, 2)]), 2), "open");
    }
}
