//! HS256 JWTs that Dovecot's oauth2 passdb validates locally (`introspection_mode = local`).
//!
//! Dovecot looks the HMAC key up in `local_validation_key_dict` under
//! `<azp>/<alg>/<kid>`; our tokens carry no `azp` (so Dovecot uses `default`) and
//! `kid = default`, so the key lives at `KEYDIR/default/HS256/default`, base64-encoded.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};

/// HMAC-SHA256 (RFC 2104) of `message` under `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block_key = [0u8; BLOCK];
    if key.len() > BLOCK {
        block_key[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block_key[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block_key.map(|b| b ^ 0x36));
    inner.update(message);
    let inner = inner.finalize();
    let mut outer = Sha256::new();
    outer.update(block_key.map(|b| b ^ 0x5c));
    outer.update(inner);
    outer.finalize().into()
}

/// The content of the key file Dovecot reads: the secret, base64-encoded.
pub(super) fn key_file_content(key: &[u8]) -> String {
    STANDARD.encode(key)
}

/// A compact HS256 JWT with `sub`, `iat` and `exp` (Unix seconds).
pub(super) fn hs256_jwt(key: &[u8], sub: &str, iat: i64, exp: i64) -> String {
    let header = r#"{"alg":"HS256","typ":"JWT","kid":"default"}"#;
    let payload = format!(r#"{{"sub":"{}","iat":{iat},"exp":{exp}}}"#, json_escape(sub));
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let signature = hmac_sha256(key, signing_input.as_bytes());
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

fn json_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}
