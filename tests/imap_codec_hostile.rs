//! Whatever a server sends, the decoder returns a `Result`: no panic, no allocation sized by
//! the server beyond the limits.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use mailmigrate::imap::codec::{DecodeError, Limits, ResponseDecoder};
use proptest::prelude::*;

/// Records the largest single allocation made by the current thread.
struct Tracking;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to the system allocator; the thread-local is a
// const-initialised Cell, so recording never allocates or re-enters the allocator.
unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's pointer and layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record(new_size);
        // SAFETY: forwarded with the caller's arguments.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

fn record(size: usize) {
    let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
}

#[global_allocator]
static ALLOCATOR: Tracking = Tracking;

fn largest_allocation_during(f: impl FnOnce()) -> usize {
    LARGEST.with(|l| l.set(0));
    f();
    LARGEST.with(Cell::get)
}

/// Decodes until the decoder needs more bytes or fails fatally; returns whether it ended on a
/// fatal error.
fn drain(decoder: &mut ResponseDecoder) -> bool {
    for _ in 0..100_000 {
        match decoder.decode() {
            Ok(Some(_)) => {}
            Ok(None) => return false,
            Err(e) if e.is_fatal() => {
                // A fatal error sticks.
                assert_eq!(decoder.decode(), Err(e));
                return true;
            }
            Err(_) => {}
        }
    }
    panic!("the decoder kept producing responses from finite input");
}

#[test]
fn a_4_gib_literal_is_an_error_not_an_allocation() {
    let mut result = None;
    let largest = largest_allocation_during(|| {
        let mut decoder = ResponseDecoder::new(Limits::default());
        decoder.feed(b"* 1 FETCH (UID 1 BODY[] {4294967295}\r\nabc");
        result = Some(decoder.decode());
    });
    assert_eq!(
        result,
        Some(Err(DecodeError::LiteralTooLarge {
            size: 4_294_967_295,
            limit: 256 << 20
        }))
    );
    assert!(largest < 1 << 20, "largest allocation: {largest} bytes");
}

#[test]
fn a_literal_within_max_literal_but_over_max_response_is_an_error_not_an_allocation() {
    let limits = Limits {
        max_literal: u64::MAX,
        ..Limits::default()
    };
    let mut result = None;
    let largest = largest_allocation_during(|| {
        let mut decoder = ResponseDecoder::new(limits);
        decoder.feed(b"* 1 FETCH (BODY[] {18446744073709551615}\r\n");
        result = Some(decoder.decode());
    });
    assert_eq!(
        result,
        Some(Err(DecodeError::ResponseTooLarge {
            limit: limits.max_response
        }))
    );
    assert!(largest < 1 << 20, "largest allocation: {largest} bytes");
}

#[test]
fn an_endless_line_is_cut_at_max_line() {
    let limits = Limits {
        max_line: 1000,
        ..Limits::default()
    };
    let mut decoder = ResponseDecoder::new(limits);
    let mut fatal = false;
    for _ in 0..100 {
        decoder.feed(&[b'a'; 100]);
        if decoder.decode().is_err() {
            fatal = true;
            break;
        }
    }
    assert!(fatal);
    assert_eq!(decoder.decode(), Err(DecodeError::LineTooLong { limit: 1000 }));
}

/// Pieces of IMAP syntax, glued at random into plausible hostile input.
const TOKENS: &[&[u8]] = &[
    b"* ",
    b"A1 ",
    b"+ ",
    b"+",
    b"OK ",
    b"NO ",
    b"BAD ",
    b"BYE ",
    b"PREAUTH ",
    b"FETCH ",
    b"EXISTS",
    b"EXPUNGE",
    b"LIST ",
    b"LSUB ",
    b"XLIST ",
    b"STATUS ",
    b"NAMESPACE ",
    b"SEARCH ",
    b"ESEARCH ",
    b"CAPABILITY ",
    b"ENABLED ",
    b"FLAGS ",
    b"VANISHED ",
    b"ID ",
    b"METADATA ",
    b"UID ",
    b"INTERNALDATE ",
    b"RFC822.SIZE ",
    b"BODY[] ",
    b"BINARY[] ",
    b"BODY[HEADER.FIELDS (A)] ",
    b"MODSEQ ",
    b"BODYSTRUCTURE ",
    b"(",
    b")",
    b"((((",
    b"))))",
    b"\"",
    b"\\",
    b"\"a\\\"b\" ",
    b"{3}\r\n",
    b"{0}\r\n",
    b"~{2}\r\n",
    b"{5+}\r\n",
    b"{4294967295}\r\n",
    b"\r\n",
    b"\n",
    b"\r",
    b"NIL ",
    b"[",
    b"]",
    b"[ALERT]",
    b"[CAPABILITY ",
    b"[APPENDUID 1 2:3]",
    b"[COPYUID ",
    b"1 ",
    b"0 ",
    b"4294967296 ",
    b"1:3,5 ",
    b"*",
    b"\xe9",
    b"\xb2\xdd",
    b"\0",
    b" ",
    b"  ",
    b"\" 1-Jan-2024 10:00:00 +0800\" ",
    b"(EARLIER) ",
    b"(TAG \"A1\") ",
    b"ALL ",
    b"COUNT ",
    b"\\Seen ",
    b"\\HasNoChildren ",
    b"\"/\" ",
];

fn soup() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(proptest::sample::select(TOKENS), 0..60).prop_map(|parts| parts.concat())
}

fn feed_in_chunks(limits: Limits, input: &[u8], chunk: usize) {
    let mut decoder = ResponseDecoder::new(limits);
    for piece in input.chunks(chunk.max(1)) {
        decoder.feed(piece);
        if drain(&mut decoder) {
            return;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..2048), chunk in 1usize..64) {
        feed_in_chunks(Limits::default(), &input, chunk);
        feed_in_chunks(Limits { max_line: 64, max_literal: 16, max_response: 256, max_depth: 2 }, &input, chunk);
    }

    #[test]
    fn imap_shaped_soup_never_panics(input in soup(), chunk in 1usize..64) {
        feed_in_chunks(Limits::default(), &input, chunk);
        feed_in_chunks(Limits::default(), &input, input.len().max(1));
        feed_in_chunks(Limits { max_line: 64, max_literal: 16, max_response: 256, max_depth: 2 }, &input, chunk);
    }
}
