//! System-folder roles and how they are recognised: SPECIAL-USE attributes (RFC 6154,
//! RFC 8457), then Gmail's older XLIST attributes, then a table of the names providers
//! actually use, in English, Chinese (Simplified and Traditional), Japanese, German, French,
//! Spanish and Russian.

use std::fmt;

/// What a system folder is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum Role {
    /// The INBOX.
    Inbox,
    /// Sent mail (`\Sent`).
    Sent,
    /// Unsent drafts (`\Drafts`).
    Drafts,
    /// Deleted mail (`\Trash`).
    Trash,
    /// Spam (`\Junk`, XLIST `\Spam`).
    Junk,
    /// Archived mail (`\Archive`).
    Archive,
    /// A virtual view of every message (`\All`, XLIST `\AllMail`; Gmail's "All Mail").
    All,
    /// A virtual view of flagged messages (`\Flagged`, XLIST `\Starred`; Gmail's "Starred").
    Flagged,
    /// A virtual view of important messages (`\Important`, RFC 8457; Gmail's "Important").
    Important,
}

impl Role {
    /// Every role, in the order ambiguous attributes are read.
    pub const ALL: [Role; 9] = [
        Role::Inbox,
        Role::Sent,
        Role::Drafts,
        Role::Trash,
        Role::Junk,
        Role::Archive,
        Role::All,
        Role::Flagged,
        Role::Important,
    ];

    /// Whether folders with this role are views that duplicate messages held in other
    /// folders (`\All`, `\Flagged`, `\Important`), so copying them would copy mail twice.
    pub fn is_virtual(self) -> bool {
        matches!(self, Role::All | Role::Flagged | Role::Important)
    }

    /// The English name used when a folder for this role has to be created.
    ///
    /// ```
    /// use mailmigrate::folder::Role;
    /// assert_eq!(Role::Junk.default_name(), "Junk");
    /// ```
    pub fn default_name(self) -> &'static str {
        match self {
            Role::Inbox => "Inbox",
            Role::Sent => "Sent",
            Role::Drafts => "Drafts",
            Role::Trash => "Trash",
            Role::Junk => "Junk",
            Role::Archive => "Archive",
            Role::All => "All Mail",
            Role::Flagged => "Flagged",
            Role::Important => "Important",
        }
    }

    /// The RFC 6154 / RFC 8457 attribute naming this role (`\Sent`, ...), for
    /// `CREATE ... (USE (...))`; `None` for the INBOX, which has none.
    pub fn special_use(self) -> Option<&'static str> {
        match self {
            Role::Inbox => None,
            Role::Sent => Some("\\Sent"),
            Role::Drafts => Some("\\Drafts"),
            Role::Trash => Some("\\Trash"),
            Role::Junk => Some("\\Junk"),
            Role::Archive => Some("\\Archive"),
            Role::All => Some("\\All"),
            Role::Flagged => Some("\\Flagged"),
            Role::Important => Some("\\Important"),
        }
    }

    /// A short lowercase name, stable for logs and exports.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Inbox => "inbox",
            Role::Sent => "sent",
            Role::Drafts => "drafts",
            Role::Trash => "trash",
            Role::Junk => "junk",
            Role::Archive => "archive",
            Role::All => "all",
            Role::Flagged => "flagged",
            Role::Important => "important",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a folder's role was recognised, strongest first: when two folders claim one role,
/// the stronger evidence wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum Evidence {
    /// The folder is named INBOX (any case, RFC 3501 5.1).
    InboxName,
    /// A SPECIAL-USE attribute (RFC 6154, RFC 8457).
    SpecialUse,
    /// An XLIST-only attribute (`\Inbox`, `\AllMail`, `\Spam`, `\Starred`).
    Xlist,
    /// The folder's name is in the table of names providers use.
    Name,
}

/// SPECIAL-USE attributes, in the order they are read when a folder carries several.
const SPECIAL_USE: [(&str, Role); 8] = [
    ("\\Sent", Role::Sent),
    ("\\Drafts", Role::Drafts),
    ("\\Trash", Role::Trash),
    ("\\Junk", Role::Junk),
    ("\\Archive", Role::Archive),
    ("\\All", Role::All),
    ("\\Flagged", Role::Flagged),
    ("\\Important", Role::Important),
];

/// Attributes only Gmail's XLIST (and servers imitating it) sends; XLIST's `\Sent`,
/// `\Drafts`, `\Trash` and `\Important` are spelt like SPECIAL-USE and read as such.
const XLIST: [(&str, Role); 4] = [
    ("\\Inbox", Role::Inbox),
    ("\\Spam", Role::Junk),
    ("\\AllMail", Role::All),
    ("\\Starred", Role::Flagged),
];

/// The role a folder's LIST/XLIST attributes give it, if any (attributes compare without
/// case; the first SPECIAL-USE attribute in [`Role::ALL`] order wins, then XLIST ones).
///
/// ```
/// use mailmigrate::folder::{Evidence, Role, role_from_attributes};
/// assert_eq!(role_from_attributes(["\\HasNoChildren", "\\Sent"]), Some((Role::Sent, Evidence::SpecialUse)));
/// assert_eq!(role_from_attributes(["\\Spam"]), Some((Role::Junk, Evidence::Xlist)));
/// assert_eq!(role_from_attributes(["\\HasChildren"]), None);
/// ```
pub fn role_from_attributes<I, S>(attributes: I) -> Option<(Role, Evidence)>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let attributes: Vec<S> = attributes.into_iter().collect();
    let has = |wanted: &str| attributes.iter().any(|a| a.as_ref().eq_ignore_ascii_case(wanted));
    if let Some(&(_, role)) = SPECIAL_USE.iter().find(|(attr, _)| has(attr)) {
        return Some((role, Evidence::SpecialUse));
    }
    XLIST
        .iter()
        .find(|(attr, _)| has(attr))
        .map(|&(_, role)| (role, Evidence::Xlist))
}

/// Names providers and clients give system folders, written lowercase with single spaces
/// (how [`role_for_name`] normalises a name before looking it up).
///
/// Sources: the SPECIAL-USE names of Gmail, Outlook/Exchange, Apple Mail, QQ/Tencent,
/// NetEase/Coremail, Yandex and Mail.ru in their localised forms. `Outbox` / `发件箱` are
/// ambiguous: in Outlook `Outbox` holds unsent mail and is not listed; Chinese providers
/// use `发件箱` for sent mail, so it is listed under Sent. `垃圾箱` is QQ's spam folder.
/// Virtual roles are only recognised by attribute: a folder merely called "Starred" or
/// "All Mail" on a non-Gmail server is a real folder.
const NAME_TABLE: &[(Role, &[&str])] = &[
    (
        Role::Sent,
        &[
            // English
            "sent",
            "sent items",
            "sent messages",
            "sent mail",
            "sent-mail",
            "sent email",
            "sent e-mail",
            // Simplified Chinese
            "已发送",
            "已发送邮件",
            "已发邮件",
            "已发信",
            "发件箱",
            "已寄出",
            // Traditional Chinese
            "已傳送",
            "已傳送郵件",
            "已發送",
            "已發送郵件",
            "已寄出郵件",
            "已寄郵件",
            "寄件備份",
            // Japanese
            "送信済み",
            "送信済みアイテム",
            "送信済みメール",
            // German
            "gesendet",
            "gesendete objekte",
            "gesendete elemente",
            "gesendete nachrichten",
            "gesendete e-mails",
            // French
            "envoyés",
            "envoyes",
            "éléments envoyés",
            "elements envoyes",
            "messages envoyés",
            "messages envoyes",
            "courrier envoyé",
            // Spanish
            "enviados",
            "elementos enviados",
            "mensajes enviados",
            "correo enviado",
            // Russian
            "отправленные",
            "отправленные элементы",
            "отправленные письма",
        ],
    ),
    (
        Role::Drafts,
        &[
            "drafts",
            "draft",
            "草稿箱",
            "草稿",
            "草稿夹",
            "草稿夾",
            "草稿匣",
            "下書き",
            "entwürfe",
            "entwuerfe",
            "brouillons",
            "borradores",
            "черновики",
        ],
    ),
    (
        Role::Trash,
        &[
            "trash",
            "deleted",
            "deleted items",
            "deleted messages",
            "deleted mail",
            "bin",
            "recycle bin",
            "已删除",
            "已删除邮件",
            "废纸篓",
            "回收站",
            "已刪除",
            "已刪除郵件",
            "已刪除的郵件",
            "刪除的郵件",
            "垃圾桶",
            "資源回收筒",
            "ゴミ箱",
            "ごみ箱",
            "削除済み",
            "削除済みアイテム",
            "削除済みメール",
            "papierkorb",
            "gelöschte objekte",
            "gelöschte elemente",
            "gelöschte nachrichten",
            "corbeille",
            "éléments supprimés",
            "elements supprimes",
            "messages supprimés",
            "papelera",
            "elementos eliminados",
            "mensajes eliminados",
            "корзина",
            "удаленные",
            "удалённые",
            "удаленные элементы",
            "удалённые элементы",
        ],
    ),
    (
        Role::Junk,
        &[
            "junk",
            "junk e-mail",
            "junk email",
            "junk mail",
            "spam",
            "bulk mail",
            "bulk",
            "垃圾邮件",
            "垃圾箱",
            "垃圾郵件",
            "垃圾電子郵件",
            "垃圾信件",
            "迷惑メール",
            "迷惑メールフォルダ",
            "スパム",
            "junk-e-mail",
            "spamverdacht",
            "courrier indésirable",
            "courrier indesirable",
            "indésirables",
            "indesirables",
            "pourriel",
            "correo no deseado",
            "no deseado",
            "спам",
            "нежелательная почта",
        ],
    ),
    (
        Role::Archive,
        &[
            "archive",
            "archives",
            "归档",
            "存档",
            "歸檔",
            "封存",
            "存檔",
            "アーカイブ",
            "archiv",
            "archivo",
            "archivos",
            "архив",
        ],
    ),
];

/// The role a folder's name gives it, by the built-in table of names providers use
/// (English, Simplified and Traditional Chinese, Japanese, German, French, Spanish,
/// Russian). The comparison ignores case and surrounding or repeated spaces. INBOX is
/// recognised in any case.
///
/// ```
/// use mailmigrate::folder::{Role, role_for_name};
/// assert_eq!(role_for_name("Sent Messages"), Some(Role::Sent));
/// assert_eq!(role_for_name("已发送"), Some(Role::Sent));
/// assert_eq!(role_for_name("寄件備份"), Some(Role::Sent));
/// assert_eq!(role_for_name("  deleted   ITEMS "), Some(Role::Trash));
/// assert_eq!(role_for_name("垃圾箱"), Some(Role::Junk));
/// assert_eq!(role_for_name("inbox"), Some(Role::Inbox));
/// assert_eq!(role_for_name("Projects"), None);
/// ```
pub fn role_for_name(name: &str) -> Option<Role> {
    let normalized = normalize(name);
    if normalized == "inbox" {
        return Some(Role::Inbox);
    }
    NAME_TABLE
        .iter()
        .find(|(_, names)| names.contains(&normalized.as_str()))
        .map(|&(role, _)| role)
}

fn normalize(name: &str) -> String {
    name.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_entries_are_written_normalised_and_unique() {
        let mut seen = std::collections::BTreeSet::new();
        for (role, names) in NAME_TABLE {
            assert!(!role.is_virtual(), "virtual roles come from attributes only");
            for name in *names {
                assert_eq!(&normalize(name), name, "{name} is not normalised");
                assert!(seen.insert(*name), "{name} is listed twice");
            }
        }
    }

    #[test]
    fn names_from_the_issue_resolve_to_their_roles() {
        let cases = [
            ("Sent Messages", Role::Sent),
            ("Sent Items", Role::Sent),
            ("Sent Mail", Role::Sent),
            ("已发送", Role::Sent),
            ("已发送邮件", Role::Sent),
            ("发件箱", Role::Sent),
            ("寄件備份", Role::Sent),
            ("Deleted Messages", Role::Trash),
            ("Deleted Items", Role::Trash),
            ("已删除", Role::Trash),
            ("已删除邮件", Role::Trash),
            ("Junk E-mail", Role::Junk),
            ("Spam", Role::Junk),
            ("Bulk Mail", Role::Junk),
            ("垃圾邮件", Role::Junk),
            ("垃圾箱", Role::Junk),
            ("草稿箱", Role::Drafts),
            ("草稿", Role::Drafts),
            ("INBOX", Role::Inbox),
            ("InBox", Role::Inbox),
            ("Entwürfe", Role::Drafts),
            ("ÉLÉMENTS ENVOYÉS", Role::Sent),
            ("Корзина", Role::Trash),
            ("迷惑メール", Role::Junk),
        ];
        for (name, role) in cases {
            assert_eq!(role_for_name(name), Some(role), "{name}");
        }
    }

    #[test]
    fn special_use_beats_xlist_and_attributes_ignore_case() {
        assert_eq!(
            role_from_attributes(["\\spam", "\\TRASH"]),
            Some((Role::Trash, Evidence::SpecialUse))
        );
        assert_eq!(
            role_from_attributes(["\\AllMail"]),
            Some((Role::All, Evidence::Xlist))
        );
        assert_eq!(
            role_from_attributes(["\\Starred"]),
            Some((Role::Flagged, Evidence::Xlist))
        );
        assert_eq!(
            role_from_attributes(["\\Inbox"]),
            Some((Role::Inbox, Evidence::Xlist))
        );
        assert_eq!(role_from_attributes(["\\Noselect", "\\HasChildren"]), None);
        assert_eq!(role_from_attributes(Vec::<String>::new()), None);
    }

    #[test]
    fn virtual_roles_are_all_flagged_important() {
        let virtual_roles: Vec<Role> = Role::ALL.into_iter().filter(|r| r.is_virtual()).collect();
        assert_eq!(virtual_roles, [Role::All, Role::Flagged, Role::Important]);
    }
}
