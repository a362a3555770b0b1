//! The summary document of a stream: JSON merge patches (RFC 7396, SQLite's `json_patch`)
//! applied in order, with ff-core's `SUMMARY_NULL_SENTINEL` rewritten to JSON `null` anywhere in
//! the merged document (a plain `null` in a patch deletes the key). A patch must be a JSON
//! object. The document is stored compact, in the order SQLite's JSON functions keep keys.

use super::not_an_object;
use crate::bindings::streams::SummaryDocument;
use crate::db::{Db, DbExt, int, text};
use crate::errors::corruption;
use crate::sql::Value;
use crate::types::EngineError;

/// ff-core's `SUMMARY_NULL_SENTINEL`: a patch value that sets JSON `null`.
pub const NULL_SENTINEL: &str = "__ff_null__";

/// How many sentinel values one merge rewrites at most (a patch larger than this keeps the
/// rest as text; the frame payload limit makes more than this unlikely).
const MAX_SENTINEL_REWRITES: usize = 1024;

/// The payload, checked to be a JSON object (`Validation { InvalidInput }` otherwise).
pub fn checked_patch(db: &mut impl Db, payload: &str) -> Result<String, EngineError> {
    let is_object = db
        .first_row(
            "SELECT CASE WHEN json_valid(?1) THEN json_type(?1) = 'object' ELSE 0 END",
            &[text(payload)],
        )?
        .and_then(|row| row.integer(0))
        .unwrap_or(0);
    if is_object != 1 {
        return Err(not_an_object());
    }
    Ok(payload.to_owned())
}

/// Merge `patch` into the stream's document (creating it at version 1); returns the new
/// version.
pub fn apply(db: &mut impl Db, key: &[Value; 3], patch: &str, ts: i64) -> Result<u64, EngineError> {
    let stored = db.first_row(
        "SELECT document_json, version FROM ff_stream_summary \
         WHERE partition_key = ?1 AND execution_id = ?2 AND attempt_index = ?3",
        key,
    )?;
    let (document, version) = match stored {
        Some(row) => (row.text_or_empty(0), row.integer(1).unwrap_or(0)),
        None => ("{}".to_owned(), 0),
    };
    let merged = db
        .first_row(
            "SELECT CASE WHEN json_valid(?1) THEN json_patch(?1, ?2) END",
            &[text(document), text(patch)],
        )?
        .and_then(|row| row.text(0))
        .ok_or_else(|| corruption("corrupt summary document in ff_stream_summary"))?;
    let merged = rewrite_sentinels(db, merged)?;
    let new_version = version.saturating_add(1);
    let mut params = Vec::from(key.clone());
    params.extend([text(merged), int(new_version), int(ts)]);
    db.run(
        "INSERT INTO ff_stream_summary (partition_key, execution_id, attempt_index, document_json, \
             version, patch_kind, last_updated_ms, first_applied_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, 'json-merge-patch', ?6, ?6) \
         ON CONFLICT (partition_key, execution_id, attempt_index) DO UPDATE SET \
             document_json = excluded.document_json, version = excluded.version, \
             patch_kind = excluded.patch_kind, last_updated_ms = excluded.last_updated_ms",
        &params,
    )?;
    Ok(u64::try_from(new_version).unwrap_or(0))
}

/// `document` with every string value equal to [`NULL_SENTINEL`] replaced by `null`.
fn rewrite_sentinels(db: &mut impl Db, mut document: String) -> Result<String, EngineError> {
    let paths: Vec<String> = db
        .query(
            "SELECT fullkey FROM json_tree(?1) WHERE type = 'text' AND atom = ?2 LIMIT ?3",
            &[
                text(document.clone()),
                text(NULL_SENTINEL),
                int(MAX_SENTINEL_REWRITES as i64),
            ],
        )
        .map_err(crate::errors::storage)?
        .into_iter()
        .filter_map(|row| crate::db::Row(row).text(0))
        .collect();
    for path in paths {
        if let Some(rewritten) = db
            .first_row(
                "SELECT json_set(?1, ?2, json('null'))",
                &[text(document.clone()), text(path)],
            )?
            .and_then(|row| row.text(0))
        {
            document = rewritten;
        }
    }
    Ok(document)
}

/// The stored document, or `None`; stored text that is not JSON is `Validation { Corruption }`.
pub fn read(db: &mut impl Db, key: &[Value; 3]) -> Result<Option<SummaryDocument>, EngineError> {
    let Some(row) = db.first_row(
        "SELECT CASE WHEN json_valid(document_json) THEN json(document_json) END, version, last_updated_ms, first_applied_ms, \
             json_valid(document_json) FROM ff_stream_summary \
         WHERE partition_key = ?1 AND execution_id = ?2 AND attempt_index = ?3",
        key,
    )?
    else {
        return Ok(None);
    };
    if row.integer(4) != Some(1) {
        return Err(corruption(
            "corrupt summary document in ff_stream_summary: not JSON",
        ));
    }
    let non_negative = |value: Option<i64>| value.unwrap_or(0).max(0);
    Ok(Some(SummaryDocument {
        document_json: row.text_or_empty(0),
        version: u64::try_from(non_negative(row.integer(1))).unwrap_or(0),
        last_updated_ms: non_negative(row.integer(2)),
        first_applied_ms: non_negative(row.integer(3)),
    }))
}
