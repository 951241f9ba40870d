//! Cuts the byte stream into complete responses (a line plus its literals), within
//! [`Limits`], and only then parses them.
//!
//! The framer scans each byte once (a long line arriving in many reads is not re-scanned),
//! skips literal bodies without looking at them, reserves a literal's size when its `{n}`
//! header arrives (after checking it against the limits), and hands the parsers a frozen
//! `Bytes` so message bodies are slices of the read buffer, never copies.

use bytes::{Bytes, BytesMut};

use crate::Error;
use crate::imap::codec::parse::{self, FrameInfo};
use crate::imap::codec::{Limits, Response};

/// Why a server's bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// A line (outside literals) grew past `Limits::max_line`. Fatal: the stream cannot be resynchronised.
    #[error("the server sent a line longer than {limit} bytes")]
    LineTooLong {
        /// The limit.
        limit: usize,
    },
    /// A literal announced more bytes than `Limits::max_literal`. Fatal.
    #[error("the server announced a {size}-byte literal, over the {limit}-byte limit")]
    LiteralTooLarge {
        /// Announced size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// A response grew past `Limits::max_response`. Fatal.
    #[error("the server sent a response larger than {limit} bytes")]
    ResponseTooLarge {
        /// The limit.
        limit: u64,
    },
    /// A response nested parentheses deeper than `Limits::max_depth`; it was skipped.
    #[error("the server sent a response nested deeper than {limit} parentheses; it was skipped")]
    NestingTooDeep {
        /// The limit.
        limit: usize,
    },
    /// A complete response could not be parsed; it was skipped and decoding can go on.
    #[error("unparsable response from the server ({reason}): {excerpt:?}")]
    Malformed {
        /// Why.
        reason: String,
        /// The start of the response (at most 200 bytes, lossy).
        excerpt: String,
    },
}

impl DecodeError {
    /// Whether the stream is unusable after this error (the connection must be closed).
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            DecodeError::LineTooLong { .. }
                | DecodeError::LiteralTooLarge { .. }
                | DecodeError::ResponseTooLarge { .. }
        )
    }
}

impl From<DecodeError> for crate::Error {
    fn from(err: DecodeError) -> Self {
        let message = match &err {
            DecodeError::LineTooLong { limit } => format!(
                "the IMAP server sent a line longer than {limit} bytes, so the connection was closed; \
                 if the server is trusted and such lines are legitimate (a SEARCH over a huge \
                 folder), raise Limits::max_line"
            ),
            DecodeError::LiteralTooLarge { size, limit } => format!(
                "the IMAP server announced a {size}-byte literal, over the {limit}-byte limit, so the \
                 connection was closed; if a message is legitimately that large, raise \
                 Limits::max_literal (and Limits::max_response)"
            ),
            DecodeError::ResponseTooLarge { limit } => format!(
                "the IMAP server sent a response larger than {limit} bytes, so the connection was \
                 closed; if a message is legitimately that large, raise Limits::max_response"
            ),
            DecodeError::NestingTooDeep { limit } => format!(
                "the IMAP server sent a response nested deeper than {limit} parentheses; it was \
                 skipped (raise Limits::max_depth only for a trusted server)"
            ),
            DecodeError::Malformed { reason, excerpt } => format!(
                "the IMAP server sent a response this client cannot read ({reason}); it was skipped. \
                 If this keeps happening, report the server software and this start of the \
                 response: {excerpt:?}"
            ),
        };
        Error::protocol(message).with_source(err)
    }
}

/// Where the framer stands in the frame that starts at the beginning of the buffer.
#[derive(Debug, Default, Clone)]
struct Scan {
    /// Bytes of the frame scanned so far.
    pos: usize,
    /// Start of the current line (after the last literal).
    line_start: usize,
    /// Literal bytes still to skip.
    literal_left: u64,
    in_quote: bool,
    escaped: bool,
    depth: usize,
    max_depth: usize,
    info: FrameInfo,
}

/// Most space [`ResponseDecoder::read_buf`] hands out, and the least a buffer grows by.
const READ_ROOM: usize = 64 * 1024;

/// Sans-IO response decoder: feed it bytes, take complete responses out.
///
/// ```
/// use mailmigrate::imap::codec::{Data, Limits, Response, ResponseDecoder};
/// let mut decoder = ResponseDecoder::new(Limits::default());
/// decoder.feed(b"* 3 EXI");
/// assert_eq!(decoder.decode(), Ok(None));
/// decoder.feed(b"STS\r\n");
/// assert_eq!(decoder.decode(), Ok(Some(Response::Data(Data::Exists(3)))));
/// ```
#[derive(Debug)]
pub struct ResponseDecoder {
    limits: Limits,
    buf: BytesMut,
    scan: Scan,
    /// Where the space handed out by `read_buf` starts, until `filled` says how much of it
    /// holds data.
    unfilled_from: Option<usize>,
    /// A fatal error, repeated on every later call.
    failed: Option<DecodeError>,
}

impl ResponseDecoder {
    /// A decoder enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        ResponseDecoder {
            limits,
            buf: BytesMut::new(),
            scan: Scan::default(),
            unfilled_from: None,
            failed: None,
        }
    }

    /// Appends bytes received from the server.
    pub fn feed(&mut self, data: &[u8]) {
        self.drop_unfilled();
        self.buf.extend_from_slice(data);
    }

    /// Zeroed space at the end of the buffer to read into directly: at least `min` bytes,
    /// more (up to 64 KiB) when the buffer has room to spare. Call
    /// [`ResponseDecoder::filled`] with how many bytes were written.
    ///
    /// The space left in the buffer is used before a new one is allocated: message bodies
    /// handed out keep their part of the buffer alive, so space skipped would be memory held
    /// for nothing as long as those bodies live. Keep `min` small.
    pub fn read_buf(&mut self, min: usize) -> &mut [u8] {
        self.drop_unfilled();
        let start = self.buf.len();
        if self.buf.capacity() - start < min {
            self.grow(min.max(READ_ROOM));
        }
        let room = (self.buf.capacity() - start).clamp(min, READ_ROOM.max(min));
        self.buf.resize(start + room, 0);
        self.unfilled_from = Some(start);
        &mut self.buf[start..]
    }

    /// Marks `n` bytes of the last [`ResponseDecoder::read_buf`] as received.
    pub fn filled(&mut self, n: usize) {
        if let Some(start) = self.unfilled_from.take() {
            let end = start.saturating_add(n).min(self.buf.len());
            self.buf.truncate(end);
        }
    }

    /// The next complete response, `Ok(None)` if more bytes are needed.
    ///
    /// A fatal error ([`DecodeError::is_fatal`]) is returned again on every later call; after
    /// a non-fatal one the offending response has been skipped and decoding can go on.
    pub fn decode(&mut self) -> Result<Option<Response>, DecodeError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        self.drop_unfilled();
        loop {
            let (frame, info, depth) = match self.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => return Ok(None),
                Err(err) => {
                    self.failed = Some(err.clone());
                    return Err(err);
                }
            };
            if frame == b"\r\n"[..] || frame == b"\n"[..] {
                // Some servers send blank lines; they carry nothing.
                continue;
            }
            if depth > self.limits.max_depth {
                return Err(DecodeError::NestingTooDeep {
                    limit: self.limits.max_depth,
                });
            }
            return parse::response(&frame, &info)
                .map(Some)
                .map_err(|failure| DecodeError::Malformed {
                    reason: failure.0,
                    excerpt: excerpt(&frame),
                });
        }
    }

    /// Bytes received and not yet returned as responses (non-zero after STARTTLS's OK means
    /// the server injected plaintext: an error).
    pub fn buffered(&self) -> usize {
        self.unfilled_from.unwrap_or(self.buf.len())
    }

    /// Room for `additional` more bytes: always a new buffer of just that size, with the
    /// bytes not yet framed moved into it. Growing in place would keep, and double, an
    /// allocation that once held a large message for as long as the session lives; the
    /// bodies split from the old one keep it alive only as long as they live.
    fn grow(&mut self, additional: usize) {
        let mut fresh = BytesMut::with_capacity(self.buf.len().saturating_add(additional));
        fresh.extend_from_slice(&self.buf);
        self.buf = fresh;
    }

    fn drop_unfilled(&mut self) {
        if let Some(start) = self.unfilled_from.take() {
            self.buf.truncate(start);
        }
    }

    /// Cuts the next complete frame off the buffer, scanning only bytes not seen before.
    fn next_frame(&mut self) -> Result<Option<(Bytes, FrameInfo, usize)>, DecodeError> {
        let limits = self.limits;
        loop {
            let len = self.buf.len();
            let s = &mut self.scan;
            if s.literal_left > 0 {
                let available = (len - s.pos) as u64;
                let take = available.min(s.literal_left);
                // take <= available, which is a usize.
                s.pos += take as usize;
                s.literal_left -= take;
                if s.literal_left > 0 {
                    return Ok(None);
                }
                s.line_start = s.pos;
            }
            let mut newline = None;
            let bytes = &self.buf[..];
            for (j, &b) in bytes.iter().enumerate().take(len).skip(s.pos) {
                if s.in_quote {
                    if b == b'(' {
                        s.info.open_parens += 1;
                    }
                    if s.escaped {
                        s.escaped = false;
                    } else if b == b'\\' {
                        s.escaped = true;
                    } else if b == b'"' {
                        s.in_quote = false;
                    } else if b == b'\n' {
                        newline = Some((j, true));
                        break;
                    }
                    continue;
                }
                match b {
                    b'"' => s.in_quote = true,
                    b'(' => {
                        s.depth += 1;
                        s.max_depth = s.max_depth.max(s.depth);
                        s.info.open_parens += 1;
                    }
                    b')' => s.depth = s.depth.saturating_sub(1),
                    b'\n' => {
                        newline = Some((j, false));
                        break;
                    }
                    _ => {}
                }
            }
            let Some((j, in_quote)) = newline else {
                s.pos = len;
                // Without its line ending yet, the line is already too long if it has more than
                // max_line bytes plus a CR.
                if len - s.line_start > limits.max_line.saturating_add(1) {
                    return Err(DecodeError::LineTooLong {
                        limit: limits.max_line,
                    });
                }
                if len as u64 > limits.max_response {
                    return Err(DecodeError::ResponseTooLarge {
                        limit: limits.max_response,
                    });
                }
                return Ok(None);
            };
            // A quoted string cannot span lines: a stray quote ends with its line.
            s.in_quote = false;
            s.escaped = false;
            let crlf = j > s.line_start && bytes[j - 1] == b'\r';
            if !crlf {
                s.info.bare_lf = true;
            }
            let content = &bytes[s.line_start..if crlf { j - 1 } else { j }];
            if content.len() > limits.max_line {
                return Err(DecodeError::LineTooLong {
                    limit: limits.max_line,
                });
            }
            let after = j + 1;
            if after as u64 > limits.max_response {
                return Err(DecodeError::ResponseTooLarge {
                    limit: limits.max_response,
                });
            }
            match literal_header(content).filter(|_| !in_quote) {
                Some(size) => {
                    if size > limits.max_literal {
                        return Err(DecodeError::LiteralTooLarge {
                            size,
                            limit: limits.max_literal,
                        });
                    }
                    if (after as u64).saturating_add(size) > limits.max_response {
                        return Err(DecodeError::ResponseTooLarge {
                            limit: limits.max_response,
                        });
                    }
                    s.info.has_literal = true;
                    s.literal_left = size;
                    s.pos = after;
                    s.line_start = after;
                    // Make room for the whole literal now (it is within the limits), so a
                    // large body is not copied again and again as the buffer grows; with
                    // READ_ROOM more for the rest of the response, so that is not a copy either.
                    let missing = size.saturating_sub((len - after) as u64);
                    if let Ok(missing) = usize::try_from(missing)
                        && self.buf.capacity() - len < missing
                    {
                        self.grow(missing.saturating_add(READ_ROOM));
                    }
                }
                None => {
                    let info = s.info;
                    let depth = s.max_depth;
                    self.scan = Scan::default();
                    let frame = self.buf.split_to(after).freeze();
                    if after > READ_ROOM && self.buf.len() <= READ_ROOM {
                        // What follows a large frame still points into the buffer it was read
                        // into: move it out (a read's worth at most), so that buffer is freed
                        // with the frame.
                        self.grow(READ_ROOM);
                    }
                    return Ok(Some((frame, info, depth)));
                }
            }
        }
    }
}

/// The start of a frame for error messages: its first line only (so no message body
/// leaks into logs), at most 200 bytes, lossy.
fn excerpt(frame: &[u8]) -> String {
    let line = frame.split(|&b| b == b'\n').next().unwrap_or(frame);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    String::from_utf8_lossy(&line[..line.len().min(200)]).into_owned()
}

/// The size announced by a line ending in `{n}`, `{n+}` or `~{n}` (CRLF already removed).
/// Sizes beyond u64 saturate, so they fail the limit check rather than wrap.
fn literal_header(line: &[u8]) -> Option<u64> {
    let body = line.strip_suffix(b"}")?;
    let body = body.strip_suffix(b"+").unwrap_or(body);
    let digits = body.iter().rev().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || body.len() == digits || body[body.len() - digits - 1] != b'{' {
        return None;
    }
    Some(body[body.len() - digits..].iter().fold(0u64, |acc, &d| {
        acc.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::codec::{Code, Data, Status, StatusResponse, Tag};

    fn decoder() -> ResponseDecoder {
        ResponseDecoder::new(Limits::default())
    }

    fn all(d: &mut ResponseDecoder) -> Vec<Result<Response, DecodeError>> {
        let mut out = Vec::new();
        loop {
            match d.decode() {
                Ok(Some(r)) => out.push(Ok(r)),
                Ok(None) => return out,
                Err(e) => {
                    let fatal = e.is_fatal();
                    out.push(Err(e));
                    if fatal {
                        return out;
                    }
                }
            }
        }
    }

    #[test]
    fn literal_headers() {
        assert_eq!(literal_header(b"* 1 FETCH (BODY[] {123}"), Some(123));
        assert_eq!(literal_header(b"A1 LOGIN {5+}"), Some(5));
        assert_eq!(literal_header(b"* 1 FETCH (BINARY[] ~{0}"), Some(0));
        assert_eq!(literal_header(b"{99999999999999999999999}"), Some(u64::MAX));
        for none in [&b"* OK {}"[..], b"* OK }", b"* OK 5}", b"{+}", b"* OK {5} x", b""] {
            assert_eq!(literal_header(none), None, "{}", String::from_utf8_lossy(none));
        }
    }

    #[test]
    fn frames_a_response_with_literals_across_reads() {
        let mut d = decoder();
        d.feed(b"* 1 FETCH (UID 7 BODY[] {11}\r\nhello");
        assert_eq!(d.decode(), Ok(None));
        d.feed(b" world)\r\nA1 OK done\r\n");
        let Ok(Some(Response::Data(Data::Fetch(f)))) = d.decode() else {
            panic!()
        };
        assert_eq!(f.body.as_deref(), Some(&b"hello world"[..]));
        assert_eq!(
            d.decode(),
            Ok(Some(Response::Status(StatusResponse {
                tag: Some(Tag("A1".into())),
                status: Status::Ok,
                code: None,
                text: "done".into()
            })))
        );
        assert_eq!(d.decode(), Ok(None));
        assert_eq!(d.buffered(), 0);
    }

    /// Writes `data` into the decoder the way the session does: through `read_buf`.
    fn receive(d: &mut ResponseDecoder, mut data: &[u8]) {
        while !data.is_empty() {
            let buf = d.read_buf(8 * 1024);
            let n = buf.len().min(data.len()).min(16 * 1024);
            buf[..n].copy_from_slice(&data[..n]);
            d.filled(n);
            data = &data[n..];
        }
    }

    #[test]
    fn a_large_body_is_not_held_by_the_decoder_once_it_is_handed_out() {
        let mut d = decoder();
        let size = 1_000_000;
        receive(
            &mut d,
            format!("* 1 FETCH (UID 7 BODY[] {{{size}}}\r\n").as_bytes(),
        );
        assert_eq!(d.decode(), Ok(None));
        receive(&mut d, &vec![b'x'; size]);
        receive(&mut d, b")\r\n* 2 EXISTS\r\n* 3 EX");
        let Ok(Some(Response::Data(Data::Fetch(f)))) = d.decode() else {
            panic!("a FETCH")
        };
        let body = f.body.expect("body");
        assert_eq!(body.len(), size);
        // The body is the only owner of its buffer: dropped, the megabyte is freed, even
        // though the decoder goes on with the bytes that came after it.
        assert!(body.is_unique(), "the decoder still holds the body's buffer");
        assert_eq!(d.decode(), Ok(Some(Response::Data(Data::Exists(2)))));
        receive(&mut d, b"ISTS\r\n");
        assert_eq!(d.decode(), Ok(Some(Response::Data(Data::Exists(3)))));
    }

    #[test]
    fn read_buf_and_filled() {
        let mut d = decoder();
        let buf = d.read_buf(16);
        let first = buf.len();
        assert!((16..=READ_ROOM).contains(&first), "{first}");
        buf[..6].copy_from_slice(b"+ go\r\n");
        assert_eq!(d.buffered(), 0);
        d.filled(6);
        assert_eq!(d.buffered(), 6);
        assert_eq!(
            d.decode(),
            Ok(Some(Response::Continue {
                text: Bytes::from_static(b"go")
            }))
        );
        // Space handed out but never filled is not data; and it is handed out again, not
        // skipped for new space (the response split off still shares the buffer).
        assert_eq!(d.read_buf(8).len(), first - 6);
        assert_eq!(d.decode(), Ok(None));
        assert_eq!(d.buffered(), 0);
        // A request larger than what is left gets what it asked for.
        assert_eq!(d.read_buf(READ_ROOM * 2).len(), READ_ROOM * 2);
    }

    #[test]
    fn limits_are_enforced_and_fatal_errors_stick() {
        let limits = Limits {
            max_line: 10,
            max_literal: 100,
            max_response: 200,
            max_depth: 3,
        };
        let mut d = ResponseDecoder::new(limits);
        d.feed(b"* OK 1234567890x");
        assert_eq!(d.decode(), Err(DecodeError::LineTooLong { limit: 10 }));
        assert_eq!(d.decode(), Err(DecodeError::LineTooLong { limit: 10 }));

        let mut d = ResponseDecoder::new(limits);
        d.feed(b"* OK 12345\r\n");
        assert!(
            matches!(d.decode(), Ok(Some(_))),
            "exactly max_line bytes is fine"
        );

        let mut d = ResponseDecoder::new(limits);
        d.feed(b"* {101}\r\n");
        assert_eq!(
            d.decode(),
            Err(DecodeError::LiteralTooLarge {
                size: 101,
                limit: 100
            })
        );

        let mut d = ResponseDecoder::new(Limits {
            max_response: 50,
            ..limits
        });
        d.feed(b"* {60}\r\n");
        assert_eq!(d.decode(), Err(DecodeError::ResponseTooLarge { limit: 50 }));

        let mut d = ResponseDecoder::new(Limits {
            max_line: 100,
            ..limits
        });
        d.feed(b"* 1 FETCH ((((x))))\r\n* 2 EXISTS\r\n");
        assert_eq!(d.decode(), Err(DecodeError::NestingTooDeep { limit: 3 }));
        assert_eq!(d.decode(), Ok(Some(Response::Data(Data::Exists(2)))));
    }

    #[test]
    fn quoted_parens_and_literal_bodies_do_not_count_as_nesting() {
        let limits = Limits {
            max_depth: 2,
            ..Limits::default()
        };
        let mut d = ResponseDecoder::new(limits);
        d.feed(b"* LIST () \"/\" \"((((\\\"((((\"\r\n* 1 FETCH (BODY[] {4}\r\n((((  )\r\n");
        let out = all(&mut d);
        assert!(
            matches!(&out[0], Ok(Response::Data(Data::List(l))) if l.name.raw() == b"((((\"(((("),
            "{out:?}"
        );
        assert!(
            matches!(&out[1], Ok(Response::Data(Data::Fetch(f))) if f.body.as_deref() == Some(&b"(((("[..])),
            "{out:?}"
        );
    }

    #[test]
    fn blank_lines_bare_lf_and_malformed_lines() {
        let mut d = decoder();
        d.feed(b"\r\n* 2 EXISTS\n\n* OK [ALERT] hi\nwhat is this\r\nA2 NO [OVERQUOTA] full\r\n");
        let out = all(&mut d);
        assert_eq!(out[0], Ok(Response::Data(Data::Exists(2))));
        assert!(matches!(&out[1], Ok(Response::Status(s)) if s.code == Some(Code::Alert) && s.text == "hi"));
        assert!(matches!(&out[2], Err(DecodeError::Malformed { .. })));
        assert!(
            matches!(&out[3], Ok(Response::Status(s)) if s.status == Status::No && s.code == Some(Code::Known(crate::imap::codec::KnownCode::OverQuota)))
        );
        assert_eq!(out.len(), 4);
    }

    #[test]
    fn malformed_excerpts_stop_before_the_first_literal() {
        let mut d = decoder();
        d.feed(b"* 1 FETCH (UID 1 BODY[] {12}\r\nsecret text)(\r\n");
        assert!(
            matches!(d.decode(), Err(DecodeError::Malformed { excerpt, .. }) if excerpt == "* 1 FETCH (UID 1 BODY[] {12}")
        );
    }

    #[test]
    fn status_keyword_glued_to_its_code() {
        let mut d = decoder();
        d.feed(b"* OK[ALERT] x\r\nA1 no[OVERQUOTA] full\r\n");
        let out = all(&mut d);
        assert!(matches!(&out[0], Ok(Response::Status(s)) if s.code == Some(Code::Alert) && s.text == "x"));
        assert!(matches!(&out[1], Ok(Response::Status(s)) if s.status == Status::No && s.text == "full"));
    }

    #[test]
    fn greetings_and_continuations() {
        let mut d = decoder();
        d.feed(b"* PREAUTH [CAPABILITY IMAP4rev1 IDLE] Logged in as alice\r\n* BYE [UNAVAILABLE] Too many connections\r\n");
        d.feed(b"+\r\n+ \r\n+ Ready for literal data\r\n+ dXNlcj0=\r\n");
        let out = all(&mut d);
        assert!(matches!(&out[0], Ok(Response::Status(s))
            if s.tag.is_none() && s.status == Status::PreAuth && matches!(&s.code, Some(Code::Capability(c)) if c.has("IDLE"))));
        assert!(matches!(&out[1], Ok(Response::Status(s))
            if s.status == Status::Bye && s.code == Some(Code::Known(crate::imap::codec::KnownCode::Unavailable)) && s.text == "Too many connections"));
        let texts: Vec<&[u8]> = out[2..]
            .iter()
            .map(|r| match r {
                Ok(Response::Continue { text }) => &text[..],
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(texts, [&b""[..], b"", b"Ready for literal data", b"dXNlcj0="]);
    }

    #[test]
    fn errors_become_protocol_errors_that_say_what_to_do() {
        use crate::ErrorKind;
        let err: Error = DecodeError::LiteralTooLarge {
            size: 4_294_967_295,
            limit: 268_435_456,
        }
        .into();
        assert_eq!(err.kind(), ErrorKind::Protocol);
        assert!(
            err.to_string().contains("4294967295") && err.to_string().contains("Limits::max_literal"),
            "{err}"
        );
        let err: Error = DecodeError::Malformed {
            reason: "x".into(),
            excerpt: "* FOO".into(),
        }
        .into();
        assert!(err.to_string().contains("skipped"));
        assert!(!DecodeError::NestingTooDeep { limit: 1 }.is_fatal());
        assert!(
            !DecodeError::Malformed {
                reason: String::new(),
                excerpt: String::new()
            }
            .is_fatal()
        );
        assert!(DecodeError::ResponseTooLarge { limit: 1 }.is_fatal());
    }
}
