//! The `flowfabric:backend/waitpoint-tokens` interface the guest imports: waitpoint tokens
//! signed and verified with the keystore's secrets (`crate::storage::keystore`), which the
//! guest can neither read nor receive. Tokens keep upstream's format (`ff_core::crypto::hmac`):
//! `<kid>:<hex HMAC-SHA256 over "<kid>:<message>">`.

use ff_core::crypto::hmac::{HmacVerifyError, hmac_sign, hmac_verify};

use super::SqlAccess;
use crate::bindings::{SqlError, waitpoint_tokens};
use crate::storage::keystore::{self, KeyRefusal};

use waitpoint_tokens::{SignedToken, TokenError};

impl SqlAccess {
    /// Run `work` on the bound connection with the host's SQL rights (the keystore is refused
    /// to the guest's own statements).
    fn with_keystore<T>(
        &self,
        work: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T>,
    ) -> wasmtime::Result<T> {
        let connection = self
            .connection()
            .map_err(|error| wasmtime::format_err!("{error}"))?;
        let policy = self
            .policy
            .as_ref()
            .ok_or_else(|| wasmtime::format_err!("{}", SqlError::Unbound))?;
        policy
            .as_host(|| work(connection))
            .map_err(|error| wasmtime::format_err!("waitpoint keystore: {error}"))
    }
}

impl waitpoint_tokens::Host for SqlAccess {
    fn sign(&mut self, message: String) -> wasmtime::Result<Result<SignedToken, TokenError>> {
        Ok(match self.with_keystore(keystore::active_key)? {
            None => Err(TokenError::KeystoreEmpty),
            Some(key) => Ok(SignedToken {
                token: hmac_sign(&key.secret, &key.kid, message.as_bytes()),
                kid: key.kid,
            }),
        })
    }

    fn verify(
        &mut self,
        kid: String,
        message: String,
        token: String,
        now: i64,
    ) -> wasmtime::Result<Result<(), TokenError>> {
        // The operation's `now` may come from the caller: a grace period must not be extended by
        // a clock set back, so the later of that and the host's clock counts.
        let now = now.max(ff_core::types::TimestampMs::now().0);
        let secret = match self.with_keystore(|c| keystore::verification_key(c, &kid, now))? {
            Ok(secret) => secret,
            Err(KeyRefusal::Unknown) => return Ok(Err(TokenError::UnknownKid(kid))),
            Err(KeyRefusal::Expired) => return Ok(Err(TokenError::KidExpired(kid))),
        };
        Ok(
            hmac_verify(&secret, &kid, message.as_bytes(), &token).map_err(|error| match error {
                HmacVerifyError::Malformed => TokenError::Malformed,
                HmacVerifyError::WrongKid { actual, .. } => TokenError::WrongKid(actual),
                HmacVerifyError::SignatureMismatch => TokenError::SignatureMismatch,
            }),
        )
    }
}
