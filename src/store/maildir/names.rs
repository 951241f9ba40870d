//! How folders, messages and flags are named on disk, the way Dovecot and Courier read them.

use crate::folder::Role;
use crate::imap::codec::{Flag, encode_mutf7};
use crate::sync::{SourceId, TargetFolder};
use crate::{Error, ErrorKind, Result};

/// The highest number of keywords one folder can hold: one file-name letter each, `a` to `z`.
pub(super) const MAX_KEYWORDS: usize = 26;

/// The Maildir++ directory of `folder` under the root (`.A.B`), or `None` for INBOX (the root).
///
/// A top-level folder with the INBOX role is the INBOX whatever it is called; deeper down
/// (the under-address layout's `old@example.com/Inbox`) the path decides.
///
/// Components are stored in modified UTF-7, as Dovecot's default maildir storage keeps them
/// (`Q&A` becomes `.Q&-A`, `项目` becomes `.&mHl27g-`); `.` separates the hierarchy.
pub(super) fn folder_dir_name(folder: &TargetFolder) -> Result<Option<String>> {
    if folder.role == Some(Role::Inbox) && folder.path.len() <= 1 {
        return Ok(None);
    }
    let path = &folder.path;
    if path.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "maildir: a target folder has an empty path; the folder planner must give every folder \
             at least one name component, so nothing was stored",
        ));
    }
    if path.len() == 1 && path[0].eq_ignore_ascii_case("INBOX") {
        return Ok(None);
    }
    let mut dir = String::new();
    for (i, component) in path.iter().enumerate() {
        check_component(path, i, component)?;
        dir.push('.');
        // Dovecot treats INBOX case-insensitively and stores its children under `.INBOX.`.
        if i == 0 && component.eq_ignore_ascii_case("INBOX") {
            dir.push_str("INBOX");
        } else {
            dir.push_str(&encode_mutf7(component));
        }
    }
    Ok(Some(dir))
}

/// The folder's name for Dovecot's `subscriptions` file: its components, encoded as on disk.
pub(super) fn storage_components(dir_name: &str) -> Vec<&str> {
    dir_name.trim_start_matches('.').split('.').collect()
}

fn check_component(path: &[String], index: usize, component: &str) -> Result<()> {
    let problem = if component.is_empty() {
        Some("is empty")
    } else if component.contains('.') {
        Some("contains '.', the Maildir++ hierarchy separator")
    } else if component.contains('/') {
        Some("contains '/'")
    } else if component.chars().any(char::is_control) {
        Some("contains a control character")
    } else if index == 0 && component.starts_with('~') {
        // Dovecot refuses names starting with `~` (home-directory expansion).
        Some("starts with '~'")
    } else {
        None
    };
    match problem {
        None => Ok(()),
        Some(problem) => Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "maildir: target folder {path:?}: component {component:?} {problem}; the folder \
                 planner must sanitise names for a Maildir++ target (no '.', '/' or control \
                 characters), so nothing was stored there"
            ),
        )),
    }
}

/// The deterministic identity of a message, `mm_<32 hex digits>`: a hash of where it comes
/// from, so a message offered again after a crash is recognised whatever its file is called.
pub(super) fn identity(source: &SourceId) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    match source {
        SourceId::Imap {
            folder,
            uid_validity,
            uid,
        } => {
            ctx.update(b"imap\0");
            ctx.update(&(folder.raw().len() as u64).to_be_bytes());
            ctx.update(folder.raw());
            ctx.update(&uid_validity.to_be_bytes());
            ctx.update(&uid.get().to_be_bytes());
        }
        SourceId::Pop3 { uidl } => {
            ctx.update(b"pop3\0");
            ctx.update(uidl.as_bytes());
        }
    }
    let digest = ctx.finish();
    let mut id = String::with_capacity(3 + 32);
    id.push_str("mm_");
    for b in &digest.as_ref()[..16] {
        id.push_str(&format!("{b:02x}"));
    }
    id
}

/// The unique part of a new message's file name, `<secs>.<identity>.mailmigrate` in the
/// classic `time.unique.host` shape. Dovecot gives new files UIDs in the order of that
/// leading time, so with the internal date there the target's UIDs follow the dates.
pub(super) fn base_name(identity: &str, secs: u64) -> String {
    format!("{secs}.{identity}.mailmigrate")
}

/// The identity (`mm_<hex>`) in a message file name this store wrote, if it is one.
pub(super) fn identity_of(file_name: &str) -> Option<&str> {
    base_of(file_name).split('.').find(|part| {
        part.len() == 35 && part.starts_with("mm_") && part[3..].bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// The unique part of a message file name: what comes before the first `,` (extra fields
/// such as `S=`) or `:` (the flags, which Dovecot renames as they change).
pub(super) fn base_of(file_name: &str) -> &str {
    let end = file_name.find([',', ':']).unwrap_or(file_name.len());
    &file_name[..end]
}

/// The message size recorded as `,S=<size>` in a file name, if any.
pub(super) fn size_from_name(file_name: &str) -> Option<u64> {
    let head = file_name.split(':').next().unwrap_or(file_name);
    head.split(',')
        .skip(1)
        .find_map(|field| field.strip_prefix("S=")?.parse().ok())
}

/// The file name of a stored message: `<base>,S=<size>,W=<virtual size>:2,<letters>`, letters
/// in ASCII order. Dovecot trusts both sizes (and fails reads if they are wrong), so it never
/// has to read a file to answer `RFC822.SIZE` or POP3 `LIST`.
pub(super) fn file_name(base: &str, raw: &[u8], letters: &[u8]) -> String {
    let mut sorted = letters.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let letters: String = sorted.into_iter().map(char::from).collect();
    format!("{base},S={},W={}:2,{letters}", raw.len(), virtual_size(raw))
}

/// The size with every bare LF counted as CRLF, as Dovecot computes it (`message-size.c`).
pub(super) fn virtual_size(raw: &[u8]) -> u64 {
    let bare_lf = raw
        .iter()
        .enumerate()
        .filter(|&(i, &b)| b == b'\n' && (i == 0 || raw[i - 1] != b'\r'))
        .count();
    (raw.len() + bare_lf) as u64
}

/// The Maildir letter of a system flag (`None` for flags Maildir does not keep).
pub(super) fn system_letter(flag: &Flag) -> Option<u8> {
    match flag {
        Flag::Draft => Some(b'D'),
        Flag::Flagged => Some(b'F'),
        Flag::Answered => Some(b'R'),
        Flag::Seen => Some(b'S'),
        Flag::Deleted => Some(b'T'),
        _ => None,
    }
}

/// Whether `keyword` can be stored: an IMAP atom Dovecot accepts as a keyword (printable
/// ASCII without spaces or atom-specials, not a `\` flag). Anything else would corrupt the
/// `dovecot-keywords` file or be refused by Dovecot.
pub(super) fn valid_keyword(keyword: &str) -> bool {
    !keyword.is_empty()
        && keyword.len() <= 200
        && keyword
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && !b"(){%*\"\\]".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Uid;
    use crate::imap::codec::MailboxName;

    fn folder(path: &[&str]) -> TargetFolder {
        TargetFolder {
            path: path.iter().map(|s| s.to_string()).collect(),
            role: None,
        }
    }

    #[test]
    fn folders_map_to_maildirpp_directories_in_modified_utf7() {
        assert_eq!(folder_dir_name(&folder(&["INBOX"])).unwrap(), None);
        assert_eq!(folder_dir_name(&folder(&["inbox"])).unwrap(), None);
        let inbox = TargetFolder {
            path: vec!["Posteingang".into()],
            role: Some(Role::Inbox),
        };
        assert_eq!(folder_dir_name(&inbox).unwrap(), None);
        let under_address = TargetFolder {
            path: vec!["old@example．com".into(), "Inbox".into()],
            role: Some(Role::Inbox),
        };
        assert_eq!(
            folder_dir_name(&under_address).unwrap().unwrap(),
            ".old@example&,w4-com.Inbox"
        );
        assert_eq!(
            folder_dir_name(&folder(&["项目", "2024"])).unwrap().unwrap(),
            ".&mHl27g-.2024"
        );
        assert_eq!(folder_dir_name(&folder(&["Q&A"])).unwrap().unwrap(), ".Q&-A");
        assert_eq!(folder_dir_name(&folder(&["A+B"])).unwrap().unwrap(), ".A+B");
        assert_eq!(folder_dir_name(&folder(&["Star*x"])).unwrap().unwrap(), ".Star*x");
        assert_eq!(
            folder_dir_name(&folder(&["Ünï"])).unwrap().unwrap(),
            ".&ANw-n&AO8-"
        );
        assert_eq!(
            folder_dir_name(&folder(&["inbox", "sub"])).unwrap().unwrap(),
            ".INBOX.sub"
        );
        assert_eq!(folder_dir_name(&folder(&["a", "~b"])).unwrap().unwrap(), ".a.~b");
    }

    #[test]
    fn unsanitised_components_are_rejected_not_misplaced() {
        for bad in [
            &["a.b"][..],
            &["a/b"],
            &["x", ""],
            &["tab\there"],
            &["~home"],
            &[],
        ] {
            let err = folder_dir_name(&folder(bad)).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}");
            assert!(err.message().contains("planner"), "{err}");
        }
    }

    #[test]
    fn identities_are_deterministic_distinguish_sources_and_are_found_in_file_names() {
        let imap = |name: &'static [u8], validity, uid| SourceId::Imap {
            folder: MailboxName::from_raw(name),
            uid_validity: validity,
            uid: Uid::new(uid).unwrap(),
        };
        let a = identity(&imap(b"INBOX", 1, 7));
        assert_eq!(a, identity(&imap(b"INBOX", 1, 7)));
        assert!(a.starts_with("mm_") && a.len() == 35, "{a}");
        assert_ne!(a, identity(&imap(b"INBOX", 2, 7)));
        assert_ne!(a, identity(&imap(b"INBOX", 1, 8)));
        assert_ne!(a, identity(&imap(b"Sent", 1, 7)));
        assert_ne!(a, identity(&SourceId::Pop3 { uidl: "INBOX".into() }));
        let base = base_name(&a, 1_600_000_000);
        assert_eq!(base, format!("1600000000.{a}.mailmigrate"));
        assert_eq!(identity_of(&base), Some(a.as_str()));
        assert_eq!(identity_of(&format!("{base},S=5,W=6:2,RSa")), Some(a.as_str()));
        assert_eq!(identity_of("1795948884.M677845P13084.vm,S=18:2,S"), None);
        assert_eq!(identity_of("1.mm_notahexnumbernotahexnumbernotah.x"), None);
    }

    #[test]
    fn file_names_carry_size_and_sorted_flag_letters() {
        let name = file_name("mm_x.mailmigrate", b"A: b\n\r\nc\n\nd\r\n", b"TbSDaFRS");
        assert_eq!(name, "mm_x.mailmigrate,S=13,W=16:2,DFRSTab");
        assert_eq!(base_of(&name), "mm_x.mailmigrate");
        assert_eq!(size_from_name(&name), Some(13));
        assert_eq!(virtual_size(b"\nx\r\n"), 5);
        assert_eq!(virtual_size(b""), 0);
        assert_eq!(
            base_of("1795948884.M677845P13084.vm,S=18,W=21:2,S"),
            "1795948884.M677845P13084.vm"
        );
        assert_eq!(size_from_name("1795948884.M6P1.vm,W=21,S=18:2,S"), Some(18));
        assert_eq!(size_from_name("plain:2,S=5"), None);
    }

    #[test]
    fn only_atoms_are_storable_keywords() {
        assert!(valid_keyword("$Forwarded"));
        assert!(valid_keyword("Work"));
        for bad in ["", "two words", "a\nb", "\\Junk", "paren(", "项目", "star*"] {
            assert!(!valid_keyword(bad), "{bad:?}");
        }
    }
}
