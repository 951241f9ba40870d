//! Status responses (`OK`, `NO`, `BAD`, `PREAUTH`, `BYE`) and their response codes.
//!
//! Ours rather than imap-proto's: its `Outcome::parse` panics on a non-ASCII byte right after
//! `]` (research B.6 #1), leaves RFC 5530 codes in the text, and drops `[CAPABILITY ...]`
//! codes without IMAP4rev1. Every code here is typed or kept as `Code::Other`, and a code whose
//! arguments do not parse is kept as `Code::Other` rather than failing the response.

use crate::imap::codec::{Capabilities, Code, KnownCode, Status};

use super::{end, flag_list, lossy, number, number64, run, skip_spaces, sp, uid_set};

/// The status of a status response keyword, case-insensitively.
pub(crate) fn status_keyword(word: &[u8]) -> Option<Status> {
    let status = match word.to_ascii_uppercase().as_slice() {
        b"OK" => Status::Ok,
        b"NO" => Status::No,
        b"BAD" => Status::Bad,
        b"PREAUTH" => Status::PreAuth,
        b"BYE" => Status::Bye,
        _ => return None,
    };
    Some(status)
}

/// `[SP] ["[" code "]" [SP]] text` after the status keyword; never fails.
pub(crate) fn resp_text(i: &[u8]) -> (Option<Code>, String) {
    let i = i.strip_prefix(b" ").unwrap_or(i);
    if let Some(after) = i.strip_prefix(b"[")
        && let Some(close) = code_end(after)
    {
        let code = parse_code(&after[..close]);
        let text = &after[close + 1..];
        let text = text.strip_prefix(b" ").unwrap_or(text);
        return (Some(code), lossy(text));
    }
    (None, lossy(i))
}

/// Where the `]` closing a response code is: the first one outside parentheses and quotes
/// (PERMANENTFLAGS may hold `]` inside its list on some servers).
fn code_end(i: &[u8]) -> Option<usize> {
    let mut depth = 0usize;
    let mut quoted = false;
    let mut escaped = false;
    for (k, &b) in i.iter().enumerate() {
        if quoted {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => quoted = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => quoted = true,
            b'(' => depth += 1,
            b')' => depth = depth.saturating_sub(1),
            b']' if depth == 0 => return Some(k),
            _ => {}
        }
    }
    // An unbalanced list: fall back to the first `]`.
    i.iter().position(|&b| b == b']')
}

/// One code's text between the brackets.
fn parse_code(i: &[u8]) -> Code {
    let name_len = i.iter().position(|&b| b == b' ').unwrap_or(i.len());
    let name = lossy(&i[..name_len]).to_ascii_uppercase();
    let args = &i[name_len..];
    let arg_text = skip_spaces(args);
    let typed = match name.as_str() {
        "ALERT" => Some(Code::Alert),
        "PARSE" => Some(Code::Parse),
        "READ-ONLY" => Some(Code::ReadOnly),
        "READ-WRITE" => Some(Code::ReadWrite),
        "TRYCREATE" => Some(Code::TryCreate),
        "UIDNOTSTICKY" => Some(Code::UidNotSticky),
        "NOMODSEQ" => Some(Code::NoModSeq),
        "CLOSED" => Some(Code::Closed),
        "CAPABILITY" => Some(Code::Capability(capabilities(arg_text))),
        "PERMANENTFLAGS" => run(flag_list(arg_text).and_then(|(r, f)| end(r).map(|(r, ())| (r, f))))
            .ok()
            .map(Code::PermanentFlags),
        "UIDVALIDITY" => run(number_only(arg_text)).ok().map(Code::UidValidity),
        "UIDNEXT" => run(number_only(arg_text)).ok().map(Code::UidNext),
        "UNSEEN" => run(number_only(arg_text)).ok().map(Code::Unseen),
        "HIGHESTMODSEQ" => run(number64(arg_text).and_then(|(r, n)| end(r).map(|(r, ())| (r, n))))
            .ok()
            .map(Code::HighestModSeq),
        "APPENDUID" => run(append_uid(arg_text)).ok(),
        "COPYUID" => run(copy_uid(arg_text)).ok(),
        _ => known_code(&name).map(Code::Known),
    };
    typed.unwrap_or_else(|| Code::Other {
        name,
        args: if arg_text.is_empty() {
            None
        } else {
            Some(lossy(arg_text))
        },
    })
}

fn number_only(i: &[u8]) -> super::PResult<'_, u32> {
    let (i, n) = number(i)?;
    let (i, ()) = end(i)?;
    Ok((i, n))
}

fn append_uid(i: &[u8]) -> super::PResult<'_, Code> {
    let (i, uid_validity) = number(i)?;
    let (i, ()) = sp(i)?;
    let (i, uids) = uid_set(i)?;
    let (i, ()) = end(i)?;
    Ok((i, Code::AppendUid { uid_validity, uids }))
}

fn copy_uid(i: &[u8]) -> super::PResult<'_, Code> {
    let (i, uid_validity) = number(i)?;
    let (i, ()) = sp(i)?;
    let (i, source) = uid_set(i)?;
    let (i, ()) = sp(i)?;
    let (i, dest) = uid_set(i)?;
    let (i, ()) = end(i)?;
    Ok((
        i,
        Code::CopyUid {
            uid_validity,
            source,
            dest,
        },
    ))
}

/// RFC 5530 codes and vendor codes that decide error kinds.
fn known_code(name: &str) -> Option<KnownCode> {
    Some(match name {
        "UNAVAILABLE" => KnownCode::Unavailable,
        "AUTHENTICATIONFAILED" => KnownCode::AuthenticationFailed,
        "AUTHORIZATIONFAILED" => KnownCode::AuthorizationFailed,
        "EXPIRED" => KnownCode::Expired,
        "PRIVACYREQUIRED" => KnownCode::PrivacyRequired,
        "CONTACTADMIN" => KnownCode::ContactAdmin,
        "NOPERM" => KnownCode::NoPerm,
        "INUSE" => KnownCode::InUse,
        "EXPUNGEISSUED" => KnownCode::ExpungeIssued,
        "CORRUPTION" => KnownCode::Corruption,
        "SERVERBUG" => KnownCode::ServerBug,
        "CLIENTBUG" => KnownCode::ClientBug,
        "CANNOT" => KnownCode::Cannot,
        "LIMIT" => KnownCode::Limit,
        "OVERQUOTA" => KnownCode::OverQuota,
        "ALREADYEXISTS" => KnownCode::AlreadyExists,
        "NONEXISTENT" => KnownCode::NonExistent,
        "THROTTLED" => KnownCode::Throttled,
        _ => return None,
    })
}

/// Capability atoms separated by any number of spaces, upper-cased. IMAP4rev1 is not
/// required (IMAP4rev2-only servers exist).
pub(crate) fn capabilities(i: &[u8]) -> Capabilities {
    Capabilities {
        atoms: i
            .split(|&b| b == b' ')
            .filter(|t| !t.is_empty())
            .map(|t| lossy(t).to_ascii_uppercase())
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::UidSet;

    fn code(text: &[u8]) -> Option<Code> {
        resp_text(text).0
    }

    #[test]
    fn typed_codes() {
        let set = |s: &str| s.parse::<UidSet>().unwrap();
        for (text, expected) in [
            (&b" [ALERT] x"[..], Code::Alert),
            (b" [parse] x", Code::Parse),
            (b" [READ-ONLY] x", Code::ReadOnly),
            (b" [READ-WRITE] x", Code::ReadWrite),
            (b" [TRYCREATE] x", Code::TryCreate),
            (b" [UIDNOTSTICKY] x", Code::UidNotSticky),
            (b" [NOMODSEQ] x", Code::NoModSeq),
            (b" [CLOSED] x", Code::Closed),
            (b" [UIDVALIDITY 3857529045] x", Code::UidValidity(3_857_529_045)),
            (b" [UIDNEXT 4392] x", Code::UidNext(4392)),
            (b" [UNSEEN 12] x", Code::Unseen(12)),
            (
                b" [HIGHESTMODSEQ 90060115205545359] x",
                Code::HighestModSeq(90_060_115_205_545_359),
            ),
            (
                b" [APPENDUID 38505 3955] x",
                Code::AppendUid {
                    uid_validity: 38505,
                    uids: set("3955"),
                },
            ),
            (
                b" [APPENDUID 38505 3955:3957,3960] x",
                Code::AppendUid {
                    uid_validity: 38505,
                    uids: set("3955:3957,3960"),
                },
            ),
            (
                b" [COPYUID 38505 304,319:320 3956:3958] x",
                Code::CopyUid {
                    uid_validity: 38505,
                    source: set("304,319:320"),
                    dest: set("3956:3958"),
                },
            ),
            (
                b" [AUTHENTICATIONFAILED] x",
                Code::Known(KnownCode::AuthenticationFailed),
            ),
            (b" [UNAVAILABLE] x", Code::Known(KnownCode::Unavailable)),
            (b" [OVERQUOTA] x", Code::Known(KnownCode::OverQuota)),
            (b" [THROTTLED] x", Code::Known(KnownCode::Throttled)),
            (b" [NONEXISTENT] x", Code::Known(KnownCode::NonExistent)),
            (b" [INUSE] x", Code::Known(KnownCode::InUse)),
            (b" [LIMIT] x", Code::Known(KnownCode::Limit)),
        ] {
            assert_eq!(code(text), Some(expected), "{}", String::from_utf8_lossy(text));
        }
    }

    #[test]
    fn capability_and_permanentflags_codes() {
        let Some(Code::Capability(caps)) = code(b" [CAPABILITY IMAP4rev2  AUTH=PLAIN idle] Hi") else {
            panic!()
        };
        assert!(caps.has("imap4rev2") && caps.has_auth("plain") && caps.has("IDLE"));
        assert_eq!(caps.atoms.len(), 3);
        assert_eq!(
            code(b" [PERMANENTFLAGS (\\Answered \\Seen \\*)] Limited"),
            Some(Code::PermanentFlags(vec![
                Flag::Answered,
                Flag::Seen,
                Flag::MayCreate
            ]))
        );
        // Some servers put `]` inside a flag: the closing bracket is the one outside the list.
        assert_eq!(
            resp_text(b" [PERMANENTFLAGS (OIB-Seen-[Gmail]/All \\*)] ok"),
            (
                Some(Code::PermanentFlags(vec![
                    Flag::Keyword("OIB-Seen-[Gmail]/All".into()),
                    Flag::MayCreate
                ])),
                "ok".into()
            )
        );
    }

    use crate::imap::codec::Flag;

    #[test]
    fn unknown_or_malformed_codes_are_kept_as_other() {
        assert_eq!(
            code(b" [REFERRAL imap://x/] go"),
            Some(Code::Other {
                name: "REFERRAL".into(),
                args: Some("imap://x/".into())
            })
        );
        assert_eq!(
            code(b" [UIDVALIDITY abc] x"),
            Some(Code::Other {
                name: "UIDVALIDITY".into(),
                args: Some("abc".into())
            })
        );
        assert_eq!(
            code(b" [UIDNEXT 99999999999] x"),
            Some(Code::Other {
                name: "UIDNEXT".into(),
                args: Some("99999999999".into())
            })
        );
        assert_eq!(
            code(b" [XYZ] x"),
            Some(Code::Other {
                name: "XYZ".into(),
                args: None
            })
        );
    }

    #[test]
    fn text_after_code_including_8bit_right_after_bracket() {
        assert_eq!(
            resp_text(b" [ALERT] System going down"),
            (Some(Code::Alert), "System going down".into())
        );
        assert_eq!(
            resp_text("[ALERT]été".as_bytes()),
            (Some(Code::Alert), "été".into())
        );
        assert_eq!(
            resp_text(b" [TRYCREATE]\xe9"),
            (Some(Code::TryCreate), "\u{fffd}".into())
        );
        assert_eq!(resp_text(b" [ALERT]"), (Some(Code::Alert), String::new()));
        assert_eq!(resp_text(b""), (None, String::new()));
        assert_eq!(resp_text(b" no code [ALERT]"), (None, "no code [ALERT]".into()));
        assert_eq!(resp_text(b" [unclosed text"), (None, "[unclosed text".into()));
    }
}
