//! Test support shared by every integration test (and benches): a private Dovecot on
//! loopback, test users, fast mailbox seeding and deterministic sample messages.
//!
//! ```ignore
//! mod support;
//! use support::{Proto, SeedMessage, dovecot, sample_message};
//!
//! let d = dovecot(); // one instance per test binary, started on first use
//! let user = d.unique_user("copy");
//! d.seed(&user, "INBOX", (0..100).map(|i| SeedMessage::new(sample_message(i, 2_000))));
//! let server = d.server(Proto::Imap, mailmigrate::net::Security::Tls);
//! ```
//!
//! A bench includes it with `#[path = "../tests/support/mod.rs"] mod support;`, so nothing
//! here may depend on `cfg(test)` or test-only macros.
//!
//! What the instance looks like (see [`Dovecot`] for the full API):
//! - listens on 127.0.0.1 only: IMAP, IMAPS, POP3, POP3S on free ports picked at run time;
//! - TLS with a leaf for `localhost` and `127.0.0.1` signed by a per-run test CA
//!   ([`Dovecot::ca_pem`]); STARTTLS/STLS on the plaintext ports;
//! - users in per-user passwd-files (`{PLAIN.B64}` so any password works), maildirs in
//!   `LAYOUT=fs` with `/` as separator, SPECIAL-USE Sent, Drafts, Trash, Junk, Archive
//!   (auto-subscribed, so LIST always shows them);
//! - XOAUTH2/OAUTHBEARER through Dovecot's oauth2 passdb validating HS256 JWTs locally
//!   ([`Dovecot::oauth2_token`]); passwords keep working beside it;
//! - no auth penalty, so failed logins in one test don't slow every later login on the
//!   instance (a failed login still takes ~0.5 s: Dovecot answers failures in batches).

// Every test binary uses a different subset of these helpers; without this each binary
// would warn about the ones it does not call.
#![allow(dead_code, unused_imports)]

mod certs;
mod dovecot;
mod maildir;
mod messages;
mod oauth2;

pub use dovecot::{Dovecot, HOST, Proto, TestUser, dovecot};
pub use maildir::SeedMessage;
pub use messages::{sample_date, sample_message, sha256_hex};
pub use oauth2::hmac_sha256;
