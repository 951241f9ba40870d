//! Small untagged responses: `n EXISTS|RECENT|EXPUNGE|FETCH`, FLAGS, VANISHED and ID.

use bytes::Bytes;

use crate::imap::codec::{Data, Response};

use super::{
    FrameInfo, PResult, ParseFailure, end, fail, fetch, flag_list, keyword, lossy, nstring, number, run,
    skip_spaces, sp, string, uid_set,
};

/// `* n KEYWORD ...`
pub(crate) fn numbered(frame: &Bytes, i: &[u8], info: &FrameInfo) -> Result<Response, ParseFailure> {
    let bad = |what: &str| ParseFailure(format!("invalid {what} response"));
    let Ok((rest, n)) = number(i) else {
        return Err(bad("numbered (number out of range)"));
    };
    let rest = skip_spaces(rest);
    let (word, after) = rest.split_at(rest.iter().position(|&b| b == b' ').unwrap_or(rest.len()));
    let data = match word.to_ascii_uppercase().as_slice() {
        b"EXISTS" => run(end(after))
            .map(|()| Data::Exists(n))
            .map_err(|_| bad("EXISTS"))?,
        b"RECENT" => run(end(after))
            .map(|()| Data::Recent(n))
            .map_err(|_| bad("RECENT"))?,
        b"EXPUNGE" => run(end(after))
            .map(|()| Data::Expunge(n))
            .map_err(|_| bad("EXPUNGE"))?,
        b"FETCH" => Data::Fetch(Box::new(fetch::fetch(frame, n, after, info)?)),
        _ => {
            let line = super::strip_line_end(frame);
            Data::Other(frame.slice_ref(line))
        }
    };
    Ok(Response::Data(data))
}

pub(crate) fn flags(i: &[u8]) -> Result<Data, &[u8]> {
    run(sp(i)
        .and_then(|(i, ())| flag_list(i))
        .and_then(|(i, f)| end(i).map(|(i, ())| (i, f))))
    .map(Data::Flags)
}

pub(crate) fn vanished(i: &[u8]) -> Result<Data, &[u8]> {
    run(vanished_data(i))
}

fn vanished_data(i: &[u8]) -> PResult<'_, Data> {
    let (mut i, ()) = sp(i)?;
    let mut earlier = false;
    if let Some(rest) = i.strip_prefix(b"(") {
        let (rest, ()) = keyword(skip_spaces(rest), "EARLIER")?;
        let Some(rest) = skip_spaces(rest).strip_prefix(b")") else {
            return fail(rest);
        };
        earlier = true;
        i = sp(rest)?.0;
    }
    let (i, uids) = uid_set(i)?;
    let (i, ()) = end(i)?;
    Ok((i, Data::Vanished { earlier, uids }))
}

/// `ID NIL` or `ID (field value ...)`, order and NIL values kept.
pub(crate) fn id(i: &[u8]) -> Result<Data, &[u8]> {
    run(id_data(i))
}

fn id_data(i: &[u8]) -> PResult<'_, Data> {
    let (i, ()) = sp(i)?;
    if let Ok((rest, ())) = super::nil(i) {
        let (rest, ()) = end(rest)?;
        return Ok((rest, Data::Id(Vec::new())));
    }
    let Some(mut i) = i.strip_prefix(b"(") else {
        return fail(i);
    };
    let mut fields = Vec::new();
    loop {
        i = skip_spaces(i);
        if let Some(rest) = i.strip_prefix(b")") {
            let (rest, ()) = end(rest)?;
            return Ok((rest, Data::Id(fields)));
        }
        let (rest, key) = string(i)?;
        let (rest, ()) = sp(rest)?;
        let (rest, value) = nstring(rest)?;
        fields.push((lossy(&key), value.map(|v| lossy(&v))));
        i = rest;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::codec::Flag;

    #[test]
    fn flags_and_vanished() {
        assert_eq!(
            flags(b" (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded )"),
            Ok(Data::Flags(vec![
                Flag::Answered,
                Flag::Flagged,
                Flag::Deleted,
                Flag::Seen,
                Flag::Draft,
                Flag::Keyword("$Forwarded".into())
            ]))
        );
        assert!(flags(b" \\Seen").is_err());
        assert_eq!(
            vanished(b" (EARLIER) 300:310,405"),
            Ok(Data::Vanished {
                earlier: true,
                uids: "300:310,405".parse().unwrap()
            })
        );
        assert_eq!(
            vanished(b" 405"),
            Ok(Data::Vanished {
                earlier: false,
                uids: "405".parse().unwrap()
            })
        );
        assert!(vanished(b" (LATER) 4").is_err());
    }

    #[test]
    fn id_keeps_order_and_nil_values() {
        assert_eq!(
            id(br#" ("name" "Coremail" "vendor" NIL "version" "1.0" )"#),
            Ok(Data::Id(vec![
                ("name".into(), Some("Coremail".into())),
                ("vendor".into(), None),
                ("version".into(), Some("1.0".into())),
            ]))
        );
        assert_eq!(id(b" NIL"), Ok(Data::Id(vec![])));
        assert!(id(br#" ("name")"#).is_err());
    }

    #[test]
    fn numbered_responses() {
        let info = FrameInfo::default();
        let frame = Bytes::from_static(b"* 23 EXISTS\r\n");
        for (text, data) in [
            (&b"23 EXISTS"[..], Data::Exists(23)),
            (b"5 recent", Data::Recent(5)),
            (b"44 EXPUNGE ", Data::Expunge(44)),
        ] {
            assert_eq!(numbered(&frame, text, &info), Ok(Response::Data(data)));
        }
        assert!(numbered(&frame, b"99999999999 EXISTS", &info).is_err());
        assert!(numbered(&frame, b"3 EXISTS x", &info).is_err());
        assert_eq!(
            numbered(&frame, b"3 XFOO", &info),
            Ok(Response::Data(Data::Other(Bytes::from_static(b"* 23 EXISTS"))))
        );
    }
}
