//! Is a copy exact? Every folder's multiset of (body, flags, internal date), as Dovecot
//! shows it, against the source's.
//!
//! Flags and dates come from `doveadm fetch`; bodies are read from the maildir files that
//! `dovecot-uidlist` names, with bare LF counted as CRLF: Dovecot stores LF line ends by
//! default and serves them as CRLF, so that is the message an IMAP client gets.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::support::Dovecot;

/// One message as Dovecot shows it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Item {
    /// SHA-256 of the body as served (CRLF line ends).
    pub body: [u8; 32],
    /// The same without an `X-TUID:` header line (mbsync adds one to every message it
    /// copies); equal to `body` when there is none.
    pub without_tuid: [u8; 32],
    /// Sorted, without `\Recent`.
    pub flags: Vec<String>,
    /// INTERNALDATE, Unix seconds.
    pub date: i64,
}

/// Mailbox name (UTF-8, `/`) → its messages.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub folders: BTreeMap<String, Vec<Item>>,
    /// Bytes as served over IMAP.
    pub bytes: u64,
}

impl Snapshot {
    pub fn messages(&self) -> usize {
        self.folders.values().map(Vec::len).sum()
    }
}

/// Dovecot's view of `user`'s mail, or of the maildir at `location` (Maildir++ layout) read
/// as `user`.
pub fn snapshot(d: &Dovecot, user: &str, location: Option<&Path>) -> Snapshot {
    let location_args: Vec<String> = location
        .map(|root| vec!["-o".into(), format!("mail_location=maildir:{}", root.display())])
        .unwrap_or_default();
    let mut args: Vec<&str> = location_args.iter().map(String::as_str).collect();
    args.extend([
        "-f",
        "tab",
        "fetch",
        "-u",
        user,
        "mailbox uid flags date.received.unixtime",
        "all",
    ]);
    let out = d.doveadm_ok(&args);
    let mut rows: BTreeMap<String, Vec<(u32, Vec<String>, i64)>> = BTreeMap::new();
    for line in out.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let [mailbox, uid, flags, date] = cols[..] else {
            panic!("unexpected doveadm fetch line {line:?}");
        };
        let mut flags: Vec<String> = flags
            .split_whitespace()
            .filter(|f| *f != "\\Recent")
            .map(str::to_owned)
            .collect();
        flags.sort();
        rows.entry(mailbox.to_owned()).or_default().push((
            uid.parse().unwrap_or_else(|_| panic!("bad uid in {line:?}")),
            flags,
            date.parse().unwrap_or_else(|_| panic!("bad date in {line:?}")),
        ));
    }
    let mut snapshot = Snapshot::default();
    for (mailbox, messages) in rows {
        let mut path_args: Vec<&str> = location_args.iter().map(String::as_str).collect();
        path_args.extend(["mailbox", "path", "-u", user, &mailbox]);
        let dir = PathBuf::from(d.doveadm_ok(&path_args).trim_end_matches('\n'));
        let files = files_by_uid(&dir);
        let mut items = Vec::with_capacity(messages.len());
        for (uid, flags, date) in messages {
            let file = files
                .get(&uid)
                .unwrap_or_else(|| panic!("{mailbox}: no file for UID {uid} in {}", dir.display()));
            let raw = fs::read(file).unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
            let (body, served_len) = served_digest(&raw);
            snapshot.bytes += served_len;
            let without_tuid = strip_tuid(&raw).map_or(body, |stripped| served_digest(&stripped).0);
            items.push(Item {
                body,
                without_tuid,
                flags,
                date,
            });
        }
        items.sort();
        snapshot.folders.insert(mailbox, items);
    }
    snapshot
}

/// UID → message file, from the mailbox's `dovecot-uidlist` and its `cur/` and `new/`.
fn files_by_uid(dir: &Path) -> HashMap<u32, PathBuf> {
    let mut by_base: HashMap<String, PathBuf> = HashMap::new();
    for sub in ["cur", "new"] {
        let Ok(entries) = fs::read_dir(dir.join(sub)) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            // The uidlist names a file without its `:2,<flags>` part.
            let base = name.split(":2,").next().unwrap_or(&name).to_owned();
            by_base.insert(base, entry.path());
        }
    }
    let uidlist = dir.join("dovecot-uidlist");
    let text =
        fs::read_to_string(&uidlist).unwrap_or_else(|e| panic!("cannot read {}: {e}", uidlist.display()));
    let mut files = HashMap::new();
    // Records are `<uid> [<extensions>] :<file name>`; the first line is the header.
    for line in text.lines().skip(1) {
        let Some((head, name)) = line.split_once(':') else {
            continue;
        };
        let Some(uid) = head.split_whitespace().next().and_then(|u| u.parse::<u32>().ok()) else {
            continue;
        };
        if let Some(path) = by_base.get(name) {
            files.insert(uid, path.clone());
        }
    }
    files
}

/// SHA-256 and length of `raw` with every bare LF taken as CRLF.
fn served_digest(raw: &[u8]) -> ([u8; 32], u64) {
    let mut hasher = Sha256::new();
    let mut len = 0u64;
    let mut start = 0;
    for (i, &b) in raw.iter().enumerate() {
        if b == b'\n' && (i == 0 || raw[i - 1] != b'\r') {
            hasher.update(&raw[start..i]);
            hasher.update(b"\r\n");
            len += (i - start) as u64 + 2;
            start = i + 1;
        }
    }
    hasher.update(&raw[start..]);
    len += (raw.len() - start) as u64;
    (hasher.finalize().into(), len)
}

/// `raw` without its `X-TUID:` header line, if the header has one.
fn strip_tuid(raw: &[u8]) -> Option<Vec<u8>> {
    let mut at = 0;
    while at < raw.len() {
        let end = raw[at..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(raw.len(), |p| at + p + 1);
        let line = &raw[at..end];
        if line == b"\r\n" || line == b"\n" {
            return None; // end of the header
        }
        if line.len() >= 7 && line[..7].eq_ignore_ascii_case(b"X-TUID:") {
            let mut out = Vec::with_capacity(raw.len());
            out.extend_from_slice(&raw[..at]);
            out.extend_from_slice(&raw[end..]);
            return Some(out);
        }
        at = end;
    }
    None
}

/// How a copy differs from the source.
#[derive(Debug, Clone, Default)]
pub struct Verdict {
    /// Source messages with no identical (body, flags, date) twin in the same target folder,
    /// plus target messages the source does not have.
    pub unmatched: usize,
    pub missing_folders: Vec<String>,
    pub extra_messages: usize,
    /// Bodies that differ, and how many of those only by an added `X-TUID` line.
    pub bodies_changed: usize,
    pub bodies_changed_by_tuid: usize,
    pub flags_changed: usize,
    pub dates_changed: usize,
    /// Flags some source message had and its copy lost, and flags copies gained.
    pub flags_lost: BTreeSet<String>,
    pub flags_gained: BTreeSet<String>,
    /// A few changed flag sets, as `folder: source → copy`.
    pub flag_examples: Vec<String>,
}

impl Verdict {
    pub fn exact(&self) -> bool {
        self.unmatched == 0 && self.missing_folders.is_empty() && self.extra_messages == 0
    }

    pub fn summary(&self) -> String {
        if self.exact() {
            return "exact".into();
        }
        let mut parts = Vec::new();
        if !self.missing_folders.is_empty() {
            parts.push(format!("folders missing: {}", self.missing_folders.join(", ")));
        }
        if self.extra_messages > 0 {
            parts.push(format!("{} messages more than the source", self.extra_messages));
        }
        if self.bodies_changed > 0 {
            parts.push(format!(
                "{} bodies changed ({} only by an added X-TUID header)",
                self.bodies_changed, self.bodies_changed_by_tuid
            ));
        }
        if self.flags_changed > 0 {
            let mut what = format!("{} flag sets changed", self.flags_changed);
            if !self.flags_lost.is_empty() {
                what += &format!(", lost {}", join(&self.flags_lost));
            }
            if !self.flags_gained.is_empty() {
                what += &format!(", gained {}", join(&self.flags_gained));
            }
            parts.push(what);
        }
        if self.dates_changed > 0 {
            parts.push(format!("{} internal dates changed", self.dates_changed));
        }
        if parts.is_empty() {
            parts.push(format!("{} messages unmatched", self.unmatched));
        }
        format!("NOT exact: {}", parts.join("; "))
    }
}

fn join(set: &BTreeSet<String>) -> String {
    set.iter().cloned().collect::<Vec<_>>().join(" ")
}

/// Compares a target's snapshot with the source's, folder by folder (by name).
pub fn compare(source: &Snapshot, target: &Snapshot) -> Verdict {
    let mut verdict = Verdict::default();
    let empty = Vec::new();
    let names: BTreeSet<&String> = source.folders.keys().chain(target.folders.keys()).collect();
    for name in names {
        let s = source.folders.get(name).unwrap_or(&empty);
        let t = target.folders.get(name).unwrap_or(&empty);
        if s.is_empty() && t.is_empty() {
            continue;
        }
        if !s.is_empty() && !target.folders.contains_key(name) {
            verdict.missing_folders.push(name.clone());
        }
        verdict.extra_messages += t.len().saturating_sub(s.len());
        verdict.unmatched += unmatched(s, t, |i| i.clone()) + unmatched(t, s, |i| i.clone());
        let changed = unmatched(s, t, |i| i.body);
        verdict.bodies_changed += changed;
        verdict.bodies_changed_by_tuid += changed - unmatched_keys(s, t, |i| i.body, |i| i.without_tuid);
        verdict.dates_changed +=
            unmatched(s, t, |i| (i.without_tuid, i.date)) - unmatched(s, t, |i| i.without_tuid);
        // Pair messages by (content, date) and compare the flags of each pair.
        let mut theirs: HashMap<([u8; 32], i64), Vec<&Vec<String>>> = HashMap::new();
        for item in t {
            theirs
                .entry((item.without_tuid, item.date))
                .or_default()
                .push(&item.flags);
        }
        let mut leftovers: Vec<&Item> = Vec::new();
        for item in s {
            let Some(candidates) = theirs.get_mut(&(item.without_tuid, item.date)) else {
                continue;
            };
            if let Some(pos) = candidates.iter().position(|f| **f == item.flags) {
                candidates.swap_remove(pos);
            } else {
                leftovers.push(item);
            }
        }
        for item in leftovers {
            let Some(candidates) = theirs.get_mut(&(item.without_tuid, item.date)) else {
                continue;
            };
            // The closest flag set, so duplicates with different flags pair up sensibly.
            let differences = |f: &Vec<String>| {
                f.iter().filter(|x| !item.flags.contains(x)).count()
                    + item.flags.iter().filter(|x| !f.contains(x)).count()
            };
            let Some(best) = (0..candidates.len()).min_by_key(|&i| differences(candidates[i])) else {
                continue;
            };
            let flags = candidates.swap_remove(best);
            verdict.flags_changed += 1;
            if verdict.flag_examples.len() < 3 {
                verdict
                    .flag_examples
                    .push(format!("{name}: {} → {}", item.flags.join(" "), flags.join(" ")));
            }
            for f in &item.flags {
                if !flags.contains(f) {
                    verdict.flags_lost.insert(f.clone());
                }
            }
            for f in flags {
                if !item.flags.contains(f) {
                    verdict.flags_gained.insert(f.clone());
                }
            }
        }
    }
    verdict
}

/// How many of `a`'s items have no counterpart in `b` under `key` (as multisets).
fn unmatched<K: Eq + std::hash::Hash>(a: &[Item], b: &[Item], key: impl Fn(&Item) -> K) -> usize {
    unmatched_keys(a, b, &key, &key)
}

fn unmatched_keys<K: Eq + std::hash::Hash>(
    a: &[Item],
    b: &[Item],
    key_a: impl Fn(&Item) -> K,
    key_b: impl Fn(&Item) -> K,
) -> usize {
    let mut counts: HashMap<K, usize> = HashMap::new();
    for item in b {
        *counts.entry(key_b(item)).or_default() += 1;
    }
    let mut missing = 0;
    for item in a {
        match counts.get_mut(&key_a(item)) {
            Some(n) if *n > 0 => *n -= 1,
            _ => missing += 1,
        }
    }
    missing
}
