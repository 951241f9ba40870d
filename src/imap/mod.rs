//! The IMAP client (client side of RFC 3501 and RFC 9051).
//!
//! [`codec`] is sans-IO: it turns bytes into responses and commands into bytes.
//! [`Session`] drives it over any futures-io stream: plaintext, implicit TLS or STARTTLS,
//! login (LOGIN, AUTHENTICATE PLAIN, XOAUTH2), the folder and message commands a migration
//! needs, streamed `UID FETCH`, pipelined `APPEND`, IDLE, and every unsolicited response
//! queued as an [`Unsolicited`] event.

pub mod codec;
mod commands;
mod failure;
mod fetch;
mod idle;
mod session;
mod unsolicited;

pub use codec::AppendMessage;
pub use commands::{AppendUid, AuthMechanism};
pub use failure::CommandFailed;
pub use fetch::{FetchItems, FetchStream, FetchedMessage};
pub use idle::{Idle, IdleEvent};
#[cfg(feature = "tokio")]
pub use session::connect;
pub use session::{Greeting, Mailbox, MultiAppendLimits, Session, SessionOptions, SessionState};
pub use unsolicited::Unsolicited;
