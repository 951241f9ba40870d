//! `* STATUS name (att value ...)`, keeping the raw name; unknown attributes are skipped.

use bytes::Bytes;

use crate::imap::codec::{Data, MailboxName, MailboxStatus, StatusItems};

use super::{PResult, astring, atom, end, fail, number64, run, skip_spaces, skip_value, sp, to_bytes};

pub(crate) fn status<'a>(frame: &Bytes, i: &'a [u8]) -> Result<Data, &'a [u8]> {
    run(status_data(frame, i)).map(Data::Status)
}

fn status_data<'a>(frame: &Bytes, i: &'a [u8]) -> PResult<'a, MailboxStatus> {
    let (i, ()) = sp(i)?;
    let (i, name) = astring(i)?;
    let (i, ()) = sp(i)?;
    let Some(mut i) = i.strip_prefix(b"(") else {
        return fail(i);
    };
    let mut items = StatusItems::default();
    loop {
        i = skip_spaces(i);
        if let Some(rest) = i.strip_prefix(b")") {
            i = rest;
            break;
        }
        let (rest, name) = atom(i)?;
        let (rest, ()) = sp(rest)?;
        let name = name.to_ascii_uppercase();
        let value = number64(rest).ok();
        // Values too large for their field are dropped, like unknown attributes.
        let small = |v: u64| u32::try_from(v).ok();
        match (name.as_slice(), value) {
            (b"MESSAGES", Some((_, v))) => items.messages = small(v),
            (b"RECENT", Some((_, v))) => items.recent = small(v),
            (b"UIDNEXT", Some((_, v))) => items.uid_next = small(v),
            (b"UIDVALIDITY", Some((_, v))) => items.uid_validity = small(v),
            (b"UNSEEN", Some((_, v))) => items.unseen = small(v),
            (b"HIGHESTMODSEQ", Some((_, v))) => items.highest_modseq = Some(v),
            (b"SIZE", Some((_, v))) => items.size = Some(v),
            _ => {}
        }
        i = match value {
            Some((r, _)) => r,
            None => skip_value(rest)?.0,
        };
    }
    let (i, ()) = end(i)?;
    Ok((
        i,
        MailboxStatus {
            name: MailboxName::from_raw(to_bytes(frame, name)),
            items,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &[u8]) -> Option<MailboxStatus> {
        let frame = Bytes::copy_from_slice(line);
        match status(&frame, &frame[..]) {
            Ok(Data::Status(s)) => Some(s),
            _ => None,
        }
    }

    #[test]
    fn all_known_items() {
        let s = parse(b" INBOX (MESSAGES 231 RECENT 1 UIDNEXT 44292 UIDVALIDITY 1 UNSEEN 3 HIGHESTMODSEQ 7011231777 SIZE 9876543210)").unwrap();
        assert_eq!(s.name.raw(), b"INBOX");
        assert_eq!(
            s.items,
            StatusItems {
                messages: Some(231),
                recent: Some(1),
                uid_next: Some(44292),
                uid_validity: Some(1),
                unseen: Some(3),
                highest_modseq: Some(7_011_231_777),
                size: Some(9_876_543_210),
            }
        );
    }

    #[test]
    fn unknown_items_skipped_and_8bit_names_kept() {
        let s = parse(b" \"\xb2\xdd\xb8\xe5\" (MESSAGES 3 MAILBOXID (F2212ea87) DELETED 2 APPENDLIMIT NIL UIDNEXT 9 )  ").unwrap();
        assert_eq!(s.name.raw(), b"\xb2\xdd\xb8\xe5");
        assert_eq!((s.items.messages, s.items.uid_next), (Some(3), Some(9)));
    }

    #[test]
    fn empty_list_and_bad_input() {
        assert_eq!(
            parse(b" \"Sent Items\" ()").unwrap().items,
            StatusItems::default()
        );
        assert!(parse(b" INBOX").is_none());
        assert!(parse(b" INBOX (MESSAGES)").is_none());
        assert_eq!(
            parse(b" INBOX (MESSAGES 99999999999)").unwrap().items.messages,
            None
        );
    }
}
