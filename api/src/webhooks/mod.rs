//! Callbacks from outside services, each verified by its signature over the raw body
//! before anything is parsed: a bad or missing signature is 401 and writes nothing.
//!
//! - [`payments`]: the payment provider's `POST /webhooks/payments`.

pub mod payments;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Whether `signature` (hex, optionally `sha256=`-prefixed) is the HMAC-SHA256 of `body`
/// under `secret`, compared in constant time. An empty secret verifies nothing.
pub fn signed(secret: &[u8], body: &[u8], signature: &str) -> bool {
    let hex_digest = signature.strip_prefix("sha256=").unwrap_or(signature);
    match (secret.is_empty(), hex::decode(hex_digest)) {
        (false, Ok(given)) => mac(secret, body).is_some_and(|m| m.verify_slice(&given).is_ok()),
        _ => false,
    }
}

/// The signature [`signed`] accepts for `body` under `secret` (for senders and tests).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let digest = mac(secret, body).map(|m| m.finalize().into_bytes().to_vec());
    format!("sha256={}", hex::encode(digest.unwrap_or_default()))
}

fn mac(secret: &[u8], body: &[u8]) -> Option<Hmac<Sha256>> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).ok()?;
    mac.update(body);
    Some(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_secrets_signature_over_the_exact_body_verifies() {
        let signature = sign(b"secret", b"{\"a\":1}");
        assert!(signed(b"secret", b"{\"a\":1}", &signature));
        assert!(signed(
            b"secret",
            b"{\"a\":1}",
            &signature["sha256=".len()..]
        ));
        assert!(!signed(b"secret", b"{\"a\":2}", &signature));
        assert!(!signed(b"other", b"{\"a\":1}", &signature));
        assert!(!signed(b"", b"{\"a\":1}", &sign(b"", b"{\"a\":1}")));
        assert!(!signed(b"secret", b"{\"a\":1}", "sha256=zz"));
    }
}
