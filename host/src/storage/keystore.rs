//! The waitpoint HMAC keystore (`ff_waitpoint_hmac`), which only the host touches: the SQL policy
//! refuses every guest statement on the table ([`super::policy`]), so secrets never reach a
//! guest. Guests sign and verify through the `waitpoint-tokens` import (served next to `sql`), which calls
//! [`active_key`] and [`verification_key`]; seeding and rotating run here as host jobs.
//!
//! Statements on the table are prepared without the statement cache: a guest that sent the same
//! SQL text must not be handed a statement the host prepared (the authorizer rules on a statement
//! when it is prepared, not when a cached one runs again).

use rusqlite::{Connection, OptionalExtension, params};

/// A kid and its secret.
pub(crate) struct Key {
    /// The kid.
    pub kid: String,
    /// The secret's bytes.
    pub secret: Vec<u8>,
}

/// Why a kid cannot verify.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum KeyRefusal {
    /// No such kid.
    Unknown,
    /// Retired by a rotation, and its grace period ended.
    Expired,
}

/// What seeding did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Seeded {
    /// The kid was installed as the active one.
    Installed,
    /// The kid was there already; whether with the same secret.
    AlreadyThere { same_secret: bool },
    /// Another kid is active; carries it.
    OtherKidActive(String),
}

/// What a rotation did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Rotated {
    /// The new kid is active; carries the previous active kid.
    Installed { previous_kid: Option<String> },
    /// The kid was installed already with this secret.
    Noop,
    /// The kid was installed already with another secret.
    Conflict,
}

/// The active kid (the most recently rotated active row) and its secret.
pub(crate) fn active_key(connection: &Connection) -> rusqlite::Result<Option<Key>> {
    connection
        .prepare(
            "SELECT kid, secret FROM ff_waitpoint_hmac WHERE active = 1 \
             ORDER BY rotated_at_ms DESC, kid DESC LIMIT 1",
        )?
        .query_row([], |row| {
            Ok(Key {
                kid: row.get(0)?,
                secret: row.get(1)?,
            })
        })
        .optional()
}

/// The secret `kid` verifies with at `now`: any active kid, or a retired one until its
/// `expires_at_ms` (a retired row without one, as upstream writes them, never expires).
pub(crate) fn verification_key(
    connection: &Connection,
    kid: &str,
    now: i64,
) -> rusqlite::Result<Result<Vec<u8>, KeyRefusal>> {
    let row: Option<(Vec<u8>, i64, Option<i64>)> = connection
        .prepare("SELECT secret, active, expires_at_ms FROM ff_waitpoint_hmac WHERE kid = ?1")?
        .query_row([kid], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .optional()?;
    Ok(match row {
        None => Err(KeyRefusal::Unknown),
        Some((_, active, Some(expires_at))) if active == 0 && expires_at <= now => {
            Err(KeyRefusal::Expired)
        }
        Some((secret, _, _)) => Ok(secret),
    })
}

/// Install `kid` as the first active kid (upstream's seed rules, after validation).
pub(crate) fn seed(
    connection: &Connection,
    kid: &str,
    secret: &[u8],
    now: i64,
) -> rusqlite::Result<Seeded> {
    let existing: Option<Vec<u8>> = connection
        .prepare("SELECT secret FROM ff_waitpoint_hmac WHERE kid = ?1")?
        .query_row([kid], |row| row.get(0))
        .optional()?;
    if let Some(stored) = existing {
        return Ok(Seeded::AlreadyThere {
            same_secret: stored == secret,
        });
    }
    if let Some(active) = active_key(connection)? {
        return Ok(Seeded::OtherKidActive(active.kid));
    }
    connection
        .prepare(
            "INSERT INTO ff_waitpoint_hmac (kid, secret, rotated_at_ms, active) VALUES (?1, ?2, ?3, 1)",
        )?
        .execute(params![kid, secret, now])?;
    Ok(Seeded::Installed)
}

/// Make `kid` the active kid; the previous active kids retire and verify for `grace_ms` more.
pub(crate) fn rotate(
    connection: &Connection,
    kid: &str,
    secret: &[u8],
    grace_ms: u64,
    now: i64,
) -> rusqlite::Result<Rotated> {
    let existing: Option<Vec<u8>> = connection
        .prepare("SELECT secret FROM ff_waitpoint_hmac WHERE kid = ?1")?
        .query_row([kid], |row| row.get(0))
        .optional()?;
    match existing {
        Some(stored) if stored == secret => return Ok(Rotated::Noop),
        Some(_) => return Ok(Rotated::Conflict),
        None => {}
    }
    let previous_kid = active_key(connection)?.map(|key| key.kid);
    let expires_at = now.saturating_add(i64::try_from(grace_ms).unwrap_or(i64::MAX));
    connection
        .prepare("UPDATE ff_waitpoint_hmac SET active = 0, expires_at_ms = ?1 WHERE active = 1")?
        .execute([expires_at])?;
    connection
        .prepare(
            "INSERT INTO ff_waitpoint_hmac (kid, secret, rotated_at_ms, active) VALUES (?1, ?2, ?3, 1)",
        )?
        .execute(params![kid, secret, now])?;
    Ok(Rotated::Installed { previous_kid })
}
