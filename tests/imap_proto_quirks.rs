//! Every imap-proto 0.17 panic and failure from the research (part B.3, B.6), fed through our
//! decoder: each gives a typed response or a clean error, never a panic or a stack overflow.
//!
//! Where it helps, the test also pins what imap-proto itself does with the input, so an
//! imap-proto upgrade that changes it shows up here (research W10).

use std::panic::{AssertUnwindSafe, catch_unwind};

use mailmigrate::imap::codec::{
    Code, Data, DecodeError, Flag, KnownCode, Limits, ListKind, NameAttribute, Response, ResponseDecoder,
    Status,
};

/// Decodes one complete response from `input` with default limits.
fn decode_one(input: &[u8]) -> Result<Option<Response>, DecodeError> {
    let mut decoder = ResponseDecoder::new(Limits::default());
    decoder.feed(input);
    decoder.decode()
}

fn data(input: &[u8]) -> Data {
    match decode_one(input) {
        Ok(Some(Response::Data(data))) => data,
        other => panic!(
            "expected data for {:?}, got {other:?}",
            String::from_utf8_lossy(input)
        ),
    }
}

fn status(input: &[u8]) -> mailmigrate::imap::codec::StatusResponse {
    match decode_one(input) {
        Ok(Some(Response::Status(s))) => s,
        other => panic!(
            "expected a status response for {:?}, got {other:?}",
            String::from_utf8_lossy(input)
        ),
    }
}

/// Whether imap-proto 0.17 panics on `input` (its panic message goes to stderr).
fn imap_proto_panics(input: &[u8]) -> bool {
    catch_unwind(AssertUnwindSafe(|| {
        let _ = imap_proto::Response::parse(input);
    }))
    .is_err()
}

fn imap_proto_fails(input: &[u8]) -> bool {
    !matches!(imap_proto::Response::parse(input), Ok((rest, _)) if rest.is_empty())
}

// ---- B.6: panics and crashes -------------------------------------------------------------

#[test]
fn non_ascii_right_after_a_code_is_text_not_a_panic() {
    let input = "* OK [ALERT]été\r\n".as_bytes();
    assert!(
        imap_proto_panics(input),
        "imap-proto 0.17 panics here (B.6 #1); if fixed, update the research"
    );
    let s = status(input);
    assert_eq!(
        (s.tag, s.status, s.code, s.text.as_str()),
        (None, Status::Ok, Some(Code::Alert), "été")
    );

    let input = b"A1 NO [TRYCREATE]\xe9\r\n";
    assert!(imap_proto_panics(input));
    let s = status(input);
    assert_eq!((s.status, s.code), (Status::No, Some(Code::TryCreate)));
    assert_eq!(s.tag.map(|t| t.0).as_deref(), Some("A1"));
}

#[test]
fn non_utf8_metadata_is_kept_raw_not_a_panic() {
    let input = b"* METADATA \"INBOX\" (/private/comment \"caf\xe9\")\r\n";
    assert!(imap_proto_panics(input), "imap-proto 0.17 panics here (B.6 #2)");
    match data(input) {
        Data::Other(raw) => assert_eq!(&raw[..], &input[..input.len() - 2]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn internaldate_nil_is_none_not_a_panic() {
    let input = b"* 1 FETCH (INTERNALDATE NIL)\r\n";
    assert!(imap_proto_panics(input), "imap-proto 0.17 panics here (B.6 #3)");
    let lower = b"* 1 FETCH (UID 5 internaldate nil FLAGS (\\Seen))\r\n";
    for input in [&input[..], &lower[..]] {
        match data(input) {
            Data::Fetch(f) => assert_eq!((f.seq, f.internal_date), (1, None)),
            other => panic!("{other:?}"),
        }
    }
}

/// Runs `f` on a thread with the 2 MiB stack of a tokio worker, where imap-proto's unbounded
/// recursion overflows (an abort that no catch_unwind stops).
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(f)
        .expect("spawn")
        .join()
        .expect("no panic")
}

#[test]
fn deep_nesting_is_skipped_on_a_small_stack() {
    let result = on_small_stack(|| {
        let mut input = b"* 1 FETCH (BODYSTRUCTURE ".to_vec();
        input.extend(std::iter::repeat_n(b'(', 100_000));
        input.extend(std::iter::repeat_n(b')', 100_001));
        input.extend_from_slice(b"\r\n* 2 EXISTS\r\n");
        let mut decoder = ResponseDecoder::new(Limits::default());
        decoder.feed(&input);
        (decoder.decode(), decoder.decode())
    });
    assert_eq!(result.0, Err(DecodeError::NestingTooDeep { limit: 64 }));
    assert!(!result.0.unwrap_err().is_fatal());
    assert_eq!(result.1, Ok(Some(Response::Data(Data::Exists(2)))));
}

#[test]
fn nesting_just_under_the_limit_parses_without_recursion() {
    let result = on_small_stack(|| {
        let mut input = b"* 1 FETCH (UID 3 BODYSTRUCTURE ".to_vec();
        input.extend(std::iter::repeat_n(b'(', 63));
        input.extend(std::iter::repeat_n(b')', 64));
        input.extend_from_slice(b"\r\n");
        decode_one(&input)
    });
    match result {
        Ok(Some(Response::Data(Data::Fetch(f)))) => assert_eq!(f.uid.map(|u| u.get()), Some(3)),
        other => panic!("{other:?}"),
    }
}

/// imap-proto's catch-all for unknown FETCH items swallows a literal header without reading it
/// as a literal, then parses the literal's bytes as structure. The framer skips literal bytes,
/// so nesting hidden in a literal would reach imap-proto's recursion unless frames with
/// literals never go to imap-proto (found while writing this codec; not in the research).
#[test]
fn imap_proto_reads_literal_bytes_as_structure() {
    let input = b"* 1 FETCH (X (a {9}\r\n) UID 42)\r\n";
    match imap_proto::Response::parse(input) {
        Ok((rest, imap_proto::Response::Fetch(1, attrs))) => {
            assert!(rest.is_empty());
            assert!(attrs.contains(&imap_proto::AttributeValue::Uid(42)), "{attrs:?}");
        }
        other => panic!("imap-proto changed: {other:?}"),
    }
    // For us the 9 bytes `) UID 42)` are the literal; the outer list is left open.
    assert!(matches!(decode_one(input), Err(DecodeError::Malformed { .. })));
}

#[test]
fn nesting_hidden_in_a_literal_never_reaches_a_recursive_parser() {
    let result = on_small_stack(|| {
        let mut literal = b") BODYSTRUCTURE ".to_vec();
        literal.extend(std::iter::repeat_n(b'(', 100_000));
        literal.extend(std::iter::repeat_n(b')', 100_000));
        let mut input = format!("* 1 FETCH (UID 5 X (a {{{}}}\r\n", literal.len()).into_bytes();
        input.extend_from_slice(&literal);
        input.extend_from_slice(b"))\r\n");
        decode_one(&input)
    });
    match result {
        Ok(Some(Response::Data(Data::Fetch(f)))) => assert_eq!(f.uid.map(|u| u.get()), Some(5)),
        other => panic!("{other:?}"),
    }
}

// ---- B.3: failures and silent losses -------------------------------------------------------

#[test]
fn capability_without_imap4rev1_or_with_doubled_spaces() {
    for input in [
        &b"* CAPABILITY IMAP4rev2 AUTH=PLAIN\r\n"[..],
        b"* CAPABILITY IMAP4rev1  SASL-IR\r\n",
    ] {
        assert!(imap_proto_fails(input));
        assert!(matches!(data(input), Data::Capability(c) if c.atoms.len() == 2));
    }
    let s = status(b"* OK [CAPABILITY IMAP4rev2 IDLE] ready\r\n");
    assert!(matches!(s.code, Some(Code::Capability(c)) if c.has("IDLE") && c.has("IMAP4REV2")));
    assert_eq!(s.text, "ready");
}

#[test]
fn enabled_is_not_capability() {
    assert!(matches!(
        imap_proto::Response::parse(b"* ENABLED CONDSTORE\r\n"),
        Ok((_, imap_proto::Response::Capabilities(_)))
    ));
    assert_eq!(
        data(b"* ENABLED CONDSTORE QRESYNC\r\n"),
        Data::Enabled(vec!["CONDSTORE".into(), "QRESYNC".into()])
    );
}

#[test]
fn list_extended_data_xlist_and_prefix_attributes() {
    let extended = br#"* LIST (\Subscribed) "/" "Foo" ("CHILDINFO" ("SUBSCRIBED"))"#;
    let extended = [&extended[..], b"\r\n"].concat();
    assert!(imap_proto_fails(&extended));
    assert!(matches!(data(&extended), Data::List(l) if l.name.raw() == b"Foo"));

    let allmail = b"* LIST (\\HasNoChildren \\AllMail) \"/\" \"[Gmail]/All Mail\"\r\n";
    assert!(imap_proto_fails(allmail));
    assert!(
        matches!(data(allmail), Data::List(l) if l.attributes == [NameAttribute::HasNoChildren, NameAttribute::All])
    );

    let xlist = b"* XLIST (\\HasNoChildren \\Inbox) \"/\" \"Inbox\"\r\n";
    assert!(imap_proto_fails(xlist));
    assert!(
        matches!(data(xlist), Data::List(l) if l.kind == ListKind::Xlist && l.attributes[1] == NameAttribute::Inbox)
    );
}

#[test]
fn eight_bit_and_escaped_names_stay_raw() {
    let gbk = b"* LIST (\\HasNoChildren) \"/\" \"\xb2\xdd\xb8\xe5\xcf\xe4\"\r\n";
    match imap_proto::Response::parse(gbk) {
        Ok((_, imap_proto::Response::MailboxData(imap_proto::MailboxDatum::List(l)))) => {
            assert!(
                l.name.contains('\u{fffd}'),
                "imap-proto decodes lossily: {:?}",
                l.name
            )
        }
        other => panic!("imap-proto changed: {other:?}"),
    }
    assert!(matches!(data(gbk), Data::List(l) if l.name.raw() == b"\xb2\xdd\xb8\xe5\xcf\xe4"));

    let escaped = b"* LIST () \"\\\\\" \"a\\\"b\\\\c\"\r\n";
    assert!(
        matches!(data(escaped), Data::List(l) if l.name.raw() == b"a\"b\\c" && l.delimiter == Some('\\'))
    );

    let status_gbk = b"* STATUS \"\xb2\xdd\xb8\xe5\" (MESSAGES 3)\r\n";
    assert!(
        matches!(data(status_gbk), Data::Status(s) if s.name.raw() == b"\xb2\xdd\xb8\xe5" && s.items.messages == Some(3))
    );
}

#[test]
fn namespace_and_status_extensions() {
    let ns = b"* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n";
    assert!(imap_proto_fails(ns));
    assert!(matches!(data(ns), Data::Namespace(n) if n.personal.len() == 1 && n.shared.is_empty()));

    let st = b"* STATUS INBOX (MESSAGES 2 SIZE 12345 DELETED 0 APPENDLIMIT 35651584 MAILBOXID (F1))\r\n";
    assert!(imap_proto_fails(st));
    assert!(
        matches!(data(st), Data::Status(s) if s.items.size == Some(12345) && s.items.messages == Some(2))
    );
}

#[test]
fn codes_imap_proto_leaves_in_the_text_are_typed() {
    for (input, code) in [
        (&b"* OK [NOMODSEQ] Sorry\r\n"[..], Code::NoModSeq),
        (b"* OK [CLOSED] Previous mailbox closed\r\n", Code::Closed),
        (
            b"A3 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n",
            Code::Known(KnownCode::AuthenticationFailed),
        ),
        (
            b"A3 NO [UNAVAILABLE] Try later\r\n",
            Code::Known(KnownCode::Unavailable),
        ),
        (
            b"A3 NO [OVERQUOTA] Quota exceeded\r\n",
            Code::Known(KnownCode::OverQuota),
        ),
        (b"A3 NO [LIMIT] Too many\r\n", Code::Known(KnownCode::Limit)),
        (b"A3 NO [INUSE] Locked\r\n", Code::Known(KnownCode::InUse)),
        (
            b"A3 NO [NONEXISTENT] No such\r\n",
            Code::Known(KnownCode::NonExistent),
        ),
        (
            b"A3 NO [ALREADYEXISTS] Exists\r\n",
            Code::Known(KnownCode::AlreadyExists),
        ),
        (b"A3 NO [SERVERBUG] Oops\r\n", Code::Known(KnownCode::ServerBug)),
        (b"A3 NO [CANNOT] No\r\n", Code::Known(KnownCode::Cannot)),
        (
            b"A3 NO [EXPUNGEISSUED] Gone\r\n",
            Code::Known(KnownCode::ExpungeIssued),
        ),
        (
            b"A3 NO [THROTTLED] Slow down\r\n",
            Code::Known(KnownCode::Throttled),
        ),
    ] {
        match imap_proto::Response::parse(input) {
            Ok((
                _,
                imap_proto::Response::Done { outcome, .. } | imap_proto::Response::Data { outcome, .. },
            )) => {
                assert!(
                    outcome.code.is_none(),
                    "imap-proto now types {:?}",
                    String::from_utf8_lossy(input)
                )
            }
            other => panic!("imap-proto changed: {other:?}"),
        }
        assert_eq!(status(input).code, Some(code));
    }
}

#[test]
fn fetch_silent_losses_are_not_silent() {
    // imap-proto replaces FLAGS with an 8-bit keyword by Unknown: the flags would be lost.
    let flags = b"* 1 FETCH (UID 5 FLAGS (\\Seen caf\xe9))\r\n";
    assert!(matches!(
        imap_proto::Response::parse(flags),
        Ok((_, imap_proto::Response::Fetch(_, a))) if a.contains(&imap_proto::AttributeValue::Unknown)
    ));
    assert!(
        matches!(data(flags), Data::Fetch(f) if f.flags == Some(vec![Flag::Seen, Flag::Keyword("caf\u{fffd}".into())]))
    );

    // A UID beyond 32 bits: imap-proto drops it silently; we report the response.
    let uid = b"* 1 FETCH (UID 4294967296 FLAGS (\\Seen))\r\n";
    assert!(matches!(
        imap_proto::Response::parse(uid),
        Ok((_, imap_proto::Response::Fetch(_, a))) if !a.iter().any(|v| matches!(v, imap_proto::AttributeValue::Uid(_)))
    ));
    assert!(
        matches!(decode_one(uid), Err(DecodeError::Malformed { reason, .. }) if reason.contains("4294967296"))
    );

    let mailbox_flags = b"* FLAGS (\\Seen caf\xe9)\r\n";
    assert!(imap_proto_fails(mailbox_flags));
    assert!(matches!(data(mailbox_flags), Data::Flags(f) if f.len() == 2));
}

#[test]
fn binary_literal8_search_modseq_esearch_and_unknown_untagged() {
    let binary = b"* 2 FETCH (UID 8 BINARY[] ~{4}\r\n\0\x01\r\n)\r\n";
    assert!(imap_proto_fails(binary));
    assert!(matches!(data(binary), Data::Fetch(f) if f.body.as_deref() == Some(&b"\0\x01\r\n"[..])));

    let search = b"* SEARCH 2 5 6 (MODSEQ 917162500)\r\n";
    assert!(imap_proto_fails(search));
    assert!(matches!(data(search), Data::Search(s) if s.ids == [2, 5, 6] && s.modseq == Some(917_162_500)));

    let esearch = b"* ESEARCH (TAG \"A5\") UID COUNT 3 ALL 4:6\r\n";
    assert!(imap_proto_fails(esearch));
    assert!(matches!(data(esearch), Data::ESearch(e) if e.count == Some(3) && e.uid));

    let unknown = b"* XFOO bar (baz)\r\n";
    assert!(imap_proto_fails(unknown));
    assert_eq!(
        data(unknown),
        Data::Other(bytes::Bytes::from_static(b"* XFOO bar (baz)"))
    );
}

#[test]
fn id_keeps_nil_values_that_imap_proto_drops() {
    let id = b"* ID (\"name\" \"Dovecot\" \"version\" NIL)\r\n";
    match imap_proto::Response::parse(id) {
        Ok((_, imap_proto::Response::Id(Some(map)))) => assert_eq!(map.len(), 1),
        other => panic!("imap-proto changed: {other:?}"),
    }
    assert_eq!(
        data(id),
        Data::Id(vec![
            ("name".into(), Some("Dovecot".into())),
            ("version".into(), None)
        ])
    );
}

#[test]
fn bare_lf_line_endings_are_tolerated() {
    assert!(imap_proto_fails(b"* 3 EXISTS\n"));
    let mut decoder = ResponseDecoder::new(Limits::default());
    decoder.feed(b"* 3 EXISTS\n* 1 FETCH (UID 9 BODY[] {2}\nhi)\nA1 OK done\n");
    assert_eq!(decoder.decode(), Ok(Some(Response::Data(Data::Exists(3)))));
    assert!(
        matches!(decoder.decode(), Ok(Some(Response::Data(Data::Fetch(f)))) if f.body.as_deref() == Some(&b"hi"[..]))
    );
    assert!(matches!(decoder.decode(), Ok(Some(Response::Status(s))) if s.status == Status::Ok));
}
