//! The crate's one error type.
//!
//! Every failure carries an [`ErrorKind`] that callers branch on (retry, ask the user for a
//! new password, give up on a folder, ...) and a message written for the person who has to
//! act on it. Messages never contain a password or a token: build them from account names,
//! hosts and server text only.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

/// What went wrong, as a caller needs to know it to decide what to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Network trouble, a timeout, a server that said BYE, is busy or in use: retry later
    /// (see [`Error::retry_after`]).
    Transient,
    /// The server rejected the credentials: wrong or expired password, an app password or
    /// authorization code is needed, or the token expired. Retrying the same secret is futile.
    Auth,
    /// The source server refused something the migration needs: IMAP/POP disabled, a folder
    /// locked, a fetch range limit, a missing capability.
    SourceRefused,
    /// The target refused to store something: over quota, name rejected, disk full.
    TargetRefused,
    /// The caller passed something unusable: a bad URL, a malformed roster row, a bad option.
    InvalidInput,
    /// The peer broke the protocol: unparsable or oversized responses, unexpected state.
    Protocol,
    /// TLS failed: certificate not trusted, handshake error, STARTTLS not offered.
    Tls,
    /// A local resource failed: the file system of a local target, a state file.
    Io,
}

impl ErrorKind {
    /// A short lowercase name, stable for logs and exports.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Transient => "transient",
            ErrorKind::Auth => "auth",
            ErrorKind::SourceRefused => "source_refused",
            ErrorKind::TargetRefused => "target_refused",
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Tls => "tls",
            ErrorKind::Io => "io",
        }
    }

    /// Whether trying the same thing again later may succeed.
    pub fn is_transient(self) -> bool {
        matches!(self, ErrorKind::Transient)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of every fallible operation in this crate.
///
/// ```
/// use mailmigrate::{Error, ErrorKind};
/// let err = Error::new(ErrorKind::Auth, "imap.example.com rejected the password of alice@example.com");
/// assert_eq!(err.kind(), ErrorKind::Auth);
/// assert!(!err.kind().is_transient());
/// ```
#[derive(thiserror::Error)]
#[error("{message}")]
pub struct Error {
    kind: ErrorKind,
    message: Cow<'static, str>,
    retry_after: Option<Duration>,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    /// An error of `kind` whose message says what happened and what to do.
    pub fn new(kind: ErrorKind, message: impl Into<Cow<'static, str>>) -> Self {
        Error {
            kind,
            message: message.into(),
            retry_after: None,
            source: None,
        }
    }

    /// Attaches the underlying cause (shown by `source()`, not in the message).
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// Attaches how long the peer asked us to wait before retrying.
    pub fn with_retry_after(mut self, delay: Duration) -> Self {
        self.retry_after = Some(delay);
        self
    }

    /// Prefixes the message with context, e.g. the account or folder concerned.
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = Cow::Owned(format!("{context}: {}", self.message));
        self
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message alone (also what `Display` prints).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// How long the peer asked us to wait, when it said (POP3 `[LOGIN-DELAY n]`, throttling).
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// A protocol error: the peer sent something we cannot accept.
    pub(crate) fn protocol(message: impl Into<Cow<'static, str>>) -> Self {
        Error::new(ErrorKind::Protocol, message)
    }

    /// A transient error for an I/O failure on the connection to `peer`.
    pub(crate) fn network(peer: &str, err: std::io::Error) -> Self {
        Error::new(
            ErrorKind::Transient,
            format!("connection to {peer} failed: {err}; check the host and port, then retry"),
        )
        .with_source(err)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind).field("message", &self.message);
        if let Some(delay) = self.retry_after {
            d.field("retry_after", &delay);
        }
        if let Some(source) = &self.source {
            d.field("source", &format_args!("{source}"));
        }
        d.finish()
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_prefixes_the_message_and_keeps_the_kind() {
        let err =
            Error::new(ErrorKind::SourceRefused, "folder is locked").context("alice@example.com/Projects");
        assert_eq!(err.kind(), ErrorKind::SourceRefused);
        assert_eq!(err.to_string(), "alice@example.com/Projects: folder is locked");
    }

    #[test]
    fn network_errors_are_transient_and_keep_their_source() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        let err = Error::network("imap.example.com:993", io);
        assert!(err.kind().is_transient());
        assert!(std::error::Error::source(&err).is_some());
        assert!(err.to_string().contains("imap.example.com:993"));
    }
}
