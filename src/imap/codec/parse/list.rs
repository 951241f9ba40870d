//! `* LIST`, `* LSUB` and `* XLIST`, keeping the mailbox name's raw bytes.
//!
//! imap-proto decodes 8-bit names lossily, leaves quoted escapes in, matches attribute
//! prefixes (`\AllMail` breaks the response) and knows no XLIST (research B.3, B.4).

use bytes::Bytes;

use crate::imap::codec::{Data, ListItem, ListKind, MailboxName, NameAttribute};

use super::{
    PResult, astring, end, fail, is_atomish, nil, quoted, run, skip_spaces, skip_value, sp, to_bytes,
};

pub(crate) fn list<'a>(frame: &Bytes, i: &'a [u8], kind: ListKind) -> Result<Data, &'a [u8]> {
    run(list_item(frame, i, kind)).map(Data::List)
}

fn list_item<'a>(frame: &Bytes, i: &'a [u8], kind: ListKind) -> PResult<'a, ListItem> {
    let (i, ()) = sp(i)?;
    let (i, attributes) = attributes(i)?;
    let (i, ()) = sp(i)?;
    let (i, delimiter) = delimiter(i)?;
    let (i, ()) = sp(i)?;
    let (mut i, name) = astring(i)?;
    // RFC 5258 extended data, e.g. ("CHILDINFO" ("SUBSCRIBED")), is skipped.
    loop {
        let rest = skip_spaces(i);
        if rest.is_empty() || rest.len() == i.len() {
            break;
        }
        i = skip_value(rest)?.0;
    }
    let (i, ()) = end(i)?;
    let name = MailboxName::from_raw(to_bytes(frame, name));
    Ok((
        i,
        ListItem {
            kind,
            attributes,
            delimiter,
            name,
        },
    ))
}

fn attributes(i: &[u8]) -> PResult<'_, Vec<NameAttribute>> {
    let Some(mut i) = i.strip_prefix(b"(") else {
        return fail(i);
    };
    let mut attrs = Vec::new();
    loop {
        i = skip_spaces(i);
        if let Some(rest) = i.strip_prefix(b")") {
            return Ok((rest, attrs));
        }
        let n = i.iter().position(|&b| !is_atomish(b)).unwrap_or(i.len());
        if n == 0 {
            return fail(i);
        }
        attrs.push(attribute(&i[..n]));
        i = &i[n..];
    }
}

/// Whole-token, case-insensitive matching; XLIST's names map to their SPECIAL-USE twins.
fn attribute(token: &[u8]) -> NameAttribute {
    match token.to_ascii_lowercase().as_slice() {
        b"\\noinferiors" => NameAttribute::NoInferiors,
        b"\\noselect" => NameAttribute::NoSelect,
        b"\\nonexistent" => NameAttribute::NonExistent,
        b"\\marked" => NameAttribute::Marked,
        b"\\unmarked" => NameAttribute::Unmarked,
        b"\\haschildren" => NameAttribute::HasChildren,
        b"\\hasnochildren" => NameAttribute::HasNoChildren,
        b"\\subscribed" => NameAttribute::Subscribed,
        b"\\remote" => NameAttribute::Remote,
        b"\\all" | b"\\allmail" => NameAttribute::All,
        b"\\archive" => NameAttribute::Archive,
        b"\\drafts" => NameAttribute::Drafts,
        b"\\flagged" | b"\\starred" => NameAttribute::Flagged,
        b"\\junk" | b"\\spam" => NameAttribute::Junk,
        b"\\sent" => NameAttribute::Sent,
        b"\\trash" => NameAttribute::Trash,
        b"\\important" => NameAttribute::Important,
        b"\\inbox" => NameAttribute::Inbox,
        _ => NameAttribute::Extension(String::from_utf8_lossy(token).into_owned()),
    }
}

/// `"c"` (escapes removed, so `"\\"` is one backslash) or NIL.
pub(crate) fn delimiter(i: &[u8]) -> PResult<'_, Option<char>> {
    if let Ok((rest, ())) = nil(i) {
        return Ok((rest, None));
    }
    let (rest, value) = quoted(i)?;
    Ok((rest, String::from_utf8_lossy(&value).chars().next()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &[u8], kind: ListKind) -> Result<ListItem, String> {
        let frame = Bytes::copy_from_slice(line);
        match list(&frame, &frame[..], kind) {
            Ok(Data::List(item)) => Ok(item),
            Ok(other) => Err(format!("{other:?}")),
            Err(at) => Err(format!("failed at {:?}", String::from_utf8_lossy(at))),
        }
    }

    #[test]
    fn plain_list() {
        let item = parse(br#" (\HasNoChildren) "/" INBOX"#, ListKind::List).unwrap();
        assert_eq!(item.attributes, vec![NameAttribute::HasNoChildren]);
        assert_eq!(item.delimiter, Some('/'));
        assert_eq!(item.name.raw(), b"INBOX");
    }

    #[test]
    fn raw_8bit_names_survive_quoted_and_bare() {
        let item = parse(
            b" (\\HasNoChildren) \"/\" \"\xb2\xdd\xb8\xe5\xcf\xe4\"",
            ListKind::List,
        )
        .unwrap();
        assert_eq!(item.name.raw(), b"\xb2\xdd\xb8\xe5\xcf\xe4");
        assert_eq!(item.name.decode().text, "草稿箱");
        let bare = parse(b" () \"/\" \xd2\xd1\xb7\xa2\xcb\xcd", ListKind::Lsub).unwrap();
        assert_eq!(bare.name.raw(), b"\xd2\xd1\xb7\xa2\xcb\xcd");
        assert_eq!(bare.kind, ListKind::Lsub);
    }

    #[test]
    fn escapes_are_removed_from_names_and_delimiters() {
        let item = parse(br#" () "\\" "a\"b\\c""#, ListKind::List).unwrap();
        assert_eq!(item.delimiter, Some('\\'));
        assert_eq!(item.name.raw(), br#"a"b\c"#);
    }

    #[test]
    fn literal_names_are_zero_copy() {
        let frame = Bytes::from_static(b" () \".\" {9}\r\nSent\r\nOld");
        let Ok(Data::List(item)) = list(&frame, &frame[..], ListKind::List) else {
            panic!()
        };
        assert_eq!(item.name.raw(), b"Sent\r\nOld");
        assert!(frame.as_ptr_range().contains(&item.name.raw().as_ptr()));
    }

    #[test]
    fn nil_delimiter_numeric_names_and_extended_data() {
        let item = parse(br#" (\Noselect) NIL 200"#, ListKind::List).unwrap();
        assert_eq!((item.delimiter, item.name.raw()), (None, &b"200"[..]));
        let ext = parse(
            br#" (\Subscribed) "/" "Foo" ("CHILDINFO" ("SUBSCRIBED")) ("OLDNAME" ("Bar"))"#,
            ListKind::List,
        )
        .unwrap();
        assert_eq!(ext.name.raw(), b"Foo");
        assert_eq!(ext.attributes, vec![NameAttribute::Subscribed]);
    }

    #[test]
    fn xlist_and_special_use_attributes_match_whole_tokens() {
        let item = parse(br#" (\HasNoChildren \AllMail \Spam \Starred \Inbox \Important \SentMail) "/" "[Gmail]/All Mail""#, ListKind::Xlist).unwrap();
        assert_eq!(
            item.attributes,
            vec![
                NameAttribute::HasNoChildren,
                NameAttribute::All,
                NameAttribute::Junk,
                NameAttribute::Flagged,
                NameAttribute::Inbox,
                NameAttribute::Important,
                NameAttribute::Extension("\\SentMail".into()),
            ]
        );
        assert_eq!(item.name.raw(), b"[Gmail]/All Mail");
        let su = parse(br#" (\All \Archive \Drafts \Flagged \Junk \Sent \Trash \NonExistent \Remote \Marked \Unmarked \NoInferiors \HasChildren \X-Foo) "." x"#, ListKind::List).unwrap();
        assert_eq!(su.attributes.len(), 14);
        assert_eq!(su.attributes[13], NameAttribute::Extension("\\X-Foo".into()));
    }

    #[test]
    fn doubled_spaces_tolerated_and_garbage_rejected() {
        assert!(parse(br#"  ( \Marked )  "/"  INBOX  "#, ListKind::List).is_ok());
        assert!(parse(br#" (\Marked) "/""#, ListKind::List).is_err());
        assert!(parse(br#" \Marked "/" INBOX"#, ListKind::List).is_err());
        assert!(parse(br#" () "/" "unterminated"#, ListKind::List).is_err());
        assert!(parse(br#" () "/" INBOX )"#, ListKind::List).is_err());
    }
}
