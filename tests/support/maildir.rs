//! Writing messages straight into a Dovecot maildir (thousands per second).
//!
//! Each message goes to `tmp/`, gets its mtime set to the internal date (Dovecot's maildir
//! uses the file's mtime as INTERNALDATE / `date.received`) and its owner set to the mail
//! user, then is renamed into `cur/` as `<unique>,S=<size>,W=<virtual size>:2,<flags>`, so
//! Dovecot never sees a half-written file. Keywords are the lowercase letters `a`..`z`
//! mapped through the mailbox's `dovecot-keywords` file, which is written before any
//! message that uses a new keyword becomes visible.

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::chown;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One message to seed: its exact bytes, IMAP flags, and internal date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedMessage {
    /// The message exactly as it should be stored (use CRLF line endings to get the same
    /// bytes back over IMAP).
    pub raw: Vec<u8>,
    /// System flags (`\Seen`, `\Answered`, `\Flagged`, `\Deleted`, `\Draft`) and keywords
    /// (`$Forwarded`, `Work`, ...; at most 26 distinct keywords per mailbox).
    pub flags: Vec<String>,
    /// INTERNALDATE (whole seconds are kept).
    pub internal_date: SystemTime,
}

impl SeedMessage {
    /// A message without flags, received "now".
    pub fn new(raw: impl Into<Vec<u8>>) -> Self {
        SeedMessage {
            raw: raw.into(),
            flags: Vec::new(),
            internal_date: SystemTime::now(),
        }
    }

    /// Sets the flags and keywords.
    pub fn with_flags(mut self, flags: &[&str]) -> Self {
        self.flags = flags.iter().map(|f| (*f).to_owned()).collect();
        self
    }

    /// Sets the internal date.
    pub fn received_at(mut self, date: SystemTime) -> Self {
        self.internal_date = date;
        self
    }
}

/// Process-wide sequence for unique, ordered file names: Dovecot assigns UIDs to new maildir
/// files in file-name order, so later-seeded messages get higher UIDs.
static SEQUENCE: AtomicU64 = AtomicU64::new(0);
static START_SECS: LazyLock<u64> = LazyLock::new(|| {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
});

/// Serialises keyword-file updates within this process (two tests never share a mailbox, but
/// one test may seed from several threads).
static KEYWORDS_LOCK: Mutex<()> = Mutex::new(());

/// Writes `messages` into the maildir at `mailbox_dir` (which holds `cur/`, `new/`, `tmp/`).
/// `owner` is the (uid, gid) files must belong to, when we run as root.
pub(super) fn seed_maildir(
    mailbox_dir: &Path,
    owner: Option<(u32, u32)>,
    messages: impl IntoIterator<Item = SeedMessage>,
) -> usize {
    for sub in ["cur", "new", "tmp"] {
        let d = mailbox_dir.join(sub);
        fs::create_dir_all(&d).unwrap_or_else(|e| panic!("cannot create {}: {e}", d.display()));
        set_owner(&d, owner);
    }
    let _guard = KEYWORDS_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let mut keywords = Keywords::load(mailbox_dir);
    let pid = std::process::id();
    let mut count = 0;
    for msg in messages {
        let mut letters: Vec<char> = Vec::new();
        for flag in &msg.flags {
            match system_flag_letter(flag) {
                Some(letter) => letters.push(letter),
                None => letters.push(keywords.letter_for(flag, owner)),
            }
        }
        letters.sort_unstable();
        letters.dedup();
        let info: String = letters.into_iter().collect();

        let n = SEQUENCE.fetch_add(1, Ordering::Relaxed);
        // `<secs>.M<usecs>P<pid>Q<n>` is the classic maildir unique name; Dovecot orders new
        // files by its time part, so encode the sequence there.
        let base = format!(
            "{}.M{}P{pid}Q{n}.mailmigrate",
            *START_SECS + n / 1_000_000,
            n % 1_000_000
        );
        let virtual_size = msg.raw.len() + bare_lf_count(&msg.raw);
        let tmp_path = mailbox_dir.join("tmp").join(&base);
        let cur_path = mailbox_dir
            .join("cur")
            .join(format!("{base},S={},W={virtual_size}:2,{info}", msg.raw.len()));

        let mut file =
            File::create(&tmp_path).unwrap_or_else(|e| panic!("cannot create {}: {e}", tmp_path.display()));
        file.write_all(&msg.raw)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", tmp_path.display()));
        file.set_modified(msg.internal_date)
            .unwrap_or_else(|e| panic!("cannot set the mtime of {}: {e}", tmp_path.display()));
        drop(file);
        set_owner(&tmp_path, owner);
        fs::rename(&tmp_path, &cur_path)
            .unwrap_or_else(|e| panic!("cannot move {} into cur/: {e}", tmp_path.display()));
        count += 1;
    }
    count
}

fn system_flag_letter(flag: &str) -> Option<char> {
    if !flag.starts_with('\\') {
        return None;
    }
    Some(match flag.to_ascii_lowercase().as_str() {
        "\\seen" => 'S',
        "\\answered" => 'R',
        "\\flagged" => 'F',
        "\\deleted" => 'T',
        "\\draft" => 'D',
        _ => panic!(
            "{flag:?} cannot be seeded: only \\Seen, \\Answered, \\Flagged, \\Deleted and \\Draft exist as stored system flags"
        ),
    })
}

fn bare_lf_count(raw: &[u8]) -> usize {
    raw.iter()
        .enumerate()
        .filter(|&(i, &b)| b == b'\n' && (i == 0 || raw[i - 1] != b'\r'))
        .count()
}

pub(super) fn set_owner(path: &Path, owner: Option<(u32, u32)>) {
    if let Some((uid, gid)) = owner {
        chown(path, Some(uid), Some(gid))
            .unwrap_or_else(|e| panic!("cannot chown {} to {uid}:{gid}: {e}", path.display()));
    }
}

/// The mailbox's `dovecot-keywords` file: line `N name` maps letter `a + N` to a keyword.
struct Keywords {
    path: PathBuf,
    names: Vec<Option<String>>,
}

impl Keywords {
    fn load(mailbox_dir: &Path) -> Self {
        let path = mailbox_dir.join("dovecot-keywords");
        let mut names: Vec<Option<String>> = Vec::new();
        if let Ok(text) = fs::read_to_string(&path) {
            for line in text.lines() {
                let Some((idx, name)) = line.split_once(' ') else {
                    continue;
                };
                let Ok(idx) = idx.parse::<usize>() else { continue };
                if idx >= names.len() {
                    names.resize(idx + 1, None);
                }
                names[idx] = Some(name.to_owned());
            }
        }
        Keywords { path, names }
    }

    fn letter_for(&mut self, keyword: &str, owner: Option<(u32, u32)>) -> char {
        assert!(
            !keyword.is_empty()
                && keyword
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && !b"(){%*\"\\]".contains(&b)),
            "{keyword:?} is not a valid IMAP keyword"
        );
        let idx = match self.names.iter().position(|n| n.as_deref() == Some(keyword)) {
            Some(idx) => idx,
            None => {
                let idx = self
                    .names
                    .iter()
                    .position(Option::is_none)
                    .unwrap_or(self.names.len());
                assert!(
                    idx < 26,
                    "a maildir holds at most 26 keywords per mailbox; {keyword:?} is one too many"
                );
                if idx == self.names.len() {
                    self.names.push(None);
                }
                self.names[idx] = Some(keyword.to_owned());
                self.save(owner);
                idx
            }
        };
        (b'a' + idx as u8) as char
    }

    fn save(&self, owner: Option<(u32, u32)>) {
        let mut text = String::new();
        for (idx, name) in self.names.iter().enumerate() {
            if let Some(name) = name {
                text.push_str(&format!("{idx} {name}\n"));
            }
        }
        let tmp = self
            .path
            .with_file_name(format!("dovecot-keywords.mailmigrate-{}", std::process::id()));
        fs::write(&tmp, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", tmp.display()));
        // Dovecot rereads the file when its mtime changes; make sure it does change even
        // when two updates land in the same second.
        if let Ok(old) = fs::metadata(&self.path).and_then(|m| m.modified()) {
            let now = SystemTime::now();
            let bumped = if whole_secs(now) <= whole_secs(old) {
                old + Duration::from_secs(1)
            } else {
                now
            };
            if let Ok(f) = File::options().write(true).open(&tmp) {
                let _ = f.set_modified(bumped);
            }
        }
        set_owner(&tmp, owner);
        fs::rename(&tmp, &self.path)
            .unwrap_or_else(|e| panic!("cannot replace {}: {e}", self.path.display()));
    }
}

pub(super) fn whole_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}
