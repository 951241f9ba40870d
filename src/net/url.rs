//! `imaps://user@host:993`-style account URLs, as examples, rosters and hosts write them.

use std::fmt;
use std::str::FromStr;

use crate::net::{Security, ServerConfig};
use crate::{Error, ErrorKind, Result};

/// Which mail protocol an account URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum Protocol {
    /// IMAP: every folder.
    Imap,
    /// POP3: the inbox only.
    Pop3,
}

/// An account on a server, written as a URL without the password.
///
/// | scheme | protocol | security | default port |
/// |---|---|---|---|
/// | `imaps://` | IMAP | implicit TLS | 993 |
/// | `imap://` | IMAP | STARTTLS, required | 143 |
/// | `imap+insecure://` | IMAP | plaintext (loopback tests only) | 143 |
/// | `pop3s://` | POP3 | implicit TLS | 995 |
/// | `pop3://` | POP3 | STLS, required | 110 |
/// | `pop3+insecure://` | POP3 | plaintext (loopback tests only) | 110 |
///
/// The user may contain `@` (the host follows the last one) or write it as `%40`. A password
/// in the URL is refused: it would show in process lists and shell histories.
///
/// ```
/// use mailmigrate::net::{AccountUrl, Protocol, Security};
/// let url: AccountUrl = "imaps://old@example.com@imap.example.com".parse().unwrap();
/// assert_eq!(url.protocol, Protocol::Imap);
/// assert_eq!(url.security, Security::Tls);
/// assert_eq!(url.user, "old@example.com");
/// assert_eq!((url.host.as_str(), url.port), ("imap.example.com", 993));
/// assert!("imaps://u:secret@host".parse::<AccountUrl>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountUrl {
    /// IMAP or POP3.
    pub protocol: Protocol,
    /// Transport security.
    pub security: Security,
    /// The account name.
    pub user: String,
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl AccountUrl {
    /// The server part, with default TLS settings and timeout.
    pub fn server(&self) -> ServerConfig {
        ServerConfig::new(self.host.clone(), self.port, self.security)
    }
}

fn invalid(message: String) -> Error {
    Error::new(ErrorKind::InvalidInput, message)
}

impl FromStr for AccountUrl {
    type Err = Error;

    fn from_str(url: &str) -> Result<Self> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| invalid(format!("{url:?} is not a URL like imaps://user@host")))?;
        let (protocol, security, default_port) = match scheme.to_ascii_lowercase().as_str() {
            "imaps" => (Protocol::Imap, Security::Tls, 993),
            "imap" => (Protocol::Imap, Security::StartTls, 143),
            "imap+insecure" => (Protocol::Imap, Security::Plaintext, 143),
            "pop3s" => (Protocol::Pop3, Security::Tls, 995),
            "pop3" => (Protocol::Pop3, Security::StartTls, 110),
            "pop3+insecure" => (Protocol::Pop3, Security::Plaintext, 110),
            other => {
                return Err(invalid(format!(
                    "unknown scheme {other:?}; use imaps://, imap://, imap+insecure://, pop3s://, pop3:// or pop3+insecure://"
                )));
            }
        };
        let rest = rest.trim_end_matches('/');
        let (userinfo, hostport) = rest
            .rsplit_once('@')
            .ok_or_else(|| invalid("the URL names no user; write scheme://USER@HOST".to_owned()))?;
        if userinfo.contains(':') {
            return Err(invalid(
                "do not put the password in the URL (it would show in the process list); \
                 pass it through the environment or a prompt"
                    .to_owned(),
            ));
        }
        let user = percent_decode(userinfo)?;
        if user.is_empty() {
            return Err(invalid("the user name in the URL is empty".to_owned()));
        }
        let (host, port) = split_host_port(hostport, default_port)?;
        Ok(AccountUrl {
            protocol,
            security,
            user,
            host,
            port,
        })
    }
}

impl fmt::Display for AccountUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match (self.protocol, self.security) {
            (Protocol::Imap, Security::Tls) => "imaps",
            (Protocol::Imap, Security::StartTls) => "imap",
            (Protocol::Imap, Security::Plaintext) => "imap+insecure",
            (Protocol::Pop3, Security::Tls) => "pop3s",
            (Protocol::Pop3, Security::StartTls) => "pop3",
            (Protocol::Pop3, Security::Plaintext) => "pop3+insecure",
        };
        let user = self.user.replace('%', "%25").replace(':', "%3A");
        if self.host.contains(':') {
            write!(f, "{scheme}://{user}@[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{user}@{}:{}", self.host, self.port)
        }
    }
}

fn split_host_port(hostport: &str, default_port: u16) -> Result<(String, u16)> {
    let bad_port = |p: &str| invalid(format!("{p:?} is not a port number"));
    if let Some(rest) = hostport.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| invalid("unclosed '[' in the host".to_owned()))?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| bad_port(p))?,
            None if after.is_empty() => default_port,
            None => return Err(invalid(format!("unexpected {after:?} after the host"))),
        };
        return Ok((host.to_owned(), port));
    }
    let (host, port) = match hostport.rsplit_once(':') {
        Some((host, p)) => (host, p.parse().map_err(|_| bad_port(p))?),
        None => (hostport, default_port),
    };
    if host.is_empty() {
        return Err(invalid("the host in the URL is empty".to_owned()));
    }
    Ok((host.to_owned(), port))
}

fn percent_decode(text: &str) -> Result<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .ok_or_else(|| invalid("a '%' in the user is not followed by two hex digits".to_owned()))?;
            let byte =
                u8::from_str_radix(hex, 16).map_err(|_| invalid(format!("%{hex} is not a valid escape")))?;
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| invalid("the user name is not valid UTF-8".to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scheme_has_its_security_and_default_port() {
        for (url, protocol, security, port) in [
            ("imaps://u@h", Protocol::Imap, Security::Tls, 993),
            ("imap://u@h", Protocol::Imap, Security::StartTls, 143),
            ("imap+insecure://u@h", Protocol::Imap, Security::Plaintext, 143),
            ("pop3s://u@h", Protocol::Pop3, Security::Tls, 995),
            ("pop3://u@h", Protocol::Pop3, Security::StartTls, 110),
            (
                "POP3+INSECURE://u@h:1110/",
                Protocol::Pop3,
                Security::Plaintext,
                1110,
            ),
        ] {
            let parsed: AccountUrl = url.parse().unwrap();
            assert_eq!(
                (parsed.protocol, parsed.security, parsed.port),
                (protocol, security, port),
                "{url}"
            );
        }
    }

    #[test]
    fn users_with_at_signs_ipv6_hosts_and_escapes_parse() {
        let url: AccountUrl = "imaps://a%40b.com@[::1]:10993".parse().unwrap();
        assert_eq!(
            (url.user.as_str(), url.host.as_str(), url.port),
            ("a@b.com", "::1", 10993)
        );
        assert_eq!(url.to_string(), "imaps://a@b.com@[::1]:10993");
        assert_eq!(url.to_string().parse::<AccountUrl>().unwrap(), url);
    }

    #[test]
    fn bad_urls_say_what_is_wrong_without_echoing_a_password() {
        let err = "imaps://alice:hunter2@host".parse::<AccountUrl>().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(!err.to_string().contains("hunter2"));
        for bad in [
            "host",
            "ftp://u@h",
            "imaps://h",
            "imaps://u@h:x",
            "imaps://@h",
            "imaps://u@[::1",
            "imaps://%zz@h",
        ] {
            let err = bad.parse::<AccountUrl>().unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad}");
        }
    }
}
