//! Dovecot-compatible dot-locks: `<file>.lock` created exclusively, holding `pid:host`.
//!
//! Dovecot serialises changes to `dovecot-keywords` with the folder's
//! `dovecot-uidlist.lock`, and rewrites `subscriptions` by writing the new content into
//! `subscriptions.lock` and renaming it over. Taking the same locks lets a Dovecot serve the
//! maildir while a migration writes into it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// Dovecot overrides a `dovecot-uidlist.lock` left unchanged this long.
pub(super) const UIDLIST_STALE: Duration = Duration::from_secs(120);
/// Dovecot overrides a `subscriptions.lock` left unchanged this long.
pub(super) const SUBSCRIPTIONS_STALE: Duration = Duration::from_secs(30);

/// A held dot-lock; removed when dropped unless it was renamed over its file.
#[derive(Debug)]
pub(super) struct DotLock {
    path: PathBuf,
    file: Option<File>,
}

impl DotLock {
    /// Takes `<target>.lock`, waiting while another process holds it and overriding it once it
    /// is stale (unchanged for `stale`, or left by a dead process of this host). The lock
    /// holds `pid:host`, as Dovecot's own locks do.
    pub(super) fn acquire(target: &Path, stale: Duration) -> io::Result<DotLock> {
        Self::take(target, stale, true)
    }

    /// Takes `<target>.lock` empty, to write `target`'s new content into it and
    /// [`DotLock::replace`] it (Dovecot's `file_dotlock_open`).
    pub(super) fn acquire_for_replace(target: &Path, stale: Duration) -> io::Result<DotLock> {
        Self::take(target, stale, false)
    }

    fn take(target: &Path, stale: Duration, write_pid: bool) -> io::Result<DotLock> {
        let mut path = target.as_os_str().to_owned();
        path.push(".lock");
        let path = PathBuf::from(path);
        let started = Instant::now();
        let mut wait = Duration::from_millis(10);
        loop {
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut file) => {
                    // Best effort, as Dovecot: an empty lock only loses the dead-process check.
                    if write_pid {
                        let _ = file.write_all(format!("{}:{}", std::process::id(), hostname()).as_bytes());
                    }
                    return Ok(DotLock {
                        path,
                        file: Some(file),
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    if is_stale(&path, stale) {
                        match fs::remove_file(&path) {
                            Ok(()) => continue,
                            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                            Err(e) => return Err(e),
                        }
                    }
                    if started.elapsed() > stale + Duration::from_secs(5) {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!("{} is held by another process", path.display()),
                        ));
                    }
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(Duration::from_millis(500));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The lock file, to write the replacement content into (see [`DotLock::replace`]).
    pub(super) fn file(&mut self) -> Option<&mut File> {
        self.file.as_mut()
    }

    /// Renames the lock file (with the content written into it) over `target`, which
    /// releases the lock the way Dovecot's `file_dotlock_replace` does.
    pub(super) fn replace(mut self, target: &Path) -> io::Result<()> {
        self.file = None;
        fs::rename(&self.path, target)?;
        // Renamed away: nothing left to remove (and a new lock there would be someone else's).
        self.path = PathBuf::new();
        Ok(())
    }
}

impl Drop for DotLock {
    fn drop(&mut self) {
        self.file = None;
        if !self.path.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

fn is_stale(path: &Path, stale: Duration) -> bool {
    let Ok(meta) = fs::metadata(path) else {
        return false;
    };
    let age = meta
        .modified()
        .ok()
        .and_then(|m| SystemTime::now().duration_since(m).ok());
    if age.is_some_and(|age| age > stale) {
        return true;
    }
    // Like Dovecot: a lock older than two seconds whose process of this host is gone.
    if age.is_some_and(|age| age > Duration::from_secs(2))
        && let Some(pid) = local_pid(path)
    {
        let proc = Path::new("/proc");
        return proc.join("self").exists() && !proc.join(pid.to_string()).exists();
    }
    false
}

fn local_pid(path: &Path) -> Option<u32> {
    let content = fs::read(path).ok()?;
    let content = std::str::from_utf8(content.get(..content.len().min(512))?).ok()?;
    let (pid, host) = content.trim_end().split_once(':')?;
    (host == hostname()).then(|| pid.parse().ok()).flatten()
}

fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_is_exclusive_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("dovecot-uidlist");
        let lock = DotLock::acquire(&target, UIDLIST_STALE).unwrap();
        let lock_path = dir.path().join("dovecot-uidlist.lock");
        let content = fs::read_to_string(&lock_path).unwrap();
        assert!(
            content.starts_with(&format!("{}:", std::process::id())),
            "{content}"
        );
        assert!(
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&lock_path)
                .is_err()
        );
        drop(lock);
        assert!(!lock_path.exists());
    }

    #[test]
    fn a_lock_of_a_dead_process_is_overridden() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("subscriptions");
        let lock_path = dir.path().join("subscriptions.lock");
        // No process has pid 0x7ffffffe on Linux (pid_max is at most 2^22).
        fs::write(&lock_path, format!("2147483646:{}", hostname())).unwrap();
        let old = SystemTime::now() - Duration::from_secs(10);
        File::options()
            .write(true)
            .open(&lock_path)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let started = Instant::now();
        let mut lock = DotLock::acquire_for_replace(&target, SUBSCRIPTIONS_STALE).unwrap();
        assert!(started.elapsed() < Duration::from_secs(5));
        lock.file().unwrap().write_all(b"V\t2\n\n").unwrap();
        lock.replace(&target).unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"V\t2\n\n");
        assert!(!lock_path.exists());
    }
}
