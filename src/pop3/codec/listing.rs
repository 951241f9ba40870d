//! The content of `STAT`, `LIST`, `UIDL` and `CAPA` responses.

use std::fmt;
use std::time::Duration;

use nom::bytes::complete::take_while1;
use nom::character::complete::{digit1, space1};
use nom::combinator::map_res;
use nom::{IResult, Parser};

use super::{CodecError, printable};

/// The reply to `STAT`: how many messages the maildrop holds and their total size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Stat {
    /// Number of messages.
    pub count: u32,
    /// Total size in octets, as the server counts it.
    pub size: u64,
}

/// One line of `LIST` (or the reply to `LIST n`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ListEntry {
    /// Message number in this session (1-based).
    pub msg: u32,
    /// Size in octets, as the server counts it.
    pub size: u64,
}

/// One line of `UIDL` (or the reply to `UIDL n`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UidlEntry {
    /// Message number in this session (1-based).
    pub msg: u32,
    /// The server's unique id for the message, stable across sessions (printable ASCII).
    pub uid: String,
}

fn number<T: std::str::FromStr>(input: &[u8]) -> IResult<&[u8], T> {
    // digit1 only yields ASCII digits, so the str conversion cannot fail; overflow can.
    map_res(digit1, |d: &[u8]| {
        std::str::from_utf8(d)
            .map_err(|_| ())
            .and_then(|s| s.parse().map_err(|_| ()))
    })
    .parse(input)
}

/// Two numbers separated by spaces, then nothing or whitespace and anything (servers may
/// append comments, which RFC 1939 tolerates).
fn two_numbers<A: std::str::FromStr, B: std::str::FromStr>(input: &[u8]) -> Option<(A, B)> {
    let (rest, (a, _, b)) = (number::<A>, space1, number::<B>).parse(input).ok()?;
    match rest.first() {
        None | Some(b' ' | b'\t') => Some((a, b)),
        Some(_) => None,
    }
}

/// Parses the text of a `STAT` reply (`2 320`).
pub fn parse_stat(text: &[u8]) -> Result<Stat, CodecError> {
    two_numbers(text)
        .map(|(count, size)| Stat { count, size })
        .ok_or_else(|| CodecError::BadResponse {
            what: "STAT",
            line: printable(text),
        })
}

/// Parses a `LIST` line or the text of a `LIST n` reply (`1 120`).
pub fn parse_list(line: &[u8]) -> Result<ListEntry, CodecError> {
    match two_numbers(line) {
        Some((msg, size)) if msg > 0 => Ok(ListEntry { msg, size }),
        _ => Err(CodecError::BadResponse {
            what: "LIST",
            line: printable(line),
        }),
    }
}

/// Parses a `UIDL` line or the text of a `UIDL n` reply (`1 whqtswO00WBw418f9t5JxYwZ`).
///
/// RFC 1939 allows 1 to 70 characters from 0x21 to 0x7E; longer ids are accepted (within
/// the line limit) because some servers send them.
pub fn parse_uidl(line: &[u8]) -> Result<UidlEntry, CodecError> {
    let uid_char = |b: u8| (0x21..=0x7e).contains(&b);
    let parsed = (number::<u32>, space1, take_while1(uid_char)).parse(line);
    match parsed {
        Ok((rest, (msg, _, uid))) if msg > 0 && rest.iter().all(|b| b.is_ascii_whitespace()) => {
            Ok(UidlEntry {
                msg,
                // Only printable ASCII passed take_while1.
                uid: String::from_utf8_lossy(uid).into_owned(),
            })
        }
        _ => Err(CodecError::BadResponse {
            what: "UIDL",
            line: printable(line),
        }),
    }
}

/// One line of `CAPA` (RFC 2449): a name and its arguments.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Capability {
    /// The capability name, upper-cased (`TOP`, `SASL`, `STLS`, ...).
    pub name: String,
    /// Its arguments as sent (`SASL PLAIN XOAUTH2` has `["PLAIN", "XOAUTH2"]`).
    pub args: Vec<String>,
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        for arg in &self.args {
            write!(f, " {arg}")?;
        }
        Ok(())
    }
}

/// What a server announced in its `CAPA` reply.
///
/// ```
/// use mailmigrate::pop3::codec::Capabilities;
/// let caps = Capabilities::from_lines([&b"TOP"[..], b"SASL PLAIN xoauth2", b"LOGIN-DELAY 900", b"UIDL"]);
/// assert!(caps.has("uidl") && caps.has_sasl("XOAUTH2") && !caps.has("STLS"));
/// assert_eq!(caps.login_delay(), Some(std::time::Duration::from_secs(900)));
/// assert_eq!(caps.to_string(), "TOP, SASL PLAIN xoauth2, LOGIN-DELAY 900, UIDL");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    list: Vec<Capability>,
}

impl Capabilities {
    /// Builds the set from the lines of a `CAPA` block (empty lines are skipped).
    pub fn from_lines<'a>(lines: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let list = lines
            .into_iter()
            .filter_map(|line| {
                let text = printable(line);
                let mut words = text.split_ascii_whitespace();
                let name = words.next()?.to_ascii_uppercase();
                Some(Capability {
                    name,
                    args: words.map(str::to_owned).collect(),
                })
            })
            .collect();
        Capabilities { list }
    }

    /// Whether the capability `name` was announced (case-insensitive).
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The capability `name`, with its arguments (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&Capability> {
        self.list.iter().find(|c| c.name.eq_ignore_ascii_case(name))
    }

    /// Whether `SASL` lists the mechanism `mechanism` (case-insensitive).
    pub fn has_sasl(&self, mechanism: &str) -> bool {
        self.get("SASL")
            .is_some_and(|c| c.args.iter().any(|m| m.eq_ignore_ascii_case(mechanism)))
    }

    /// The minimum time between logins the server announced (`LOGIN-DELAY n`).
    pub fn login_delay(&self) -> Option<Duration> {
        let seconds = self.get("LOGIN-DELAY")?.args.first()?.parse().ok()?;
        Some(Duration::from_secs(seconds))
    }

    /// Every capability, in the server's order.
    pub fn iter(&self) -> impl Iterator<Item = &Capability> {
        self.list.iter()
    }

    /// Whether the server announced nothing (or does not support `CAPA`).
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

impl fmt::Display for Capabilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, cap) in self.list.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{cap}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_and_list_take_two_numbers_and_tolerate_comments() {
        assert_eq!(parse_stat(b"2 320").unwrap(), Stat { count: 2, size: 320 });
        assert_eq!(parse_stat(b"0 0 messages").unwrap(), Stat { count: 0, size: 0 });
        assert_eq!(parse_list(b"1  120").unwrap(), ListEntry { msg: 1, size: 120 });
        for bad in [&b"2"[..], b"two 320", b"2 320x", b"99999999999 1", b"", b" 1 2"] {
            assert!(parse_stat(bad).is_err(), "{bad:?}");
        }
        assert!(parse_list(b"0 12").is_err(), "message numbers start at 1");
    }

    #[test]
    fn uidl_ids_are_printable_ascii() {
        assert_eq!(
            parse_uidl(b"1 whqtswO00WBw418f9t5JxYwZ").unwrap(),
            UidlEntry {
                msg: 1,
                uid: "whqtswO00WBw418f9t5JxYwZ".into()
            }
        );
        assert_eq!(parse_uidl(b"7 a.b/c:d\r").unwrap().uid, "a.b/c:d");
        for bad in [
            &b"1"[..],
            b"1 ",
            b"x abc",
            b"1 ab\x01",
            b"1 caf\xc3\xa9",
            b"1 a b",
        ] {
            assert!(parse_uidl(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn capabilities_are_case_insensitive_and_keep_arguments() {
        let caps = Capabilities::from_lines([&b"stls"[..], b"", b"SASL PLAIN", b"IMPLEMENTATION Dovecot x"]);
        assert!(caps.has("STLS"));
        assert!(caps.has_sasl("plain") && !caps.has_sasl("XOAUTH2"));
        assert_eq!(caps.get("implementation").unwrap().args, ["Dovecot", "x"]);
        assert_eq!(caps.iter().count(), 3);
        assert_eq!(caps.login_delay(), None);
    }
}
