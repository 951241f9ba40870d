//! The IMAP session against the private Dovecot: every command, TLS and STARTTLS with the
//! test root, authentication failures, big messages byte-exact, a 5,000-message streamed
//! fetch, awkward folder names, and unsolicited updates from a second connection.

mod fault_proxy;
mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use mailmigrate::imap::codec::{Flag, InternalDate, MailboxName, NameAttribute, StatusAttribute};
use mailmigrate::imap::{
    self, AppendMessage, AuthMechanism, IdleEvent, Session, SessionOptions, SessionState, Unsolicited,
};
use mailmigrate::net::{MaybeTls, Security, ServerConfig, TcpStream, TlsConfig, TokioTimer};
use mailmigrate::{Credentials, ErrorKind, Uid, UidSet};
use support::{HOST, Proto, SeedMessage, TestUser, dovecot, sample_date, sample_message, sha256_hex};

type ImapSession = Session<MaybeTls<TcpStream>>;

async fn connect(server: &ServerConfig) -> mailmigrate::Result<ImapSession> {
    imap::connect(server, Arc::new(TokioTimer), SessionOptions::default()).await
}

async fn login(user: &TestUser) -> ImapSession {
    let server = dovecot().server(Proto::Imap, Security::Tls);
    let mut session = connect(&server).await.expect("connect over TLS");
    session.login(&user.credentials()).await.expect("login");
    session
}

fn name(text: &str) -> MailboxName {
    MailboxName::encode(text, false)
}

fn uid(n: u32) -> Uid {
    Uid::new(n).expect("non-zero")
}

fn unix(t: std::time::SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).expect("after 1970").as_secs() as i64
}

#[tokio::test]
async fn implicit_tls_and_starttls_work_with_the_test_root() {
    let d = dovecot();
    let user = d.unique_user("tls");
    for security in [Security::Tls, Security::StartTls] {
        let mut session = connect(&d.server(Proto::Imap, security)).await.expect("connect");
        assert!(session.is_tls(), "{security:?}");
        // Asked again over TLS: a TLS connection no longer offers STARTTLS.
        assert!(
            !session.capabilities().has("STARTTLS"),
            "{security:?}: {:?}",
            session.capabilities()
        );
        session.login(&user.credentials()).await.expect("login");
        assert_eq!(session.state(), SessionState::Authenticated);
        assert!(
            session.capabilities().has("IDLE"),
            "post-login capabilities: {:?}",
            session.capabilities()
        );
        session.logout().await.expect("logout");
    }
}

#[tokio::test]
async fn the_same_certificate_without_the_test_root_is_rejected() {
    let d = dovecot();
    for security in [Security::Tls, Security::StartTls] {
        // Only the public webpki roots: the private CA is unknown.
        let server = d.server(Proto::Imap, security).with_tls(TlsConfig::default());
        let err = connect(&server).await.expect_err("untrusted certificate");
        assert_eq!(err.kind(), ErrorKind::Tls, "{security:?}: {err}");
    }
}

#[tokio::test]
async fn plaintext_on_loopback_logs_in_with_login_and_authenticate_plain() {
    let d = dovecot();
    let user = d.unique_user("plain");
    for mechanism in [AuthMechanism::Login, AuthMechanism::Plain] {
        let mut session = connect(&d.server(Proto::Imap, Security::Plaintext))
            .await
            .expect("connect");
        assert!(!session.is_tls());
        session
            .authenticate_with(&user.credentials(), mechanism)
            .await
            .expect("login");
        assert_eq!(session.user(), Some(user.name.as_str()));
        session.noop().await.expect("noop");
        session.logout().await.expect("logout");
    }
}

#[tokio::test]
async fn a_wrong_password_is_an_auth_error_naming_the_account_not_the_password() {
    let d = dovecot();
    let user = d.unique_user("wrongpw");
    let wrong = Credentials::password(user.name.clone(), "Not-The-Password-42");
    for mechanism in [AuthMechanism::Login, AuthMechanism::Plain] {
        let mut session = connect(&d.server(Proto::Imap, Security::Tls))
            .await
            .expect("connect");
        let err = session
            .authenticate_with(&wrong, mechanism)
            .await
            .expect_err("wrong password");
        assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
        let text = format!("{err} {err:?}");
        assert!(text.contains(&user.name), "{text}");
        assert!(text.contains(HOST), "{text}");
        assert!(!text.contains("Not-The-Password-42"), "{text}");
        assert!(!text.contains(&user.password), "{text}");
    }
}

#[tokio::test]
async fn xoauth2_logs_in_with_a_token_from_the_caller_and_an_expired_one_is_auth() {
    let d = dovecot();
    let user = d.unique_user("oauth");
    let mut session = connect(&d.server(Proto::Imap, Security::Tls))
        .await
        .expect("connect");
    assert!(
        session.capabilities().has_auth("XOAUTH2"),
        "{:?}",
        session.capabilities()
    );
    session
        .login(&Credentials::oauth2(user.name.clone(), d.oauth2_token(&user)))
        .await
        .expect("XOAUTH2 login");
    session.noop().await.expect("logged in");
    session.logout().await.expect("logout");

    let expired = d.oauth2_token_expiring(&user, UNIX_EPOCH + Duration::from_secs(1_000_000_000));
    let mut session = connect(&d.server(Proto::Imap, Security::Tls))
        .await
        .expect("connect");
    let err = session
        .login(&Credentials::oauth2(user.name.clone(), expired.clone()))
        .await
        .expect_err("expired token");
    assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
    assert!(err.to_string().contains(&user.name), "{err}");
    assert!(!format!("{err:?}").contains(&expired), "{err:?}");
}

#[tokio::test]
async fn id_enable_namespace_delimiter_and_special_use_list() {
    let d = dovecot();
    let user = d.unique_user("meta");
    let mut session = login(&user).await;

    let fields = session.id(&[("name", "mailmigrate-test")]).await.expect("ID");
    assert!(
        fields
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("name") && v.as_deref() == Some("Dovecot")),
        "{fields:?}"
    );
    let enabled = session.enable(&["CONDSTORE"]).await.expect("ENABLE");
    assert_eq!(enabled, vec!["CONDSTORE".to_owned()]);
    assert!(session.enabled().contains("CONDSTORE"));

    let namespaces = session
        .namespace()
        .await
        .expect("NAMESPACE")
        .expect("Dovecot has NAMESPACE");
    assert_eq!(namespaces.personal.len(), 1, "{namespaces:?}");
    assert_eq!(namespaces.personal[0].prefix.raw(), b"");
    assert_eq!(namespaces.personal[0].delimiter, Some('/'));
    assert_eq!(session.delimiter().await.expect("delimiter"), Some('/'));

    let folders = session.list_all().await.expect("LIST");
    let role_of = |attribute: NameAttribute| {
        folders
            .iter()
            .find(|f| f.attributes.contains(&attribute))
            .map(|f| f.name.to_string())
            .unwrap_or_else(|| panic!("no folder with {attribute:?} in {folders:?}"))
    };
    assert_eq!(role_of(NameAttribute::Sent), "Sent");
    assert_eq!(role_of(NameAttribute::Drafts), "Drafts");
    assert_eq!(role_of(NameAttribute::Trash), "Trash");
    assert_eq!(role_of(NameAttribute::Junk), "Junk");
    assert_eq!(role_of(NameAttribute::Archive), "Archive");
    assert!(folders.iter().any(|f| f.name.is_inbox()), "{folders:?}");
    session.logout().await.expect("logout");
}

#[tokio::test]
async fn status_select_and_examine_report_counts_uids_and_modseq() {
    let d = dovecot();
    let user = d.unique_user("select");
    d.seed(
        &user,
        "INBOX",
        (0..3).map(|i| SeedMessage::new(sample_message(i, 500))),
    );
    let mut session = login(&user).await;
    let inbox = name("INBOX");

    let status = session
        .status(
            &inbox,
            &[
                StatusAttribute::Messages,
                StatusAttribute::UidNext,
                StatusAttribute::UidValidity,
                StatusAttribute::HighestModSeq,
            ],
        )
        .await
        .expect("STATUS");
    assert_eq!(status.messages, Some(3));
    assert_eq!(status.uid_next, Some(4));
    assert!(status.uid_validity.is_some());
    assert!(status.highest_modseq.is_some(), "Dovecot has CONDSTORE");

    let selected = session.select(&inbox).await.expect("SELECT");
    assert_eq!(selected.exists, 3);
    assert_eq!(selected.uid_next, Some(4));
    assert_eq!(selected.uid_validity, status.uid_validity);
    assert!(selected.highest_modseq.is_some());
    assert!(!selected.read_only);
    assert!(selected.permanent_flags.contains(&Flag::Seen));
    assert_eq!(session.state(), SessionState::Selected);

    let examined = session.examine(&inbox).await.expect("EXAMINE");
    assert!(examined.read_only);
    assert_eq!(examined.exists, 3);

    let err = session
        .examine(&name("Does/Not/Exist"))
        .await
        .expect_err("missing folder");
    assert_eq!(err.kind(), ErrorKind::SourceRefused, "{err}");
    assert!(session.selected().is_none());
    session.logout().await.expect("logout");
}

#[tokio::test]
async fn uid_search_and_fetch_return_uids_flags_dates_and_exact_bodies() {
    let d = dovecot();
    let user = d.unique_user("fetch");
    let messages: Vec<SeedMessage> = (0..10)
        .map(|i| {
            let flags: &[&str] = match i % 3 {
                0 => &["\\Seen"],
                1 => &["\\Seen", "\\Flagged", "$Forwarded"],
                _ => &[],
            };
            SeedMessage::new(sample_message(i, 300 + i * 7))
                .with_flags(flags)
                .received_at(sample_date(i))
        })
        .collect();
    d.seed(&user, "INBOX", messages.clone());
    let mut session = login(&user).await;
    session.examine(&name("INBOX")).await.expect("EXAMINE");

    assert_eq!(
        session.uid_search("ALL").await.expect("search").to_string(),
        "1:10"
    );
    assert_eq!(
        session.uid_search("UID 5:*").await.expect("search").to_string(),
        "5:10"
    );
    assert_eq!(
        session.uid_search("FLAGGED").await.expect("search").to_string(),
        "2,5,8"
    );

    let all: UidSet = "1:10".parse().expect("set");
    let mut fetch = session.fetch_messages(&all).await.expect("fetch");
    let mut seen = 0;
    while let Some(message) = fetch.next().await {
        let message = message.expect("message");
        let i = (message.uid.get() - 1) as usize;
        let seeded = &messages[i];
        assert_eq!(
            message.body.as_deref(),
            Some(&seeded.raw[..]),
            "uid {}",
            message.uid
        );
        assert_eq!(message.size, Some(seeded.raw.len() as u32));
        let date = message.internal_date.expect("INTERNALDATE");
        assert_eq!(date.unix, unix(seeded.internal_date), "uid {}", message.uid);
        // \Recent is per-session state, not a stored flag.
        let mut flags: Vec<String> = message
            .flags
            .iter()
            .filter(|f| **f != Flag::Recent)
            .map(|f| f.as_imap().to_owned())
            .collect();
        flags.sort();
        let mut want = seeded.flags.clone();
        want.sort();
        assert_eq!(flags, want, "uid {}", message.uid);
        seen += 1;
    }
    drop(fetch);
    assert_eq!(seen, 10);
    // EXAMINE + BODY.PEEK: nothing became \Seen.
    assert_eq!(session.uid_search("UNSEEN").await.expect("search").len(), 3);
    session.logout().await.expect("logout");
}

#[tokio::test]
async fn one_and_twenty_megabyte_messages_arrive_byte_exact() {
    let d = dovecot();
    let user = d.unique_user("big");
    let small = sample_message(1, 1 << 20);
    let large = sample_message(2, 20 << 20);
    let want = [sha256_hex(&small), sha256_hex(&large)];
    d.seed(&user, "INBOX", [SeedMessage::new(small), SeedMessage::new(large)]);
    let mut session = login(&user).await;
    session.examine(&name("INBOX")).await.expect("EXAMINE");
    let mut fetch = session
        .fetch_messages(&"1:2".parse().expect("set"))
        .await
        .expect("fetch");
    let mut got = Vec::new();
    while let Some(message) = fetch.next().await {
        let message = message.expect("message");
        let body = message.body.expect("body");
        got.push((message.uid.get(), body.len(), sha256_hex(&body)));
    }
    drop(fetch);
    assert_eq!(got.len(), 2);
    assert_eq!(
        (got[0].0, got[0].2.as_str()),
        (1, want[0].as_str()),
        "1 MB message"
    );
    assert_eq!(
        (got[1].0, got[1].2.as_str()),
        (2, want[1].as_str()),
        "20 MB message"
    );
    session.logout().await.expect("logout");
}

const FOLDER_SIZE: usize = 5_000;
const MESSAGE_BODY: usize = 2_000;

#[tokio::test]
async fn a_5000_message_folder_streams_one_message_at_a_time() {
    let d = dovecot();
    let user = d.unique_user("stream");
    d.seed(
        &user,
        "Bulk",
        (0..FOLDER_SIZE).map(|i| SeedMessage::new(sample_message(i, MESSAGE_BODY))),
    );
    let bulk = name("Bulk");

    // The whole folder in one UID FETCH: every message once, in order, byte-exact; the loop
    // keeps nothing but a counter.
    let mut session = login(&user).await;
    session.examine(&bulk).await.expect("EXAMINE");
    let all = session.uid_search("ALL").await.expect("search");
    assert_eq!(all.len(), FOLDER_SIZE as u64);
    let mut fetch = session.fetch_messages(&all).await.expect("fetch");
    let mut count = 0;
    while let Some(message) = fetch.next().await {
        let message = message.expect("message");
        let i = (message.uid.get() - 1) as usize;
        assert_eq!(
            message.body.as_deref(),
            Some(&sample_message(i, MESSAGE_BODY)[..]),
            "uid {}",
            message.uid
        );
        count += 1;
    }
    drop(fetch);
    assert_eq!(count, FOLDER_SIZE);
    session.logout().await.expect("logout");

    // Proof that messages come out as they arrive, not after the folder: through a proxy that
    // stops forwarding after ~1 MB, the stream still hands out the messages in that first
    // megabyte, then fails on the stall (the session's timeout).
    let upstream: SocketAddr = format!("{HOST}:{}", d.imaps_port()).parse().expect("address");
    let proxy =
        fault_proxy::FaultProxy::start(upstream, vec![fault_proxy::Fault::StallAfterServerBytes(1 << 20)])
            .await;
    let server = ServerConfig::new(HOST, proxy.port(), Security::Tls)
        .with_tls(d.tls_config())
        .with_timeout(Duration::from_secs(3));
    let mut session = connect(&server).await.expect("connect through the proxy");
    session.login(&user.credentials()).await.expect("login");
    session.examine(&bulk).await.expect("EXAMINE");
    let mut fetch = session.fetch_messages(&all).await.expect("fetch");
    let mut before_stall = 0;
    let err = loop {
        match fetch.next().await {
            Some(Ok(message)) => {
                let i = (message.uid.get() - 1) as usize;
                assert_eq!(
                    message.body.as_deref(),
                    Some(&sample_message(i, MESSAGE_BODY)[..])
                );
                before_stall += 1;
            }
            Some(Err(err)) => break err,
            None => panic!("the stalled fetch cannot complete"),
        }
    };
    assert_eq!(err.kind(), ErrorKind::Transient, "{err}");
    eprintln!("{before_stall} of {FOLDER_SIZE} messages were handed out before the stall");
    assert!(
        before_stall > 100,
        "only {before_stall} messages arrived before the stall"
    );
    assert!(
        before_stall < FOLDER_SIZE / 2,
        "{before_stall} messages from 1 MB of server bytes?"
    );
}

#[tokio::test]
async fn chinese_and_special_character_folder_names_round_trip() {
    let d = dovecot();
    let user = d.unique_user("names");
    let names = [
        "项目/2024",
        "A+B",
        "a*b",
        "Q&A",
        "back\\slash",
        "已发送",
        "100% done",
        "\"quoted\"",
    ];
    let mut session = login(&user).await;
    for text in names {
        session
            .create(&name(text))
            .await
            .unwrap_or_else(|e| panic!("CREATE {text:?}: {e}"));
    }
    let listed: Vec<String> = session
        .list_all()
        .await
        .expect("LIST")
        .iter()
        .map(|f| f.name.decode().text)
        .collect();
    for text in names {
        assert!(
            listed.iter().any(|l| l == text),
            "{text:?} not listed back: {listed:?}"
        );
    }
    assert!(
        listed.iter().any(|l| l == "项目"),
        "the parent was created: {listed:?}"
    );
    // Dovecot's own view (UTF-8) agrees: the names reached the server intact.
    let on_server = d.mailboxes(&user);
    for text in names {
        assert!(
            on_server.iter().any(|l| l == text),
            "{text:?} not on the server: {on_server:?}"
        );
    }
    // Each can be selected again by the name LIST returned.
    for folder in session.list_all().await.expect("LIST") {
        if folder.attributes.contains(&NameAttribute::NoSelect) {
            continue;
        }
        session
            .examine(&folder.name)
            .await
            .unwrap_or_else(|e| panic!("EXAMINE {:?}: {e}", folder.name));
    }
    session.logout().await.expect("logout");
}

#[tokio::test]
async fn create_subscribe_and_create_if_missing() {
    let d = dovecot();
    let user = d.unique_user("create");
    let mut session = login(&user).await;
    let projects = name("Projects/Alpha");
    session.create(&projects).await.expect("CREATE");
    let err = session.create(&projects).await.expect_err("exists");
    assert_eq!(err.kind(), ErrorKind::TargetRefused, "{err}");
    assert!(
        !session
            .create_if_missing(&projects)
            .await
            .expect("exists is fine")
    );
    assert!(
        session
            .create_if_missing(&name("Projects/Beta"))
            .await
            .expect("created")
    );
    session.subscribe(&projects).await.expect("SUBSCRIBE");
    let subscribed = session.lsub(b"", b"*").await.expect("LSUB");
    assert!(subscribed.iter().any(|f| f.name == projects), "{subscribed:?}");
    assert!(
        !subscribed.iter().any(|f| f.name == name("Projects/Beta")),
        "{subscribed:?}"
    );
    session.logout().await.expect("logout");
}

#[tokio::test]
async fn append_sets_flags_and_internal_date_and_returns_the_appenduid() {
    let d = dovecot();
    let user = d.unique_user("append");
    let mut session = login(&user).await;
    let archive = name("Archive");
    let raw = sample_message(7, 4_000);
    let date = InternalDate {
        unix: unix(sample_date(7)),
        offset_minutes: 480,
    };
    let message = AppendMessage {
        flags: vec![Flag::Seen, Flag::Flagged, Flag::Keyword("$Work".into())],
        internal_date: Some(date),
        message: Bytes::from(raw.clone()),
    };
    let appended = session
        .append(&archive, &message)
        .await
        .expect("APPEND")
        .expect("UIDPLUS");
    let status = session
        .status(&archive, &[StatusAttribute::UidValidity])
        .await
        .expect("STATUS");
    assert_eq!(Some(appended.uid_validity), status.uid_validity);

    session.examine(&archive).await.expect("EXAMINE");
    let mut fetch = session
        .fetch_messages(&UidSet::from_iter([appended.uid]))
        .await
        .expect("fetch");
    let back = fetch.next().await.expect("one").expect("ok");
    assert!(fetch.next().await.is_none());
    drop(fetch);
    assert_eq!(back.body.as_deref(), Some(&raw[..]));
    assert_eq!(back.internal_date.map(|d| d.unix), Some(date.unix));
    for flag in [Flag::Seen, Flag::Flagged, Flag::Keyword("$Work".into())] {
        assert!(back.flags.contains(&flag), "{flag:?} in {:?}", back.flags);
    }
    // Dovecot's own record agrees.
    let stored = d.fetch(&user, "Archive", "uid date.received.unixtime", &["all"]);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["uid"], appended.uid.to_string());
    assert_eq!(stored[0]["date.received.unixtime"], date.unix.to_string());

    let err = session
        .append(&name("No such folder"), &message)
        .await
        .expect_err("missing folder");
    assert_eq!(err.kind(), ErrorKind::TargetRefused, "{err}");
    session.logout().await.expect("logout");
}

/// APPENDs `count` messages of mixed sizes with `append_many` under `options`, then checks
/// that each message landed once, in order, with its date, under the UID reported for it.
async fn append_many_in_order(prefix: &str, count: usize, options: SessionOptions) {
    let d = dovecot();
    let user = d.unique_user(prefix);
    let server = d.server(Proto::Imap, Security::Tls);
    let mut session = imap::connect(&server, Arc::new(TokioTimer), options)
        .await
        .expect("connect over TLS");
    session.login(&user.credentials()).await.expect("login");
    assert!(
        session.capabilities().has("LITERAL+") && session.capabilities().has("MULTIAPPEND"),
        "Dovecot advertises LITERAL+ and MULTIAPPEND"
    );
    // Every 50th message is 1.5 MB: over the default MULTIAPPEND byte limit with its
    // neighbours, so commands of different lengths (and some single APPENDs) are sent.
    let size = |i: usize| if i % 50 == 49 { 1_500_000 } else { 1_000 + i };
    let messages: Vec<AppendMessage> = (0..count)
        .map(|i| AppendMessage {
            flags: vec![Flag::Seen],
            internal_date: Some(InternalDate {
                unix: unix(sample_date(i)),
                offset_minutes: 0,
            }),
            message: Bytes::from(sample_message(i, size(i))),
        })
        .collect();
    let results = session
        .append_many(&name("INBOX"), &messages)
        .await
        .expect("APPENDs");
    let uids: Vec<u32> = results
        .into_iter()
        .map(|r| r.expect("stored").expect("UIDPLUS").uid.get())
        .collect();
    assert_eq!(uids, (1..=count as u32).collect::<Vec<u32>>());
    let stored = d.fetch(&user, "INBOX", "uid date.received.unixtime", &["all"]);
    assert_eq!(stored.len(), count, "Dovecot's own count");
    for (i, row) in stored.iter().enumerate() {
        assert_eq!(row["uid"], (i + 1).to_string());
        assert_eq!(row["date.received.unixtime"], unix(sample_date(i)).to_string());
    }
    session.examine(&name("INBOX")).await.expect("EXAMINE");
    let mut fetch = session
        .fetch_messages(&UidSet::range(Uid::MIN, Uid::MAX))
        .await
        .expect("fetch");
    let mut seen = 0;
    while let Some(message) = fetch.next().await {
        let message = message.expect("message");
        let i = (message.uid.get() - 1) as usize;
        assert_eq!(
            message.body.as_deref(),
            Some(&sample_message(i, size(i))[..]),
            "UID {}",
            message.uid
        );
        seen += 1;
    }
    assert_eq!(seen, count);
    drop(fetch);
    session.logout().await.expect("logout");
}

#[tokio::test]
async fn append_many_in_multiappends_stores_every_message_once_in_order_with_its_uid() {
    append_many_in_order("multiappend", 250, SessionOptions::default()).await;
}

#[tokio::test]
async fn append_many_pipelined_stores_every_message_once_in_order_with_its_uid() {
    let single = SessionOptions {
        multiappend: None,
        ..SessionOptions::default()
    };
    append_many_in_order("pipeline", 120, single).await;
}

#[tokio::test]
async fn noop_and_idle_report_mail_arriving_and_leaving_through_another_connection() {
    let d = dovecot();
    let user = d.unique_user("idle");
    d.seed(
        &user,
        "INBOX",
        (0..2).map(|i| SeedMessage::new(sample_message(i, 200))),
    );
    let mut watcher = login(&user).await;
    let mut writer = login(&user).await;
    let inbox = name("INBOX");
    assert_eq!(watcher.select(&inbox).await.expect("SELECT").exists, 2);

    let new = AppendMessage {
        flags: vec![],
        internal_date: None,
        message: Bytes::from(sample_message(9, 200)),
    };
    writer.append(&inbox, &new).await.expect("APPEND");
    watcher.noop().await.expect("NOOP");
    assert!(watcher.take_unsolicited().contains(&Unsolicited::Exists(3)));
    assert_eq!(watcher.selected().expect("selected").exists, 3);

    let mut idle = watcher.idle().await.expect("IDLE");
    assert_eq!(
        idle.wait(Duration::from_millis(200)).await.expect("quiet"),
        IdleEvent::TimedOut
    );
    writer.append(&inbox, &new).await.expect("APPEND");
    assert_eq!(
        idle.wait(Duration::from_secs(20)).await.expect("news"),
        IdleEvent::Changed
    );
    let events = idle.take_unsolicited();
    assert!(events.contains(&Unsolicited::Exists(4)), "{events:?}");

    d.doveadm_ok(&["expunge", "-u", &user.name, "mailbox", "INBOX", "uid", "1"]);
    let mut events = Vec::new();
    while !events.iter().any(|e| matches!(e, Unsolicited::Expunge(1))) {
        assert_eq!(
            idle.wait(Duration::from_secs(20)).await.expect("news"),
            IdleEvent::Changed
        );
        events.extend(idle.take_unsolicited());
    }
    idle.done().await.expect("DONE");
    assert_eq!(watcher.selected().expect("selected").exists, 3);
    watcher.noop().await.expect("usable after IDLE");
    watcher.logout().await.expect("logout");
    writer.logout().await.expect("logout");
}

#[tokio::test]
async fn a_selected_uid_is_fetched_after_expunge_elsewhere_without_losing_step() {
    let d = dovecot();
    let user = d.unique_user("expunged");
    d.seed(
        &user,
        "INBOX",
        (0..3).map(|i| SeedMessage::new(sample_message(i, 200))),
    );
    let mut session = login(&user).await;
    session.select(&name("INBOX")).await.expect("SELECT");
    d.doveadm_ok(&["expunge", "-u", &user.name, "mailbox", "INBOX", "uid", "2"]);
    // The expunge is reported during the fetch (or at its end); UIDs 1 and 3 still come.
    let mut fetch = session
        .fetch_messages(&"1:3".parse().expect("set"))
        .await
        .expect("fetch");
    let mut got = Vec::new();
    while let Some(message) = fetch.next().await {
        match message {
            Ok(message) => got.push(message.uid),
            Err(err) => assert_eq!(err.kind(), ErrorKind::SourceRefused, "{err}"),
        }
    }
    drop(fetch);
    assert!(got.contains(&uid(1)) && got.contains(&uid(3)), "{got:?}");
    session.noop().await.expect("in step");
    session.logout().await.expect("logout");
}
