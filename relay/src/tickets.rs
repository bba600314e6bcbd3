//! Tunnel tickets: short-lived, single-use bearer tokens bound to one user and one workstation.
//!
//! A WebSocket cannot carry the CSRF header, so the browser first asks for a ticket over the
//! CSRF-protected JSON API and then presents it once when opening the tunnel. Only the SHA-256
//! of a ticket is stored; redemption is a single atomic UPDATE so that a ticket works at most once.

use crate::auth::{random_token, sha256_hex};
use crate::store::{self, Store, StoreError};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use std::time::Duration;

/// Who a redeemed ticket was issued to and for which workstation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Redeemed {
    pub user_id: i64,
    pub workstation_id: i64,
}

/// Creates a ticket for `user_id` → `workstation_id`, valid for `ttl`. The caller has checked the
/// assignment. The returned string is the only copy of the secret.
pub async fn issue(
    store: &Store,
    user_id: i64,
    workstation_id: i64,
    ttl: Duration,
) -> Result<String, StoreError> {
    let ticket = random_token();
    store
        .insert_ticket(
            &sha256_hex(ticket.as_bytes()),
            user_id,
            workstation_id,
            store::unix_ms_after(ttl),
        )
        .await?;
    Ok(ticket)
}

/// True if `ticket` has the shape of one we issue (32 bytes, base64url without padding).
pub fn is_well_formed(ticket: &str) -> bool {
    ticket.len() == 43
        && URL_SAFE_NO_PAD
            .decode(ticket)
            .is_ok_and(|bytes| bytes.len() == 32)
}

/// Redeems a ticket: `Some` exactly once for a well-formed, known, unexpired, unused ticket.
pub async fn redeem(store: &Store, ticket: &str) -> Result<Option<Redeemed>, StoreError> {
    if !is_well_formed(ticket) {
        return Ok(None);
    }
    let consumed = store
        .consume_ticket(&sha256_hex(ticket.as_bytes()), store::unix_ms())
        .await?;
    Ok(consumed.map(|(user_id, workstation_id)| Redeemed {
        user_id,
        workstation_id,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape() {
        assert!(is_well_formed(&random_token()));
        assert!(!is_well_formed(""));
        assert!(!is_well_formed("garbage"));
        assert!(!is_well_formed(&"A".repeat(44)));
        assert!(!is_well_formed(&"!".repeat(43)));
    }
}
