//! Folder planning time for large and hostile listings.
//!
//! `cargo bench --bench folder_plan` prints one line per workload. Goals: a 10,000-folder
//! mailbox plans in well under a second, with or without a previous mapping; hostile
//! listings (one name 50,000 levels deep, 20,000 names that sanitise alike) stay linear or
//! close to it instead of taking minutes.

use std::hint::black_box;
use std::time::{Duration, Instant};

use mailmigrate::folder::{FolderPlan, ListedFolder, PlanOptions, SourceListing, TargetListing, TargetRules};

fn main() {
    let exchange = TargetListing::new(TargetRules::exchange()).with_folders([
        ListedFolder::new("INBOX", Some('/'), [""; 0]),
        ListedFolder::new("Sent Items", Some('/'), ["\\Sent"]),
        ListedFolder::new("Deleted Items", Some('/'), ["\\Trash"]),
    ]);
    let mailbox = SourceListing::new(big_mailbox(10_000));
    let first = FolderPlan::build(&mailbox, &exchange, &PlanOptions::default());
    report("10k folders, Mirror into Exchange", 10_000, || {
        FolderPlan::build(&mailbox, &exchange, &PlanOptions::default())
    });
    let again = PlanOptions {
        previous: first.mapping(),
        ..PlanOptions::default()
    };
    report("10k folders, with the previous mapping", 10_000, || {
        FolderPlan::build(&mailbox, &exchange, &again)
    });

    let deep = SourceListing::new([ListedFolder::new("a/".repeat(50_000), Some('/'), [""; 0])]);
    let plain = TargetListing::new(TargetRules::imap('/').expect("valid delimiter"));
    report("one name 50,000 levels deep", 1, || {
        FolderPlan::build(&deep, &plain, &PlanOptions::default())
    });

    let alike = SourceListing::new((0..20_000).map(|i| {
        ListedFolder::new(
            format!("Same{}{}", "*".repeat(i % 7), " ".repeat(i / 7)),
            Some('/'),
            [""; 0],
        )
    }));
    report("20k names that sanitise alike", 20_000, || {
        FolderPlan::build(&alike, &exchange, &PlanOptions::default())
    });
}

/// Projects with yearly and quarterly subfolders, CJK names and case twins.
fn big_mailbox(n: usize) -> Vec<ListedFolder> {
    let mut folders = vec![ListedFolder::new("INBOX", Some('/'), [""; 0])];
    for i in 0..n.saturating_sub(1) {
        let name = match i % 4 {
            0 => format!("Projects/P{}/{}", i / 40, 2000 + i % 25),
            1 => format!("客户/客户{}/报告", i / 4),
            2 => format!("Lists/list-{}", i / 2),
            _ => format!("lists/LIST-{}", i / 2),
        };
        folders.push(ListedFolder::new(name, Some('/'), [""; 0]));
    }
    folders
}

fn report(name: &str, folders: usize, mut run: impl FnMut() -> FolderPlan) {
    assert_eq!(run().entries().len(), folders, "{name}: wrong entry count");
    let mut best = Duration::MAX;
    for _ in 0..5 {
        let start = Instant::now();
        black_box(run());
        best = best.min(start.elapsed());
    }
    let secs = best.as_secs_f64();
    println!(
        "{name}: {:.1} ms, {:.0} folders/s",
        secs * 1e3,
        folders as f64 / secs
    );
}
