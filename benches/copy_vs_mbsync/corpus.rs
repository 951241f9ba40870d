//! The deterministic corpus: which message goes where, how large, with which flags.
//!
//! Everything comes from one seeded PRNG, so the same message count gives byte-identical
//! mailboxes on every run and every machine.

use std::collections::BTreeMap;

use crate::support::{Dovecot, SeedMessage, TestUser, sample_date, sample_message};

/// Folders (UTF-8, `/`-separated) and their share of the messages: Chinese names, `&`
/// (which modified UTF-7 escapes), `+`, brackets, parentheses, accents, a symbol, and
/// three levels of hierarchy.
pub const FOLDERS: &[(&str, u32)] = &[
    ("INBOX", 36),
    ("Archive/2023", 17),
    ("Sent", 12),
    ("项目/2024", 8),
    ("项目/2024/报价", 4),
    ("客户 & 合作伙伴", 5),
    ("Q&A", 3),
    ("A+B (old) [x]", 3),
    ("Ünïcødé ✓ Ordner", 3),
    ("Lists/rust-lang/announce", 5),
    ("Drafts", 1),
    ("Junk", 2),
    ("Trash", 1),
];

/// Keywords and how often a message carries each (per mille). mbsync 1.4 keeps only the
/// ones it maps to its own flags.
const KEYWORDS: &[(&str, u64)] = &[
    ("$Forwarded", 50),
    ("$MDNSent", 30),
    ("Work", 80),
    ("Later", 40),
    ("$label1", 30),
    ("Project_X", 20),
    ("$NotJunk", 10),
];

/// Share of messages that are byte-identical copies of an earlier one in the same folder
/// (per mille).
const DUPLICATES: u64 = 10;
/// Share of medium (100 KB–1 MB) messages (per mille); the rest are 2–20 KB, apart from
/// one 5 MB message per 2,000.
const MEDIUM: u64 = 25;
const LARGE_EVERY: usize = 2_000;
const LARGE_SIZE: usize = 5 << 20;

/// One message of the corpus.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Index into [`FOLDERS`].
    pub folder: usize,
    /// `sample_message(index, body_len)` is its content (the original's, for a duplicate).
    pub index: usize,
    pub body_len: usize,
    pub flags: Vec<&'static str>,
    /// For a duplicate: the position in [`Corpus::specs`] of the message it repeats.
    pub copy_of: Option<usize>,
}

/// SplitMix64: tiny, fast, and good enough to spread sizes and flags.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    /// True `per_mille` times in 1,000.
    fn chance(&mut self, per_mille: u64) -> bool {
        self.next() % 1_000 < per_mille
    }
}

/// The whole corpus, as specs (contents are generated when seeding and checking).
#[derive(Debug)]
pub struct Corpus {
    pub specs: Vec<Spec>,
}

impl Corpus {
    /// `messages` messages, identical on every run for the same count.
    pub fn new(messages: usize) -> Corpus {
        let mut rng = Rng(0x6d61_696c_6d69_6772); // "mailmigr"
        let weight_sum: u64 = FOLDERS.iter().map(|&(_, w)| u64::from(w)).sum();
        let large = (messages / LARGE_EVERY).max(1);
        let stride = (messages / large).max(1);
        let mut placed_large = 0;
        let mut specs: Vec<Spec> = Vec::with_capacity(messages);
        let mut by_folder: Vec<Vec<usize>> = vec![Vec::new(); FOLDERS.len()];
        for index in 0..messages {
            let mut pick = rng.next() % weight_sum;
            let folder = FOLDERS
                .iter()
                .position(|&(_, w)| {
                    let hit = pick < u64::from(w);
                    pick = pick.saturating_sub(u64::from(w));
                    hit
                })
                .unwrap_or(0);
            let name = FOLDERS[folder].0;
            let mut flags = Vec::new();
            let seen = match name {
                "Sent" => true,
                "Drafts" => false,
                _ => rng.chance(800),
            };
            if seen {
                flags.push("\\Seen");
            }
            if rng.chance(120) {
                flags.push("\\Answered");
            }
            if rng.chance(50) {
                flags.push("\\Flagged");
            }
            if name == "Drafts" {
                flags.push("\\Draft");
            }
            if name == "Junk" {
                flags.push("$Junk");
            }
            for &(keyword, per_mille) in KEYWORDS {
                if rng.chance(per_mille) {
                    flags.push(keyword);
                }
            }
            // Large messages sit at fixed, spread-out positions; the rest draw a size.
            let size = if index % stride == stride / 2 && placed_large < large {
                placed_large += 1;
                LARGE_SIZE
            } else if rng.chance(MEDIUM) {
                rng.between(100 << 10, 1 << 20) as usize
            } else {
                rng.between(2 << 10, 20 << 10) as usize
            };
            let earlier = &by_folder[folder];
            let copy_of = if size != LARGE_SIZE && !earlier.is_empty() && rng.chance(DUPLICATES) {
                let original = earlier[(rng.next() % earlier.len() as u64) as usize];
                Some(specs[original].copy_of.unwrap_or(original))
            } else {
                None
            };
            // The headers take about 330 bytes; the body makes up the rest.
            let body_len = size.saturating_sub(330).max(64);
            by_folder[folder].push(specs.len());
            specs.push(Spec {
                folder,
                index,
                body_len,
                flags,
                copy_of,
            });
        }
        Corpus { specs }
    }

    /// The message's bytes (a duplicate's are its original's).
    pub fn raw(&self, spec: &Spec) -> Vec<u8> {
        let original = spec.copy_of.map_or(spec, |i| &self.specs[i]);
        sample_message(original.index, original.body_len)
    }

    /// Writes the corpus into `user`'s mailboxes (folders in [`FOLDERS`] order, messages in
    /// index order within each); returns (messages, bytes).
    pub fn seed(&self, dovecot: &Dovecot, user: &TestUser) -> (usize, u64) {
        let mut messages = 0;
        let mut bytes = 0u64;
        for (folder, &(name, _)) in FOLDERS.iter().enumerate() {
            let specs = self.specs.iter().filter(|s| s.folder == folder);
            let seeded = dovecot.seed(
                user,
                name,
                specs.map(|spec| {
                    let raw = self.raw(spec);
                    bytes += raw.len() as u64;
                    let original = spec.copy_of.map_or(spec, |i| &self.specs[i]);
                    SeedMessage::new(raw)
                        .with_flags(&spec.flags)
                        .received_at(sample_date(original.index))
                }),
            );
            messages += seeded;
        }
        (messages, bytes)
    }

    /// A one-paragraph description: per-folder counts, size classes, duplicates, keywords.
    pub fn describe(&self) -> String {
        let mut per_folder: BTreeMap<usize, usize> = BTreeMap::new();
        let (mut small, mut medium, mut large) = (0, 0, 0);
        let mut keywords = 0;
        for spec in &self.specs {
            *per_folder.entry(spec.folder).or_default() += 1;
            let original = spec.copy_of.map_or(spec, |i| &self.specs[i]);
            match original.body_len {
                n if n >= LARGE_SIZE - 1_000 => large += 1,
                n if n >= 90 << 10 => medium += 1,
                _ => small += 1,
            }
            if spec.flags.iter().any(|f| !f.starts_with('\\')) {
                keywords += 1;
            }
        }
        let duplicates = self.specs.iter().filter(|s| s.copy_of.is_some()).count();
        let folders: Vec<String> = per_folder
            .iter()
            .map(|(&f, n)| format!("{} {n}", FOLDERS[f].0))
            .collect();
        format!(
            "sizes: {small} of 2-20 KB, {medium} of 100 KB-1 MB, {large} of 5 MB; \
             {duplicates} duplicates within a folder; {keywords} with keywords\n\
             folders: {}",
            folders.join(", ")
        )
    }
}
