//! The POP3 client (RFC 1939, RFC 2449): moves the inbox of sources whose IMAP is off.

pub mod codec;
