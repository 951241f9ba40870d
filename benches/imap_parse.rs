//! IMAP response decoding throughput, next to imap-proto parsing the same bytes by itself.
//!
//! `cargo bench --bench imap_parse` prints one line per workload. No criterion: a few timed
//! loops over large inputs are stable enough for the goals in the research (part B.7:
//! imap-proto alone reads about 1.3 M metadata FETCH responses/s on this machine).

use std::hint::black_box;
use std::time::{Duration, Instant};

use mailmigrate::imap::codec::{Data, Limits, Response, ResponseDecoder};

fn main() {
    let fetch_stream = metadata_fetches(100_000);
    report(
        "100k metadata FETCH, ResponseDecoder, 64 KiB reads",
        fetch_stream.len(),
        100_000,
        || decode_in_reads(&fetch_stream, 64 << 10),
    );
    report(
        "100k metadata FETCH, imap-proto alone, one buffer",
        fetch_stream.len(),
        100_000,
        || {
            let mut rest = &fetch_stream[..];
            let mut n = 0;
            while !rest.is_empty() {
                let (r, response) = imap_proto::Response::parse(rest).expect("valid");
                black_box(response);
                rest = r;
                n += 1;
            }
            n
        },
    );

    let search = search_line(1_000_000);
    report(
        "SEARCH with 1M UIDs (one 7.9 MB line), 64 KiB reads",
        search.len(),
        1,
        || decode_in_reads(&search, 64 << 10),
    );

    let body = body_fetch(32 << 20);
    report("FETCH of a 32 MiB body, 64 KiB reads", body.len(), 1, || {
        decode_in_reads(&body, 64 << 10)
    });
}

/// `n` FETCH responses as Dovecot sends them for `UID FLAGS INTERNALDATE RFC822.SIZE`.
fn metadata_fetches(n: u32) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 1..=n {
        out.extend_from_slice(
            format!(
                "* {i} FETCH (UID {} FLAGS (\\Seen $Forwarded) INTERNALDATE \"17-Jul-2023 02:44:25 +0800\" RFC822.SIZE {})\r\n",
                i + 1000,
                4000 + i % 5000
            )
            .as_bytes(),
        );
    }
    out
}

fn search_line(n: u32) -> Vec<u8> {
    let mut out = b"* SEARCH".to_vec();
    for i in 1..=n {
        out.extend_from_slice(format!(" {}", i * 2).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out
}

fn body_fetch(size: usize) -> Vec<u8> {
    let mut out = format!("* 1 FETCH (UID 7 BODY[] {{{size}}}\r\n").into_bytes();
    out.extend(std::iter::repeat_n(b'x', size));
    out.extend_from_slice(b")\r\n");
    out
}

/// Feeds `input` in reads of `read` bytes, decoding after each; returns the response count.
fn decode_in_reads(input: &[u8], read: usize) -> usize {
    let limits = Limits {
        max_line: 16 << 20,
        ..Limits::default()
    };
    let mut decoder = ResponseDecoder::new(limits);
    let mut n = 0;
    for chunk in input.chunks(read) {
        let buf = decoder.read_buf(chunk.len());
        buf[..chunk.len()].copy_from_slice(chunk);
        decoder.filled(chunk.len());
        while let Some(response) = decoder.decode().expect("valid input") {
            if let Response::Data(Data::Fetch(f)) = &response {
                black_box(&f.body);
            }
            black_box(response);
            n += 1;
        }
    }
    n
}

fn report(name: &str, bytes: usize, responses: usize, mut run: impl FnMut() -> usize) {
    assert_eq!(run(), responses, "{name}: wrong response count");
    let mut best = Duration::MAX;
    for _ in 0..5 {
        let start = Instant::now();
        black_box(run());
        best = best.min(start.elapsed());
    }
    let secs = best.as_secs_f64();
    println!(
        "{name}: {:.1} ms, {:.0} responses/s, {:.0} MB/s",
        secs * 1e3,
        responses as f64 / secs,
        bytes as f64 / secs / 1e6
    );
}
