//! Encodes commands: tags, and for each argument an atom, a quoted string or a literal.

use bytes::Bytes;

use crate::imap::codec::{Command, Fragment, Tag};

/// Which literal forms the server accepts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EncodeOptions {
    /// LITERAL+ (RFC 7888): non-synchronizing literals of any size.
    pub literal_plus: bool,
    /// LITERAL- (RFC 7888): non-synchronizing literals up to 4096 bytes.
    pub literal_minus: bool,
}

/// Turns [`Command`]s into bytes, numbering the tags.
#[derive(Debug, Default)]
pub struct CommandEncoder {
    next_tag: u32,
    options: EncodeOptions,
}

impl CommandEncoder {
    /// An encoder starting at tag `A0001`.
    pub fn new() -> Self {
        CommandEncoder::default()
    }

    /// Sets the literal forms to use (after reading the capabilities).
    pub fn set_options(&mut self, options: EncodeOptions) {
        self.options = options;
    }

    /// Encodes `command` with a fresh tag. Fails with `InvalidInput` for arguments that
    /// cannot be sent (e.g. a user name with CR or LF).
    pub fn encode(&mut self, command: &Command<'_>) -> crate::Result<(Tag, Vec<Fragment>)> {
        todo!("{command:?} {} {:?}", self.next_tag, self.options)
    }

    /// `DONE\r\n`, ending IDLE.
    pub fn done() -> Bytes {
        Bytes::from_static(b"DONE\r\n")
    }

    /// One SASL response line: `data` base64-encoded plus CRLF.
    pub fn sasl_response(data: &[u8]) -> Bytes {
        todo!("{}", data.len())
    }

    /// `*\r\n`, cancelling an AUTHENTICATE exchange.
    pub fn sasl_cancel() -> Bytes {
        Bytes::from_static(b"*\r\n")
    }
}
