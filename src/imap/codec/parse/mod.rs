//! Parsers for complete response frames (the framer guarantees completeness).
//!
//! Our own nom 8 parsers cover what imap-proto 0.17 lacks or mangles (research part B, W2):
//! mailbox names stay raw bytes with quoted-string escapes removed, servers' extra spaces are
//! tolerated, and nothing here recurses, so no input can exhaust the stack. imap-proto is only
//! a second opinion on FETCH frames our parser rejects, behind the guards in [`fetch`].
//!
//! All parsers work on complete input, so running out of bytes is an error, never
//! `Incomplete`.

use std::borrow::Cow;

use bytes::Bytes;
use nom::IResult;

use crate::imap::codec::{Flag, Response, StatusResponse, Tag};

mod capability;
mod code;
mod datetime;
pub(crate) mod fetch;
mod list;
mod namespace;
mod search;
mod simple;
mod status;

pub(crate) type PResult<'a, T> = IResult<&'a [u8], T>;

/// What the framer learned about a frame while cutting it.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FrameInfo {
    /// The frame holds at least one literal.
    pub has_literal: bool,
    /// A line ended in a bare LF instead of CRLF.
    pub bare_lf: bool,
    /// How many `(` the frame holds outside literals, quoted or not.
    pub open_parens: usize,
}

/// Why a frame could not be parsed (becomes `DecodeError::Malformed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParseFailure(pub String);

/// Parses one complete frame (the trailing line ending included).
pub(crate) fn response(frame: &Bytes, info: &FrameInfo) -> Result<Response, ParseFailure> {
    let line = strip_line_end(frame);
    match line.first() {
        Some(b'+') => {
            let text = line[1..].strip_prefix(b" ").unwrap_or(&line[1..]);
            Ok(Response::Continue {
                text: frame.slice_ref(text),
            })
        }
        Some(b'*') => match line.get(1) {
            Some(b' ') => untagged(frame, line, info),
            _ => Err(ParseFailure("expected a space after '*'".into())),
        },
        Some(_) => tagged(line),
        None => Err(ParseFailure("empty response".into())),
    }
}

fn tagged(line: &[u8]) -> Result<Response, ParseFailure> {
    let tag_len = line.iter().position(|&b| !is_tag_char(b)).unwrap_or(line.len());
    if tag_len == 0 || line.get(tag_len) != Some(&b' ') {
        return Err(ParseFailure(
            "expected a tag, '*' or '+' at the start of the line".into(),
        ));
    }
    let tag = Tag(String::from_utf8_lossy(&line[..tag_len]).into_owned());
    let rest = &line[tag_len..];
    let rest = skip_spaces(rest);
    let (keyword, after) = split_keyword(rest);
    match code::status_keyword(keyword) {
        Some(status) => {
            let (code, text) = code::resp_text(after);
            Ok(Response::Status(StatusResponse {
                tag: Some(tag),
                status,
                code,
                text,
            }))
        }
        None => Err(ParseFailure("a tagged response must be OK, NO or BAD".into())),
    }
}

fn untagged(frame: &Bytes, line: &[u8], info: &FrameInfo) -> Result<Response, ParseFailure> {
    let rest = skip_spaces(&line[2..]);
    if rest.first().is_some_and(u8::is_ascii_digit) {
        return simple::numbered(frame, rest, info);
    }
    let (keyword, after) = split_keyword(rest);
    if let Some(status) = code::status_keyword(keyword) {
        let (code, text) = code::resp_text(after);
        return Ok(Response::Status(StatusResponse {
            tag: None,
            status,
            code,
            text,
        }));
    }
    let upper = keyword.to_ascii_uppercase();
    let parsed = match upper.as_slice() {
        b"CAPABILITY" => capability::capability(after),
        b"ENABLED" => capability::enabled(after),
        b"LIST" => list::list(frame, after, crate::imap::codec::ListKind::List),
        b"LSUB" => list::list(frame, after, crate::imap::codec::ListKind::Lsub),
        b"XLIST" => list::list(frame, after, crate::imap::codec::ListKind::Xlist),
        b"STATUS" => status::status(frame, after),
        b"NAMESPACE" => namespace::namespace(frame, after),
        b"SEARCH" => search::search(after),
        b"ESEARCH" => search::esearch(after),
        b"FLAGS" => simple::flags(after),
        b"VANISHED" => simple::vanished(after),
        b"ID" => simple::id(after),
        _ => {
            return Ok(Response::Data(crate::imap::codec::Data::Other(
                frame.slice_ref(line),
            )));
        }
    };
    parsed.map(Response::Data).map_err(|at| {
        let offset = line.len() - at.len();
        ParseFailure(format!(
            "invalid {} response at byte {offset}",
            String::from_utf8_lossy(&upper)
        ))
    })
}

/// A frame without its final CRLF (or bare LF).
fn strip_line_end(frame: &[u8]) -> &[u8] {
    let line = frame.strip_suffix(b"\n").unwrap_or(frame);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The word up to the next space or `[` (some servers write `OK[ALERT]`), and what follows.
fn split_keyword(i: &[u8]) -> (&[u8], &[u8]) {
    let end = i.iter().position(|&b| b == b' ' || b == b'[').unwrap_or(i.len());
    (&i[..end], &i[end..])
}

/// tag = 1*<any ASTRING-CHAR except "+">
fn is_tag_char(b: u8) -> bool {
    b > 0x20 && b < 0x7f && !matches!(b, b'(' | b')' | b'{' | b'"' | b'\\' | b'%' | b'*' | b'+')
}

/// Bytes that may appear in an atom as servers really send them: no space, control,
/// parenthesis, brace or quote; 8-bit bytes, `]` and `\` are tolerated.
pub(crate) fn is_atomish(b: u8) -> bool {
    b > 0x20 && b != 0x7f && !matches!(b, b'(' | b')' | b'{' | b'"')
}

pub(crate) fn fail<T>(i: &[u8]) -> PResult<'_, T> {
    Err(nom::Err::Error(nom::error::Error::new(
        i,
        nom::error::ErrorKind::Verify,
    )))
}

pub(crate) fn skip_spaces(i: &[u8]) -> &[u8] {
    let n = i.iter().position(|&b| b != b' ').unwrap_or(i.len());
    &i[n..]
}

/// One or more spaces (servers double them).
pub(crate) fn sp(i: &[u8]) -> PResult<'_, ()> {
    match i.first() {
        Some(b' ') => Ok((skip_spaces(i), ())),
        _ => fail(i),
    }
}

/// The end of the input, after optional trailing spaces.
pub(crate) fn end(i: &[u8]) -> PResult<'_, ()> {
    let rest = skip_spaces(i);
    if rest.is_empty() {
        Ok((rest, ()))
    } else {
        fail(rest)
    }
}

/// A keyword, case-insensitively, not followed by another atom character.
pub(crate) fn keyword<'a>(i: &'a [u8], word: &str) -> PResult<'a, ()> {
    let n = word.len();
    if i.len() >= n
        && i[..n].eq_ignore_ascii_case(word.as_bytes())
        && !i.get(n).copied().is_some_and(is_atomish)
    {
        Ok((&i[n..], ()))
    } else {
        fail(i)
    }
}

pub(crate) fn digits(i: &[u8]) -> PResult<'_, &[u8]> {
    let n = i.iter().position(|b| !b.is_ascii_digit()).unwrap_or(i.len());
    if n == 0 { fail(i) } else { Ok((&i[n..], &i[..n])) }
}

/// number64; overflow is an error.
pub(crate) fn number64(i: &[u8]) -> PResult<'_, u64> {
    let (rest, d) = digits(i)?;
    let mut value: u64 = 0;
    for &b in d {
        value = match value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(b - b'0')))
        {
            Some(v) => v,
            None => return fail(i),
        };
    }
    Ok((rest, value))
}

/// number (32-bit); overflow is an error.
pub(crate) fn number(i: &[u8]) -> PResult<'_, u32> {
    let (rest, value) = number64(i)?;
    match u32::try_from(value) {
        Ok(v) => Ok((rest, v)),
        Err(_) => fail(i),
    }
}

/// An atom as servers send it (see [`is_atomish`]).
pub(crate) fn atom(i: &[u8]) -> PResult<'_, &[u8]> {
    let n = i.iter().position(|&b| !is_atomish(b)).unwrap_or(i.len());
    if n == 0 { fail(i) } else { Ok((&i[n..], &i[..n])) }
}

/// A quoted string with `\"` and `\\` unescaped; borrowed when there was nothing to unescape.
/// Another escaped byte is kept as sent (backslash included), as lenient servers mean it.
pub(crate) fn quoted(i: &[u8]) -> PResult<'_, Cow<'_, [u8]>> {
    if i.first() != Some(&b'"') {
        return fail(i);
    }
    let body = &i[1..];
    let mut owned: Option<Vec<u8>> = None;
    let mut k = 0;
    while k < body.len() {
        match body[k] {
            b'"' => {
                let value = match owned {
                    Some(v) => Cow::Owned(v),
                    None => Cow::Borrowed(&body[..k]),
                };
                return Ok((&body[k + 1..], value));
            }
            b'\\' if matches!(body.get(k + 1), Some(b'"' | b'\\')) => {
                let v = owned.get_or_insert_with(|| body[..k].to_vec());
                v.push(body[k + 1]);
                k += 2;
            }
            b'\r' | b'\n' => return fail(&body[k..]),
            b => {
                if let Some(v) = owned.as_mut() {
                    v.push(b);
                }
                k += 1;
            }
        }
    }
    fail(&body[k..])
}

/// A literal `{n}`, `{n+}` or literal8 `~{n}`, then CRLF (or a bare LF) and n bytes.
pub(crate) fn literal(i: &[u8]) -> PResult<'_, &[u8]> {
    let after_tilde = i.strip_prefix(b"~").unwrap_or(i);
    let Some(after_brace) = after_tilde.strip_prefix(b"{") else {
        return fail(i);
    };
    let (rest, size) = number64(after_brace)?;
    let rest = rest.strip_prefix(b"+").unwrap_or(rest);
    let Some(rest) = rest.strip_prefix(b"}") else {
        return fail(rest);
    };
    let rest = match rest.strip_prefix(b"\r\n").or_else(|| rest.strip_prefix(b"\n")) {
        Some(r) => r,
        None => return fail(rest),
    };
    match usize::try_from(size) {
        Ok(n) if n <= rest.len() => Ok((&rest[n..], &rest[..n])),
        _ => fail(rest),
    }
}

/// string = quoted / literal
pub(crate) fn string(i: &[u8]) -> PResult<'_, Cow<'_, [u8]>> {
    match i.first() {
        Some(b'"') => quoted(i),
        Some(b'{' | b'~') => literal(i).map(|(r, v)| (r, Cow::Borrowed(v))),
        _ => fail(i),
    }
}

/// NIL, case-insensitively.
pub(crate) fn nil(i: &[u8]) -> PResult<'_, ()> {
    keyword(i, "NIL")
}

/// nstring = string / NIL
pub(crate) fn nstring(i: &[u8]) -> PResult<'_, Option<Cow<'_, [u8]>>> {
    if let Ok((rest, ())) = nil(i) {
        return Ok((rest, None));
    }
    string(i).map(|(r, v)| (r, Some(v)))
}

/// astring = atom / string (8-bit atoms tolerated: some servers send raw GBK names bare).
pub(crate) fn astring(i: &[u8]) -> PResult<'_, Cow<'_, [u8]>> {
    match i.first() {
        Some(b'"' | b'{' | b'~') => string(i),
        _ => atom(i).map(|(r, v)| (r, Cow::Borrowed(v))),
    }
}

/// Owned bytes for a parsed value: a zero-copy slice of the frame when borrowed from it.
pub(crate) fn to_bytes(frame: &Bytes, value: Cow<'_, [u8]>) -> Bytes {
    match value {
        Cow::Borrowed(b) => frame.slice_ref(b),
        Cow::Owned(v) => Bytes::from(v),
    }
}

/// Skips one value of any shape: atom, number, string, literal or a parenthesized list of
/// those, without recursion (nesting is bounded only by the frame, not the stack).
pub(crate) fn skip_value(mut i: &[u8]) -> PResult<'_, ()> {
    let mut depth = 0usize;
    loop {
        match i.first() {
            Some(b'(') => {
                depth += 1;
                i = skip_spaces(&i[1..]);
                continue;
            }
            Some(b')') if depth > 0 => {}
            Some(b'"') => i = quoted(i)?.0,
            Some(b'{' | b'~') => i = literal(i)?.0,
            // Sections such as BODY[HEADER.FIELDS (A B)] hold spaces and parentheses.
            Some(&b) if is_atomish(b) => i = section_token(i)?.0,
            _ => return fail(i),
        }
        loop {
            if depth == 0 {
                return Ok((i, ()));
            }
            i = skip_spaces(i);
            match i.first() {
                Some(b')') => {
                    depth -= 1;
                    i = &i[1..];
                }
                _ => break,
            }
        }
    }
}

/// An atom that may carry a `[section]` (with spaces and parentheses inside) and a
/// `<origin>`, such as `BODY[HEADER.FIELDS (SUBJECT)]<0>`.
pub(crate) fn section_token(i: &[u8]) -> PResult<'_, &[u8]> {
    let mut k = 0;
    while k < i.len() {
        match i[k] {
            b'[' => {
                let close = match i[k..].iter().position(|&b| b == b']') {
                    Some(p) => k + p,
                    None => return fail(&i[k..]),
                };
                if i[k..close].iter().any(|&b| b == b'\r' || b == b'\n') {
                    return fail(&i[k..]);
                }
                k = close + 1;
            }
            b if is_atomish(b) => k += 1,
            _ => break,
        }
    }
    if k == 0 { fail(i) } else { Ok((&i[k..], &i[..k])) }
}

/// A flag as servers send it: `\Seen`, `\*`, `$Forwarded`, 8-bit keywords (lossy).
fn flag(i: &[u8]) -> PResult<'_, Flag> {
    let n = i
        .iter()
        .position(|&b| b <= 0x20 || b == 0x7f || matches!(b, b'(' | b')' | b'"'))
        .unwrap_or(i.len());
    if n == 0 {
        return fail(i);
    }
    Ok((&i[n..], Flag::from_imap(&String::from_utf8_lossy(&i[..n]))))
}

/// `(` flags `)` with any spacing.
pub(crate) fn flag_list(i: &[u8]) -> PResult<'_, Vec<Flag>> {
    let Some(mut i) = i.strip_prefix(b"(") else {
        return fail(i);
    };
    let mut flags = Vec::new();
    loop {
        i = skip_spaces(i);
        if let Some(rest) = i.strip_prefix(b")") {
            return Ok((rest, flags));
        }
        let (rest, f) = flag(i)?;
        flags.push(f);
        i = rest;
    }
}

/// A sequence set or UID set of numbers and `a:b` ranges (no `*`, no 0).
pub(crate) fn uid_set(i: &[u8]) -> PResult<'_, crate::UidSet> {
    let mut set = crate::UidSet::new();
    let mut i = i;
    loop {
        let (rest, a) = number(i)?;
        let (rest, b) = match rest.strip_prefix(b":") {
            Some(r) => number(r)?,
            None => (rest, a),
        };
        let (Some(a), Some(b)) = (crate::Uid::new(a), crate::Uid::new(b)) else {
            return fail(i);
        };
        set.insert_range(a.min(b), a.max(b));
        match rest.strip_prefix(b",") {
            Some(r) => i = r,
            None => return Ok((rest, set)),
        }
    }
}

/// The result of a nom parser as the position where it failed.
pub(crate) fn run<T>(result: PResult<'_, T>) -> Result<T, &[u8]> {
    match result {
        Ok((_, value)) => Ok(value),
        Err(nom::Err::Error(e) | nom::Err::Failure(e)) => Err(e.input),
        Err(nom::Err::Incomplete(_)) => Err(&[]),
    }
}

/// Lossy text for error messages and status text.
pub(crate) fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_unescapes_only_quote_and_backslash() {
        assert_eq!(
            quoted(br#""a\"b\\c" x"#),
            Ok((&b" x"[..], Cow::Owned(br#"a"b\c"#.to_vec())))
        );
        assert_eq!(
            quoted(br#""plain""#),
            Ok((&b""[..], Cow::Borrowed(&b"plain"[..])))
        );
        assert_eq!(
            quoted(br#""a\xb""#).map(|(_, v)| v.into_owned()),
            Ok(br#"a\xb"#.to_vec())
        );
        assert_eq!(
            quoted(b"\"\xb2\xdd\"").map(|(_, v)| v.into_owned()),
            Ok(b"\xb2\xdd".to_vec())
        );
        assert!(quoted(b"\"abc").is_err());
        assert!(quoted(b"\"a\r\nb\"").is_err());
        assert!(quoted(br#""ends with \""#).is_err());
    }

    #[test]
    fn literal_forms() {
        assert_eq!(literal(b"{3}\r\nabcd"), Ok((&b"d"[..], &b"abc"[..])));
        assert_eq!(literal(b"{3+}\r\nabc"), Ok((&b""[..], &b"abc"[..])));
        assert_eq!(literal(b"~{2}\r\n\0\x01"), Ok((&b""[..], &b"\0\x01"[..])));
        assert_eq!(literal(b"{2}\nab"), Ok((&b""[..], &b"ab"[..])));
        assert!(literal(b"{4}\r\nabc").is_err());
        assert!(literal(b"{99999999999999999999999}\r\n").is_err());
        assert!(literal(b"{}\r\n").is_err());
    }

    #[test]
    fn numbers_reject_overflow() {
        assert_eq!(number(b"4294967295 "), Ok((&b" "[..], u32::MAX)));
        assert!(number(b"4294967296").is_err());
        assert_eq!(number64(b"18446744073709551615"), Ok((&b""[..], u64::MAX)));
        assert!(number64(b"18446744073709551616").is_err());
        assert!(number(b"x").is_err());
    }

    #[test]
    fn skip_value_handles_nesting_strings_and_literals_without_recursion() {
        assert_eq!(
            skip_value(b"(a (b \"c)\" {2}\r\nxy)) ) rest"),
            Ok((&b" ) rest"[..], ()))
        );
        assert_eq!(skip_value(b"NIL rest"), Ok((&b" rest"[..], ())));
        assert_eq!(skip_value(b"()x"), Ok((&b"x"[..], ())));
        let deep = format!("{}{}", "(".repeat(200_000), ")".repeat(200_000));
        assert_eq!(skip_value(deep.as_bytes()), Ok((&b""[..], ())));
        assert!(skip_value(b"(a b").is_err());
        assert!(skip_value(b")").is_err());
    }

    #[test]
    fn uid_sets() {
        assert_eq!(
            uid_set(b"1:3,7,9:8 x").map(|(r, s)| (r, s.to_string())),
            Ok((&b" x"[..], "1:3,7:9".to_string()))
        );
        assert!(uid_set(b"0").is_err());
        assert!(uid_set(b"1:*").is_err());
    }

    #[test]
    fn flag_lists_tolerate_spacing_and_8bit() {
        let (_, flags) = flag_list(b"( \\Seen  caf\xe9 \\* $Fwd )").unwrap();
        assert_eq!(
            flags,
            vec![
                Flag::Seen,
                Flag::Keyword("caf\u{fffd}".into()),
                Flag::MayCreate,
                Flag::Keyword("$Fwd".into())
            ]
        );
        assert_eq!(flag_list(b"()"), Ok((&b""[..], vec![])));
        assert!(flag_list(b"(\\Seen").is_err());
    }
}
