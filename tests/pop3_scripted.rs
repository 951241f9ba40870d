//! POP3 session against scripted peers: byte-exact transcripts for hostile servers and
//! quirks a real Dovecot cannot be made to show (split terminators, [IN-USE],
//! [LOGIN-DELAY 600], no UIDL, bytes injected after STLS, garbage after +OK).
//!
//! The peer is in memory and deterministic: each `send` reaches the client in reads cut
//! exactly where the test says, and every line the client writes must match the script.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::executor::block_on;
use futures::io::{AsyncRead, AsyncWrite};
use futures::{FutureExt, StreamExt};
use mailmigrate::net::{ManualClock, Security, ServerConfig};
use mailmigrate::pop3::{AuthMethod, Limits, Session, header_fingerprint};
use mailmigrate::{Credentials, ErrorKind};

// ---- the scripted peer --------------------------------------------------------------------

enum Step {
    /// Bytes to the client, one read per piece.
    Send(Vec<Vec<u8>>),
    /// The exact bytes the client must write next.
    Expect(Vec<u8>),
    /// Never answer again (for timeouts).
    Stall,
}

#[derive(Default)]
struct PeerState {
    steps: VecDeque<Step>,
    pending: VecDeque<Vec<u8>>,
    unmatched: Vec<u8>,
    /// Everything the client wrote.
    written: Vec<u8>,
    /// The first mismatch, kept so the test can show it even if the client swallowed it.
    failure: Option<String>,
}

/// The client's end of the scripted connection.
struct Peer(Arc<Mutex<PeerState>>);

/// The test's handle on the script, to check it was played to the end.
struct Script(Arc<Mutex<PeerState>>);

impl Script {
    fn new() -> Self {
        Script(Arc::default())
    }

    fn step(self, step: Step) -> Self {
        self.0.lock().unwrap().steps.push_back(step);
        self
    }

    fn send(self, bytes: &[u8]) -> Self {
        self.step(Step::Send(vec![bytes.to_vec()]))
    }

    /// Sends `bytes` cut at the given offsets, each piece in its own read.
    fn send_split(self, bytes: &[u8], cuts: &[usize]) -> Self {
        let mut pieces = Vec::new();
        let mut start = 0;
        for &cut in cuts.iter().chain(std::iter::once(&bytes.len())) {
            pieces.push(bytes[start..cut].to_vec());
            start = cut;
        }
        self.step(Step::Send(pieces))
    }

    fn expect(self, line: &[u8]) -> Self {
        self.step(Step::Expect(line.to_vec()))
    }

    fn stall(self) -> Self {
        self.step(Step::Stall)
    }

    /// `+OK` greeting, then a USER/PASS login as alice.
    fn logged_in() -> Self {
        Script::new()
            .send(b"+OK ready\r\n")
            .expect(b"USER alice\r\n")
            .send(b"+OK\r\n")
            .expect(b"PASS s3cret\r\n")
            .send(b"+OK logged in\r\n")
    }

    fn peer(&self) -> Peer {
        Peer(self.0.clone())
    }

    fn written(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap().written).into_owned()
    }

    /// The whole script was played, nothing mismatched, and no DELE ever went out.
    fn assert_done(&self) {
        let state = self.0.lock().unwrap();
        assert_eq!(state.failure, None);
        assert!(
            state.steps.is_empty(),
            "script not finished, {} steps left",
            state.steps.len()
        );
        assert!(state.pending.is_empty(), "the client did not read everything");
        assert!(!String::from_utf8_lossy(&state.written).contains("DELE"));
    }
}

impl AsyncRead for Peer {
    fn poll_read(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let mut state = self.0.lock().unwrap();
        loop {
            if let Some(front) = state.pending.front_mut() {
                let n = front.len().min(buf.len());
                buf[..n].copy_from_slice(&front[..n]);
                front.drain(..n);
                if front.is_empty() {
                    state.pending.pop_front();
                }
                return Poll::Ready(Ok(n));
            }
            match state.steps.front() {
                Some(Step::Send(_)) => {
                    let Some(Step::Send(pieces)) = state.steps.pop_front() else {
                        unreachable!()
                    };
                    state.pending.extend(pieces.into_iter().filter(|p| !p.is_empty()));
                }
                Some(Step::Stall) => return Poll::Pending,
                Some(Step::Expect(line)) => {
                    let msg = format!(
                        "script waits for {:?} but the client reads",
                        String::from_utf8_lossy(line)
                    );
                    state.failure.get_or_insert(msg.clone());
                    return Poll::Ready(Err(io::Error::other(msg)));
                }
                None => return Poll::Ready(Ok(0)),
            }
        }
    }
}

impl AsyncWrite for Peer {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let mut state = self.0.lock().unwrap();
        state.written.extend_from_slice(data);
        state.unmatched.extend_from_slice(data);
        while let Some(Step::Expect(line)) = state.steps.front() {
            let n = line.len().min(state.unmatched.len());
            if state.unmatched[..n] != line[..n] {
                let msg = format!(
                    "client wrote {:?}, script expects {:?}",
                    String::from_utf8_lossy(&state.unmatched),
                    String::from_utf8_lossy(line)
                );
                state.failure.get_or_insert(msg.clone());
                return Poll::Ready(Err(io::Error::other(msg)));
            }
            if n < line.len() {
                break;
            }
            state.unmatched.drain(..n);
            state.steps.pop_front();
        }
        if state.unmatched.contains(&b'\n') {
            let msg = format!(
                "client wrote {:?} off script",
                String::from_utf8_lossy(&state.unmatched)
            );
            state.failure.get_or_insert(msg.clone());
            return Poll::Ready(Err(io::Error::other(msg)));
        }
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

// ---- helpers ------------------------------------------------------------------------------

fn server(security: Security) -> ServerConfig {
    ServerConfig::new("pop.test", 110, security).with_timeout(Duration::from_secs(30))
}

fn alice() -> Credentials {
    Credentials::password("alice", "s3cret")
}

fn open(script: &Script, security: Security) -> mailmigrate::Result<Session<Peer>> {
    open_with(script, security, Limits::default(), Arc::new(ManualClock::new()))
}

fn open_with(
    script: &Script,
    security: Security,
    limits: Limits,
    clock: Arc<ManualClock>,
) -> mailmigrate::Result<Session<Peer>> {
    block_on(Session::from_stream(
        script.peer(),
        &server(security),
        clock,
        limits,
    ))
}

fn logged_in(script: &Script) -> Session<Peer> {
    let mut pop = open(script, Security::Plaintext).expect("greeting");
    block_on(pop.login_with(&alice(), AuthMethod::UserPass)).expect("login");
    pop
}

/// A message with dot-leading lines, as stored and as dot-stuffed on the wire.
fn dotted_message() -> (Vec<u8>, Vec<u8>) {
    let message = b"Subject: dots\r\n\r\n.leading dot\r\n..two dots\r\n.\r\nlast\r\n".to_vec();
    let mut wire = b"+OK 52 octets\r\n".to_vec();
    wire.extend_from_slice(b"Subject: dots\r\n\r\n..leading dot\r\n...two dots\r\n..\r\nlast\r\n.\r\n");
    (message, wire)
}

// ---- the tests ----------------------------------------------------------------------------

#[test]
fn retr_survives_a_split_at_every_byte_position() {
    let (message, wire) = dotted_message();
    for cut in 0..=wire.len() {
        for streamed in [false, true] {
            let script = Script::logged_in()
                .expect(b"RETR 1\r\n")
                .send_split(&wire, &[cut])
                .expect(b"NOOP\r\n")
                .send(b"+OK\r\n");
            let mut pop = logged_in(&script);
            let got = if streamed {
                let mut reader = block_on(pop.retr_stream(1)).unwrap();
                let mut got = Vec::new();
                while let Some(chunk) = block_on(reader.next_chunk()).unwrap() {
                    got.extend_from_slice(&chunk);
                }
                got
            } else {
                block_on(pop.retr(1)).unwrap().to_vec()
            };
            assert_eq!(got, message, "cut at {cut}, streamed {streamed}");
            block_on(pop.noop()).expect("the session is in step after the message");
            script.assert_done();
        }
    }
}

#[test]
fn listings_survive_a_split_at_every_byte_position() {
    let wire = b"+OK\r\n1 whqtswO00WBw418f9t5JxYwZ\r\n2 QhdPYR:00WBw1Ph7x7\r\n.\r\n";
    for cut in 0..=wire.len() {
        let script = Script::logged_in()
            .expect(b"UIDL\r\n")
            .send_split(wire, &[cut])
            .expect(b"STAT\r\n")
            .send_split(b"+OK 2 320\r\n", &[cut.min(11)]);
        let mut pop = logged_in(&script);
        let ids = block_on(pop.uidl()).unwrap();
        assert_eq!(
            ids.iter().map(|e| (e.msg, e.uid.as_str())).collect::<Vec<_>>(),
            [(1, "whqtswO00WBw418f9t5JxYwZ"), (2, "QhdPYR:00WBw1Ph7x7")],
            "cut at {cut}"
        );
        assert_eq!(block_on(pop.stat()).unwrap().size, 320, "cut at {cut}");
        script.assert_done();
    }
}

#[test]
fn retr_survives_one_byte_reads() {
    let (message, wire) = dotted_message();
    let cuts: Vec<usize> = (1..wire.len()).collect();
    let script = Script::logged_in().expect(b"RETR 1\r\n").send_split(&wire, &cuts);
    let mut pop = logged_in(&script);
    assert_eq!(block_on(pop.retr(1)).unwrap(), message);
    script.assert_done();
}

#[test]
fn bare_lf_server_is_understood() {
    let script = Script::new()
        .send(b"+OK bare\n")
        .expect(b"USER alice\r\n")
        .send(b"+OK\n")
        .expect(b"PASS s3cret\r\n")
        .send(b"+OK\n")
        .expect(b"LIST\r\n")
        .send(b"+OK\n1 12\n2 7\n.\n")
        .expect(b"RETR 2\r\n")
        .send(b"+OK\nab\n..c\n.\n");
    let mut pop = open(&script, Security::Plaintext).unwrap();
    block_on(pop.login_with(&alice(), AuthMethod::UserPass)).unwrap();
    let list = block_on(pop.list()).unwrap();
    assert_eq!(
        list.iter().map(|e| (e.msg, e.size)).collect::<Vec<_>>(),
        [(1, 12), (2, 7)]
    );
    assert_eq!(block_on(pop.retr(2)).unwrap(), &b"ab\n.c\n"[..]);
    script.assert_done();
}

#[test]
fn in_use_is_transient_and_names_account_and_host_but_not_the_password() {
    let script = Script::new()
        .send(b"+OK ready\r\n")
        .expect(b"USER alice\r\n")
        .send(b"+OK\r\n")
        .expect(b"PASS s3cret\r\n")
        .send(b"-ERR [IN-USE] Do you have another POP session running?\r\n");
    let mut pop = open(&script, Security::Plaintext).unwrap();
    let err = block_on(pop.login_with(&alice(), AuthMethod::UserPass)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transient);
    assert_eq!(err.retry_after(), None);
    let shown = format!("{err} {err:?} {pop:?}");
    assert!(
        shown.contains("alice") && shown.contains("pop.test:110"),
        "{shown}"
    );
    assert!(shown.contains("another POP session"), "{shown}");
    assert!(!shown.contains("s3cret"), "{shown}");
    script.assert_done();
}

#[test]
fn login_delay_is_transient_with_the_delay() {
    let script = Script::new()
        .send(b"+OK ready\r\n")
        .expect(b"USER alice\r\n")
        .send(b"+OK\r\n")
        .expect(b"PASS s3cret\r\n")
        .send(b"-ERR [LOGIN-DELAY 600] Minimum time between logins is 10 minutes\r\n");
    let mut pop = open(&script, Security::Plaintext).unwrap();
    let err = block_on(pop.login_with(&alice(), AuthMethod::UserPass)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transient);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(600)));
    script.assert_done();
}

#[test]
fn plain_rejection_is_an_auth_error_and_sys_perm_a_refusal() {
    let script = Script::new()
        .send(b"+OK ready\r\n")
        .expect(b"USER alice\r\n")
        .send(b"+OK\r\n")
        .expect(b"PASS s3cret\r\n")
        .send(b"-ERR Please using authorized code to login\r\n");
    let mut pop = open(&script, Security::Plaintext).unwrap();
    let err = block_on(pop.login_with(&alice(), AuthMethod::UserPass)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert!(err.to_string().contains("authorized code"), "{err}");

    let script = Script::new()
        .send(b"+OK ready\r\n")
        .expect(b"USER alice\r\n")
        .send(b"-ERR [SYS/PERM] POP3 access is disabled for this account\r\n");
    let mut pop = open(&script, Security::Plaintext).unwrap();
    let err = block_on(pop.login_with(&alice(), AuthMethod::UserPass)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SourceRefused);
    script.assert_done();
}

#[test]
fn a_refusing_greeting_fails_with_its_code() {
    let script = Script::new().send(b"-ERR [SYS/TEMP] too many connections\r\n");
    let err = open(&script, Security::Plaintext).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transient);
    assert!(err.to_string().contains("too many connections"));
}

#[test]
fn without_uidl_header_fingerprints_stand_in_and_are_stable() {
    let run = || {
        let script = Script::logged_in()
            .expect(b"CAPA\r\n")
            .send(b"+OK\r\nTOP\r\nUSER\r\n.\r\n")
            .expect(b"LIST\r\n")
            .send(b"+OK\r\n1 100\r\n2 100\r\n3 200\r\n.\r\n")
            .expect(b"TOP 1 0\r\n")
            .send(b"+OK\r\nMessage-ID: <a@x>\r\n\r\n.\r\n")
            .expect(b"TOP 2 0\r\n")
            .send(b"+OK\r\nMessage-ID: <a@x>\r\n\r\n.\r\n")
            .expect(b"TOP 3 0\r\n")
            .send(b"+OK\r\nMessage-ID: <b@x>\r\n\r\n.\r\n");
        let mut pop = logged_in(&script);
        let ids = block_on(pop.unique_ids()).unwrap();
        script.assert_done();
        ids
    };
    let ids = run();
    assert_eq!(ids, run(), "the same mailbox gives the same ids");
    let uids: Vec<&str> = ids.iter().map(|e| e.uid.as_str()).collect();
    let first = header_fingerprint(b"Message-ID: <a@x>\r\n\r\n", 100);
    assert_eq!(
        uids,
        [
            first.clone(),
            format!("{first}-2"),
            header_fingerprint(b"Message-ID: <b@x>\n", 200)
        ]
    );
    assert!(ids.iter().map(|e| e.msg).eq(1..=3));
}

#[test]
fn without_capa_uidl_or_top_the_fingerprint_comes_from_retr() {
    let script = Script::logged_in()
        .expect(b"CAPA\r\n")
        .send(b"-ERR unknown command\r\n")
        .expect(b"UIDL\r\n")
        .send(b"-ERR unknown command\r\n")
        .expect(b"LIST\r\n")
        .send(b"+OK\r\n1 30\r\n2 31\r\n.\r\n")
        .expect(b"TOP 1 0\r\n")
        .send(b"-ERR unknown command\r\n")
        .expect(b"RETR 1\r\n")
        .send(b"+OK\r\nSubject: one\r\n\r\nbody\r\n.\r\n")
        .expect(b"RETR 2\r\n")
        .send(b"+OK\r\nSubject: two\r\n\r\nbody\r\n.\r\n");
    let mut pop = logged_in(&script);
    let ids = block_on(pop.unique_ids()).unwrap();
    assert_eq!(ids[0].uid, header_fingerprint(b"Subject: one\r\n", 30));
    assert_eq!(ids[1].uid, header_fingerprint(b"Subject: two\r\n", 31));
    script.assert_done();
}

#[test]
fn with_uidl_the_server_ids_are_used() {
    let script = Script::logged_in()
        .expect(b"CAPA\r\n")
        .send(b"+OK\r\nUIDL\r\nTOP\r\n.\r\n")
        .expect(b"UIDL\r\n")
        .send(b"+OK\r\n1 whqtswO00WBw418f9t5JxYwZ\r\n2 QhdPYR:00WBw1Ph7x7\r\n.\r\n")
        .expect(b"UIDL 2\r\n")
        .send(b"+OK 2 QhdPYR:00WBw1Ph7x7\r\n");
    let mut pop = logged_in(&script);
    let ids = block_on(pop.unique_ids()).unwrap();
    assert_eq!(
        ids.iter().map(|e| e.uid.as_str()).collect::<Vec<_>>(),
        ["whqtswO00WBw418f9t5JxYwZ", "QhdPYR:00WBw1Ph7x7"]
    );
    assert_eq!(block_on(pop.uidl_one(2)).unwrap().uid, "QhdPYR:00WBw1Ph7x7");
    script.assert_done();
}

#[test]
fn bytes_injected_after_stls_ok_are_refused_before_any_handshake() {
    let script = Script::new()
        .send(b"+OK ready\r\n")
        .expect(b"CAPA\r\n")
        .send(b"+OK\r\nSTLS\r\nUSER\r\n.\r\n")
        .expect(b"STLS\r\n")
        .send(b"+OK Begin TLS negotiation\r\n+OK injected\r\n");
    let err = open(&script, Security::StartTls).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls);
    assert!(err.to_string().contains("before the TLS handshake"), "{err}");
    assert_eq!(
        script.written(),
        "CAPA\r\nSTLS\r\n",
        "nothing sent after the injection, not even a ClientHello"
    );
}

#[test]
fn stls_required_but_not_offered_fails_before_the_password() {
    let script = Script::new()
        .send(b"+OK ready\r\n")
        .expect(b"CAPA\r\n")
        .send(b"+OK\r\nUSER\r\nUIDL\r\n.\r\n");
    let err = open(&script, Security::StartTls).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls);
    assert!(err.to_string().contains("STLS"), "{err}");
    assert_eq!(script.written(), "CAPA\r\n");
    script.assert_done();

    let script = Script::new()
        .send(b"+OK ready\r\n")
        .expect(b"CAPA\r\n")
        .send(b"-ERR what?\r\n");
    assert_eq!(
        open(&script, Security::StartTls).unwrap_err().kind(),
        ErrorKind::Tls
    );
}

#[test]
fn garbage_after_ok_is_a_protocol_error() {
    // A STAT reply without numbers.
    let script = Script::logged_in()
        .expect(b"STAT\r\n")
        .send(b"+OK lots of mail\r\n");
    let mut pop = logged_in(&script);
    assert_eq!(block_on(pop.stat()).unwrap_err().kind(), ErrorKind::Protocol);

    // Stray lines after a single-line +OK surface at the next command, and end the session.
    let script = Script::logged_in()
        .expect(b"STAT\r\n")
        .send(b"+OK 2 320\r\n\x16\x03\x01garbage\r\n")
        .expect(b"NOOP\r\n");
    let mut pop = logged_in(&script);
    assert_eq!(block_on(pop.stat()).unwrap().count, 2);
    let err = block_on(pop.noop()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Protocol);
    let err = block_on(pop.noop()).unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Transient,
        "a broken session refuses further commands: {err}"
    );
    script.assert_done();

    // A LIST line that is not "n size".
    let script = Script::logged_in()
        .expect(b"LIST\r\n")
        .send(b"+OK\r\n1 10\r\nfoo bar\r\n.\r\n");
    let mut pop = logged_in(&script);
    assert_eq!(block_on(pop.list()).unwrap_err().kind(), ErrorKind::Protocol);
}

#[test]
fn oversized_lines_and_messages_hit_the_limits() {
    let limits = Limits {
        max_line_length: 64,
        max_message_size: 32,
        ..Limits::default()
    };
    let clock = Arc::new(ManualClock::new());
    let script = Script::new().send(&[b'+'; 100]);
    let err = open_with(&script, Security::Plaintext, limits, clock.clone()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Protocol);

    let mut body = b"+OK\r\n".to_vec();
    body.extend_from_slice(&[b'x'; 40]);
    body.extend_from_slice(b"\r\n.\r\n");
    let script = Script::logged_in().expect(b"RETR 1\r\n").send(&body);
    let mut pop = open_with(&script, Security::Plaintext, limits, clock).unwrap();
    block_on(pop.login_with(&alice(), AuthMethod::UserPass)).unwrap();
    let err = block_on(pop.retr(1)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Protocol);
    assert!(err.to_string().contains("larger than 32 bytes"), "{err}");
}

#[test]
fn a_silent_server_times_out_as_transient() {
    let script = Script::logged_in().expect(b"STAT\r\n").stall();
    let clock = Arc::new(ManualClock::new());
    let mut pop = open_with(&script, Security::Plaintext, Limits::default(), clock.clone()).unwrap();
    block_on(pop.login_with(&alice(), AuthMethod::UserPass)).unwrap();
    let mut stat = Box::pin(pop.stat());
    assert!(stat.as_mut().now_or_never().is_none());
    clock.advance(Duration::from_secs(29));
    assert!(stat.as_mut().now_or_never().is_none());
    clock.advance(Duration::from_secs(1));
    let err = stat.now_or_never().expect("timed out").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transient);
    assert!(err.to_string().contains("pop.test:110"), "{err}");
}

#[test]
fn apop_sends_the_rfc_1939_digest() {
    let script = Script::new()
        .send(b"+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>\r\n")
        .expect(b"APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n")
        .send(b"+OK maildrop has 1 message (369 octets)\r\n");
    let mut pop = open(&script, Security::Plaintext).unwrap();
    block_on(pop.login_with(&Credentials::password("mrose", "tanstaaf"), AuthMethod::Apop)).unwrap();
    assert!(pop.is_authenticated());
    script.assert_done();

    let script = Script::new().send(b"+OK no timestamp here\r\n");
    let mut pop = open(&script, Security::Plaintext).unwrap();
    let err = block_on(pop.login_with(&alice(), AuthMethod::Apop)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SourceRefused);
}

#[test]
fn auto_login_prefers_sasl_plain_when_offered() {
    let script = Script::new()
        .send(b"+OK ready\r\n")
        .expect(b"CAPA\r\n")
        .send(b"+OK\r\nSASL PLAIN\r\nUSER\r\n.\r\n")
        .expect(b"AUTH PLAIN\r\n")
        .send(b"+ \r\n")
        .expect(b"AGFsaWNlAHMzY3JldA==\r\n")
        .send(b"+OK Logged in.\r\n")
        .expect(b"CAPA\r\n")
        .send(b"+OK\r\nTOP\r\nUIDL\r\n.\r\n")
        .expect(b"STAT\r\n")
        .send(b"+OK 3 4500\r\n");
    let mut pop = open(&script, Security::Plaintext).unwrap();
    block_on(pop.login(&alice())).unwrap();
    let summary = block_on(pop.check_summary()).unwrap();
    assert_eq!(
        (summary.messages, summary.total_size, summary.tls),
        (3, 4500, false)
    );
    assert!(
        summary.capabilities.has("UIDL") && !summary.capabilities.has("SASL"),
        "re-asked after login"
    );
    assert!(summary.to_string().contains("messages: 3"));
    script.assert_done();
}

#[test]
fn xoauth2_failure_challenge_is_answered_and_reported_as_auth() {
    let script = Script::new()
        .send(b"+OK ready\r\n")
        .expect(b"AUTH XOAUTH2\r\n")
        .send(b"+\r\n")
        .expect(b"dXNlcj1ib2JAZXhhbXBsZS5jb20BYXV0aD1CZWFyZXIgeWEyOS50b2tlbgEB\r\n")
        .send(b"+ eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiQmVhcmVyIn0=\r\n")
        .expect(b"\r\n")
        .send(b"-ERR [AUTH] Invalid credentials\r\n");
    let mut pop = open(&script, Security::Plaintext).unwrap();
    let err = block_on(pop.login(&Credentials::oauth2("bob@example.com", "ya29.token"))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert!(err.to_string().contains(r#""status":"401""#), "{err}");
    assert!(!format!("{err:?}").contains("ya29"));
    script.assert_done();
}

#[test]
fn a_dropped_reader_is_skipped_before_the_next_command() {
    let (_, wire) = dotted_message();
    let script = Script::logged_in()
        .expect(b"RETR 1\r\n")
        .send_split(&wire, &[20])
        .expect(b"RETR 2\r\n")
        .send(b"+OK\r\nsecond\r\n.\r\n");
    let mut pop = logged_in(&script);
    {
        let mut reader = block_on(pop.retr_stream(1)).unwrap();
        assert_eq!(reader.size_hint(), Some(52));
        assert!(block_on(reader.next_chunk()).unwrap().is_some());
    }
    assert_eq!(block_on(pop.retr(2)).unwrap(), &b"second\r\n"[..]);
    script.assert_done();
}

#[test]
fn retr_as_a_futures_stream_yields_the_message() {
    let (message, wire) = dotted_message();
    let script = Script::logged_in()
        .expect(b"RETR 1\r\n")
        .send_split(&wire, &[18, 30, 40]);
    let mut pop = logged_in(&script);
    let reader = block_on(pop.retr_stream(1)).unwrap();
    let chunks: Vec<_> = block_on(reader.into_stream().collect::<Vec<_>>());
    let joined: Vec<u8> = chunks.into_iter().flat_map(|c| c.unwrap().to_vec()).collect();
    assert_eq!(joined, message);
    script.assert_done();
}

#[test]
fn arguments_with_line_breaks_are_never_sent() {
    let script = Script::new().send(b"+OK ready\r\n");
    let mut pop = open(&script, Security::Plaintext).unwrap();
    let err = block_on(pop.login_with(
        &Credentials::password("alice\r\nDELE 1", "x"),
        AuthMethod::UserPass,
    ))
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(script.written(), "");
    let err = block_on(pop.retr(0)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    script.assert_done();
}

#[test]
fn quit_after_reading_commits_no_deletion() {
    let script = Script::logged_in()
        .expect(b"TOP 1 2\r\n")
        .send(b"+OK\r\nSubject: x\r\n\r\nline 1\r\nline 2\r\n.\r\n")
        .expect(b"RSET\r\n")
        .send(b"+OK\r\n")
        .expect(b"QUIT\r\n")
        .send(b"+OK bye\r\n");
    let mut pop = logged_in(&script);
    assert_eq!(
        block_on(pop.top(1, 2)).unwrap(),
        &b"Subject: x\r\n\r\nline 1\r\nline 2\r\n"[..]
    );
    block_on(pop.rset()).unwrap();
    block_on(pop.quit()).unwrap();
    script.assert_done();
}
