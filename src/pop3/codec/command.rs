//! Commands the client sends (RFC 1939, RFC 2449, RFC 2595, RFC 5034).

use bytes::{BufMut, BytesMut};

use super::CodecError;
use crate::secret::Secret;

/// A POP3 command.
///
/// There is deliberately no `DELE`: a migration reads its source and never deletes mail.
/// Secrets travel as [`Secret`], so `Debug` of a command never shows them.
///
/// ```
/// use bytes::BytesMut;
/// use mailmigrate::pop3::codec::Command;
/// let mut out = BytesMut::new();
/// Command::Top { msg: 3, lines: 0 }.encode(&mut out).unwrap();
/// Command::User("alice@example.com").encode(&mut out).unwrap();
/// assert_eq!(&out[..], b"TOP 3 0\r\nUSER alice@example.com\r\n");
/// assert!(Command::User("alice\r\nDELE 1").encode(&mut out).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command<'a> {
    /// `CAPA` (RFC 2449).
    Capa,
    /// `STLS` (RFC 2595): switch to TLS.
    Stls,
    /// `USER name`.
    User(&'a str),
    /// `PASS password`.
    Pass(&'a Secret),
    /// `APOP name digest` (RFC 1939 section 7).
    Apop {
        /// The account name (no spaces).
        user: &'a str,
        /// The lowercase hex MD5 digest of the greeting timestamp and the password.
        digest: &'a str,
    },
    /// `AUTH mechanism` (RFC 5034), answered by `+` continuations.
    Auth {
        /// The SASL mechanism (`PLAIN`, `XOAUTH2`).
        mechanism: &'a str,
    },
    /// One base64 line answering an `AUTH` continuation (it may encode the password); an
    /// empty secret sends an empty line.
    AuthResponse(&'a Secret),
    /// `*`: abandon an `AUTH` exchange.
    AuthCancel,
    /// `STAT`.
    Stat,
    /// `LIST` for every message, or `LIST n` for one.
    List(Option<u32>),
    /// `UIDL` for every message, or `UIDL n` for one.
    Uidl(Option<u32>),
    /// `RETR n`.
    Retr(u32),
    /// `TOP n lines`: the headers and the first `lines` lines of the body.
    Top {
        /// Message number.
        msg: u32,
        /// Body lines wanted.
        lines: u32,
    },
    /// `NOOP`.
    Noop,
    /// `RSET`.
    Rset,
    /// `QUIT`.
    Quit,
}

impl Command<'_> {
    /// The command's keyword, safe to show in messages (never an argument).
    pub fn name(&self) -> &'static str {
        match self {
            Command::Capa => "CAPA",
            Command::Stls => "STLS",
            Command::User(_) => "USER",
            Command::Pass(_) => "PASS",
            Command::Apop { .. } => "APOP",
            Command::Auth { .. } => "AUTH",
            Command::AuthResponse(_) | Command::AuthCancel => "AUTH response",
            Command::Stat => "STAT",
            Command::List(_) => "LIST",
            Command::Uidl(_) => "UIDL",
            Command::Retr(_) => "RETR",
            Command::Top { .. } => "TOP",
            Command::Noop => "NOOP",
            Command::Rset => "RSET",
            Command::Quit => "QUIT",
        }
    }

    /// Appends the command line, CRLF included, to `out`.
    ///
    /// Fails (writing nothing) when an argument holds CR, LF or NUL, is empty where a value
    /// is required, or a message number is 0: such a line would end the command early, inject
    /// another one, or be rejected anyway.
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), CodecError> {
        let start = out.len();
        let result = self.encode_unchecked(out);
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    fn encode_unchecked(&self, out: &mut BytesMut) -> Result<(), CodecError> {
        match *self {
            Command::User(user) => word(out, "USER", "the user name", user, false)?,
            Command::Pass(password) => word(out, "PASS", "the password", password.expose(), false)?,
            Command::Apop { user, digest } => {
                word(out, "APOP", "the user name", user, true)?;
                arg(out, "the APOP digest", digest, true)?;
            }
            Command::Auth { mechanism } => word(out, "AUTH", "the SASL mechanism", mechanism, true)?,
            Command::AuthResponse(response) => {
                check("the SASL response", response.expose(), true, true)?;
                out.put_slice(response.expose().as_bytes());
            }
            Command::AuthCancel => out.put_u8(b'*'),
            Command::List(Some(msg)) => numbered(out, "LIST", msg)?,
            Command::Uidl(Some(msg)) => numbered(out, "UIDL", msg)?,
            Command::Retr(msg) => numbered(out, "RETR", msg)?,
            Command::Top { msg, lines } => {
                numbered(out, "TOP", msg)?;
                out.put_slice(format!(" {lines}").as_bytes());
            }
            Command::Capa
            | Command::Stls
            | Command::Stat
            | Command::List(None)
            | Command::Uidl(None)
            | Command::Noop
            | Command::Rset
            | Command::Quit => out.put_slice(self.name().as_bytes()),
        }
        out.put_slice(b"\r\n");
        Ok(())
    }
}

fn check(what: &'static str, value: &str, allow_empty: bool, forbid_space: bool) -> Result<(), CodecError> {
    let problem = if value.is_empty() && !allow_empty {
        "it is empty"
    } else if value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
        "it contains a line break or NUL byte, which would end the command early"
    } else if forbid_space && value.contains(' ') {
        "it contains a space, which would split it into two arguments"
    } else {
        return Ok(());
    };
    Err(CodecError::InvalidArgument { what, problem })
}

fn arg(out: &mut BytesMut, what: &'static str, value: &str, forbid_space: bool) -> Result<(), CodecError> {
    check(what, value, false, forbid_space)?;
    out.put_u8(b' ');
    out.put_slice(value.as_bytes());
    Ok(())
}

fn word(
    out: &mut BytesMut,
    keyword: &str,
    what: &'static str,
    value: &str,
    forbid_space: bool,
) -> Result<(), CodecError> {
    out.put_slice(keyword.as_bytes());
    arg(out, what, value, forbid_space)
}

fn numbered(out: &mut BytesMut, keyword: &str, msg: u32) -> Result<(), CodecError> {
    if msg == 0 {
        return Err(CodecError::InvalidArgument {
            what: "the message number",
            problem: "POP3 message numbers start at 1",
        });
    }
    out.put_slice(format!("{keyword} {msg}").as_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(cmd: Command<'_>) -> Result<Vec<u8>, CodecError> {
        let mut out = BytesMut::from(&b"kept"[..]);
        cmd.encode(&mut out)
            .map(|()| out[4..].to_vec())
            .inspect_err(|_| assert_eq!(&out[..], b"kept"))
    }

    #[test]
    fn commands_encode_byte_exact() {
        let password = Secret::new("pa ss");
        let response = Secret::new("AGEAYg==");
        let cases: [(Command<'_>, &[u8]); 14] = [
            (Command::Capa, b"CAPA\r\n"),
            (Command::Stls, b"STLS\r\n"),
            (Command::User("a@b.c"), b"USER a@b.c\r\n"),
            (Command::Pass(&password), b"PASS pa ss\r\n"),
            (
                Command::Apop {
                    user: "mrose",
                    digest: "c4c9334bac560ecc979e58001b3e22fb",
                },
                b"APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n",
            ),
            (Command::Auth { mechanism: "PLAIN" }, b"AUTH PLAIN\r\n"),
            (Command::AuthResponse(&response), b"AGEAYg==\r\n"),
            (Command::AuthCancel, b"*\r\n"),
            (Command::List(None), b"LIST\r\n"),
            (Command::Uidl(Some(7)), b"UIDL 7\r\n"),
            (Command::Retr(12), b"RETR 12\r\n"),
            (Command::Top { msg: 1, lines: 0 }, b"TOP 1 0\r\n"),
            (Command::Rset, b"RSET\r\n"),
            (Command::Quit, b"QUIT\r\n"),
        ];
        for (cmd, wire) in cases {
            assert_eq!(encoded(cmd).unwrap(), wire, "{cmd:?}");
        }
        assert_eq!(encoded(Command::AuthResponse(&Secret::new(""))).unwrap(), b"\r\n");
    }

    #[test]
    fn line_breaks_nul_and_bad_numbers_are_refused() {
        let evil = Secret::new("x\r\nDELE 1");
        for cmd in [
            Command::User("a\nb"),
            Command::User(""),
            Command::Pass(&evil),
            Command::Pass(&Secret::new("a\0b")),
            Command::AuthResponse(&evil),
            Command::Apop {
                user: "a b",
                digest: "00",
            },
            Command::Auth { mechanism: "PLAIN\r" },
            Command::Retr(0),
            Command::Top { msg: 0, lines: 1 },
        ] {
            assert!(
                matches!(encoded(cmd), Err(CodecError::InvalidArgument { .. })),
                "{cmd:?}"
            );
        }
    }

    #[test]
    fn debug_never_shows_a_password() {
        let password = Secret::new("hunter2");
        assert!(!format!("{:?}", Command::Pass(&password)).contains("hunter2"));
        assert!(!format!("{:?}", Command::AuthResponse(&password)).contains("hunter2"));
    }
}
