//! However the server's bytes are split across reads, the decoder yields the same responses.

use mailmigrate::imap::codec::{Data, DecodeError, Limits, Response, ResponseDecoder, Status};
use proptest::prelude::*;

/// A realistic session as a server writes it: greeting, CAPABILITY, LIST with 8-bit and
/// escaped names, SELECT data, FETCH with a literal body, tagged OKs, and an unsolicited EXISTS.
const TRANSCRIPT: &[u8] = b"* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ AUTH=PLAIN] Dovecot ready.\r\n\
A0001 OK [CAPABILITY IMAP4rev1 SASL-IR ID ENABLE IDLE SORT LIST-EXTENDED SPECIAL-USE CONDSTORE UIDPLUS LITERAL+ NAMESPACE] Logged in\r\n\
* CAPABILITY IMAP4rev1  IDLE UIDPLUS\r\n\
A0002 OK Capability completed.\r\n\
* LIST (\\HasNoChildren) \"/\" INBOX\r\n\
* LIST (\\HasNoChildren \\Sent) \"/\" \"\xd2\xd1\xb7\xa2\xcb\xcd\"\r\n\
* LIST (\\HasNoChildren) \"/\" \"Say \\\"hi\\\" \\\\ there\"\r\n\
* LIST (\\HasNoChildren) \"/\" {8}\r\nLit/Name\r\n\
* LIST (\\Noselect \\HasChildren) \"/\" &XfJT0ZAB-\r\n\
A0003 OK List completed (0.001 + 0.000 secs).\r\n\
* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded)\r\n\
* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded \\*)] Flags permitted.\r\n\
* 3 EXISTS\r\n\
* 0 RECENT\r\n\
* OK [UNSEEN 2] First unseen.\r\n\
* OK [UIDVALIDITY 1700000000] UIDs valid\r\n\
* OK [UIDNEXT 4] Predicted next UID\r\n\
* OK [HIGHESTMODSEQ 7] Highest\r\n\
A0004 OK [READ-ONLY] Examine completed (0.001 + 0.000 secs).\r\n\
* 1 FETCH (UID 1 FLAGS (\\Seen) INTERNALDATE \" 1-Jan-2024 10:00:00 +0800\" RFC822.SIZE 44 BODY[] {44}\r\n\
Subject: hi\r\n\
From: a@example.com\r\n\
\r\n\
(body)\r\n)\r\n\
* 4 EXISTS\r\n\
* 2 FETCH (UID 2 FLAGS () INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" RFC822.SIZE 5 BODY[] {5}\r\nhello)\r\n\
A0005 OK Fetch completed.\r\n\
* BYE Logging out\r\n\
A0006 OK Logout completed.\r\n";

const RESPONSES: usize = 25;

fn decode_all(decoder: &mut ResponseDecoder, out: &mut Vec<Result<Response, DecodeError>>) {
    loop {
        match decoder.decode() {
            Ok(Some(r)) => out.push(Ok(r)),
            Ok(None) => return,
            Err(e) => out.push(Err(e)),
        }
    }
}

/// Feeds `chunks` one after another, decoding after each.
fn by_chunks<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Vec<Result<Response, DecodeError>> {
    let mut decoder = ResponseDecoder::new(Limits::default());
    let mut out = Vec::new();
    for chunk in chunks {
        decoder.feed(chunk);
        decode_all(&mut decoder, &mut out);
    }
    assert_eq!(decoder.buffered(), 0);
    out
}

fn all_at_once() -> Vec<Result<Response, DecodeError>> {
    by_chunks([TRANSCRIPT])
}

#[test]
fn the_transcript_decodes_to_the_expected_responses() {
    let out = all_at_once();
    assert_eq!(out.len(), RESPONSES, "{out:#?}");
    assert!(out.iter().all(Result::is_ok), "{out:#?}");
    let names: Vec<Vec<u8>> = out
        .iter()
        .filter_map(|r| match r {
            Ok(Response::Data(Data::List(l))) => Some(l.name.raw().to_vec()),
            _ => None,
        })
        .collect();
    assert_eq!(
        names,
        vec![
            b"INBOX".to_vec(),
            b"\xd2\xd1\xb7\xa2\xcb\xcd".to_vec(),
            b"Say \"hi\" \\ there".to_vec(),
            b"Lit/Name".to_vec(),
            b"&XfJT0ZAB-".to_vec()
        ]
    );
    let bodies: Vec<&[u8]> = out
        .iter()
        .filter_map(|r| match r {
            Ok(Response::Data(Data::Fetch(f))) => f.body.as_deref(),
            _ => None,
        })
        .collect();
    assert_eq!(
        bodies,
        vec![
            &b"Subject: hi\r\nFrom: a@example.com\r\n\r\n(body)\r\n"[..],
            b"hello"
        ]
    );
    assert!(matches!(&out[RESPONSES - 2], Ok(Response::Status(s)) if s.status == Status::Bye));
}

#[test]
fn one_byte_at_a_time_gives_the_same_responses() {
    assert_eq!(by_chunks(TRANSCRIPT.chunks(1)), all_at_once());
}

#[test]
fn reading_into_read_buf_gives_the_same_responses() {
    let mut decoder = ResponseDecoder::new(Limits::default());
    let mut out = Vec::new();
    for chunk in TRANSCRIPT.chunks(7) {
        let buf = decoder.read_buf(16);
        buf[..chunk.len()].copy_from_slice(chunk);
        decoder.filled(chunk.len());
        decode_all(&mut decoder, &mut out);
    }
    assert_eq!(out, all_at_once());
}

proptest! {
    #[test]
    fn random_chunks_give_the_same_responses(cuts in proptest::collection::vec(0..TRANSCRIPT.len(), 0..40)) {
        let mut cuts = cuts;
        cuts.sort_unstable();
        cuts.dedup();
        let mut chunks = Vec::new();
        let mut start = 0;
        for cut in cuts.into_iter().chain([TRANSCRIPT.len()]) {
            chunks.push(&TRANSCRIPT[start..cut]);
            start = cut;
        }
        prop_assert_eq!(by_chunks(chunks), all_at_once());
    }
}
