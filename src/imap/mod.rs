//! The IMAP client (client side of RFC 3501 and RFC 9051).
//!
//! [`codec`] is sans-IO: it turns bytes into responses and commands into bytes.

pub mod codec;
