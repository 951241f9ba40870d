//! The POP3 client (RFC 1939, RFC 2449): moves the inbox of sources whose IMAP is off.
//!
//! [`codec`] is sans-IO: it turns bytes into status lines, listings and dot-unstuffed
//! messages, and commands into bytes. [`Session`] drives it over any futures-io stream:
//! plaintext, implicit TLS (port 995) or STLS (which must be offered, or the connection
//! fails), logging in with `USER`/`PASS`, APOP, `AUTH PLAIN` or `AUTH XOAUTH2`.
//!
//! A migration only reads: the session has no `DELE`, so nothing is ever deleted from the
//! source. Messages are identified across sessions by `UIDL`; a server without `UIDL` still
//! works, because [`Session::unique_ids`] then fingerprints each message's header section
//! (read with `TOP n 0`) and size instead (see [`header_fingerprint`]).
//!
//! [`check`] (or [`Session::check_summary`] on an open session) is a login check:
//! capabilities, message count and total size.

mod auth;
pub mod codec;
mod session;

pub use auth::AuthMethod;
pub use codec::{Capabilities, Limits, ListEntry, Stat, UidlEntry};
pub use session::{CheckSummary, MessageReader, Session, header_fingerprint};

#[cfg(feature = "tokio")]
use std::sync::Arc;

/// Connects to `server`, logs in, reports a [`CheckSummary`] and says `QUIT`.
///
/// ```no_run
/// # async fn run() -> mailmigrate::Result<()> {
/// use std::sync::Arc;
/// use mailmigrate::Credentials;
/// use mailmigrate::net::{Security, ServerConfig, TokioTimer};
///
/// let server = ServerConfig::new("pop.example.com", 995, Security::Tls);
/// let creds = Credentials::password("alice@example.com", "app-password");
/// let summary = mailmigrate::pop3::check(&server, &creds, Arc::new(TokioTimer)).await?;
/// println!("{summary}");
/// # Ok(()) }
/// ```
#[cfg(feature = "tokio")]
pub async fn check(
    server: &crate::net::ServerConfig,
    credentials: &crate::Credentials,
    timer: Arc<dyn crate::net::Timer>,
) -> crate::Result<CheckSummary> {
    let mut session = Session::connect(server, timer).await?;
    session.login(credentials).await?;
    let summary = session.check_summary().await?;
    session.quit().await?;
    Ok(summary)
}
