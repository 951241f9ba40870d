//! Multi-line blocks (RFC 1939 section 3): dot-unstuffing and the `.` terminator line.

use bytes::{Buf, Bytes, BytesMut};

use super::status::trim_line_end;
use super::{CodecError, Limits};

/// What a multi-line decoder made of the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyEvent {
    /// More of the block: for [`BodyDecoder`] a piece of the message (whole lines or part of
    /// one, line ends kept as sent); for [`ListingDecoder`] exactly one line without its end.
    Data(Bytes),
    /// The buffer holds nothing more to hand out yet: read more and call again.
    NeedMore,
    /// The terminating `.` line was consumed; the block is complete.
    End,
}

/// Decodes the multi-line body of `RETR` or `TOP` into dot-unstuffed message bytes.
///
/// Feed it the read buffer after the `+OK` line, as often as bytes arrive; it consumes what
/// it hands out and leaves the rest (at most the start of a line it cannot judge yet) in the
/// buffer. The returned pieces are split from the buffer, not copied; a stuffed dot is
/// removed by moving the bytes after it within the buffer.
#[derive(Debug, Clone)]
pub struct BodyDecoder {
    at_line_start: bool,
    size: usize,
    max_size: usize,
    done: bool,
}

impl BodyDecoder {
    /// A decoder positioned at the start of a block.
    pub fn new(limits: &Limits) -> Self {
        BodyDecoder {
            at_line_start: true,
            size: 0,
            max_size: limits.max_message_size,
            done: false,
        }
    }

    /// Hands out the next piece of the message, [`BodyEvent::NeedMore`], or
    /// [`BodyEvent::End`] once the terminator has been consumed (and on every call after).
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<BodyEvent, CodecError> {
        let (data, end) = self.decode_mut(buf)?;
        Ok(if !data.is_empty() {
            BodyEvent::Data(data.freeze())
        } else if end {
            BodyEvent::End
        } else {
            BodyEvent::NeedMore
        })
    }

    /// Whether the terminator has been consumed.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Message bytes unstuffed so far.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Like [`BodyDecoder::decode`], but returns the data still mutable (so consecutive
    /// pieces of one allocation can be joined with `unsplit` at no cost) and whether the
    /// block ended. The data may be non-empty when the end is reported.
    pub(crate) fn decode_mut(&mut self, buf: &mut BytesMut) -> Result<(BytesMut, bool), CodecError> {
        if self.done {
            return Ok((BytesMut::new(), true));
        }
        let data = &mut buf[..];
        // r reads, w writes: bytes move left only past a removed stuffing dot.
        let (mut r, mut w) = (0, 0);
        let mut at_line_start = self.at_line_start;
        let mut end = None;
        while r < data.len() {
            if at_line_start {
                if data[r] == b'.' {
                    match (data.get(r + 1), data.get(r + 2)) {
                        (None, _) | (Some(b'\r'), None) => break,
                        (Some(b'\n'), _) => end = Some(r + 2),
                        (Some(b'\r'), Some(b'\n')) => end = Some(r + 3),
                        _ => r += 1, // a stuffed dot: drop it
                    }
                    if end.is_some() {
                        break;
                    }
                }
                at_line_start = false;
            }
            let line_end = match data[r..].iter().position(|&b| b == b'\n') {
                Some(lf) => {
                    at_line_start = true;
                    r + lf + 1
                }
                None => data.len(),
            };
            if w != r {
                data.copy_within(r..line_end, w);
            }
            w += line_end - r;
            r = line_end;
        }
        self.size += w;
        if self.size > self.max_size {
            return Err(CodecError::MessageTooLarge { limit: self.max_size });
        }
        self.at_line_start = at_line_start;
        let consumed = end.unwrap_or(r);
        let out = buf.split_to(w);
        buf.advance(consumed - w);
        self.done = end.is_some();
        Ok((out, self.done))
    }
}

/// Decodes the multi-line block of `CAPA`, `LIST` or `UIDL` one complete line at a time.
#[derive(Debug, Clone)]
pub struct ListingDecoder {
    lines: usize,
    limits: Limits,
    done: bool,
}

impl ListingDecoder {
    /// A decoder positioned at the start of a block.
    pub fn new(limits: &Limits) -> Self {
        ListingDecoder {
            lines: 0,
            limits: *limits,
            done: false,
        }
    }

    /// The next line (unstuffed, without its line end), [`BodyEvent::NeedMore`], or
    /// [`BodyEvent::End`] once the terminator has been consumed (and on every call after).
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<BodyEvent, CodecError> {
        if self.done {
            return Ok(BodyEvent::End);
        }
        let max = self.limits.max_line_length;
        let Some(lf) = buf[..buf.len().min(max)].iter().position(|&b| b == b'\n') else {
            if buf.len() >= max {
                return Err(CodecError::LineTooLong { limit: max });
            }
            return Ok(BodyEvent::NeedMore);
        };
        let mut line = buf.split_to(lf + 1).freeze();
        line.truncate(trim_line_end(&line).len());
        if &line[..] == b"." {
            self.done = true;
            return Ok(BodyEvent::End);
        }
        if line.first() == Some(&b'.') {
            line.advance(1);
        }
        self.lines += 1;
        if self.lines > self.limits.max_listing_lines {
            return Err(CodecError::TooManyLines {
                limit: self.limits.max_listing_lines,
            });
        }
        Ok(BodyEvent::Data(line))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `wire` to a fresh body decoder in the given pieces; returns the message and
    /// what was left in the buffer after the terminator.
    fn body_in_pieces(
        wire: &[u8],
        cuts: &[usize],
        limits: &Limits,
    ) -> Result<(Vec<u8>, Vec<u8>), CodecError> {
        let mut decoder = BodyDecoder::new(limits);
        let mut buf = BytesMut::new();
        let mut message = Vec::new();
        let mut start = 0;
        for &cut in cuts.iter().chain(std::iter::once(&wire.len())) {
            buf.extend_from_slice(&wire[start..cut]);
            start = cut;
            loop {
                match decoder.decode(&mut buf)? {
                    BodyEvent::Data(d) => message.extend_from_slice(&d),
                    BodyEvent::NeedMore => break,
                    BodyEvent::End => return Ok((message, [&buf[..], &wire[start..]].concat())),
                }
            }
        }
        panic!("no terminator in {wire:?}");
    }

    #[test]
    fn dot_stuffed_lines_lose_one_dot() {
        let wire = b"..\r\n...two\r\n.x\r\nplain.\r\n.\r\n+OK next";
        let (msg, rest) = body_in_pieces(wire, &[], &Limits::default()).unwrap();
        assert_eq!(msg, b".\r\n..two\r\nx\r\nplain.\r\n");
        assert_eq!(rest, b"+OK next");
    }

    #[test]
    fn terminator_split_at_every_byte_gives_the_same_message() {
        let wire = b"Subject: a\r\n\r\n..leading dot\r\nlast line\r\n.\r\nafter";
        let expected = b"Subject: a\r\n\r\n.leading dot\r\nlast line\r\n".to_vec();
        for a in 0..=wire.len() {
            for b in a..=wire.len() {
                let got = body_in_pieces(wire, &[a, b], &Limits::default()).unwrap();
                assert_eq!(got, (expected.clone(), b"after".to_vec()), "cuts at {a} and {b}");
            }
        }
    }

    #[test]
    fn bare_lf_lines_and_terminator_are_accepted() {
        let (msg, rest) = body_in_pieces(b"a\n..b\n.\nX", &[], &Limits::default()).unwrap();
        assert_eq!((msg, rest), (b"a\n.b\n".to_vec(), b"X".to_vec()));
    }

    #[test]
    fn empty_body_and_dot_lines_that_are_not_terminators() {
        assert_eq!(body_in_pieces(b".\r\n", &[], &Limits::default()).unwrap().0, b"");
        let (msg, _) = body_in_pieces(b".\rx\r\n. \r\n.\r\n", &[1, 2], &Limits::default()).unwrap();
        assert_eq!(msg, b"\rx\r\n \r\n");
    }

    #[test]
    fn a_message_over_the_limit_is_refused() {
        let limits = Limits {
            max_message_size: 8,
            ..Limits::default()
        };
        assert!(body_in_pieces(b"12345678\r\n.\r\n", &[], &limits).is_err());
        assert!(body_in_pieces(b"123456\r\n.\r\n", &[], &limits).is_ok());
    }

    #[test]
    fn long_lines_stream_without_waiting_for_their_end() {
        let mut decoder = BodyDecoder::new(&Limits {
            max_line_length: 4,
            ..Limits::default()
        });
        let mut buf = BytesMut::from(&b"a very long line without end"[..]);
        assert_eq!(
            decoder.decode(&mut buf).unwrap(),
            BodyEvent::Data(Bytes::from_static(b"a very long line without end"))
        );
        assert_eq!(decoder.decode(&mut buf).unwrap(), BodyEvent::NeedMore);
    }

    #[test]
    fn listing_lines_come_out_one_at_a_time() {
        let mut decoder = ListingDecoder::new(&Limits::default());
        let mut buf = BytesMut::from(&b"1 120\r\n..2 7\n.\r\nrest"[..]);
        assert_eq!(
            decoder.decode(&mut buf).unwrap(),
            BodyEvent::Data(Bytes::from_static(b"1 120"))
        );
        assert_eq!(
            decoder.decode(&mut buf).unwrap(),
            BodyEvent::Data(Bytes::from_static(b".2 7"))
        );
        assert_eq!(decoder.decode(&mut buf).unwrap(), BodyEvent::End);
        assert_eq!(decoder.decode(&mut buf).unwrap(), BodyEvent::End);
        assert_eq!(&buf[..], b"rest");
    }

    #[test]
    fn listing_limits_hold() {
        let limits = Limits {
            max_line_length: 8,
            max_listing_lines: 2,
            ..Limits::default()
        };
        let mut decoder = ListingDecoder::new(&limits);
        let mut buf = BytesMut::from(&b"123456789"[..]);
        assert_eq!(
            decoder.decode(&mut buf),
            Err(CodecError::LineTooLong { limit: 8 })
        );
        let mut decoder = ListingDecoder::new(&limits);
        let mut buf = BytesMut::from(&b"1\r\n2\r\n3\r\n.\r\n"[..]);
        assert!(decoder.decode(&mut buf).is_ok() && decoder.decode(&mut buf).is_ok());
        assert_eq!(
            decoder.decode(&mut buf),
            Err(CodecError::TooManyLines { limit: 2 })
        );
    }
}
