//! Built-in targets: [`Migrator`](crate::sync::Migrator)s a host can use as they are.
//!
//! * [`Maildir`]: a Maildir++ directory on local disk that Dovecot and Courier read, the
//!   embedded default for scripts and tests (needs the `serde` feature, on by default, for
//!   its state file).
//! * [`Imap`]: APPENDs into any IMAP server, discovering its system folders and creating the
//!   planned ones (also needs `serde`).

#[cfg(feature = "serde")]
mod imap;
#[cfg(feature = "serde")]
mod maildir;

#[cfg(feature = "serde")]
pub use imap::{Imap, ImapOptions};
#[cfg(feature = "serde")]
pub use maildir::{Maildir, MaildirOptions, STATE_FILE_NAME};
