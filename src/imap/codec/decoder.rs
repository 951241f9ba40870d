//! Cuts the byte stream into complete responses (a line plus its literals), within
//! [`Limits`], and only then parses them.

use bytes::BytesMut;

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
        todo!()
    }
}

impl From<DecodeError> for crate::Error {
    fn from(err: DecodeError) -> Self {
        todo!("{err}")
    }
}

/// Sans-IO response decoder: feed it bytes, take complete responses out.
#[derive(Debug)]
pub struct ResponseDecoder {
    limits: Limits,
    buf: BytesMut,
}

impl ResponseDecoder {
    /// A decoder enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        ResponseDecoder { limits, buf: BytesMut::new() }
    }

    /// Appends bytes received from the server.
    pub fn feed(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// At least `min` bytes of zeroed space at the end of the buffer to read into directly;
    /// call [`ResponseDecoder::filled`] with how many bytes were written.
    pub fn read_buf(&mut self, min: usize) -> &mut [u8] {
        todo!("{min}")
    }

    /// Marks `n` bytes of the last [`ResponseDecoder::read_buf`] as received.
    pub fn filled(&mut self, n: usize) {
        todo!("{n}")
    }

    /// The next complete response, `Ok(None)` if more bytes are needed.
    pub fn decode(&mut self) -> Result<Option<Response>, DecodeError> {
        todo!("{:?}", self.limits)
    }

    /// Bytes received and not yet returned as responses (non-zero after STARTTLS's OK means
    /// the server injected plaintext: an error).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
}
