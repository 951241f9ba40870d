//! [`Imap`]: the built-in IMAP target, APPENDing into any IMAP server.

mod journal;
mod names;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures::lock::{Mutex as AsyncMutex, MutexGuard as AsyncMutexGuard};

use crate::folder::{ListedFolder, TargetListing, TargetRules};
use crate::imap::codec::{Code, KnownCode, MailboxName};
use crate::imap::{
    AppendMessage, AppendUid, CommandFailed, FetchItems, Session, SessionOptions, SessionState,
};
use crate::net::{MaybeTls, ServerConfig, Timer};
#[cfg(feature = "tokio")]
use crate::sync::TcpConnector;
use crate::sync::{Connector, Fingerprint, FingerprintCounts, Message, Migrator, SyncState, TargetFolder};
use crate::{Credentials, Error, ErrorKind, Result, Uid, UidSet};

use journal::{Journal, Pending, SourceKey};
use names::{Naming, appendable_flags, message_id, search_criteria};

/// How long the folder must not grow before messages in flight are looked for.
const SETTLE_INTERVAL: Duration = Duration::from_secs(1);
/// At most this many intervals are waited for (a busy INBOX may never stop growing).
const SETTLE_ROUNDS: usize = 10;

/// A session to the target over the connector's streams.
type Conn<C> = Session<MaybeTls<<C as Connector>::Stream>>;

/// How an [`Imap`] target works.
///
/// ```
/// use mailmigrate::store::ImapOptions;
/// let options = ImapOptions::new("/var/lib/mailmigrate/alice.json").connections(3);
/// assert_eq!(options.state_file().to_str(), Some("/var/lib/mailmigrate/alice.json"));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ImapOptions {
    state_file: PathBuf,
    connections: usize,
    session: SessionOptions,
    subscribe: bool,
    sync: bool,
}

impl ImapOptions {
    /// Options keeping the state in the JSON file `state_file` (created on the first save;
    /// its directory must exist). Defaults: 2 connections, new folders subscribed, the state
    /// file flushed to disk on every save.
    pub fn new(state_file: impl Into<PathBuf>) -> ImapOptions {
        ImapOptions {
            state_file: state_file.into(),
            connections: 2,
            session: SessionOptions::default(),
            subscribe: true,
            sync: true,
        }
    }

    /// At most this many connections to the target (at least 1), opened as the engine's
    /// workers need them; each worker stores one batch at a time on one connection.
    pub fn connections(mut self, connections: usize) -> Self {
        self.connections = connections.max(1);
        self
    }

    /// Session options (limits, `ID`, pipelining depth of APPEND).
    pub fn session(mut self, session: SessionOptions) -> Self {
        self.session = session;
        self
    }

    /// Whether folders are subscribed when prepared (default `true`), so mail clients that
    /// show only subscribed folders show them.
    pub fn subscribe(mut self, subscribe: bool) -> Self {
        self.subscribe = subscribe;
        self
    }

    /// Whether the state file is flushed to disk (`fsync`) on every write (default `true`).
    /// Without it, a power cut can lose the record of messages already appended, and the next
    /// run would look for them in the target again.
    pub fn sync(mut self, sync: bool) -> Self {
        self.sync = sync;
        self
    }

    /// Where the state is kept.
    pub fn state_file(&self) -> &Path {
        &self.state_file
    }
}

/// An IMAP server as target: the [`Migrator`] that APPENDs into any IMAP server.
///
/// * **Folders.** [`Migrator::target_listing`] lists the server's folders with their
///   special-use attributes, its personal namespace prefix and hierarchy delimiter, so the
///   folder plan finds the server's own Sent, Drafts, ... whatever they are called, and
///   produces names the server accepts (case-insensitive names with `Files` reserved on
///   Exchange and Office 365, recognised by their greeting; Gmail's label rules). A
///   [`TargetFolder`] path becomes the server's name by joining the components with the
///   delimiter under the personal prefix (INBOX and folders below it stay absolute), in
///   modified UTF-7 (UTF-8 once UTF8=ACCEPT is enabled on the session).
///   [`Migrator::prepare_folder`] creates it (an existing folder is fine; parents are created
///   first when the server wants that) and subscribes it.
/// * **Messages** are APPENDed byte for byte with their flags and internal date. With
///   [`Migrator::store_batch`] a batch goes in MULTIAPPEND commands of up to 100 messages
///   where the server offers RFC 3502 (one server transaction each: Dovecot stores them
///   several times faster), otherwise in pipelined single APPENDs
///   ([`Session::append_many`]); under LITERAL+ (or LITERAL-) neither costs a round trip per
///   message. `\Recent` is never
///   sent; keywords are dropped when the folder's PERMANENTFLAGS has no `\*` and does not
///   list them, and other `\` flags unless listed: those messages are stored without them
///   and [`Imap::dropped_flags`] lists what was dropped. A `[TRYCREATE]` answer creates the
///   folder and tries once more; `[OVERQUOTA]` is [`ErrorKind::TargetRefused`] saying the
///   target mailbox is full.
/// * **Idempotence.** Before a batch is sent, an entry per message (its source, target
///   folder, fingerprint, and the folder's UIDVALIDITY and UIDNEXT) is written to the state
///   file and flushed; the entry goes when a saved state records the message as copied, or
///   when the server refused it. A message offered again while it has an entry (the engine
///   re-offers the batch in flight after a crash) is first looked for in the folder, once
///   the folder has stopped growing for a second (the server may still be storing what it
///   received on a broken connection; at most ten seconds are waited): among
///   the messages from that UIDNEXT up (one fetch for the whole batch; only the UID the
///   server reported, APPENDUID, once known), or, when the folder's UIDVALIDITY changed or
///   no UIDNEXT was known, by `UID SEARCH` for its size and `Message-ID` (size alone when it
///   has none). A candidate counts only if its fingerprint (`RFC822.SIZE` +
///   `BODY.PEEK[HEADER]`) matches and no other message was matched to it, so two identical
///   messages in flight are not taken for one. Found, it is not appended again.
/// * **State** is the JSON file [`ImapOptions::new`] names: the [`SyncState`] as the engine
///   saved it, plus the member `imap_pending` with those entries, so it still reads as a
///   `SyncState`. It is replaced atomically (temporary file, flush, rename, flush of the
///   directory). What it records as copied never shrinks: a snapshot older than the one
///   saved before it (the engine's workers save concurrently) keeps the newer one's UIDs.
///   A file that cannot be read is an error naming it, never a silent restart. One `Imap`
///   at a time should use a state file.
/// * **Connections.** Up to [`ImapOptions::connections`] sessions, opened on demand and
///   shared by the engine's workers; a connection that breaks is reopened once and the
///   operation retried (a batch in flight then goes through the check above).
///
/// **Blocking.** The state file is written with plain blocking file I/O (small writes, once
/// per batch), like [`Maildir`](crate::store::Maildir).
///
/// Needs the `serde` feature (on by default) for the state file; [`Imap::connect`] needs
/// `tokio`, [`Imap::open`] works on any runtime through a [`Connector`].
///
/// ```no_run
/// # async fn demo() -> mailmigrate::Result<()> {
/// use std::sync::Arc;
/// use mailmigrate::net::{Security, ServerConfig, TokioTimer};
/// use mailmigrate::store::{Imap, ImapOptions};
/// use mailmigrate::sync::{Engine, EngineOptions, Source, TcpConnector};
/// use mailmigrate::Credentials;
///
/// let old = ServerConfig::new("imap.old-provider.example", 993, Security::Tls);
/// let new = ServerConfig::new("imap.new-provider.example", 993, Security::Tls);
/// let target = Imap::connect(
///     new,
///     Credentials::password("alice@new.example", "app-password"),
///     Arc::new(TokioTimer),
///     ImapOptions::new("alice-state.json"),
/// )
/// .await?;
/// let source = Source::imap(old, Credentials::password("alice@old.example", "old-password"));
/// let engine = Engine::new(source, target, TcpConnector, Arc::new(TokioTimer), EngineOptions::default());
/// let report = engine.run().await?;
/// println!("{} folders", report.folders.len());
/// # Ok(())
/// # }
/// ```
pub struct Imap<C: Connector> {
    connector: C,
    server: ServerConfig,
    credentials: Credentials,
    timer: Arc<dyn Timer>,
    options: ImapOptions,
    naming: Naming,
    pool: Vec<AsyncMutex<Option<Conn<C>>>>,
    turn: AtomicUsize,
    folders: Mutex<HashMap<MailboxName, FolderInfo>>,
    journal: Mutex<Journal>,
    dropped: Mutex<BTreeMap<Vec<String>, BTreeSet<String>>>,
    /// Target messages matched to a re-offered message: (folder, UIDVALIDITY, UID) → whose.
    claimed: Mutex<HashMap<(MailboxName, u32, Uid), SourceKey>>,
}

impl<C: Connector> fmt::Debug for Imap<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Imap")
            .field("server", &self.server.to_string())
            .field("user", &self.credentials.user())
            .field("state_file", &self.options.state_file)
            .field("delimiter", &self.naming.delimiter)
            .field("prefix", &self.naming.prefix)
            .field("connections", &self.pool.len())
            .finish_non_exhaustive()
    }
}

/// What this store knows about one target folder.
#[derive(Debug, Clone, Default)]
struct FolderInfo {
    /// Created (or found) and subscribed.
    prepared: bool,
    /// PERMANENTFLAGS at the last SELECT.
    permanent_flags: Option<Vec<crate::imap::codec::Flag>>,
    uid_validity: Option<u32>,
    /// A UID no higher than the next one the folder hands out.
    uid_floor: Option<u32>,
}

/// Runs `$body` with `$s` bound to a live session, reopening the connection once if it
/// broke (a transient error that closed the session).
macro_rules! on_session {
    ($self:ident, $s:ident => $body:expr) => {{
        let mut slot = $self.slot().await;
        let mut retried = false;
        loop {
            let $s = match $self.live(&mut slot).await {
                Ok(session) => session,
                Err(err) => break Err(err),
            };
            let result = $body;
            match result {
                Err(err) if !retried && $s.is_closed() && err.kind() == ErrorKind::Transient => {
                    retried = true;
                    *slot = None;
                }
                other => break other,
            }
        }
    }};
}

#[cfg(feature = "tokio")]
impl Imap<TcpConnector> {
    /// Connects to `server` over TCP (tokio), logs in and learns the server's namespace and
    /// delimiter. Reads the state file first: a corrupt one fails here, before any network
    /// work.
    pub async fn connect(
        server: ServerConfig,
        credentials: Credentials,
        timer: Arc<dyn Timer>,
        options: ImapOptions,
    ) -> Result<Imap<TcpConnector>> {
        Imap::open(TcpConnector, server, credentials, timer, options).await
    }
}

impl<C: Connector> Imap<C> {
    /// Like [`Imap::connect`], on any runtime: connections come from `connector`.
    pub async fn open(
        connector: C,
        server: ServerConfig,
        credentials: Credentials,
        timer: Arc<dyn Timer>,
        options: ImapOptions,
    ) -> Result<Imap<C>> {
        let journal = Journal::open(options.state_file.clone(), options.sync)?;
        let session = open_session(&connector, &server, &credentials, &timer, &options.session).await?;
        Imap::build(session, connector, server, credentials, timer, options, journal).await
    }

    /// A target around `session`, an established session to `server` (logged in here with
    /// `credentials` if it is not yet). Further connections, and reconnections, come from
    /// `connector`.
    pub async fn from_session(
        session: Conn<C>,
        connector: C,
        server: ServerConfig,
        credentials: Credentials,
        timer: Arc<dyn Timer>,
        options: ImapOptions,
    ) -> Result<Imap<C>> {
        let journal = Journal::open(options.state_file.clone(), options.sync)?;
        Imap::build(session, connector, server, credentials, timer, options, journal).await
    }

    async fn build(
        mut session: Conn<C>,
        connector: C,
        server: ServerConfig,
        credentials: Credentials,
        timer: Arc<dyn Timer>,
        options: ImapOptions,
        journal: Journal,
    ) -> Result<Imap<C>> {
        if session.state() == SessionState::NotAuthenticated {
            session.login(&credentials).await?;
        }
        let namespaces = session.namespace().await?;
        let personal = namespaces.as_ref().and_then(|n| n.personal.first());
        let prefix = personal.map_or_else(
            || MailboxName::from_raw(bytes::Bytes::new()),
            |p| p.prefix.clone(),
        );
        let delimiter = match personal.and_then(|p| p.delimiter) {
            Some(delimiter) => Some(delimiter),
            None => session.delimiter().await?,
        };
        let naming = Naming::new(
            delimiter,
            prefix,
            session.utf8_enabled(),
            &session.greeting().text,
            session.capabilities(),
        );
        let mut pool = Vec::with_capacity(options.connections);
        pool.push(AsyncMutex::new(Some(session)));
        while pool.len() < options.connections {
            pool.push(AsyncMutex::new(None));
        }
        Ok(Imap {
            connector,
            server,
            credentials,
            timer,
            options,
            naming,
            pool,
            turn: AtomicUsize::new(0),
            folders: Mutex::new(HashMap::new()),
            journal: Mutex::new(journal),
            dropped: Mutex::new(BTreeMap::new()),
            claimed: Mutex::new(HashMap::new()),
        })
    }

    /// Where the state is kept.
    pub fn state_path(&self) -> PathBuf {
        lock(&self.journal).path().to_path_buf()
    }

    /// The naming rules the server gets (what [`Migrator::target_listing`] reports).
    pub fn rules(&self) -> &TargetRules {
        &self.naming.rules
    }

    /// The server's name for the folder `folder` (raw, as sent in commands); fails like
    /// [`Migrator::prepare_folder`] for a path that cannot be named.
    pub fn folder_name(&self, folder: &TargetFolder) -> Result<MailboxName> {
        self.naming.server_name(&folder.path)
    }

    /// The flags and keywords that could not be stored, by target folder path: keywords
    /// the folder does not accept (no `\*` in its PERMANENTFLAGS), keywords that are not IMAP
    /// atoms and `\` flags the folder does not list. Their messages were stored without them.
    pub fn dropped_flags(&self) -> BTreeMap<Vec<String>, BTreeSet<String>> {
        lock(&self.dropped).clone()
    }

    /// Logs out of every open connection.
    pub async fn close(&self) -> Result<()> {
        let mut first_error = None;
        for slot in &self.pool {
            if let Some(session) = slot.lock().await.take()
                && let Err(err) = session.logout().await
            {
                first_error.get_or_insert(err);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// A connection slot: a free open one, else a free empty one, else the next in turn.
    async fn slot(&self) -> AsyncMutexGuard<'_, Option<Conn<C>>> {
        let mut empty = None;
        for slot in &self.pool {
            if let Some(guard) = slot.try_lock() {
                if guard.as_ref().is_some_and(|s| !s.is_closed()) {
                    return guard;
                }
                empty.get_or_insert(guard);
            }
        }
        if let Some(guard) = empty {
            return guard;
        }
        let i = self.turn.fetch_add(1, Ordering::Relaxed) % self.pool.len();
        self.pool[i].lock().await
    }

    /// The slot's session, (re)connected if needed.
    async fn live<'s>(&self, slot: &'s mut Option<Conn<C>>) -> Result<&'s mut Conn<C>> {
        if slot.as_ref().is_none_or(|s| s.is_closed()) {
            *slot = None;
            let session = open_session(
                &self.connector,
                &self.server,
                &self.credentials,
                &self.timer,
                &self.options.session,
            )
            .await?;
            *slot = Some(session);
        }
        slot.as_mut()
            .ok_or_else(|| Error::new(ErrorKind::Io, "internal: IMAP target connection slot is empty"))
    }

    fn folder_info(&self, name: &MailboxName) -> FolderInfo {
        lock(&self.folders).get(name).cloned().unwrap_or_default()
    }

    fn update_folder(&self, name: &MailboxName, update: impl FnOnce(&mut FolderInfo)) {
        update(lock(&self.folders).entry(name.clone()).or_default());
    }

    async fn listing_on(&self, session: &mut Conn<C>) -> Result<TargetListing> {
        let items = session.list_all().await?;
        let folders = items.into_iter().map(ListedFolder::from);
        Ok(TargetListing::new(self.naming.rules.clone())
            .with_folders(folders)
            .with_personal_prefix(self.naming.prefix.raw_bytes().clone()))
    }

    /// Creates (if missing) and subscribes the folder, once.
    async fn prepare_on(
        &self,
        session: &mut Conn<C>,
        target: &TargetFolder,
        name: &MailboxName,
    ) -> Result<()> {
        if self.folder_info(name).prepared {
            return Ok(());
        }
        if !name.is_inbox() {
            match session.create_if_missing(name).await {
                Ok(_) => {}
                Err(err) if !session.is_closed() && target.path.len() > 1 && !is_over_quota(&err) => {
                    // Some servers do not create missing parents: create them, then again.
                    for len in 1..target.path.len() {
                        let parent = self.naming.server_name(&target.path[..len])?;
                        if !parent.is_inbox() {
                            session
                                .create_if_missing(&parent)
                                .await
                                .map_err(|e| self.target_error(e))?;
                        }
                    }
                    session
                        .create_if_missing(name)
                        .await
                        .map_err(|e| self.target_error(e))?;
                }
                Err(err) => return Err(self.target_error(err)),
            }
        }
        if self.options.subscribe {
            session.subscribe(name).await.map_err(|e| self.target_error(e))?;
        }
        self.update_folder(name, |info| info.prepared = true);
        Ok(())
    }

    /// Makes `name` the selected folder (read-write), noting its PERMANENTFLAGS, UIDVALIDITY
    /// and UIDNEXT.
    async fn select_on(&self, session: &mut Conn<C>, name: &MailboxName, again: bool) -> Result<()> {
        if !again
            && session
                .selected()
                .is_some_and(|m| &m.name == name && !m.read_only)
        {
            return Ok(());
        }
        let mailbox = session.select(name).await?;
        self.update_folder(name, |info| {
            if info.uid_validity != mailbox.uid_validity {
                info.uid_floor = None;
            }
            info.uid_validity = mailbox.uid_validity;
            info.uid_floor = info.uid_floor.max(mailbox.uid_next);
            info.permanent_flags = Some(mailbox.permanent_flags.clone());
        });
        Ok(())
    }

    /// Prepares and selects the folder; if it vanished since it was prepared, prepares it
    /// again.
    async fn ready_on(&self, session: &mut Conn<C>, target: &TargetFolder, name: &MailboxName) -> Result<()> {
        self.prepare_on(session, target, name).await?;
        match self.select_on(session, name, false).await {
            Ok(()) => Ok(()),
            Err(err) if !session.is_closed() && err.kind() != ErrorKind::Transient => {
                self.recreate_on(session, target, name).await
            }
            Err(err) => Err(err),
        }
    }

    /// Creates the folder again (someone deleted it meanwhile) and selects it afresh.
    async fn recreate_on(
        &self,
        session: &mut Conn<C>,
        target: &TargetFolder,
        name: &MailboxName,
    ) -> Result<()> {
        self.update_folder(name, |info| info.prepared = false);
        self.prepare_on(session, target, name).await?;
        self.select_on(session, name, true).await
    }

    async fn store_on(
        &self,
        session: &mut Conn<C>,
        target: &TargetFolder,
        messages: &[Message],
    ) -> Result<Vec<Result<()>>> {
        let name = self.naming.server_name(&target.path)?;
        self.ready_on(session, target, &name).await?;
        let keys: Vec<SourceKey> = messages.iter().map(|m| SourceKey::from(&m.source)).collect();
        let mut results: Vec<Option<Result<()>>> = messages.iter().map(|_| None).collect();

        // Messages that may be there already: in flight when an earlier run stopped.
        let offered: Vec<(usize, &Message, Pending)> = {
            let journal = lock(&self.journal);
            (0..messages.len())
                .filter_map(|i| journal.get(&keys[i]).map(|e| (i, &messages[i], e.clone())))
                .collect()
        };
        if !offered.is_empty() {
            if offered.iter().any(|(_, _, e)| e.uid.is_none()) {
                self.settle_on(session).await?;
            }
            let uid_validity = self.folder_info(&name).uid_validity;
            for (i, uid) in self.find_on(session, &name, target, offered).await? {
                if let Some(e) = lock(&self.journal).get_mut(&keys[i]) {
                    e.uid = Some(uid);
                    e.uid_validity = uid_validity;
                }
                results[i] = Some(Ok(()));
            }
        }

        let todo: Vec<usize> = (0..messages.len()).filter(|&i| results[i].is_none()).collect();
        if !todo.is_empty() {
            let info = self.folder_info(&name);
            let mut dropped = BTreeSet::new();
            let appends: Vec<AppendMessage> = todo
                .iter()
                .map(|&i| {
                    let message = &messages[i];
                    let (flags, lost) = appendable_flags(&message.flags, info.permanent_flags.as_deref());
                    dropped.extend(lost);
                    AppendMessage {
                        flags,
                        internal_date: message.internal_date,
                        message: message.raw.clone(),
                    }
                })
                .collect();
            if !dropped.is_empty() {
                lock(&self.dropped)
                    .entry(target.path.clone())
                    .or_default()
                    .extend(dropped);
            }
            let entries = todo
                .iter()
                .map(|&i| Pending {
                    source: keys[i].clone(),
                    target: target.path.clone(),
                    fingerprint: messages[i].fingerprint,
                    uid_validity: info.uid_validity,
                    uid_floor: info.uid_floor,
                    uid: None,
                })
                .collect();
            // Written and flushed before anything is sent: every message that may reach the
            // target has its entry on disk.
            lock(&self.journal).begin(entries)?;
            let mut outcomes = append_on(session, &name, &appends).await?;

            let failed: Vec<usize> = (0..outcomes.len())
                .filter(|&k| outcomes[k].as_ref().is_err_and(|e| !is_over_quota(e)))
                .collect();
            let vanished = !failed.is_empty()
                && (failed
                    .iter()
                    .any(|&k| outcomes[k].as_ref().is_err_and(is_try_create))
                    || session.list(b"", name.raw()).await?.is_empty());
            if vanished {
                // [TRYCREATE], or the folder is gone (deleted by someone while selected, some
                // servers then answer with an internal error): create it, try those once more.
                let again = failed;
                self.recreate_on(session, target, &name).await?;
                let retry: Vec<AppendMessage> = again.iter().map(|&k| appends[k].clone()).collect();
                for (k, outcome) in again.into_iter().zip(append_on(session, &name, &retry).await?) {
                    outcomes[k] = outcome;
                }
            }

            for (&i, outcome) in todo.iter().zip(outcomes) {
                results[i] = Some(match outcome {
                    Ok(appended) => {
                        if let Some(AppendUid { uid_validity, uid }) = appended {
                            if let Some(e) = lock(&self.journal).get_mut(&keys[i]) {
                                e.uid = Some(uid);
                                e.uid_validity = Some(uid_validity);
                            }
                            self.update_folder(&name, |info| {
                                if info.uid_validity == Some(uid_validity) {
                                    info.uid_floor = info.uid_floor.max(uid.get().checked_add(1));
                                }
                            });
                        }
                        Ok(())
                    }
                    Err(err) => {
                        // The server answered: the message is not there.
                        lock(&self.journal).remove(&keys[i]);
                        Err(self.target_error(err))
                    }
                });
            }
        }
        // EXISTS after each APPEND into the selected folder: nothing to act on.
        session.take_unsolicited();
        Ok(results.into_iter().map(|r| r.unwrap_or(Ok(()))).collect())
    }

    /// Waits until the selected folder stops growing. After a connection broke (or the
    /// process died and came straight back), the server may still be storing the APPENDs
    /// it had already received on the old connection; looking for them before it is done
    /// would miss some and store them twice.
    async fn settle_on(&self, session: &mut Conn<C>) -> Result<()> {
        let mut last = session.selected().map(|m| m.exists);
        for _ in 0..SETTLE_ROUNDS {
            self.timer.sleep(SETTLE_INTERVAL).await;
            session.noop().await?;
            let now = session.selected().map(|m| m.exists);
            if now == last {
                break;
            }
            last = now;
        }
        session.take_unsolicited();
        Ok(())
    }

    /// Looks for messages that may have been appended before a crash (with their journal
    /// entries) in the selected folder `name`; returns `(index, UID)` for those found.
    ///
    /// Entries with a UID floor in this folder generation are served by one fetch of every
    /// message from the lowest floor up; the others each by a `UID SEARCH` (size, Message-ID)
    /// or their known UID. A candidate counts if its fingerprint matches and no other source
    /// has claimed it.
    async fn find_on(
        &self,
        session: &mut Conn<C>,
        name: &MailboxName,
        target: &TargetFolder,
        offered: Vec<(usize, &Message, Pending)>,
    ) -> Result<Vec<(usize, Uid)>> {
        let uid_validity = self.folder_info(name).uid_validity;
        let generation = uid_validity.unwrap_or(0);
        let same_folder = |e: &Pending| e.uid_validity.is_some() && e.uid_validity == uid_validity;
        let floor_of = |e: &Pending| e.uid_floor.filter(|_| same_folder(e)).and_then(Uid::new);
        let (ranged, searched): (Vec<_>, Vec<_>) =
            offered.into_iter().partition(|(_, _, e)| floor_of(e).is_some());
        let mut found = Vec::new();

        if let Some(lowest) = ranged.iter().filter_map(|(_, _, e)| floor_of(e)).min() {
            let wanted: HashSet<Fingerprint> = ranged.iter().map(|(_, m, _)| m.fingerprint).collect();
            let seen = fingerprints_of(session, &UidSet::range(lowest, Uid::MAX), Some(&wanted)).await?;
            for (i, message, entry) in ranged {
                let fingerprint = message.fingerprint;
                let floor = floor_of(&entry).unwrap_or(Uid::MIN);
                let candidates = seen
                    .iter()
                    .filter(|(uid, f)| {
                        *f == fingerprint && *uid >= floor && entry.uid.is_none_or(|u| u == *uid)
                    })
                    .map(|(uid, _)| *uid)
                    .collect();
                if let Some(uid) = self.claim(name, generation, target, &entry, candidates) {
                    found.push((i, uid));
                }
            }
        }

        for (i, message, entry) in searched {
            let uids: UidSet = match entry.uid {
                Some(uid) if same_folder(&entry) => std::iter::once(uid).collect(),
                _ => {
                    let criteria = search_criteria(message.raw.len(), message_id(&message.raw).as_deref());
                    session.uid_search(&criteria).await?
                }
            };
            let fingerprint = message.fingerprint;
            let candidates = fingerprints_of(session, &uids, None)
                .await?
                .into_iter()
                .filter(|(_, f)| *f == fingerprint)
                .map(|(uid, _)| uid)
                .collect();
            if let Some(uid) = self.claim(name, generation, target, &entry, candidates) {
                found.push((i, uid));
            }
        }
        Ok(found)
    }

    /// The first of `candidates` not claimed by another source (nor known to hold another
    /// pending message), claimed for `entry`'s source.
    fn claim(
        &self,
        name: &MailboxName,
        generation: u32,
        target: &TargetFolder,
        entry: &Pending,
        mut candidates: Vec<Uid>,
    ) -> Option<Uid> {
        candidates.sort_unstable();
        let others = lock(&self.journal).taken_uids(&target.path, generation, &entry.source);
        let mut claimed = lock(&self.claimed);
        candidates
            .into_iter()
            .filter(|uid| !others.contains(uid))
            .find(|&uid| {
                let owner = claimed
                    .entry((name.clone(), generation, uid))
                    .or_insert_with(|| entry.source.clone());
                owner == &entry.source
            })
    }

    async fn fingerprints_on(&self, session: &mut Conn<C>, name: &MailboxName) -> Result<FingerprintCounts> {
        let mut counts = FingerprintCounts::new();
        // SELECT afresh even if selected: another connection may have appended meanwhile,
        // and this one's EXISTS count would not know yet.
        if let Err(err) = self.select_on(session, name, true).await {
            if !session.is_closed() && session.list(b"", name.raw()).await?.is_empty() {
                // Not created yet: holds nothing.
                return Ok(counts);
            }
            return Err(err);
        }
        if session.selected().is_none_or(|m| m.exists == 0) {
            return Ok(counts);
        }
        let all = UidSet::range(Uid::MIN, Uid::MAX);
        let mut stream = session.uid_fetch(&all, FetchItems::FINGERPRINT).await?;
        while let Some(fetched) = stream.next().await {
            let fetched = fetched?;
            match (&fetched.header, fetched.size) {
                (Some(header), Some(size)) => counts.add(Fingerprint::of_header(header, u64::from(size))),
                _ => {
                    return Err(Error::protocol(format!(
                        "IMAP target {}: the answer for UID {} in {name} lacks the header or the size asked for",
                        self.server,
                        fetched.uid.get()
                    )));
                }
            }
        }
        Ok(counts)
    }

    /// The error for a refused write, saying plainly when the mailbox is full.
    fn target_error(&self, err: Error) -> Error {
        let Some(failed) = CommandFailed::of(&err).filter(|f| is_quota(f)) else {
            return err;
        };
        Error::new(
            ErrorKind::TargetRefused,
            format!(
                "the target mailbox {} on {} is full (the server said: {}); free space or raise its quota, then \
                 run again: what was copied is kept and the rest follows",
                self.credentials.user(),
                self.server,
                failed.text.trim()
            ),
        )
        .with_source(failed.clone())
    }
}

impl<C: Connector> Migrator for Imap<C> {
    async fn prepare_folder(&self, folder: &TargetFolder) -> Result<()> {
        let name = self.naming.server_name(&folder.path)?;
        on_session!(self, session => self.prepare_on(session, folder, &name).await)
    }

    async fn store(&self, folder: &TargetFolder, message: Message) -> Result<()> {
        let mut results = self.store_batch(folder, vec![message]).await;
        results.pop().unwrap_or(Ok(()))
    }

    async fn store_batch(&self, folder: &TargetFolder, messages: Vec<Message>) -> Vec<Result<()>> {
        if messages.is_empty() {
            return Vec::new();
        }
        // After a broken connection the batch is offered again: its messages now have
        // journal entries, so those that made it are found instead of appended twice.
        let outcome = on_session!(self, session => self.store_on(session, folder, &messages).await);
        match outcome {
            Ok(results) => results,
            Err(err) => messages.iter().map(|_| Err(duplicate(&err))).collect(),
        }
    }

    async fn target_listing(&self) -> Result<TargetListing> {
        on_session!(self, session => self.listing_on(session).await)
    }

    async fn load_state(&self) -> Result<Option<SyncState>> {
        lock(&self.journal).load_state()
    }

    async fn save_state(&self, state: &SyncState) -> Result<()> {
        lock(&self.journal).save_state(state)
    }

    async fn fingerprints(&self, folder: &TargetFolder) -> Result<Option<FingerprintCounts>> {
        let name = self.naming.server_name(&folder.path)?;
        on_session!(self, session => self.fingerprints_on(session, &name).await).map(Some)
    }
}

async fn open_session<C: Connector>(
    connector: &C,
    server: &ServerConfig,
    credentials: &Credentials,
    timer: &Arc<dyn Timer>,
    options: &SessionOptions,
) -> Result<Conn<C>> {
    let stream = connector.connect(server).await?;
    let mut session = Session::establish(stream, server, timer.clone(), options.clone()).await?;
    if !session.greeting().preauth {
        session.login(credentials).await?;
    }
    Ok(session)
}

/// APPENDs `messages` to `name`: one result per message, the outer error when the
/// connection failed (then it is unknown which arrived).
async fn append_on<S>(
    session: &mut Session<S>,
    name: &MailboxName,
    messages: &[AppendMessage],
) -> Result<Vec<Result<Option<AppendUid>>>>
where
    S: futures::io::AsyncRead + futures::io::AsyncWrite + Unpin + Send,
{
    if let [message] = messages {
        let result = session.append(name, message).await;
        return match result {
            Err(err) if session.is_closed() => Err(err),
            other => Ok(vec![other]),
        };
    }
    session.append_many(name, messages).await
}

/// UID and fingerprint of the messages `uids` of the selected folder (only those whose
/// fingerprint is in `wanted`, when given, so memory stays bounded by what is looked for).
async fn fingerprints_of<S>(
    session: &mut Session<S>,
    uids: &UidSet,
    wanted: Option<&HashSet<Fingerprint>>,
) -> Result<Vec<(Uid, Fingerprint)>>
where
    S: futures::io::AsyncRead + futures::io::AsyncWrite + Unpin + Send,
{
    let mut out = Vec::new();
    if uids.is_empty() {
        return Ok(out);
    }
    let mut stream = session.uid_fetch(uids, FetchItems::FINGERPRINT).await?;
    while let Some(fetched) = stream.next().await {
        let fetched = fetched?;
        if let (Some(header), Some(size)) = (&fetched.header, fetched.size) {
            let fingerprint = Fingerprint::of_header(header, u64::from(size));
            if wanted.is_none_or(|w| w.contains(&fingerprint)) {
                out.push((fetched.uid, fingerprint));
            }
        }
    }
    Ok(out)
}

fn is_try_create(err: &Error) -> bool {
    CommandFailed::of(err).is_some_and(|f| matches!(f.code, Some(Code::TryCreate)))
}

fn is_quota(failed: &CommandFailed) -> bool {
    failed.has_code(KnownCode::OverQuota) || failed.text.to_ascii_lowercase().contains("quota")
}

fn is_over_quota(err: &Error) -> bool {
    CommandFailed::of(err).is_some_and(is_quota)
}

/// A copy of `err` for each message of a batch, keeping the server's answer as its source.
fn duplicate(err: &Error) -> Error {
    let copy = Error::new(err.kind(), err.message().to_owned());
    match CommandFailed::of(err) {
        Some(failed) => copy.with_source(failed.clone()),
        None => copy,
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The data behind these locks is consistent between statements; go on after a panic
    // elsewhere rather than poison the whole store.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
