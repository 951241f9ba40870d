//! [`Maildir`]: the built-in local target, a Maildir++ directory Dovecot and Courier read.

mod keywords;
mod lock;
mod names;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::fs::{self, DirBuilder, File, FileTimes, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use crate::imap::codec::{Flag, InternalDate};
use crate::sync::{Fingerprint, FingerprintCounts, Message, Migrator, STATE_FORMAT, SyncState, TargetFolder};
use crate::{Error, ErrorKind, Result};

use keywords::KeywordTable;
use lock::{DotLock, SUBSCRIPTIONS_STALE};

/// The state file's name inside the maildir root.
pub const STATE_FILE_NAME: &str = "mailmigrate-state.json";

/// How a [`Maildir`] writes.
///
/// ```
/// use mailmigrate::store::MaildirOptions;
/// // Faster, for a throw-away copy: a power cut may lose what was written last.
/// let options = MaildirOptions::default().sync(false).subscribe(false);
/// # let _ = options;
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MaildirOptions {
    sync: bool,
    subscribe: bool,
    owner: Option<(u32, u32)>,
}

impl Default for MaildirOptions {
    fn default() -> Self {
        MaildirOptions {
            sync: true,
            subscribe: true,
            owner: None,
        }
    }
}

impl MaildirOptions {
    /// Whether every message, folder and state file is flushed to disk (`fsync`) before the
    /// call that wrote it returns (default `true`). Without it, a power cut can lose
    /// messages the saved state already counts as copied.
    pub fn sync(mut self, sync: bool) -> Self {
        self.sync = sync;
        self
    }

    /// Whether new folders are added to Dovecot's `subscriptions` file (default `true`), so
    /// mail clients that show only subscribed folders show them.
    pub fn subscribe(mut self, subscribe: bool) -> Self {
        self.subscribe = subscribe;
        self
    }

    /// Gives every directory and file the store creates to this user and group (e.g. the
    /// mail server's `vmail` user), for hosts that migrate as root into users' maildirs.
    /// Changing the owner needs the privilege to do so.
    #[cfg(unix)]
    pub fn owner(mut self, uid: u32, gid: u32) -> Self {
        self.owner = Some((uid, gid));
        self
    }
}

/// A Maildir++ target on local disk: the embedded default [`Migrator`].
///
/// Point a Dovecot (`mail_location = maildir:~/Maildir`, its default Maildir++ layout) or a
/// Courier at the directory and it shows the same folders, bodies, flags and dates as the
/// source:
///
/// * **Folders.** INBOX is the root; folder `["Projects", "2024"]` is the directory
///   `.Projects.2024`, each component in modified UTF-7 as Dovecot stores names on disk
///   (`项目` is `.&mHl27g-`, `Q&A` is `.Q&-A`). Folders get `cur/ new/ tmp/` and a
///   `maildirfolder` file, and are subscribed (see [`MaildirOptions::subscribe`]). A path
///   component containing `.`, `/` or a control character (or a first one starting with `~`)
///   is refused with [`ErrorKind::InvalidInput`] instead of placing mail elsewhere: the
///   folder planner sanitises names for this target.
/// * **Messages** are written to `tmp/`, flushed, given the internal date as their
///   modification (and access) time, then renamed into `cur/` as
///   `<date>.mm_<hash>.mailmigrate,S=<size>,W=<size with CRLF line ends>:2,<flags>`.
///   Dovecot numbers new files in the order of their leading `<date>` (the internal date in
///   Unix seconds), so the target's UIDs follow the messages' dates. The time zone of the
///   internal date is not kept (a file has only an instant); servers show it in their own
///   zone.
/// * **Flags** are the standard letters (`D`raft, `F`lagged, `R` answered, `S`een, `T`
///   deleted). **Keywords** are the letters `a`..`z` assigned in the folder's
///   `dovecot-keywords` file, the way Dovecot reads them; the file is changed under the
///   folder's `dovecot-uidlist.lock`, as Dovecot does. A folder holds at most 26 keywords:
///   further ones, keywords that are not IMAP atoms and non-standard `\` flags are dropped
///   from the message (which is still stored) and listed by [`Maildir::dropped_flags`].
/// * **Idempotence.** The `mm_<hash>` part is a hash of [`Message::source`]; a message whose
///   name is already in the folder (in `cur/` or `new/`, whatever flags Dovecot has since
///   given it) is not written again.
/// * **State** is the JSON file [`STATE_FILE_NAME`] in the root, replaced atomically (write,
///   flush, rename, flush the directory). A state file that cannot be read is an error,
///   never a silent fresh start.
///
/// **Blocking.** The [`Migrator`] methods are `async` but do plain blocking file I/O, which
/// is fine on a local disk; a host that must not block its executor can call them from
/// `spawn_blocking` or a dedicated thread. Different folders are written concurrently; calls
/// for one folder are serialised. One `Maildir` value should own a directory at a time
/// (a Dovecot reading or changing it meanwhile is fine).
///
/// Needs the `serde` feature (on by default) for the state file.
///
/// ```
/// use bytes::Bytes;
/// use futures::executor::block_on;
/// use mailmigrate::imap::codec::{Flag, InternalDate, MailboxName};
/// use mailmigrate::store::Maildir;
/// use mailmigrate::sync::{Fingerprint, Message, Migrator, SourceId, SyncState, TargetFolder};
/// use mailmigrate::Uid;
///
/// # fn main() -> mailmigrate::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// # let root = dir.path().join("Maildir");
/// let maildir = Maildir::open(&root)?;
/// let folder = TargetFolder { path: vec!["Projects".into(), "2024".into()], role: None };
/// let raw = Bytes::from_static(b"Subject: hello\r\n\r\nbody\r\n");
/// let message = Message {
///     fingerprint: Fingerprint::of_message(&raw),
///     raw,
///     flags: vec![Flag::Seen, Flag::Keyword("$Forwarded".into())],
///     internal_date: Some(InternalDate { unix: 1_700_000_000, offset_minutes: 480 }),
///     source: SourceId::Imap {
///         folder: MailboxName::from_raw(&b"Projects/2024"[..]),
///         uid_validity: 1,
///         uid: Uid::new(7).unwrap(),
///     },
/// };
/// block_on(async {
///     maildir.prepare_folder(&folder).await?;
///     maildir.store(&folder, message.clone()).await?;
///     maildir.store(&folder, message).await?; // already there: not stored twice
///     maildir.save_state(&SyncState::new()).await?;
///     assert_eq!(maildir.load_state().await?, Some(SyncState::new()));
///     Ok::<(), mailmigrate::Error>(())
/// })?;
/// let cur = root.join(".Projects.2024/cur");
/// let names: Vec<_> = std::fs::read_dir(cur).unwrap().map(|e| e.unwrap().file_name()).collect();
/// assert_eq!(names.len(), 1);
/// assert!(names[0].to_str().unwrap().ends_with(",S=24,W=24:2,Sa"), "{names:?}");
/// # Ok(())
/// # }
/// ```
pub struct Maildir {
    root: PathBuf,
    options: MaildirOptions,
    perms: Perms,
    folders: Mutex<HashMap<PathBuf, Arc<Folder>>>,
    dropped: Mutex<BTreeMap<Vec<String>, BTreeSet<String>>>,
    state_lock: Mutex<()>,
    subscriptions_lock: Mutex<()>,
    temp_counter: AtomicU64,
}

impl fmt::Debug for Maildir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Maildir")
            .field("root", &self.root)
            .field("options", &self.options)
            .finish()
    }
}

/// One target folder and what this store knows about it.
#[derive(Debug)]
struct Folder {
    path: Vec<String>,
    dir: PathBuf,
    /// The Maildir++ directory name, `None` for INBOX (the root).
    dir_name: Option<String>,
    cache: Mutex<FolderCache>,
}

#[derive(Debug, Default)]
struct FolderCache {
    ready: bool,
    /// Identities (`mm_<hex>`) of the messages this store wrote into `cur/` and `new/`,
    /// listed from disk once.
    present: Option<HashSet<String>>,
    keywords: Option<KeywordTable>,
}

/// Whether a message was written or found already present.
#[derive(Debug, PartialEq, Eq)]
enum Stored {
    Written,
    AlreadyThere,
}

impl Maildir {
    /// Opens (creating if needed) the maildir at `root`, with INBOX's `cur/ new/ tmp/`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Maildir> {
        Self::open_with(root, MaildirOptions::default())
    }

    /// Opens the maildir at `root` with `options`.
    ///
    /// A new root is created private (mode 0700); new folders and files take their
    /// permissions from the root's, as Dovecot does.
    pub fn open_with(root: impl Into<PathBuf>, options: MaildirOptions) -> Result<Maildir> {
        let root = root.into();
        let mut perms = Perms {
            owner: options.owner,
            ..Perms::default()
        };
        if !root.is_dir() {
            if let Some(parent) = root.parent().filter(|p| !p.as_os_str().is_empty()) {
                fs::create_dir_all(parent).map_err(|e| io_error("could not create", parent, e))?;
            }
            perms
                .create_dir(&root)
                .map_err(|e| io_error("could not create", &root, e))?;
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let meta = fs::metadata(&root).map_err(|e| io_error("could not read", &root, e))?;
            perms.dir_mode = meta.permissions().mode() & 0o777;
            perms.file_mode = perms.dir_mode & 0o666;
        }
        let maildir = Maildir {
            root,
            options,
            perms,
            folders: Mutex::new(HashMap::new()),
            dropped: Mutex::new(BTreeMap::new()),
            state_lock: Mutex::new(()),
            subscriptions_lock: Mutex::new(()),
            temp_counter: AtomicU64::new(0),
        };
        let inbox = TargetFolder {
            path: vec!["INBOX".into()],
            role: None,
        };
        let folder = maildir.folder(&inbox)?;
        maildir.ensure_ready(&folder, &mut lock(&folder.cache))?;
        Ok(maildir)
    }

    /// The maildir's root directory (INBOX).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory that holds `folder` (the root for INBOX); fails like
    /// [`Migrator::prepare_folder`] for a name that cannot be stored.
    pub fn folder_dir(&self, folder: &TargetFolder) -> Result<PathBuf> {
        Ok(match names::folder_dir_name(folder)? {
            Some(name) => self.root.join(name),
            None => self.root.clone(),
        })
    }

    /// Where the state is saved: [`STATE_FILE_NAME`] in the root.
    pub fn state_path(&self) -> PathBuf {
        self.root.join(STATE_FILE_NAME)
    }

    /// The flags and keywords that could not be stored, by target folder path: keywords
    /// beyond a folder's 26, keywords that are not IMAP atoms, and `\` flags Maildir has no
    /// letter for. Their messages were stored without them.
    pub fn dropped_flags(&self) -> BTreeMap<Vec<String>, BTreeSet<String>> {
        lock(&self.dropped).clone()
    }

    fn folder(&self, target: &TargetFolder) -> Result<Arc<Folder>> {
        let dir_name = names::folder_dir_name(target)?;
        let dir = match &dir_name {
            Some(name) => self.root.join(name),
            None => self.root.clone(),
        };
        let mut folders = lock(&self.folders);
        let folder = folders.entry(dir.clone()).or_insert_with(|| {
            let path = if dir_name.is_none() {
                vec!["INBOX".to_owned()]
            } else {
                target.path.clone()
            };
            Arc::new(Folder {
                path,
                dir,
                dir_name,
                cache: Mutex::new(FolderCache::default()),
            })
        });
        Ok(Arc::clone(folder))
    }

    /// Creates the folder's directories, marker and subscription, once per folder.
    fn ensure_ready(&self, folder: &Folder, cache: &mut FolderCache) -> Result<()> {
        if cache.ready {
            return Ok(());
        }
        let dir = &folder.dir;
        let mut created = self
            .perms
            .create_dir(dir)
            .map_err(|e| io_error("could not create", dir, e))?;
        for sub in ["cur", "new", "tmp"] {
            let path = dir.join(sub);
            created |= self
                .perms
                .create_dir(&path)
                .map_err(|e| io_error("could not create", &path, e))?;
        }
        if folder.dir_name.is_some() {
            // Maildir++: marks a folder's directory, so deliveries into it are not treated as
            // deliveries into a top-level maildir.
            let marker = dir.join("maildirfolder");
            if !marker.exists() {
                self.perms
                    .create_file(&marker)
                    .map_err(|e| io_error("could not create", &marker, e))?;
                created = true;
            }
        }
        if created && self.options.sync {
            sync_dir(dir).map_err(|e| io_error("could not flush", dir, e))?;
            if folder.dir_name.is_some() {
                sync_dir(&self.root).map_err(|e| io_error("could not flush", &self.root, e))?;
            }
        }
        if let (Some(name), true) = (&folder.dir_name, self.options.subscribe) {
            self.subscribe(name)?;
        }
        cache.ready = true;
        Ok(())
    }

    /// Adds the folder to Dovecot's `subscriptions` file (version 2: components separated
    /// by tabs; an older file without the header is continued in its own `.` format).
    fn subscribe(&self, dir_name: &str) -> Result<()> {
        let _guard = lock(&self.subscriptions_lock);
        let path = self.root.join("subscriptions");
        let components = names::storage_components(dir_name);
        let read = |path: &Path| match fs::read(path) {
            Ok(content) => Ok(content),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(io_error("could not read", path, e)),
        };
        let line_for = |content: &[u8]| {
            if content.is_empty() || content.starts_with(SUBSCRIPTIONS_V2) {
                components.join("\t")
            } else {
                components.join(".")
            }
        };
        let has_line =
            |content: &[u8], line: &str| content.split(|&b| b == b'\n').any(|l| l == line.as_bytes());
        let content = read(&path)?;
        if has_line(&content, &line_for(&content)) {
            return Ok(());
        }
        let mut lock = DotLock::acquire_for_replace(&path, SUBSCRIPTIONS_STALE)
            .map_err(|e| io_error("could not lock", &path, e))?;
        // Read again under the lock: a Dovecot may have changed it meanwhile.
        let content = read(&path)?;
        let line = line_for(&content);
        if has_line(&content, &line) {
            return Ok(());
        }
        let mut new = if content.is_empty() {
            SUBSCRIPTIONS_V2.to_vec()
        } else {
            content
        };
        if !new.ends_with(b"\n") {
            new.push(b'\n');
        }
        new.extend_from_slice(line.as_bytes());
        new.push(b'\n');
        let write = |file: &mut File| -> io::Result<()> {
            self.perms.adopt(file)?;
            file.write_all(&new)?;
            if self.options.sync {
                file.sync_all()?;
            }
            Ok(())
        };
        match lock.file() {
            Some(file) => write(file).map_err(|e| io_error("could not write", &path, e))?,
            None => {
                return Err(io_error(
                    "could not write",
                    &path,
                    io::Error::other("lock file closed"),
                ));
            }
        }
        lock.replace(&path)
            .map_err(|e| io_error("could not replace", &path, e))?;
        if self.options.sync {
            sync_dir(&self.root).map_err(|e| io_error("could not flush", &self.root, e))?;
        }
        Ok(())
    }

    /// The unique names present in the folder, listed from disk the first time.
    fn present<'c>(&self, folder: &Folder, cache: &'c mut FolderCache) -> Result<&'c mut HashSet<String>> {
        if cache.present.is_none() {
            let mut present = HashSet::new();
            for (name, _) in list_messages(&folder.dir)? {
                if let Some(id) = names::identity_of(&name) {
                    present.insert(id.to_owned());
                }
            }
            cache.present = Some(present);
        }
        Ok(cache.present.get_or_insert_with(HashSet::new))
    }

    /// Stores one message unless already present; flushes the file but not `cur/` itself
    /// (the caller flushes the directory, once per batch).
    fn store_one(&self, folder: &Folder, cache: &mut FolderCache, message: &Message) -> Result<Stored> {
        self.ensure_ready(folder, cache)?;
        let identity = names::identity(&message.source);
        if self.present(folder, cache)?.contains(&identity) {
            return Ok(Stored::AlreadyThere);
        }
        let time = message.internal_date.and_then(to_system_time);
        let secs = time
            .unwrap_or_else(SystemTime::now)
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let base = names::base_name(&identity, secs);
        let letters = self.letters(folder, cache, &message.flags)?;
        let name = names::file_name(&base, &message.raw, &letters);
        let n = self.temp_counter.fetch_add(1, Ordering::Relaxed);
        let temp = folder
            .dir
            .join("tmp")
            .join(format!("{base}.P{}Q{n}", std::process::id()));
        let dest = folder.dir.join("cur").join(&name);
        let written = (|| -> io::Result<()> {
            let mut file = self.perms.create_file(&temp)?;
            file.write_all(&message.raw)?;
            if let Some(time) = time {
                file.set_times(FileTimes::new().set_accessed(time).set_modified(time))?;
            }
            if self.options.sync {
                file.sync_all()?;
            }
            drop(file);
            fs::rename(&temp, &dest)
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&temp);
            return Err(io_error("could not store a message in", &folder.dir, e));
        }
        self.present(folder, cache)?.insert(identity);
        Ok(Stored::Written)
    }

    /// The flag letters of a message, assigning keyword letters as needed.
    fn letters(&self, folder: &Folder, cache: &mut FolderCache, flags: &[Flag]) -> Result<Vec<u8>> {
        let mut letters = Vec::new();
        let mut keywords: Vec<String> = Vec::new();
        let mut dropped = Vec::new();
        for flag in flags {
            if let Some(letter) = names::system_letter(flag) {
                letters.push(letter);
                continue;
            }
            match flag {
                Flag::Keyword(k) if names::valid_keyword(k) => keywords.push(k.clone()),
                Flag::Keyword(k) | Flag::Extension(k) => dropped.push(k.clone()),
                // \Recent is per session and \* is not a message flag: nothing to keep.
                _ => {}
            }
        }
        // Keywords are case-insensitive: `Work` and `work` are one letter.
        keywords.sort_by_key(|k| k.to_ascii_lowercase());
        keywords.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
        if !keywords.is_empty() {
            let dir = &folder.dir;
            let table = match cache.keywords.take() {
                Some(table)
                    if table
                        .is_current(dir)
                        .map_err(|e| io_error("could not read", dir, e))? =>
                {
                    table
                }
                _ => KeywordTable::read(dir).map_err(|e| io_error("could not read keywords in", dir, e))?,
            };
            let table = cache.keywords.insert(table);
            match table.letters_of(&keywords) {
                Some(found) => letters.extend(found),
                None => {
                    let mapped = table
                        .assign(dir, &keywords, self.options.sync, &self.perms)
                        .map_err(|e| io_error("could not update dovecot-keywords in", dir, e))?;
                    letters.extend(mapped.letters);
                    dropped.extend(mapped.dropped);
                }
            }
        }
        if !dropped.is_empty() {
            lock(&self.dropped)
                .entry(folder.path.clone())
                .or_default()
                .extend(dropped);
        }
        Ok(letters)
    }

    fn store_batch_blocking(&self, target: &TargetFolder, messages: &[Message]) -> Vec<Result<()>> {
        let folder = match self.folder(target) {
            Ok(folder) => folder,
            Err(e) => {
                return messages
                    .iter()
                    .map(|_| Err(Error::new(e.kind(), e.message().to_owned())))
                    .collect();
            }
        };
        let mut cache = lock(&folder.cache);
        let mut results: Vec<Result<Stored>> = messages
            .iter()
            .map(|m| self.store_one(&folder, &mut cache, m))
            .collect();
        drop(cache);
        if self.options.sync && results.iter().any(|r| matches!(r, Ok(Stored::Written))) {
            let cur = folder.dir.join("cur");
            if let Err(e) = sync_dir(&cur) {
                // Not flushed means not safely stored: report every written message as failed.
                let err = io_error("could not flush", &cur, e);
                for r in results.iter_mut().filter(|r| matches!(r, Ok(Stored::Written))) {
                    *r = Err(Error::new(err.kind(), err.message().to_owned()));
                }
            }
        }
        results.into_iter().map(|r| r.map(|_| ())).collect()
    }

    fn fingerprints_blocking(&self, target: &TargetFolder) -> Result<FingerprintCounts> {
        let folder = self.folder(target)?;
        let mut counts = FingerprintCounts::new();
        if !folder.dir.is_dir() {
            return Ok(counts);
        }
        let mut vanished = Vec::new();
        for (name, path) in list_messages(&folder.dir)? {
            match fingerprint_file(&path, &name) {
                Ok(fp) => counts.add(fp),
                // Dovecot moved it (new/ to cur/, new flags) or expunged it since the listing.
                Err(e) if e.kind() == io::ErrorKind::NotFound => vanished.push(name),
                Err(e) => return Err(io_error("could not read", &path, e)),
            }
        }
        if !vanished.is_empty() {
            let now: HashMap<String, (String, PathBuf)> = list_messages(&folder.dir)?
                .into_iter()
                .map(|(name, path)| (names::base_of(&name).to_owned(), (name, path)))
                .collect();
            for name in vanished {
                if let Some((name, path)) = now.get(names::base_of(&name)) {
                    match fingerprint_file(path, name) {
                        Ok(fp) => counts.add(fp),
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(e) => return Err(io_error("could not read", path, e)),
                    }
                }
            }
        }
        Ok(counts)
    }

    fn load_state_blocking(&self) -> Result<Option<SyncState>> {
        let path = self.state_path();
        let content = match fs::read(&path) {
            Ok(content) => content,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error("could not read the state file", &path, e)),
        };
        let state: SyncState = serde_json::from_slice(&content).map_err(|e| {
            Error::new(
                ErrorKind::Io,
                format!(
                    "maildir: the state file {} is corrupt ({e}). It records which messages were \
                     already copied, so it is not replaced silently: restore it from a backup, or \
                     move it away to start over (messages already in the maildir are then \
                     recognised by their fingerprints)",
                    path.display()
                ),
            )
            .with_source(e)
        })?;
        if state.format != STATE_FORMAT {
            return Err(Error::new(
                ErrorKind::Io,
                format!(
                    "maildir: the state file {} has format {}, this version of mailmigrate reads \
                     format {STATE_FORMAT}; use the version that wrote it (or a newer one)",
                    path.display(),
                    state.format
                ),
            ));
        }
        Ok(Some(state))
    }

    fn save_state_blocking(&self, state: &SyncState) -> Result<()> {
        let path = self.state_path();
        let json = serde_json::to_vec_pretty(state).map_err(|e| {
            Error::new(
                ErrorKind::Io,
                format!("maildir: could not serialise the state: {e}"),
            )
            .with_source(e)
        })?;
        let _guard = lock(&self.state_lock);
        let temp = self.root.join(format!("{STATE_FILE_NAME}.tmp"));
        let written = (|| -> io::Result<()> {
            let mut file = self.perms.create_file(&temp)?;
            file.write_all(&json)?;
            file.write_all(b"\n")?;
            if self.options.sync {
                file.sync_all()?;
            }
            drop(file);
            fs::rename(&temp, &path)?;
            if self.options.sync {
                sync_dir(&self.root)?;
            }
            Ok(())
        })();
        written.map_err(|e| {
            let _ = fs::remove_file(&temp);
            io_error("could not save the state file", &path, e)
        })
    }
}

const SUBSCRIPTIONS_V2: &[u8] = b"V\t2\n\n";

impl Migrator for Maildir {
    async fn target_listing(&self) -> Result<crate::folder::TargetListing> {
        Ok(crate::folder::TargetListing::new(
            crate::folder::TargetRules::maildir(),
        ))
    }

    async fn prepare_folder(&self, folder: &TargetFolder) -> Result<()> {
        let folder = self.folder(folder)?;
        self.ensure_ready(&folder, &mut lock(&folder.cache))
    }

    async fn store(&self, folder: &TargetFolder, message: Message) -> Result<()> {
        let mut results = self.store_batch_blocking(folder, std::slice::from_ref(&message));
        results.pop().unwrap_or(Ok(()))
    }

    async fn store_batch(&self, folder: &TargetFolder, messages: Vec<Message>) -> Vec<Result<()>> {
        self.store_batch_blocking(folder, &messages)
    }

    async fn load_state(&self) -> Result<Option<SyncState>> {
        self.load_state_blocking()
    }

    async fn save_state(&self, state: &SyncState) -> Result<()> {
        self.save_state_blocking(state)
    }

    async fn fingerprints(&self, folder: &TargetFolder) -> Result<Option<FingerprintCounts>> {
        self.fingerprints_blocking(folder).map(Some)
    }
}

/// How new directories and files are created.
#[derive(Debug, Clone, Copy)]
struct Perms {
    #[cfg_attr(not(unix), allow(dead_code))]
    file_mode: u32,
    #[cfg_attr(not(unix), allow(dead_code))]
    dir_mode: u32,
    #[cfg_attr(not(unix), allow(dead_code))]
    owner: Option<(u32, u32)>,
}

impl Default for Perms {
    fn default() -> Self {
        Perms {
            file_mode: 0o600,
            dir_mode: 0o700,
            owner: None,
        }
    }
}

impl Perms {
    /// Creates (or truncates) a file with the store's mode and owner.
    fn create_file(&self, path: &Path) -> io::Result<File> {
        let mut options = OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, self.file_mode);
        let file = options.open(path)?;
        self.adopt(&file)?;
        Ok(file)
    }

    /// Gives a file the store's mode and owner.
    fn adopt(&self, file: &File) -> io::Result<()> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(fs::Permissions::from_mode(self.file_mode))?;
            if let Some((uid, gid)) = self.owner {
                std::os::unix::fs::fchown(file, Some(uid), Some(gid))?;
            }
        }
        let _ = file;
        Ok(())
    }

    /// Creates a directory; `false` if it already existed.
    fn create_dir(&self, path: &Path) -> io::Result<bool> {
        let mut builder = DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, self.dir_mode);
        match builder.create(path) {
            Ok(()) => {
                #[cfg(unix)]
                if let Some((uid, gid)) = self.owner {
                    std::os::unix::fs::chown(path, Some(uid), Some(gid))?;
                }
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && path.is_dir() => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// Flushes a directory's entries (new names, renames) to disk.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        match File::open(dir)?.sync_all() {
            // Some file systems cannot flush a directory; their renames are as safe as it gets.
            Err(e) if matches!(e.kind(), io::ErrorKind::InvalidInput | io::ErrorKind::Unsupported) => Ok(()),
            other => other,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// The message files of a folder: `(file name, path)` for every entry of `cur/` and `new/`
/// that is not hidden.
fn list_messages(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut found = Vec::new();
    for sub in ["cur", "new"] {
        let sub = dir.join(sub);
        let entries = match fs::read_dir(&sub) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_error("could not list", &sub, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| io_error("could not list", &sub, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with('.') {
                found.push((name, entry.path()));
            }
        }
    }
    Ok(found)
}

/// The fingerprint of a stored message, reading only its header section. A file with no
/// blank line is read whole, as [`Fingerprint::of_message`] hashes it whole.
fn fingerprint_file(path: &Path, name: &str) -> io::Result<Fingerprint> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    let size = names::size_from_name(name).unwrap_or(len);
    let header = read_header(&mut file)?;
    Ok(Fingerprint::of_header(&header, size))
}

/// Reads up to and including the first empty line (CRLF CRLF or LF LF), or everything.
fn read_header(reader: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(0) => return Ok(buf),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let start = buf.len();
        buf.extend_from_slice(&chunk[..n]);
        for i in start..buf.len() {
            let blank = buf[i] == b'\n'
                && ((i >= 1 && buf[i - 1] == b'\n') || (i >= 3 && &buf[i - 3..i] == b"\r\n\r"));
            if blank {
                buf.truncate(i + 1);
                return Ok(buf);
            }
        }
    }
}

fn to_system_time(date: InternalDate) -> Option<SystemTime> {
    let magnitude = Duration::from_secs(date.unix.unsigned_abs());
    if date.unix >= 0 {
        SystemTime::UNIX_EPOCH.checked_add(magnitude)
    } else {
        SystemTime::UNIX_EPOCH.checked_sub(magnitude)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere cannot leave these caches inconsistent with the disk in a way that
    // matters: they are only ever added to after the disk was.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An error for a failed file operation, naming the path and what to do.
fn io_error(what: &str, path: &Path, err: io::Error) -> Error {
    let (kind, advice) = match err.kind() {
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => (
            ErrorKind::TargetRefused,
            "free some space or raise the quota, then run again",
        ),
        io::ErrorKind::ReadOnlyFilesystem => (
            ErrorKind::TargetRefused,
            "the file system is read-only; remount it read-write",
        ),
        io::ErrorKind::PermissionDenied => (
            ErrorKind::Io,
            "check that this process may write there (owner and mode)",
        ),
        _ => (ErrorKind::Io, "check the disk and the path, then run again"),
    };
    Error::new(
        kind,
        format!("maildir: {what} {}: {err}; {advice}", path.display()),
    )
    .with_source(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Uid;
    use crate::imap::codec::MailboxName;
    use crate::sync::SourceId;
    use bytes::Bytes;
    use futures::executor::block_on;

    fn message(uid: u32, raw: &'static [u8], flags: Vec<Flag>) -> Message {
        Message {
            raw: Bytes::from_static(raw),
            flags,
            internal_date: Some(InternalDate {
                unix: 1_600_000_000 + i64::from(uid),
                offset_minutes: -300,
            }),
            source: SourceId::Imap {
                folder: MailboxName::from_raw(&b"INBOX"[..]),
                uid_validity: 9,
                uid: Uid::new(uid).unwrap(),
            },
            fingerprint: Fingerprint::of_message(raw),
        }
    }

    fn inbox() -> TargetFolder {
        TargetFolder {
            path: vec!["INBOX".into()],
            role: None,
        }
    }

    fn files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_message_lands_in_cur_with_flags_size_and_mtime() {
        let dir = tempfile::tempdir().unwrap();
        let maildir = Maildir::open(dir.path().join("m")).unwrap();
        let m = message(
            1,
            b"Subject: a\r\n\r\nx\r\n",
            vec![Flag::Seen, Flag::Answered, Flag::Recent],
        );
        block_on(maildir.store(&inbox(), m)).unwrap();
        let cur = files(&dir.path().join("m/cur"));
        assert_eq!(cur.len(), 1);
        assert!(
            cur[0].starts_with("1600000001.mm_") && cur[0].ends_with(".mailmigrate,S=17,W=17:2,RS"),
            "{cur:?}"
        );
        let meta = fs::metadata(dir.path().join("m/cur").join(&cur[0])).unwrap();
        let mtime = meta
            .modified()
            .unwrap()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap();
        assert_eq!(mtime.as_secs(), 1_600_000_001);
        assert!(files(&dir.path().join("m/tmp")).is_empty());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        }
    }

    #[test]
    fn storing_the_same_source_twice_keeps_one_file_even_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("m");
        let maildir = Maildir::open(&root).unwrap();
        let m = message(1, b"Subject: a\r\n\r\nx\r\n", vec![]);
        block_on(maildir.store(&inbox(), m.clone())).unwrap();
        block_on(maildir.store(&inbox(), m.clone())).unwrap();
        assert_eq!(files(&root.join("cur")).len(), 1);
        // Dovecot renamed it (new flags) and the store starts afresh: still recognised.
        let name = files(&root.join("cur")).remove(0);
        fs::rename(
            root.join("cur").join(&name),
            root.join("cur").join(name.replace(":2,", ":2,S")),
        )
        .unwrap();
        let reopened = Maildir::open(&root).unwrap();
        let results = block_on(reopened.store_batch(&inbox(), vec![m, message(2, b"B: b\n\ny\n", vec![])]));
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        assert_eq!(files(&root.join("cur")).len(), 2);
    }

    #[test]
    fn folders_get_maildirfolder_and_a_version_2_subscription() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("m");
        let maildir = Maildir::open(&root).unwrap();
        let f = TargetFolder {
            path: vec!["项目".into(), "2024".into()],
            role: None,
        };
        block_on(maildir.prepare_folder(&f)).unwrap();
        block_on(maildir.prepare_folder(&TargetFolder {
            path: vec!["Q&A".into()],
            role: None,
        }))
        .unwrap();
        let d = root.join(".&mHl27g-.2024");
        assert_eq!(maildir.folder_dir(&f).unwrap(), d);
        assert_eq!(files(&d), ["cur", "maildirfolder", "new", "tmp"]);
        let subs = fs::read_to_string(root.join("subscriptions")).unwrap();
        assert_eq!(subs, "V\t2\n\n&mHl27g-\t2024\nQ&-A\n");
        // Preparing again (another run) does not subscribe twice.
        let again = Maildir::open(&root).unwrap();
        block_on(again.prepare_folder(&f)).unwrap();
        assert_eq!(fs::read_to_string(root.join("subscriptions")).unwrap(), subs);
        assert!(!root.join("subscriptions.lock").exists());
        assert!(!root.join("cur/maildirfolder").exists() && !root.join("maildirfolder").exists());
    }

    #[test]
    fn an_old_format_subscriptions_file_is_continued_in_its_format() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("m");
        let maildir = Maildir::open(&root).unwrap();
        fs::write(root.join("subscriptions"), "Old\n").unwrap();
        block_on(maildir.prepare_folder(&TargetFolder {
            path: vec!["A".into(), "B".into()],
            role: None,
        }))
        .unwrap();
        assert_eq!(
            fs::read_to_string(root.join("subscriptions")).unwrap(),
            "Old\nA.B\n"
        );
    }

    #[test]
    fn unstorable_keywords_are_dropped_and_reported_but_the_message_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("m");
        let maildir = Maildir::open(&root).unwrap();
        let flags = vec![
            Flag::Keyword("Work".into()),
            Flag::Keyword("work".into()),
            Flag::Keyword("bad word".into()),
            Flag::Extension("\\Junk".into()),
            Flag::Flagged,
        ];
        block_on(maildir.store(&inbox(), message(1, b"A: b\r\n\r\n", flags))).unwrap();
        let cur = files(&root.join("cur"));
        assert!(cur[0].ends_with(":2,Fa"), "{cur:?}");
        assert_eq!(
            fs::read_to_string(root.join("dovecot-keywords")).unwrap(),
            "0 Work\n"
        );
        let dropped = maildir.dropped_flags();
        let expected: BTreeSet<String> = ["bad word".to_string(), "\\Junk".to_string()].into();
        assert_eq!(dropped.get(&vec!["INBOX".to_string()]), Some(&expected));
    }

    #[test]
    fn fingerprints_match_what_was_stored_including_a_headerless_message() {
        let dir = tempfile::tempdir().unwrap();
        let maildir = Maildir::open(dir.path().join("m")).unwrap();
        let big: &'static [u8] = Box::leak(vec![b'x'; 20_000].into_boxed_slice());
        let raws: [&'static [u8]; 4] = [b"A: b\r\n\r\nbody\r\n", b"A: b\n\nbody\n", big, b""];
        let messages: Vec<Message> = raws
            .iter()
            .enumerate()
            .map(|(i, raw)| message(i as u32 + 1, raw, vec![]))
            .collect();
        let results = block_on(maildir.store_batch(&inbox(), messages));
        assert!(results.iter().all(Result::is_ok));
        let counts = block_on(maildir.fingerprints(&inbox())).unwrap().unwrap();
        assert_eq!(counts.total(), 4);
        for raw in raws {
            assert_eq!(counts.count(&Fingerprint::of_message(raw)), 1, "{}", raw.len());
        }
        let none = TargetFolder {
            path: vec!["Never".into()],
            role: None,
        };
        assert_eq!(block_on(maildir.fingerprints(&none)).unwrap().unwrap().total(), 0);
    }

    #[test]
    fn headers_are_cut_at_the_first_blank_line_across_read_chunks() {
        let mut raw = vec![b'h'; 8190];
        raw.extend_from_slice(b"\r\n\r\nbody");
        assert_eq!(read_header(&mut &raw[..]).unwrap().len(), 8194);
        assert_eq!(read_header(&mut &b"a\n\nb\r\n\r\n"[..]).unwrap(), b"a\n\n");
        assert_eq!(read_header(&mut &b"no end"[..]).unwrap(), b"no end");
    }

    #[test]
    fn state_round_trips_and_a_corrupt_state_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let maildir = Maildir::open(dir.path().join("m")).unwrap();
        assert_eq!(block_on(maildir.load_state()).unwrap(), None);
        let mut state = SyncState::new();
        state
            .folder_mut(&MailboxName::from_raw(&b"INBOX"[..]))
            .uid_validity = 5;
        block_on(maildir.save_state(&state)).unwrap();
        assert_eq!(block_on(maildir.load_state()).unwrap(), Some(state));
        assert_eq!(
            files(&dir.path().join("m"))
                .iter()
                .filter(|n| n.contains("state"))
                .count(),
            1
        );

        fs::write(maildir.state_path(), b"{\"format\":1,\"folders\":[").unwrap();
        let err = block_on(maildir.load_state()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Io);
        assert!(
            err.message()
                .contains(&maildir.state_path().display().to_string()),
            "{err}"
        );
        assert!(err.message().contains("restore it from a backup"), "{err}");

        fs::write(maildir.state_path(), b"{\"format\":99,\"folders\":[]}").unwrap();
        let err = block_on(maildir.load_state()).unwrap_err();
        assert!(err.message().contains("format 99"), "{err}");
    }

    #[test]
    fn internal_dates_before_1970_are_kept() {
        let t = to_system_time(InternalDate {
            unix: -86_400,
            offset_minutes: 0,
        })
        .unwrap();
        assert_eq!(
            SystemTime::UNIX_EPOCH.duration_since(t).unwrap(),
            Duration::from_secs(86_400)
        );
    }

    #[test]
    fn a_broken_folder_gives_an_io_error_naming_it_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("m");
        let maildir = Maildir::open(&root).unwrap();
        // tmp/ replaced by a file: writing fails whatever our privileges (tests may run as root).
        fs::remove_dir(root.join("tmp")).unwrap();
        fs::write(root.join("tmp"), b"").unwrap();
        let err = block_on(maildir.store(&inbox(), message(1, b"A: b\r\n\r\n", vec![]))).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Io);
        assert!(err.message().contains(&root.display().to_string()), "{err}");
        assert!(files(&root.join("cur")).is_empty());
    }
}
