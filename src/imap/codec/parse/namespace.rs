//! `* NAMESPACE personal other shared` (RFC 2342), which imap-proto lacks.

use bytes::Bytes;

use crate::imap::codec::{Data, MailboxName, Namespace, Namespaces};

use super::{PResult, end, fail, list::delimiter, nil, run, skip_spaces, skip_value, sp, string, to_bytes};

pub(crate) fn namespace<'a>(frame: &Bytes, i: &'a [u8]) -> Result<Data, &'a [u8]> {
    run(namespaces(frame, i)).map(Data::Namespace)
}

fn namespaces<'a>(frame: &Bytes, i: &'a [u8]) -> PResult<'a, Namespaces> {
    let (i, ()) = sp(i)?;
    let (i, personal) = class(frame, i)?;
    let (i, ()) = sp(i)?;
    let (i, other_users) = class(frame, i)?;
    let (i, ()) = sp(i)?;
    let (i, shared) = class(frame, i)?;
    let (i, ()) = end(i)?;
    Ok((
        i,
        Namespaces {
            personal,
            other_users,
            shared,
        },
    ))
}

/// NIL, or `(` one or more `(prefix delimiter [extensions])` `)`.
fn class<'a>(frame: &Bytes, i: &'a [u8]) -> PResult<'a, Vec<Namespace>> {
    if let Ok((rest, ())) = nil(i) {
        return Ok((rest, Vec::new()));
    }
    let Some(mut i) = i.strip_prefix(b"(") else {
        return fail(i);
    };
    let mut out = Vec::new();
    loop {
        i = skip_spaces(i);
        if let Some(rest) = i.strip_prefix(b")") {
            return if out.is_empty() { fail(i) } else { Ok((rest, out)) };
        }
        let Some(rest) = i.strip_prefix(b"(") else {
            return fail(i);
        };
        let (rest, prefix) = string(skip_spaces(rest))?;
        let (rest, ()) = sp(rest)?;
        let (mut rest, delimiter) = delimiter(rest)?;
        // Namespace response extensions (`"X-PARAM" ("a" "b")`) are skipped.
        loop {
            rest = skip_spaces(rest);
            if let Some(r) = rest.strip_prefix(b")") {
                rest = r;
                break;
            }
            rest = skip_value(rest)?.0;
        }
        out.push(Namespace {
            prefix: MailboxName::from_raw(to_bytes(frame, prefix)),
            delimiter,
        });
        i = rest;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &[u8]) -> Option<Namespaces> {
        let frame = Bytes::copy_from_slice(line);
        match namespace(&frame, &frame[..]) {
            Ok(Data::Namespace(n)) => Some(n),
            _ => None,
        }
    }

    fn ns(prefix: &str, delimiter: Option<char>) -> Namespace {
        Namespace {
            prefix: MailboxName::from_raw(Bytes::copy_from_slice(prefix.as_bytes())),
            delimiter,
        }
    }

    #[test]
    fn dovecot_courier_and_exchange_forms() {
        assert_eq!(
            parse(br#" (("" "/")) NIL NIL"#),
            Some(Namespaces {
                personal: vec![ns("", Some('/'))],
                other_users: vec![],
                shared: vec![]
            })
        );
        assert_eq!(
            parse(br##" (("INBOX." ".")) (("#Users." ".")) (("#Public." ".")("#Shared." "."))"##),
            Some(Namespaces {
                personal: vec![ns("INBOX.", Some('.'))],
                other_users: vec![ns("#Users.", Some('.'))],
                shared: vec![ns("#Public.", Some('.')), ns("#Shared.", Some('.'))],
            })
        );
        assert_eq!(
            parse(br#" (("" NIL) ("x\\" "\\" "X-PARAM" ("FLAG1" "FLAG2"))) nil  Nil "#),
            Some(Namespaces {
                personal: vec![ns("", None), ns("x\\", Some('\\'))],
                other_users: vec![],
                shared: vec![]
            })
        );
    }

    #[test]
    fn malformed_namespaces_fail() {
        assert!(parse(br#" (("" "/")) NIL"#).is_none());
        assert!(parse(br#" () NIL NIL"#).is_none());
        assert!(parse(br#" (("" "/") NIL NIL"#).is_none());
    }
}
