//! Sans-IO IMAP: framing, parsing and command encoding, with no I/O and no async.
//!
//! Everything a hostile server can reach lives here, so this is what `fuzz/` targets.

mod decoder;
mod encoder;
mod mailbox;
mod parse;
mod types;

pub use decoder::{DecodeError, ResponseDecoder};
pub(crate) use encoder::is_atom_char;
pub use encoder::{CommandEncoder, EncodeOptions};
pub use mailbox::{DecodedName, LEGACY_CHARSETS, MailboxName, NameEncoding, decode_mutf7, encode_mutf7};
pub use types::*;
