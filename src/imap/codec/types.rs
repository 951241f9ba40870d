//! What the codec produces and consumes: typed responses, commands and limits.
//!
//! These owned types are the contract between the sans-IO codec and the async session.
//! Message bodies are `Bytes` sliced from the read buffer, never copied again.

use std::collections::BTreeSet;
use std::fmt;

use bytes::Bytes;

use crate::imap::codec::MailboxName;
use crate::{Secret, Uid, UidSet};

/// Size and shape limits applied to everything a server sends, so a hostile or broken server
/// gets an error, never an allocation of its choosing or a stack overflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest line (outside literals) in bytes. SEARCH results of big folders are long lines.
    pub max_line: usize,
    /// Largest single literal (a message body) in bytes.
    pub max_literal: u64,
    /// Largest whole response (lines plus literals) in bytes.
    pub max_response: u64,
    /// Deepest parenthesis nesting accepted in one response.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_line: 8 << 20,
            max_literal: 256 << 20,
            max_response: 260 << 20,
            max_depth: 64,
        }
    }
}

/// A command tag, e.g. `A0001`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tag(pub String);

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One complete server response.
#[derive(Debug, Clone, PartialEq)]
pub enum Response {
    /// A status response: tagged (the end of a command) or untagged (`* OK`, `* BYE`, greeting).
    Status(StatusResponse),
    /// Untagged data (`* ...` other than a status).
    Data(Data),
    /// A continuation request (`+ ...`): send the literal, or the next SASL step.
    Continue {
        /// The text after `+ `, raw (a base64 challenge during AUTHENTICATE).
        text: Bytes,
    },
}

/// `OK`, `NO`, `BAD`, `PREAUTH` or `BYE` with its code and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusResponse {
    /// The tag, for a tagged response; `None` for `*`.
    pub tag: Option<Tag>,
    /// Which status.
    pub status: Status,
    /// The response code in brackets, if any.
    pub code: Option<Code>,
    /// The human-readable text (lossy UTF-8), to show in error messages.
    pub text: String,
}

/// The status of a status response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// Success.
    Ok,
    /// Operational failure.
    No,
    /// Protocol error (the server did not understand us).
    Bad,
    /// Greeting: already authenticated.
    PreAuth,
    /// The server is closing the connection.
    Bye,
}

/// A response code (`[...]` after the status), typed where the crate acts on it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Code {
    /// `[ALERT]`: the text must be shown to the user.
    Alert,
    /// `[PARSE]`
    Parse,
    /// `[READ-ONLY]`
    ReadOnly,
    /// `[READ-WRITE]`
    ReadWrite,
    /// `[TRYCREATE]`: the target mailbox does not exist, create it and retry.
    TryCreate,
    /// `[UIDNOTSTICKY]`
    UidNotSticky,
    /// `[NOMODSEQ]` (RFC 7162)
    NoModSeq,
    /// `[CLOSED]` (RFC 7162)
    Closed,
    /// `[CAPABILITY ...]`
    Capability(Capabilities),
    /// `[PERMANENTFLAGS (...)]`
    PermanentFlags(Vec<Flag>),
    /// `[UIDVALIDITY n]`
    UidValidity(u32),
    /// `[UIDNEXT n]`
    UidNext(u32),
    /// `[UNSEEN n]`
    Unseen(u32),
    /// `[HIGHESTMODSEQ n]` (RFC 7162)
    HighestModSeq(u64),
    /// `[APPENDUID uidvalidity uids]` (RFC 4315)
    AppendUid {
        /// The target mailbox's UIDVALIDITY.
        uid_validity: u32,
        /// The UIDs the appended messages got.
        uids: UidSet,
    },
    /// `[COPYUID uidvalidity source dest]` (RFC 4315)
    CopyUid {
        /// The target mailbox's UIDVALIDITY.
        uid_validity: u32,
        /// Source UIDs.
        source: UidSet,
        /// Target UIDs.
        dest: UidSet,
    },
    /// RFC 5530 codes and other codes the crate classifies errors by.
    Known(KnownCode),
    /// Any other code, kept as sent.
    Other {
        /// The code's name, upper-cased.
        name: String,
        /// Its arguments, raw (lossy UTF-8).
        args: Option<String>,
    },
}

/// RFC 5530 response codes (and a few common vendor ones) that decide error kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KnownCode {
    /// `UNAVAILABLE`: temporary failure, retry later.
    Unavailable,
    /// `AUTHENTICATIONFAILED`: wrong credentials.
    AuthenticationFailed,
    /// `AUTHORIZATIONFAILED`
    AuthorizationFailed,
    /// `EXPIRED`: credentials expired.
    Expired,
    /// `PRIVACYREQUIRED`: use TLS.
    PrivacyRequired,
    /// `CONTACTADMIN`
    ContactAdmin,
    /// `NOPERM`
    NoPerm,
    /// `INUSE`: retry later.
    InUse,
    /// `EXPUNGEISSUED`
    ExpungeIssued,
    /// `CORRUPTION`
    Corruption,
    /// `SERVERBUG`
    ServerBug,
    /// `CLIENTBUG`
    ClientBug,
    /// `CANNOT`
    Cannot,
    /// `LIMIT`: an operation limit was hit; retry later or with less.
    Limit,
    /// `OVERQUOTA`
    OverQuota,
    /// `ALREADYEXISTS`
    AlreadyExists,
    /// `NONEXISTENT`
    NonExistent,
    /// `THROTTLED` (Gmail)
    Throttled,
}

/// The server's capabilities (from `CAPABILITY` data or a `[CAPABILITY]` code).
///
/// Names are stored upper-cased; `AUTH=` mechanisms separately.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// Every capability atom, upper-cased, including `AUTH=...` entries.
    pub atoms: BTreeSet<String>,
}

impl Capabilities {
    /// Whether the capability `name` (case-insensitive) is advertised.
    pub fn has(&self, name: &str) -> bool {
        self.atoms.contains(&name.to_ascii_uppercase())
    }

    /// Whether `AUTH=mechanism` is advertised.
    pub fn has_auth(&self, mechanism: &str) -> bool {
        self.atoms
            .contains(&format!("AUTH={}", mechanism.to_ascii_uppercase()))
    }
}

/// A message flag or keyword.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Flag {
    /// `\Seen`
    Seen,
    /// `\Answered`
    Answered,
    /// `\Flagged`
    Flagged,
    /// `\Deleted`
    Deleted,
    /// `\Draft`
    Draft,
    /// `\Recent` (session-only; never copied)
    Recent,
    /// `\*` in PERMANENTFLAGS: new keywords may be created.
    MayCreate,
    /// A keyword (no backslash), e.g. `$Forwarded`, `Work`.
    Keyword(String),
    /// Another backslash flag, kept with its backslash.
    Extension(String),
}

impl Flag {
    /// The flag as written in IMAP, e.g. `\Seen` or `$Forwarded`.
    pub fn as_imap(&self) -> &str {
        match self {
            Flag::Seen => "\\Seen",
            Flag::Answered => "\\Answered",
            Flag::Flagged => "\\Flagged",
            Flag::Deleted => "\\Deleted",
            Flag::Draft => "\\Draft",
            Flag::Recent => "\\Recent",
            Flag::MayCreate => "\\*",
            Flag::Keyword(k) => k,
            Flag::Extension(e) => e,
        }
    }

    /// Whether the flag can be written in a command (APPEND, STORE): a system flag, or a
    /// keyword or extension flag that is a non-empty atom of printable ASCII. `\Recent` and
    /// `\*` are never sent. Keywords a server sent with 8-bit bytes cannot be sent back.
    pub fn can_send(&self) -> bool {
        let atom = |s: &str| !s.is_empty() && s.bytes().all(crate::imap::codec::is_atom_char);
        match self {
            Flag::Recent | Flag::MayCreate => false,
            Flag::Keyword(k) => atom(k),
            Flag::Extension(e) => e.strip_prefix('\\').is_some_and(atom),
            _ => true,
        }
    }

    /// Reads one flag as written in IMAP (system flags case-insensitively).
    pub fn from_imap(s: &str) -> Flag {
        // Compared in place: this runs for every flag of every FETCH.
        const SYSTEM: [(&str, Flag); 7] = [
            ("\\Seen", Flag::Seen),
            ("\\Answered", Flag::Answered),
            ("\\Flagged", Flag::Flagged),
            ("\\Deleted", Flag::Deleted),
            ("\\Draft", Flag::Draft),
            ("\\Recent", Flag::Recent),
            ("\\*", Flag::MayCreate),
        ];
        if let Some((_, flag)) = SYSTEM.iter().find(|(name, _)| name.eq_ignore_ascii_case(s)) {
            return flag.clone();
        }
        if s.starts_with('\\') {
            Flag::Extension(s.to_owned())
        } else {
            Flag::Keyword(s.to_owned())
        }
    }
}

/// Untagged data.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Data {
    /// `* CAPABILITY ...`
    Capability(Capabilities),
    /// `* ENABLED ...` (RFC 5161), upper-cased.
    Enabled(Vec<String>),
    /// `* LIST`, `* LSUB` or `* XLIST`.
    List(ListItem),
    /// `* STATUS name (...)`
    Status(MailboxStatus),
    /// `* NAMESPACE ...` (RFC 2342)
    Namespace(Namespaces),
    /// `* SEARCH ...` (with the CONDSTORE `(MODSEQ n)` suffix when present).
    Search(SearchResult),
    /// `* ESEARCH ...` (RFC 4731)
    ESearch(ESearchResult),
    /// `* FLAGS (...)`
    Flags(Vec<Flag>),
    /// `* n EXISTS`
    Exists(u32),
    /// `* n RECENT`
    Recent(u32),
    /// `* n EXPUNGE`
    Expunge(u32),
    /// `* n FETCH (...)`
    Fetch(Box<Fetch>),
    /// `* VANISHED [(EARLIER)] uids` (RFC 7162)
    Vanished {
        /// Whether this answers a command (`EARLIER`) rather than reporting a live expunge.
        earlier: bool,
        /// The vanished UIDs.
        uids: UidSet,
    },
    /// `* ID (...)` (RFC 2971): field/value pairs; `ID NIL` gives an empty list.
    Id(Vec<(String, Option<String>)>),
    /// Any other untagged response, kept raw (without the trailing CRLF) for the caller.
    Other(Bytes),
}

/// Which command produced a [`ListItem`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListKind {
    /// LIST
    List,
    /// LSUB
    Lsub,
    /// XLIST (Gmail's and old Coremail's pre-SPECIAL-USE extension)
    Xlist,
}

/// One mailbox from LIST/LSUB/XLIST, with its name exactly as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListItem {
    /// LIST, LSUB or XLIST.
    pub kind: ListKind,
    /// Name attributes (`\Noselect`, `\HasChildren`, `\Sent`, ...).
    pub attributes: Vec<NameAttribute>,
    /// The hierarchy delimiter, `None` for NIL (flat).
    pub delimiter: Option<char>,
    /// The mailbox name, raw (quoted-string escapes removed).
    pub name: MailboxName,
}

/// A mailbox name attribute (RFC 3501, 5258, 6154, and XLIST's).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NameAttribute {
    /// `\Noinferiors`
    NoInferiors,
    /// `\Noselect`
    NoSelect,
    /// `\NonExistent` (RFC 5258)
    NonExistent,
    /// `\Marked`
    Marked,
    /// `\Unmarked`
    Unmarked,
    /// `\HasChildren`
    HasChildren,
    /// `\HasNoChildren`
    HasNoChildren,
    /// `\Subscribed`
    Subscribed,
    /// `\Remote`
    Remote,
    /// `\All` (RFC 6154; XLIST `\AllMail`)
    All,
    /// `\Archive`
    Archive,
    /// `\Drafts`
    Drafts,
    /// `\Flagged` (XLIST `\Starred`)
    Flagged,
    /// `\Junk` (XLIST `\Spam`)
    Junk,
    /// `\Sent`
    Sent,
    /// `\Trash`
    Trash,
    /// `\Important` (RFC 8457, XLIST)
    Important,
    /// XLIST `\Inbox`
    Inbox,
    /// Any other attribute, with its backslash, as sent.
    Extension(String),
}

impl NameAttribute {
    /// The attribute as written in IMAP, e.g. `\\Noselect` or `\\Sent`.
    pub fn as_imap(&self) -> &str {
        match self {
            NameAttribute::NoInferiors => "\\Noinferiors",
            NameAttribute::NoSelect => "\\Noselect",
            NameAttribute::NonExistent => "\\NonExistent",
            NameAttribute::Marked => "\\Marked",
            NameAttribute::Unmarked => "\\Unmarked",
            NameAttribute::HasChildren => "\\HasChildren",
            NameAttribute::HasNoChildren => "\\HasNoChildren",
            NameAttribute::Subscribed => "\\Subscribed",
            NameAttribute::Remote => "\\Remote",
            NameAttribute::All => "\\All",
            NameAttribute::Archive => "\\Archive",
            NameAttribute::Drafts => "\\Drafts",
            NameAttribute::Flagged => "\\Flagged",
            NameAttribute::Junk => "\\Junk",
            NameAttribute::Sent => "\\Sent",
            NameAttribute::Trash => "\\Trash",
            NameAttribute::Important => "\\Important",
            NameAttribute::Inbox => "\\Inbox",
            NameAttribute::Extension(other) => other,
        }
    }
}

/// `STATUS` data for one mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxStatus {
    /// The mailbox, raw.
    pub name: MailboxName,
    /// The values the server returned; unknown attributes are skipped.
    pub items: StatusItems,
}

/// STATUS values; `None` when not returned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatusItems {
    /// MESSAGES
    pub messages: Option<u32>,
    /// RECENT
    pub recent: Option<u32>,
    /// UIDNEXT
    pub uid_next: Option<u32>,
    /// UIDVALIDITY
    pub uid_validity: Option<u32>,
    /// UNSEEN
    pub unseen: Option<u32>,
    /// HIGHESTMODSEQ (RFC 7162)
    pub highest_modseq: Option<u64>,
    /// SIZE (RFC 8438), in bytes
    pub size: Option<u64>,
}

/// A STATUS attribute to ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusAttribute {
    /// MESSAGES
    Messages,
    /// RECENT
    Recent,
    /// UIDNEXT
    UidNext,
    /// UIDVALIDITY
    UidValidity,
    /// UNSEEN
    Unseen,
    /// HIGHESTMODSEQ (only when CONDSTORE is advertised)
    HighestModSeq,
    /// SIZE (only when STATUS=SIZE is advertised)
    Size,
}

/// One namespace (RFC 2342).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    /// The prefix, raw (e.g. `INBOX.` on Courier, empty on Dovecot).
    pub prefix: MailboxName,
    /// The hierarchy delimiter, `None` for NIL.
    pub delimiter: Option<char>,
}

/// The three namespace classes (RFC 2342).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Namespaces {
    /// The user's own folders.
    pub personal: Vec<Namespace>,
    /// Other users' folders.
    pub other_users: Vec<Namespace>,
    /// Shared folders.
    pub shared: Vec<Namespace>,
}

/// `* SEARCH` results.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchResult {
    /// The numbers (UIDs for UID SEARCH), in the order sent.
    pub ids: Vec<u32>,
    /// The `(MODSEQ n)` suffix (RFC 7162).
    pub modseq: Option<u64>,
}

/// `* ESEARCH` results (RFC 4731).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ESearchResult {
    /// The `(TAG "...")` correlator.
    pub tag: Option<String>,
    /// Whether the numbers are UIDs.
    pub uid: bool,
    /// MIN
    pub min: Option<u32>,
    /// MAX
    pub max: Option<u32>,
    /// COUNT
    pub count: Option<u32>,
    /// ALL, as a set.
    pub all: Option<UidSet>,
    /// MODSEQ
    pub modseq: Option<u64>,
}

/// A message's date and time as the server stores it (INTERNALDATE), with its zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InternalDate {
    /// Seconds since the Unix epoch (UTC).
    pub unix: i64,
    /// The zone the server wrote, in minutes east of UTC (e.g. +0800 is 480).
    pub offset_minutes: i16,
}

/// One `FETCH` response. Fields the server did not send are `None`.
#[derive(Debug, Clone, PartialEq)]
pub struct Fetch {
    /// The message sequence number.
    pub seq: u32,
    /// UID
    pub uid: Option<Uid>,
    /// FLAGS
    pub flags: Option<Vec<Flag>>,
    /// INTERNALDATE (`None` also when the server sent NIL or an unreadable date).
    pub internal_date: Option<InternalDate>,
    /// RFC822.SIZE
    pub size: Option<u32>,
    /// `BODY[]` (or `RFC822`), a slice of the read buffer.
    pub body: Option<Bytes>,
    /// `BODY[HEADER]` (or `RFC822.HEADER`): the header section, a slice of the read buffer.
    pub header: Option<Bytes>,
    /// MODSEQ (RFC 7162)
    pub modseq: Option<u64>,
}

/// One message to APPEND: what [`Command::Append`] sends, and each part of a
/// [`Command::MultiAppend`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendMessage {
    /// Flags to set (`\Recent` is never sent).
    pub flags: Vec<Flag>,
    /// The INTERNALDATE to set; `None` lets the server use the current time.
    pub internal_date: Option<InternalDate>,
    /// The whole message (RFC 5322), byte for byte.
    pub message: Bytes,
}

/// A command for the encoder. Names are [`MailboxName`]s (raw bytes) so a folder is always
/// addressed exactly as the server named it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Command<'a> {
    /// CAPABILITY
    Capability,
    /// NOOP
    Noop,
    /// LOGOUT
    Logout,
    /// STARTTLS
    StartTls,
    /// LOGIN user password
    Login {
        /// User name.
        user: &'a str,
        /// Password (written to the wire, never logged).
        password: &'a Secret,
    },
    /// AUTHENTICATE mechanism [initial-response]: the initial response (SASL-IR, RFC 4959)
    /// is given raw and base64-encoded by the encoder; send it only when SASL-IR is advertised.
    Authenticate {
        /// e.g. `PLAIN`, `XOAUTH2`.
        mechanism: &'a str,
        /// The raw initial client response.
        initial_response: Option<&'a Secret>,
    },
    /// ID (RFC 2971): `None` sends `ID NIL`.
    Id(Option<&'a [(&'a str, &'a str)]>),
    /// ENABLE capabilities (RFC 5161).
    Enable(&'a [&'a str]),
    /// NAMESPACE (RFC 2342)
    Namespace,
    /// LIST reference pattern [RETURN (SPECIAL-USE)]
    List {
        /// Reference name (usually empty).
        reference: &'a [u8],
        /// Pattern, e.g. `*`.
        pattern: &'a [u8],
        /// Adds `RETURN (SPECIAL-USE)` (RFC 6154); only when advertised.
        return_special_use: bool,
    },
    /// LSUB reference pattern
    Lsub {
        /// Reference name.
        reference: &'a [u8],
        /// Pattern.
        pattern: &'a [u8],
    },
    /// XLIST reference pattern
    Xlist {
        /// Reference name.
        reference: &'a [u8],
        /// Pattern.
        pattern: &'a [u8],
    },
    /// STATUS mailbox (items)
    Status {
        /// The mailbox.
        mailbox: &'a MailboxName,
        /// What to return.
        items: &'a [StatusAttribute],
    },
    /// SELECT mailbox [(CONDSTORE)]
    Select {
        /// The mailbox.
        mailbox: &'a MailboxName,
        /// Adds `(CONDSTORE)` (RFC 7162).
        condstore: bool,
    },
    /// EXAMINE mailbox [(CONDSTORE)]: read-only select, what a migration source uses.
    Examine {
        /// The mailbox.
        mailbox: &'a MailboxName,
        /// Adds `(CONDSTORE)`.
        condstore: bool,
    },
    /// CREATE mailbox
    Create(&'a MailboxName),
    /// SUBSCRIBE mailbox
    Subscribe(&'a MailboxName),
    /// UID SEARCH [RETURN (...)] criteria
    UidSearch {
        /// Search keys in IMAP syntax, ASCII, e.g. `ALL` or `UID 100:*`.
        criteria: &'a str,
        /// Adds `RETURN (ALL)` for an ESEARCH answer (RFC 4731); only when advertised.
        esearch: bool,
    },
    /// UID FETCH uids items [(CHANGEDSINCE n)]
    UidFetch {
        /// Which messages.
        uids: &'a UidSet,
        /// Fetch items in IMAP syntax, e.g. `(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])`.
        items: &'a str,
        /// CONDSTORE CHANGEDSINCE modifier.
        changed_since: Option<u64>,
    },
    /// `APPEND mailbox [(flags)] [date] literal`
    Append {
        /// The target mailbox.
        mailbox: &'a MailboxName,
        /// Flags to set (`\Recent` is never sent).
        flags: &'a [Flag],
        /// INTERNALDATE to set.
        internal_date: Option<InternalDate>,
        /// The whole message.
        message: Bytes,
    },
    /// `APPEND mailbox ([(flags)] [date] literal)+`: RFC 3502 MULTIAPPEND, one command and
    /// one server transaction for several messages (all stored, or none).
    MultiAppend {
        /// The target mailbox.
        mailbox: &'a MailboxName,
        /// The messages, in order; at least one.
        messages: &'a [AppendMessage],
    },
    /// IDLE (RFC 2177); end it with [`crate::imap::codec::CommandEncoder::done`].
    Idle,
    /// CLOSE
    Close,
    /// UNSELECT (RFC 3691)
    Unselect,
}

/// What the encoder produced for one command: write the fragments in order; before a
/// synchronizing literal, wait for the server's `+` continuation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fragment {
    /// Bytes to write as they are (a line, or the part of a line up to a literal header
    /// `{n}\r\n` inclusive).
    Line(Bytes),
    /// Literal data.
    Literal {
        /// The data.
        data: Bytes,
        /// `true` for a synchronizing literal: the preceding `Line` ended in `{n}\r\n` and the
        /// client must wait for `+` before sending `data`.
        sync: bool,
    },
}
