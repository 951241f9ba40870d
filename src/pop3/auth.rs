//! What the login commands carry: the APOP digest and the SASL initial responses.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use md5::{Digest, Md5};

use crate::error::{Error, ErrorKind, Result};
use crate::secret::Secret;

/// How to log in to a POP3 server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum AuthMethod {
    /// Pick from the credentials and `CAPA`: XOAUTH2 for OAuth2 tokens; for passwords
    /// `AUTH PLAIN` when `SASL PLAIN` is announced, else `USER`/`PASS` when `USER` is
    /// announced or the server has no `CAPA`, else APOP when the greeting offers it.
    #[default]
    Auto,
    /// `USER` then `PASS` (RFC 1939).
    UserPass,
    /// `APOP` (RFC 1939 section 7): the password never crosses the wire, but MD5 of it does;
    /// the server must have put a timestamp in its greeting.
    Apop,
    /// `AUTH PLAIN` (RFC 5034, RFC 4616).
    Plain,
    /// `AUTH XOAUTH2` with an OAuth2 bearer token (Gmail, Outlook).
    XOAuth2,
}

/// The APOP digest: lowercase hex MD5 of the greeting timestamp followed by the password.
pub(crate) fn apop_digest(timestamp: &[u8], password: &Secret) -> String {
    let mut md5 = Md5::new();
    md5.update(timestamp);
    md5.update(password.expose().as_bytes());
    md5.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The base64 SASL PLAIN response: no authorization identity, then user and password.
pub(crate) fn plain_response(user: &str, password: &Secret) -> Result<Secret> {
    if user.contains('\0') || password.expose().contains('\0') {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "the user name or password contains a NUL byte, which AUTH PLAIN cannot carry",
        ));
    }
    let raw = format!("\0{user}\0{}", password.expose());
    Ok(Secret::new(STANDARD.encode(raw)))
}

/// The base64 XOAUTH2 response (Google and Microsoft's format).
pub(crate) fn xoauth2_response(user: &str, token: &Secret) -> Result<Secret> {
    if user.contains('\x01') || token.expose().contains('\x01') {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "the user name or token contains a 0x01 byte, which XOAUTH2 cannot carry",
        ));
    }
    let raw = format!("user={user}\x01auth=Bearer {}\x01\x01", token.expose());
    Ok(Secret::new(STANDARD.encode(raw)))
}

/// A server's SASL challenge made readable (XOAUTH2 failures carry base64 JSON).
pub(crate) fn decode_challenge(challenge: &[u8]) -> Option<String> {
    let raw = STANDARD.decode(challenge.trim_ascii()).ok()?;
    let text = crate::pop3::codec::printable(&raw);
    (!text.is_empty()).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apop_digest_matches_rfc_1939_example() {
        let digest = apop_digest(b"<1896.697170952@dbc.mtview.ca.us>", &Secret::new("tanstaaf"));
        assert_eq!(digest, "c4c9334bac560ecc979e58001b3e22fb");
    }

    #[test]
    fn sasl_responses_are_base64_of_the_standard_layouts() {
        let plain = plain_response("tim", &Secret::new("tanstaaftanstaaf")).unwrap();
        assert_eq!(plain.expose(), "AHRpbQB0YW5zdGFhZnRhbnN0YWFm");
        let xoauth = xoauth2_response(
            "someuser@example.com",
            &Secret::new("ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg"),
        )
        .unwrap();
        assert_eq!(
            xoauth.expose(),
            "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ=="
        );
        assert!(plain_response("a\0b", &Secret::new("x")).is_err());
        assert!(xoauth2_response("a", &Secret::new("x\x01")).is_err());
    }

    #[test]
    fn challenges_decode_when_they_are_base64() {
        assert_eq!(
            decode_challenge(b"eyJzdGF0dXMiOiI0MDEifQ==").as_deref(),
            Some(r#"{"status":"401"}"#)
        );
        assert_eq!(decode_challenge(b"not base64!"), None);
        assert_eq!(decode_challenge(b""), None);
    }
}
