//! # mailmigrate
//!
//! An embeddable engine that moves whole mailboxes from an old mail provider (IMAP or POP3)
//! into new storage: every folder, every message, flags and internal dates, incrementally,
//! resumable after any crash, never copying a message twice.
//!
//! The crate is layered; each layer only uses the ones below it:
//!
//! | module | holds |
//! |---|---|
//! | [`folder`] | folder names: decoding, system-folder roles, sanitising, target layouts (pure) |
//! | [`imap`], [`pop3`] | async protocol sessions over any byte stream, above sans-IO codecs |
//! | [`net`] | connecting, TLS (rustls + webpki-roots), timers |
//!
//! Errors are one [`Error`] type whose [`Error::kind`] says what a caller can do about it.
//! Secrets are [`Secret`]s and never appear in a `Debug`, an error or a log line.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![deny(missing_debug_implementations)]

mod error;
mod secret;
mod uid;

pub mod folder;
pub mod imap;
pub mod net;
pub mod pop3;
pub mod store;
pub mod sync;

pub use error::{Error, ErrorKind, Result};
pub use secret::{Credentials, Secret};
pub use uid::{ParseUidSetError, Uid, UidSet};
