//! The engine end to end against the private Dovecot: IMAP (and POP3) sources into the
//! built-in Maildir and IMAP targets, checked through Dovecot's own view of both sides.

#[path = "fault_proxy/mod.rs"]
mod fault_proxy;
mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use fault_proxy::{Fault, FaultProxy};
use futures::FutureExt;
use mailmigrate::Result;
use mailmigrate::folder::{Layout, PlanOptions, TargetListing};
use mailmigrate::net::{ManualClock, Security, ServerConfig, Timer, TokioTimer};
use mailmigrate::store::{Imap, ImapOptions, Maildir, MaildirOptions, STATE_FILE_NAME};
use mailmigrate::sync::{
    Engine, EngineOptions, FingerprintCounts, Message, Migrator, Report, Retry, Source, SyncState,
    TargetFolder, TcpConnector, Watch,
};
use support::{Dovecot, Proto, SeedMessage, TestUser, dovecot, sample_date, sample_message, sha256_hex};

/// Folders of the sample source, with how many messages each gets.
const FOLDERS: &[(&str, usize)] = &[
    ("INBOX", 120),
    ("Sent", 30),
    ("Drafts", 3),
    ("项目/2024", 12),
    ("A+B", 4),
    ("Q&A", 4),
    ("a*b", 3),
    ("back\\slash", 3),
    ("Archive/Old.Stuff", 5),
];

const FLAG_SETS: &[&[&str]] = &[
    &[],
    &["\\Seen"],
    &["\\Seen", "\\Answered"],
    &["\\Flagged"],
    &["\\Seen", "$Forwarded"],
    &["\\Draft", "Work"],
    &["\\Seen", "\\Flagged", "$Label1", "项目"],
];

/// Seeds the sample source: flags, keywords, dates, two identical messages in INBOX and a
/// 5 MB message.
fn seed_source(d: &Dovecot, user: &TestUser) -> usize {
    let mut total = 0;
    let mut n = 0;
    for &(folder, count) in FOLDERS {
        let messages: Vec<SeedMessage> = (0..count)
            .map(|_| {
                n += 1;
                let flags: Vec<&str> = FLAG_SETS[n % FLAG_SETS.len()]
                    .iter()
                    .copied()
                    .filter(|f| f.is_ascii())
                    .collect();
                SeedMessage::new(sample_message(n, 500 + (n * 37) % 3000))
                    .with_flags(&flags)
                    .received_at(sample_date(n))
            })
            .collect();
        total += d.seed(user, folder, messages);
    }
    // The same message twice in one folder is two messages.
    let twin = sample_message(9_999, 1_000);
    total += d.seed(
        user,
        "INBOX",
        [SeedMessage::new(twin.clone()), SeedMessage::new(twin)],
    );
    total += d.seed(
        user,
        "INBOX",
        [SeedMessage::new(sample_message(10_000, 5 << 20)).with_flags(&["\\Seen"])],
    );
    total
}

fn imap_source(d: &Dovecot, user: &TestUser) -> Source {
    let server = d
        .server(Proto::Imap, Security::Plaintext)
        .with_timeout(Duration::from_secs(3600));
    Source::imap(server, user.credentials())
}

fn engine<M: Migrator>(
    source: Source,
    target: M,
    timer: Arc<dyn Timer>,
    options: EngineOptions,
) -> Engine<M, TcpConnector> {
    Engine::new(source, target, TcpConnector, timer, options)
}

/// An IMAP → Maildir engine with default options on the real clock.
fn default_run(d: &Dovecot, user: &TestUser, root: &Path) -> Engine<Maildir, TcpConnector> {
    engine(
        imap_source(d, user),
        open_maildir(root),
        Arc::new(TokioTimer),
        EngineOptions::default(),
    )
}

/// One message as Dovecot shows it: body digest, flags (sorted, without `\Recent`) and
/// received date.
type Shown = (String, Vec<String>, i64);

/// Every message of `mailbox`, as a sorted multiset. `location` overrides the user's mail
/// location (to read a Maildir written by the crate); `dir` is the mailbox's directory on
/// disk, where the bodies are read byte for byte.
fn shown(d: &Dovecot, user: &TestUser, location: Option<&Path>, mailbox: &str, dir: &Path) -> Vec<Shown> {
    let mut args: Vec<String> = vec!["-f".into(), "tab".into()];
    if let Some(root) = location {
        args.extend(["-o".into(), format!("mail_location=maildir:{}", root.display())]);
    }
    args.extend(
        [
            "fetch",
            "-u",
            &user.name,
            "guid flags date.received.unixtime",
            "mailbox",
            mailbox,
            "all",
        ]
        .map(String::from),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = d.doveadm_ok(&args);
    let files: Vec<PathBuf> = ["cur", "new"]
        .iter()
        .filter_map(|sub| std::fs::read_dir(dir.join(sub)).ok())
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    let mut messages: Vec<Shown> = out
        .lines()
        .skip(1)
        .map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            let (guid, flags, date) = (cols[0], cols[1], cols[2]);
            let file = files
                .iter()
                .find(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with(guid))
                })
                .unwrap_or_else(|| panic!("no file for {guid} in {}", dir.display()));
            // Dovecot stores what arrives by APPEND with bare LF line ends (mail_save_crlf =
            // no) and serves it with CRLF: compare messages as IMAP serves them.
            let body = crlf(&std::fs::read(file).expect("read message file"));
            let mut flags: Vec<String> = flags
                .split_whitespace()
                .filter(|f| *f != "\\Recent")
                .map(str::to_owned)
                .collect();
            flags.sort();
            (sha256_hex(&body), flags, date.parse().expect("unixtime"))
        })
        .collect();
    messages.sort();
    messages
}

/// `raw` with every bare LF turned into CRLF.
fn crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 32);
    for (i, &b) in raw.iter().enumerate() {
        if b == b'\n' && (i == 0 || raw[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

/// Source folder (UTF-8, `/`) → its messages; and the same for the target via the report.
fn compare(d: &Dovecot, user: &TestUser, maildir: &Maildir, report: &Report) {
    let mut compared = 0;
    for folder in &report.folders {
        let Some(path) = &folder.target else { continue };
        if folder.skipped_because.is_some() {
            continue;
        }
        let source = shown(
            d,
            user,
            None,
            &folder.source,
            &d.mailbox_dir(user, &folder.source),
        );
        let target_folder = TargetFolder {
            path: path.components().to_vec(),
            role: folder.role,
        };
        let dir = maildir.folder_dir(&target_folder).expect("target dir");
        let name = if path.components() == ["INBOX"] {
            "INBOX".to_owned()
        } else {
            path.join('/')
        };
        let target = shown(d, user, Some(maildir.root()), &name, &dir);
        assert_eq!(
            source.len(),
            target.len(),
            "{} → {name}: message count",
            folder.source
        );
        assert_eq!(
            source, target,
            "{} → {name}: bodies, flags and dates",
            folder.source
        );
        compared += source.len();
    }
    assert!(compared > 0, "nothing compared");
}

fn target_dir(prefix: &str) -> (tempfile::TempDir, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("tempdir");
    // Dovecot reads the maildir as its mail user: it must be able to enter the directory.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let root = dir.path().join("Maildir");
    (dir, root)
}

/// A Maildir the test Dovecot's mail user (`nobody` when we are root) can read.
fn open_maildir(root: &Path) -> Maildir {
    use std::os::unix::fs::MetadataExt;
    let running_as_root = std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false);
    let options = if running_as_root {
        MaildirOptions::default().owner(65534, 65534)
    } else {
        MaildirOptions::default()
    };
    Maildir::open_with(root, options).expect("open maildir")
}

#[tokio::test]
async fn imap_to_maildir_copies_every_folder_exactly_and_a_second_run_copies_nothing() {
    let d = dovecot();
    let user = d.unique_user("e2e");
    let seeded = seed_source(d, &user);
    let (_guard, root) = target_dir("e2e");

    let run = default_run(d, &user, &root);
    let report = run.run().await.expect("first run");
    let totals = report.totals();
    assert_eq!(totals.copied_this_run as usize, seeded, "{report:#?}");
    assert_eq!(totals.failed, 0);
    assert_eq!(totals.copied, totals.known);

    // Mirror layout: system folders by role, custom folders by name, sanitised where needed.
    let target_of = |source: &str| {
        let folder = report
            .folders
            .iter()
            .find(|f| f.source == source)
            .unwrap_or_else(|| panic!("{source}"));
        folder.target.as_ref().map(|p| p.components().to_vec())
    };
    assert_eq!(target_of("INBOX"), Some(vec!["INBOX".to_owned()]));
    assert_eq!(target_of("Sent"), Some(vec!["Sent".to_owned()]));
    assert_eq!(
        target_of("项目/2024"),
        Some(vec!["项目".to_owned(), "2024".to_owned()])
    );
    assert_eq!(target_of("A+B"), Some(vec!["A+B".to_owned()]));
    assert_eq!(target_of("Q&A"), Some(vec!["Q&A".to_owned()]));
    let sanitized = target_of("a*b").unwrap();
    assert_ne!(
        sanitized,
        vec!["a*b".to_owned()],
        "'*' is not valid in a Maildir++ name"
    );
    let maildir = run.migrator();
    compare(d, &user, maildir, &report);

    let again = default_run(d, &user, &root);
    let second = again.run().await.expect("second run");
    assert_eq!(second.totals().copied_this_run, 0, "{second:#?}");
    assert_eq!(second.totals().copied, totals.copied);
    compare(d, &user, again.migrator(), &report);
}

/// A run whose source connection was cut, with what is needed to check it.
struct CutRun {
    report: Report,
    proxy: FaultProxy,
    seeded: usize,
    user: TestUser,
    run: Engine<Maildir, TcpConnector>,
    _dir: tempfile::TempDir,
}

/// One run through a proxy that cuts the first source connection after 1 MB from the
/// server: that connection lists the folders, then copies INBOX, whose 5 MB message is
/// then coming.
async fn run_with_source_cut(prefix: &str, options: EngineOptions) -> CutRun {
    run_with_source_fault(prefix, Fault::DropAfterServerBytes(1_000_000), options).await
}

async fn run_with_source_fault(prefix: &str, fault: Fault, options: EngineOptions) -> CutRun {
    let d = dovecot();
    let user = d.unique_user(prefix);
    let seeded = seed_source(d, &user);
    let (dir, root) = target_dir(prefix);
    let upstream = std::net::SocketAddr::from(([127, 0, 0, 1], d.port(Proto::Imap, Security::Plaintext)));
    let proxy = FaultProxy::start(upstream, vec![fault]).await;
    let via_proxy = ServerConfig::new("127.0.0.1", proxy.port(), Security::Plaintext)
        .with_timeout(Duration::from_secs(3600));
    let run = engine(
        Source::imap(via_proxy, user.credentials()),
        open_maildir(&root),
        Arc::new(TokioTimer),
        options,
    );
    let report = run
        .run()
        .await
        .expect("a dropped connection does not end the run");
    CutRun {
        report,
        proxy,
        seeded,
        user,
        run,
        _dir: dir,
    }
}

fn quick_retries() -> EngineOptions {
    EngineOptions {
        retry: Retry {
            first_delay: Duration::from_millis(10),
            ..Retry::default()
        },
        ..EngineOptions::default()
    }
}

#[tokio::test]
async fn a_source_connection_dropped_mid_folder_is_reopened_and_the_folder_finished_in_the_same_run() {
    let cut = run_with_source_cut("retry", quick_retries()).await;
    assert!(cut.proxy.connections() >= 2, "the cut connection was replaced");
    let report = &cut.report;
    let totals = report.totals();
    assert_eq!(totals.copied_this_run as usize, cut.seeded, "{report:#?}");
    assert_eq!(totals.copied, totals.known);
    assert_eq!(totals.failed, 0);
    assert!(report.folders.iter().all(|f| f.errors.is_empty()), "{report:#?}");
    compare(dovecot(), &cut.user, cut.run.migrator(), report);
}

#[tokio::test]
async fn a_source_connection_dropped_while_listing_the_folders_is_opened_again() {
    let cut = run_with_source_fault("retry-list", Fault::DropAtServerText("* LIST"), quick_retries()).await;
    assert!(cut.proxy.connections() >= 2, "the cut connection was replaced");
    let totals = cut.report.totals();
    assert_eq!(totals.copied_this_run as usize, cut.seeded, "{:#?}", cut.report);
    assert_eq!(totals.failed, 0);
    compare(dovecot(), &cut.user, cut.run.migrator(), &cut.report);
}

#[tokio::test]
async fn without_retries_a_dropped_source_connection_leaves_the_folder_for_the_next_run() {
    let no_retry = EngineOptions {
        retry: Retry {
            attempts: 0,
            ..Retry::default()
        },
        ..EngineOptions::default()
    };
    let cut = run_with_source_cut("no-retry", no_retry).await;
    let inbox = cut
        .report
        .folders
        .iter()
        .find(|f| f.source == "INBOX")
        .expect("INBOX");
    assert_eq!(inbox.errors.len(), 1, "{inbox:#?}");
    assert!(inbox.counts.copied < inbox.counts.known, "{inbox:#?}");
    assert!((cut.report.totals().copied_this_run as usize) < cut.seeded);
}

#[tokio::test]
async fn a_since_date_skips_older_mail_and_counts_it_once_even_when_a_folder_is_retried() {
    // INBOX gets one message an hour from sample_date(1): SINCE two days later leaves out
    // about the first two days (IMAP compares dates, not times).
    let options = EngineOptions {
        since: Some(sample_date(1) + Duration::from_secs(2 * 86_400)),
        ..quick_retries()
    };
    let cut = run_with_source_cut("since", options).await;
    assert!(cut.proxy.connections() >= 2, "the cut connection was replaced");
    let inbox = cut
        .report
        .folders
        .iter()
        .find(|f| f.source == "INBOX")
        .expect("INBOX");
    assert_eq!(inbox.counts.failed, 0, "{inbox:#?}");
    assert!(inbox.errors.is_empty(), "{inbox:#?}");
    assert!(inbox.counts.skipped > 24, "{inbox:#?}");
    assert!(inbox.counts.copied_this_run > 24, "{inbox:#?}");
    // The retry scanned INBOX again; the older mail is still counted once.
    assert_eq!(
        inbox.counts.skipped + inbox.counts.copied_this_run,
        inbox.counts.known,
        "each INBOX message is copied or skipped, once: {inbox:#?}"
    );
    assert_eq!(
        inbox_files(cut.run.migrator()).len() as u64,
        inbox.counts.copied_this_run
    );
}

#[tokio::test]
async fn imap_to_imap_user_to_user_copies_every_folder_exactly_and_a_second_run_copies_nothing() {
    let d = dovecot();
    let from = d.unique_user("i2i-src");
    let to = d.unique_user("i2i-dst");
    let seeded = seed_source(d, &from);
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state.json");
    let target_server = d
        .server(Proto::Imap, Security::Tls)
        .with_timeout(Duration::from_secs(3600));
    let run = || async {
        let target = Imap::connect(
            target_server.clone(),
            to.credentials(),
            Arc::new(TokioTimer),
            ImapOptions::new(&state),
        )
        .await
        .expect("target");
        let engine = engine(
            imap_source(d, &from),
            target,
            Arc::new(TokioTimer),
            EngineOptions::default(),
        );
        engine.run().await.expect("run")
    };
    let report = run().await;
    assert_eq!(report.totals().copied_this_run as usize, seeded, "{report:#?}");
    assert_eq!(report.totals().failed, 0);

    let mut compared = 0;
    for folder in report.folders.iter().filter(|f| f.skipped_because.is_none()) {
        let path = folder.target.as_ref().expect("target").join('/');
        let source = shown(
            d,
            &from,
            None,
            &folder.source,
            &d.mailbox_dir(&from, &folder.source),
        );
        let target = shown(d, &to, None, &path, &d.mailbox_dir(&to, &path));
        assert_eq!(
            source, target,
            "{} → {path}: bodies, flags and dates",
            folder.source
        );
        compared += source.len();
    }
    assert_eq!(compared, seeded);

    let second = run().await;
    assert_eq!(second.totals().copied_this_run, 0, "{second:#?}");
}

#[tokio::test]
async fn under_address_layout_puts_everything_below_the_source_address() {
    let d = dovecot();
    let user = d.unique_user("under");
    d.seed(
        &user,
        "INBOX",
        (0..3).map(|i| SeedMessage::new(sample_message(i, 300))),
    );
    d.seed(
        &user,
        "Sent",
        (3..5).map(|i| SeedMessage::new(sample_message(i, 300))),
    );
    let (_guard, root) = target_dir("under");
    let options = EngineOptions {
        plan: PlanOptions {
            layout: Layout::UnderAddress {
                root: "old@example.com".into(),
            },
            ..PlanOptions::default()
        },
        ..EngineOptions::default()
    };
    let run = engine(
        imap_source(d, &user),
        open_maildir(&root),
        Arc::new(TokioTimer),
        options,
    );
    let report = run.run().await.expect("run");
    for folder in report.folders.iter().filter(|f| f.skipped_because.is_none()) {
        let path = folder.target.as_ref().expect("target");
        assert!(path.components()[0].starts_with("old@example"), "{path:?}");
        assert_eq!(path.len(), 2, "{path:?}");
    }
    compare(d, &user, run.migrator(), &report);
}

/// Wraps a Maildir and calls `after_batch` with the running total after every stored batch.
/// When it returns `true` the store never completes: the engine never hears of the batch, as
/// if the process died right there, and the test drops the run.
struct Hooked {
    inner: Maildir,
    stored: AtomicU64,
    after_batch: Box<dyn Fn(u64) -> bool + Send + Sync>,
    /// How many messages each saved state recorded, in the order the saves completed.
    saves: std::sync::Mutex<Vec<u64>>,
}

impl Hooked {
    fn new(inner: Maildir, after_batch: impl Fn(u64) -> bool + Send + Sync + 'static) -> Hooked {
        Hooked {
            inner,
            stored: AtomicU64::new(0),
            after_batch: Box::new(after_batch),
            saves: Default::default(),
        }
    }
}

impl Migrator for Hooked {
    async fn prepare_folder(&self, folder: &TargetFolder) -> Result<()> {
        self.inner.prepare_folder(folder).await
    }
    async fn store(&self, folder: &TargetFolder, message: Message) -> Result<()> {
        self.inner.store(folder, message).await
    }
    async fn store_batch(&self, folder: &TargetFolder, messages: Vec<Message>) -> Vec<Result<()>> {
        let n = messages.len() as u64;
        let results = self.inner.store_batch(folder, messages).await;
        if (self.after_batch)(self.stored.fetch_add(n, Ordering::SeqCst) + n) {
            futures::future::pending::<()>().await;
        }
        results
    }
    async fn target_listing(&self) -> Result<TargetListing> {
        self.inner.target_listing().await
    }
    async fn load_state(&self) -> Result<Option<SyncState>> {
        self.inner.load_state().await
    }
    async fn save_state(&self, state: &SyncState) -> Result<()> {
        // A slow save now and then, so saves from parallel workers would overtake each other.
        if state.copied_count() % 3 == 1 {
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
        self.inner.save_state(state).await?;
        self.saves.lock().unwrap().push(state.copied_count());
        Ok(())
    }
    async fn fingerprints(&self, folder: &TargetFolder) -> Result<Option<FingerprintCounts>> {
        self.inner.fingerprints(folder).await
    }
}

#[tokio::test]
async fn saves_from_parallel_workers_reach_the_host_in_order() {
    let d = dovecot();
    let user = d.unique_user("saves");
    let seeded = seed_source(d, &user);
    let (_guard, root) = target_dir("saves");
    let options = EngineOptions {
        batch_messages: 4,
        connections: 3,
        ..EngineOptions::default()
    };
    let run = engine(
        imap_source(d, &user),
        Hooked::new(open_maildir(&root), |_| false),
        Arc::new(TokioTimer),
        options,
    );
    let report = run.run().await.expect("run");
    assert_eq!(report.totals().copied_this_run as usize, seeded);
    let saves = run.migrator().saves.lock().unwrap().clone();
    assert!(saves.len() > 10, "{saves:?}");
    assert!(
        saves.windows(2).all(|w| w[0] <= w[1]),
        "an older state was saved after a newer one: {saves:?}"
    );
    assert_eq!(saves.last().copied(), Some(seeded as u64));
}

#[tokio::test]
async fn a_run_dropped_at_any_point_resumes_with_nothing_lost_and_nothing_twice() {
    let d = dovecot();
    let user = d.unique_user("resume");
    let seeded = seed_source(d, &user);
    let (_guard, root) = target_dir("resume");
    let options = || EngineOptions {
        batch_messages: 7,
        fetch_chunk: 25,
        connections: 2,
        ..EngineOptions::default()
    };

    for stop_after in [1, 8, 50, 120] {
        let target = Hooked::new(open_maildir(&root), move |stored| stored >= stop_after);
        let run = engine(imap_source(d, &user), target, Arc::new(TokioTimer), options());
        let interrupted = tokio::time::timeout(Duration::from_secs(30), async {
            futures::select! {
                report = run.run().fuse() => panic!("the run should have been interrupted: {report:?}"),
                () = wait_until(|| run.migrator().stored.load(Ordering::SeqCst) >= stop_after).fuse() => {}
            }
        })
        .await;
        assert!(interrupted.is_ok(), "never reached {stop_after} stored messages");
        drop(run);
    }

    let run = engine(
        imap_source(d, &user),
        open_maildir(&root),
        Arc::new(TokioTimer),
        options(),
    );
    let report = run.run().await.expect("final run");
    assert_eq!(report.totals().copied as usize, seeded, "{report:#?}");
    assert_eq!(report.totals().failed, 0);
    compare(d, &user, run.migrator(), &report);
}

#[tokio::test]
async fn messages_and_folders_deleted_at_the_source_mid_run_are_skipped_and_reported() {
    let d = dovecot();
    let user = d.unique_user("vanish");
    d.seed(
        &user,
        "INBOX",
        (0..60).map(|i| SeedMessage::new(sample_message(70_000 + i, 300))),
    );
    d.seed(
        &user,
        "Zdoomed",
        (0..5).map(|i| SeedMessage::new(sample_message(70_100 + i, 300))),
    );
    let (_guard, root) = target_dir("vanish");
    // Folders are copied in the plan's order (raw names: INBOX before Zdoomed), one at a time
    // on one connection. After INBOX's first batch, another client deletes INBOX messages
    // that were listed but not fetched yet, and the whole folder Zdoomed.
    let name = user.name.clone();
    let meddled = std::sync::atomic::AtomicBool::new(false);
    let target = Hooked::new(open_maildir(&root), move |_| {
        if !meddled.swap(true, Ordering::SeqCst) {
            d.doveadm_ok(&["expunge", "-u", &name, "mailbox", "INBOX", "uid", "41:50"]);
            d.doveadm_ok(&["mailbox", "delete", "-u", &name, "Zdoomed"]);
        }
        false
    });
    let options = EngineOptions {
        batch_messages: 5,
        fetch_chunk: 10,
        connections: 1,
        ..EngineOptions::default()
    };
    let run = engine(imap_source(d, &user), target, Arc::new(TokioTimer), options);
    let report = run
        .run()
        .await
        .expect("a vanished folder or message is not an error");
    let folder = |name: &str| report.folders.iter().find(|f| f.source == name).expect(name);
    let inbox = folder("INBOX");
    assert_eq!(inbox.counts.copied_this_run, 50, "{report:#?}");
    assert_eq!(inbox.counts.skipped, 10, "the ten deleted mid-run: {report:#?}");
    let doomed = folder("Zdoomed");
    assert_eq!(doomed.counts.copied_this_run, 0, "{report:#?}");
    assert!(
        doomed
            .skipped_because
            .as_deref()
            .unwrap_or_default()
            .contains("vanished"),
        "{report:#?}"
    );
    assert_eq!(report.totals().failed, 0, "{report:#?}");
    assert!(inbox.errors.is_empty() && doomed.errors.is_empty(), "{report:#?}");
}

async fn wait_until(mut done: impl FnMut() -> bool) {
    while !done() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The default watch window.
const WINDOW: Duration = Duration::from_secs(30 * 86_400);

fn watch_every(poll: Duration) -> Watch {
    Watch {
        window: WINDOW,
        poll_interval: poll,
    }
}

/// The message files of the Maildir's INBOX.
fn inbox_files(maildir: &Maildir) -> Vec<PathBuf> {
    let inbox = TargetFolder {
        path: vec!["INBOX".into()],
        role: None,
    };
    let dir = maildir.folder_dir(&inbox).expect("INBOX");
    ["cur", "new"]
        .iter()
        .filter_map(|s| std::fs::read_dir(dir.join(s)).ok())
        .flatten()
        .map(|e| e.expect("entry").path())
        .collect()
}

/// SHA-256 of every message in the Maildir's INBOX, sorted.
fn inbox_digests(maildir: &Maildir) -> Vec<String> {
    let mut digests: Vec<String> = inbox_files(maildir)
        .iter()
        .map(|f| sha256_hex(&std::fs::read(f).expect("read")))
        .collect();
    digests.sort();
    digests
}

#[tokio::test]
async fn a_uidvalidity_reset_or_a_lost_state_copies_nothing_twice() {
    let d = dovecot();
    let user = d.unique_user("uidvalidity");
    // The same mail keeps its internal date when a folder is recreated (e.g. restored).
    let seed = |i: usize| SeedMessage::new(sample_message(i, 800)).received_at(sample_date(i));
    let twin = || SeedMessage::new(sample_message(29_999, 600)).received_at(sample_date(29_999));
    d.seed(&user, "Projects", (20_000..20_040).map(seed));
    d.seed(&user, "Projects", [twin(), twin()]);
    let (_guard, root) = target_dir("uidvalidity");
    let first = default_run(d, &user, &root).run().await.expect("first run");
    assert_eq!(first.totals().copied_this_run, 42);

    // The folder is recreated at the source with the same mail (and one new message):
    // a new UIDVALIDITY, so UIDs mean nothing and content must decide.
    d.doveadm_ok(&["mailbox", "delete", "-u", &user.name, "Projects"]);
    d.seed(&user, "Projects", (20_000..20_040).map(seed));
    d.seed(&user, "Projects", [twin(), twin()]);
    d.seed(&user, "Projects", [seed(30_000)]);
    let run = default_run(d, &user, &root);
    let report = run.run().await.expect("after the reset");
    assert_eq!(report.totals().copied_this_run, 1, "{report:#?}");
    compare(d, &user, run.migrator(), &report);

    // The state file is lost: the same again.
    std::fs::remove_file(root.join(STATE_FILE_NAME)).expect("remove state");
    let run = default_run(d, &user, &root);
    let report = run.run().await.expect("after losing the state");
    assert_eq!(report.totals().copied_this_run, 0, "{report:#?}");
    compare(d, &user, run.migrator(), &report);
}

#[tokio::test]
async fn watch_mode_copies_new_mail_within_one_poll_or_at_once_with_idle_and_stops_when_the_window_closes() {
    let d = dovecot();
    let user = d.unique_user("watch");
    d.seed(
        &user,
        "INBOX",
        (0..5).map(|i| SeedMessage::new(sample_message(40_000 + i, 400))),
    );
    let (_guard, root) = target_dir("watch");
    let clock = ManualClock::new();
    let poll = Duration::from_secs(300);
    let options = EngineOptions {
        watch: Some(watch_every(poll)),
        ..EngineOptions::default()
    };
    let run = engine(
        imap_source(d, &user),
        open_maildir(&root),
        Arc::new(clock.clone()),
        options,
    );
    let mut running = Box::pin(run.run().fuse());
    // Drive the engine until it sleeps between passes: its only timer is the poll, not a
    // network timeout (those are an hour here).
    let idle = |expected: usize| {
        let clock = clock.clone();
        let migrator = run.migrator();
        async move {
            wait_until(|| {
                inbox_files(migrator).len() == expected
                    && clock.pending_sleeps() == 1
                    && clock.next_wake() == Some(poll)
            })
            .await;
        }
    };
    futures::select! {
        r = running => panic!("watch mode ended early: {r:?}"),
        () = idle(5).fuse() => {}
    }
    // New mail arrives; one poll interval later it is in the target.
    d.seed(&user, "INBOX", [SeedMessage::new(sample_message(40_100, 400))]);
    clock.advance(poll);
    futures::select! {
        r = running => panic!("watch mode ended early: {r:?}"),
        () = idle(6).fuse() => {}
    }
    // With IMAP IDLE on the INBOX, new mail starts a pass at once, before the next poll.
    d.seed(&user, "INBOX", [SeedMessage::new(sample_message(40_101, 400))]);
    let before = clock.now();
    futures::select! {
        r = running => panic!("watch mode ended early: {r:?}"),
        () = idle(7).fuse() => {}
    }
    assert_eq!(clock.now(), before, "IDLE, not the clock, brought the message");
    // Thirty days later the window has closed: the run ends by itself.
    clock.advance(WINDOW);
    let report = tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .expect("window closed")
        .expect("run");
    assert_eq!(report.passes, 3, "{report:#?}");
    assert_eq!(report.totals().copied, 7);
    assert_eq!(report.totals().copied_this_run, 7);
}

#[tokio::test]
async fn watch_mode_outlives_a_source_outage_and_copies_the_mail_that_came_meanwhile() {
    let d = dovecot();
    let user = d.unique_user("outage");
    d.seed(
        &user,
        "INBOX",
        (0..5).map(|i| SeedMessage::new(sample_message(45_000 + i, 400))),
    );
    let (_guard, root) = target_dir("outage");
    let upstream = std::net::SocketAddr::from(([127, 0, 0, 1], d.port(Proto::Imap, Security::Plaintext)));
    let proxy = FaultProxy::start(upstream, Vec::new()).await;
    let via_proxy = ServerConfig::new("127.0.0.1", proxy.port(), Security::Plaintext)
        .with_timeout(Duration::from_secs(3600));
    let clock = ManualClock::new();
    let poll = Duration::from_secs(300);
    let options = EngineOptions {
        watch: Some(watch_every(poll)),
        // No retries within a pass: the outage outlasts them anyway.
        retry: Retry {
            attempts: 0,
            ..Retry::default()
        },
        ..EngineOptions::default()
    };
    let run = engine(
        Source::imap(via_proxy, user.credentials()),
        open_maildir(&root),
        Arc::new(clock.clone()),
        options,
    );
    let mut running = Box::pin(run.run().fuse());
    let sleeping = |expected: usize, connections_over: usize| {
        let clock = clock.clone();
        let migrator = run.migrator();
        let proxy = &proxy;
        async move {
            wait_until(|| {
                inbox_files(migrator).len() == expected
                    && proxy.connections() > connections_over
                    && clock.pending_sleeps() == 1
                    && clock.next_wake() == Some(poll)
            })
            .await;
        }
    };
    futures::select! {
        r = running => panic!("watch mode ended early: {r:?}"),
        () = sleeping(5, 0).fuse() => {}
    }
    // The source goes down; the next pass fails, and the engine waits for the next poll.
    proxy.set_down(true);
    let before_outage = proxy.connections();
    clock.advance(poll);
    futures::select! {
        r = running => panic!("an outage ended watch mode: {r:?}"),
        () = sleeping(5, before_outage).fuse() => {}
    }
    // Mail arrives during the outage; the source comes back; the next poll copies it.
    d.seed(&user, "INBOX", [SeedMessage::new(sample_message(45_100, 400))]);
    proxy.set_down(false);
    let after_outage = proxy.connections();
    clock.advance(poll);
    futures::select! {
        r = running => panic!("watch mode ended early: {r:?}"),
        () = sleeping(6, after_outage).fuse() => {}
    }
    clock.advance(WINDOW);
    let report = tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .expect("window closed")
        .expect("run");
    assert_eq!(report.passes, 2, "the failed pass is not counted: {report:#?}");
    assert_eq!(report.totals().copied, 6);
    assert_eq!(report.totals().copied_this_run, 6);
}

#[tokio::test]
async fn a_pop3_connection_dropped_mid_download_is_opened_again_and_the_inbox_finished() {
    let d = dovecot();
    let user = d.unique_user("pop3cut");
    let messages: Vec<Vec<u8>> = (0..30).map(|i| sample_message(60_000 + i, 20_000)).collect();
    d.seed(&user, "INBOX", messages.iter().cloned().map(SeedMessage::new));
    let (_guard, root) = target_dir("pop3cut");
    let upstream = std::net::SocketAddr::from(([127, 0, 0, 1], d.port(Proto::Pop3, Security::Plaintext)));
    // 300 KB in: about the fifteenth of thirty 20 KB messages.
    let proxy = FaultProxy::start(upstream, vec![Fault::DropAfterServerBytes(300_000)]).await;
    let via_proxy = ServerConfig::new("127.0.0.1", proxy.port(), Security::Plaintext)
        .with_timeout(Duration::from_secs(3600));
    let run = engine(
        Source::pop3(via_proxy, user.credentials()),
        open_maildir(&root),
        Arc::new(TokioTimer),
        quick_retries(),
    );
    let report = run.run().await.expect("the dropped connection is retried");
    assert_eq!(proxy.connections(), 2, "one reconnection");
    assert_eq!(report.totals().known, 30);
    assert_eq!(report.totals().copied, 30, "{report:#?}");
    let target = inbox_digests(run.migrator());
    let mut source: Vec<String> = messages.iter().map(|m| sha256_hex(m)).collect();
    source.sort();
    assert_eq!(source, target, "every message once");
}

#[tokio::test]
async fn a_pop3_source_moves_the_inbox_only() {
    let d = dovecot();
    let user = d.unique_user("pop3src");
    d.seed(
        &user,
        "INBOX",
        (0..25).map(|i| SeedMessage::new(sample_message(50_000 + i, 700))),
    );
    d.seed(
        &user,
        "Other",
        (0..4).map(|i| SeedMessage::new(sample_message(50_100 + i, 700))),
    );
    let (_guard, root) = target_dir("pop3src");
    let server: ServerConfig = d.server(Proto::Pop3, Security::Tls);
    let run = engine(
        Source::pop3(server.clone(), user.credentials()),
        open_maildir(&root),
        Arc::new(TokioTimer),
        EngineOptions::default(),
    );
    let report = run.run().await.expect("pop3 run");
    assert_eq!(report.folders.len(), 1);
    assert_eq!(report.totals().copied_this_run, 25);
    let target = inbox_digests(run.migrator());
    let mut source: Vec<String> = (0..25)
        .map(|i| sha256_hex(&sample_message(50_000 + i, 700)))
        .collect();
    source.sort();
    assert_eq!(source, target);
    let mailboxes = std::fs::read_dir(&root)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .count();
    assert_eq!(mailboxes, 0, "POP3 has only the inbox");
    // Read-only: the source still holds everything; a second run copies nothing.
    assert_eq!(d.fetch(&user, "INBOX", "uid", &["all"]).len(), 25);
    let again = engine(
        Source::pop3(server, user.credentials()),
        open_maildir(&root),
        Arc::new(TokioTimer),
        EngineOptions::default(),
    );
    assert_eq!(
        again
            .run()
            .await
            .expect("second pop3 run")
            .totals()
            .copied_this_run,
        0
    );
}

#[tokio::test]
async fn a_dry_run_counts_and_writes_nothing() {
    let d = dovecot();
    let user = d.unique_user("dry");
    d.seed(
        &user,
        "INBOX",
        (0..9).map(|i| SeedMessage::new(sample_message(60_000 + i, 300))),
    );
    let (_guard, root) = target_dir("dry");
    let options = EngineOptions {
        dry_run: true,
        ..EngineOptions::default()
    };
    let run = engine(
        imap_source(d, &user),
        open_maildir(&root),
        Arc::new(TokioTimer),
        options,
    );
    let report = run.run().await.expect("dry run");
    assert!(report.dry_run);
    assert_eq!(report.totals().known, 9);
    assert_eq!(report.totals().copied_this_run, 0);
    assert!(!root.join(STATE_FILE_NAME).exists());
}
