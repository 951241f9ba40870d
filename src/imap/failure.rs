//! Turning a server's tagged `NO`/`BAD` into an [`Error`] a caller can act on.

use std::fmt;
use std::time::Duration;

use crate::imap::codec::{Code, KnownCode, Status, StatusResponse};
use crate::{Error, ErrorKind};

/// The server's answer to a command that failed, attached as the [`std::error::Error::source`]
/// of the [`Error`] the session returns, for callers that need the response code (e.g.
/// `[TRYCREATE]` after an APPEND, `[ALREADYEXISTS]` after a CREATE).
///
/// ```
/// # use mailmigrate::imap::CommandFailed;
/// # fn handle(err: &mailmigrate::Error) {
/// if let Some(failed) = CommandFailed::of(err) {
///     println!("{} said {:?} {:?}", failed.command, failed.status, failed.code);
/// }
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandFailed {
    /// The command, e.g. `SELECT`.
    pub command: &'static str,
    /// `NO` or `BAD` (or `BYE`).
    pub status: Status,
    /// The response code, if the server sent one.
    pub code: Option<Code>,
    /// The server's text.
    pub text: String,
}

impl CommandFailed {
    /// The server response behind `err`, if `err` came from a failed command.
    pub fn of(err: &Error) -> Option<&CommandFailed> {
        std::error::Error::source(err).and_then(|s| s.downcast_ref::<CommandFailed>())
    }

    /// How long the server asked us to wait, when it said so in words: Office 365 answers
    /// "Request is throttled. Suggested Backoff Time: 299961 milliseconds".
    ///
    /// ```
    /// use std::time::Duration;
    /// use mailmigrate::imap::CommandFailed;
    /// use mailmigrate::imap::codec::Status;
    /// let answer = CommandFailed {
    ///     command: "UID FETCH",
    ///     status: Status::No,
    ///     code: None,
    ///     text: "Request is throttled. Suggested Backoff Time: 299961 milliseconds".into(),
    /// };
    /// assert_eq!(answer.suggested_backoff(), Some(Duration::from_millis(299_961)));
    /// ```
    pub fn suggested_backoff(&self) -> Option<Duration> {
        const PHRASE: &str = "suggested backoff time";
        let lower = self.text.to_ascii_lowercase();
        let rest = &lower[lower.find(PHRASE)? + PHRASE.len()..];
        let rest = rest.trim_start_matches([':', ' ']);
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        // Too many digits to be a real wait: saturate rather than fail.
        let n: u64 = rest[..digits].parse().unwrap_or(u64::MAX);
        let unit = rest[digits..].trim_start();
        Some(if unit.starts_with('s') {
            Duration::from_secs(n)
        } else {
            Duration::from_millis(n)
        })
    }

    /// Whether the server sent the RFC 5530 code `code`.
    pub fn has_code(&self, code: KnownCode) -> bool {
        matches!(self.code, Some(Code::Known(c)) if c == code)
    }
}

impl fmt::Display for CommandFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} answered {:?}", self.command, self.status)?;
        if let Some(code) = &self.code {
            write!(f, " [{}]", code_name(code))?;
        }
        write!(f, " {}", self.text)
    }
}

impl std::error::Error for CommandFailed {}

/// Whether the command changes the side being written (a migration target) rather than read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// Reading: LIST, SELECT, FETCH, ... A plain `NO` is the source refusing.
    Read,
    /// Writing: CREATE, APPEND, SUBSCRIBE. A plain `NO` is the target refusing.
    Write,
}

/// The short name of a response code, for messages.
pub(crate) fn code_name(code: &Code) -> String {
    match code {
        Code::Alert => "ALERT".into(),
        Code::Parse => "PARSE".into(),
        Code::ReadOnly => "READ-ONLY".into(),
        Code::ReadWrite => "READ-WRITE".into(),
        Code::TryCreate => "TRYCREATE".into(),
        Code::UidNotSticky => "UIDNOTSTICKY".into(),
        Code::NoModSeq => "NOMODSEQ".into(),
        Code::Closed => "CLOSED".into(),
        Code::Capability(_) => "CAPABILITY".into(),
        Code::PermanentFlags(_) => "PERMANENTFLAGS".into(),
        Code::UidValidity(_) => "UIDVALIDITY".into(),
        Code::UidNext(_) => "UIDNEXT".into(),
        Code::Unseen(_) => "UNSEEN".into(),
        Code::HighestModSeq(_) => "HIGHESTMODSEQ".into(),
        Code::AppendUid { .. } => "APPENDUID".into(),
        Code::CopyUid { .. } => "COPYUID".into(),
        Code::Known(k) => format!("{k:?}").to_ascii_uppercase(),
        Code::Other { name, .. } => name.clone(),
        #[allow(unreachable_patterns)]
        _ => "?".into(),
    }
}

/// The error kind a tagged failure maps to, by response code first, then by status.
pub(crate) fn kind_of(status: &StatusResponse, side: Side) -> ErrorKind {
    if says_throttled(&status.text) {
        return ErrorKind::Transient;
    }
    if status.status == Status::Bad {
        return ErrorKind::Protocol;
    }
    match &status.code {
        Some(Code::Known(code)) => match code {
            KnownCode::Unavailable | KnownCode::InUse | KnownCode::Throttled => ErrorKind::Transient,
            // A write over a size limit will not fit later either; a read limit (e.g. a fetch
            // range cap) is worth retrying with less or later.
            KnownCode::Limit if side == Side::Write => ErrorKind::TargetRefused,
            KnownCode::Limit => ErrorKind::Transient,
            KnownCode::AuthenticationFailed | KnownCode::AuthorizationFailed | KnownCode::Expired => {
                ErrorKind::Auth
            }
            KnownCode::PrivacyRequired => ErrorKind::Tls,
            KnownCode::NonExistent => ErrorKind::SourceRefused,
            KnownCode::OverQuota => ErrorKind::TargetRefused,
            _ => side_kind(side),
        },
        Some(Code::TryCreate) => ErrorKind::TargetRefused,
        _ => side_kind(side),
    }
}

/// Throttling said in words rather than with `[THROTTLED]`: Office 365 answers `NO` or
/// `BAD` "Request is throttled. Suggested Backoff Time: ..." (and then hangs up).
fn says_throttled(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    lower.contains("request is throttled") || lower.contains("suggested backoff time")
}

fn side_kind(side: Side) -> ErrorKind {
    match side {
        Side::Read => ErrorKind::SourceRefused,
        Side::Write => ErrorKind::TargetRefused,
    }
}

/// What the person reading the error should do, by kind.
fn advice(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Transient => "the server is busy, throttling or the folder is in use; retry later",
        ErrorKind::Auth => "the server no longer accepts the credentials; supply a new password or token",
        ErrorKind::Tls => "the server requires an encrypted connection; connect with TLS or STARTTLS",
        ErrorKind::Protocol => {
            "the server did not understand the command; this is a client/server incompatibility, please report it"
        }
        ErrorKind::TargetRefused => {
            "the server refused to store it; check the quota, the folder name and permissions"
        }
        _ => "check that the folder exists and that the account may access it",
    }
}

/// The error for a failed tagged response to `command` on `host`, `what` naming the object
/// (e.g. the folder) when there is one.
pub(crate) fn command_error(
    host: &str,
    command: &'static str,
    what: Option<&str>,
    st: StatusResponse,
    side: Side,
) -> Error {
    let kind = kind_of(&st, side);
    let status = match st.status {
        Status::Bad => "BAD",
        Status::Bye => "BYE",
        _ => "NO",
    };
    let object = what.map(|w| format!(" {w:?}")).unwrap_or_default();
    let code = st
        .code
        .as_ref()
        .map(|c| format!("[{}] ", code_name(c)))
        .unwrap_or_default();
    let message = format!(
        "IMAP server {host} refused {command}{object}: {status} {code}{}; {}",
        st.text.trim().trim_end_matches('.'),
        advice(kind)
    );
    Error::new(kind, message).with_source(CommandFailed {
        command,
        status: st.status,
        code: st.code,
        text: st.text,
    })
}

/// Replaces every occurrence of `secret` in `text` (servers rarely echo a password, but a
/// message must never carry one).
pub(crate) fn scrub(text: &str, secret: &str) -> String {
    if secret.len() < 2 || !text.contains(secret) {
        return text.to_owned();
    }
    text.replace(secret, "[redacted]")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(status: Status, code: Option<Code>) -> StatusResponse {
        StatusResponse {
            tag: Some(crate::imap::codec::Tag("A0001".into())),
            status,
            code,
            text: "nope".into(),
        }
    }

    #[test]
    fn office_365_throttling_in_words_is_transient_with_the_wait_it_asks_for() {
        let text = "Request is throttled. Suggested Backoff Time: 299961 milliseconds";
        for status in [Status::No, Status::Bad] {
            let answer = StatusResponse {
                text: text.into(),
                ..st(status, None)
            };
            assert_eq!(kind_of(&answer, Side::Read), ErrorKind::Transient, "{status:?}");
            assert_eq!(kind_of(&answer, Side::Write), ErrorKind::Transient, "{status:?}");
        }
        let failed = |text: &str| CommandFailed {
            command: "UID FETCH",
            status: Status::No,
            code: None,
            text: text.into(),
        };
        assert_eq!(
            failed(text).suggested_backoff(),
            Some(Duration::from_millis(299_961))
        );
        assert_eq!(
            failed("Throttled. SUGGESTED BACKOFF TIME: 30 seconds").suggested_backoff(),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            failed("Suggested Backoff Time: 99999999999999999999999 ms").suggested_backoff(),
            Some(Duration::from_millis(u64::MAX))
        );
        assert_eq!(failed("Suggested Backoff Time: soon").suggested_backoff(), None);
        assert_eq!(failed("nope").suggested_backoff(), None);
        // A mailbox name or a subject that merely contains the word is not throttling.
        assert_eq!(
            kind_of(
                &StatusResponse {
                    text: "Mailbox 'throttled' does not exist".into(),
                    ..st(Status::No, None)
                },
                Side::Read
            ),
            ErrorKind::SourceRefused
        );
    }

    #[test]
    fn response_codes_decide_the_kind_before_the_side() {
        let cases = [
            (
                Some(Code::Known(KnownCode::Unavailable)),
                Side::Read,
                ErrorKind::Transient,
            ),
            (
                Some(Code::Known(KnownCode::InUse)),
                Side::Write,
                ErrorKind::Transient,
            ),
            (
                Some(Code::Known(KnownCode::Throttled)),
                Side::Read,
                ErrorKind::Transient,
            ),
            (
                Some(Code::Known(KnownCode::Limit)),
                Side::Read,
                ErrorKind::Transient,
            ),
            (
                Some(Code::Known(KnownCode::Limit)),
                Side::Write,
                ErrorKind::TargetRefused,
            ),
            (
                Some(Code::Known(KnownCode::NonExistent)),
                Side::Read,
                ErrorKind::SourceRefused,
            ),
            (
                Some(Code::Known(KnownCode::OverQuota)),
                Side::Read,
                ErrorKind::TargetRefused,
            ),
            (
                Some(Code::Known(KnownCode::AuthenticationFailed)),
                Side::Read,
                ErrorKind::Auth,
            ),
            (Some(Code::TryCreate), Side::Write, ErrorKind::TargetRefused),
            (None, Side::Read, ErrorKind::SourceRefused),
            (None, Side::Write, ErrorKind::TargetRefused),
        ];
        for (code, side, kind) in cases {
            assert_eq!(
                kind_of(&st(Status::No, code.clone()), side),
                kind,
                "{code:?} {side:?}"
            );
        }
        assert_eq!(
            kind_of(
                &st(Status::Bad, Some(Code::Known(KnownCode::Unavailable))),
                Side::Read
            ),
            ErrorKind::Protocol
        );
    }

    #[test]
    fn command_errors_keep_the_server_answer_as_source() {
        let err = command_error(
            "imap.example.com",
            "SELECT",
            Some("Archive"),
            st(Status::No, Some(Code::Known(KnownCode::NonExistent))),
            Side::Read,
        );
        assert_eq!(err.kind(), ErrorKind::SourceRefused);
        assert!(err.to_string().contains("imap.example.com"), "{err}");
        assert!(err.to_string().contains("\"Archive\""), "{err}");
        assert!(err.to_string().contains("[NONEXISTENT] nope"), "{err}");
        let failed = CommandFailed::of(&err).expect("source");
        assert!(failed.has_code(KnownCode::NonExistent));
        assert_eq!(failed.command, "SELECT");
    }

    #[test]
    fn scrub_removes_a_password_echoed_by_the_server() {
        assert_eq!(
            scrub("bad login hunter2 for bob", "hunter2"),
            "bad login [redacted] for bob"
        );
        assert_eq!(scrub("nothing here", "hunter2"), "nothing here");
    }
}
