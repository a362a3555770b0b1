//! Waitpoint tokens as the logic uses them: signed and verified by the host through the
//! `waitpoint-tokens` import ([`HostTokens`]), behind the small [`Tokens`] trait so that the
//! logic runs natively in unit tests.

use crate::bindings::waitpoint_tokens::{self, SignedToken, TokenError};
use crate::errors::invalid_input;
use crate::types::{EngineError, ValidationError, ValidationKind};

/// Signing and verifying waitpoint tokens; the secrets stay with the implementation.
pub trait Tokens {
    /// Sign `message` with the active kid.
    fn sign(&mut self, message: &str) -> Result<SignedToken, TokenError>;
    /// Check `token` against `kid`'s secret over `message` at `now`.
    fn verify(&mut self, kid: &str, message: &str, token: &str, now: i64)
    -> Result<(), TokenError>;
}

/// The host's `waitpoint-tokens` import.
pub struct HostTokens;

impl Tokens for HostTokens {
    fn sign(&mut self, message: &str) -> Result<SignedToken, TokenError> {
        waitpoint_tokens::sign(message)
    }

    fn verify(
        &mut self,
        kid: &str,
        message: &str,
        token: &str,
        now: i64,
    ) -> Result<(), TokenError> {
        waitpoint_tokens::verify(kid, message, token, now)
    }
}

/// The message a waitpoint's token signs: `<execution id>:<waitpoint id>`, both canonical
/// (upstream's message for canonical ids; an id spelled another way signs the same).
pub fn token_message(execution_id: &str, waitpoint_id: &str) -> String {
    format!("{execution_id}:{waitpoint_id}")
}

/// A signing failure of operation `op` as an engine error.
pub fn sign_error(op: &str, error: TokenError) -> EngineError {
    match error {
        TokenError::KeystoreEmpty => {
            invalid_input(format!("ff_waitpoint_hmac empty — seed a kid before {op}"))
        }
        other => verify_error(other),
    }
}

/// A verification failure as an engine error: upstream's `InvalidInput` details, and
/// `Validation(InvalidToken)` for a kid whose grace period ended.
pub fn verify_error(error: TokenError) -> EngineError {
    match error {
        TokenError::KeystoreEmpty => invalid_input("ff_waitpoint_hmac empty"),
        TokenError::UnknownKid(kid) => invalid_input(format!("kid {kid} missing from keystore")),
        TokenError::Malformed => {
            invalid_input("waitpoint_token verify: token malformed; expected kid:hex shape")
        }
        TokenError::WrongKid(actual) => invalid_input(format!(
            "waitpoint_token verify: token kid mismatch; got {actual}"
        )),
        TokenError::SignatureMismatch => {
            invalid_input("waitpoint_token verify: HMAC signature mismatch")
        }
        TokenError::KidExpired(kid) => EngineError::Validation(ValidationError {
            kind: ValidationKind::InvalidToken,
            detail: format!("token_expired: kid {kid} was retired and its grace period ended"),
        }),
    }
}

/// A stand-in signer for native unit tests: a keyed checksum, not a MAC.
#[cfg(test)]
pub struct FakeTokens {
    /// The active kid; `None` is an empty keystore.
    pub kid: Option<String>,
}

#[cfg(test)]
impl FakeTokens {
    /// A keystore whose active kid is `kid-test`.
    pub fn seeded() -> Self {
        Self {
            kid: Some("kid-test".into()),
        }
    }

    fn digest(kid: &str, message: &str) -> String {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in kid.bytes().chain([b':']).chain(message.bytes()) {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3);
        }
        format!("{hash:016x}{hash:016x}{hash:016x}{hash:016x}")
    }
}

#[cfg(test)]
impl Tokens for FakeTokens {
    fn sign(&mut self, message: &str) -> Result<SignedToken, TokenError> {
        let kid = self.kid.clone().ok_or(TokenError::KeystoreEmpty)?;
        let token = format!("{kid}:{}", Self::digest(&kid, message));
        Ok(SignedToken { kid, token })
    }

    fn verify(
        &mut self,
        kid: &str,
        message: &str,
        token: &str,
        _now: i64,
    ) -> Result<(), TokenError> {
        let (token_kid, digest) = token.split_once(':').ok_or(TokenError::Malformed)?;
        if token_kid != kid {
            return Err(TokenError::WrongKid(token_kid.into()));
        }
        if digest != Self::digest(kid, message) {
            return Err(TokenError::SignatureMismatch);
        }
        Ok(())
    }
}
