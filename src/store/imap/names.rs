//! Pure helpers of the IMAP target: folder names on the server, which flags can be APPENDed,
//! naming rules by server, and the SEARCH that finds a message again.

use bytes::{BufMut, BytesMut};

use crate::folder::TargetRules;
use crate::imap::codec::{Capabilities, Flag, MailboxName};
use crate::{Error, ErrorKind, Result};

/// What the target server is, as far as naming goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Naming {
    /// Hierarchy delimiter (`/` for a flat server, whose names then hold it literally).
    pub delimiter: char,
    /// The personal namespace prefix, raw (`INBOX.` on Courier and Cyrus, often empty).
    pub prefix: MailboxName,
    /// Names travel as UTF-8 (UTF8=ACCEPT enabled) rather than modified UTF-7.
    pub utf8: bool,
    /// Names compare without case (Exchange, Gmail).
    pub rules: TargetRules,
}

impl Naming {
    /// The naming of a server from what it said: greeting, capabilities, NAMESPACE, LIST.
    pub fn new(
        delimiter: Option<char>,
        prefix: MailboxName,
        utf8: bool,
        greeting: &str,
        capabilities: &Capabilities,
    ) -> Naming {
        let delimiter = delimiter.filter(|&d| TargetRules::imap(d).is_ok()).unwrap_or('/');
        let mut rules = match TargetRules::imap(delimiter) {
            Ok(rules) => rules,
            // Unreachable: the delimiter was checked above; '/' is always accepted.
            Err(_) => TargetRules::exchange(),
        };
        let lower = greeting.to_ascii_lowercase();
        if lower.contains("microsoft exchange") {
            // Exchange and Office 365: names ignore case, and "Files" cannot be created.
            rules = rules.with_case_insensitive(true).with_reserved(["Files"]);
        } else if capabilities.has("X-GM-EXT-1") {
            // Gmail labels: no case, no runs of spaces, no '^'.
            rules = rules
                .with_case_insensitive(true)
                .with_collapsed_whitespace(true)
                .with_forbidden(['^']);
        }
        if utf8 {
            rules = rules.with_utf8_names(true);
        }
        Naming {
            delimiter,
            prefix,
            utf8,
            rules,
        }
    }

    /// The server's name for the folder at `path`: components joined with the delimiter,
    /// under the personal prefix (INBOX and folders below it excepted: INBOX is absolute),
    /// encoded as the server wants names.
    pub fn server_name(&self, path: &[String]) -> Result<MailboxName> {
        if path.is_empty() {
            return Err(invalid(path, "it has no name"));
        }
        for component in path {
            if component.is_empty() {
                return Err(invalid(path, "a component is empty"));
            }
            if component.contains(self.delimiter) {
                return Err(invalid(
                    path,
                    &format!(
                        "a component contains the server's hierarchy delimiter {:?}",
                        self.delimiter
                    ),
                ));
            }
            if component.chars().any(|c| matches!(c, '\0' | '\r' | '\n')) {
                return Err(invalid(path, "a component contains a line break or NUL"));
            }
        }
        let delimiter = self.delimiter.to_string();
        if path[0].eq_ignore_ascii_case("INBOX") {
            let mut parts = vec!["INBOX"];
            parts.extend(path[1..].iter().map(String::as_str));
            return Ok(MailboxName::encode(&parts.join(&delimiter), self.utf8));
        }
        let encoded = MailboxName::encode(&path.join(&delimiter), self.utf8);
        let mut raw = BytesMut::with_capacity(self.prefix.raw().len() + encoded.raw().len());
        raw.put_slice(self.prefix.raw());
        raw.put_slice(encoded.raw());
        Ok(MailboxName::from_raw(raw.freeze()))
    }
}

fn invalid(path: &[String], why: &str) -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        format!(
            "IMAP target: cannot name the folder {path:?} on the server: {why}; the folder plan sanitises names for the target"
        ),
    )
}

/// The flags to APPEND, and those dropped (as written in IMAP), given the folder's
/// PERMANENTFLAGS (`None` or empty: the server did not say, so everything is tried).
///
/// `\Recent` and `\*` are never message flags. A keyword goes when the folder accepts new
/// keywords (`\*`) or already knows it; other `\` flags only when the folder lists them.
pub(crate) fn appendable_flags(flags: &[Flag], permanent: Option<&[Flag]>) -> (Vec<Flag>, Vec<String>) {
    let permanent = permanent.filter(|p| !p.is_empty());
    let listed = |flag: &Flag| {
        permanent.is_some_and(|p| p.iter().any(|q| q.as_imap().eq_ignore_ascii_case(flag.as_imap())))
    };
    let new_keywords = permanent.is_none_or(|p| p.contains(&Flag::MayCreate));
    let mut keep: Vec<Flag> = Vec::new();
    let mut dropped = Vec::new();
    for flag in flags {
        let ok = match flag {
            Flag::Recent | Flag::MayCreate => continue,
            Flag::Seen | Flag::Answered | Flag::Flagged | Flag::Deleted | Flag::Draft => true,
            Flag::Keyword(_) => flag.can_send() && (new_keywords || listed(flag)),
            Flag::Extension(_) => flag.can_send() && listed(flag),
        };
        if !ok {
            dropped.push(flag.as_imap().to_owned());
        } else if !keep
            .iter()
            .any(|k| k.as_imap().eq_ignore_ascii_case(flag.as_imap()))
        {
            keep.push(flag.clone());
        }
    }
    (keep, dropped)
}

/// The `Message-ID` field's value (the first `<...>` in it, else the trimmed text), from the
/// message's header section; `None` if absent or not printable ASCII.
pub(crate) fn message_id(raw: &[u8]) -> Option<String> {
    let mut lines = raw.split(|&b| b == b'\n').peekable();
    while let Some(line) = lines.next() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return None;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        if !line[..colon].trim_ascii().eq_ignore_ascii_case(b"message-id") {
            continue;
        }
        let mut value = line[colon + 1..].to_vec();
        // Unfold continuation lines.
        while let Some(next) = lines.peek() {
            if next.first().is_some_and(|&b| b == b' ' || b == b'\t') {
                let next = next.strip_suffix(b"\r").unwrap_or(next);
                value.extend_from_slice(next);
                lines.next();
            } else {
                break;
            }
        }
        let value = std::str::from_utf8(&value).ok()?.trim();
        let id = match (value.find('<'), value.find('>')) {
            (Some(start), Some(end)) if start < end => &value[start..=end],
            _ => value,
        };
        let printable = !id.is_empty() && id.len() <= 998 && id.bytes().all(|b| (0x20..0x7f).contains(&b));
        return printable.then(|| id.to_owned());
    }
    None
}

/// `UID SEARCH` criteria that find a message of `size` bytes with `message_id`.
pub(crate) fn search_criteria(size: usize, message_id: Option<&str>) -> String {
    let mut criteria = vec![match size {
        0 => "SMALLER 1".to_owned(),
        n => format!("LARGER {} SMALLER {}", n - 1, n + 1),
    }];
    if let Some(id) = message_id {
        criteria.push(format!("HEADER Message-ID {}", quoted(id)));
    }
    criteria.join(" ")
}

/// An IMAP quoted string of printable ASCII.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naming(delimiter: char, prefix: &'static str) -> Naming {
        Naming::new(
            Some(delimiter),
            MailboxName::from_raw(prefix.as_bytes()),
            false,
            "Dovecot ready.",
            &Capabilities::default(),
        )
    }

    fn path(parts: &[&str]) -> Vec<String> {
        parts.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn paths_become_encoded_names_under_the_personal_prefix_except_inbox() {
        let dovecot = naming('/', "");
        assert_eq!(
            dovecot.server_name(&path(&["项目", "Q&A"])).unwrap().raw(),
            b"&mHl27g-/Q&-A"
        );
        let courier = naming('.', "INBOX.");
        assert_eq!(
            courier.server_name(&path(&["Sent"])).unwrap().raw(),
            b"INBOX.Sent"
        );
        assert_eq!(courier.server_name(&path(&["inbox"])).unwrap().raw(), b"INBOX");
        assert_eq!(
            courier.server_name(&path(&["INBOX", "x"])).unwrap().raw(),
            b"INBOX.x"
        );
        let utf8 = Naming {
            utf8: true,
            ..naming('/', "")
        };
        assert_eq!(
            utf8.server_name(&path(&["已发送"])).unwrap().raw(),
            "已发送".as_bytes()
        );
        for bad in [&[][..], &["a/b"][..], &[""][..], &["a\r\nb"][..]] {
            let err = dovecot.server_name(&path(bad)).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}");
        }
    }

    #[test]
    fn exchange_and_gmail_get_their_naming_rules() {
        let caps = Capabilities::default();
        let exchange = Naming::new(
            Some('/'),
            MailboxName::from_raw(&b""[..]),
            false,
            "The Microsoft Exchange IMAP4 service is ready.",
            &caps,
        );
        assert!(exchange.rules.is_case_insensitive());
        assert!(exchange.rules.is_reserved("files"));
        let mut gmail_caps = Capabilities::default();
        gmail_caps.atoms.insert("X-GM-EXT-1".into());
        let gmail = Naming::new(
            Some('/'),
            MailboxName::from_raw(&b""[..]),
            false,
            "Gimap ready",
            &gmail_caps,
        );
        assert!(gmail.rules.is_case_insensitive());
        assert!(gmail.rules.is_forbidden('^'));
        let plain = naming('.', "");
        assert!(!plain.rules.is_case_insensitive());
        assert_eq!(plain.rules.delimiter(), '.');
        // A flat server (NIL delimiter) or an unusable one falls back to '/'.
        let flat = Naming::new(None, MailboxName::from_raw(&b""[..]), false, "", &caps);
        assert_eq!(flat.delimiter, '/');
    }

    #[test]
    fn keywords_need_star_or_a_listing_and_recent_never_goes() {
        let flags = vec![
            Flag::Seen,
            Flag::Recent,
            Flag::Keyword("$Forwarded".into()),
            Flag::Keyword("Work".into()),
            Flag::Keyword("work".into()),
            Flag::Keyword("bad word".into()),
            Flag::Extension("\\Junk".into()),
        ];
        let (keep, dropped) = appendable_flags(&flags, None);
        assert_eq!(
            keep,
            vec![
                Flag::Seen,
                Flag::Keyword("$Forwarded".into()),
                Flag::Keyword("Work".into())
            ]
        );
        assert_eq!(dropped, vec!["bad word".to_owned(), "\\Junk".to_owned()]);

        let no_new = [Flag::Seen, Flag::Deleted, Flag::Keyword("$forwarded".into())];
        let (keep, dropped) = appendable_flags(&flags, Some(&no_new));
        assert_eq!(keep, vec![Flag::Seen, Flag::Keyword("$Forwarded".into())]);
        assert_eq!(dropped, vec!["Work", "work", "bad word", "\\Junk"]);

        let with_junk = [Flag::MayCreate, Flag::Extension("\\junk".into())];
        let (keep, _) = appendable_flags(&flags, Some(&with_junk));
        assert!(keep.contains(&Flag::Extension("\\Junk".into())));
    }

    #[test]
    fn message_ids_are_found_unfolded_and_only_in_the_header() {
        assert_eq!(
            message_id(b"Subject: a\r\nMessage-ID: <1@x>\r\n\r\n").as_deref(),
            Some("<1@x>")
        );
        assert_eq!(
            message_id(b"message-id:\r\n <2@x> (comment)\r\n\r\n").as_deref(),
            Some("<2@x>")
        );
        assert_eq!(message_id(b"Message-Id: plain\n\n").as_deref(), Some("plain"));
        assert_eq!(message_id(b"Subject: a\r\n\r\nMessage-ID: <3@x>\r\n"), None);
        assert_eq!(message_id("Message-ID: <é@x>\r\n\r\n".as_bytes()), None);
        assert_eq!(message_id(b""), None);
        assert_eq!(message_id(b"Message-ID: \r\n\r\n"), None);
    }

    #[test]
    fn search_criteria_quote_the_id_and_pin_the_size() {
        assert_eq!(
            search_criteria(120, Some("<a\"b\\c@x>")),
            "LARGER 119 SMALLER 121 HEADER Message-ID \"<a\\\"b\\\\c@x>\""
        );
        assert_eq!(search_criteria(0, None), "SMALLER 1");
        assert_eq!(search_criteria(5, None), "LARGER 4 SMALLER 6");
    }
}
