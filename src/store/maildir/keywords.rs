//! A folder's `dovecot-keywords` file: which file-name letter (`a`..`z`) means which keyword.
//!
//! The format is one `N name` line per keyword, `N` from 0 (letter `a`) to 25 (letter `z`).
//! Dovecot matches names case-insensitively and re-reads the file only when its mtime (in
//! seconds) changes, so every rewrite moves the mtime forward.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::lock::{DotLock, UIDLIST_STALE};
use super::names::MAX_KEYWORDS;

pub(super) const FILE_NAME: &str = "dovecot-keywords";

/// What a stat of the file said, to notice someone else rewrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    #[cfg(unix)]
    inode: u64,
}

impl Stamp {
    fn of(meta: &fs::Metadata) -> Self {
        Stamp {
            len: meta.len(),
            modified: meta.modified().ok(),
            #[cfg(unix)]
            inode: std::os::unix::fs::MetadataExt::ino(meta),
        }
    }
}

/// The keyword of each letter of one folder.
#[derive(Debug, Clone, Default)]
pub(super) struct KeywordTable {
    names: Vec<Option<String>>,
    stamp: Option<Stamp>,
}

/// The result of mapping a message's keywords to letters.
#[derive(Debug, Default)]
pub(super) struct Mapped {
    /// Letters for the file name.
    pub letters: Vec<u8>,
    /// Keywords with no free letter left (the folder already has 26 keywords).
    pub dropped: Vec<String>,
}

impl KeywordTable {
    /// Reads `dir/dovecot-keywords`; a missing file is an empty table.
    pub(super) fn read(dir: &Path) -> io::Result<Self> {
        let path = dir.join(FILE_NAME);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(KeywordTable::default()),
            Err(e) => return Err(e),
        };
        let stamp = Stamp::of(&file.metadata()?);
        // Dovecot writes at most 26 short lines; a bigger file is not one of its own.
        let mut raw = Vec::new();
        file.take(64 * 1024).read_to_end(&mut raw)?;
        let mut names = vec![None; MAX_KEYWORDS];
        for line in raw.split(|&b| b == b'\n') {
            let line = String::from_utf8_lossy(line);
            let Some((index, name)) = line.split_once(' ') else {
                continue;
            };
            let Ok(index) = index.parse::<usize>() else {
                continue;
            };
            if index < MAX_KEYWORDS && !name.is_empty() {
                names[index] = Some(name.to_owned());
            }
        }
        Ok(KeywordTable {
            names,
            stamp: Some(stamp),
        })
    }

    /// Whether the file on disk is still the one this table was read from.
    pub(super) fn is_current(&self, dir: &Path) -> io::Result<bool> {
        match fs::metadata(dir.join(FILE_NAME)) {
            Ok(meta) => Ok(self.stamp.as_ref() == Some(&Stamp::of(&meta))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(self.stamp.is_none()),
            Err(e) => Err(e),
        }
    }

    /// The letter index of `keyword` (case-insensitive, as Dovecot matches).
    fn index_of(&self, keyword: &str) -> Option<usize> {
        self.names
            .iter()
            .position(|n| n.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(keyword)))
    }

    /// Maps `keywords` to letters using only what the table already holds; `None` if one
    /// is missing.
    pub(super) fn letters_of(&self, keywords: &[String]) -> Option<Vec<u8>> {
        keywords.iter().map(|k| self.index_of(k).map(letter)).collect()
    }

    /// Maps `keywords` to letters, adding the missing ones to `dir/dovecot-keywords` under the
    /// folder's `dovecot-uidlist.lock` (the lock Dovecot holds while it changes the file).
    /// Reloads `self` from disk first so letters another writer assigned are kept.
    pub(super) fn assign(
        &mut self,
        dir: &Path,
        keywords: &[String],
        sync: bool,
        owner: &super::Perms,
    ) -> io::Result<Mapped> {
        let _lock = DotLock::acquire(&dir.join("dovecot-uidlist"), UIDLIST_STALE)?;
        *self = KeywordTable::read(dir)?;
        if self.names.len() < MAX_KEYWORDS {
            self.names.resize(MAX_KEYWORDS, None);
        }
        let mut mapped = Mapped::default();
        let mut changed = false;
        for keyword in keywords {
            let index = match self.index_of(keyword) {
                Some(index) => Some(index),
                None => self.names.iter().position(Option::is_none).inspect(|&free| {
                    self.names[free] = Some(keyword.clone());
                    changed = true;
                }),
            };
            match index {
                Some(index) => mapped.letters.push(letter(index)),
                None => mapped.dropped.push(keyword.clone()),
            }
        }
        if changed {
            self.write(dir, sync, owner)?;
        }
        Ok(mapped)
    }

    fn write(&mut self, dir: &Path, sync: bool, owner: &super::Perms) -> io::Result<()> {
        let path = dir.join(FILE_NAME);
        let old_mtime = fs::metadata(&path).ok().and_then(|m| m.modified().ok());
        let mut content = String::new();
        for (i, name) in self.names.iter().enumerate() {
            if let Some(name) = name {
                content.push_str(&format!("{i} {name}\n"));
            }
        }
        let temp = dir.join(format!("{FILE_NAME}.{}.tmp", std::process::id()));
        let result = (|| {
            let mut file = owner.create_file(&temp)?;
            file.write_all(content.as_bytes())?;
            // Dovecot notices a change only when the mtime's second moves forward.
            if let Some(old) = old_mtime {
                let now = SystemTime::now();
                let old_secs = secs(old);
                if secs(now) <= old_secs {
                    file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(old_secs + 1))?;
                }
            }
            if sync {
                file.sync_all()?;
            }
            drop(file);
            fs::rename(&temp, &path)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&temp);
        }
        result?;
        if sync {
            super::sync_dir(dir)?;
        }
        self.stamp = Some(Stamp::of(&fs::metadata(&path)?));
        Ok(())
    }
}

fn letter(index: usize) -> u8 {
    b'a' + index as u8
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kw(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn keywords_get_letters_from_a_and_are_matched_case_insensitively() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join(FILE_NAME),
            "0 $Forwarded\n2 Work\nnot a line\n99 Far\n",
        )
        .unwrap();
        let mut table = KeywordTable::read(dir.path()).unwrap();
        assert_eq!(
            table.letters_of(&kw(&["$forwarded", "WORK"])),
            Some(vec![b'a', b'c'])
        );
        assert_eq!(table.letters_of(&kw(&["New"])), None);
        let mapped = table
            .assign(
                dir.path(),
                &kw(&["New", "work"]),
                true,
                &super::super::Perms::default(),
            )
            .unwrap();
        assert_eq!(mapped.letters, vec![b'b', b'c']);
        assert!(mapped.dropped.is_empty());
        let written = fs::read_to_string(dir.path().join(FILE_NAME)).unwrap();
        assert_eq!(written, "0 $Forwarded\n1 New\n2 Work\n");
        assert!(table.is_current(dir.path()).unwrap());
        assert!(!dir.path().join("dovecot-uidlist.lock").exists());
    }

    #[test]
    fn the_27th_keyword_is_dropped_and_the_file_mtime_moves_forward() {
        let dir = tempfile::tempdir().unwrap();
        let perms = super::super::Perms::default();
        let mut table = KeywordTable::read(dir.path()).unwrap();
        let first: Vec<String> = (0..26).map(|i| format!("k{i}")).collect();
        let mapped = table.assign(dir.path(), &first, false, &perms).unwrap();
        assert_eq!(mapped.letters, (b'a'..=b'z').collect::<Vec<_>>());
        let before = fs::metadata(dir.path().join(FILE_NAME))
            .unwrap()
            .modified()
            .unwrap();
        let mapped = table
            .assign(dir.path(), &kw(&["k3", "extra"]), false, &perms)
            .unwrap();
        assert_eq!(mapped.letters, vec![b'd']);
        assert_eq!(mapped.dropped, kw(&["extra"]));
        // Someone else rewrites the file: the table notices.
        let mut other = KeywordTable::read(dir.path()).unwrap();
        other.names[25] = None;
        other.write(dir.path(), false, &perms).unwrap();
        let after = fs::metadata(dir.path().join(FILE_NAME))
            .unwrap()
            .modified()
            .unwrap();
        assert!(secs(after) > secs(before), "{after:?} {before:?}");
        assert!(!table.is_current(dir.path()).unwrap());
    }
}
