//! Folders as a server lists them, and where each sits once its name is decoded and the
//! personal namespace prefix is removed.

use bytes::Bytes;

use crate::imap::codec::{DecodedName, MailboxName};

/// One folder as LIST (or XLIST) returned it: the raw name, the hierarchy delimiter and the
/// attributes as sent (`\Sent`, `\Noselect`, `\HasChildren`, ...). The engine maps its LIST
/// results into this, for the source and for an IMAP target alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedFolder {
    /// The name exactly as the server sent it.
    pub name: MailboxName,
    /// The hierarchy delimiter (`None` for NIL: a flat name).
    pub delimiter: Option<char>,
    /// Attributes as sent, backslash included; compared without case.
    pub attributes: Vec<String>,
}

/// A LIST/XLIST result as the planner reads it: the raw name, the delimiter and the
/// attributes as written in IMAP.
impl From<crate::imap::codec::ListItem> for ListedFolder {
    fn from(item: crate::imap::codec::ListItem) -> ListedFolder {
        ListedFolder {
            attributes: item.attributes.iter().map(|a| a.as_imap().to_owned()).collect(),
            name: item.name,
            delimiter: item.delimiter,
        }
    }
}

impl ListedFolder {
    /// A folder from its raw name, delimiter and attributes.
    ///
    /// ```
    /// use mailmigrate::folder::ListedFolder;
    /// let sent = ListedFolder::new("[Gmail]/Sent Mail", Some('/'), ["\\HasNoChildren", "\\Sent"]);
    /// assert!(sent.has_attribute("\\sent"));
    /// assert!(sent.is_selectable());
    /// ```
    pub fn new<A, S>(name: impl Into<Bytes>, delimiter: Option<char>, attributes: A) -> ListedFolder
    where
        A: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ListedFolder {
            name: MailboxName::from_raw(name),
            delimiter,
            attributes: attributes.into_iter().map(Into::into).collect(),
        }
    }

    /// Whether the folder carries `attribute` (compared without case).
    pub fn has_attribute(&self, attribute: &str) -> bool {
        self.attributes.iter().any(|a| a.eq_ignore_ascii_case(attribute))
    }

    /// Whether the folder can hold messages: neither `\Noselect` nor `\NonExistent`.
    pub fn is_selectable(&self) -> bool {
        !self.has_attribute("\\Noselect") && !self.has_attribute("\\NonExistent")
    }
}

/// What the plan needs to know about provider habits beyond LIST and NAMESPACE.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProviderHints {
    /// Top-level folders that only group other folders, whose children are placed (and
    /// recognised as system folders) as if they were at the top level. QQ Mail lists every
    /// custom folder under `其他文件夹` ("other folders") while its web interface shows them
    /// as top-level folders.
    pub containers: Vec<String>,
}

impl ProviderHints {
    /// QQ Mail and Tencent Exmail: custom folders sit under `其他文件夹`.
    pub fn qq() -> ProviderHints {
        ProviderHints {
            containers: vec!["其他文件夹".to_owned()],
        }
    }
}

/// The source account's folders as listed, with its namespaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceListing {
    /// LIST results, in any order; a name listed twice counts once.
    pub folders: Vec<ListedFolder>,
    /// The personal namespace prefix from NAMESPACE (`INBOX.` on Courier and Cyrus), removed
    /// from names: `INBOX.Projects.2024` becomes `Projects` > `2024`. Empty when none.
    pub personal_prefix: MailboxName,
    /// Prefixes of other users' and shared namespaces (`#shared.`, `Other Users/`): folders
    /// under them are not this account's mail and are skipped.
    pub other_prefixes: Vec<MailboxName>,
    /// Provider habits.
    pub hints: ProviderHints,
}

impl SourceListing {
    /// A listing of `folders` with no namespace prefix and no hints.
    pub fn new(folders: impl IntoIterator<Item = ListedFolder>) -> SourceListing {
        SourceListing {
            folders: folders.into_iter().collect(),
            personal_prefix: MailboxName::from_raw(Bytes::new()),
            other_prefixes: Vec::new(),
            hints: ProviderHints::default(),
        }
    }

    /// Sets the personal namespace prefix (raw, as NAMESPACE sent it).
    pub fn with_personal_prefix(mut self, prefix: impl Into<Bytes>) -> SourceListing {
        self.personal_prefix = MailboxName::from_raw(prefix);
        self
    }

    /// Adds other users' or shared namespace prefixes (raw, as NAMESPACE sent them).
    pub fn with_other_prefixes<I, B>(mut self, prefixes: I) -> SourceListing
    where
        I: IntoIterator<Item = B>,
        B: Into<Bytes>,
    {
        self.other_prefixes
            .extend(prefixes.into_iter().map(MailboxName::from_raw));
        self
    }

    /// Sets the provider hints.
    pub fn with_hints(mut self, hints: ProviderHints) -> SourceListing {
        self.hints = hints;
        self
    }
}

/// Where a listed folder sits.
#[derive(Debug, Clone)]
pub(crate) struct Located {
    /// The name decoded as a whole.
    pub decoded: DecodedName,
    /// Components after removing the personal prefix: the hierarchy the user sees.
    pub own_path: Vec<String>,
    /// Components after also lifting children out of provider containers: where the
    /// folder is placed.
    pub path: Vec<String>,
    /// Whether the folder is in the personal namespace.
    pub personal: bool,
}

/// Decoded namespace prefixes.
#[derive(Debug, Clone, Default)]
pub(crate) struct Namespaces {
    pub personal: String,
    pub others: Vec<String>,
}

impl Namespaces {
    pub fn new(personal: &MailboxName, others: &[MailboxName]) -> Namespaces {
        Namespaces {
            personal: personal.decode().text,
            others: others
                .iter()
                .map(|p| p.decode().text)
                .filter(|p| !p.is_empty())
                .collect(),
        }
    }
}

/// Finds where `folder` sits. The whole name is decoded first and split afterwards: in
/// modified UTF-7, UTF-8 and the legacy charsets an ASCII delimiter decodes only from
/// itself, never from inside a multi-byte character.
pub(crate) fn locate(folder: &ListedFolder, namespaces: &Namespaces, containers: &[String]) -> Located {
    let decoded = folder.name.decode();
    let text = decoded.text.as_str();
    let personal = !namespaces.others.iter().any(|other| {
        strip_prefix(text, other).is_some()
            || other.strip_suffix(|c| Some(c) == folder.delimiter) == Some(text)
    });
    let relative = match strip_prefix(text, &namespaces.personal) {
        Some(rest) if !rest.is_empty() => rest,
        _ => text,
    };
    let own_path: Vec<String> = match folder.delimiter {
        Some(delimiter) => relative.split(delimiter).map(str::to_owned).collect(),
        None => vec![relative.to_owned()],
    };
    let path = match own_path.split_first() {
        Some((head, rest)) if !rest.is_empty() && containers.iter().any(|c| c == head) => rest.to_vec(),
        _ => own_path.clone(),
    };
    Located {
        decoded,
        own_path,
        path,
        personal,
    }
}

/// `text` without `prefix`, if it starts with it. A prefix starting with INBOX matches that
/// part without case, as INBOX itself does (RFC 3501 5.1).
fn strip_prefix<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    if prefix.is_empty() {
        return None;
    }
    let head = text.get(..prefix.len())?;
    let inbox_head = |s: &str| s.get(..5).is_some_and(|h| h.eq_ignore_ascii_case("INBOX"));
    let matches =
        head == prefix || (inbox_head(prefix) && inbox_head(head) && head.get(5..) == prefix.get(5..));
    matches.then(|| &text[prefix.len()..])
}

/// Whether `path` matches `pattern`, where `*` matches anything and `%` anything but `/`
/// (the LIST wildcards, over paths written with `/`).
pub(crate) fn pattern_matches(pattern: &str, path: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let path: Vec<char> = path.chars().collect();
    // reach[j]: the pattern prefix read so far matches path[..j]. Linear in each input's
    // size times the other's, whatever the pattern: no backtracking blow-up.
    let mut reach = vec![false; path.len() + 1];
    reach[0] = true;
    for &p in &pattern {
        let mut next = vec![false; path.len() + 1];
        match p {
            '*' | '%' => {
                let mut open = false;
                for j in 0..=path.len() {
                    if reach[j] {
                        open = true;
                    }
                    next[j] = open;
                    if p == '%' && j < path.len() && path[j] == '/' {
                        open = false;
                    }
                }
            }
            literal => {
                for j in 0..path.len() {
                    next[j + 1] = reach[j] && path[j] == literal;
                }
            }
        }
        reach = next;
    }
    reach[path.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(personal: &str, others: &[&str]) -> Namespaces {
        Namespaces {
            personal: personal.to_owned(),
            others: others.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn courier_personal_prefix_is_removed() {
        let ns = ns("INBOX.", &["#shared."]);
        let at = |raw: &'static str| locate(&ListedFolder::new(raw, Some('.'), [""; 0]), &ns, &[]);
        assert_eq!(at("INBOX.Projects.2024").own_path, ["Projects", "2024"]);
        assert_eq!(at("INBOX.Sent").path, ["Sent"]);
        assert_eq!(at("INBOX").path, ["INBOX"]);
        assert_eq!(at("inbox.Drafts").path, ["Drafts"]);
        assert!(at("INBOX.Sent").personal);
        assert!(!at("#shared.team").personal);
        assert!(!at("#shared").personal);
    }

    #[test]
    fn names_are_decoded_before_splitting() {
        let ns = ns("", &[]);
        let folder = ListedFolder::new(&b"&UXZO1mWHTvZZOQ-/&VFhd5XuAU4Y-"[..], Some('/'), [""; 0]);
        let plain = locate(&folder, &ns, &[]);
        assert_eq!(plain.path, ["其他文件夹", "员工简历"]);
        let lifted = locate(&folder, &ns, &ProviderHints::qq().containers);
        assert_eq!(lifted.path, ["员工简历"]);
        assert_eq!(lifted.own_path, ["其他文件夹", "员工简历"]);
    }

    #[test]
    fn flat_names_are_one_component() {
        let folder = ListedFolder::new("a/b.c", None, [""; 0]);
        assert_eq!(locate(&folder, &ns("", &[]), &[]).path, ["a/b.c"]);
    }

    #[test]
    fn patterns_follow_list_wildcards() {
        assert!(pattern_matches("Archive*", "Archive/2020/Q1"));
        assert!(pattern_matches("Archive/%", "Archive/2020"));
        assert!(!pattern_matches("Archive/%", "Archive/2020/Q1"));
        assert!(pattern_matches("*", ""));
        assert!(pattern_matches("%", "Top"));
        assert!(!pattern_matches("%", "Top/Child"));
        assert!(pattern_matches("[Gmail]/All Mail", "[Gmail]/All Mail"));
        assert!(!pattern_matches("Spam", "Spam2"));
        assert!(pattern_matches("*a*a*a*a*a*b", &format!("{}b", "a".repeat(200))));
    }
}
