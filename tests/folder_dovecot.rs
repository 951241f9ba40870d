//! The folder plan against a real target: plan a messy source for the private Dovecot from
//! Dovecot's own LIST, create every planned folder over IMAP (no messages), list them back
//! and check each is there, selectable where mail goes, and that system folders landed in
//! Dovecot's own special-use folders. Planning again against the grown listing with the
//! previous mapping changes nothing.

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;

use mailmigrate::folder::{
    Decision, FolderPlan, Layout, ListedFolder, PlanOptions, Role, SourceListing, TargetListing, TargetPath,
    TargetRules,
};
use mailmigrate::imap::codec::{MailboxName, NameAttribute};
use mailmigrate::imap::{self, Session, SessionOptions};
use mailmigrate::net::{MaybeTls, Security, TcpStream, TokioTimer};
use support::{Proto, TestUser, dovecot};

type ImapSession = Session<MaybeTls<TcpStream>>;

async fn login(user: &TestUser) -> ImapSession {
    let server = dovecot().server(Proto::Imap, Security::Tls);
    let mut session = imap::connect(&server, Arc::new(TokioTimer), SessionOptions::default())
        .await
        .expect("connect over TLS");
    session.login(&user.credentials()).await.expect("login");
    session
}

fn attribute_text(attribute: &NameAttribute) -> String {
    match attribute {
        NameAttribute::NoSelect => "\\Noselect".into(),
        NameAttribute::NonExistent => "\\NonExistent".into(),
        NameAttribute::HasChildren => "\\HasChildren".into(),
        NameAttribute::HasNoChildren => "\\HasNoChildren".into(),
        NameAttribute::All => "\\All".into(),
        NameAttribute::Archive => "\\Archive".into(),
        NameAttribute::Drafts => "\\Drafts".into(),
        NameAttribute::Flagged => "\\Flagged".into(),
        NameAttribute::Junk => "\\Junk".into(),
        NameAttribute::Sent => "\\Sent".into(),
        NameAttribute::Trash => "\\Trash".into(),
        NameAttribute::Important => "\\Important".into(),
        NameAttribute::Inbox => "\\Inbox".into(),
        NameAttribute::Extension(other) => other.clone(),
        other => format!("{other:?}"),
    }
}

/// The target as its LIST shows it now, with rules for its delimiter.
async fn target_listing(session: &mut ImapSession) -> TargetListing {
    let items = session.list_all().await.expect("LIST");
    let delimiter = items
        .iter()
        .find_map(|i| i.delimiter)
        .expect("Dovecot lists a delimiter");
    let folders = items.into_iter().map(|item| ListedFolder {
        attributes: item.attributes.iter().map(attribute_text).collect(),
        name: item.name,
        delimiter: item.delimiter,
    });
    let mut listing =
        TargetListing::new(TargetRules::imap(delimiter).expect("usable delimiter")).with_folders(folders);
    if let Some(personal) = session
        .namespace()
        .await
        .expect("NAMESPACE")
        .and_then(|n| n.personal.into_iter().next())
    {
        listing.personal_prefix = personal.prefix;
    }
    listing
}

/// Every folder the target lists, as paths of decoded components.
async fn listed_paths(session: &mut ImapSession) -> BTreeSet<TargetPath> {
    session
        .list_all()
        .await
        .expect("LIST")
        .into_iter()
        .map(|item| {
            let text = item.name.decode().text;
            match item.delimiter {
                Some(d) => TargetPath::new(text.split(d)),
                None => TargetPath::new([text]),
            }
        })
        .collect()
}

/// Creates every planned folder, parents first.
async fn create_all(session: &mut ImapSession, plan: &FolderPlan, delimiter: char) {
    let utf8 = session.utf8_enabled();
    for path in plan.paths_to_create() {
        let name = MailboxName::encode(&path.join(delimiter), utf8);
        session
            .create_if_missing(&name)
            .await
            .unwrap_or_else(|e| panic!("CREATE {path}: {e}"));
    }
}

/// A source full of names that would break a naive copy: an Exchange-style mailbox with
/// Courier leftovers, special characters, case twins, CJK, a Gmail container and view.
fn messy_source() -> SourceListing {
    let folders = [
        ("INBOX", &[][..]),
        ("INBOX/Receipts", &[]),
        ("Sent Items", &["\\Sent"]),
        ("Deleted Items", &["\\Trash"]),
        ("Junk Email", &["\\Junk"]),
        ("Drafts", &["\\Drafts"]),
        ("Sent", &[]),
        ("Projects", &[]),
        ("Projects/2024", &[]),
        ("Projects/2024/Q1 * plan", &[]),
        ("Projects/v2.0 release.", &[]),
        ("a\\b", &[]),
        ("100%", &[]),
        ("C++ & C#", &[]),
        ("Q&-A", &[]),
        (" padded ", &[]),
        (".hidden", &[]),
        ("~backup", &[]),
        ("reports", &[]),
        ("Reports", &[]),
        ("&mHl27g-/&YqVUSg-", &[]),
        ("[Gmail]", &["\\Noselect", "\\HasChildren"]),
        ("[Gmail]/All Mail", &["\\All"]),
        ("[Gmail]/Labels", &[]),
    ];
    SourceListing::new(
        folders
            .iter()
            .map(|(name, attributes)| ListedFolder::new(*name, Some('/'), attributes.iter().copied())),
    )
}

#[tokio::test]
async fn mirror_plan_creates_every_folder_on_dovecot_and_lists_back() {
    let user = dovecot().unique_user("folder-mirror");
    let mut session = login(&user).await;
    let target = target_listing(&mut session).await;
    let delimiter = target.rules.delimiter();
    let before = listed_paths(&mut session).await;

    let plan = FolderPlan::build(&messy_source(), &target, &PlanOptions::default());
    create_all(&mut session, &plan, delimiter).await;
    let after = listed_paths(&mut session).await;

    let planned: BTreeSet<TargetPath> = plan.paths_to_create().into_iter().collect();
    let missing: Vec<_> = planned.difference(&after).collect();
    assert!(
        missing.is_empty(),
        "planned but not listed back: {missing:?}\nlisted: {after:?}"
    );
    // Nothing appeared that the plan did not ask for.
    let extra: Vec<_> = after
        .difference(&before)
        .filter(|p| !planned.contains(p))
        .collect();
    assert!(extra.is_empty(), "unplanned folders: {extra:?}");
    // And doveadm, reading the maildir, sees the same names.
    let on_disk: BTreeSet<String> = dovecot().mailboxes(&user.name).into_iter().collect();
    for path in &planned {
        assert!(
            on_disk.contains(&path.join('/')),
            "{path} missing from doveadm: {on_disk:?}"
        );
    }

    // System folders went to Dovecot's own special-use folders, not to new ones.
    let path_of = |raw: &str| {
        plan.entry(&MailboxName::from_raw(raw.as_bytes().to_vec()))
            .and_then(|e| e.decision.path().cloned())
    };
    assert_eq!(path_of("Sent Items"), Some(TargetPath::new(["Sent"])));
    assert_eq!(path_of("Deleted Items"), Some(TargetPath::new(["Trash"])));
    assert_eq!(path_of("Junk Email"), Some(TargetPath::new(["Junk"])));
    // The source's own "Sent" is a different folder: it must not share Dovecot's Sent.
    assert_eq!(path_of("Sent"), Some(TargetPath::new(["Sent (2)"])));
    assert_eq!(
        path_of("&mHl27g-/&YqVUSg-"),
        Some(TargetPath::new(["项目", "报告"]))
    );
    assert!(
        !after
            .iter()
            .any(|p| p.components().iter().any(|c| c.contains("All Mail")))
    );

    // Every folder that will receive mail can be selected.
    let utf8 = session.utf8_enabled();
    for entry in plan.entries() {
        if let Decision::Copy { path, .. } = &entry.decision {
            let name = MailboxName::encode(&path.join(delimiter), utf8);
            let mailbox = session
                .select(&name)
                .await
                .unwrap_or_else(|e| panic!("SELECT {path}: {e}"));
            assert_eq!(mailbox.exists, 0, "{path} should be empty: nothing was migrated");
        }
    }

    // Second run: Dovecot now lists the created folders; with the previous mapping the plan
    // is the same, so nothing would move.
    let target = target_listing(&mut session).await;
    let options = PlanOptions {
        previous: plan.mapping(),
        ..PlanOptions::default()
    };
    let again = FolderPlan::build(&messy_source(), &target, &options);
    assert_eq!(again, plan);
    session.logout().await.expect("logout");
}

#[tokio::test]
async fn under_address_plan_creates_one_tree_on_dovecot() {
    let user = dovecot().unique_user("folder-under");
    let mut session = login(&user).await;
    let target = target_listing(&mut session).await;
    let delimiter = target.rules.delimiter();
    let options = PlanOptions {
        layout: Layout::UnderAddress {
            root: "old@example.com".into(),
        },
        ..PlanOptions::default()
    };
    let plan = FolderPlan::build(&messy_source(), &target, &options);
    create_all(&mut session, &plan, delimiter).await;
    let after = listed_paths(&mut session).await;

    let root = TargetPath::new(["old@example.com"]);
    assert_eq!(plan.root(), Some(&root));
    for path in plan.paths_to_create() {
        assert!(after.contains(&path), "{path} not listed back");
        assert!(path.starts_with(&root), "{path} is outside the root");
    }
    let sent: Vec<_> = plan
        .entries()
        .iter()
        .filter(|e| e.decision.role() == Some(Role::Sent))
        .collect();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].decision.path(),
        Some(&TargetPath::new(["old@example.com", "Sent"]))
    );
    // Dovecot's own folders are untouched and the tree sits beside them.
    assert!(after.contains(&TargetPath::new(["Sent"])));
    assert!(after.contains(&TargetPath::new(["old@example.com", "Inbox", "Receipts"])));
    session.logout().await.expect("logout");
}
