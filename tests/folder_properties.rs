//! Properties of the folder plan over generated listings: every folder gets exactly one
//! entry, no two folders share a target folder, every target path is valid for the target,
//! clean names are kept, the plan ignores LIST order, maps the folders it created to
//! themselves, and keeps earlier names when folders are added.

use std::collections::{BTreeMap, BTreeSet};

use mailmigrate::folder::{
    Decision, FolderPlan, Layout, ListedFolder, PlanOptions, SourceListing, TargetListing, TargetPath,
    TargetRules,
};
use mailmigrate::imap::codec::MailboxName;
use proptest::prelude::*;
use proptest::sample::select;

const ATTRIBUTES: [&str; 8] = [
    "\\Sent",
    "\\Trash",
    "\\Junk",
    "\\Drafts",
    "\\All",
    "\\Flagged",
    "\\Noselect",
    "\\HasChildren",
];

const LOOKALIKES: [&str; 14] = [
    "INBOX",
    "inbox",
    "Sent",
    "SENT",
    "Sent Items",
    "已发送",
    "Trash",
    "Deleted Messages",
    "垃圾箱",
    "Drafts",
    "Archive",
    "Files",
    "[Gmail]",
    "Spam",
];

/// Folder names full of trouble: delimiters of both kinds, wildcards, dots and spaces at the
/// ends, case variants, system-folder names, CJK.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[ab/. *%\\\\&_~Aa項目]{0,7}",
        2 => select(LOOKALIKES.to_vec()).prop_map(str::to_owned),
        2 => (select(LOOKALIKES.to_vec()), "[/.][ab.]{0,3}").prop_map(|(a, b)| format!("{a}{b}")),
    ]
}

/// One listed folder: name, modified UTF-7 or UTF-8 or raw 8-bit bytes, some attributes.
fn folder(delimiter: char) -> impl Strategy<Value = ListedFolder> {
    (
        prop_oneof![
            4 => (name(), any::<bool>()).prop_map(|(n, utf8)| MailboxName::encode(&n, utf8).raw().to_vec()),
            1 => proptest::collection::vec(any::<u8>(), 0..8),
        ],
        proptest::collection::vec(select(ATTRIBUTES.to_vec()), 0..2),
    )
        .prop_map(move |(raw, attributes)| ListedFolder::new(raw, Some(delimiter), attributes))
}

fn folders() -> impl Strategy<Value = Vec<ListedFolder>> {
    select(vec!['/', '.']).prop_flat_map(|d| proptest::collection::vec(folder(d), 0..14))
}

fn rules() -> impl Strategy<Value = TargetRules> {
    select(vec![0, 1, 2, 3, 4]).prop_map(|i| match i {
        0 => TargetRules::imap('/').unwrap(),
        1 => TargetRules::maildir(),
        2 => TargetRules::exchange(),
        3 => TargetRules::gmail(),
        _ => TargetRules::imap('.')
            .unwrap()
            .with_max_component_bytes(16)
            .with_max_path_bytes(40),
    })
}

fn layout() -> impl Strategy<Value = Layout> {
    prop_oneof![
        Just(Layout::Mirror),
        Just(Layout::UnderAddress {
            root: "old@example.com".into()
        })
    ]
}

fn target(rules: TargetRules, folders: Vec<ListedFolder>) -> TargetListing {
    TargetListing::new(rules).with_folders(folders)
}

/// How the target tells folders apart: per component, without case when it ignores case,
/// and INBOX without case at the top level.
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

/// Every source folder has one entry, every target path is valid for the target and under
/// the root, and no two source folders share a target folder.
fn check_plan(plan: &FolderPlan, source: &[ListedFolder], rules: &TargetRules) -> Result<(), TestCaseError> {
    prop_assert_eq!(plan.entries().len(), distinct_raw_names(source));
    let mut seen = BTreeMap::new();
    for entry in plan.entries() {
        let Some(path) = entry.decision.path() else {
            continue;
        };
        prop_assert!(
            rules.check_path(path).is_ok(),
            "{:?}: {}",
            path,
            rules.check_path(path).unwrap_err()
        );
        if let Some(root) = plan.root() {
            prop_assert!(
                path.starts_with(root) && path != root,
                "{} is not under {}",
                path,
                root
            );
        }
        if let Some(other) = seen.insert(key(rules, path), entry.name.clone()) {
            prop_assert!(false, "{} and {} both go to {}", other, entry.name, path);
        }
    }
    if let Some(root) = plan.root() {
        prop_assert!(rules.check_path(root).is_ok());
    }
    Ok(())
}

fn distinct_raw_names(folders: &[ListedFolder]) -> usize {
    folders
        .iter()
        .map(|f| f.name.raw().to_vec())
        .collect::<BTreeSet<_>>()
        .len()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn every_folder_gets_one_entry_and_no_two_share_a_valid_target_folder(
        source in folders(),
        target_folders in folders(),
        rules in rules(),
        layout in layout(),
        skip_virtual in any::<bool>(),
    ) {
        let target = target(rules.clone(), target_folders);
        let options = PlanOptions { layout, skip_virtual, ..PlanOptions::default() };
        let plan = FolderPlan::build(&SourceListing::new(source.clone()), &target, &options);
        check_plan(&plan, &source, &rules)?;
    }

    #[test]
    fn list_order_does_not_matter(
        (source, shuffled) in folders().prop_flat_map(|f| (Just(f.clone()), Just(f).prop_shuffle())),
        rules in rules(),
        layout in layout(),
    ) {
        let target = target(rules, Vec::new());
        let options = PlanOptions { layout, ..PlanOptions::default() };
        let a = FolderPlan::build(&SourceListing::new(source), &target, &options);
        let b = FolderPlan::build(&SourceListing::new(shuffled), &target, &options);
        prop_assert_eq!(a, b);
    }

    #[test]
    fn a_plan_given_its_own_mapping_as_previous_is_unchanged(
        source in folders(),
        target_folders in folders(),
        rules in rules(),
        layout in layout(),
    ) {
        let target = target(rules, target_folders);
        let options = PlanOptions { layout, ..PlanOptions::default() };
        let first = FolderPlan::build(&SourceListing::new(source.clone()), &target, &options);
        let options = PlanOptions { previous: first.mapping(), ..options };
        let again = FolderPlan::build(&SourceListing::new(source.clone()), &target, &options);
        check_plan(&again, &source, &target.rules)?;
        prop_assert_eq!(first, again);
    }

    #[test]
    fn any_previous_mapping_even_a_wrong_one_keeps_the_plan_valid_and_injective(
        source in folders(),
        target_folders in folders(),
        paths in proptest::collection::vec(proptest::collection::vec(name(), 1..4), 0..14),
        rules in rules(),
        layout in layout(),
    ) {
        let target = target(rules.clone(), target_folders);
        let previous = source
            .iter()
            .zip(paths)
            .map(|(f, p)| (f.name.clone(), TargetPath::new(p)))
            .collect();
        let options = PlanOptions { layout, previous, ..PlanOptions::default() };
        let plan = FolderPlan::build(&SourceListing::new(source.clone()), &target, &options);
        check_plan(&plan, &source, &rules)?;
    }

    #[test]
    fn clean_distinct_names_are_kept_as_they_are(
        names in proptest::collection::btree_set("[a-z][a-z0-9 ]{0,6}[a-z0-9]", 0..10),
        rules in rules(),
    ) {
        // Lowercase only, so the names are distinct under every target's rules; a name that
        // is a system folder name moves to that role's folder instead.
        let clean = names.iter().filter(|n| rules.is_clean(n));
        let source = SourceListing::new(clean.map(|n| ListedFolder::new(n.clone(), Some('/'), [""; 0])));
        let plan = FolderPlan::build(&source, &target(rules, Vec::new()), &PlanOptions::default());
        for entry in plan.entries() {
            if let Decision::Copy { path, role: None } = &entry.decision {
                prop_assert_eq!(path, &TargetPath::new([entry.name.clone()]));
            }
        }
    }

    #[test]
    fn planning_the_copied_folders_again_maps_each_to_itself(
        // Without attributes: a folder that lost a role it had by attribute may, listed back
        // without it, claim another role by its name.
        source in folders().prop_map(|f| f.into_iter().map(|f| ListedFolder { attributes: Vec::new(), ..f }).collect::<Vec<_>>()),
        // Without tight length limits: cutting "Deleted Messages." to 16 bytes makes it a
        // Trash name, and listed back it rightly becomes the Trash folder.
        rules in rules().prop_filter("roomy", |r| r.max_component_bytes() >= 255),
        utf8 in any::<bool>(),
    ) {
        let target = target(rules.clone(), Vec::new());
        let first = FolderPlan::build(&SourceListing::new(source), &target, &PlanOptions::default());
        // The folders copied into, listed back as a source with the target's delimiter and
        // with their roles as SPECIAL-USE attributes, as the target would list them.
        let listed: Vec<ListedFolder> = first
            .entries()
            .iter()
            .filter_map(|e| match &e.decision {
                Decision::Copy { path, role } => {
                    let raw = MailboxName::encode(&path.join(rules.delimiter()), utf8);
                    let attributes = role.and_then(|r| r.special_use());
                    Some(ListedFolder::new(raw.raw().to_vec(), Some(rules.delimiter()), attributes))
                }
                _ => None,
            })
            .collect();
        let second = FolderPlan::build(&SourceListing::new(listed), &target, &PlanOptions::default());
        for entry in second.entries() {
            prop_assert_eq!(entry.decision.path().map(|p| p.join(rules.delimiter())), Some(entry.name.clone()));
        }
    }

    #[test]
    fn folders_added_later_never_move_planned_ones_given_the_previous_mapping(
        source in folders(),
        added in proptest::collection::vec(folder('/'), 1..5),
        target_folders in folders(),
        rules in rules(),
        layout in layout(),
    ) {
        let target = target(rules, target_folders);
        let options = PlanOptions { layout, ..PlanOptions::default() };
        let before = FolderPlan::build(&SourceListing::new(source.clone()), &target, &options);
        let relisted: Vec<String> = added.iter().map(|f| f.name.decode().text).collect();
        let grown: Vec<ListedFolder> = source.iter().cloned().chain(added.iter().cloned()).collect();
        let options = PlanOptions { previous: before.mapping(), ..options };
        let after = FolderPlan::build(&SourceListing::new(grown.clone()), &target, &options);
        check_plan(&after, &grown, &target.rules)?;
        // A folder listed again with other attributes may change decision, and the folders
        // below it follow it (approximated by name prefix); the others keep their target
        // folder and their role.
        let changed = |e: &&mailmigrate::folder::PlanEntry| relisted.iter().any(|r| e.name.starts_with(r.as_str()));
        for entry in before.entries().iter().filter(|e| !changed(e)) {
            let now = after.entry(&entry.source).unwrap();
            if let (Decision::Copy { path, role }, Decision::Copy { path: now_path, role: now_role }) = (&entry.decision, &now.decision) {
                prop_assert_eq!(path, now_path, "{} moved", entry.name);
                let kept_role = role.filter(|r| !r.is_virtual()).is_none() || role == now_role;
                prop_assert!(kept_role, "{} lost role {:?}", entry.name, role);
            }
        }
    }
}
