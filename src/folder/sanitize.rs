//! What folder names a target accepts, and how any source name is made acceptable while a
//! user still recognises it.
//!
//! A character the target cannot take becomes its full-width twin (`/` → `／`, `*` → `＊`,
//! `.` → `．`), which reads the same; control characters become spaces; leading and
//! trailing spaces are dropped and leading and trailing dots (and a leading `~`) replaced;
//! an empty name becomes
//! `_`; an over-long name is cut at a character boundary. Telling apart two names that end
//! up equal is the plan's job (see [`FolderPlan`](super::FolderPlan)).

use std::collections::BTreeSet;
use std::fmt;

use crate::{Error, ErrorKind, Result};

/// Characters no target gets in a folder name by default: the LIST wildcards `*` `%` and
/// the two hierarchy delimiters servers use besides `.`. Control characters are always
/// refused, and so is the target's own delimiter.
pub const DEFAULT_FORBIDDEN: [char; 4] = ['*', '%', '\\', '/'];

/// Characters no name component may start with by default. Dovecot refuses top-level
/// names starting with `~` (home-directory expansion: `NO [CANNOT] Invalid mailbox name:
/// Begins with '~'`), over IMAP and in its Maildir; the rule applies at every level, which
/// costs nothing readable (`~backup` becomes `～backup`).
pub const DEFAULT_FORBIDDEN_LEADING: [char; 1] = ['~'];

/// The smallest per-component byte limit accepted: room for a readable name plus a
/// collision suffix such as ` (12)`.
pub const MIN_COMPONENT_BYTES: usize = 16;

/// What a target store accepts as folder names.
///
/// Presets cover common targets; adjust them with the `with_*` methods:
///
/// ```
/// use mailmigrate::folder::TargetRules;
/// let rules = TargetRules::imap('/').unwrap().with_forbidden(['^']).with_max_component_bytes(100);
/// assert_eq!(rules.sanitize("Q1/Q2 ^ report"), "Q1／Q2 ＾ report");
/// assert_eq!(rules.sanitize("  .hidden  "), "．hidden");
/// assert_eq!(TargetRules::maildir().sanitize("old@example.com"), "old@example．com");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetRules {
    delimiter: char,
    forbidden: BTreeSet<char>,
    forbidden_leading: BTreeSet<char>,
    max_component_bytes: usize,
    max_path_bytes: Option<usize>,
    case_insensitive: bool,
    reserved: Vec<String>,
    utf8_names: bool,
    collapse_whitespace: bool,
    maildir: bool,
}

/// Characters kept allowed whatever a caller forbids, because sanitising and collision
/// suffixes produce them (`_` for an empty name, ` (2)` for a second folder).
fn never_forbidden(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, ' ' | '_' | '(' | ')')
}

impl TargetRules {
    /// An IMAP server with hierarchy delimiter `delimiter`: case-sensitive names up to 255
    /// bytes of modified UTF-7, [`DEFAULT_FORBIDDEN`] characters refused.
    ///
    /// Fails if `delimiter` is not an ASCII punctuation character usable as a delimiter
    /// (letters, digits, space, `_`, `(` and `)` are needed for readable names).
    pub fn imap(delimiter: char) -> Result<TargetRules> {
        if !delimiter.is_ascii_graphic() || never_forbidden(delimiter) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "{delimiter:?} cannot be a target hierarchy delimiter: use ASCII punctuation such as '/' or '.'"
                ),
            ));
        }
        Ok(TargetRules::with_delimiter(delimiter))
    }

    /// The IMAP defaults around a delimiter already known to be usable.
    fn with_delimiter(delimiter: char) -> TargetRules {
        TargetRules {
            delimiter,
            forbidden: DEFAULT_FORBIDDEN.into_iter().collect(),
            forbidden_leading: DEFAULT_FORBIDDEN_LEADING.into_iter().collect(),
            max_component_bytes: 255,
            max_path_bytes: None,
            case_insensitive: false,
            reserved: Vec::new(),
            utf8_names: false,
            collapse_whitespace: false,
            maildir: false,
        }
    }

    /// A Maildir++ store (Dovecot and Courier layout): `.` separates levels and `/` cannot
    /// appear in a name; the whole path is one directory name, so it is limited to 254 bytes
    /// (255 minus the leading dot), counted in modified UTF-7 as Dovecot stores it.
    pub fn maildir() -> TargetRules {
        TargetRules {
            delimiter: '.',
            max_path_bytes: Some(254),
            maildir: true,
            ..TargetRules::with_delimiter('.')
        }
    }

    /// Exchange and Office 365 over IMAP: `/` delimiter, names compare without case
    /// (`trash` and `Trash` are one folder), `Files` is reserved.
    pub fn exchange() -> TargetRules {
        TargetRules {
            case_insensitive: true,
            reserved: vec!["Files".to_owned()],
            ..TargetRules::with_delimiter('/')
        }
    }

    /// Gmail as a target: `/` delimiter, labels compare without case, `^` and runs of
    /// spaces refused.
    pub fn gmail() -> TargetRules {
        TargetRules {
            case_insensitive: true,
            collapse_whitespace: true,
            ..TargetRules::with_delimiter('/')
        }
        .with_forbidden(['^'])
    }

    /// Also refuse `chars` (letters, digits, space, `_`, `(` and `)` are always allowed).
    pub fn with_forbidden(mut self, chars: impl IntoIterator<Item = char>) -> TargetRules {
        self.forbidden
            .extend(chars.into_iter().filter(|&c| !never_forbidden(c)));
        self
    }

    /// Also refuse `chars` as the first character of a name (letters, digits, space, `_`,
    /// `(` and `)` are always allowed).
    pub fn with_forbidden_leading(mut self, chars: impl IntoIterator<Item = char>) -> TargetRules {
        self.forbidden_leading
            .extend(chars.into_iter().filter(|&c| !never_forbidden(c)));
        self
    }

    /// Limit each component to `bytes` bytes as sent (at least [`MIN_COMPONENT_BYTES`]).
    pub fn with_max_component_bytes(mut self, bytes: usize) -> TargetRules {
        self.max_component_bytes = bytes.max(MIN_COMPONENT_BYTES);
        self
    }

    /// Limit a whole path, delimiters included, to `bytes` bytes as sent (at least
    /// [`MIN_COMPONENT_BYTES`]). Components are cut to what is left under their parent;
    /// a folder with no room left is skipped ([`SkipReason::PathTooLong`](super::SkipReason)).
    pub fn with_max_path_bytes(mut self, bytes: usize) -> TargetRules {
        self.max_path_bytes = Some(bytes.max(MIN_COMPONENT_BYTES));
        self
    }

    /// Whether names differing only in case are one folder on the target.
    pub fn with_case_insensitive(mut self, yes: bool) -> TargetRules {
        self.case_insensitive = yes;
        self
    }

    /// Names the target refuses to create at any level (compared without case).
    pub fn with_reserved<I, S>(mut self, names: I) -> TargetRules
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.reserved.extend(names.into_iter().map(Into::into));
        self
    }

    /// Whether names travel as UTF-8 (UTF8=ACCEPT) rather than modified UTF-7; byte limits
    /// are counted in that form.
    pub fn with_utf8_names(mut self, yes: bool) -> TargetRules {
        self.utf8_names = yes;
        self
    }

    /// Whether runs of spaces must become one space (Gmail refuses "excess whitespace").
    pub fn with_collapsed_whitespace(mut self, yes: bool) -> TargetRules {
        self.collapse_whitespace = yes;
        self
    }

    /// The hierarchy delimiter.
    pub fn delimiter(&self) -> char {
        self.delimiter
    }

    /// Whether this is a Maildir++ store.
    pub fn is_maildir(&self) -> bool {
        self.maildir
    }

    /// The per-component byte limit.
    pub fn max_component_bytes(&self) -> usize {
        self.max_component_bytes
    }

    /// The whole-path byte limit, if any.
    pub fn max_path_bytes(&self) -> Option<usize> {
        self.max_path_bytes
    }

    /// Whether names compare without case.
    pub fn is_case_insensitive(&self) -> bool {
        self.case_insensitive
    }

    /// Whether `c` may not appear in a name: a control character, the delimiter, or a
    /// forbidden character.
    pub fn is_forbidden(&self, c: char) -> bool {
        c == self.delimiter || c.is_control() || self.forbidden.contains(&c)
    }

    /// Whether the target refuses to create a folder called `name`.
    pub fn is_reserved(&self, name: &str) -> bool {
        let folded = name.to_lowercase();
        self.reserved.iter().any(|r| r.to_lowercase() == folded)
    }

    /// The length of `name` in bytes as it travels to the target.
    pub fn encoded_len(&self, name: &str) -> usize {
        if self.utf8_names {
            name.len()
        } else {
            mutf7_len(name)
        }
    }

    /// The form under which the target compares names: folded to lowercase when it ignores
    /// case. Two components with the same key cannot be siblings.
    pub fn collision_key(&self, component: &str) -> String {
        if self.case_insensitive {
            component.to_lowercase()
        } else {
            component.to_owned()
        }
    }

    /// `name` made acceptable as one path component, within [`Self::max_component_bytes`].
    /// Clean names come back unchanged and sanitising twice changes nothing more.
    pub fn sanitize(&self, name: &str) -> String {
        // The component limit (at least MIN_COMPONENT_BYTES) always leaves room for `_`.
        self.sanitize_within(name, self.max_component_bytes)
            .unwrap_or_else(|| "_".to_owned())
    }

    /// Whether `name` is already acceptable as a component (ignoring reservations).
    pub fn is_clean(&self, name: &str) -> bool {
        self.sanitize(name) == name
    }

    /// Checks that the target can create `path` as it is: every component clean and not
    /// reserved, the whole path within the length limit.
    ///
    /// ```
    /// use mailmigrate::folder::{TargetPath, TargetRules};
    /// let rules = TargetRules::exchange();
    /// assert!(rules.check_path(&TargetPath::new(["Projects", "2024"])).is_ok());
    /// assert!(rules.check_path(&TargetPath::new(["a/b"])).is_err());
    /// assert!(rules.check_path(&TargetPath::new(["files"])).is_err());
    /// ```
    pub fn check_path(&self, path: &TargetPath) -> Result<()> {
        let invalid = |why: String| {
            Err(Error::new(
                ErrorKind::InvalidInput,
                format!("target folder {path} is not valid here: {why}"),
            ))
        };
        if path.is_empty() {
            return invalid("it has no name".to_owned());
        }
        for component in path.components() {
            if !self.is_clean(component) {
                return invalid(format!(
                    "{component:?} should be {:?} (forbidden characters, spaces or dots at an end, or too long)",
                    self.sanitize(component)
                ));
            }
            if self.is_reserved(component) {
                return invalid(format!("{component:?} is a reserved name"));
            }
        }
        if let Some(max) = self.max_path_bytes {
            let len = self.path_len(path.components());
            if len > max {
                return invalid(format!("it is {len} bytes long, over the limit of {max}"));
            }
        }
        Ok(())
    }

    /// The encoded length of `components` joined by the delimiter.
    pub(crate) fn path_len(&self, components: &[String]) -> usize {
        components.iter().map(|c| self.encoded_len(c)).sum::<usize>() + components.len().saturating_sub(1)
    }

    /// What a forbidden character becomes: its full-width form when it has one the target
    /// takes, otherwise `_`.
    fn replacement(&self, c: char) -> char {
        if c.is_ascii_graphic()
            && let Some(wide) = char::from_u32(c as u32 + 0xFEE0)
            && !self.is_forbidden(wide)
        {
            return wide;
        }
        '_'
    }

    /// Sanitises `name` to fit in `limit` encoded bytes; `None` if not even `_` fits.
    pub(crate) fn sanitize_within(&self, name: &str, limit: usize) -> Option<String> {
        let mut text: String = name
            .chars()
            .map(|c| {
                if c.is_control() {
                    ' '
                } else if self.is_forbidden(c) {
                    self.replacement(c)
                } else {
                    c
                }
            })
            .collect();
        if self.collapse_whitespace {
            text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        }
        let trimmed = text.trim();
        let lead = trimmed.len() - trimmed.trim_start_matches('.').len();
        let text = if lead == trimmed.len() && lead > 0 {
            self.replacement('.').to_string().repeat(lead)
        } else {
            // Dots at either end: hidden files in Maildir, refused by some servers. Keep them
            // visible as full-width dots rather than silently dropping them.
            let trail = trimmed.len() - trimmed.trim_end_matches('.').len();
            let dot = self.replacement('.').to_string();
            format!(
                "{}{}{}",
                dot.repeat(lead),
                &trimmed[lead..trimmed.len() - trail],
                dot.repeat(trail)
            )
        };
        let mut text = if text.is_empty() { "_".to_owned() } else { text };
        if let Some(first) = text.chars().next().filter(|c| self.forbidden_leading.contains(c)) {
            text.replace_range(
                ..first.len_utf8(),
                self.replacement(first).encode_utf8(&mut [0; 4]),
            );
        }
        self.fit(&text, limit)
    }

    /// Cuts `text` (already sanitised) to `limit` encoded bytes at a character boundary,
    /// dropping spaces and dots the cut leaves at the end.
    fn fit(&self, text: &str, limit: usize) -> Option<String> {
        if self.encoded_len(text) <= limit {
            return Some(text.to_owned());
        }
        let bounds: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
        // Encoded length grows with the prefix, so the longest fitting prefix is found by
        // binary search over character boundaries.
        let fits = bounds.partition_point(|&end| self.encoded_len(&text[..end]) <= limit);
        let cut = bounds.get(fits.checked_sub(1)?).copied().unwrap_or(0);
        let kept = text[..cut].trim_end_matches(|c: char| c.is_whitespace() || c == '.');
        if kept.is_empty() {
            return (self.encoded_len("_") <= limit).then(|| "_".to_owned());
        }
        Some(kept.to_owned())
    }

    /// `base` with the collision suffix ` (n)`, shortened so the whole fits in `limit`.
    pub(crate) fn with_suffix(&self, base: &str, n: usize, limit: usize) -> Option<String> {
        let suffix = format!(" ({n})");
        let room = limit.checked_sub(self.encoded_len(&suffix))?;
        let base = self.fit(base, room)?;
        Some(format!("{base}{suffix}"))
    }
}

/// Length of `text` in modified UTF-7 (RFC 3501 5.1.3) without building the string.
fn mutf7_len(text: &str) -> usize {
    fn run_len(units: usize) -> usize {
        if units == 0 {
            0
        } else {
            2 + (16 * units).div_ceil(6)
        }
    }
    let mut len = 0;
    let mut units = 0;
    for c in text.chars() {
        if (' '..='~').contains(&c) {
            len += run_len(units) + if c == '&' { 2 } else { 1 };
            units = 0;
        } else {
            units += c.len_utf16();
        }
    }
    len + run_len(units)
}

/// A folder on the target as its path of components (UTF-8, sanitised), relative to the
/// target's personal namespace. How it is spelt on the wire (modified UTF-7 or UTF-8, which
/// delimiter, which namespace prefix) is the target store's business.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(transparent))]
pub struct TargetPath(Vec<String>);

impl TargetPath {
    /// A path from its components, outermost first.
    pub fn new<I, S>(components: I) -> TargetPath
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        TargetPath(components.into_iter().map(Into::into).collect())
    }

    /// The components, outermost first.
    pub fn components(&self) -> &[String] {
        &self.0
    }

    /// The number of components.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the path has no component.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The last component: the folder's own name.
    pub fn name(&self) -> Option<&str> {
        self.0.last().map(String::as_str)
    }

    /// The path of the enclosing folder, `None` at the top level.
    pub fn parent(&self) -> Option<TargetPath> {
        (self.0.len() > 1).then(|| TargetPath(self.0[..self.0.len() - 1].to_vec()))
    }

    /// Whether `prefix` is this path or one of its ancestors.
    pub fn starts_with(&self, prefix: &TargetPath) -> bool {
        self.0.starts_with(&prefix.0)
    }

    /// The components joined by `delimiter`.
    ///
    /// ```
    /// use mailmigrate::folder::TargetPath;
    /// assert_eq!(TargetPath::new(["old@example.com", "Sent"]).join('/'), "old@example.com/Sent");
    /// ```
    pub fn join(&self, delimiter: char) -> String {
        self.0.join(delimiter.encode_utf8(&mut [0; 4]))
    }
}

impl fmt::Display for TargetPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.join('/'))
    }
}

impl From<Vec<String>> for TargetPath {
    fn from(components: Vec<String>) -> TargetPath {
        TargetPath(components)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::codec::encode_mutf7;
    use proptest::prelude::*;

    fn slash() -> TargetRules {
        TargetRules::imap('/').unwrap()
    }

    #[test]
    fn forbidden_characters_become_their_full_width_twins() {
        let rules = slash();
        assert_eq!(rules.sanitize("a/b\\c*d%e"), "a／b＼c＊d％e");
        assert_eq!(rules.sanitize("C++ & \"quotes\""), "C++ & \"quotes\"");
        assert_eq!(TargetRules::maildir().sanitize("v1.2/notes"), "v1．2／notes");
    }

    #[test]
    fn control_characters_become_spaces_and_ends_are_trimmed() {
        let rules = slash();
        assert_eq!(rules.sanitize("\tTab\u{0}bed\n"), "Tab bed");
        assert_eq!(rules.sanitize("  Reports  "), "Reports");
        assert_eq!(rules.sanitize("\u{3000}报告\u{3000}"), "报告");
    }

    #[test]
    fn dots_at_either_end_stay_visible() {
        let rules = slash();
        assert_eq!(rules.sanitize(".config"), "．config");
        assert_eq!(rules.sanitize("Misc."), "Misc．");
        assert_eq!(rules.sanitize("..."), "．．．");
        assert_eq!(rules.sanitize("v1.2"), "v1.2");
    }

    #[test]
    fn a_leading_tilde_is_replaced_where_dovecot_refuses_it() {
        assert_eq!(TargetRules::maildir().sanitize("~backup"), "～backup");
        assert_eq!(slash().sanitize("~"), "～");
        assert_eq!(slash().sanitize("a~b"), "a~b");
        assert_eq!(slash().with_forbidden_leading(['#']).sanitize("#tag"), "＃tag");
    }

    #[test]
    fn empty_names_become_an_underscore() {
        assert_eq!(slash().sanitize(""), "_");
        assert_eq!(slash().sanitize("   "), "_");
    }

    #[test]
    fn over_long_names_are_cut_at_a_character_boundary() {
        let rules = slash().with_max_component_bytes(20);
        let cut = rules.sanitize(&"项目".repeat(30));
        assert!(rules.encoded_len(&cut) <= 20, "{cut}");
        assert!("项目".repeat(30).starts_with(&cut));
        let utf8 = slash().with_utf8_names(true).with_max_component_bytes(16);
        assert_eq!(utf8.sanitize("abcdefghijklmn. pqrstu"), "abcdefghijklmn");
    }

    #[test]
    fn gmail_collapses_runs_of_spaces() {
        assert_eq!(TargetRules::gmail().sanitize("a   b ^ c"), "a b ＾ c");
    }

    #[test]
    fn suffixes_fit_the_limit() {
        let rules = slash().with_utf8_names(true).with_max_component_bytes(16);
        assert_eq!(rules.with_suffix("Projects", 2, 16).unwrap(), "Projects (2)");
        assert_eq!(
            rules.with_suffix("abcdefghijklmnop", 12, 16).unwrap(),
            "abcdefghijk (12)"
        );
        assert_eq!(rules.with_suffix("abc", 2, 3), None);
    }

    #[test]
    fn bad_delimiters_are_refused() {
        for bad in ['a', '7', ' ', '_', '(', '\n', '／'] {
            assert!(TargetRules::imap(bad).is_err(), "{bad:?}");
        }
        assert!(TargetRules::imap('.').is_ok());
    }

    #[test]
    fn reserved_names_compare_without_case() {
        let rules = TargetRules::exchange();
        assert!(rules.is_reserved("FILES"));
        assert!(!rules.is_reserved("Files2"));
    }

    proptest! {
        #[test]
        fn mutf7_length_matches_the_encoder(text in "\\PC{0,30}") {
            prop_assert_eq!(mutf7_len(&text), encode_mutf7(&text).len());
        }

        #[test]
        fn sanitising_is_idempotent_and_clean(text in "[ ./\\\\*%~a-zA-Z\\t\u{3000}項目]{0,40}", maildir in any::<bool>()) {
            let rules = if maildir { TargetRules::maildir() } else { slash().with_max_component_bytes(24) };
            let once = rules.sanitize(&text);
            prop_assert!(rules.is_clean(&once), "{:?} -> {:?}", text, once);
            prop_assert!(!once.is_empty());
            prop_assert!(rules.encoded_len(&once) <= rules.max_component_bytes());
            prop_assert!(!once.chars().any(|c| rules.is_forbidden(c)));
        }

        #[test]
        fn clean_names_are_left_alone(text in "[a-zA-Z0-9][a-zA-Z0-9 _+&-]{0,10}[a-zA-Z0-9]") {
            prop_assert_eq!(slash().sanitize(&text), text);
        }
    }
}
