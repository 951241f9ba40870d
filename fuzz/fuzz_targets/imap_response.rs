//! Server bytes into the IMAP response decoder (framer and every parser behind it).
//!
//! Byte 0 picks how the input is split into reads, byte 1 which limits apply; the rest is what
//! the server sent. Whatever it is, decoding must return a Result: no panic, no abort, no
//! allocation beyond the limits, and a fatal error must stick.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailmigrate::imap::codec::{Limits, ResponseDecoder};

fuzz_target!(|data: &[u8]| {
    let [split, limits, input @ ..] = data else { return };
    let limits = if limits & 1 == 0 {
        Limits::default()
    } else {
        Limits { max_line: 256, max_literal: 64, max_response: 1024, max_depth: 4 }
    };
    let chunk = match split % 4 {
        0 => input.len().max(1),
        _ => usize::from(*split / 4) % 64 + 1,
    };
    let mut decoder = ResponseDecoder::new(limits);
    for piece in input.chunks(chunk) {
        if split & 0x80 != 0 {
            // The session's path: read straight into the decoder's buffer.
            let buf = decoder.read_buf(piece.len() + 3);
            buf[..piece.len()].copy_from_slice(piece);
            decoder.filled(piece.len());
        } else {
            decoder.feed(piece);
        }
        loop {
            match decoder.decode() {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(err) if err.is_fatal() => {
                    assert_eq!(decoder.decode(), Err(err), "a fatal error must stick");
                    return;
                }
                Err(_) => {}
            }
        }
    }
});
