//! Proves the private-Dovecot test support (tests/support) does what every other
//! integration test relies on: ports, TLS, users, passwords, OAuth2, seeding, isolation and
//! cleanup. Talks to Dovecot over raw TCP/TLS (the crate's `net` module) and doveadm.

mod support;

use std::collections::{BTreeSet, HashSet};
use std::fs;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::process::Command;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use mailmigrate::ErrorKind;
use mailmigrate::net::{TlsConfig, TlsConnector};
use support::{Dovecot, SeedMessage, dovecot, hmac_sha256, sample_date, sample_message, sha256_hex};

/// Longest any single read or write may take before the test fails instead of hanging.
const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// A tokio TCP stream seen through futures-io (what the crate's TLS connector takes),
/// written out here so these tests don't depend on the crate's `tokio` feature. Real
/// non-blocking I/O matters: a blocking std socket stalls the rustls handshake.
struct Tcp(tokio::net::TcpStream);

impl AsyncRead for Tcp {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let mut read = tokio::io::ReadBuf::new(buf);
        ready!(tokio::io::AsyncRead::poll_read(
            Pin::new(&mut self.0),
            cx,
            &mut read
        ))?;
        Poll::Ready(Ok(read.filled().len()))
    }
}

impl AsyncWrite for Tcp {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        tokio::io::AsyncWrite::poll_write(Pin::new(&mut self.0), cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        tokio::io::AsyncWrite::poll_flush(Pin::new(&mut self.0), cx)
    }
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        tokio::io::AsyncWrite::poll_shutdown(Pin::new(&mut self.0), cx)
    }
}

async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(IO_TIMEOUT, fut)
        .await
        .unwrap_or_else(|_| panic!("{what} took over {IO_TIMEOUT:?}"))
}

/// A line-oriented conversation with a server over any byte stream (plain or TLS).
struct Peer<S> {
    io: BufReader<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Peer<S> {
    fn new(stream: S) -> Self {
        Peer {
            io: BufReader::new(stream),
        }
    }

    async fn line(&mut self) -> String {
        let mut buf = Vec::new();
        let mut limited = (&mut self.io).take(64 * 1024);
        let n = within("reading a line from Dovecot", limited.read_until(b'\n', &mut buf))
            .await
            .expect("reading from Dovecot");
        assert!(n > 0, "Dovecot closed the connection");
        String::from_utf8(buf).expect("Dovecot sent a non-UTF-8 line")
    }

    async fn exact(&mut self, len: usize) -> Vec<u8> {
        let mut buf = vec![0; len];
        within("reading a literal", self.io.read_exact(&mut buf))
            .await
            .expect("reading a literal from Dovecot");
        buf
    }

    async fn send(&mut self, bytes: &[u8]) {
        let w = self.io.get_mut();
        within("writing to Dovecot", async {
            w.write_all(bytes).await?;
            w.flush().await
        })
        .await
        .expect("writing to Dovecot");
    }

    /// Sends `tag command` and returns every line up to and including the tagged one.
    async fn imap(&mut self, tag: &str, command: &str) -> Vec<String> {
        self.send(format!("{tag} {command}\r\n").as_bytes()).await;
        let mut lines = Vec::new();
        loop {
            let line = self.line().await;
            let done = line.starts_with(&format!("{tag} "));
            lines.push(line);
            if done {
                return lines;
            }
        }
    }

    fn into_inner(self) -> S {
        self.io.into_inner()
    }
}

async fn tcp(port: u16) -> Tcp {
    let stream = within("connecting", tokio::net::TcpStream::connect(("127.0.0.1", port))).await;
    Tcp(stream.unwrap_or_else(|e| panic!("connecting to 127.0.0.1:{port}: {e}")))
}

async fn plain(port: u16) -> Peer<Tcp> {
    Peer::new(tcp(port).await)
}

async fn tls(
    port: u16,
    name: &str,
    config: &TlsConfig,
) -> mailmigrate::Result<Peer<impl AsyncRead + AsyncWrite + Unpin + use<>>> {
    let connector = TlsConnector::new(config)?;
    let stream = within("the TLS handshake", connector.connect(name, tcp(port).await)).await?;
    Ok(Peer::new(stream))
}

fn tagged_ok(lines: &[String]) -> bool {
    lines.last().is_some_and(|l| l.split(' ').nth(1) == Some("OK"))
}

fn imap_quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Logs in over plaintext IMAP with LOGIN; true on `OK`.
async fn imap_login(d: &Dovecot, user: &str, password: &str) -> bool {
    let mut p = plain(d.imap_port()).await;
    p.line().await;
    let lines = p
        .imap(
            "a",
            &format!("LOGIN {} {}", imap_quote(user), imap_quote(password)),
        )
        .await;
    tagged_ok(&lines)
}

async fn pop3_login(d: &Dovecot, user: &str, password: &str) -> bool {
    let mut p = plain(d.pop3_port()).await;
    assert!(p.line().await.starts_with("+OK"));
    p.send(format!("USER {user}\r\n").as_bytes()).await;
    assert!(p.line().await.starts_with("+OK"));
    p.send(format!("PASS {password}\r\n").as_bytes()).await;
    p.line().await.starts_with("+OK")
}

/// XOAUTH2 over plaintext IMAP with an initial response; true on `OK`.
async fn xoauth2_login(d: &Dovecot, login: &str, token: &str) -> bool {
    let mut p = plain(d.imap_port()).await;
    let greeting = p.line().await;
    assert!(
        greeting.contains("AUTH=XOAUTH2"),
        "XOAUTH2 not offered: {greeting:?}"
    );
    let ir = STANDARD.encode(format!("user={login}\x01auth=Bearer {token}\x01\x01"));
    p.send(format!("x AUTHENTICATE XOAUTH2 {ir}\r\n").as_bytes())
        .await;
    let mut line = p.line().await;
    if line.starts_with('+') {
        // The error challenge (JSON status): answer with an empty line to get the NO.
        p.send(b"\r\n").await;
        line = p.line().await;
    }
    line.starts_with("x OK")
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// Whether `pid` is a live (non-zombie) process.
fn alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rfind(')')
                .and_then(|i| stat[i + 1..].split_whitespace().next());
            !matches!(state, Some("Z" | "X"))
        }
        Err(_) => false,
    }
}

fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn plaintext_ports_greet_with_this_instances_banner() {
    let d = dovecot();
    let mut imap = plain(d.imap_port()).await;
    let greeting = imap.line().await;
    assert!(greeting.starts_with("* OK "), "IMAP greeting: {greeting:?}");
    assert!(
        greeting.contains(d.id()),
        "IMAP greeting lacks the instance id: {greeting:?}"
    );
    assert!(
        greeting.contains("STARTTLS"),
        "plaintext IMAP must offer STARTTLS: {greeting:?}"
    );

    let mut pop3 = plain(d.pop3_port()).await;
    let greeting = pop3.line().await;
    assert!(greeting.starts_with("+OK "), "POP3 greeting: {greeting:?}");
    assert!(
        greeting.contains(d.id()),
        "POP3 greeting lacks the instance id: {greeting:?}"
    );

    assert_eq!(d.host(), "127.0.0.1");
    let ports: HashSet<u16> = [d.imap_port(), d.imaps_port(), d.pop3_port(), d.pop3s_port()].into();
    assert_eq!(ports.len(), 4, "the four ports must differ");
}

#[tokio::test]
async fn implicit_tls_ports_handshake_with_the_test_ca_for_both_names() {
    let d = dovecot();
    let config = d.tls_config();
    for name in ["localhost", "127.0.0.1"] {
        let mut imaps = tls(d.imaps_port(), name, &config)
            .await
            .expect("IMAPS handshake with the test CA");
        let greeting = imaps.line().await;
        assert!(
            greeting.starts_with("* OK ") && greeting.contains(d.id()),
            "IMAPS greeting: {greeting:?}"
        );
        assert!(
            !greeting.contains("STARTTLS"),
            "STARTTLS offered inside TLS: {greeting:?}"
        );
    }
    let mut pop3s = tls(d.pop3s_port(), "localhost", &config)
        .await
        .expect("POP3S handshake with the test CA");
    let greeting = pop3s.line().await;
    assert!(
        greeting.starts_with("+OK ") && greeting.contains(d.id()),
        "POP3S greeting: {greeting:?}"
    );
}

#[tokio::test]
async fn tls_without_the_test_ca_fails_with_the_tls_error_kind() {
    let d = dovecot();
    for port in [d.imaps_port(), d.pop3s_port()] {
        let err = match tls(port, "localhost", &TlsConfig::default()).await {
            Ok(_) => panic!("TLS to port {port} succeeded without trusting the test CA"),
            Err(e) => e,
        };
        assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
    }
    // A CA from another instance does not vouch for this one either.
    let other = Dovecot::start();
    let err = match tls(d.imaps_port(), "localhost", &other.tls_config()).await {
        Ok(_) => panic!("another instance's CA was accepted"),
        Err(e) => e,
    };
    assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
}

#[tokio::test]
async fn starttls_and_stls_upgrade_the_plaintext_ports() {
    let d = dovecot();
    let user = d.unique_user("starttls");
    let connector = TlsConnector::new(&d.tls_config()).unwrap();

    let mut p = plain(d.imap_port()).await;
    p.line().await;
    assert!(tagged_ok(&p.imap("s", "STARTTLS").await));
    let stream = within(
        "STARTTLS handshake",
        connector.connect("localhost", p.into_inner()),
    )
    .await;
    let mut p = Peer::new(stream.expect("STARTTLS handshake with the test CA"));
    let login = p
        .imap(
            "l",
            &format!("LOGIN {} {}", user.name, imap_quote(&user.password)),
        )
        .await;
    assert!(tagged_ok(&login), "LOGIN after STARTTLS: {login:?}");

    let mut p = plain(d.pop3_port()).await;
    p.line().await;
    p.send(b"STLS\r\n").await;
    assert!(p.line().await.starts_with("+OK"));
    let stream = within("STLS handshake", connector.connect("127.0.0.1", p.into_inner())).await;
    let mut p = Peer::new(stream.expect("STLS handshake with the test CA"));
    p.send(b"CAPA\r\n").await;
    assert!(p.line().await.starts_with("+OK"));
}

#[tokio::test]
async fn user_added_after_start_logs_in_at_once_over_imap_and_pop3() {
    let d = dovecot();
    // Keep the auth process busy with another user so its passwd-file caching is exercised.
    let other = d.unique_user("busy");
    assert!(imap_login(d, &other.name, &other.password).await);
    for _ in 0..3 {
        let user = d.unique_user("fresh");
        assert!(
            imap_login(d, &user.name, &user.password).await,
            "new user {} rejected over IMAP",
            user.name
        );
        assert!(
            pop3_login(d, &user.name, &user.password).await,
            "new user {} rejected over POP3",
            user.name
        );
        assert!(
            !imap_login(d, &user.name, "wrong password").await,
            "wrong password accepted"
        );
    }
    assert!(
        !imap_login(d, "nobody-like-this", "x").await,
        "unknown user accepted"
    );
}

#[tokio::test]
async fn changed_password_replaces_the_old_one() {
    let d = dovecot();
    let user = d.unique_user("chpw");
    assert!(imap_login(d, &user.name, &user.password).await);
    // Same length as the old password and within the same second: the hardest case for
    // Dovecot's mtime+size change detection.
    let new_password: String = user.password.chars().rev().collect();
    assert_eq!(new_password.len(), user.password.len());
    let changed = d.change_password(&user, &new_password);
    assert_eq!(changed.password, new_password);
    assert!(
        imap_login(d, &user.name, &new_password).await,
        "new password rejected"
    );
    assert!(
        !imap_login(d, &user.name, &user.password).await,
        "old password still accepted"
    );
}

#[tokio::test]
async fn passwords_with_special_characters_are_accepted() {
    let d = dovecot();
    let password = "p@ss:wörd \"quoted\" \\ back%slash 密码";
    let user = d.add_user(&format!("special-{}", std::process::id()), password);
    assert!(d.password_accepted(&user, password));
    assert!(!d.password_accepted(&user, "p@ss"));

    // LOGIN with a synchronising literal (8-bit and quotes).
    let mut p = plain(d.imap_port()).await;
    p.line().await;
    p.send(format!("a LOGIN {} {{{}}}\r\n", user.name, password.len()).as_bytes())
        .await;
    assert!(p.line().await.starts_with('+'), "no literal continuation");
    p.send(password.as_bytes()).await;
    p.send(b"\r\n").await;
    let line = p.line().await;
    assert!(
        line.starts_with("a OK"),
        "LOGIN with a literal password: {line:?}"
    );

    // AUTHENTICATE PLAIN with an initial response.
    let mut p = plain(d.imap_port()).await;
    p.line().await;
    let ir = STANDARD.encode(format!("\0{}\0{password}", user.name));
    assert!(tagged_ok(&p.imap("b", &format!("AUTHENTICATE PLAIN {ir}")).await));
}

#[tokio::test]
async fn xoauth2_tokens_are_checked_and_passwords_still_work() {
    let d = dovecot();
    let user = d.unique_user("oauth");
    let other = d.unique_user("oauth-other");
    let token = d.oauth2_token(&user);
    assert!(
        xoauth2_login(d, &user.name, &token).await,
        "a valid token was refused:\n{}",
        d.log_tail(15)
    );
    assert!(
        !xoauth2_login(d, &other.name, &token).await,
        "a token for another user was accepted"
    );
    let mut tampered = token.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    assert!(
        !xoauth2_login(d, &user.name, &tampered).await,
        "a token with a bad signature was accepted"
    );
    let expired = d.oauth2_token_expiring(&user, SystemTime::now() - Duration::from_secs(60));
    assert!(
        !xoauth2_login(d, &user.name, &expired).await,
        "an expired token was accepted"
    );
    assert!(
        !xoauth2_login(d, &user.name, &user.password).await,
        "XOAUTH2 accepted the password as a token"
    );
    // Passwords keep working beside the oauth2 passdb; a token is no password.
    assert!(imap_login(d, &user.name, &user.password).await);
    assert!(
        !imap_login(d, &user.name, &token).await,
        "LOGIN accepted a token as the password"
    );
}

#[test]
fn seeded_messages_keep_flags_keywords_and_received_date() {
    let d = dovecot();
    let user = d.unique_user("flags");
    let dates = [
        sample_date(1),
        sample_date(2),
        UNIX_EPOCH + Duration::from_secs(1_000_000_000),
    ];
    let n = d.seed(
        &user,
        "INBOX",
        [
            SeedMessage::new(sample_message(1, 100))
                .with_flags(&["\\Seen", "$Forwarded", "Work"])
                .received_at(dates[0]),
            SeedMessage::new(sample_message(2, 100))
                .with_flags(&[])
                .received_at(dates[1]),
            SeedMessage::new(sample_message(3, 100))
                .with_flags(&["\\Answered", "\\Flagged", "\\Deleted", "\\Draft", "Work", "Later"])
                .received_at(dates[2]),
        ],
    );
    assert_eq!(n, 3);
    // Keywords added by a later seed call are merged with the existing ones.
    d.seed(
        &user,
        "INBOX",
        [SeedMessage::new(sample_message(4, 10))
            .with_flags(&["$Junk", "Work"])
            .received_at(dates[0])],
    );

    let rows = d.fetch(
        &user,
        "INBOX",
        "uid flags date.received.unixtime date.received size.physical",
        &["all"],
    );
    assert_eq!(rows.len(), 4, "{rows:?}");
    let flags = |i: usize| -> BTreeSet<String> {
        rows[i]["flags"]
            .split(' ')
            .filter(|f| *f != "\\Recent")
            .map(str::to_owned)
            .collect()
    };
    let set = |v: &[&str]| -> BTreeSet<String> { v.iter().map(|s| s.to_string()).collect() };
    assert_eq!(flags(0), set(&["\\Seen", "$Forwarded", "Work"]));
    assert_eq!(flags(1), set(&[]));
    assert_eq!(
        flags(2),
        set(&["\\Answered", "\\Flagged", "\\Deleted", "\\Draft", "Work", "Later"])
    );
    assert_eq!(flags(3), set(&["$Junk", "Work"]));
    for (i, date) in dates.iter().enumerate() {
        assert_eq!(
            rows[i]["date.received.unixtime"],
            unix_secs(*date).to_string(),
            "message {i}"
        );
    }
    assert_eq!(
        rows[0]["date.received"], "2020-01-01 01:00:07",
        "doveadm prints UTC"
    );
    assert_eq!(rows[2]["date.received"], "2001-09-09 01:46:40");
    assert_eq!(rows[0]["size.physical"], sample_message(1, 100).len().to_string());
    let uids: Vec<&str> = rows.iter().map(|r| r["uid"].as_str()).collect();
    assert_eq!(uids, ["1", "2", "3", "4"]);
}

#[tokio::test]
async fn seeded_message_is_served_byte_for_byte_over_imap_and_pop3() {
    let d = dovecot();
    let user = d.unique_user("bytes");
    let raw = sample_message(42, 3_000);
    d.seed(
        &user,
        "INBOX",
        [SeedMessage::new(raw.clone())
            .with_flags(&["\\Seen"])
            .received_at(sample_date(42))],
    );

    let mut p = tls(d.imaps_port(), "localhost", &d.tls_config())
        .await
        .expect("IMAPS");
    p.line().await;
    assert!(tagged_ok(
        &p.imap(
            "a",
            &format!("LOGIN {} {}", user.name, imap_quote(&user.password))
        )
        .await
    ));
    assert!(tagged_ok(&p.imap("b", "SELECT INBOX").await));
    p.send(b"c UID FETCH 1 (RFC822.SIZE INTERNALDATE BODY.PEEK[])\r\n")
        .await;
    let head = p.line().await;
    assert!(head.contains(&format!("RFC822.SIZE {}", raw.len())), "{head:?}");
    assert!(
        head.contains("INTERNALDATE \"02-Jan-2020 18:00:07 +0000\""),
        "{head:?}"
    );
    let len: usize = head
        .trim_end()
        .strip_suffix('}')
        .and_then(|h| h.rsplit_once('{'))
        .map(|(_, n)| n.parse().unwrap())
        .unwrap_or_else(|| panic!("no literal in {head:?}"));
    let body = p.exact(len).await;
    assert_eq!(
        sha256_hex(&body),
        sha256_hex(&raw),
        "IMAP returned different bytes"
    );
    p.line().await; // ")"
    let done = p.line().await;
    assert!(done.starts_with("c OK"), "{done:?}");

    // POP3 RETR returns the same bytes once dot-stuffing is undone.
    let mut p = plain(d.pop3_port()).await;
    p.line().await;
    p.send(format!("USER {}\r\nPASS {}\r\nRETR 1\r\n", user.name, user.password).as_bytes())
        .await;
    for _ in 0..3 {
        let line = p.line().await;
        assert!(line.starts_with("+OK"), "{line:?}");
    }
    let mut got = Vec::new();
    loop {
        let line = p.line().await;
        if line == ".\r\n" {
            break;
        }
        got.extend_from_slice(line.strip_prefix('.').unwrap_or(&line).as_bytes());
    }
    assert_eq!(
        sha256_hex(&got),
        sha256_hex(&raw),
        "POP3 returned different bytes"
    );
}

#[test]
fn seeded_messages_get_uids_in_seed_order() {
    let d = dovecot();
    let user = d.unique_user("order");
    d.seed(
        &user,
        "Archive",
        (0..150).map(|i| SeedMessage::new(sample_message(i, 50))),
    );
    // The mailbox is indexed now; a second batch must land after the first.
    assert_eq!(d.message_count(&user, "Archive"), 150);
    d.seed(
        &user,
        "Archive",
        (150..300).map(|i| SeedMessage::new(sample_message(i, 50))),
    );
    let rows = d.fetch(&user, "Archive", "uid hdr.subject", &["all"]);
    assert_eq!(rows.len(), 300);
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row["uid"], (i + 1).to_string());
        assert_eq!(row["hdr.subject"], format!("Test message {i}"));
    }
}

#[tokio::test]
async fn mailboxes_list_with_special_use_and_utf8_names() {
    let d = dovecot();
    let user = d.unique_user("list");
    d.create_mailbox(&user, "Projekte/Größe");
    d.seed(&user, "已发送/旧", [SeedMessage::new(sample_message(7, 10))]);
    assert_eq!(d.message_count(&user, "已发送/旧"), 1);
    let names: BTreeSet<String> = d.mailboxes(&user).into_iter().collect();
    for name in [
        "INBOX",
        "Sent",
        "Drafts",
        "Trash",
        "Junk",
        "Archive",
        "Projekte/Größe",
        "已发送",
        "已发送/旧",
    ] {
        assert!(names.contains(name), "{name} missing from {names:?}");
    }
    assert!(
        d.mailbox_dir(&user, "Projekte/Größe")
            .starts_with(d.maildir_of(&user))
    );

    let mut p = plain(d.imap_port()).await;
    p.line().await;
    assert!(tagged_ok(
        &p.imap(
            "a",
            &format!("LOGIN {} {}", user.name, imap_quote(&user.password))
        )
        .await
    ));
    let list = p.imap("b", "LIST \"\" \"*\"").await.concat();
    for (attr, name) in [
        ("\\Sent", "Sent"),
        ("\\Drafts", "Drafts"),
        ("\\Trash", "Trash"),
        ("\\Junk", "Junk"),
        ("\\Archive", "Archive"),
    ] {
        assert!(
            list.lines()
                .any(|l| l.contains(attr) && l.ends_with(&format!("\"/\" {name}"))),
            "{attr} {name} not in LIST:\n{list}"
        );
    }
    // Modified UTF-7 on the wire for a client that did not ENABLE UTF8=ACCEPT.
    assert!(list.contains("Projekte/Gr&APYA3w-e"), "{list}");
}

#[test]
fn bulk_seed_of_5000_messages_is_fully_indexed() {
    let d = dovecot();
    let user = d.unique_user("bulk");
    let started = Instant::now();
    let n = d.seed(
        &user,
        "INBOX",
        (0..5_000).map(|i| {
            SeedMessage::new(sample_message(i, 500))
                .with_flags(&["\\Seen"])
                .received_at(sample_date(i))
        }),
    );
    let seeded = started.elapsed();
    assert_eq!(n, 5_000);
    assert_eq!(d.message_count(&user, "INBOX"), 5_000);
    // Informational only (speed goals live in benches/).
    eprintln!(
        "seeded 5000 messages in {seeded:?}; indexed after {:?}",
        started.elapsed()
    );
}

#[test]
fn seed_via_doveadm_save_delivers_one_message() {
    let d = dovecot();
    let user = d.unique_user("save");
    let raw = sample_message(9, 200);
    d.seed_via_doveadm_save(&user, "Drafts", &raw);
    let rows = d.fetch(&user, "Drafts", "uid size.virtual hdr.message-id", &["all"]);
    assert_eq!(rows.len(), 1);
    // doveadm save stores LF line endings; the CRLF (virtual) size is what IMAP reports.
    assert_eq!(rows[0]["size.virtual"], raw.len().to_string());
    assert_eq!(rows[0]["hdr.message-id"], "<sample-9-200@mailmigrate.test>");
}

#[test]
#[should_panic(expected = "Mailbox doesn't exist")]
fn doveadm_ok_panics_with_doveadms_stderr() {
    let d = dovecot();
    let user = d.unique_user("missing");
    d.doveadm_ok(&[
        "mailbox",
        "status",
        "-u",
        &user.name,
        "messages",
        "No such mailbox",
    ]);
}

#[test]
fn doveadm_runs_against_this_instance() {
    let d = dovecot();
    let out = d.doveadm_ok(&["config", "-h", "base_dir"]);
    assert_eq!(Path::new(out.trim()), d.dir().join("run"));
    assert!(d.config_path().starts_with(d.dir()));
    let conf = fs::read_to_string(d.config_path()).unwrap();
    assert!(conf.contains(&format!("port = {}", d.imap_port())));
}

#[test]
fn shared_instance_is_started_once() {
    assert!(std::ptr::eq(dovecot(), Dovecot::shared()));
    assert!(!dovecot().pids().is_empty());
}

#[tokio::test]
async fn two_instances_run_side_by_side() {
    let a = Dovecot::start();
    let b = Dovecot::start();
    assert_ne!(a.dir(), b.dir());
    assert_ne!(a.imap_port(), b.imap_port());
    let user = a.unique_user("side");
    assert!(imap_login(&a, &user.name, &user.password).await);
    assert!(
        !imap_login(&b, &user.name, &user.password).await,
        "a user of one instance exists in the other"
    );
    for d in [&a, &b] {
        let mut p = plain(d.imap_port()).await;
        assert!(p.line().await.contains(d.id()));
        let mut p = tls(d.pop3s_port(), "localhost", &d.tls_config())
            .await
            .expect("POP3S");
        assert!(p.line().await.contains(d.id()));
    }
}

#[tokio::test]
async fn dropped_instance_leaves_no_processes_listeners_or_files() {
    let d = Dovecot::start();
    let user = d.unique_user("drop");
    // Make Dovecot fork login and mail processes too, and keep a session open.
    let mut session = plain(d.imap_port()).await;
    session.line().await;
    assert!(tagged_ok(
        &session
            .imap(
                "a",
                &format!("LOGIN {} {}", user.name, imap_quote(&user.password))
            )
            .await
    ));
    let pids = d.pids();
    assert!(
        pids.len() >= 4,
        "expected master, helpers and an imap process, got {pids:?}"
    );
    let dir = d.dir().to_path_buf();
    let ports = [d.imap_port(), d.imaps_port(), d.pop3_port(), d.pop3s_port()];
    drop(d);
    let left: Vec<u32> = pids.iter().copied().filter(|&p| alive(p)).collect();
    assert!(left.is_empty(), "processes {left:?} outlived the drop");
    for port in ports {
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "port {port} still accepts"
        );
    }
    assert!(!dir.exists(), "{} was not removed", dir.display());
}

/// Runs in two roles: normally it re-runs this test binary as a child (with an env var
/// set) and checks that the child's shared instance dies with the child; in the child it
/// starts the shared instance and reports its processes and directory.
#[test]
fn shared_instance_is_stopped_when_the_test_process_exits() {
    const CHILD: &str = "MAILMIGRATE_HARNESS_WATCHDOG_CHILD";
    let name = "shared_instance_is_stopped_when_the_test_process_exits";
    if std::env::var_os(CHILD).is_some() {
        let d = dovecot();
        let user = d.unique_user("child");
        assert!(d.password_accepted(&user, &user.password));
        println!("\nPIDS={:?}", d.pids());
        println!("DIR={}", d.dir().display());
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .output()
        .expect("running the test binary as a child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let value = |key: &str| -> String {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("child printed no {key}:\n{stdout}"))
            .to_owned()
    };
    let pids: Vec<u32> = value("PIDS=")
        .trim_matches(|c| c == '[' || c == ']')
        .split(", ")
        .map(|p| p.parse().unwrap())
        .collect();
    assert!(!pids.is_empty());
    let dir = value("DIR=");
    wait_until(
        "the child's Dovecot processes are gone",
        Duration::from_secs(10),
        || pids.iter().all(|&p| !alive(p)),
    );
    wait_until(
        "the child's Dovecot directory is removed",
        Duration::from_secs(10),
        || !Path::new(&dir).exists(),
    );
}

/// Socket inodes of TCP listeners on this machine, with their local address.
fn tcp_listeners() -> Vec<(u64, String)> {
    let mut out = Vec::new();
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = fs::read_to_string(file) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() > 9 && f[3] == "0A" {
                out.push((f[9].parse().unwrap(), f[1].to_owned()));
            }
        }
    }
    out
}

#[test]
fn instance_listens_only_on_its_four_loopback_ports() {
    let d = Dovecot::start();
    let mut inodes = HashSet::new();
    for pid in d.pids() {
        let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(target) = fs::read_link(fd.path()) {
                let t = target.to_string_lossy().into_owned();
                if let Some(inode) = t.strip_prefix("socket:[").and_then(|s| s.strip_suffix(']')) {
                    inodes.insert(inode.parse::<u64>().unwrap());
                }
            }
        }
    }
    let ours: BTreeSet<String> = tcp_listeners()
        .into_iter()
        .filter(|(inode, _)| inodes.contains(inode))
        .map(|(_, a)| a)
        .collect();
    // /proc/net/tcp: little-endian IPv4 "0100007F" is 127.0.0.1, port in hex.
    let expected: BTreeSet<String> = [d.imap_port(), d.imaps_port(), d.pop3_port(), d.pop3s_port()]
        .into_iter()
        .map(|p| format!("0100007F:{p:04X}"))
        .collect();
    assert_eq!(ours, expected);
}

#[test]
fn sample_message_is_deterministic_crlf_and_exactly_sized() {
    for body_len in [0, 1, 2, 3, 77, 500, 4_096, 100_000] {
        let m = sample_message(5, body_len);
        assert_eq!(m, sample_message(5, body_len), "not deterministic");
        let split = m
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("header/body separator")
            + 4;
        let (header, body) = m.split_at(split);
        assert_eq!(body.len(), body_len, "body size for {body_len}");
        for (i, &b) in m.iter().enumerate() {
            if b == b'\n' {
                assert!(i > 0 && m[i - 1] == b'\r', "bare LF at {i} (body_len {body_len})");
            }
            if b == b'\r' {
                assert_eq!(m.get(i + 1), Some(&b'\n'), "bare CR at {i}");
            }
        }
        if body_len >= 2 {
            assert!(body.ends_with(b"\r\n"));
        }
        let header = std::str::from_utf8(header).unwrap();
        for field in [
            "From: ",
            "To: ",
            "Subject: Test message 5\r\n",
            "Date: Wed, 01 Jan 2020 05:00:07 +0000\r\n",
            "Message-ID: <sample-5-",
        ] {
            assert!(header.contains(field), "{field:?} missing in {header}");
        }
        assert!(header.is_ascii());
        assert!(
            m.split(|&b| b == b'\n').all(|l| l.len() <= 1_000),
            "line over 998 chars"
        );
    }
    let big = sample_message(12, 4_096);
    let text = String::from_utf8(big).expect("UTF-8 body");
    assert!(text.contains("\r\n.\r\n"), "no lone-dot line");
    assert!(text.contains("\r\n.A line"), "no dot-led line");
    assert!(text.contains("\r\n..Two dots"), "no double-dot line");
    assert!(text.contains("\r\nFrom here"), "no From_ line");
    assert!(text.contains("Grüße") && text.contains("你好") && text.contains("Привет"));
    assert_ne!(sample_message(1, 100), sample_message(2, 100));
    // Dates: one hour apart, 7 s past the hour, starting 2020-01-01T00:00:07Z.
    assert_eq!(unix_secs(sample_date(0)), 1_577_836_807);
    assert!(
        String::from_utf8(sample_message(24 * 366 + 59 * 24, 0))
            .unwrap()
            .contains("Date: Mon, 01 Mar 2021 00:00:07 +0000")
    );
}

#[test]
fn sha256_hex_and_hmac_sha256_match_published_vectors() {
    assert_eq!(
        sha256_hex(b"abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    // RFC 4231 test cases 1, 2 and 6 (a key longer than the block size).
    assert_eq!(
        hex(&hmac_sha256(&[0x0b; 20], b"Hi There")),
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
    );
    assert_eq!(
        hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    assert_eq!(
        hex(&hmac_sha256(
            &[0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First"
        )),
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
    );
}

#[cfg(feature = "tokio")]
#[tokio::test]
async fn server_configs_reach_the_instance_through_the_crate_connector() {
    use mailmigrate::net::Security;
    use support::Proto;
    let d = dovecot();
    for (proto, security, greeting) in [
        (Proto::Imap, Security::Tls, "* OK"),
        (Proto::Imap, Security::StartTls, "* OK"),
        (Proto::Imap, Security::Plaintext, "* OK"),
        (Proto::Pop3, Security::Tls, "+OK"),
        (Proto::Pop3, Security::StartTls, "+OK"),
    ] {
        let server = d.server(proto, security);
        assert_eq!(server.host, "127.0.0.1");
        let stream = mailmigrate::net::connect(&server)
            .await
            .unwrap_or_else(|e| panic!("{server}: {e}"));
        assert_eq!(stream.is_tls(), security == Security::Tls);
        let mut p = Peer::new(stream);
        let line = p.line().await;
        assert!(
            line.starts_with(greeting) && line.contains(d.id()),
            "{proto:?} {security:?}: {line:?}"
        );
    }
}
