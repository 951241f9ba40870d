//! Sans-IO POP3: framing, parsing and command encoding, with no I/O and no async.
//!
//! The client knows whether the response it waits for is one line or a multi-line block
//! (RFC 1939 decides it per command), so decoding is split the same way:
//!
//! - [`decode_status`] cuts one status line (`+OK`, `-ERR`, or a SASL `+` continuation) from
//!   the front of a read buffer and parses it into a [`StatusLine`], with its RFC 2449
//!   response code ([`RespCode`]).
//! - [`BodyDecoder`] turns the multi-line block of `RETR` / `TOP` into dot-unstuffed chunks of
//!   the message, split from the read buffer rather than copied, until the terminating `.`
//!   line. Lines may be of any length (real mail has megabyte lines); the whole message is
//!   bounded by [`Limits::max_message_size`].
//! - [`ListingDecoder`] yields the complete, unstuffed lines of `CAPA`, `LIST` and `UIDL`,
//!   each bounded by [`Limits::max_line_length`], at most [`Limits::max_listing_lines`] of them.
//!
//! All three return `Ok(None)` / [`BodyEvent::NeedMore`] when the buffer holds too little,
//! never an error, so the terminator may be split across reads at any byte. Bare-LF line
//! ends are accepted wherever CRLF is.
//!
//! [`Command`] encodes what the client sends; it has no `DELE`, because a migration never
//! deletes mail from its source.
//!
//! ```
//! use bytes::BytesMut;
//! use mailmigrate::pop3::codec::{BodyDecoder, BodyEvent, Limits, Status, decode_status};
//!
//! let limits = Limits::default();
//! let mut buf = BytesMut::from(&b"+OK 120 octets\r\nSubject: hi\r\n\r\n..dot\r\n.\r\n"[..]);
//! let status = decode_status(&mut buf, &limits).unwrap().unwrap();
//! assert_eq!(status.status, Status::Ok);
//! let mut body = BodyDecoder::new(&limits);
//! let mut message = Vec::new();
//! while let BodyEvent::Data(chunk) = body.decode(&mut buf).unwrap() {
//!     message.extend_from_slice(&chunk);
//! }
//! assert_eq!(message, b"Subject: hi\r\n\r\n.dot\r\n");
//! ```

mod command;
mod listing;
mod multiline;
mod status;

pub use command::Command;
pub use listing::{Capabilities, Capability, ListEntry, Stat, UidlEntry, parse_list, parse_stat, parse_uidl};
pub use multiline::{BodyDecoder, BodyEvent, ListingDecoder};
pub(crate) use status::trim_line_end;
pub use status::{RespCode, Status, StatusLine, apop_timestamp, decode_status};

use crate::error::{Error, ErrorKind};

/// Bounds on what a server may make the client hold in memory.
///
/// The defaults are generous for real mail and small enough that a hostile server cannot
/// exhaust memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest status line or listing line (`CAPA`, `LIST`, `UIDL`), CRLF included.
    /// RFC 2449 allows 512 octets; the default, 8 KiB, tolerates verbose servers.
    pub max_line_length: usize,
    /// Largest message (or `TOP` block) after dot-unstuffing. Default 256 MiB.
    pub max_message_size: usize,
    /// Most lines in one `LIST` / `UIDL` / `CAPA` listing. Default 2,000,000.
    pub max_listing_lines: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_line_length: 8 * 1024,
            max_message_size: 256 * 1024 * 1024,
            max_listing_lines: 2_000_000,
        }
    }
}

/// What the codec refuses, from the server (oversized or malformed input) or from the caller
/// (a command argument that would break the line-based protocol).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// A status or listing line longer than [`Limits::max_line_length`].
    #[error("the server sent a line longer than {limit} bytes")]
    LineTooLong {
        /// The limit that was exceeded.
        limit: usize,
    },
    /// A message larger than [`Limits::max_message_size`].
    #[error("the server sent a message larger than {limit} bytes; raise the message size limit to copy it")]
    MessageTooLarge {
        /// The limit that was exceeded.
        limit: usize,
    },
    /// A listing with more than [`Limits::max_listing_lines`] lines.
    #[error("the server sent a listing of more than {limit} lines")]
    TooManyLines {
        /// The limit that was exceeded.
        limit: usize,
    },
    /// A line that is not a POP3 status line.
    #[error("the server sent {line:?} where a POP3 status line (+OK or -ERR) was expected")]
    BadStatusLine {
        /// The line, shortened and made printable.
        line: String,
    },
    /// A response whose content does not parse (e.g. a `STAT` reply without numbers).
    #[error("the server sent an unparsable {what} response: {line:?}")]
    BadResponse {
        /// Which response it was.
        what: &'static str,
        /// The line, shortened and made printable.
        line: String,
    },
    /// A command argument that is empty or holds CR, LF or NUL (it would end the command
    /// early or inject another one), or a line too long to send.
    #[error("cannot send {what}: {problem}")]
    InvalidArgument {
        /// Which argument.
        what: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
}

impl From<CodecError> for Error {
    fn from(err: CodecError) -> Self {
        let kind = match err {
            CodecError::InvalidArgument { .. } => ErrorKind::InvalidInput,
            _ => ErrorKind::Protocol,
        };
        Error::new(kind, err.to_string()).with_source(err)
    }
}

/// A server line made safe to show in an error: lossy UTF-8, control characters replaced,
/// at most 200 characters.
pub(crate) fn printable(line: &[u8]) -> String {
    const MAX: usize = 200;
    let text = String::from_utf8_lossy(line);
    let mut out: String = text
        .trim_end_matches(['\r', '\n'])
        .chars()
        .take(MAX)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if text.chars().count() > MAX {
        out.push('…');
    }
    out
}
