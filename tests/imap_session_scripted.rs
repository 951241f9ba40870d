//! The IMAP session against byte-exact scripted servers: greetings, hostile and broken
//! servers, provider quirks, and the exact bytes the client sends.

mod scripted;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use mailmigrate::imap::codec::{
    Code, Flag, InternalDate, KnownCode, MailboxName, NameAttribute, StatusAttribute,
};
use mailmigrate::imap::{
    AppendMessage, AppendUid, AuthMechanism, CommandFailed, FetchItems, IdleEvent, MultiAppendLimits,
    Session, SessionOptions, SessionState, Unsolicited,
};
use mailmigrate::net::{ManualClock, MaybeTls, Security, ServerConfig, Timer, TokioTimer};
use mailmigrate::{Credentials, ErrorKind, Uid, UidSet};
use scripted::{Step, expect, send, send_split};
use tokio::io::DuplexStream;
use tokio_util::compat::Compat;

type Stream = Compat<DuplexStream>;

const HOST: &str = "imap.scripted.test";

fn server(security: Security) -> ServerConfig {
    ServerConfig::new(HOST, 143, security).with_timeout(Duration::from_secs(10))
}

fn timer() -> Arc<dyn Timer> {
    Arc::new(TokioTimer)
}

fn no_id() -> SessionOptions {
    SessionOptions {
        send_id: false,
        ..SessionOptions::default()
    }
}

async fn open(script: Vec<Step>) -> (Session<Stream>, scripted::Peer) {
    open_with(script, no_id()).await
}

async fn open_with(script: Vec<Step>, options: SessionOptions) -> (Session<Stream>, scripted::Peer) {
    let (stream, peer) = scripted::start(script);
    let session = Session::from_stream(stream, &server(Security::Plaintext), timer(), options)
        .await
        .expect("greeting accepted");
    (session, peer)
}

/// Messages with these bodies, no flags, no date.
fn plain_messages(bodies: &[&'static str]) -> Vec<AppendMessage> {
    bodies
        .iter()
        .map(|m| AppendMessage {
            flags: vec![],
            internal_date: None,
            message: Bytes::from_static(m.as_bytes()),
        })
        .collect()
}

fn uids(text: &str) -> UidSet {
    text.parse().expect("uid set")
}

fn uid(n: u32) -> Uid {
    Uid::new(n).expect("non-zero")
}

const PREAUTH: &str = "* PREAUTH [CAPABILITY IMAP4rev1 IDLE UIDPLUS] scripted server ready\r\n";
const EXAMINE_INBOX: &str = "A0001 EXAMINE INBOX\r\n";
const INBOX_EXAMINED: &str = "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n\
* OK [PERMANENTFLAGS ()] Read-only mailbox.\r\n\
* 2 EXISTS\r\n\
* 0 RECENT\r\n\
* OK [UIDVALIDITY 1700000000] UIDs valid\r\n\
* OK [UIDNEXT 3] Predicted next UID\r\n\
A0001 OK [READ-ONLY] Examine completed.\r\n";

#[tokio::test]
async fn preauth_greeting_skips_login_and_the_session_works() {
    let (mut session, peer) = open(vec![
        send(PREAUTH),
        expect("A0001 NOOP\r\n"),
        send("A0001 OK NOOP completed\r\n"),
        expect("A0002 LOGOUT\r\n"),
        send("* BYE Logging out\r\nA0002 OK Logout completed.\r\n"),
    ])
    .await;
    assert!(session.greeting().preauth);
    assert_eq!(session.state(), SessionState::Authenticated);
    assert!(session.capabilities().has("IDLE"));
    // Nothing goes on the wire: the script would fail on a LOGIN.
    session
        .login(&Credentials::password("alice", "pw"))
        .await
        .expect("no-op after PREAUTH");
    session.noop().await.expect("noop");
    session.logout().await.expect("logout");
    peer.finish().await;
}

#[tokio::test]
async fn bye_greeting_is_a_transient_error_carrying_the_server_text() {
    let (stream, peer) = scripted::start(vec![send(
        "* BYE Too many connections from your IP, try later\r\n",
    )]);
    let err = Session::from_stream(stream, &server(Security::Plaintext), timer(), no_id())
        .await
        .expect_err("BYE greeting");
    assert_eq!(err.kind(), ErrorKind::Transient);
    assert!(err.to_string().contains("Too many connections"), "{err}");
    assert!(err.to_string().contains(HOST), "{err}");
    peer.finish().await;
}

#[tokio::test]
async fn a_non_imap_greeting_is_a_protocol_error() {
    let (stream, peer) = scripted::start(vec![send("+OK POP3 server ready\r\n")]);
    let err = Session::from_stream(stream, &server(Security::Plaintext), timer(), no_id())
        .await
        .expect_err("not IMAP");
    assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
    peer.finish().await;
}

#[tokio::test]
async fn starttls_required_but_not_advertised_fails_without_sending_anything() {
    let (stream, peer) = scripted::start(vec![send(
        "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] no tls here\r\n",
    )]);
    let err = Session::<MaybeTls<Stream>>::establish(stream, &server(Security::StartTls), timer(), no_id())
        .await
        .expect_err("must refuse to continue in the clear");
    assert_eq!(err.kind(), ErrorKind::Tls);
    assert!(err.to_string().contains("STARTTLS"), "{err}");
    peer.finish().await;
}

#[tokio::test]
async fn starttls_asks_for_capabilities_when_the_greeting_has_none() {
    let (stream, peer) = scripted::start(vec![
        send("* OK hello\r\n"),
        expect("A0001 CAPABILITY\r\n"),
        send("* CAPABILITY IMAP4rev1 LOGINDISABLED\r\nA0001 OK done\r\n"),
    ]);
    let err = Session::<MaybeTls<Stream>>::establish(stream, &server(Security::StartTls), timer(), no_id())
        .await
        .expect_err("no STARTTLS advertised");
    assert_eq!(err.kind(), ErrorKind::Tls);
    peer.finish().await;
}

#[tokio::test]
async fn plaintext_injected_after_the_starttls_ok_is_refused() {
    let (stream, peer) = scripted::start(vec![
        send("* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready\r\n"),
        expect("A0001 STARTTLS\r\n"),
        // An attacker appends a forged capability list to the server's OK.
        send("A0001 OK Begin TLS negotiation now.\r\n* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n"),
    ]);
    let err = Session::<MaybeTls<Stream>>::establish(stream, &server(Security::StartTls), timer(), no_id())
        .await
        .expect_err("injected bytes");
    assert_eq!(err.kind(), ErrorKind::Tls);
    assert!(err.to_string().contains("unencrypted"), "{err}");
    peer.finish().await;
}

#[tokio::test]
async fn starttls_refused_by_the_server_is_a_tls_error() {
    let (stream, peer) = scripted::start(vec![
        send("* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\n"),
        expect("A0001 STARTTLS\r\n"),
        send("A0001 NO [UNAVAILABLE] TLS not configured\r\n"),
    ]);
    let err = Session::<MaybeTls<Stream>>::establish(stream, &server(Security::StartTls), timer(), no_id())
        .await
        .expect_err("refused");
    assert_eq!(err.kind(), ErrorKind::Tls);
    peer.finish().await;
}

#[tokio::test]
async fn alert_and_unsolicited_exists_expunge_fetch_reach_the_caller_and_update_the_folder() {
    let (mut session, peer) = open(vec![
        send(PREAUTH),
        expect(EXAMINE_INBOX),
        send(INBOX_EXAMINED),
        expect("A0002 NOOP\r\n"),
        send(
            "* 1 EXPUNGE\r\n* OK [ALERT] Your mailbox is 95% full\r\n* 6 EXISTS\r\n* 3 FETCH (FLAGS (\\Seen))\r\n\
             * NO Disk is slow today\r\nA0002 OK NOOP completed\r\n",
        ),
    ])
    .await;
    let mailbox = session
        .examine(&MailboxName::from_raw("INBOX"))
        .await
        .expect("examine");
    assert_eq!(mailbox.exists, 2);
    assert_eq!(mailbox.uid_validity, Some(1_700_000_000));
    assert_eq!(mailbox.uid_next, Some(3));
    assert!(mailbox.read_only);
    assert_eq!(mailbox.flags.len(), 5);
    assert!(
        session.take_unsolicited().is_empty(),
        "EXAMINE's own data is not unsolicited"
    );

    session.noop().await.expect("noop");
    assert_eq!(
        session.take_unsolicited(),
        vec![
            Unsolicited::Expunge(1),
            Unsolicited::Alert("Your mailbox is 95% full".into()),
            Unsolicited::Exists(6),
            Unsolicited::Fetch {
                seq: 3,
                uid: None,
                flags: Some(vec![Flag::Seen]),
                modseq: None
            },
            Unsolicited::Warning("Disk is slow today".into()),
        ]
    );
    assert_eq!(session.selected().expect("selected").exists, 6);
    assert!(session.take_unsolicited().is_empty(), "drained");
    drop(session);
    peer.finish().await;
}

#[tokio::test]
async fn bye_during_a_command_fails_it_transiently_and_closes_the_session() {
    let (mut session, peer) = open(vec![
        send(PREAUTH),
        expect("A0001 NOOP\r\n"),
        send("* BYE [UNAVAILABLE] Server shutting down for maintenance\r\n"),
    ])
    .await;
    let err = session.noop().await.expect_err("BYE");
    assert_eq!(err.kind(), ErrorKind::Transient);
    assert!(err.to_string().contains("maintenance"), "{err}");
    assert!(session.is_closed());
    assert!(
        session
            .take_unsolicited()
            .contains(&Unsolicited::Bye("Server shutting down for maintenance".into()))
    );
    let again = session.noop().await.expect_err("closed");
    assert_eq!(again.kind(), ErrorKind::Transient);
    drop(session);
    peer.finish().await;
}

#[tokio::test]
async fn bye_mid_fetch_ends_the_stream_with_a_transient_error() {
    let (mut session, peer) = open(vec![
        send(PREAUTH),
        expect(EXAMINE_INBOX),
        send(INBOX_EXAMINED),
        expect("A0002 UID FETCH 1:2 (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])\r\n"),
        send(
            "* 1 FETCH (UID 1 FLAGS (\\Seen) INTERNALDATE \"01-Jan-2024 10:00:00 +0800\" RFC822.SIZE 5 BODY[] {5}\r\nhello)\r\n\
             * BYE Server shutting down\r\n",
        ),
    ])
    .await;
    session
        .examine(&MailboxName::from_raw("INBOX"))
        .await
        .expect("examine");
    let mut fetch = session.fetch_messages(&uids("1:2")).await.expect("fetch started");
    let first = fetch.next().await.expect("one message").expect("ok");
    assert_eq!(first.uid, uid(1));
    assert_eq!(first.flags, vec![Flag::Seen]);
    assert_eq!(first.size, Some(5));
    assert_eq!(first.body.as_deref(), Some(&b"hello"[..]));
    assert_eq!(
        first.internal_date,
        Some(InternalDate {
            unix: 1_704_074_400,
            offset_minutes: 480
        })
    );
    let err = fetch.next().await.expect("an error item").expect_err("BYE");
    assert_eq!(err.kind(), ErrorKind::Transient);
    assert!(err.to_string().contains("shutting down"), "{err}");
    assert!(fetch.next().await.is_none(), "the stream ends after the BYE");
    drop(fetch);
    assert!(session.is_closed());
    drop(session);
    peer.finish().await;
}

#[tokio::test]
async fn a_literal_of_4294967295_bytes_is_a_protocol_error_not_an_allocation() {
    let (mut session, peer) = open(vec![
        send(PREAUTH),
        expect(EXAMINE_INBOX),
        send(INBOX_EXAMINED),
        expect("A0002 UID FETCH 1 (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])\r\n"),
        send("* 1 FETCH (UID 1 BODY[] {4294967295}\r\nxxxx"),
    ])
    .await;
    session
        .examine(&MailboxName::from_raw("INBOX"))
        .await
        .expect("examine");
    let mut fetch = session.fetch_messages(&uids("1")).await.expect("fetch started");
    let err = fetch
        .next()
        .await
        .expect("an error item")
        .expect_err("oversized literal");
    assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
    assert!(fetch.next().await.is_none());
    drop(fetch);
    assert!(session.is_closed(), "the stream cannot be resynchronised");
    drop(session);
    peer.finish().await;
}

#[tokio::test]
async fn a_message_cut_into_many_reads_arrives_byte_exact() {
    let body: Vec<u8> = (0..=255u8)
        .chain(b"\r\n.\r\n)\r\n* 9 EXISTS\r\n".iter().copied())
        .collect();
    let mut response = format!(
        "* 1 FETCH (UID 7 FLAGS (\\Seen $Forwarded) INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" RFC822.SIZE {n} BODY[] {{{n}}}\r\n",
        n = body.len()
    )
    .into_bytes();
    response.extend_from_slice(&body);
    response.extend_from_slice(b")\r\nA0002 OK Fetch completed.\r\n");
    // Cuts inside the literal header, between CR and LF, inside the literal and the tag.
    let header_len = response.len() - body.len() - b")\r\nA0002 OK Fetch completed.\r\n".len();
    let cuts = [
        1,
        10,
        header_len - 4,
        header_len - 1,
        header_len + 13,
        header_len + 256,
        response.len() - 5,
    ];
    let (mut session, peer) = open(vec![
        send(PREAUTH),
        expect(EXAMINE_INBOX),
        send(INBOX_EXAMINED),
        expect("A0002 UID FETCH 7 (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])\r\n"),
        send_split(&response, &cuts),
    ])
    .await;
    session
        .examine(&MailboxName::from_raw("INBOX"))
        .await
        .expect("examine");
    let messages: Vec<_> = session
        .fetch_messages(&uids("7"))
        .await
        .expect("fetch started")
        .into_stream()
        .collect()
        .await;
    assert_eq!(messages.len(), 1);
    let message = messages.into_iter().next().expect("one").expect("ok");
    assert_eq!(message.body.as_deref(), Some(&body[..]));
    assert_eq!(
        message.flags,
        vec![Flag::Seen, Flag::Keyword("$Forwarded".into())]
    );
    assert_eq!(message.size, Some(body.len() as u32));
    assert!(
        session.take_unsolicited().is_empty(),
        "the body's text is not a response"
    );
    drop(session);
    peer.finish().await;
}

#[tokio::test]
async fn a_flag_update_during_uid_fetch_goes_to_the_queue_not_the_stream() {
    let (mut session, peer) = open(vec![
        send(PREAUTH),
        expect(EXAMINE_INBOX),
        send(INBOX_EXAMINED),
        expect("A0002 UID FETCH 1:2 (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])\r\n"),
        send(
            "* 1 FETCH (UID 1 FLAGS () INTERNALDATE \"01-Jan-2024 10:00:00 +0000\" RFC822.SIZE 3 BODY[] {3}\r\none)\r\n\
             * 2 FETCH (FLAGS (\\Deleted))\r\n\
             * 2 FETCH (UID 2 FLAGS (\\Deleted) INTERNALDATE \"01-Jan-2024 10:00:00 +0000\" RFC822.SIZE 3 BODY[] {3}\r\ntwo)\r\n\
             * 40 FETCH (UID 99 FLAGS (\\Flagged))\r\n\
             A0002 OK Fetch completed.\r\n",
        ),
    ])
    .await;
    session
        .examine(&MailboxName::from_raw("INBOX"))
        .await
        .expect("examine");
    let mut fetch = session.fetch_messages(&uids("1:2")).await.expect("fetch");
    let mut got = Vec::new();
    while let Some(message) = fetch.next().await {
        let message = message.expect("ok");
        got.push((message.uid.get(), message.body.expect("body")));
    }
    drop(fetch);
    assert_eq!(
        got,
        vec![(1, Bytes::from_static(b"one")), (2, Bytes::from_static(b"two"))]
    );
    assert_eq!(
        session.take_unsolicited(),
        vec![Unsolicited::Fetch {
            seq: 40,
            uid: Some(uid(99)),
            flags: Some(vec![Flag::Flagged]),
            modseq: None
        }],
        "the split flag part merged into message 2; UID 99 was not asked for"
    );
    drop(session);
    peer.finish().await;
}

#[tokio::test]
async fn dropping_a_fetch_stream_early_drains_it_before_the_next_command() {
    let (mut session, peer) = open(vec![
        send(PREAUTH),
        expect(EXAMINE_INBOX),
        send(INBOX_EXAMINED),
        expect("A0002 UID FETCH 1:2 (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])\r\n"),
        send("* 1 FETCH (UID 1 FLAGS () RFC822.SIZE 3 BODY[] {3}\r\none)\r\n"),
        send("* 2 FETCH (UID 2 FLAGS () RFC822.SIZE 3 BODY[] {3}\r\ntwo)\r\nA0002 OK Fetch completed.\r\n"),
        expect("A0003 NOOP\r\n"),
        send("A0003 OK NOOP completed\r\n"),
    ])
    .await;
    session
        .examine(&MailboxName::from_raw("INBOX"))
        .await
        .expect("examine");
    {
        let mut fetch = session.fetch_messages(&uids("1:2")).await.expect("fetch");
        let first = fetch.next().await.expect("one").expect("ok");
        assert_eq!(first.uid, uid(1));
    }
    session.noop().await.expect("the session is back in step");
    drop(session);
    peer.finish().await;
}

#[tokio::test]
async fn a_refused_login_names_the_account_and_never_the_password() {
    let (mut session, peer) = open(vec![
        send("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready\r\n"),
        expect("A0001 LOGIN \"alice@example.com\" \"hunter2-Secret\"\r\n"),
        send("A0001 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"),
    ])
    .await;
    let err = session
        .login(&Credentials::password("alice@example.com", "hunter2-Secret"))
        .await
        .expect_err("wrong password");
    assert_eq!(err.kind(), ErrorKind::Auth);
    let text = format!("{err} {err:?}");
    assert!(text.contains("alice@example.com"), "{text}");
    assert!(text.contains(HOST), "{text}");
    assert!(text.contains("app password"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
    let failed = CommandFailed::of(&err).expect("server answer attached");
    assert!(failed.has_code(KnownCode::AuthenticationFailed));
    drop(session);
    peer.finish().await;
}

#[tokio::test]
async fn login_disabled_falls_back_to_authenticate_plain_with_sasl_ir() {
    let (mut session, peer) = open(vec![
        send("* OK [CAPABILITY IMAP4rev1 LOGINDISABLED AUTH=PLAIN SASL-IR] ready\r\n"),
        // base64("\0bob\0pw")
        expect("A0001 AUTHENTICATE PLAIN AGJvYgBwdw==\r\n"),
        send("A0001 OK [CAPABILITY IMAP4rev1 IDLE] Logged in\r\n"),
    ])
    .await;
    session
        .login(&Credentials::password("bob", "pw"))
        .await
        .expect("login");
    assert_eq!(session.state(), SessionState::Authenticated);
    assert!(
        session.capabilities().has("IDLE"),
        "capabilities from the OK replace the old ones"
    );
    assert!(!session.capabilities().has("LOGINDISABLED"));
    drop(session);
    peer.finish().await;
}

#[tokio::test]
async fn authenticate_plain_without_sasl_ir_waits_for_the_continuation() {
    let (mut session, peer) = open(vec![
        send("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready\r\n"),
        expect("A0001 AUTHENTICATE PLAIN\r\n"),
        send("+ \r\n"),
        expect("AGJvYgBwdw==\r\n"),
        send("A0001 OK Logged in\r\n"),
        expect("A0002 CAPABILITY\r\n"),
        send("* CAPABILITY IMAP4rev1 IDLE NAMESPACE\r\nA0002 OK done\r\n"),
    ])
    .await;
    session
        .authenticate_with(&Credentials::password("bob", "pw"), AuthMechanism::Plain)
        .await
        .expect("login");
    assert!(session.capabilities().has("NAMESPACE"), "asked again after login");
    drop(session);
    peer.finish().await;
}

#[tokio::test]
async fn xoauth2_failure_challenge_is_answered_and_classified_as_auth() {
    use base64::Engine;
    let token = "ya29.a0-Very-Secret-Token";
    let ir = base64::engine::general_purpose::STANDARD
        .encode(format!("user=bob@example.com\x01auth=Bearer {token}\x01\x01"));
    let json = base64::engine::general_purpose::STANDARD
        .encode(r#"{"status":"401","schemes":"Bearer","scope":"https://mail.google.com/"}"#);
    let (mut session, peer) = open(vec![
        send("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2 AUTH=PLAIN] Gimap ready\r\n"),
        expect(format!("A0001 AUTHENTICATE XOAUTH2 {ir}\r\n")),
        send(format!("+ {json}\r\n")),
        expect("\r\n"),
        send("A0001 NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)\r\n"),
    ])
    .await;
    let err = session
        .login(&Credentials::oauth2("bob@example.com", token))
        .await
        .expect_err("expired token");
    assert_eq!(err.kind(), ErrorKind::Auth);
    let text = format!("{err} {err:?}");
    assert!(text.contains("bob@example.com"), "{text}");
    assert!(text.contains("401"), "the server's JSON is shown: {text}");
    assert!(text.contains("token"), "{text}");
    assert!(!text.contains("ya29"), "{text}");
    drop(session);
    peer.finish().await;
}

#[tokio::test]
async fn xoauth2_without_sasl_ir_sends_the_token_after_the_continuation() {
    use base64::Engine;
    let ir =
        base64::engine::general_purpose::STANDARD.encode("user=bob@example.com\x01auth=Bearer tok\x01\x01");
    let (mut session, peer) = open(vec![
        send("* OK [CAPABILITY IMAP4rev1 AUTH=XOAUTH2] ready\r\n"),
        expect("A0001 AUTHENTICATE XOAUTH2\r\n"),
        send("+ \r\n"),
        expect(format!("{ir}\r\n")),
        send("A0001 OK [CAPABILITY IMAP4rev1 IDLE] Success\r\n"),
    ])
    .await;
    session
        .login(&Credentials::oauth2("bob@example.com", "tok"))
        .await
        .expect("login");
    assert_eq!(session.user(), Some("bob@example.com"));
    drop(session);
    peer.finish().await;
}

#[tokio::test]
async fn id_is_sent_after_login_when_advertised_for_netease() {
    let version = env!("CARGO_PKG_VERSION");
    let (stream, peer) = scripted::start(vec![
        send("* OK [CAPABILITY IMAP4rev1 ID AUTH=LOGIN] Coremail System IMap Server Ready\r\n"),
        expect("A0001 LOGIN \"user@163.com\" \"authcode\"\r\n"),
        send("A0001 OK LOGIN completed\r\n"),
        expect("A0002 CAPABILITY\r\n"),
        send("* CAPABILITY IMAP4rev1 ID IDLE UIDPLUS\r\nA0002 OK CAPABILITY completed\r\n"),
        expect(format!(
            "A0003 ID (\"name\" \"mailmigrate\" \"version\" \"{version}\")\r\n"
        )),
        send("* ID (\"name\" \"Coremail Imap\" \"vendor\" \"Mailtech\")\r\nA0003 OK ID completed\r\n"),
        expect("A0004 SELECT INBOX\r\n"),
        send("* 0 EXISTS\r\n* OK [UIDVALIDITY 1] ok\r\nA0004 OK [READ-WRITE] SELECT completed\r\n"),
    ]);
    let mut session = Session::from_stream(
        stream,
        &server(Security::Plaintext),
        timer(),
        SessionOptions::default(),
    )
    .await
    .expect("greeting");
    session
        .login(&Credentials::password("user@163.com", "authcode"))
        .await
        .expect("login");
    let inbox = session
        .select(&MailboxName::from_raw("INBOX"))
        .await
        .expect("select after ID");
    assert!(!inbox.read_only);
    assert_eq!(inbox.exists, 0);
    drop(session);
    peer.finish().await;
}

#[tokio::test]
async fn append_waits_for_the_continuation_and_returns_the_appenduid() {
    let (mut session, peer) = open(vec![
        send(PREAUTH),
        expect("A0001 APPEND Archive (\\Seen $Work) \" 1-Jan-2024 10:00:00 +0800\" {5}\r\n"),
        send("+ Ready for literal data\r\n"),
        expect("hello\r\n"),
        send("* 3 EXISTS\r\nA0001 OK [APPENDUID 38505 3955] APPEND completed\r\n"),
        expect("A0002 APPEND Missing {5}\r\n"),
        send("A0002 NO [TRYCREATE] Mailbox doesn't exist: Missing\r\n"),
        expect("A0003 NOOP\r\n"),
        send("A0003 OK NOOP completed\r\n"),
    ])
    .await;
    let message = AppendMessage {
        flags: vec![Flag::Seen, Flag::Keyword("$Work".into()), Flag::Recent],
        internal_date: Some(InternalDate {
            unix: 1_704_074_400,
            offset_minutes: 480,
        }),
        message: Bytes::from_static(b"hello"),
    };
    let appended = session
        .append(&MailboxName::from_raw("Archive"), &message)
        .await
        .expect("append");
    assert_eq!(
        appended,
        Some(AppendUid {
            uid_validity: 38505,
            uid: uid(3955)
        })
    );
    assert_eq!(session.take_unsolicited(), vec![Unsolicited::Exists(3)]);

    let plain = AppendMessage {
        flags: vec![],
        internal_date: None,
        message: Bytes::from_static(b"hello"),
    };
    let err = session
        .append(&MailboxName::from_raw("Missing"), &plain)
        .await
        .expect_err("no such folder");
    assert_eq!(err.kind(), ErrorKind::TargetRefused);
    let failed = CommandFailed::of(&err).expect("server answer");
    assert_eq!(failed.code, Some(Code::TryCreate));
    session
        .noop()
        .await
        .expect("the literal was never sent, the stream is in step");
    drop(session);
    peer.finish().await;
}

#[tokio::test]
async fn append_many_pipelines_every_command_before_reading_under_literal_plus() {
    let (mut session, peer) = open(vec![
        send("* PREAUTH [CAPABILITY IMAP4rev1 LITERAL+ UIDPLUS] ready\r\n"),
        // All three arrive before the server says anything: no round trips.
        expect("A0001 APPEND INBOX {3+}\r\none\r\nA0002 APPEND INBOX {3+}\r\ntwo\r\nA0003 APPEND INBOX {5+}\r\nthree\r\n"),
        send(
            "A0001 OK [APPENDUID 7 1] done\r\n* 1 EXISTS\r\nA0002 NO [OVERQUOTA] Quota exceeded\r\n\
             A0003 OK [APPENDUID 7 2] done\r\n",
        ),
    ])
    .await;
    let messages = plain_messages(&["one", "two", "three"]);
    let results = session
        .append_many(&MailboxName::from_raw("INBOX"), &messages)
        .await
        .expect("connection fine");
    assert_eq!(results.len(), 3);
    assert_eq!(
        results[0].as_ref().expect("ok"),
        &Some(AppendUid {
            uid_validity: 7,
            uid: uid(1)
        })
    );
    assert_eq!(
        results[1].as_ref().expect_err("quota").kind(),
        ErrorKind::TargetRefused
    );
    assert_eq!(
        results[2].as_ref().expect("ok"),
        &Some(AppendUid {
            uid_validity: 7,
            uid: uid(2)
        })
    );
    drop(session);
    peer.finish().await;
}

#[tokio::test]
async fn append_many_in_batches_keeps_the_pipeline_bounded() {
    let (mut session, peer) = open_with(
        vec![
            send("* PREAUTH [CAPABILITY IMAP4rev1 LITERAL+] ready\r\n"),
            expect("A0001 APPEND INBOX {1+}\r\na\r\nA0002 APPEND INBOX {1+}\r\nb\r\n"),
            send("A0001 OK done\r\nA0002 OK done\r\n"),
            expect("A0003 APPEND INBOX {1+}\r\nc\r\n"),
            send("A0003 OK done\r\n"),
        ],
        SessionOptions {
            max_pipeline: 2,
            ..no_id()
        },
    )
    .await;
    let results = session
        .append_many(&MailboxName::from_raw("INBOX"), &plain_messages(&["a", "b", "c"]))
        .await
        .expect("ok");
    assert!(results.iter().all(|r| matches!(r, Ok(None))), "{results:?}");
    drop(session);
    peer.finish().await;
}

fn appended(uid_validity: u32, n: u32) -> Option<AppendUid> {
    Some(AppendUid {
        uid_validity,
        uid: uid(n),
    })
}

#[tokio::test]
async fn append_many_sends_one_multiappend_per_chunk_and_maps_the_appenduid_range_in_order() {
    let (mut session, peer) = open_with(
        vec![
            send("* PREAUTH [CAPABILITY IMAP4rev1 LITERAL+ UIDPLUS MULTIAPPEND] ready\r\n"),
            // Two messages per command; the 12-byte message is over max_bytes and goes alone.
            expect("A0001 APPEND INBOX {1+}\r\na {1+}\r\nb\r\n"),
            send("* 2 EXISTS\r\nA0001 OK [APPENDUID 7 10:11] done\r\n"),
            expect("A0002 APPEND INBOX {1+}\r\nc\r\n"),
            send("A0002 OK [APPENDUID 7 12] done\r\n"),
            expect("A0003 APPEND INBOX {12+}\r\nlarger one!!\r\n"),
            send("A0003 OK [APPENDUID 7 13] done\r\n"),
            // A set that does not match the messages' count says nothing about which is which.
            expect("A0004 APPEND INBOX {1+}\r\nd {1+}\r\ne\r\n"),
            send("A0004 OK [APPENDUID 7 20] done\r\n"),
        ],
        SessionOptions {
            multiappend: Some(MultiAppendLimits {
                max_messages: 2,
                max_bytes: 8,
            }),
            ..no_id()
        },
    )
    .await;
    let inbox = MailboxName::from_raw("INBOX");
    let first = plain_messages(&["a", "b", "c", "larger one!!"]);
    let results = session
        .append_many(&inbox, &first)
        .await
        .expect("connection fine");
    let uids: Vec<_> = results.into_iter().map(|r| r.expect("stored")).collect();
    assert_eq!(
        uids,
        vec![appended(7, 10), appended(7, 11), appended(7, 12), appended(7, 13)]
    );
    let second = session
        .append_many(&inbox, &plain_messages(&["d", "e"]))
        .await
        .expect("connection fine");
    assert!(second.iter().all(|r| matches!(r, Ok(None))), "{second:?}");
    drop(session);
    peer.finish().await;
}

#[tokio::test]
async fn a_refused_multiappend_is_retried_one_by_one_so_only_the_refused_message_fails() {
    let (mut session, peer) = open(vec![
        send("* PREAUTH [CAPABILITY IMAP4rev1 LITERAL+ UIDPLUS MULTIAPPEND] ready\r\n"),
        expect("A0001 APPEND INBOX {3+}\r\none {3+}\r\ntwo {5+}\r\nthree\r\n"),
        send("A0001 NO [LIMIT] One of the messages is too large\r\n"),
        expect("A0002 APPEND INBOX {3+}\r\none\r\nA0003 APPEND INBOX {3+}\r\ntwo\r\nA0004 APPEND INBOX {5+}\r\nthree\r\n"),
        send(
            "A0002 OK [APPENDUID 7 1] done\r\nA0003 NO [LIMIT] Message too large\r\n\
             A0004 OK [APPENDUID 7 2] done\r\n",
        ),
    ])
    .await;
    let results = session
        .append_many(
            &MailboxName::from_raw("INBOX"),
            &plain_messages(&["one", "two", "three"]),
        )
        .await
        .expect("connection fine");
    assert_eq!(results[0].as_ref().expect("stored"), &appended(7, 1));
    let refused = results[1].as_ref().expect_err("refused");
    assert_eq!(refused.kind(), ErrorKind::TargetRefused);
    assert!(refused.message().contains("too large"), "{refused}");
    assert_eq!(results[2].as_ref().expect("stored"), &appended(7, 2));
    drop(session);
    peer.finish().await;
}

#[tokio::test]
async fn a_multiappend_answered_trycreate_fails_every_message_without_retrying() {
    let (mut session, peer) = open(vec![
        send("* PREAUTH [CAPABILITY IMAP4rev1 LITERAL+ MULTIAPPEND] ready\r\n"),
        expect("A0001 APPEND Gone {1+}\r\na {1+}\r\nb\r\n"),
        send("A0001 NO [TRYCREATE] Mailbox doesn't exist: Gone\r\n"),
    ])
    .await;
    let results = session
        .append_many(&MailboxName::from_raw("Gone"), &plain_messages(&["a", "b"]))
        .await
        .expect("connection fine");
    assert_eq!(results.len(), 2);
    for result in &results {
        let err = result.as_ref().expect_err("no such folder");
        let answer = CommandFailed::of(err).expect("the server's answer is kept");
        assert_eq!(answer.code, Some(Code::TryCreate), "{err}");
    }
    drop(session);
    peer.finish().await;
}

#[tokio::test]
async fn a_multiappend_without_literal_plus_waits_for_each_continuation() {
    let (mut session, peer) = open(vec![
        send("* PREAUTH [CAPABILITY IMAP4rev1 MULTIAPPEND] ready\r\n"),
        expect("A0001 APPEND INBOX (\\Seen) {3}\r\n"),
        send("+ go ahead\r\n"),
        expect("one {3}\r\n"),
        send("+ go ahead\r\n"),
        expect("two\r\n"),
        send("A0001 OK done\r\n"),
    ])
    .await;
    let mut messages = plain_messages(&["one", "two"]);
    messages[0].flags = vec![Flag::Seen, Flag::Recent];
    let results = session
        .append_many(&MailboxName::from_raw("INBOX"), &messages)
        .await
        .expect("connection fine");
    assert!(results.iter().all(|r| matches!(r, Ok(None))), "{results:?}");
    drop(session);
    peer.finish().await;
}

#[tokio::test]
async fn multiappend_turned_off_sends_single_appends_even_when_advertised() {
    let (mut session, peer) = open_with(
        vec![
            send("* PREAUTH [CAPABILITY IMAP4rev1 LITERAL+ MULTIAPPEND] ready\r\n"),
            expect("A0001 APPEND INBOX {1+}\r\na\r\nA0002 APPEND INBOX {1+}\r\nb\r\n"),
            send("A0001 OK done\r\nA0002 OK done\r\n"),
        ],
        SessionOptions {
            multiappend: None,
            ..no_id()
        },
    )
    .await;
    let results = session
        .append_many(&MailboxName::from_raw("INBOX"), &plain_messages(&["a", "b"]))
        .await
        .expect("connection fine");
    assert!(results.iter().all(|r| matches!(r, Ok(None))), "{results:?}");
    drop(session);
    peer.finish().await;
}

#[tokio::test]
async fn idle_reports_new_mail_then_done_ends_it() {
    let (mut session, peer) = open(vec![
        send(PREAUTH),
        expect(EXAMINE_INBOX),
        send(INBOX_EXAMINED),
        expect("A0002 IDLE\r\n"),
        send("+ idling\r\n"),
        send("* 3 EXISTS\r\n* 1 RECENT\r\n"),
        expect("DONE\r\n"),
        send("A0002 OK Idle completed.\r\n"),
        expect("A0003 IDLE\r\n"),
        send("+ idling\r\n"),
        expect("DONE\r\n"),
        send("A0003 OK Idle completed.\r\n"),
        expect("A0004 NOOP\r\n"),
        send("A0004 OK NOOP completed\r\n"),
    ])
    .await;
    session
        .examine(&MailboxName::from_raw("INBOX"))
        .await
        .expect("examine");
    let mut idle = session.idle().await.expect("idle");
    assert_eq!(
        idle.wait(Duration::from_secs(10)).await.expect("event"),
        IdleEvent::Changed
    );
    let events = idle.take_unsolicited();
    assert_eq!(events.first(), Some(&Unsolicited::Exists(3)), "{events:?}");
    idle.done().await.expect("done");
    assert_eq!(session.selected().expect("selected").exists, 3);

    // A quiet IDLE times out on the session's timer, and a dropped handle still gets DONE.
    let mut idle = session.idle().await.expect("idle again");
    assert_eq!(
        idle.wait(Duration::from_millis(50)).await.expect("quiet"),
        IdleEvent::TimedOut
    );
    drop(idle);
    session.noop().await.expect("DONE was sent first");
    drop(session);
    peer.finish().await;
}

#[tokio::test]
async fn idle_is_refused_locally_when_not_advertised() {
    let (mut session, peer) = open(vec![send("* PREAUTH [CAPABILITY IMAP4rev1] ready\r\n")]).await;
    let err = session.idle().await.expect_err("no IDLE");
    assert_eq!(err.kind(), ErrorKind::SourceRefused);
    drop(session);
    peer.finish().await;
}

#[tokio::test]
async fn list_asks_for_special_use_when_advertised() {
    let (mut session, peer) = open(vec![
        send("* PREAUTH [CAPABILITY IMAP4rev1 LIST-EXTENDED SPECIAL-USE XLIST] ready\r\n"),
        expect("A0001 LIST \"\" * RETURN (SPECIAL-USE)\r\n"),
        send(
            "* LIST (\\HasNoChildren) \"/\" INBOX\r\n* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent Messages\"\r\n\
             * LIST (\\HasNoChildren) \"/\" \"&XfJT0ZAB-\"\r\nA0001 OK List completed.\r\n",
        ),
    ])
    .await;
    let folders = session.list_all().await.expect("list");
    assert_eq!(folders.len(), 3);
    assert_eq!(folders[1].name.raw(), b"Sent Messages");
    assert!(folders[1].attributes.contains(&NameAttribute::Sent));
    assert_eq!(folders[2].name.to_string(), "已发送");
    assert_eq!(folders[0].delimiter, Some('/'));
    drop(session);
    peer.finish().await;
}

#[tokio::test]
async fn xlist_is_the_fallback_when_only_xlist_is_advertised() {
    let (mut session, peer) = open(vec![
        send("* PREAUTH [CAPABILITY IMAP4rev1 XLIST] ready\r\n"),
        expect("A0001 XLIST \"\" *\r\n"),
        send(
            "* XLIST (\\HasNoChildren \\Inbox) \"/\" \"INBOX\"\r\n* XLIST (\\HasNoChildren \\Sent) \"/\" \"[Gmail]/Sent Mail\"\r\n\
             A0001 OK Success\r\n",
        ),
    ])
    .await;
    let folders = session.list_all().await.expect("xlist");
    assert_eq!(folders.len(), 2);
    assert!(folders[0].attributes.contains(&NameAttribute::Inbox));
    assert!(folders[1].attributes.contains(&NameAttribute::Sent));
    drop(session);
    peer.finish().await;
}

#[tokio::test]
async fn esearch_results_become_a_uid_set_and_plain_search_too() {
    let (mut session, peer) = open(vec![
        send("* PREAUTH [CAPABILITY IMAP4rev1 ESEARCH] ready\r\n"),
        expect(EXAMINE_INBOX),
        send(INBOX_EXAMINED),
        expect("A0002 UID SEARCH RETURN (ALL) ALL\r\n"),
        send("* ESEARCH (TAG \"A0002\") UID ALL 1:3,5\r\nA0002 OK Search completed\r\n"),
    ])
    .await;
    session
        .examine(&MailboxName::from_raw("INBOX"))
        .await
        .expect("examine");
    assert_eq!(
        session.uid_search("ALL").await.expect("search").to_string(),
        "1:3,5"
    );
    drop(session);
    peer.finish().await;

    let (mut session, peer) = open(vec![
        send(PREAUTH),
        expect(EXAMINE_INBOX),
        send(INBOX_EXAMINED),
        expect("A0002 UID SEARCH UID 2:*\r\n"),
        send("* SEARCH 4 2 3 9\r\nA0002 OK Search completed\r\n"),
    ])
    .await;
    session
        .examine(&MailboxName::from_raw("INBOX"))
        .await
        .expect("examine");
    assert_eq!(
        session.uid_search("UID 2:*").await.expect("search").to_string(),
        "2:4,9"
    );
    drop(session);
    peer.finish().await;
}

#[tokio::test]
async fn status_namespace_create_subscribe_send_the_expected_commands() {
    let (mut session, peer) = open(vec![
        send("* PREAUTH [CAPABILITY IMAP4rev1 NAMESPACE] ready\r\n"),
        expect("A0001 STATUS &wYzT7A-/2024 (MESSAGES UIDNEXT UIDVALIDITY)\r\n"),
        send("* STATUS \"&wYzT7A-/2024\" (MESSAGES 12 UIDNEXT 13 UIDVALIDITY 99)\r\nA0001 OK done\r\n"),
        expect("A0002 NAMESPACE\r\n"),
        send("* NAMESPACE ((\"INBOX.\" \".\")) NIL NIL\r\nA0002 OK done\r\n"),
        expect("A0003 CREATE \"a*b\"\r\n"),
        send("A0003 OK created\r\n"),
        expect("A0004 SUBSCRIBE \"a*b\"\r\n"),
        send("A0004 OK subscribed\r\n"),
        expect("A0005 CREATE \"a*b\"\r\n"),
        send("A0005 NO [ALREADYEXISTS] Mailbox already exists\r\n"),
    ])
    .await;
    let name = MailboxName::encode("소포/2024", false);
    // HIGHESTMODSEQ is not advertised (no CONDSTORE), so it is not asked for.
    let status = session
        .status(
            &name,
            &[
                StatusAttribute::Messages,
                StatusAttribute::UidNext,
                StatusAttribute::UidValidity,
                StatusAttribute::HighestModSeq,
            ],
        )
        .await
        .expect("status");
    assert_eq!(
        (status.messages, status.uid_next, status.uid_validity),
        (Some(12), Some(13), Some(99))
    );
    let ns = session.namespace().await.expect("namespace").expect("advertised");
    assert_eq!(ns.personal[0].prefix.raw(), b"INBOX.");
    assert_eq!(ns.personal[0].delimiter, Some('.'));
    let odd = MailboxName::encode("a*b", false);
    session.create(&odd).await.expect("create");
    session.subscribe(&odd).await.expect("subscribe");
    assert!(!session.create_if_missing(&odd).await.expect("exists is fine"));
    drop(session);
    peer.finish().await;
}

#[tokio::test]
async fn a_select_refused_as_nonexistent_is_source_refused_and_deselects() {
    let (mut session, peer) = open(vec![
        send(PREAUTH),
        expect(EXAMINE_INBOX),
        send(INBOX_EXAMINED),
        expect("A0002 SELECT Gone\r\n"),
        send("A0002 NO [NONEXISTENT] Mailbox doesn't exist: Gone\r\n"),
    ])
    .await;
    session
        .examine(&MailboxName::from_raw("INBOX"))
        .await
        .expect("examine");
    let err = session
        .select(&MailboxName::from_raw("Gone"))
        .await
        .expect_err("gone");
    assert_eq!(err.kind(), ErrorKind::SourceRefused);
    assert!(err.to_string().contains("Gone"), "{err}");
    assert!(session.selected().is_none());
    assert_eq!(session.state(), SessionState::Authenticated);
    drop(session);
    peer.finish().await;
}

#[tokio::test]
async fn throttling_and_unavailable_are_transient() {
    let (mut session, peer) = open(vec![
        send(PREAUTH),
        expect("A0001 EXAMINE INBOX\r\n"),
        send("A0001 NO [THROTTLED] Too many commands, slow down\r\n"),
        expect("A0002 EXAMINE INBOX\r\n"),
        send("A0002 NO [INUSE] Mailbox is locked\r\n"),
        expect("A0003 NOOP\r\n"),
        send("A0003 BAD Unknown command\r\n"),
    ])
    .await;
    let inbox = MailboxName::from_raw("INBOX");
    assert_eq!(
        session.examine(&inbox).await.expect_err("throttled").kind(),
        ErrorKind::Transient
    );
    assert_eq!(
        session.examine(&inbox).await.expect_err("in use").kind(),
        ErrorKind::Transient
    );
    assert_eq!(session.noop().await.expect_err("bad").kind(), ErrorKind::Protocol);
    drop(session);
    peer.finish().await;
}

#[tokio::test]
async fn a_server_hanging_up_mid_response_is_transient_and_closes_the_session() {
    let (mut session, peer) = open(vec![
        send(PREAUTH),
        expect("A0001 NOOP\r\n"),
        send("* 3 EXI"),
        Step::Close,
    ])
    .await;
    let err = session.noop().await.expect_err("hung up");
    assert_eq!(err.kind(), ErrorKind::Transient);
    assert!(session.is_closed());
    drop(session);
    peer.finish().await;
}

#[tokio::test]
async fn a_silent_server_times_out_on_the_session_timer() {
    let clock = ManualClock::new();
    let (stream, peer) = scripted::start(vec![]);
    let config = server(Security::Plaintext).with_timeout(Duration::from_secs(30));
    let timer: Arc<dyn Timer> = Arc::new(clock.clone());
    let task = tokio::spawn(async move {
        Session::from_stream(stream, &config, timer, no_id())
            .await
            .map(|_| ())
    });
    while clock.pending_sleeps() == 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    clock.advance(Duration::from_secs(29));
    tokio::task::yield_now().await;
    assert!(!task.is_finished(), "not before the timeout");
    clock.advance(Duration::from_secs(1));
    let err = task.await.expect("joined").expect_err("timed out");
    assert_eq!(err.kind(), ErrorKind::Transient);
    assert!(err.to_string().contains("greeting"), "{err}");
    peer.finish().await;
}

#[tokio::test]
async fn an_unreadable_response_fails_the_command_but_keeps_the_session() {
    let (mut session, peer) = open(vec![
        send(PREAUTH),
        expect("A0001 LIST \"\" *\r\n"),
        send("* LIST (\\HasNoChildren) \"/\" INBOX\r\n* LIST (\\Noselect \"/\"\r\nA0001 OK List completed.\r\n"),
        expect("A0002 NOOP\r\n"),
        send("A0002 OK NOOP completed\r\n"),
    ])
    .await;
    let err = session.list_all().await.expect_err("a folder could not be read");
    assert_eq!(err.kind(), ErrorKind::Protocol);
    session.noop().await.expect("still in step");
    drop(session);
    peer.finish().await;
}

#[tokio::test]
async fn session_futures_are_send() {
    fn is_send<T: Send>(t: T) -> T {
        t
    }
    let (mut session, peer) = open(vec![send(PREAUTH)]).await;
    let creds = Credentials::password("a", "b");
    // Compiles only if the futures can move between threads (multi-threaded executors).
    drop(is_send(session.login(&creds)));
    drop(is_send(session.list_all()));
    drop(is_send(session.fetch_messages(&UidSet::new())));
    let stream = session
        .uid_fetch(&UidSet::new(), FetchItems::MIGRATION)
        .await
        .expect("empty fetch");
    let mut stream = is_send(stream.into_stream());
    assert!(
        stream.next().await.is_none(),
        "an empty set fetches nothing and sends nothing"
    );
    drop(stream);
    drop(session);
    peer.finish().await;
}

#[tokio::test]
async fn an_8bit_password_goes_as_a_literal_after_the_continuation() {
    let (mut session, peer) = open(vec![
        send("* OK [CAPABILITY IMAP4rev1] ready\r\n"),
        expect("A0001 LOGIN \"bob\" {9}\r\n"),
        send("+ go ahead\r\n"),
        expect("pässwort\r\n"),
        send("A0001 OK [CAPABILITY IMAP4rev1 UIDPLUS] Logged in\r\n"),
    ])
    .await;
    session
        .login(&Credentials::password("bob", "pässwort"))
        .await
        .expect("login");
    assert!(session.capabilities().has("UIDPLUS"));
    drop(session);
    peer.finish().await;
}

#[tokio::test]
async fn the_unsolicited_queue_is_bounded_and_counts_what_it_dropped() {
    let (stream, peer) = scripted::start(vec![
        send(PREAUTH),
        expect("A0001 NOOP\r\n"),
        send("* 1 EXISTS\r\n* 2 EXISTS\r\n* 3 EXISTS\r\n* 4 EXISTS\r\n* 5 EXISTS\r\nA0001 OK done\r\n"),
    ]);
    let options = SessionOptions {
        max_unsolicited: 3,
        ..no_id()
    };
    let mut session = Session::from_stream(stream, &server(Security::Plaintext), timer(), options)
        .await
        .expect("greeting");
    session.noop().await.expect("noop");
    assert_eq!(
        session.take_unsolicited(),
        vec![
            Unsolicited::Exists(3),
            Unsolicited::Exists(4),
            Unsolicited::Exists(5)
        ],
        "the newest are kept"
    );
    assert_eq!(session.unsolicited_dropped(), 2);
    drop(session);
    peer.finish().await;
}

#[tokio::test]
async fn a_call_cancelled_while_the_server_waits_for_a_literal_closes_the_session() {
    let (mut session, peer) = open(vec![send(PREAUTH), expect("A0001 APPEND INBOX {5}\r\n")]).await;
    let message = AppendMessage {
        flags: vec![],
        internal_date: None,
        message: Bytes::from_static(b"hello"),
    };
    let cancelled = tokio::time::timeout(
        Duration::from_millis(100),
        session.append(&MailboxName::from_raw("INBOX"), &message),
    )
    .await;
    assert!(cancelled.is_err(), "the server never sent '+'");
    // The server still expects 5 bytes: nothing else may be written on this stream.
    let err = session.noop().await.expect_err("unusable");
    assert_eq!(err.kind(), ErrorKind::Transient);
    assert!(err.to_string().contains("cancelled"), "{err}");
    assert!(session.is_closed());
    drop(session);
    peer.finish().await;
}

mod hostile {
    use super::*;
    use proptest::prelude::*;

    /// Pieces of IMAP syntax, so random sequences reach deep into the parser and the session.
    const PIECES: &[&str] = &[
        "* ",
        "A0001 ",
        "A0002 ",
        "+ ",
        "OK ",
        "NO ",
        "BAD ",
        "BYE ",
        "PREAUTH ",
        "[ALERT] ",
        "[CAPABILITY IMAP4rev1] ",
        "[APPENDUID 1 2] ",
        "1 EXISTS",
        "2 EXPUNGE",
        "3 FETCH (",
        "UID 1 ",
        "FLAGS (\\Seen) ",
        "BODY[] ",
        "{3}\r\n",
        "{0}\r\n",
        "{4294967295}\r\n",
        "RFC822.SIZE 3 ",
        "INTERNALDATE \"01-Jan-2024 10:00:00 +0800\" ",
        ")",
        "(",
        "\"",
        "\\",
        "LIST (\\Noselect) \"/\" ",
        "STATUS INBOX (MESSAGES 1)",
        "ESEARCH UID ALL 1:3",
        "SEARCH 1 2",
        "NIL",
        "\r\n",
        "\r",
        "\n",
        "\0",
        "\u{ff}",
        "abc",
        "999999999999999999999",
    ];

    fn server_bytes() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(
            prop_oneof![
                3 => prop::sample::select(PIECES).prop_map(|p| p.as_bytes().to_vec()),
                1 => prop::collection::vec(any::<u8>(), 0..16),
            ],
            0..60,
        )
        .prop_map(|parts| parts.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn arbitrary_server_bytes_give_results_never_panics_or_hangs(reply in server_bytes()) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async move {
                let (stream, peer) = scripted::start(vec![send(PREAUTH), send(&reply), Step::Close]);
                let mut session = Session::from_stream(stream, &server(Security::Plaintext), timer(), no_id())
                    .await
                    .expect("greeting");
                // Every call returns (Ok or Err); the peer's close ends every wait.
                let _ = session.noop().await;
                let _ = session.list_all().await;
                if let Ok(mut fetch) = session.fetch_messages(&uids("1:3")).await {
                    while fetch.next().await.is_some() {}
                }
                let _ = session.take_unsolicited();
                assert!(session.noop().await.is_err(), "the peer closed: nothing can succeed now");
                drop(session);
                peer.finish().await;
            });
        }
    }
}
