//! Fuzzes everything a POP3 server's bytes reach: status lines, multi-line blocks (split at
//! arbitrary points must decode exactly as whole), listings, APOP timestamps, and a whole
//! session driven over an in-memory stream that plays the input as the server.
//!
//! Input: one control byte (limits and read sizes), then the server's bytes.

#![no_main]

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use futures::executor::block_on;
use futures::io::{AsyncRead, AsyncWrite};
use libfuzzer_sys::fuzz_target;
use mailmigrate::net::{ManualClock, Security, ServerConfig};
use mailmigrate::pop3::codec::{
    BodyDecoder, BodyEvent, Capabilities, CodecError, ListingDecoder, apop_timestamp, decode_status,
    parse_list, parse_stat, parse_uidl,
};
use mailmigrate::pop3::{AuthMethod, Limits, Session};
use mailmigrate::{Credentials, ErrorKind};

fuzz_target!(|data: &[u8]| {
    let Some((&ctrl, wire)) = data.split_first() else {
        return;
    };
    let limits = Limits {
        max_line_length: 16 + usize::from(ctrl) * 4,
        max_message_size: 4096,
        max_listing_lines: 64,
    };
    let step = usize::from(ctrl % 13) + 1;
    status_lines(wire, &limits);
    body(wire, step, &limits);
    listing(wire, &limits);
    let _ = apop_timestamp(wire);
    session(wire, step, limits);
});

fn status_lines(wire: &[u8], limits: &Limits) {
    let mut buf = BytesMut::from(wire);
    while let Ok(Some(line)) = decode_status(&mut buf, limits) {
        assert!(line.text.len() < limits.max_line_length);
        let _ = (
            line.error_kind(ErrorKind::Protocol),
            line.retry_after(),
            line.text_lossy(),
        );
        let _ = parse_stat(&line.text);
    }
}

/// (message, ended, bytes left after the terminator, error) when fed in `step`-byte reads.
fn decode_body(wire: &[u8], step: usize, limits: &Limits) -> (Vec<u8>, bool, Vec<u8>, Option<CodecError>) {
    let mut decoder = BodyDecoder::new(limits);
    let mut buf = BytesMut::new();
    let mut message = Vec::new();
    let mut fed = 0;
    loop {
        match decoder.decode(&mut buf) {
            Ok(BodyEvent::Data(chunk)) => message.extend_from_slice(&chunk),
            Ok(BodyEvent::End) => return (message, true, [&buf[..], &wire[fed..]].concat(), None),
            Ok(BodyEvent::NeedMore) if fed < wire.len() => {
                let next = (fed + step).min(wire.len());
                buf.extend_from_slice(&wire[fed..next]);
                fed = next;
            }
            Ok(BodyEvent::NeedMore) => return (message, false, buf.to_vec(), None),
            Err(e) => return (message, false, Vec::new(), Some(e)),
        }
    }
}

fn body(wire: &[u8], step: usize, limits: &Limits) {
    let whole = decode_body(wire, wire.len().max(1), limits);
    let split = decode_body(wire, step, limits);
    assert_eq!(
        whole.3.is_some(),
        split.3.is_some(),
        "split reads changed whether decoding fails"
    );
    if whole.3.is_none() {
        assert_eq!(whole, split, "split reads changed the decoded message");
    }
    let (message, ended, _, err) = whole;
    assert!(message.len() <= wire.len());
    if ended && err.is_none() {
        // Stuffing the message again and decoding it gives it back.
        let mut wire = Vec::new();
        for line in message.split_inclusive(|&b| b == b'\n') {
            if line.first() == Some(&b'.') {
                wire.push(b'.');
            }
            wire.extend_from_slice(line);
        }
        wire.extend_from_slice(b".\r\n");
        let again = decode_body(
            &wire,
            wire.len(),
            &Limits {
                max_message_size: usize::MAX,
                ..*limits
            },
        );
        assert_eq!((again.0, again.1), (message, true), "stuff-unstuff round trip");
    }
}

fn listing(wire: &[u8], limits: &Limits) {
    let mut decoder = ListingDecoder::new(limits);
    let mut buf = BytesMut::from(wire);
    let mut lines = Vec::new();
    while let Ok(BodyEvent::Data(line)) = decoder.decode(&mut buf) {
        assert!(!line.contains(&b'\n'));
        let _ = parse_list(&line);
        if let Ok(entry) = parse_uidl(&line) {
            assert!(
                entry.msg > 0 && !entry.uid.is_empty() && entry.uid.bytes().all(|b| b.is_ascii_graphic())
            );
        }
        lines.push(line);
    }
    let caps = Capabilities::from_lines(lines.iter().map(|l| &l[..]));
    let _ = (caps.to_string(), caps.login_delay(), caps.has_sasl("PLAIN"));
}

/// The server's side of an in-memory connection: plays `wire` in `step`-byte reads, then
/// EOF; swallows whatever the client writes.
struct Replay {
    wire: Vec<u8>,
    at: usize,
    step: usize,
}

impl AsyncRead for Replay {
    fn poll_read(mut self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let n = self.step.min(buf.len()).min(self.wire.len() - self.at);
        let at = self.at;
        buf[..n].copy_from_slice(&self.wire[at..at + n]);
        self.at += n;
        Poll::Ready(Ok(n))
    }
}

impl AsyncWrite for Replay {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(data.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

fn session(wire: &[u8], step: usize, limits: Limits) {
    let stream = Replay {
        wire: wire.to_vec(),
        at: 0,
        step,
    };
    let server = ServerConfig::new("pop.fuzz", 110, Security::Plaintext).with_timeout(Duration::from_secs(5));
    block_on(async {
        let Ok(mut pop) = Session::from_stream(stream, &server, Arc::new(ManualClock::new()), limits).await
        else {
            return;
        };
        let method = if step % 2 == 0 {
            AuthMethod::Auto
        } else {
            AuthMethod::UserPass
        };
        let _ = pop
            .login_with(&Credentials::password("fuzz", "secret"), method)
            .await;
        let _ = pop.stat().await;
        let _ = pop.unique_ids().await;
        if let Ok(message) = pop.retr(1).await {
            assert!(message.len() <= limits.max_message_size);
        }
        if let Ok(mut reader) = pop.retr_stream(2).await {
            while let Ok(Some(_)) = reader.next_chunk().await {}
        }
        let _ = pop.top(1, 0).await;
        let _ = pop.quit().await;
    });
}
