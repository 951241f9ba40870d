//! The engine: one account, from the source server into a [`Migrator`].

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use futures::io::{AsyncRead, AsyncWrite};

use crate::folder::{Decision, FolderPlan, ListedFolder, PlanOptions, Role, SourceListing, TargetPath};
use crate::imap::codec::{Flag, InternalDate, KnownCode, MailboxName, StatusAttribute};
use crate::imap::{CommandFailed, FetchItems, FetchedMessage, Session, SessionOptions};
use crate::net::{MaybeTls, ServerConfig, Timer};
use crate::sync::report::{Counts, FolderReport, Report};
use crate::sync::{Event, Fingerprint, Message, Migrator, SkipReason, SourceId, SyncState, TargetFolder};
use crate::{Credentials, Error, ErrorKind, Result, Uid, UidSet};

/// Opens the TCP connections the engine needs. The `tokio` feature supplies
/// [`TcpConnector`]; hosts on another runtime implement this trait.
pub trait Connector: Send + Sync + fmt::Debug {
    /// The connected byte stream (plain TCP; the engine does TLS itself).
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// Connects to `server`'s host and port.
    fn connect(&self, server: &ServerConfig) -> impl Future<Output = Result<Self::Stream>> + Send;
}

/// TCP connections on tokio.
#[cfg(feature = "tokio")]
#[derive(Debug, Clone, Copy, Default)]
pub struct TcpConnector;

#[cfg(feature = "tokio")]
impl Connector for TcpConnector {
    type Stream = crate::net::TcpStream;
    async fn connect(&self, server: &ServerConfig) -> Result<Self::Stream> {
        crate::net::connect_tcp(server).await
    }
}

/// The old mailbox: which server, which protocol, which account.
#[derive(Debug, Clone)]
pub enum Source {
    /// An IMAP server: every folder, per the folder plan.
    Imap {
        /// Where it is.
        server: ServerConfig,
        /// The account.
        credentials: Credentials,
        /// Session limits and options (ID, pipelining).
        session: SessionOptions,
    },
    /// A POP3 server: the inbox only.
    Pop3 {
        /// Where it is.
        server: ServerConfig,
        /// The account.
        credentials: Credentials,
    },
}

impl Source {
    /// An IMAP source with default session options.
    pub fn imap(server: ServerConfig, credentials: Credentials) -> Source {
        Source::Imap {
            server,
            credentials,
            session: SessionOptions::default(),
        }
    }

    /// A POP3 source.
    pub fn pop3(server: ServerConfig, credentials: Credentials) -> Source {
        Source::Pop3 { server, credentials }
    }
}

/// Keep copying new mail after the first pass, until the window closes. Between passes the
/// engine waits with IMAP IDLE on the source's INBOX where offered (new mail there starts the
/// next pass at once) and polls every folder at `poll_interval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watch {
    /// How long after the start to keep watching (the guide's window: 30 days by default).
    pub window: Duration,
    /// How often to look for new mail.
    pub poll_interval: Duration,
}

impl Default for Watch {
    fn default() -> Self {
        Watch {
            window: Duration::from_secs(30 * 24 * 3600),
            poll_interval: Duration::from_secs(300),
        }
    }
}

/// How the engine runs. `Default` gives sensible values for a real migration.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Folder layout, exclusions, role names.
    pub plan: PlanOptions,
    /// Only messages received on or after this date (IMAP `SINCE`, day granularity).
    pub since: Option<SystemTime>,
    /// Messages larger than this are skipped (and reported), not copied.
    pub max_message_size: Option<u64>,
    /// Plan and count, write nothing.
    pub dry_run: bool,
    /// Connections to the source, each copying one folder at a time.
    pub connections: usize,
    /// UIDs asked for in one `UID FETCH`.
    pub fetch_chunk: u32,
    /// Messages handed to [`Migrator::store_batch`] at once; the state is saved after each
    /// batch, so a crash re-offers at most this many messages per folder.
    pub batch_messages: usize,
    /// Bytes handed to [`Migrator::store_batch`] at once (a batch ends at whichever limit
    /// comes first). With `connections`, this bounds the engine's memory.
    pub batch_bytes: u64,
    /// Keep copying new mail after the first pass.
    pub watch: Option<Watch>,
    /// How often a folder is tried again, within one pass, after a transient error.
    pub retry: Retry,
}

/// Retries of a folder after a transient error ([`ErrorKind::Transient`]: a dropped
/// connection, a timeout, a server that is busy or throttling), on a new connection, with
/// waits that double from `first_delay` up to `max_delay`; longer when the server asked
/// for longer ([`CommandFailed::suggested_backoff`], honoured up to 15 minutes). Each retry
/// resumes from the saved state, so nothing is copied twice. Other errors are not retried:
/// a wrong password or a full target will not go away by waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Retries per folder and pass; 0 reports the error at once (the next pass or run
    /// picks the folder up again).
    pub attempts: u32,
    /// The wait before the first retry.
    pub first_delay: Duration,
    /// The longest wait.
    pub max_delay: Duration,
}

/// The longest server-suggested wait honoured before a retry.
const MAX_SUGGESTED_BACKOFF: Duration = Duration::from_secs(15 * 60);

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 3,
            first_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(60),
        }
    }
}

impl Retry {
    /// The wait before retry number `attempt` (1 for the first).
    pub fn delay(&self, attempt: u32) -> Duration {
        let doubled = self
            .first_delay
            .saturating_mul(1u32.checked_shl(attempt.saturating_sub(1)).unwrap_or(u32::MAX));
        doubled.min(self.max_delay)
    }
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            plan: PlanOptions::default(),
            since: None,
            max_message_size: None,
            dry_run: false,
            connections: 3,
            fetch_chunk: 2000,
            batch_messages: 200,
            batch_bytes: 16 << 20,
            watch: None,
            retry: Retry::default(),
        }
    }
}

/// Moves one account from a [`Source`] into a [`Migrator`].
///
/// Run it again at any time: it copies only what is missing. Drop its future at any point
/// (a crash, Ctrl-C): the state saved after every batch lets the next run resume without
/// losing or duplicating a message.
#[derive(Debug)]
pub struct Engine<M, C> {
    source: Source,
    migrator: M,
    connector: C,
    timer: Arc<dyn Timer>,
    options: EngineOptions,
    /// UIDs counted as skipped for being older than `since`, per source folder, so a folder
    /// scanned again (a retry, a later pass) counts only those it has not counted yet.
    before_since: Mutex<HashMap<MailboxName, UidSet>>,
}

/// A folder to copy, as planned.
#[derive(Debug, Clone)]
struct Job {
    /// Index of the folder in the report.
    index: usize,
    source: MailboxName,
    display: String,
    target: TargetFolder,
    /// Retries so far in this pass.
    attempts: u32,
}

/// What the folder workers share.
struct Shared {
    state: Mutex<SyncState>,
    report: Mutex<Report>,
    queue: Mutex<VecDeque<Job>>,
    /// Held across a whole save, with the snapshot taken inside it: saves from several
    /// workers then reach the host in order, and an older snapshot never overwrites a newer.
    saving: futures::lock::Mutex<()>,
}

impl Shared {
    fn new(state: SyncState, report: Report, queue: VecDeque<Job>) -> Shared {
        Shared {
            state: Mutex::new(state),
            report: Mutex::new(report),
            queue: Mutex::new(queue),
            saving: futures::lock::Mutex::new(()),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The data behind these locks stays consistent between statements; go on after a panic
    // elsewhere rather than poison the whole migration.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

type ImapSession<C> = Session<MaybeTls<<C as Connector>::Stream>>;

impl<M: Migrator, C: Connector> Engine<M, C> {
    /// An engine for `source` into `migrator`.
    pub fn new(
        source: Source,
        migrator: M,
        connector: C,
        timer: Arc<dyn Timer>,
        options: EngineOptions,
    ) -> Self {
        Engine {
            source,
            migrator,
            connector,
            timer,
            options,
            before_since: Mutex::new(HashMap::new()),
        }
    }

    /// The migrator (e.g. to inspect a built-in store after the run).
    pub fn migrator(&self) -> &M {
        &self.migrator
    }

    /// Runs the migration: one pass, then with [`EngineOptions::watch`] further passes until
    /// the window closes. While watching, a pass that fails for a passing reason (the source
    /// is down; [`ErrorKind::Transient`] after the retries) is reported as
    /// [`Event::Retrying`] and the next poll tries again; other errors end the run.
    pub async fn run(&self) -> Result<Report> {
        let started = self.timer.now();
        let mut report = Report {
            dry_run: self.options.dry_run,
            ..Report::default()
        };
        let watching = self.options.watch.filter(|_| !self.options.dry_run);
        let mut failed_passes = 0;
        loop {
            let before = watching.map(|_| report.clone());
            let pass = match &self.source {
                Source::Imap { .. } => self.imap_pass(report).await,
                // POP3 is one folder on one connection: the pass is what is retried.
                Source::Pop3 { .. } => self.retrying("INBOX", || self.pop3_pass(report.clone())).await,
            };
            report = match (pass, before, watching) {
                (Ok(mut next), _, _) => {
                    failed_passes = 0;
                    next.passes += 1;
                    next
                }
                // Watching for weeks, an outage of the source must not end the window: the
                // next poll tries again. What is copied is saved; the report stays as it was.
                (Err(err), Some(before), Some(watch)) if err.kind() == ErrorKind::Transient => {
                    failed_passes += 1;
                    self.migrator.event(&Event::Retrying {
                        source: String::new(),
                        error: err.to_string(),
                        attempt: failed_passes,
                        delay: watch.poll_interval,
                    });
                    before
                }
                (Err(err), _, _) => return Err(err),
            };
            let Some(watch) = watching else {
                return Ok(report);
            };
            let deadline = started + watch.window;
            let now = self.timer.now();
            if now >= deadline {
                return Ok(report);
            }
            let left = deadline.duration_since(now).unwrap_or_default();
            self.wait_for_news(watch.poll_interval.min(left)).await;
            if self.timer.now() >= deadline {
                return Ok(report);
            }
        }
    }

    /// Waits up to `max` for new mail: with IMAP IDLE on the source's INBOX where the server
    /// offers it (new mail then starts the next pass at once), else by sleeping. Any trouble
    /// with IDLE falls back to sleeping out the rest: the next pass reports real errors.
    async fn wait_for_news(&self, max: Duration) {
        let start = self.timer.now();
        if let Source::Imap { .. } = &self.source
            && let Ok(mut session) = self.open_imap().await
        {
            let inbox = MailboxName::from_raw(&b"INBOX"[..]);
            if session.capabilities().has("IDLE") && session.examine(&inbox).await.is_ok() {
                let idled = match session.idle().await {
                    Ok(mut idle) => {
                        let waited = idle.wait(max).await;
                        let _ = idle.done().await;
                        waited.is_ok()
                    }
                    Err(_) => false,
                };
                let _ = session.logout().await;
                if idled {
                    return;
                }
            }
        }
        let waited = self.timer.now().duration_since(start).unwrap_or_default();
        if let Some(rest) = max.checked_sub(waited) {
            self.timer.sleep(rest).await;
        }
    }

    async fn open_imap(&self) -> Result<ImapSession<C>> {
        let Source::Imap {
            server,
            credentials,
            session,
        } = &self.source
        else {
            unreachable_source()?
        };
        let stream = self.connector.connect(server).await?;
        let mut session = Session::establish(stream, server, self.timer.clone(), session.clone()).await?;
        if !session.greeting().preauth {
            session.login(credentials).await?;
        }
        Ok(session)
    }

    async fn imap_pass(&self, previous: Report) -> Result<Report> {
        // Listing is retried like a folder after a transient error ("" names it in events).
        let (first, source_listing) = self.retrying("", || self.open_and_list()).await?;
        let target_listing = self.migrator.target_listing().await?;
        let mut state = self.migrator.load_state().await?.unwrap_or_else(SyncState::new);
        check_format(&state)?;

        let mut plan_options = self.options.plan.clone();
        for folder in &state.folders {
            if !folder.target.is_empty() {
                plan_options
                    .previous
                    .entry(folder.source.to_mailbox_name())
                    .or_insert_with(|| TargetPath::new(folder.target.iter().cloned()));
            }
        }
        let plan = FolderPlan::build(&source_listing, &target_listing, &plan_options);

        let mut report = Report {
            passes: previous.passes,
            dry_run: self.options.dry_run,
            folders: Vec::new(),
        };
        let mut jobs = VecDeque::new();
        let mut parents_only = Vec::new();
        for entry in plan.entries() {
            let display = entry.source.decode().text;
            let old = previous.folders.iter().find(|f| f.source == display);
            let mut folder = FolderReport {
                source: display.clone(),
                ..FolderReport::default()
            };
            if let Some(old) = old {
                folder.counts = Counts {
                    copied_this_run: old.counts.copied_this_run,
                    ..old.counts
                };
                folder.counts.skipped = old.counts.skipped;
                folder.counts.failed = 0;
            }
            match &entry.decision {
                Decision::Copy { path, role } => {
                    folder.target = Some(path.clone());
                    folder.role = *role;
                    let target = TargetFolder {
                        path: path.components().to_vec(),
                        role: *role,
                    };
                    let index = report.folders.len();
                    jobs.push_back(Job {
                        index,
                        source: entry.source.clone(),
                        display,
                        target,
                        attempts: 0,
                    });
                }
                Decision::CreateOnly { path } => {
                    folder.target = Some(path.clone());
                    folder.skipped_because = Some("holds no messages; created as a parent folder".into());
                    parents_only.push(TargetFolder {
                        path: path.components().to_vec(),
                        role: None,
                    });
                }
                Decision::Skip(reason) => {
                    folder.skipped_because = Some(format!("{reason:?}"));
                    self.migrator.event(&Event::Skipped {
                        source: display,
                        reason: SkipReason::FolderExcluded(format!("{reason:?}")),
                    });
                }
            }
            report.folders.push(folder);
        }

        if !self.options.dry_run {
            // Parents first, so hierarchies are created top-down.
            let mut targets: Vec<&TargetFolder> = parents_only
                .iter()
                .chain(jobs.iter().map(|j| &j.target))
                .collect();
            targets.sort_by(|a, b| a.path.len().cmp(&b.path.len()).then_with(|| a.path.cmp(&b.path)));
            targets.dedup();
            for target in targets {
                self.migrator.prepare_folder(target).await?;
            }
            // Record the mapping now, so the next run keeps these names even if this one dies.
            for job in &jobs {
                let folder = state.folder_mut(&job.source);
                folder.target = job.target.path.clone();
            }
            self.migrator.save_state(&state).await?;
        }

        // Settle the folders with nothing new here, on the first connection, so that a
        // re-run with nothing new opens no further connection (a login costs the server
        // a process: ~15 ms each on Dovecot, the bulk of such a run).
        let mut first = Some(first);
        if !self.options.dry_run {
            let mut changed = VecDeque::with_capacity(jobs.len());
            while let Some(job) = jobs.pop_front() {
                let Some(session) = first.as_mut().filter(|s| !s.is_closed()) else {
                    changed.push_back(job);
                    continue;
                };
                // Any failure here is left to the worker, which reports it properly.
                let status = session.status(&job.source, &UNCHANGED_CHECK).await.ok();
                let saved = state.folder(&job.source);
                match (status, saved) {
                    (Some(status), Some(saved)) if nothing_new(saved, &status) => {
                        if let Some(folder) = report.folders.get_mut(job.index) {
                            folder.counts.known = u64::from(status.messages.unwrap_or(0));
                            folder.counts.copied = saved.copied.len().min(folder.counts.known);
                        }
                    }
                    _ => changed.push_back(job),
                }
            }
            jobs = changed;
        }

        let workers = self.options.connections.max(1).min(jobs.len().max(1));
        let shared = Shared::new(state, report, jobs);
        let mut tasks = Vec::with_capacity(workers);
        for _ in 0..workers {
            tasks.push(self.imap_worker(first.take(), &shared));
        }
        let results = futures::future::join_all(tasks).await;
        // A fatal error (bad credentials, a target that refuses everything) stops the pass.
        for result in results {
            result?;
        }
        let state = shared.state.into_inner().unwrap_or_else(PoisonError::into_inner);
        if !self.options.dry_run {
            self.migrator.save_state(&state).await?;
        }
        Ok(shared.report.into_inner().unwrap_or_else(PoisonError::into_inner))
    }

    /// Takes folders off the shared queue until it is empty, on its own connection.
    async fn imap_worker(&self, session: Option<ImapSession<C>>, shared: &Shared) -> Result<()> {
        let mut session = session;
        loop {
            let Some(job) = lock(&shared.queue).pop_front() else {
                break;
            };
            if session.as_ref().is_none_or(|s| s.is_closed()) {
                match self.open_imap().await {
                    Ok(opened) => session = Some(opened),
                    Err(err) if self.retries_left(&err, &job) => {
                        self.retry_later(shared, job, &err).await;
                        continue;
                    }
                    Err(err) => return Err(err),
                }
            }
            let Some(live) = session.as_mut() else { continue };
            match self.copy_folder(live, &job, shared).await {
                Ok(()) => {}
                Err(err) if is_fatal(&err) => return Err(err),
                Err(err) if self.retries_left(&err, &job) => {
                    // A new connection for the retry: the old one may be unusable even if
                    // it does not know it yet (a timeout mid-response).
                    session = None;
                    self.retry_later(shared, job, &err).await;
                }
                Err(err) => {
                    // Transient or folder-specific: note it and go on; the next pass retries.
                    let mut report = lock(&shared.report);
                    if let Some(folder) = report.folders.get_mut(job.index) {
                        folder.errors.push(err.to_string());
                    }
                    drop(report);
                    self.migrator.event(&Event::Failed {
                        source: job.display.clone(),
                        error: err.to_string(),
                    });
                    if session.as_ref().is_some_and(|s| s.is_closed()) {
                        session = None;
                    }
                }
            }
        }
        if let Some(session) = session {
            // Best effort: the work is saved; a failed LOGOUT changes nothing.
            let _ = session.logout().await;
        }
        Ok(())
    }

    fn retries_left(&self, err: &Error, job: &Job) -> bool {
        err.kind() == ErrorKind::Transient && job.attempts < self.options.retry.attempts
    }

    /// Waits, then puts `job` back on the queue for another try.
    async fn retry_later(&self, shared: &Shared, mut job: Job, err: &Error) {
        job.attempts += 1;
        self.wait_to_retry(&job.display, job.attempts, err).await;
        lock(&shared.queue).push_back(job);
    }

    /// Says that `source` (a folder, or "" for the folder list) is retried, and waits.
    async fn wait_to_retry(&self, source: &str, attempt: u32, err: &Error) {
        let mut delay = self.options.retry.delay(attempt);
        if let Some(asked) = CommandFailed::of(err).and_then(CommandFailed::suggested_backoff) {
            // Coming back sooner than asked only prolongs the throttling.
            delay = delay.max(asked.min(MAX_SUGGESTED_BACKOFF));
        }
        self.migrator.event(&Event::Retrying {
            source: source.to_owned(),
            error: err.to_string(),
            attempt,
            delay,
        });
        self.timer.sleep(delay).await;
    }

    /// Runs `step` again after a transient error, up to the configured retries, waiting
    /// between tries; `source` names what is retried in [`Event::Retrying`].
    async fn retrying<T, F, Fut>(&self, source: &str, mut step: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut attempt = 0;
        loop {
            match step().await {
                Err(err) if err.kind() == ErrorKind::Transient && attempt < self.options.retry.attempts => {
                    attempt += 1;
                    self.wait_to_retry(source, attempt, &err).await;
                }
                other => return other,
            }
        }
    }

    /// The first connection of a pass and the source's folders (retried: see `imap_pass`).
    async fn open_and_list(&self) -> Result<(ImapSession<C>, SourceListing)> {
        let mut session = self.open_imap().await?;
        let listing = list_source(&mut session).await?;
        Ok((session, listing))
    }

    async fn copy_folder(&self, session: &mut ImapSession<C>, job: &Job, shared: &Shared) -> Result<()> {
        let status = match session.status(&job.source, &UNCHANGED_CHECK).await {
            Ok(status) => status,
            Err(err) if vanished(&err) => return self.folder_vanished(job, shared),
            Err(err) => return Err(err),
        };
        let saved = lock(&shared.state).folder(&job.source).cloned();
        if let Some(saved) = &saved
            && nothing_new(saved, &status)
            && !self.options.dry_run
        {
            let mut report = lock(&shared.report);
            if let Some(folder) = report.folders.get_mut(job.index) {
                folder.counts.known = u64::from(status.messages.unwrap_or(0));
                folder.counts.copied = saved.copied.len().min(folder.counts.known);
            }
            return Ok(());
        }

        let mailbox = match session.examine(&job.source).await {
            Ok(mailbox) => mailbox,
            Err(err) if vanished(&err) => return self.folder_vanished(job, shared),
            Err(err) => return Err(err),
        };
        let uid_validity = mailbox.uid_validity.unwrap_or(0);
        let uid_next = mailbox.uid_next;

        // What the source holds: every UID with its size, in one round trip.
        let mut present = Vec::with_capacity(mailbox.exists as usize);
        if mailbox.exists > 0 {
            let all = UidSet::range(Uid::MIN, Uid::MAX);
            let items = FetchItems {
                flags: false,
                internal_date: false,
                size: true,
                body: false,
                modseq: false,
                header: false,
            };
            let mut stream = session.uid_fetch(&all, items).await?;
            while let Some(message) = stream.next().await {
                let message = message?;
                present.push((message.uid, u64::from(message.size.unwrap_or(0))));
            }
        }
        present.sort_unstable();
        let present_set: UidSet = present.iter().map(|&(uid, _)| uid).collect();
        let size_of = |uid: Uid| {
            present
                .binary_search_by_key(&uid, |&(u, _)| u)
                .map_or(0, |i| present[i].1)
        };

        // The state's UIDs only mean something under the same UIDVALIDITY.
        let recovering = saved.as_ref().is_none_or(|s| s.uid_validity != uid_validity);
        let mut copied = match &saved {
            Some(s) if !recovering => s.copied.clone(),
            _ => UidSet::new(),
        };
        let mut wanted = present_set.difference(&copied);
        if let Some(since) = self.options.since {
            let matching = session.uid_search(&format!("SINCE {}", imap_date(since))).await?;
            let before: UidSet = wanted.difference(&matching);
            wanted = wanted.difference(&before);
            let skipped = {
                let mut counted = lock(&self.before_since);
                let counted = counted.entry(job.source.clone()).or_default();
                let new = before.difference(counted);
                for (first, last) in new.ranges() {
                    counted.insert_range(first, last);
                }
                new.len()
            };
            self.count_skipped(shared, job, skipped, SkipReason::BeforeSinceDate);
        }
        if let Some(max) = self.options.max_message_size {
            let too_large: UidSet = wanted.iter().filter(|&uid| size_of(uid) > max).collect();
            for uid in too_large.iter() {
                // Settled: recorded as done so it is not fetched again on every pass.
                copied.insert(uid);
                self.count_skipped(shared, job, 1, SkipReason::TooLarge { size: size_of(uid) });
            }
            wanted = wanted.difference(&too_large);
        }
        let known = present.len() as u64;
        let known_bytes: u64 = present.iter().map(|&(_, size)| size).sum();
        let remaining_bytes: u64 = wanted.iter().map(size_of).sum();
        {
            let mut report = lock(&shared.report);
            if let Some(folder) = report.folders.get_mut(job.index) {
                folder.counts.known = known;
                folder.counts.known_bytes = known_bytes;
                folder.counts.copied = present_set.len() - present_set.difference(&copied).len();
            }
        }
        self.migrator.event(&Event::FolderStarted {
            source: job.display.clone(),
            target: job.target.clone(),
            known,
            remaining: wanted.len(),
            remaining_bytes,
        });
        if self.options.dry_run {
            let mut report = lock(&shared.report);
            if let Some(folder) = report.folders.get_mut(job.index) {
                folder.counts.known = known;
            }
            return Ok(());
        }

        // After a UIDVALIDITY change or a lost state, the target's content decides.
        let mut in_target = if recovering && !wanted.is_empty() {
            self.migrator
                .fingerprints(&job.target)
                .await?
                .filter(|c| c.total() > 0)
        } else {
            None
        };
        {
            let mut state = lock(&shared.state);
            let folder = state.folder_mut(&job.source);
            folder.uid_validity = uid_validity;
            folder.copied = copied.clone();
            folder.target = job.target.path.clone();
        }

        let mut failures = 0u64;
        for chunk in wanted.chunks(self.options.fetch_chunk.max(1)) {
            let mut stream = session.uid_fetch(&chunk, FetchItems::MIGRATION).await?;
            let mut batch = Vec::new();
            let mut batch_bytes = 0u64;
            let mut seen = UidSet::new();
            while let Some(fetched) = stream.next().await {
                let fetched = fetched?;
                seen.insert(fetched.uid);
                let Some(message) = self.message(job, uid_validity, fetched) else {
                    continue;
                };
                if let Some(counts) = in_target.as_mut()
                    && counts.take(&message.fingerprint)
                {
                    self.settle_skipped(shared, job, &message, SkipReason::AlreadyInTarget);
                    continue;
                }
                batch_bytes += message.raw.len() as u64;
                batch.push(message);
                if batch.len() >= self.options.batch_messages || batch_bytes >= self.options.batch_bytes {
                    failures += self.store_batch(shared, job, std::mem::take(&mut batch)).await?;
                    batch_bytes = 0;
                }
            }
            drop(stream);
            failures += self.store_batch(shared, job, batch).await?;
            let vanished = chunk.difference(&seen).len();
            if vanished > 0 {
                self.count_skipped(shared, job, vanished, SkipReason::VanishedAtSource);
            }
        }
        if failures == 0 {
            let mut state = lock(&shared.state);
            state.folder_mut(&job.source).uid_next = uid_next;
        }
        self.save(shared).await?;
        self.migrator.event(&Event::FolderFinished {
            source: job.display.clone(),
        });
        Ok(())
    }

    /// Saves the current state; see [`Shared::saving`] for why the snapshot is taken inside
    /// the lock.
    async fn save(&self, shared: &Shared) -> Result<()> {
        let _in_order = shared.saving.lock().await;
        let snapshot = lock(&shared.state).clone();
        self.migrator.save_state(&snapshot).await
    }

    /// The message to store, `None` (reported) when the server sent no body.
    fn message(&self, job: &Job, uid_validity: u32, fetched: FetchedMessage) -> Option<Message> {
        let raw = fetched.body?;
        Some(Message {
            fingerprint: Fingerprint::of_message(&raw),
            raw,
            flags: fetched.flags.into_iter().filter(|f| *f != Flag::Recent).collect(),
            internal_date: fetched.internal_date,
            source: SourceId::Imap {
                folder: job.source.clone(),
                uid_validity,
                uid: fetched.uid,
            },
        })
    }

    /// Stores a batch, records what landed and saves the state; returns how many failed.
    async fn store_batch(&self, shared: &Shared, job: &Job, batch: Vec<Message>) -> Result<u64> {
        if batch.is_empty() {
            return Ok(0);
        }
        let ids: Vec<(SourceId, u64)> = batch
            .iter()
            .map(|m| (m.source.clone(), m.raw.len() as u64))
            .collect();
        let results = self.migrator.store_batch(&job.target, batch).await;
        let mut failed = 0;
        let mut first_fatal = None;
        {
            let mut state = lock(&shared.state);
            let mut report = lock(&shared.report);
            let folder_report = report.folders.get_mut(job.index);
            let mut counts = Counts::default();
            let mut errors = Vec::new();
            for ((id, bytes), result) in ids.into_iter().zip(results) {
                match result {
                    Ok(()) => {
                        match &id {
                            SourceId::Imap { uid, .. } => {
                                state.folder_mut(&job.source).copied.insert(*uid);
                            }
                            SourceId::Pop3 { uidl } => {
                                state
                                    .pop3
                                    .get_or_insert_with(Default::default)
                                    .copied_uidls
                                    .insert(uidl.clone());
                            }
                        }
                        counts.copied += 1;
                        counts.copied_this_run += 1;
                        counts.copied_bytes += bytes;
                        self.migrator.event(&Event::Copied {
                            source: job.display.clone(),
                            bytes,
                        });
                    }
                    Err(err) => {
                        failed += 1;
                        counts.failed += 1;
                        if errors.len() < 5 {
                            errors.push(err.to_string());
                        }
                        self.migrator.event(&Event::Failed {
                            source: job.display.clone(),
                            error: err.to_string(),
                        });
                        if is_fatal(&err) && first_fatal.is_none() {
                            first_fatal = Some(err);
                        }
                    }
                }
            }
            if let Some(folder) = folder_report {
                folder.counts.copied = (folder.counts.copied + counts.copied).min(folder.counts.known);
                folder.counts.copied_this_run += counts.copied_this_run;
                folder.counts.copied_bytes += counts.copied_bytes;
                folder.counts.failed += counts.failed;
                folder.errors.extend(errors);
                folder.errors.truncate(5);
            }
        }
        self.save(shared).await?;
        match first_fatal {
            Some(err) => Err(err),
            None => Ok(failed),
        }
    }

    fn settle_skipped(&self, shared: &Shared, job: &Job, message: &Message, reason: SkipReason) {
        if let SourceId::Imap { uid, .. } = &message.source {
            lock(&shared.state).folder_mut(&job.source).copied.insert(*uid);
        }
        let mut report = lock(&shared.report);
        if let Some(folder) = report.folders.get_mut(job.index) {
            folder.counts.skipped += 1;
            folder.counts.copied = (folder.counts.copied + 1).min(folder.counts.known);
        }
        drop(report);
        self.migrator.event(&Event::Skipped {
            source: job.display.clone(),
            reason,
        });
    }

    fn count_skipped(&self, shared: &Shared, job: &Job, n: u64, reason: SkipReason) {
        if n == 0 {
            return;
        }
        let mut report = lock(&shared.report);
        if let Some(folder) = report.folders.get_mut(job.index) {
            folder.counts.skipped += n;
        }
        drop(report);
        self.migrator.event(&Event::Skipped {
            source: job.display.clone(),
            reason,
        });
    }

    fn folder_vanished(&self, job: &Job, shared: &Shared) -> Result<()> {
        let mut report = lock(&shared.report);
        if let Some(folder) = report.folders.get_mut(job.index) {
            folder.skipped_because = Some("the folder vanished from the source during the migration".into());
        }
        drop(report);
        self.migrator.event(&Event::Skipped {
            source: job.display.clone(),
            reason: SkipReason::FolderExcluded("vanished at the source".into()),
        });
        Ok(())
    }

    async fn pop3_pass(&self, previous: Report) -> Result<Report> {
        let Source::Pop3 { server, credentials } = &self.source else {
            unreachable_source()?
        };
        let stream = self.connector.connect(server).await?;
        let mut session =
            crate::pop3::Session::from_stream(stream, server, self.timer.clone(), Default::default()).await?;
        session.login(credentials).await?;

        // The inbox is the only folder POP3 has: plan it like an IMAP INBOX.
        let listing = SourceListing::new([ListedFolder::new("INBOX", None, Vec::<String>::new())]);
        let target_listing = self.migrator.target_listing().await?;
        let plan = FolderPlan::build(&listing, &target_listing, &self.options.plan);
        let inbox = MailboxName::from_raw(&b"INBOX"[..]);
        let (path, role) = match plan.entry(&inbox).map(|e| &e.decision) {
            Some(Decision::Copy { path, role }) => (path.clone(), *role),
            _ => (TargetPath::new(["INBOX"]), Some(Role::Inbox)),
        };
        let target = TargetFolder {
            path: path.components().to_vec(),
            role,
        };
        let job = Job {
            index: 0,
            source: inbox,
            display: "INBOX".into(),
            target: target.clone(),
            attempts: 0,
        };

        let mut state = self.migrator.load_state().await?.unwrap_or_else(SyncState::new);
        check_format(&state)?;
        let done = state
            .pop3
            .get_or_insert_with(Default::default)
            .copied_uidls
            .clone();

        let ids = session.unique_ids().await?;
        let sizes = session.list().await?;
        let size_of = |msg: u32| sizes.iter().find(|l| l.msg == msg).map_or(0, |l| l.size);
        let mut report = Report {
            passes: previous.passes,
            dry_run: self.options.dry_run,
            folders: Vec::new(),
        };
        let mut folder = FolderReport {
            source: "INBOX".into(),
            target: Some(path),
            role,
            ..FolderReport::default()
        };
        if let Some(old) = previous.folders.first() {
            folder.counts.copied_this_run = old.counts.copied_this_run;
            folder.counts.copied_bytes = old.counts.copied_bytes;
            folder.counts.skipped = old.counts.skipped;
        }
        folder.counts.known = ids.len() as u64;
        folder.counts.known_bytes = sizes.iter().map(|l| l.size).sum();
        folder.counts.copied = ids.iter().filter(|e| done.contains(&e.uid)).count() as u64;
        let wanted: Vec<_> = ids.into_iter().filter(|e| !done.contains(&e.uid)).collect();
        report.folders.push(folder);
        self.migrator.event(&Event::FolderStarted {
            source: job.display.clone(),
            target: target.clone(),
            known: report.folders[0].counts.known,
            remaining: wanted.len() as u64,
            remaining_bytes: wanted.iter().map(|e| size_of(e.msg)).sum(),
        });
        if self.options.dry_run {
            let _ = session.quit().await;
            return Ok(report);
        }
        self.migrator.prepare_folder(&target).await?;
        state.pop3.get_or_insert_with(Default::default);
        self.migrator.save_state(&state).await?;
        let shared = Shared::new(state, report, VecDeque::new());

        let mut batch = Vec::new();
        let mut batch_bytes = 0u64;
        for entry in wanted {
            if let Some(max) = self.options.max_message_size
                && size_of(entry.msg) > max
            {
                let mut report = lock(&shared.report);
                report.folders[0].counts.skipped += 1;
                drop(report);
                self.migrator.event(&Event::Skipped {
                    source: job.display.clone(),
                    reason: SkipReason::TooLarge {
                        size: size_of(entry.msg),
                    },
                });
                continue;
            }
            let raw = session.retr(entry.msg).await?;
            batch_bytes += raw.len() as u64;
            batch.push(Message {
                fingerprint: Fingerprint::of_message(&raw),
                raw,
                flags: Vec::new(),
                internal_date: None,
                source: SourceId::Pop3 { uidl: entry.uid },
            });
            if batch.len() >= self.options.batch_messages || batch_bytes >= self.options.batch_bytes {
                self.store_batch(&shared, &job, std::mem::take(&mut batch))
                    .await?;
                batch_bytes = 0;
            }
        }
        self.store_batch(&shared, &job, batch).await?;
        // Read-only: QUIT without DELE removes nothing.
        let _ = session.quit().await;
        self.migrator.event(&Event::FolderFinished {
            source: job.display.clone(),
        });
        Ok(shared.report.into_inner().unwrap_or_else(PoisonError::into_inner))
    }
}

/// The source's folders as the planner wants them, with the personal namespace prefix.
async fn list_source<S>(session: &mut Session<S>) -> Result<SourceListing>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let namespaces = if session.capabilities().has("NAMESPACE") {
        session.namespace().await?
    } else {
        None
    };
    let items = session.list_all().await?;
    let folders = items.into_iter().map(ListedFolder::from);
    let mut listing = SourceListing::new(folders);
    if let Some(namespaces) = &namespaces {
        if let Some(personal) = namespaces.personal.first() {
            listing.personal_prefix = personal.prefix.clone();
        }
        // Other users' and shared folders are not this account's mail: the plan skips them.
        listing.other_prefixes = namespaces
            .other_users
            .iter()
            .chain(&namespaces.shared)
            .map(|n| n.prefix.clone())
            .filter(|p| !p.raw().is_empty())
            .collect();
    }
    Ok(listing)
}

/// What a STATUS asks to learn whether a folder holds anything new.
const UNCHANGED_CHECK: [StatusAttribute; 3] = [
    StatusAttribute::Messages,
    StatusAttribute::UidNext,
    StatusAttribute::UidValidity,
];

/// New mail always raises UIDNEXT: unchanged UIDNEXT and UIDVALIDITY mean nothing new.
fn nothing_new(saved: &crate::sync::FolderState, status: &crate::imap::codec::StatusItems) -> bool {
    matches!(
        (status.uid_next, status.uid_validity),
        (Some(uid_next), Some(uid_validity))
            if saved.uid_validity == uid_validity && saved.uid_next == Some(uid_next)
    )
}

/// An error after which going on with other folders is pointless.
fn is_fatal(err: &Error) -> bool {
    matches!(
        err.kind(),
        ErrorKind::Auth | ErrorKind::Io | ErrorKind::Tls | ErrorKind::InvalidInput
    ) || (err.kind() == ErrorKind::TargetRefused
        && CommandFailed::of(err).is_some_and(|f| f.has_code(KnownCode::OverQuota)))
}

/// Whether the source says the folder does not exist (renamed or deleted mid-run).
fn vanished(err: &Error) -> bool {
    CommandFailed::of(err).is_some_and(|f| f.has_code(KnownCode::NonExistent))
        || (err.kind() == ErrorKind::SourceRefused && err.message().to_ascii_lowercase().contains("exist"))
}

fn check_format(state: &SyncState) -> Result<()> {
    if state.format > crate::sync::STATE_FORMAT {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "the saved state has format {}, newer than this version understands ({}); upgrade mailmigrate",
                state.format,
                crate::sync::STATE_FORMAT
            ),
        ));
    }
    Ok(())
}

fn unreachable_source<T>() -> Result<T> {
    Err(Error::new(
        ErrorKind::InvalidInput,
        "internal: wrong source kind for this pass",
    ))
}

/// `d-Mon-yyyy` (RFC 3501 date) of a time, in UTC: the date part of its INTERNALDATE form.
fn imap_date(time: SystemTime) -> String {
    let unix = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let full = InternalDate {
        unix,
        offset_minutes: 0,
    }
    .to_imap_string();
    full.trim_start().split(' ').next().unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imap_dates_are_rfc3501_dates_in_utc() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_709_251_200); // 2024-03-01
        assert_eq!(imap_date(t), "1-Mar-2024");
        assert_eq!(imap_date(SystemTime::UNIX_EPOCH), "1-Jan-1970");
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(imap_date(leap), "29-Feb-2000");
    }

    #[test]
    fn retry_waits_double_up_to_the_cap_without_overflowing() {
        let retry = Retry {
            attempts: 100,
            first_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(60),
        };
        let waits: Vec<u64> = (1..=7).map(|n| retry.delay(n).as_secs()).collect();
        assert_eq!(waits, vec![2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(retry.delay(40), Duration::from_secs(60));
        assert_eq!(retry.delay(u32::MAX), Duration::from_secs(60));
    }
}
