//! `store::Imap` against the private Dovecot: folder trees with Chinese and special-character
//! names, flags, keywords and internal dates, a pipelined batch of 500, re-offered messages
//! after a crash (never doubled, never lost), a connection cut mid-batch, fingerprints, and
//! the whole engine from one account into another.

mod fault_proxy;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::UNIX_EPOCH;

use bytes::Bytes;
use fault_proxy::{Fault, FaultProxy};
use futures::io::{AsyncRead, AsyncWrite};
use mailmigrate::imap::codec::{Flag, InternalDate, MailboxName, StatusAttribute};
use mailmigrate::imap::{self, FetchItems, Session, SessionOptions};
use mailmigrate::net::{MaybeTls, Security, ServerConfig, TcpStream, TokioTimer};
use mailmigrate::store::{Imap, ImapOptions};
use mailmigrate::sync::{
    Connector, Engine, EngineOptions, Fingerprint, Message, Migrator, Source, SourceId, SyncState,
    TargetFolder, TcpConnector,
};
use mailmigrate::{ErrorKind, Uid, UidSet};
use support::{Dovecot, Proto, SeedMessage, TestUser, dovecot, sample_date, sample_message, sha256_hex};

fn server() -> ServerConfig {
    dovecot().server(Proto::Imap, Security::Tls)
}

async fn target(user: &TestUser, state: &std::path::Path) -> Imap<TcpConnector> {
    Imap::connect(
        server(),
        user.credentials(),
        Arc::new(TokioTimer),
        ImapOptions::new(state),
    )
    .await
    .expect("open the IMAP target")
}

/// A plain session to check what the target holds, independently of the store.
async fn session(user: &TestUser) -> Session<MaybeTls<TcpStream>> {
    let mut session = imap::connect(&server(), Arc::new(TokioTimer), SessionOptions::default())
        .await
        .expect("connect");
    session.login(&user.credentials()).await.expect("login");
    session
}

fn folder(path: &[&str]) -> TargetFolder {
    TargetFolder {
        path: path.iter().map(|s| s.to_string()).collect(),
        role: None,
    }
}

fn message(uid: u32, raw: Vec<u8>, flags: Vec<Flag>, date: Option<InternalDate>) -> Message {
    let raw = Bytes::from(raw);
    Message {
        fingerprint: Fingerprint::of_message(&raw),
        raw,
        flags,
        internal_date: date,
        source: SourceId::Imap {
            folder: MailboxName::from_raw(&b"INBOX"[..]),
            uid_validity: 77,
            uid: Uid::new(uid).expect("non-zero"),
        },
    }
}

fn sample(i: usize) -> Message {
    message(
        i as u32 + 1,
        sample_message(i, 300 + i % 50),
        vec![Flag::Seen],
        None,
    )
}

/// Every message of `mailbox` with the items asked for.
async fn fetch_all(user: &TestUser, mailbox: &str, items: FetchItems) -> Vec<imap::FetchedMessage> {
    let mut s = session(user).await;
    s.examine(&MailboxName::encode(mailbox, false))
        .await
        .expect("examine");
    let mut out = Vec::new();
    let mut stream = s
        .uid_fetch(&UidSet::range(Uid::MIN, Uid::MAX), items)
        .await
        .expect("fetch");
    while let Some(m) = stream.next().await {
        out.push(m.expect("fetched message"));
    }
    out
}

/// How many messages `mailbox` holds, by IMAP STATUS.
async fn count(user: &TestUser, mailbox: &str) -> u32 {
    let mut s = session(user).await;
    let status = s
        .status(&MailboxName::encode(mailbox, false), &[StatusAttribute::Messages])
        .await
        .expect("status");
    status.messages.expect("MESSAGES")
}

async fn bodies(user: &TestUser, mailbox: &str) -> Vec<Bytes> {
    let items = FetchItems {
        body: true,
        ..FetchItems::ENVELOPE
    };
    fetch_all(user, mailbox, items)
        .await
        .into_iter()
        .map(|m| m.body.expect("body"))
        .collect()
}

fn all_ok(results: &[mailmigrate::Result<()>]) {
    for (i, r) in results.iter().enumerate() {
        assert!(r.is_ok(), "message {i}: {r:?}");
    }
}

#[tokio::test]
async fn chinese_and_special_character_folder_trees_are_created_subscribed_and_listed_back() {
    let d = dovecot();
    // A second account: the target is never the user the harness seeds elsewhere.
    let _first = d.unique_user("tree-src");
    let user = d.unique_user("tree-dst");
    let dir = tempfile::tempdir().unwrap();
    let imap = target(&user, &dir.path().join("state.json")).await;
    let tree: Vec<Vec<&str>> = vec![
        vec!["项目"],
        vec!["项目", "2024 第一季度"],
        vec!["项目", "2024 第一季度", "客户 & 合同"],
        vec!["Q&A"],
        vec!["Q&A", "C++ & C# [draft]"],
        vec!["日本語", "テスト"],
        vec!["Ünïcödé ☃ \"quoted\""],
        vec!["a.b", "#hash ~tilde 'x' (1)"],
        vec!["INBOX", "Unter der Inbox"],
    ];
    for path in &tree {
        imap.prepare_folder(&folder(path))
            .await
            .unwrap_or_else(|e| panic!("prepare {path:?}: {e}"));
    }
    // Preparing again changes nothing.
    imap.prepare_folder(&folder(&tree[0]))
        .await
        .expect("prepare again");

    let listing = imap.target_listing().await.expect("listing");
    assert_eq!(listing.rules.delimiter(), '/');
    let listed: BTreeSet<Vec<String>> = listing
        .folders
        .iter()
        .map(|f| f.name.decode().text.split('/').map(str::to_owned).collect())
        .collect();
    for path in &tree {
        let path: Vec<String> = path.iter().map(|s| s.to_string()).collect();
        assert!(listed.contains(&path), "{path:?} not listed back: {listed:?}");
    }
    // The server's own role folders are found by their attributes.
    assert!(
        listing
            .folders
            .iter()
            .any(|f| f.name.raw() == b"Sent" && f.has_attribute("\\Sent")),
        "{:?}",
        listing.folders
    );
    // Dovecot agrees on the names (UTF-8 from doveadm) and on the subscriptions.
    let on_server: BTreeSet<String> = d.mailboxes(&user).into_iter().collect();
    for path in &tree {
        assert!(
            on_server.contains(&path.join("/")),
            "{path:?} missing from {on_server:?}"
        );
    }
    let mut s = session(&user).await;
    let subscribed: BTreeSet<String> = s
        .lsub(b"", b"*")
        .await
        .expect("lsub")
        .into_iter()
        .map(|f| f.name.decode().text)
        .collect();
    for path in &tree {
        assert!(
            subscribed.contains(&path.join("/")),
            "{path:?} not subscribed: {subscribed:?}"
        );
    }
    // A component holding the delimiter is refused, not turned into a hierarchy.
    let err = imap.prepare_folder(&folder(&["a/b"])).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(!d.mailboxes(&user).iter().any(|m| m == "a/b" || m == "a"));
}

#[tokio::test]
async fn flags_keywords_and_internal_dates_come_back_as_stored() {
    let d = dovecot();
    let user = d.unique_user("flags");
    let dir = tempfile::tempdir().unwrap();
    let imap = target(&user, &dir.path().join("state.json")).await;
    let projects = folder(&["项目", "Flags"]);
    imap.prepare_folder(&projects).await.expect("prepare");

    let date = |unix: i64, offset_minutes: i16| Some(InternalDate { unix, offset_minutes });
    let messages = vec![
        message(
            1,
            sample_message(1, 500),
            vec![
                Flag::Seen,
                Flag::Answered,
                Flag::Keyword("$Forwarded".into()),
                Flag::Recent,
            ],
            date(1_262_304_000, 480),
        ),
        message(
            2,
            sample_message(2, 700),
            vec![
                Flag::Flagged,
                Flag::Draft,
                Flag::Deleted,
                Flag::Keyword("Work".into()),
            ],
            date(946_684_799, -300),
        ),
        message(
            3,
            sample_message(3, 100),
            vec![
                Flag::Keyword("not an atom".into()),
                Flag::Extension("\\Junk".into()),
                Flag::Seen,
            ],
            date(1_700_000_000, 0),
        ),
        message(4, sample_message(4, 100), vec![], None),
    ];
    let results = imap.store_batch(&projects, messages.clone()).await;
    all_ok(&results);

    let fetched = fetch_all(
        &user,
        "项目/Flags",
        FetchItems {
            body: true,
            ..FetchItems::ENVELOPE
        },
    )
    .await;
    assert_eq!(fetched.len(), 4);
    let set = |flags: &[Flag]| -> BTreeSet<String> {
        flags
            .iter()
            .filter(|f| **f != Flag::Recent)
            .map(|f| f.as_imap().to_ascii_lowercase())
            .collect()
    };
    let expected_flags = [
        set(&[Flag::Seen, Flag::Answered, Flag::Keyword("$Forwarded".into())]),
        set(&[
            Flag::Flagged,
            Flag::Draft,
            Flag::Deleted,
            Flag::Keyword("Work".into()),
        ]),
        set(&[Flag::Seen]),
        set(&[]),
    ];
    for ((got, sent), flags) in fetched.iter().zip(&messages).zip(&expected_flags) {
        assert_eq!(got.body.as_deref(), Some(&sent.raw[..]), "byte-exact body");
        assert_eq!(&set(&got.flags), flags);
        match sent.internal_date {
            // Dovecot keeps the instant (its zone is UTC here), not the sender's offset.
            Some(date) => assert_eq!(got.internal_date.map(|d| d.unix), Some(date.unix)),
            None => assert!(got.internal_date.is_some()),
        }
    }
    let dropped = imap.dropped_flags();
    let expected: BTreeSet<String> = ["not an atom".to_owned(), "\\Junk".to_owned()].into();
    assert_eq!(dropped.get(&projects.path), Some(&expected), "{dropped:?}");
    // doveadm reads the same dates.
    let received = d.fetch(&user, "项目/Flags", "uid date.received.unixtime", &["all"]);
    assert_eq!(received[0]["date.received.unixtime"], "1262304000");
    assert_eq!(received[1]["date.received.unixtime"], "946684799");
}

/// Counts, on one connection, how far the client's APPEND commands run ahead of the
/// server's answers to them.
#[derive(Debug, Clone, Default)]
struct Recorder {
    appends_sent: Arc<AtomicUsize>,
    answers_read: Arc<AtomicUsize>,
    max_ahead: Arc<AtomicUsize>,
}

#[derive(Debug)]
struct Recording {
    inner: TcpStream,
    recorder: Recorder,
    /// The tail of the last read, so an answer cut between reads is still counted.
    tail: Vec<u8>,
}

impl AsyncRead for Recording {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(n)) = &poll {
            let mut seen = std::mem::take(&mut this.tail);
            let skip = seen.len();
            seen.extend_from_slice(&buf[..*n]);
            let needle = b"OK [APPENDUID";
            let found = seen
                .windows(needle.len())
                .enumerate()
                .filter(|(i, w)| *w == needle && i + needle.len() > skip)
                .count();
            this.recorder.answers_read.fetch_add(found, Ordering::SeqCst);
            let keep = seen.len().saturating_sub(needle.len() - 1);
            this.tail = seen[keep..].to_vec();
        }
        poll
    }
}

impl AsyncWrite for Recording {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        let poll = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &poll {
            let sent = &buf[..*n];
            let appends = sent.windows(8).filter(|w| *w == b" APPEND ").count();
            if appends > 0 {
                let total = this.recorder.appends_sent.fetch_add(appends, Ordering::SeqCst) + appends;
                let ahead = total - this.recorder.answers_read.load(Ordering::SeqCst);
                this.recorder.max_ahead.fetch_max(ahead, Ordering::SeqCst);
            }
        }
        poll
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

#[derive(Debug, Clone, Default)]
struct RecordingConnector(Recorder);

impl Connector for RecordingConnector {
    type Stream = Recording;
    async fn connect(&self, server: &ServerConfig) -> mailmigrate::Result<Recording> {
        let inner = mailmigrate::net::connect_tcp(server).await?;
        Ok(Recording {
            inner,
            recorder: self.0.clone(),
            tail: Vec::new(),
        })
    }
}

/// Stores 500 messages in one batch on one recorded connection with these session options.
async fn store_500(
    d: &Dovecot,
    user: &TestUser,
    session: SessionOptions,
) -> (Imap<RecordingConnector>, Vec<Message>, Recorder) {
    let dir = tempfile::tempdir().unwrap();
    let recorder = Recorder::default();
    // Plaintext, so the recorder sees the commands; one connection, so it sees them all.
    let plain = d.server(Proto::Imap, Security::Plaintext);
    let options = ImapOptions::new(dir.path().join("state.json"))
        .connections(1)
        .session(session);
    let imap = Imap::open(
        RecordingConnector(recorder.clone()),
        plain,
        user.credentials(),
        Arc::new(TokioTimer),
        options,
    )
    .await
    .expect("open");
    let inbox = folder(&["INBOX"]);
    imap.prepare_folder(&inbox).await.expect("prepare");
    let messages: Vec<Message> = (0..500).map(sample).collect();
    let results = imap.store_batch(&inbox, messages.clone()).await;
    assert_eq!(results.len(), 500);
    all_ok(&results);
    (imap, messages, recorder)
}

#[tokio::test]
async fn a_batch_of_500_without_multiappend_is_pipelined_and_lands_once_each() {
    let d = dovecot();
    let user = d.unique_user("pipelined");
    let single = SessionOptions {
        multiappend: None,
        ..SessionOptions::default()
    };
    let (_imap, messages, recorder) = store_500(d, &user, single).await;
    assert_eq!(recorder.appends_sent.load(Ordering::SeqCst), 500);
    assert_eq!(recorder.answers_read.load(Ordering::SeqCst), 500);
    let ahead = recorder.max_ahead.load(Ordering::SeqCst);
    // The session pipelines up to max_pipeline (32) APPENDs before reading an answer.
    assert!(
        ahead >= 32,
        "at most {ahead} APPEND(s) were in flight at once: not pipelined"
    );
    let stored = bodies(&user, "INBOX").await;
    let want: BTreeSet<String> = messages.iter().map(|m| sha256_hex(&m.raw)).collect();
    let got: Vec<String> = stored.iter().map(|b| sha256_hex(b)).collect();
    assert_eq!(got.len(), 500);
    assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), want);
}

#[tokio::test]
async fn a_batch_of_500_goes_in_five_multiappends_lands_once_each_and_fingerprints_match() {
    let d = dovecot();
    let user = d.unique_user("batch");
    let (imap, messages, recorder) = store_500(d, &user, SessionOptions::default()).await;
    let inbox = folder(&["INBOX"]);
    // Dovecot advertises MULTIAPPEND: 100 messages per command (the default limit).
    assert_eq!(recorder.appends_sent.load(Ordering::SeqCst), 5);
    assert_eq!(recorder.answers_read.load(Ordering::SeqCst), 5);

    let stored = bodies(&user, "INBOX").await;
    assert_eq!(stored.len(), 500);
    let want: BTreeSet<String> = messages.iter().map(|m| sha256_hex(&m.raw)).collect();
    let got: BTreeSet<String> = stored.iter().map(|b| sha256_hex(b)).collect();
    assert_eq!(got, want);

    let counts = imap
        .fingerprints(&inbox)
        .await
        .expect("fingerprints")
        .expect("an IMAP target can tell");
    assert_eq!(counts.total(), 500);
    for m in &messages {
        assert_eq!(counts.count(&Fingerprint::of_message(&m.raw)), 1);
    }
    // A folder that does not exist holds nothing (and is not created by asking).
    let never = folder(&["Never created"]);
    assert_eq!(
        imap.fingerprints(&never)
            .await
            .expect("fingerprints")
            .map(|c| c.total()),
        Some(0)
    );
    assert!(!d.mailboxes(&user).iter().any(|m| m == "Never created"));
}

fn state_covering(messages: &[Message]) -> SyncState {
    let mut state = SyncState::new();
    let f = state.folder_mut(&MailboxName::from_raw(&b"INBOX"[..]));
    f.uid_validity = 77;
    for m in messages {
        if let SourceId::Imap { uid, .. } = &m.source {
            f.copied.insert(*uid);
        }
    }
    state
}

fn message_ids(raws: &[Bytes]) -> BTreeMap<String, usize> {
    let mut ids = BTreeMap::new();
    for raw in raws {
        let text = String::from_utf8_lossy(raw);
        let id = text
            .lines()
            .find(|l| l.starts_with("Message-ID:") || l.starts_with("Subject: no id"))
            .unwrap_or("none")
            .to_owned();
        *ids.entry(id).or_insert(0) += 1;
    }
    ids
}

#[tokio::test]
async fn messages_offered_again_after_a_crash_are_found_not_appended_twice() {
    let d = dovecot();
    let user = d.unique_user("crash");
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let archive = folder(&["Archiv 归档"]);
    let mut first: Vec<Message> = (0..28).map(sample).collect();
    // Two without a Message-ID, of the same size: found by size and fingerprint.
    for (uid, subject) in [(29, "no id, first"), (30, "no id, other")] {
        let raw = format!("Subject: {subject}\r\nFrom: a@example.test\r\n\r\nthe same length body\r\n");
        first.push(message(uid, raw.into_bytes(), vec![], None));
    }

    // Run 1 stores a batch and "crashes" before the engine saves a state covering it.
    {
        let imap = target(&user, &state).await;
        imap.prepare_folder(&archive).await.expect("prepare");
        all_ok(&imap.store_batch(&archive, first.clone()).await);
    }
    let on_disk = std::fs::read_to_string(&state).expect("state file written before the APPENDs");
    assert!(on_disk.contains("imap_pending"), "{on_disk}");

    // Run 2 re-offers the batch in flight, plus new messages: each lands once.
    let mut second: Vec<Message> = first.clone();
    second.extend((30..40).map(sample));
    {
        let imap = target(&user, &state).await;
        assert_eq!(imap.load_state().await.expect("load"), Some(SyncState::new()));
        imap.prepare_folder(&archive).await.expect("prepare");
        all_ok(&imap.store_batch(&archive, second.clone()).await);
        // Single stores too.
        for m in second.iter().take(3) {
            imap.store(&archive, m.clone()).await.expect("store");
        }
        // The state now covers everything: the journal empties.
        imap.save_state(&state_covering(&second)).await.expect("save");
    }
    let stored = bodies(&user, "Archiv 归档").await;
    assert_eq!(stored.len(), 40, "{:?}", message_ids(&stored));
    assert!(message_ids(&stored).values().all(|&n| n == 1));
    let on_disk = std::fs::read_to_string(&state).expect("state");
    assert!(!on_disk.contains("imap_pending"), "{on_disk}");
    let saved: SyncState = serde_json::from_str(&on_disk).expect("still a SyncState");
    assert_eq!(saved.copied_count(), 40);

    // Run 3: a batch whose APPENDUIDs reached the state file (another folder's save) and
    // then crashed; re-offered, they are found by UID.
    let third: Vec<Message> = (40..45).map(sample).collect();
    {
        let imap = target(&user, &state).await;
        all_ok(&imap.store_batch(&archive, third.clone()).await);
        imap.save_state(&state_covering(&second))
            .await
            .expect("save without the new ones");
    }
    assert!(std::fs::read_to_string(&state).unwrap().contains("\"uid\""));
    {
        let imap = target(&user, &state).await;
        all_ok(&imap.store_batch(&archive, third.clone()).await);
    }
    assert_eq!(bodies(&user, "Archiv 归档").await.len(), 45);
}

/// Two source messages with the same bytes (a mail client saved it twice) were both in
/// flight, but only the first reached the target: the journal names both. `searched` drops
/// the entries' UID floor, as for a server that sends no UIDNEXT, so the target is searched
/// (by size and Message-ID) instead of read from the floor up.
async fn twins_in_flight(prefix: &str, raw: Vec<u8>, searched: bool) {
    let d = dovecot();
    let user = d.unique_user(prefix);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let inbox = folder(&["INBOX"]);
    let one = message(1, raw.clone(), vec![], None);
    let two = message(2, raw.clone(), vec![], None);
    {
        let imap = target(&user, &state).await;
        all_ok(&imap.store_batch(&inbox, vec![one.clone()]).await);
    }
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    let pending = json["imap_pending"].as_array_mut().expect("pending entries");
    assert_eq!(pending.len(), 1);
    if searched {
        pending[0]
            .as_object_mut()
            .unwrap()
            .remove("uid_floor")
            .expect("a UID floor was recorded");
    }
    let mut twin = pending[0].clone();
    twin["source"]["imap"]["uid"] = serde_json::json!(2);
    pending.push(twin);
    std::fs::write(&state, serde_json::to_vec(&json).unwrap()).unwrap();
    {
        let imap = target(&user, &state).await;
        all_ok(&imap.store_batch(&inbox, vec![one, two]).await);
    }
    let stored = bodies(&user, "INBOX").await;
    assert_eq!(
        stored.len(),
        2,
        "the second twin must not be taken for the first one's copy"
    );
    assert!(stored.iter().all(|b| b[..] == raw[..]));
}

#[tokio::test]
async fn identical_messages_in_flight_are_each_matched_to_their_own_copy() {
    twins_in_flight("twins", sample_message(7, 400), false).await;
}

#[tokio::test]
async fn identical_messages_without_message_id_are_found_by_search_and_matched_once() {
    let raw = b"Subject: saved twice\r\nFrom: a@example.test\r\n\r\nno Message-ID here\r\n".to_vec();
    twins_in_flight("twins-search", raw, true).await;
}

/// Stores 200 messages through a proxy that breaks the first connection with `fault`: the
/// store reconnects, and every message is in the target exactly once.
async fn cut_mid_batch(prefix: &str, fault: Fault, session: SessionOptions) {
    let d = dovecot();
    let user = d.unique_user(prefix);
    let dir = tempfile::tempdir().unwrap();
    let upstream = std::net::SocketAddr::from(([127, 0, 0, 1], d.port(Proto::Imap, Security::Plaintext)));
    let proxy = FaultProxy::start(upstream, vec![fault]).await;
    let via_proxy = ServerConfig::new("127.0.0.1", proxy.port(), Security::Plaintext);
    let options = ImapOptions::new(dir.path().join("state.json"))
        .connections(1)
        .session(session);
    let imap = Imap::connect(via_proxy, user.credentials(), Arc::new(TokioTimer), options)
        .await
        .expect("open");
    let inbox = folder(&["INBOX"]);
    imap.prepare_folder(&inbox).await.expect("prepare");
    let messages: Vec<Message> = (0..200).map(sample).collect();
    let results = imap.store_batch(&inbox, messages.clone()).await;
    all_ok(&results);
    assert_eq!(proxy.connections(), 2, "one reconnection");
    let stored = bodies(&user, "INBOX").await;
    let ids = message_ids(&stored);
    assert_eq!(stored.len(), 200, "{ids:?}");
    assert!(ids.values().all(|&n| n == 1), "{ids:?}");
}

#[tokio::test]
async fn a_connection_cut_among_pipelined_appends_is_reopened_and_nothing_is_lost_or_doubled() {
    let single = SessionOptions {
        multiappend: None,
        ..SessionOptions::default()
    };
    // After 6 KB from the server: well into the answers to the single APPENDs.
    cut_mid_batch("cut", Fault::DropAfterServerBytes(6_000), single).await;
}

// 200 messages of about 600 bytes: two MULTIAPPEND commands of about 60 KB each.

#[tokio::test]
async fn a_multiappend_cut_short_is_sent_again_and_every_message_lands_once() {
    cut_mid_batch(
        "cut-first",
        Fault::DropAfterClientBytes(30_000),
        SessionOptions::default(),
    )
    .await;
}

#[tokio::test]
async fn a_cut_in_the_second_multiappend_keeps_the_first_and_every_message_lands_once() {
    cut_mid_batch(
        "cut-second",
        Fault::DropAfterClientBytes(90_000),
        SessionOptions::default(),
    )
    .await;
}

#[tokio::test]
async fn a_multiappend_stored_but_never_acknowledged_is_found_not_appended_twice() {
    cut_mid_batch(
        "cut-unheard",
        Fault::DropAtServerText("OK [APPENDUID"),
        SessionOptions::default(),
    )
    .await;
}

#[tokio::test]
async fn a_folder_deleted_under_the_store_is_created_again() {
    let d = dovecot();
    let user = d.unique_user("gone");
    let dir = tempfile::tempdir().unwrap();
    let imap = target(&user, &dir.path().join("state.json")).await;
    let work = folder(&["Work", "Gone"]);
    imap.prepare_folder(&work).await.expect("prepare");
    all_ok(&imap.store_batch(&work, vec![sample(0)]).await);
    d.doveadm_ok(&["mailbox", "delete", "-u", &user.name, "Work/Gone"]);
    all_ok(&imap.store_batch(&work, vec![sample(1), sample(2)]).await);
    assert_eq!(count(&user, "Work/Gone").await, 2);
}

#[tokio::test]
async fn a_corrupt_state_file_stops_the_store_before_it_connects() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    std::fs::write(&state, b"{\"format\": 1, \"folders\": [").unwrap();
    let user = dovecot().unique_user("corrupt");
    let err = Imap::connect(
        server(),
        user.credentials(),
        Arc::new(TokioTimer),
        ImapOptions::new(&state),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io);
    assert!(err.message().contains(&state.display().to_string()), "{err}");
    // Left as it was, for the user to restore.
    assert_eq!(std::fs::read(&state).unwrap(), b"{\"format\": 1, \"folders\": [");
}

#[tokio::test]
async fn the_engine_moves_an_account_into_another_and_a_rerun_copies_nothing() {
    let d = dovecot();
    let from = d.unique_user("engine-src");
    let to = d.unique_user("engine-dst");
    d.seed(
        &from,
        "INBOX",
        (0..25).map(|i| SeedMessage::new(sample_message(i, 200)).received_at(sample_date(i))),
    );
    d.seed(
        &from,
        "Sent",
        (25..30).map(|i| SeedMessage::new(sample_message(i, 200)).with_flags(&["\\Seen"])),
    );
    d.seed(
        &from,
        "项目/客户",
        (30..42).map(|i| SeedMessage::new(sample_message(i, 200))),
    );
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let run = || async {
        let imap = target(&to, &state).await;
        let source = Source::imap(server(), from.credentials());
        let engine = Engine::new(
            source,
            imap,
            TcpConnector,
            Arc::new(TokioTimer),
            EngineOptions::default(),
        );
        engine.run().await.expect("migration")
    };
    let report = run().await;
    let copied: u64 = report.folders.iter().map(|f| f.counts.copied_this_run).sum();
    assert_eq!(copied, 42, "{report:?}");
    assert_eq!(count(&to, "INBOX").await, 25);
    assert_eq!(count(&to, "Sent").await, 5);
    assert_eq!(count(&to, "项目/客户").await, 12);
    let received = d.fetch(&to, "INBOX", "date.received.unixtime", &["all"]);
    let first = sample_date(0)
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    assert!(
        received.iter().any(|r| r["date.received.unixtime"] == first),
        "{received:?}"
    );

    let again = run().await;
    let copied: u64 = again.folders.iter().map(|f| f.counts.copied_this_run).sum();
    assert_eq!(copied, 0, "{again:?}");
    assert_eq!(count(&to, "INBOX").await, 25);
    assert_eq!(count(&to, "项目/客户").await, 12);
    let seen = d.fetch(&to, "Sent", "flags", &["all"]);
    assert!(seen.iter().all(|r| r["flags"].contains("\\Seen")), "{seen:?}");
}

// Provider quirks, as byte-exact transcripts: a Courier-style target (personal namespace
// "INBOX.", "." delimiter, no new keywords, a full mailbox) and Exchange's naming rules.

mod scripted;

use scripted::{expect, send};

/// The scripts allow one connection: the store must not need another.
#[derive(Debug)]
struct OneConnection;

impl Connector for OneConnection {
    type Stream = tokio_util::compat::Compat<tokio::io::DuplexStream>;
    async fn connect(&self, _: &ServerConfig) -> mailmigrate::Result<Self::Stream> {
        Err(mailmigrate::Error::new(
            ErrorKind::Transient,
            "the script allows one connection",
        ))
    }
}

async fn scripted_target(
    script: Vec<scripted::Step>,
    state: &std::path::Path,
) -> (mailmigrate::Result<Imap<OneConnection>>, scripted::Peer) {
    let (stream, peer) = scripted::start(script);
    let config = ServerConfig::new("imap.scripted.test", 143, Security::Plaintext)
        .with_timeout(std::time::Duration::from_secs(10));
    let options = SessionOptions {
        send_id: false,
        ..SessionOptions::default()
    };
    let session = Session::from_stream(
        MaybeTls::Plain(stream),
        &config,
        Arc::new(TokioTimer),
        options.clone(),
    )
    .await
    .expect("greeting");
    let imap = Imap::from_session(
        session,
        OneConnection,
        config,
        mailmigrate::Credentials::password("alice@contoso.test", "pw"),
        Arc::new(TokioTimer),
        ImapOptions::new(state).connections(1).session(options),
    )
    .await;
    (imap, peer)
}

#[tokio::test]
async fn a_courier_target_gets_its_prefix_refused_keywords_are_reported_and_a_full_mailbox_says_so() {
    let one = b"Message-ID: <1@x>\r\n\r\none\r\n";
    let two = b"Message-ID: <2@x>\r\n\r\ntwo\r\n";
    let mut appends = Vec::new();
    appends.extend_from_slice(b"A0005 APPEND INBOX.Sent (\\Seen) {26+}\r\n");
    appends.extend_from_slice(one);
    appends.extend_from_slice(b"\r\nA0006 APPEND INBOX.Sent {26+}\r\n");
    appends.extend_from_slice(two);
    appends.extend_from_slice(b"\r\n");
    let script = vec![
        send("* PREAUTH [CAPABILITY IMAP4rev1 LITERAL+ UIDPLUS NAMESPACE] Courier-IMAP ready\r\n"),
        expect("A0001 NAMESPACE\r\n"),
        send(
            "* NAMESPACE ((\"INBOX.\" \".\")) NIL ((\"#shared.\" \".\"))\r\nA0001 OK NAMESPACE completed\r\n",
        ),
        expect("A0002 CREATE INBOX.Sent\r\n"),
        send("A0002 NO [ALREADYEXISTS] Mailbox exists\r\n"),
        expect("A0003 SUBSCRIBE INBOX.Sent\r\n"),
        send("A0003 OK Subscribed\r\n"),
        expect("A0004 SELECT INBOX.Sent\r\n"),
        send(
            "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n\
             * OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)] No new keywords\r\n\
             * 5 EXISTS\r\n* 0 RECENT\r\n* OK [UIDVALIDITY 99] Ok\r\n* OK [UIDNEXT 6] Ok\r\n\
             A0004 OK [READ-WRITE] Ok\r\n",
        ),
        expect(appends),
        send("* 6 EXISTS\r\nA0005 OK [APPENDUID 99 6] Ok\r\nA0006 NO [OVERQUOTA] Mailbox is full\r\n"),
    ];
    let dir = tempfile::tempdir().unwrap();
    let (imap, peer) = scripted_target(script, &dir.path().join("state.json")).await;
    let imap = imap.expect("target");
    assert_eq!(imap.rules().delimiter(), '.');
    let sent = TargetFolder {
        path: vec!["Sent".into()],
        role: None,
    };
    assert_eq!(imap.folder_name(&sent).unwrap().raw(), b"INBOX.Sent");
    assert_eq!(imap.folder_name(&folder(&["inbox"])).unwrap().raw(), b"INBOX");
    assert_eq!(
        imap.folder_name(&folder(&["a.b"])).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    imap.prepare_folder(&sent)
        .await
        .expect("an existing folder is fine");
    let messages = vec![
        message(
            1,
            one.to_vec(),
            vec![Flag::Seen, Flag::Keyword("$Forwarded".into())],
            None,
        ),
        message(2, two.to_vec(), vec![], None),
    ];
    let results = imap.store_batch(&sent, messages).await;
    assert!(results[0].is_ok(), "{:?}", results[0]);
    let full = results[1].as_ref().expect_err("over quota");
    assert_eq!(full.kind(), ErrorKind::TargetRefused);
    assert!(
        full.message().contains("target mailbox alice@contoso.test"),
        "{full}"
    );
    assert!(full.message().contains("is full"), "{full}");
    let answer = mailmigrate::imap::CommandFailed::of(full).expect("the server's answer is kept");
    assert!(answer.has_code(mailmigrate::imap::codec::KnownCode::OverQuota));
    let dropped = imap.dropped_flags();
    assert_eq!(
        dropped.get(&sent.path),
        Some(&BTreeSet::from(["$Forwarded".to_owned()]))
    );
    drop(imap);
    peer.finish().await;
}

#[tokio::test]
async fn an_exchange_target_is_told_apart_by_its_greeting_and_gets_case_insensitive_names() {
    let script = vec![
        send("* OK The Microsoft Exchange IMAP4 service is ready. [TQBOADIAUABS]\r\n"),
        expect("A0001 CAPABILITY\r\n"),
        send(
            "* CAPABILITY IMAP4 IMAP4rev1 AUTH=PLAIN SASL-IR UIDPLUS ID UNSELECT CHILDREN IDLE NAMESPACE LITERAL+\r\nA0001 OK CAPABILITY completed.\r\n",
        ),
        expect("A0002 LOGIN \"alice@contoso.test\" \"pw\"\r\n"),
        send("A0002 OK LOGIN completed.\r\n"),
        expect("A0003 CAPABILITY\r\n"),
        send(
            "* CAPABILITY IMAP4 IMAP4rev1 AUTH=PLAIN SASL-IR UIDPLUS MOVE ID UNSELECT CHILDREN IDLE NAMESPACE LITERAL+\r\nA0003 OK CAPABILITY completed.\r\n",
        ),
        expect("A0004 NAMESPACE\r\n"),
        send("* NAMESPACE ((\"\" \"/\")) NIL NIL\r\nA0004 OK NAMESPACE completed.\r\n"),
        expect("A0005 LIST \"\" *\r\n"),
        send(
            "* LIST (\\Marked \\HasNoChildren) \"/\" INBOX\r\n\
             * LIST (\\HasNoChildren \\Sent) \"/\" \"Sent Items\"\r\n\
             * LIST (\\HasNoChildren \\Trash) \"/\" \"Deleted Items\"\r\n\
             A0005 OK LIST completed.\r\n",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let (imap, peer) = scripted_target(script, &dir.path().join("state.json")).await;
    let imap = imap.expect("target");
    let listing = imap.target_listing().await.expect("listing");
    assert!(listing.rules.is_case_insensitive());
    assert!(listing.rules.is_reserved("files"));
    assert_eq!(listing.folders.len(), 3);
    assert!(
        listing
            .folders
            .iter()
            .any(|f| f.name.raw() == b"Sent Items" && f.has_attribute("\\Sent"))
    );
    drop(imap);
    peer.finish().await;
}

#[tokio::test]
async fn a_pop3_inbox_moves_into_the_imap_target_once() {
    let d = dovecot();
    let from = d.unique_user("pop3-src");
    let to = d.unique_user("pop3-dst");
    d.seed(
        &from,
        "INBOX",
        (0..12).map(|i| SeedMessage::new(sample_message(i, 250))),
    );
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    for expected in [12, 0] {
        let imap = target(&to, &state).await;
        let source = Source::pop3(d.server(Proto::Pop3, Security::Tls), from.credentials());
        let engine = Engine::new(
            source,
            imap,
            TcpConnector,
            Arc::new(TokioTimer),
            EngineOptions::default(),
        );
        let report = engine.run().await.expect("migration");
        let copied: u64 = report.folders.iter().map(|f| f.counts.copied_this_run).sum();
        assert_eq!(copied, expected, "{report:?}");
    }
    let stored = bodies(&to, "INBOX").await;
    let want: BTreeSet<String> = (0..12).map(|i| sha256_hex(&sample_message(i, 250))).collect();
    assert_eq!(
        stored.iter().map(|b| sha256_hex(b)).collect::<BTreeSet<_>>(),
        want
    );
    assert_eq!(stored.len(), 12);
}
