use crate::folder::{Role, TargetPath};

/// What one account's migration did, per folder: the engine's return value and what
/// `--summary-json` writes.
///
/// Counts are honest: `copied` never exceeds `known`, and new mail that arrives while the
/// migration runs raises `known` rather than pushing a percentage past 100.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Report {
    /// One entry per source folder (skipped folders included), in plan order.
    pub folders: Vec<FolderReport>,
    /// How many passes over the folders completed (1 without watch mode; a watch-mode pass
    /// that failed for a passing reason is not counted).
    pub passes: u32,
    /// Whether this was a dry run (nothing written).
    pub dry_run: bool,
}

impl Report {
    /// Sum over all folders.
    pub fn totals(&self) -> Counts {
        let mut total = Counts::default();
        for f in &self.folders {
            total.add(&f.counts);
        }
        total
    }
}

/// Message and byte counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Counts {
    /// Messages the source holds (as last seen).
    pub known: u64,
    /// Bytes the source holds (as last seen; 0 where sizes are not known).
    pub known_bytes: u64,
    /// Messages in the target from this migration (this run and earlier ones).
    pub copied: u64,
    /// Bytes of those copied in this run.
    pub copied_bytes: u64,
    /// Messages stored by this run.
    pub copied_this_run: u64,
    /// Messages skipped by this run (already in the target, vanished, too large, too old).
    pub skipped: u64,
    /// Messages that failed in this run; they are retried on the next pass.
    pub failed: u64,
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.known += other.known;
        self.known_bytes += other.known_bytes;
        self.copied += other.copied;
        self.copied_bytes += other.copied_bytes;
        self.copied_this_run += other.copied_this_run;
        self.skipped += other.skipped;
        self.failed += other.failed;
    }
}

/// One source folder's outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct FolderReport {
    /// The source folder's name, decoded for display.
    pub source: String,
    /// Where it goes, `None` when the folder is skipped.
    pub target: Option<TargetPath>,
    /// Its system role, if it has one.
    pub role: Option<Role>,
    /// Why the whole folder is skipped, if it is.
    pub skipped_because: Option<String>,
    /// The counts.
    pub counts: Counts,
    /// Errors met in this folder (at most a few, with the count in `counts.failed`).
    pub errors: Vec<String>,
}
