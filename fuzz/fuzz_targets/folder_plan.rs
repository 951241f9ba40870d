//! Fuzzes the folder plan with arbitrary LIST data for the source and the target and an
//! arbitrary previous mapping: it must never panic, and its invariants must hold. Every
//! source folder has one entry, every target path is valid for the target (and under the
//! root), no two folders share a target folder, LIST order does not matter, and a plan
//! given its own mapping as the previous one is unchanged.
//!
//! Input: one config byte, then records separated by NUL: `[flags][attributes][raw name]`.
//! Config bits: 0-2 target rules, 3 layout, 4 keep virtual folders, 5 `INBOX.` personal
//! prefix, 6 QQ hint, 7 an exclusion pattern. Record flags: bits 0-1 delimiter (`/`, `.`,
//! NIL, `\`), bit 2 the record is a target folder, bit 3 the record is a previous-mapping
//! entry for the source folder before it (its name split at `/` is the earlier path).
//! Attribute bits pick from `\Sent \Trash \Junk \Drafts \All \Flagged \Noselect \Archive`.

#![no_main]

use std::collections::{BTreeMap, BTreeSet};

use libfuzzer_sys::fuzz_target;
use mailmigrate::folder::{
    FolderPlan, Layout, ListedFolder, PlanOptions, ProviderHints, SourceListing, TargetListing, TargetPath,
    TargetRules,
};

const ATTRIBUTES: [&str; 8] = [
    "\\Sent",
    "\\Trash",
    "\\Junk",
    "\\Drafts",
    "\\All",
    "\\Flagged",
    "\\Noselect",
    "\\Archive",
];

fn rules(choice: u8) -> TargetRules {
    match choice % 6 {
        0 => TargetRules::imap('/').expect("valid delimiter"),
        1 => TargetRules::maildir(),
        2 => TargetRules::exchange(),
        3 => TargetRules::gmail(),
        4 => TargetRules::imap('.')
            .expect("valid delimiter")
            .with_max_component_bytes(16)
            .with_max_path_bytes(48),
        _ => TargetRules::imap('/')
            .expect("valid delimiter")
            .with_utf8_names(true)
            .with_reserved(["Sent Items"]),
    }
}

fn key(rules: &TargetRules, path: &TargetPath) -> Vec<String> {
    path.components()
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if i == 0 && c.eq_ignore_ascii_case("INBOX") {
                "inbox".to_owned()
            } else {
                rules.collision_key(c)
            }
        })
        .collect()
}

fn check(plan: &FolderPlan, source: &[ListedFolder], rules: &TargetRules) {
    let distinct: BTreeSet<&[u8]> = source.iter().map(|f| f.name.raw()).collect();
    assert_eq!(plan.entries().len(), distinct.len());
    let mut seen = BTreeMap::new();
    for entry in plan.entries() {
        let Some(path) = entry.decision.path() else {
            continue;
        };
        if let Err(err) = rules.check_path(path) {
            panic!("{:?} -> {path:?}: {err}", entry.name);
        }
        if let Some(root) = plan.root() {
            assert!(
                path.starts_with(root) && path != root,
                "{path} is not under {root}"
            );
        }
        if let Some(other) = seen.insert(key(rules, path), &entry.name) {
            panic!("{other:?} and {:?} both go to {path}", entry.name);
        }
    }
    if let Some(root) = plan.root() {
        assert!(rules.check_path(root).is_ok());
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&config, records)) = data.split_first() else {
        return;
    };
    let rules = rules(config & 7);
    let mut source = Vec::new();
    let mut target = Vec::new();
    let mut previous = BTreeMap::new();
    for record in records.split(|&b| b == 0).take(64) {
        let [flags, attributes, name @ ..] = record else {
            continue;
        };
        let delimiter = match flags & 3 {
            0 => Some('/'),
            1 => Some('.'),
            2 => None,
            _ => Some('\\'),
        };
        let attributes = ATTRIBUTES
            .iter()
            .enumerate()
            .filter(|(i, _)| attributes & (1 << i) != 0)
            .map(|(_, a)| *a);
        let folder = ListedFolder::new(name.to_vec(), delimiter, attributes);
        if flags & 8 != 0 {
            if let Some(owner) = source.last().map(|f: &ListedFolder| f.name.clone()) {
                let text = folder.name.decode().text;
                previous.insert(owner, TargetPath::new(text.split('/')));
            }
        } else if flags & 4 != 0 {
            target.push(folder);
        } else {
            source.push(folder);
        }
    }

    let mut listing = SourceListing::new(source.clone());
    if config & 32 != 0 {
        listing = listing.with_personal_prefix("INBOX.");
    }
    if config & 64 != 0 {
        listing = listing.with_hints(ProviderHints::qq());
    }
    let target = TargetListing::new(rules.clone()).with_folders(target);
    let options = PlanOptions {
        layout: if config & 8 != 0 {
            Layout::UnderAddress {
                root: "old@example.com".into(),
            }
        } else {
            Layout::Mirror
        },
        skip_virtual: config & 16 == 0,
        exclude: if config & 128 != 0 {
            vec!["Archive*".into(), "%/%".into()]
        } else {
            Vec::new()
        },
        ..PlanOptions::default()
    };

    let plan = FolderPlan::build(&listing, &target, &options);
    check(&plan, &source, &rules);

    let mut reversed = listing.clone();
    reversed.folders.reverse();
    assert_eq!(
        FolderPlan::build(&reversed, &target, &options),
        plan,
        "LIST order changed the plan"
    );

    let own = PlanOptions {
        previous: plan.mapping(),
        ..options.clone()
    };
    assert_eq!(
        FolderPlan::build(&listing, &target, &own),
        plan,
        "its own mapping changed the plan"
    );

    let wrong = PlanOptions { previous, ..options };
    check(&FolderPlan::build(&listing, &target, &wrong), &source, &rules);
});
