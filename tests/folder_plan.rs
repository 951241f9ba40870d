//! How the folder plan behaves across runs, orders, collisions, exclusions and limits.

use std::collections::BTreeMap;

use mailmigrate::folder::{
    Decision, FolderPlan, Layout, ListedFolder, PlanOptions, Role, SkipReason, SourceListing, TargetListing,
    TargetPath, TargetRules,
};
use mailmigrate::imap::codec::MailboxName;

fn folder(name: &str, attributes: &[&str]) -> ListedFolder {
    ListedFolder::new(name.as_bytes().to_vec(), Some('/'), attributes.iter().copied())
}

fn exchange() -> TargetListing {
    TargetListing::new(TargetRules::exchange())
}

fn path_of(plan: &FolderPlan, raw: &str) -> Option<TargetPath> {
    plan.entry(&MailboxName::from_raw(raw.as_bytes().to_vec()))
        .unwrap_or_else(|| panic!("no entry for {raw}"))
        .decision
        .path()
        .cloned()
}

fn p(components: &[&str]) -> Option<TargetPath> {
    Some(TargetPath::new(components.iter().copied()))
}

#[test]
fn list_order_does_not_change_the_plan() {
    let folders = vec![
        folder("INBOX", &[]),
        folder("Sent", &[]),
        folder("sent", &[]),
        folder("SENT", &["\\Sent"]),
        folder("a/b", &[]),
        folder("A/b", &[]),
        folder("a", &["\\Noselect"]),
    ];
    let forward = FolderPlan::build(
        &SourceListing::new(folders.clone()),
        &exchange(),
        &PlanOptions::default(),
    );
    let backward = FolderPlan::build(
        &SourceListing::new(folders.into_iter().rev()),
        &exchange(),
        &PlanOptions::default(),
    );
    assert_eq!(forward, backward);
    assert_eq!(path_of(&forward, "SENT"), p(&["Sent"]));
    assert_eq!(path_of(&forward, "Sent"), p(&["Sent (2)"]));
    assert_eq!(path_of(&forward, "sent"), p(&["sent (3)"]));
}

#[test]
fn a_folder_listed_twice_counts_once_with_both_attribute_sets() {
    let plan = FolderPlan::build(
        &SourceListing::new([
            folder("Outgoing", &["\\HasNoChildren"]),
            folder("Outgoing", &["\\Sent"]),
        ]),
        &exchange(),
        &PlanOptions::default(),
    );
    assert_eq!(plan.entries().len(), 1);
    assert_eq!(plan.entries()[0].decision.role(), Some(Role::Sent));
}

#[test]
fn case_collisions_on_a_case_insensitive_target_get_suffixes_in_raw_name_order() {
    let source = SourceListing::new([
        folder("Reports", &[]),
        folder("reports", &[]),
        folder("REPORTS", &[]),
    ]);
    let plan = FolderPlan::build(&source, &exchange(), &PlanOptions::default());
    assert_eq!(path_of(&plan, "REPORTS"), p(&["REPORTS"]));
    assert_eq!(path_of(&plan, "Reports"), p(&["Reports (2)"]));
    assert_eq!(path_of(&plan, "reports"), p(&["reports (3)"]));
    // The same names are three distinct folders on a case-sensitive target.
    let plan = FolderPlan::build(
        &source,
        &TargetListing::new(TargetRules::imap('/').unwrap()),
        &Default::default(),
    );
    assert_eq!(path_of(&plan, "reports"), p(&["reports"]));
}

#[test]
fn names_that_sanitise_alike_never_share_a_folder() {
    let source = SourceListing::new([
        ListedFolder::new("a.b", Some('/'), [""; 0]),
        ListedFolder::new("a．b", Some('/'), [""; 0]),
        ListedFolder::new(" a.b ", Some('/'), [""; 0]),
    ]);
    let plan = FolderPlan::build(
        &source,
        &TargetListing::new(TargetRules::maildir()),
        &PlanOptions::default(),
    );
    assert_eq!(path_of(&plan, " a.b "), p(&["a．b"]));
    assert_eq!(path_of(&plan, "a.b"), p(&["a．b (2)"]));
    assert_eq!(path_of(&plan, "a．b"), p(&["a．b (3)"]));
}

#[test]
fn the_same_name_in_two_encodings_gives_two_folders() {
    // 日本 in modified UTF-7 and in UTF-8: two distinct folders on the source.
    let source = SourceListing::new([
        ListedFolder::new("&ZeVnLA-", Some('/'), [""; 0]),
        ListedFolder::new("日本", Some('/'), [""; 0]),
    ]);
    let plan = FolderPlan::build(&source, &exchange(), &PlanOptions::default());
    assert_eq!(path_of(&plan, "&ZeVnLA-"), p(&["日本"]));
    assert_eq!(path_of(&plan, "日本"), p(&["日本 (2)"]));
}

#[test]
fn a_folder_added_later_keeps_existing_names_when_it_sorts_after_them() {
    let first = [folder("Reports", &[]), folder("Work/Reports", &[])];
    let before = FolderPlan::build(
        &SourceListing::new(first.clone()),
        &exchange(),
        &PlanOptions::default(),
    );
    let mut second = first.to_vec();
    second.push(folder("reports", &[]));
    let after = FolderPlan::build(&SourceListing::new(second), &exchange(), &PlanOptions::default());
    for entry in before.entries() {
        assert_eq!(after.entry(&entry.source).unwrap().decision, entry.decision);
    }
    assert_eq!(path_of(&after, "reports"), p(&["reports (2)"]));
}

#[test]
fn the_previous_mapping_keeps_names_when_a_new_folder_sorts_first() {
    let first = FolderPlan::build(
        &SourceListing::new([folder("reports", &[])]),
        &exchange(),
        &Default::default(),
    );
    assert_eq!(path_of(&first, "reports"), p(&["reports"]));
    let grown = SourceListing::new([folder("reports", &[]), folder("Reports", &[])]);

    // Without the previous mapping the newcomer wins the sort and the old folder moves.
    let moved = FolderPlan::build(&grown, &exchange(), &PlanOptions::default());
    assert_eq!(path_of(&moved, "reports"), p(&["reports (2)"]));

    let options = PlanOptions {
        previous: first.mapping(),
        ..PlanOptions::default()
    };
    let stable = FolderPlan::build(&grown, &exchange(), &options);
    assert_eq!(path_of(&stable, "reports"), p(&["reports"]));
    assert_eq!(path_of(&stable, "Reports"), p(&["Reports (2)"]));
}

#[test]
fn the_previous_mapping_keeps_names_of_unlisted_parents() {
    // "a/x" with an unlisted parent "a"; later "A/y" sorts first on a case-insensitive target.
    let first = FolderPlan::build(
        &SourceListing::new([folder("a/x", &[])]),
        &exchange(),
        &Default::default(),
    );
    let grown = SourceListing::new([folder("a/x", &[]), folder("A/y", &[])]);
    let options = PlanOptions {
        previous: first.mapping(),
        ..PlanOptions::default()
    };
    let plan = FolderPlan::build(&grown, &exchange(), &options);
    assert_eq!(path_of(&plan, "a/x"), p(&["a", "x"]));
    assert_eq!(path_of(&plan, "A/y"), p(&["A (2)", "y"]));
}

#[test]
fn the_previous_mapping_keeps_a_system_role_with_its_folder() {
    let first = FolderPlan::build(
        &SourceListing::new([folder("Sent Items", &[])]),
        &exchange(),
        &Default::default(),
    );
    assert_eq!(path_of(&first, "Sent Items"), p(&["Sent"]));
    // A folder with the \Sent attribute appears (a client created one).
    let grown = SourceListing::new([folder("Sent Items", &[]), folder("Outgoing", &["\\Sent"])]);

    let fresh = FolderPlan::build(&grown, &exchange(), &PlanOptions::default());
    assert_eq!(path_of(&fresh, "Outgoing"), p(&["Sent"]));

    let options = PlanOptions {
        previous: first.mapping(),
        ..PlanOptions::default()
    };
    let stable = FolderPlan::build(&grown, &exchange(), &options);
    assert_eq!(
        stable
            .entry(&MailboxName::from_raw("Sent Items"))
            .unwrap()
            .decision
            .role(),
        Some(Role::Sent)
    );
    assert_eq!(path_of(&stable, "Sent Items"), p(&["Sent"]));
    assert_eq!(path_of(&stable, "Outgoing"), p(&["Outgoing"]));
}

#[test]
fn a_stale_previous_name_that_is_no_longer_valid_is_ignored() {
    let mut previous = BTreeMap::new();
    previous.insert(MailboxName::from_raw("x"), TargetPath::new(["bad/name"]));
    previous.insert(MailboxName::from_raw("z"), TargetPath::new(["zed"]));
    previous.insert(MailboxName::from_raw("w"), TargetPath::new(["elsewhere", "w"]));
    let options = PlanOptions {
        previous,
        ..PlanOptions::default()
    };
    let source = SourceListing::new([folder("x", &[]), folder("z", &[]), folder("w", &[])]);
    let plan = FolderPlan::build(&source, &exchange(), &options);
    assert_eq!(path_of(&plan, "x"), p(&["x"]));
    // A valid earlier name is kept even though the folder's own name differs...
    assert_eq!(path_of(&plan, "z"), p(&["zed"]));
    // ...but only at the level the folder sits at now.
    assert_eq!(path_of(&plan, "w"), p(&["w"]));
}

#[test]
fn role_ties_break_by_evidence_then_depth_then_name_then_raw_bytes() {
    let source = SourceListing::new([
        folder("INBOX", &[]),
        folder("INBOX/Trash", &[]),
        folder("Deleted Messages", &[]),
        folder("Trash", &[]),
        folder("Papierkorb", &[]),
    ]);
    let plan = FolderPlan::build(&source, &exchange(), &PlanOptions::default());
    // All claim Trash by name; top level beats INBOX/Trash; "Trash" is named like the
    // target folder (a new "Trash" on an empty Exchange), so it beats the other two.
    assert_eq!(path_of(&plan, "Trash"), p(&["Trash"]));
    assert_eq!(path_of(&plan, "Deleted Messages"), p(&["Deleted Messages"]));
    assert_eq!(path_of(&plan, "Papierkorb"), p(&["Papierkorb"]));
    assert_eq!(path_of(&plan, "INBOX/Trash"), p(&["INBOX", "Trash"]));

    let target = exchange().with_folders([folder("Deleted Items", &["\\Trash"])]);
    let plan = FolderPlan::build(&source, &target, &PlanOptions::default());
    // No name matches "Deleted Items": the first by raw bytes wins.
    assert_eq!(path_of(&plan, "Deleted Messages"), p(&["Deleted Items"]));
    assert_eq!(path_of(&plan, "Trash"), p(&["Trash"]));
}

#[test]
fn system_folder_names_deeper_down_are_ordinary_folders() {
    let plan = FolderPlan::build(
        &SourceListing::new([folder("Projects/Sent", &[]), folder("Projects/Trash", &[])]),
        &exchange(),
        &PlanOptions::default(),
    );
    assert!(plan.entries().iter().all(|e| e.decision.role().is_none()));
    assert_eq!(path_of(&plan, "Projects/Sent"), p(&["Projects", "Sent"]));
}

#[test]
fn inbox_in_any_case_is_the_inbox_and_only_one_folder_gets_it() {
    let source = SourceListing::new([
        folder("Inbox", &[]),
        folder("INBOX", &[]),
        folder("Mail", &["\\Inbox"]),
    ]);
    let plan = FolderPlan::build(
        &source,
        &TargetListing::new(TargetRules::imap('/').unwrap()),
        &Default::default(),
    );
    assert_eq!(path_of(&plan, "INBOX"), p(&["INBOX"]));
    // INBOX is case-insensitive on every server, so "Inbox" cannot sit next to it.
    assert_eq!(path_of(&plan, "Inbox"), p(&["Inbox (2)"]));
    assert_eq!(path_of(&plan, "Mail"), p(&["Mail"]));
}

#[test]
fn children_of_system_folders_follow_them() {
    let source = SourceListing::new([
        folder("INBOX", &[]),
        folder("Gesendet", &[]),
        folder("Gesendet/2023", &[]),
        folder("INBOX/Receipts", &[]),
    ]);
    let target = exchange().with_folders([folder("Sent Items", &["\\Sent"])]);
    let plan = FolderPlan::build(&source, &target, &PlanOptions::default());
    assert_eq!(path_of(&plan, "Gesendet"), p(&["Sent Items"]));
    assert_eq!(path_of(&plan, "Gesendet/2023"), p(&["Sent Items", "2023"]));
    assert_eq!(path_of(&plan, "INBOX/Receipts"), p(&["INBOX", "Receipts"]));
}

#[test]
fn excluded_folders_are_skipped_and_what_is_under_them_kept() {
    let source = SourceListing::new([
        folder("Archive", &[]),
        folder("Archive/2019", &[]),
        folder("Old", &[]),
        folder("Old/a", &[]),
        folder("Old/a/b", &[]),
    ]);
    let options = PlanOptions {
        exclude: vec!["Archive*".to_owned(), "Old/%".to_owned()],
        ..PlanOptions::default()
    };
    let plan = FolderPlan::build(&source, &exchange(), &options);
    let excluded = |pattern: &str| {
        Decision::Skip(SkipReason::Excluded {
            pattern: pattern.to_owned(),
        })
    };
    let decision = |raw: &str| {
        plan.entry(&MailboxName::from_raw(raw.as_bytes().to_vec()))
            .unwrap()
            .decision
            .clone()
    };
    assert_eq!(decision("Archive"), excluded("Archive*"));
    assert_eq!(decision("Archive/2019"), excluded("Archive*"));
    assert_eq!(decision("Old/a"), excluded("Old/%"));
    assert_eq!(path_of(&plan, "Old"), p(&["Old"]));
    assert_eq!(path_of(&plan, "Old/a/b"), p(&["Old", "a", "b"]));
}

#[test]
fn noselect_parents_are_created_only_when_something_is_kept_below() {
    let source = SourceListing::new([
        folder("Lists", &["\\Noselect", "\\HasChildren"]),
        folder("Lists/rust", &[]),
        folder("Empty", &["\\Noselect", "\\HasNoChildren"]),
        folder("Gone", &["\\NonExistent", "\\HasChildren"]),
        folder("Gone/views", &["\\All"]),
    ]);
    let plan = FolderPlan::build(&source, &exchange(), &PlanOptions::default());
    let decision = |raw: &str| {
        plan.entry(&MailboxName::from_raw(raw.as_bytes().to_vec()))
            .unwrap()
            .decision
            .clone()
    };
    assert_eq!(
        decision("Lists"),
        Decision::CreateOnly {
            path: TargetPath::new(["Lists"])
        }
    );
    assert_eq!(decision("Empty"), Decision::Skip(SkipReason::NoselectEmpty));
    assert_eq!(decision("Gone"), Decision::Skip(SkipReason::NoselectEmpty));
    assert_eq!(
        decision("Gone/views"),
        Decision::Skip(SkipReason::Virtual(Role::All))
    );
}

#[test]
fn the_targets_noselect_views_and_reserved_names_are_never_written_into() {
    let target = TargetListing::new(TargetRules::gmail()).with_folders([
        folder("INBOX", &[]),
        folder("[Gmail]", &["\\Noselect", "\\HasChildren"]),
        folder("[Gmail]/All Mail", &["\\All"]),
        folder("[Gmail]/Sent Mail", &["\\Sent"]),
    ]);
    let source = SourceListing::new([
        folder("[gmail]", &[]),
        folder("[Gmail]/All Mail", &[]),
        folder("Sent", &["\\Sent"]),
        folder("Sent/Old", &[]),
    ]);
    let plan = FolderPlan::build(&source, &target, &PlanOptions::default());
    // "[Gmail]" (the unlisted parent of a source folder) and "[gmail]" are one name on
    // Gmail, and the target's own [Gmail] is \Noselect: both get suffixes, in raw order.
    assert_eq!(
        path_of(&plan, "[Gmail]/All Mail"),
        p(&["[Gmail] (2)", "All Mail"])
    );
    assert_eq!(path_of(&plan, "[gmail]"), p(&["[gmail] (3)"]));
    assert_eq!(path_of(&plan, "Sent"), p(&["[Gmail]", "Sent Mail"]));
    assert_eq!(path_of(&plan, "Sent/Old"), p(&["[Gmail]", "Sent Mail", "Old"]));

    let plan = FolderPlan::build(
        &SourceListing::new([folder("Files", &[]), folder("a/files", &[])]),
        &exchange(),
        &Default::default(),
    );
    assert_eq!(path_of(&plan, "Files"), p(&["Files (2)"]));
    assert_eq!(path_of(&plan, "a/files"), p(&["a", "files (2)"]));
}

#[test]
fn over_long_names_are_cut_and_stay_distinct() {
    let rules = TargetRules::imap('/')
        .unwrap()
        .with_utf8_names(true)
        .with_max_component_bytes(20);
    let long = "Quarterly report for the board";
    let source = SourceListing::new([folder(long, &[]), folder(&format!("{long} (draft)"), &[])]);
    let plan = FolderPlan::build(&source, &TargetListing::new(rules), &PlanOptions::default());
    assert_eq!(path_of(&plan, long), p(&["Quarterly report for"]));
    assert_eq!(
        path_of(&plan, &format!("{long} (draft)")),
        p(&["Quarterly report (2)"])
    );
}

#[test]
fn folders_too_deep_for_the_path_limit_are_skipped_with_a_reason() {
    let rules = TargetRules::imap('/')
        .unwrap()
        .with_utf8_names(true)
        .with_max_path_bytes(40);
    let deep = "aaaaaaaaaa/bbbbbbbbbb/cccccccccc/dddddddddd/eeeeeeeeee";
    let shallow = format!("aaaaaaaaaa/bbbbbbbbbb/{}", "c".repeat(20));
    let source = SourceListing::new([folder(deep, &[]), folder(&shallow, &[])]);
    let plan = FolderPlan::build(
        &source,
        &TargetListing::new(rules.clone()),
        &PlanOptions::default(),
    );
    assert_eq!(
        plan.entry(&MailboxName::from_raw(deep)).unwrap().decision,
        Decision::Skip(SkipReason::PathTooLong)
    );
    // A shallower name is cut to fit what is left of the path budget.
    let cut = path_of(&plan, &shallow).unwrap();
    assert_eq!(
        cut,
        TargetPath::new(["aaaaaaaaaa".to_owned(), "bbbbbbbbbb".to_owned(), "c".repeat(18)])
    );
    assert!(rules.check_path(&cut).is_ok());
}

#[test]
fn other_namespaces_are_skipped() {
    let source = SourceListing::new([
        folder("INBOX", &[]),
        folder("Other Users/bob/INBOX", &[]),
        folder("Shared/team", &[]),
    ])
    .with_other_prefixes(["Other Users/", "Shared/"]);
    let plan = FolderPlan::build(&source, &exchange(), &PlanOptions::default());
    let skipped = plan
        .entries()
        .iter()
        .filter(|e| e.decision == Decision::Skip(SkipReason::OtherNamespace))
        .count();
    assert_eq!(skipped, 2);
}

#[test]
fn paths_to_create_list_parents_first_and_the_root() {
    let source = SourceListing::new([
        folder("INBOX", &[]),
        folder("a/b/c", &[]),
        folder("Sent", &["\\Sent"]),
    ]);
    let options = PlanOptions {
        layout: Layout::UnderAddress {
            root: "me@old.example".into(),
        },
        ..Default::default()
    };
    let plan = FolderPlan::build(&source, &exchange(), &options);
    let paths: Vec<String> = plan.paths_to_create().iter().map(ToString::to_string).collect();
    assert_eq!(
        paths,
        [
            "me@old.example",
            "me@old.example/Inbox",
            "me@old.example/Sent",
            "me@old.example/a",
            "me@old.example/a/b",
            "me@old.example/a/b/c"
        ]
    );
}
