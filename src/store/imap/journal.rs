//! The state file of [`Imap`](super::Imap): the engine's [`SyncState`] plus the journal of
//! APPENDs whose outcome the state does not record yet.
//!
//! The file is the state's JSON with one more member, `imap_pending`, so any reader of a
//! [`SyncState`] reads it too:
//!
//! ```json
//! {
//!   "format": 1,
//!   "folders": [ ... ],
//!   "imap_pending": [
//!     { "source": {"imap": {"folder": "INBOX", "uid_validity": 7, "uid": 42}},
//!       "target": ["INBOX"], "fingerprint": {...}, "uid_validity": 1700000000,
//!       "uid_floor": 913, "uid": 915 }
//!   ]
//! }
//! ```
//!
//! An entry is written (and flushed) before its message is sent, and dropped once a saved
//! state records the message as copied, or once the server refused it. So after a crash,
//! every message that may have reached the target without the state knowing has an entry.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::sync::{Fingerprint, RawName, STATE_FORMAT, SourceId, SyncState};
use crate::{Error, ErrorKind, Result, Uid};

/// A [`SourceId`] in a form that serialises (and hashes) on its own.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum SourceKey {
    Imap {
        folder: RawName,
        uid_validity: u32,
        uid: Uid,
    },
    Pop3 {
        uidl: String,
    },
}

impl From<&SourceId> for SourceKey {
    fn from(source: &SourceId) -> Self {
        match source {
            SourceId::Imap {
                folder,
                uid_validity,
                uid,
            } => SourceKey::Imap {
                folder: RawName(folder.raw_bytes().clone()),
                uid_validity: *uid_validity,
                uid: *uid,
            },
            SourceId::Pop3 { uidl } => SourceKey::Pop3 { uidl: uidl.clone() },
        }
    }
}

/// One APPEND that may have reached the target.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Pending {
    pub source: SourceKey,
    /// The target folder's path.
    pub target: Vec<String>,
    /// The message's fingerprint, to recognise it in the target.
    pub fingerprint: Fingerprint,
    /// The target folder's UIDVALIDITY when the APPEND was sent, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid_validity: Option<u32>,
    /// A UID no higher than the one the message got: the folder's UIDNEXT seen before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid_floor: Option<u32>,
    /// The UID the server reported (APPENDUID), once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<Uid>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct StateFile {
    #[serde(flatten)]
    state: SyncState,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    imap_pending: Vec<Pending>,
}

/// The state and the journal, as last written to (or read from) the state file.
#[derive(Debug)]
pub(crate) struct Journal {
    path: PathBuf,
    sync: bool,
    /// The state last loaded or saved; `None` while the file does not exist.
    state: Option<SyncState>,
    pending: HashMap<SourceKey, Pending>,
}

impl Journal {
    /// Reads the state file at `path` (absent: empty); a file that cannot be read is an error.
    pub fn open(path: PathBuf, sync: bool) -> Result<Journal> {
        let mut journal = Journal {
            path,
            sync,
            state: None,
            pending: HashMap::new(),
        };
        if let Some(file) = journal.read()? {
            journal.state = Some(file.state);
            journal.pending = file
                .imap_pending
                .into_iter()
                .map(|p| (p.source.clone(), p))
                .collect();
        }
        Ok(journal)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the state from disk again (the journal in memory stays: this store wrote it).
    pub fn load_state(&mut self) -> Result<Option<SyncState>> {
        let state = self.read()?.map(|file| file.state);
        if state.is_some() {
            self.state.clone_from(&state);
        }
        Ok(state)
    }

    /// Saves `state`, dropping the entries it records as copied.
    ///
    /// What the file records as copied never shrinks: UIDs (under the same UIDVALIDITY) and
    /// POP3 UIDLs of the state written before are kept. The engine's workers save snapshots
    /// concurrently, so an older snapshot can arrive after a newer one; written as it is, it
    /// would forget messages whose journal entries the newer one already settled, and they
    /// would be appended again after a crash.
    pub fn save_state(&mut self, state: &SyncState) -> Result<()> {
        let merged = monotonic(self.state.as_ref(), state);
        let settled: Vec<SourceKey> = self
            .pending
            .keys()
            .filter(|key| covered(&merged, key))
            .cloned()
            .collect();
        self.write_with(&merged, |key| !settled.contains(key))?;
        for key in &settled {
            self.pending.remove(key);
        }
        self.state = Some(merged);
        Ok(())
    }

    pub fn get(&self, key: &SourceKey) -> Option<&Pending> {
        self.pending.get(key)
    }

    pub fn get_mut(&mut self, key: &SourceKey) -> Option<&mut Pending> {
        self.pending.get_mut(key)
    }

    pub fn remove(&mut self, key: &SourceKey) {
        self.pending.remove(key);
    }

    /// UIDs that other pending messages are known to occupy in the folder `target`.
    pub fn taken_uids(&self, target: &[String], uid_validity: u32, except: &SourceKey) -> Vec<Uid> {
        self.pending
            .values()
            .filter(|p| p.target == target && p.uid_validity == Some(uid_validity) && &p.source != except)
            .filter_map(|p| p.uid)
            .collect()
    }

    /// Records `entries` and flushes the file: only then may their messages be sent.
    pub fn begin(&mut self, entries: Vec<Pending>) -> Result<()> {
        let before: Vec<(SourceKey, Option<Pending>)> = entries
            .iter()
            .map(|e| (e.source.clone(), self.pending.get(&e.source).cloned()))
            .collect();
        for entry in entries {
            self.pending.insert(entry.source.clone(), entry);
        }
        // Not `unwrap_or_default`: a default SyncState has format 0, which no reader accepts.
        let state = match &self.state {
            Some(state) => state.clone(),
            None => SyncState::new(),
        };
        if let Err(err) = self.write(&state) {
            // Not on disk: as if never begun.
            for (key, old) in before {
                match old {
                    Some(old) => self.pending.insert(key, old),
                    None => self.pending.remove(&key),
                };
            }
            return Err(err);
        }
        if self.state.is_none() {
            self.state = Some(state);
        }
        Ok(())
    }

    #[cfg(test)]
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    fn read(&self) -> Result<Option<StateFile>> {
        let path = &self.path;
        let content = match fs::read(path) {
            Ok(content) => content,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error("could not read the state file", path, e)),
        };
        let file: StateFile = serde_json::from_slice(&content).map_err(|e| {
            Error::new(
                ErrorKind::Io,
                format!(
                    "IMAP target: the state file {} is corrupt ({e}). It records which messages were already \
                     copied, so it is not replaced silently: restore it from a backup, or move it away to \
                     start over (messages already in the target are then recognised by their fingerprints)",
                    path.display()
                ),
            )
            .with_source(e)
        })?;
        if file.state.format != STATE_FORMAT {
            return Err(Error::new(
                ErrorKind::Io,
                format!(
                    "IMAP target: the state file {} has format {}, this version of mailmigrate reads format \
                     {STATE_FORMAT}; use the version that wrote it (or a newer one)",
                    path.display(),
                    file.state.format
                ),
            ));
        }
        Ok(Some(file))
    }

    /// Replaces the file atomically: a temporary file beside it, flushed, renamed over it,
    /// and the directory flushed.
    fn write(&self, state: &SyncState) -> Result<()> {
        self.write_with(state, |_| true)
    }

    /// Writes `state` with the pending entries `keep` accepts.
    fn write_with(&self, state: &SyncState, keep: impl Fn(&SourceKey) -> bool) -> Result<()> {
        let mut pending: Vec<&Pending> = self.pending.values().filter(|p| keep(&p.source)).collect();
        pending.sort_by(|a, b| format!("{:?}", a.source).cmp(&format!("{:?}", b.source)));
        let file = StateFileRef {
            state,
            imap_pending: pending,
        };
        let json = serde_json::to_vec_pretty(&file).map_err(|e| {
            Error::new(
                ErrorKind::Io,
                format!("IMAP target: could not serialise the state: {e}"),
            )
            .with_source(e)
        })?;
        let path = &self.path;
        let mut temp_name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
        temp_name.push(".tmp");
        let temp = path.with_file_name(temp_name);
        let written = (|| -> io::Result<()> {
            let mut options = OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut out = options.open(&temp)?;
            out.write_all(&json)?;
            out.write_all(b"\n")?;
            if self.sync {
                out.sync_all()?;
            }
            drop(out);
            fs::rename(&temp, path)?;
            if self.sync {
                sync_dir(
                    path.parent()
                        .filter(|p| !p.as_os_str().is_empty())
                        .unwrap_or(Path::new(".")),
                )?;
            }
            Ok(())
        })();
        written.map_err(|e| {
            let _ = fs::remove_file(&temp);
            io_error("could not save the state file", path, e)
        })
    }
}

#[derive(serde::Serialize)]
struct StateFileRef<'a> {
    #[serde(flatten)]
    state: &'a SyncState,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    imap_pending: Vec<&'a Pending>,
}

/// `new`, with what `old` records as copied that `new` lacks (same source folder and
/// UIDVALIDITY; folders `new` does not mention; POP3 UIDLs).
fn monotonic(old: Option<&SyncState>, new: &SyncState) -> SyncState {
    let mut merged = new.clone();
    let Some(old) = old else { return merged };
    for before in &old.folders {
        match merged.folders.iter_mut().find(|f| f.source == before.source) {
            Some(now) if now.uid_validity == before.uid_validity => {
                for (first, last) in before.copied.ranges() {
                    now.copied.insert_range(first, last);
                }
            }
            Some(_) => {}
            None => merged.folders.push(before.clone()),
        }
    }
    if let Some(before) = &old.pop3 {
        let now = merged.pop3.get_or_insert_with(Default::default);
        now.copied_uidls.extend(before.copied_uidls.iter().cloned());
    }
    merged
}

/// Whether `state` settles the entry: it records the message as copied, or its source folder
/// now has another UIDVALIDITY (the engine then recovers by fingerprints, not by UIDs).
fn covered(state: &SyncState, key: &SourceKey) -> bool {
    match key {
        SourceKey::Imap {
            folder,
            uid_validity,
            uid,
        } => state.folder(&folder.to_mailbox_name()).is_some_and(|f| {
            (f.uid_validity == *uid_validity && f.copied.contains(*uid))
                || (f.uid_validity != 0 && f.uid_validity != *uid_validity)
        }),
        SourceKey::Pop3 { uidl } => state.pop3.as_ref().is_some_and(|p| p.copied_uidls.contains(uidl)),
    }
}

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
        let _ = (dir, File::open);
        Ok(())
    }
}

fn io_error(what: &str, path: &Path, err: io::Error) -> Error {
    let advice = match err.kind() {
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => "free some space, then run again",
        io::ErrorKind::PermissionDenied => "check that this process may write there (owner and mode)",
        _ => "check the disk and the path, then run again",
    };
    Error::new(
        ErrorKind::Io,
        format!("IMAP target: {what} {}: {err}; {advice}", path.display()),
    )
    .with_source(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::codec::MailboxName;

    fn key(uid: u32) -> SourceKey {
        SourceKey::Imap {
            folder: RawName(bytes::Bytes::from_static(b"INBOX")),
            uid_validity: 7,
            uid: Uid::new(uid).unwrap(),
        }
    }

    fn entry(uid: u32) -> Pending {
        Pending {
            source: key(uid),
            target: vec!["INBOX".into()],
            fingerprint: Fingerprint::of_message(b"A: b\r\n\r\n"),
            uid_validity: Some(3),
            uid_floor: Some(10),
            uid: None,
        }
    }

    #[test]
    fn pending_entries_survive_a_reopen_until_a_state_covers_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let mut journal = Journal::open(path.clone(), true).unwrap();
        journal.begin(vec![entry(1), entry(2)]).unwrap();
        drop(journal);
        let mut journal = Journal::open(path.clone(), true).unwrap();
        assert_eq!(journal.pending_len(), 2);
        assert!(journal.get(&key(1)).is_some());
        // The file is still a SyncState for any reader.
        let plain: SyncState = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(plain, SyncState::new());

        let mut state = SyncState::new();
        let folder = state.folder_mut(&MailboxName::from_raw(&b"INBOX"[..]));
        folder.uid_validity = 7;
        folder.copied.insert(Uid::new(1).unwrap());
        journal.save_state(&state).unwrap();
        let reopened = Journal::open(path.clone(), true).unwrap();
        assert!(reopened.get(&key(1)).is_none());
        assert!(reopened.get(&key(2)).is_some());
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"imap_pending\""), "{text}");

        // Another UIDVALIDITY at the source settles it too.
        state
            .folder_mut(&MailboxName::from_raw(&b"INBOX"[..]))
            .uid_validity = 8;
        let mut journal = reopened;
        journal.save_state(&state).unwrap();
        assert_eq!(journal.pending_len(), 0);
        assert!(!fs::read_to_string(&path).unwrap().contains("imap_pending"));
    }

    #[test]
    fn an_older_snapshot_saved_after_a_newer_one_forgets_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let mut journal = Journal::open(path.clone(), false).unwrap();
        journal.begin(vec![entry(1), entry(2)]).unwrap();
        let inbox = MailboxName::from_raw(&b"INBOX"[..]);
        let snapshot = |uids: &[u32]| {
            let mut state = SyncState::new();
            let f = state.folder_mut(&inbox);
            f.uid_validity = 7;
            for &u in uids {
                f.copied.insert(Uid::new(u).unwrap());
            }
            state
        };
        // Worker B's newer snapshot (both batches) lands first, then worker A's older one.
        journal.save_state(&snapshot(&[1, 2])).unwrap();
        journal.save_state(&snapshot(&[1])).unwrap();
        let on_disk = Journal::open(path.clone(), false).unwrap();
        let copied = &on_disk.state.as_ref().unwrap().folder(&inbox).unwrap().copied;
        assert!(copied.contains(Uid::new(2).unwrap()), "{copied}");
        assert_eq!(on_disk.pending_len(), 0);
        // Another UIDVALIDITY replaces the old UIDs: the engine starts that folder afresh.
        let mut fresh = snapshot(&[5]);
        fresh.folder_mut(&inbox).uid_validity = 8;
        journal.save_state(&fresh).unwrap();
        let on_disk = Journal::open(path, false).unwrap();
        assert_eq!(
            on_disk.state.unwrap().folder(&inbox).unwrap().copied.to_string(),
            "5"
        );
    }

    #[test]
    fn a_corrupt_or_newer_state_file_is_a_clear_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        fs::write(&path, b"{\"format\":1,\"folders\":[").unwrap();
        let err = Journal::open(path.clone(), true).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Io);
        assert!(err.message().contains(&path.display().to_string()), "{err}");
        assert!(err.message().contains("restore it from a backup"), "{err}");
        fs::write(&path, b"{\"format\":99,\"folders\":[]}").unwrap();
        let err = Journal::open(path, true).unwrap_err();
        assert!(err.message().contains("format 99"), "{err}");
    }

    #[test]
    fn a_journal_that_cannot_be_written_is_not_begun() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing-dir").join("state.json");
        let mut journal = Journal::open(path, false).unwrap();
        assert!(journal.begin(vec![entry(1)]).is_err());
        assert_eq!(journal.pending_len(), 0);
    }

    #[test]
    fn taken_uids_are_those_of_other_sources_in_the_same_folder_generation() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::open(dir.path().join("s.json"), false).unwrap();
        let mut a = entry(1);
        a.uid = Uid::new(50);
        let mut b = entry(2);
        b.uid = Uid::new(51);
        let mut c = entry(3);
        c.uid = Uid::new(52);
        c.uid_validity = Some(4);
        journal.begin(vec![a, b, c]).unwrap();
        assert_eq!(
            journal.taken_uids(&["INBOX".into()], 3, &key(1)),
            vec![Uid::new(51).unwrap()]
        );
    }
}
