//! The error of a failed `sql` import call, before the `sql` layer turns it into the guest's
//! `sql.error` value. `bindgen!` names it as the interface's trappable error type: each host
//! function returns it, and only [`SqlError::Unbound`] (a host bug) becomes a trap.

/// A failed `sql` call, before it is shown to the guest.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SqlError {
    /// SQLite refused or failed the statement.
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// The host's policy refused the statement.
    #[error("statement denied: {0}")]
    Denied(String),
    /// Packed parameters that do not follow the format (see `sql.wit`'s `execute-packed`).
    #[error("malformed packed parameters: {0}")]
    Malformed(String),
    /// The result exceeded the operation's query limits.
    #[error("query result exceeds {0}")]
    TooLarge(String),
    /// SQLite ended the operation's transaction under an earlier statement (an interrupt at the
    /// deadline, or a `FULL`, `NOMEM`, `IOERR`, `BUSY` failure that rolls the transaction back):
    /// a further statement would run outside the host's transaction, in autocommit mode, so it
    /// is refused (the guest sees `denied`).
    #[error(
        "statement denied: the operation's transaction was ended by SQLite after an earlier \
         statement failed; nothing more may run in this operation"
    )]
    TransactionEnded,
    /// No connection is bound: the guest called outside an operation. A host bug; traps.
    #[error("no database connection is bound to this guest call")]
    Unbound,
}
