//! Status lines: `+OK`, `-ERR` with RFC 2449 response codes, SASL `+` continuations.

use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use nom::branch::alt;
use nom::bytes::complete::{tag, tag_no_case, take_while1};
use nom::combinator::value;
use nom::sequence::delimited;
use nom::{IResult, Parser};

use super::{CodecError, Limits, printable};
use crate::error::ErrorKind;

/// The first word of a status line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// `+OK`: the command succeeded.
    Ok,
    /// `-ERR`: the command failed.
    Err,
    /// `+` alone: a SASL continuation during `AUTH`; the text is the base64 challenge.
    Continue,
}

/// An RFC 2449 (and RFC 3206) extended response code, the `[...]` after `+OK` / `-ERR`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RespCode {
    /// `[AUTH]`: the credentials were rejected (not a temporary problem).
    Auth,
    /// `[IN-USE]`: another session holds the mailbox lock; retry later.
    InUse,
    /// `[LOGIN-DELAY]`: logged in too soon after the last login. Some servers add the
    /// delay in seconds (`[LOGIN-DELAY 600]`); it is kept when given.
    LoginDelay {
        /// The delay the server asked for, when it said.
        seconds: Option<u64>,
    },
    /// `[SYS/TEMP]` (or a code below it): a temporary server-side failure.
    SysTemp,
    /// `[SYS/PERM]` (or a code below it): a permanent server-side failure.
    SysPerm,
    /// Any other code, as sent.
    Other(String),
}

impl RespCode {
    fn parse(code: &[u8]) -> RespCode {
        let text = String::from_utf8_lossy(code);
        let mut words = text.split_ascii_whitespace();
        let head = words.next().unwrap_or_default().to_ascii_uppercase();
        let level = |prefix: &str| head == prefix || head.starts_with(&format!("{prefix}/"));
        if head == "AUTH" {
            RespCode::Auth
        } else if head == "IN-USE" {
            RespCode::InUse
        } else if head == "LOGIN-DELAY" {
            RespCode::LoginDelay {
                seconds: words.next().and_then(|s| s.parse().ok()),
            }
        } else if level("SYS/TEMP") {
            RespCode::SysTemp
        } else if level("SYS/PERM") {
            RespCode::SysPerm
        } else {
            RespCode::Other(text.into_owned())
        }
    }
}

/// One parsed status line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusLine {
    /// `+OK`, `-ERR` or `+`.
    pub status: Status,
    /// The `[...]` response code, if any.
    pub code: Option<RespCode>,
    /// The rest of the line without the code and the line end (for `+`, the challenge).
    pub text: Bytes,
}

impl StatusLine {
    /// Whether this is `+OK`.
    pub fn is_ok(&self) -> bool {
        self.status == Status::Ok
    }

    /// The text, printable and shortened, for messages.
    pub fn text_lossy(&self) -> String {
        printable(&self.text)
    }

    /// The error kind a `-ERR` with this line's response code means; `default` when the code
    /// says nothing about it (the caller knows what a bare `-ERR` means for its command).
    ///
    /// `[IN-USE]`, `[LOGIN-DELAY]` and `[SYS/TEMP]` are transient, `[AUTH]` is an
    /// authentication failure, `[SYS/PERM]` a refusal by the source.
    pub fn error_kind(&self, default: ErrorKind) -> ErrorKind {
        match self.code {
            Some(RespCode::Auth) => ErrorKind::Auth,
            Some(RespCode::InUse | RespCode::LoginDelay { .. } | RespCode::SysTemp) => ErrorKind::Transient,
            Some(RespCode::SysPerm) => ErrorKind::SourceRefused,
            Some(RespCode::Other(_)) | None => default,
        }
    }

    /// How long the server asked the client to wait (`[LOGIN-DELAY n]`).
    pub fn retry_after(&self) -> Option<Duration> {
        match self.code {
            Some(RespCode::LoginDelay { seconds: Some(s) }) => Some(Duration::from_secs(s)),
            _ => None,
        }
    }
}

/// Cuts one status line from the front of `buf` and parses it.
///
/// Returns `Ok(None)` (consuming nothing) while the line is incomplete, and an error for a
/// line longer than [`Limits::max_line_length`] or one that is not a status line.
pub fn decode_status(buf: &mut BytesMut, limits: &Limits) -> Result<Option<StatusLine>, CodecError> {
    let window = &buf[..buf.len().min(limits.max_line_length)];
    let Some(lf) = window.iter().position(|&b| b == b'\n') else {
        if buf.len() >= limits.max_line_length {
            return Err(CodecError::LineTooLong {
                limit: limits.max_line_length,
            });
        }
        return Ok(None);
    };
    let mut line = buf.split_to(lf + 1).freeze();
    line.truncate(trim_line_end(&line).len());
    parse_status(line).map(Some)
}

/// The line without its CRLF or bare LF.
pub(crate) fn trim_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn status_word(input: &[u8]) -> IResult<&[u8], Status> {
    alt((
        value(Status::Ok, tag_no_case("+OK")),
        value(Status::Err, tag_no_case("-ERR")),
        value(Status::Continue, tag("+")),
    ))
    .parse(input)
}

fn resp_code(input: &[u8]) -> IResult<&[u8], &[u8]> {
    delimited(
        tag("["),
        take_while1(|b: u8| b != b']' && b != b'[' && (0x20..0x7f).contains(&b)),
        tag("]"),
    )
    .parse(input)
}

fn parse_status(line: Bytes) -> Result<StatusLine, CodecError> {
    let bad = || CodecError::BadStatusLine {
        line: printable(&line),
    };
    let (rest, status) = status_word(&line).map_err(|_| bad())?;
    // "+OKAY" or "-ERROR" is not a status word followed by text.
    let rest = match rest.split_first() {
        None => rest,
        Some((b' ' | b'\t', tail)) => tail,
        Some(_) => return Err(bad()),
    };
    let (rest, code) = match status {
        Status::Continue => (rest, None),
        Status::Ok | Status::Err => match resp_code(rest) {
            Ok((tail, code)) => (
                tail.strip_prefix(b" ").unwrap_or(tail),
                Some(RespCode::parse(code)),
            ),
            Err(_) => (rest, None),
        },
    };
    let mut text = line.clone();
    text.advance(line.len() - rest.len());
    Ok(StatusLine { status, code, text })
}

/// The APOP timestamp (RFC 1939 section 7) in a greeting's text, angle brackets included:
/// the first `<...>` that looks like a msg-id (holds an `@`, no spaces or control bytes).
///
/// ```
/// use mailmigrate::pop3::codec::apop_timestamp;
/// let greeting = b"POP3 server ready <1896.697170952@dbc.mtview.ca.us>";
/// assert_eq!(apop_timestamp(greeting), Some(&b"<1896.697170952@dbc.mtview.ca.us>"[..]));
/// assert_eq!(apop_timestamp(b"Dovecot ready."), None);
/// ```
pub fn apop_timestamp(greeting: &[u8]) -> Option<&[u8]> {
    let mut rest = greeting;
    while let Some(open) = rest.iter().position(|&b| b == b'<') {
        let candidate = &rest[open..];
        let close = candidate[1..].iter().position(|&b| b == b'<' || b == b'>')? + 1;
        let inner = &candidate[1..close];
        if candidate[close] == b'>'
            && inner.contains(&b'@')
            && inner.iter().all(|&b| (0x21..0x7f).contains(&b))
        {
            return Some(&candidate[..=close]);
        }
        rest = &candidate[close..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(input: &[u8]) -> Result<Option<StatusLine>, CodecError> {
        decode_status(&mut BytesMut::from(input), &Limits::default())
    }

    fn line(input: &[u8]) -> StatusLine {
        decode(input).expect("parses").expect("complete")
    }

    #[test]
    fn ok_and_err_lines_keep_their_text() {
        let ok = line(b"+OK 2 320\r\n");
        assert_eq!(
            (ok.status, ok.code.clone(), &ok.text[..]),
            (Status::Ok, None, &b"2 320"[..])
        );
        let err = line(b"-ERR no such message\r\n");
        assert_eq!(
            (err.status, &err.text[..]),
            (Status::Err, &b"no such message"[..])
        );
        assert_eq!(line(b"+OK\r\n").text, Bytes::new());
        assert_eq!(line(b"+ok bare lf\n").text, Bytes::from_static(b"bare lf"));
    }

    #[test]
    fn response_codes_map_to_error_kinds() {
        let cases: [(&[u8], RespCode, ErrorKind); 6] = [
            (b"-ERR [AUTH] bad password\r\n", RespCode::Auth, ErrorKind::Auth),
            (b"-ERR [IN-USE] locked\r\n", RespCode::InUse, ErrorKind::Transient),
            (
                b"-ERR [LOGIN-DELAY] too soon\r\n",
                RespCode::LoginDelay { seconds: None },
                ErrorKind::Transient,
            ),
            (
                b"-ERR [SYS/TEMP] try later\r\n",
                RespCode::SysTemp,
                ErrorKind::Transient,
            ),
            (
                b"-ERR [SYS/PERM/DISABLED] off\r\n",
                RespCode::SysPerm,
                ErrorKind::SourceRefused,
            ),
            (
                b"-ERR [X-FOO] whatever\r\n",
                RespCode::Other("X-FOO".into()),
                ErrorKind::Io,
            ),
        ];
        for (input, code, kind) in cases {
            let status = line(input);
            assert_eq!(status.code, Some(code), "{input:?}");
            assert_eq!(status.error_kind(ErrorKind::Io), kind, "{input:?}");
        }
        assert_eq!(
            line(b"-ERR [IN-USE] locked\r\n").text,
            Bytes::from_static(b"locked")
        );
    }

    #[test]
    fn login_delay_keeps_the_delay_when_given() {
        let status = line(b"-ERR [LOGIN-DELAY 600] wait ten minutes\r\n");
        assert_eq!(status.code, Some(RespCode::LoginDelay { seconds: Some(600) }));
        assert_eq!(status.retry_after(), Some(Duration::from_secs(600)));
        assert_eq!(status.text, Bytes::from_static(b"wait ten minutes"));
        assert_eq!(line(b"-ERR [LOGIN-DELAY]\r\n").retry_after(), None);
    }

    #[test]
    fn continuation_lines_carry_the_challenge() {
        let cont = line(b"+ eyJzdGF0dXMiOiI0MDEifQ==\r\n");
        assert_eq!(
            (cont.status, &cont.text[..]),
            (Status::Continue, &b"eyJzdGF0dXMiOiI0MDEifQ=="[..])
        );
        assert_eq!(line(b"+\r\n").status, Status::Continue);
        assert_eq!(line(b"+ \r\n").text, Bytes::new());
    }

    #[test]
    fn incomplete_lines_need_more_and_consume_nothing() {
        let mut buf = BytesMut::from(&b"+OK almost"[..]);
        assert_eq!(decode_status(&mut buf, &Limits::default()), Ok(None));
        assert_eq!(&buf[..], b"+OK almost");
        buf.extend_from_slice(b"\r\n-ERR next\r\n");
        assert!(
            decode_status(&mut buf, &Limits::default())
                .unwrap()
                .unwrap()
                .is_ok()
        );
        assert_eq!(&buf[..], b"-ERR next\r\n");
    }

    #[test]
    fn garbage_and_overlong_lines_are_errors() {
        for input in [
            &b"* OK imap\r\n"[..],
            b"+OKAY\r\n",
            b"-ERROR\r\n",
            b"\r\n",
            b"OK\r\n",
        ] {
            assert!(
                matches!(decode(input), Err(CodecError::BadStatusLine { .. })),
                "{input:?}"
            );
        }
        let limits = Limits {
            max_line_length: 16,
            ..Limits::default()
        };
        let mut buf = BytesMut::from(&b"+OK this line is far too long"[..]);
        assert_eq!(
            decode_status(&mut buf, &limits),
            Err(CodecError::LineTooLong { limit: 16 })
        );
    }

    #[test]
    fn apop_timestamp_skips_brackets_that_are_not_msg_ids() {
        assert_eq!(
            apop_timestamp(b"<server> ready <1.2@host>"),
            Some(&b"<1.2@host>"[..])
        );
        assert_eq!(apop_timestamp(b"ready <a b@host>"), None);
        assert_eq!(apop_timestamp(b"ready <<<"), None);
        assert_eq!(apop_timestamp(b"ready <x@y"), None);
    }
}
