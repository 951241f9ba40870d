//! `store::Maildir` against a real Dovecot 2.3 reading the maildir it wrote.
//!
//! The shared test Dovecot keeps its own users' mail in `LAYOUT=fs`; these tests point it
//! (through `doveadm -o mail_location=maildir:DIR`) at a directory written by
//! `store::Maildir`, with Dovecot's default Maildir++ layout, as a platform's
//! `mail_location = maildir:~/Maildir` would.

mod support;

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use mailmigrate::folder::Role;
use mailmigrate::imap::codec::{Flag, InternalDate, MailboxName};
use mailmigrate::store::{Maildir, MaildirOptions};
use mailmigrate::sync::{
    Fingerprint, FingerprintCounts, Message, Migrator, SourceId, SyncState, TargetFolder,
};
use mailmigrate::{ErrorKind, Uid};
use support::{Dovecot, TestUser, dovecot, sample_message, sha256_hex};

/// A test user whose Maildir++ directory `store::Maildir` writes and Dovecot reads.
struct Target {
    dovecot: &'static Dovecot,
    user: TestUser,
    root: PathBuf,
}

/// One message as Dovecot shows it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Shown {
    sha256: String,
    flags: BTreeSet<String>,
    received: i64,
}

impl Target {
    fn new(prefix: &str) -> Target {
        let dovecot = dovecot();
        let user = dovecot.unique_user(prefix);
        let root = dovecot.maildir_of(&user).with_file_name("Maildirpp");
        Target { dovecot, user, root }
    }

    /// A store writing as the user Dovecot's mail processes run as (we may be root).
    fn maildir(&self) -> Maildir {
        let meta = std::fs::metadata(self.dovecot.maildir_of(&self.user)).expect("the user's home exists");
        Maildir::open_with(
            &self.root,
            MaildirOptions::default().owner(meta.uid(), meta.gid()),
        )
        .expect("the maildir opens")
    }

    /// `doveadm -o mail_location=maildir:ROOT ARGS`, with extra `-o` settings first.
    fn doveadm(&self, settings: &[&str], args: &[&str]) -> Vec<u8> {
        let location = format!("mail_location=maildir:{}", self.root.display());
        let mut all = vec!["-o", location.as_str()];
        for setting in settings {
            all.extend(["-o", setting]);
        }
        all.extend_from_slice(args);
        let out = self.dovecot.doveadm(&all);
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "doveadm {all:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    fn mailboxes(&self, settings: &[&str]) -> BTreeSet<String> {
        let out = self.doveadm(settings, &["mailbox", "list", "-u", &self.user.name]);
        String::from_utf8(out)
            .expect("UTF-8 names")
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Every message of `mailbox`: SHA-256 of its bytes, flags (without `\Recent`), received
    /// date, sorted.
    fn messages(&self, mailbox: &str) -> Vec<Shown> {
        let user = self.user.name.as_str();
        let out = self.doveadm(
            &[],
            &[
                "-f",
                "tab",
                "fetch",
                "-u",
                user,
                "uid flags date.received.unixtime",
                "mailbox",
                mailbox,
                "all",
            ],
        );
        let out = String::from_utf8(out).expect("UTF-8 output");
        let mut shown: Vec<Shown> = out
            .lines()
            .skip(1)
            .map(|line| {
                let fields: Vec<&str> = line.split('\t').collect();
                assert_eq!(fields.len(), 3, "unexpected doveadm line {line:?}");
                let text = self.doveadm(
                    &[],
                    &["fetch", "-u", user, "text", "mailbox", mailbox, "uid", fields[0]],
                );
                let body = text
                    .strip_prefix(b"text:\n")
                    .expect("doveadm prints the text field first");
                Shown {
                    sha256: sha256_hex(body),
                    flags: fields[1]
                        .split_whitespace()
                        .filter(|f| *f != "\\Recent")
                        .map(str::to_owned)
                        .collect(),
                    received: fields[2].parse().expect("a unix time"),
                }
            })
            .collect();
        shown.sort();
        shown
    }

    /// `(uid, received)` of every message of `mailbox`, in UID order.
    fn uids_and_dates(&self, mailbox: &str) -> Vec<(u32, i64)> {
        let user = self.user.name.as_str();
        let args = [
            "-f",
            "tab",
            "fetch",
            "-u",
            user,
            "uid date.received.unixtime",
            "mailbox",
            mailbox,
            "all",
        ];
        let out = String::from_utf8(self.doveadm(&[], &args)).expect("UTF-8 output");
        let mut rows: Vec<(u32, i64)> = out
            .lines()
            .skip(1)
            .map(|line| {
                let (uid, date) = line.split_once('\t').expect("two fields");
                (uid.parse().expect("a uid"), date.parse().expect("a unix time"))
            })
            .collect();
        rows.sort();
        rows
    }

    fn message_count(&self, mailbox: &str) -> usize {
        let out = self.doveadm(
            &[],
            &[
                "-f",
                "tab",
                "mailbox",
                "status",
                "-u",
                &self.user.name,
                "messages",
                mailbox,
            ],
        );
        let out = String::from_utf8(out).expect("UTF-8 output");
        // "mailbox\tmessages" then "NAME\tCOUNT".
        let row = out.lines().nth(1).unwrap_or_default();
        row.rsplit('\t')
            .next()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no count in {out:?}"))
    }
}

fn folder(path: &[&str]) -> TargetFolder {
    TargetFolder {
        path: path.iter().map(|s| s.to_string()).collect(),
        role: None,
    }
}

fn message(source_folder: &str, uid: u32, raw: Vec<u8>, flags: Vec<Flag>, unix: i64, offset: i16) -> Message {
    let raw = Bytes::from(raw);
    Message {
        fingerprint: Fingerprint::of_message(&raw),
        raw,
        flags,
        internal_date: Some(InternalDate {
            unix,
            offset_minutes: offset,
        }),
        source: SourceId::Imap {
            folder: MailboxName::encode(source_folder, false),
            uid_validity: 1_700_000_000,
            uid: Uid::new(uid).expect("non-zero uid"),
        },
    }
}

/// What Dovecot must show for `messages`.
fn expected(messages: &[Message]) -> Vec<Shown> {
    let mut shown: Vec<Shown> = messages
        .iter()
        .map(|m| Shown {
            sha256: sha256_hex(&m.raw),
            flags: m.flags.iter().map(|f| f.as_imap().to_owned()).collect(),
            received: m.internal_date.expect("dated").unix,
        })
        .collect();
    shown.sort();
    shown
}

/// Every combination of the five system flags, plus keywords on some.
fn flag_combinations() -> Vec<Vec<Flag>> {
    let system = [
        Flag::Seen,
        Flag::Answered,
        Flag::Flagged,
        Flag::Deleted,
        Flag::Draft,
    ];
    (0u32..32)
        .map(|mask| {
            let mut flags: Vec<Flag> = system
                .iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << i) != 0)
                .map(|(_, f)| f.clone())
                .collect();
            if mask % 3 == 0 {
                flags.push(Flag::Keyword("$Forwarded".into()));
            }
            if mask % 4 == 1 {
                flags.push(Flag::Keyword("Work".into()));
            }
            flags
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dovecot_shows_the_folders_bodies_flags_keywords_and_dates_that_were_stored() {
    let target = Target::new("store-maildir");
    let maildir = target.maildir();

    // Internal dates in several zones: the instant must survive, whatever the offset.
    let zones: [i16; 4] = [480, -300, 330, 0];
    let inbox_messages: Vec<Message> = flag_combinations()
        .into_iter()
        .enumerate()
        .map(|(i, flags)| {
            let zone = zones[i % zones.len()];
            message(
                "INBOX",
                i as u32 + 1,
                sample_message(i, 300 + i * 7),
                flags,
                1_600_000_000 + i as i64 * 86_399,
                zone,
            )
        })
        .collect();
    let big = message(
        "项目/2024",
        1,
        sample_message(1000, 5 * 1024 * 1024),
        vec![Flag::Seen, Flag::Keyword("$Label1".into())],
        1_704_067_199,
        480,
    );
    let chinese = vec![
        big,
        message(
            "项目/2024",
            2,
            sample_message(1001, 64),
            vec![Flag::Keyword("Work".into())],
            1_704_067_200,
            480,
        ),
    ];
    // Bare-LF line ends are stored as they are (Dovecot computes the CRLF size itself).
    let plus = vec![message(
        "A+B",
        9,
        b"Subject: lf\n\nbare\nline ends\n".to_vec(),
        vec![],
        946_684_800,
        -600,
    )];
    let amp = vec![message(
        "Q&A",
        3,
        sample_message(7, 10),
        vec![Flag::Answered, Flag::Draft],
        1_000_000_000,
        60,
    )];
    let star = vec![message(
        "Star*x",
        4,
        sample_message(8, 10),
        vec![Flag::Flagged],
        1_111_111_111,
        0,
    )];

    let inbox = TargetFolder {
        path: vec!["Posteingang".into()],
        role: Some(Role::Inbox),
    };
    let plan: Vec<(TargetFolder, &str, Vec<Message>)> = vec![
        (inbox, "INBOX", inbox_messages),
        (folder(&["项目", "2024"]), "项目/2024", chinese),
        (folder(&["A+B"]), "A+B", plus),
        (folder(&["Q&A"]), "Q&A", amp),
        (folder(&["Star*x"]), "Star*x", star),
    ];

    // All folders at once on several threads, as the engine copies them; newest first, half
    // one by one and half in a batch.
    let maildir = Arc::new(maildir);
    let stores: Vec<_> = plan
        .iter()
        .map(|(target, _, messages)| {
            let (maildir, target) = (Arc::clone(&maildir), target.clone());
            let mut messages = messages.clone();
            messages.reverse();
            tokio::spawn(async move {
                maildir.prepare_folder(&target).await.expect("folder prepared");
                let rest = messages.split_off(messages.len() / 2);
                for m in messages {
                    maildir.store(&target, m).await.expect("stored");
                }
                for result in maildir.store_batch(&target, rest).await {
                    result.expect("stored in a batch");
                }
            })
        })
        .collect();
    for store in stores {
        store.await.expect("the store task finished");
    }
    assert!(
        maildir.dropped_flags().is_empty(),
        "{:?}",
        maildir.dropped_flags()
    );

    let listed = target.mailboxes(&[]);
    for name in ["INBOX", "项目", "项目/2024", "A+B", "Q&A", "Star*x"] {
        assert!(listed.contains(name), "Dovecot lists {listed:?}, not {name:?}");
    }
    // The same directories read with '.' as the namespace separator, as in Dovecot's default.
    let dotted = target.mailboxes(&["namespace/inbox/separator=."]);
    assert!(dotted.contains("项目.2024"), "{dotted:?}");

    let subscribed = target.doveadm(&[], &["mailbox", "list", "-s", "-u", &target.user.name]);
    let subscribed = String::from_utf8(subscribed).expect("UTF-8 names");
    for name in ["项目/2024", "A+B", "Q&A", "Star*x"] {
        assert!(
            subscribed.lines().any(|l| l == name),
            "{name:?} not subscribed: {subscribed:?}"
        );
    }

    // Dovecot numbered the new files by the date leading their names: UIDs follow the dates,
    // although the messages were written in no particular order.
    let numbered = target.uids_and_dates("INBOX");
    assert_eq!(numbered.len(), 32);
    assert!(numbered.windows(2).all(|w| w[0].1 < w[1].1), "{numbered:?}");

    for (_, mailbox, messages) in &plan {
        assert_eq!(target.messages(mailbox), expected(messages), "mailbox {mailbox}");
    }
}

#[tokio::test]
async fn storing_the_same_source_twice_leaves_one_message_even_after_dovecot_renamed_it() {
    let target = Target::new("store-twice");
    let inbox = folder(&["INBOX"]);
    let m = message(
        "INBOX",
        42,
        sample_message(42, 500),
        vec![Flag::Flagged],
        1_650_000_000,
        120,
    );
    {
        let maildir = target.maildir();
        maildir.store(&inbox, m.clone()).await.expect("stored");
        maildir.store(&inbox, m.clone()).await.expect("stored again");
    }
    assert_eq!(target.message_count("INBOX"), 1);

    // Dovecot changes its flags (renaming the file); a new run offers it again.
    target.doveadm(
        &[],
        &[
            "flags",
            "add",
            "-u",
            &target.user.name,
            "\\Seen",
            "mailbox",
            "INBOX",
            "all",
        ],
    );
    let again = target.maildir();
    let results = again.store_batch(&inbox, vec![m.clone(), m.clone()]).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let shown = target.messages("INBOX");
    assert_eq!(shown.len(), 1, "{shown:?}");
    assert_eq!(shown[0].sha256, sha256_hex(&m.raw));
    assert_eq!(
        shown[0].flags,
        BTreeSet::from(["\\Flagged".to_string(), "\\Seen".to_string()])
    );
}

#[tokio::test]
async fn keywords_dovecot_assigned_keep_their_letters_and_a_27th_keyword_is_dropped_and_reported() {
    let target = Target::new("store-keywords");
    let work = folder(&["Work"]);
    let maildir = target.maildir();
    maildir.prepare_folder(&work).await.expect("prepared");
    // Dovecot itself gives "Urgent" the first letter in this folder.
    let first = message("Work", 1, sample_message(1, 40), vec![], 1_600_000_000, 0);
    maildir.store(&work, first.clone()).await.expect("stored");
    target.doveadm(
        &[],
        &[
            "flags",
            "add",
            "-u",
            &target.user.name,
            "Urgent",
            "mailbox",
            "Work",
            "all",
        ],
    );

    let many: Vec<Flag> = (0..27).map(|i| Flag::Keyword(format!("k{i:02}"))).collect();
    let mut flags = vec![Flag::Keyword("urgent".into())];
    flags.extend(many);
    let second = message("Work", 2, sample_message(2, 40), flags, 1_600_000_100, 0);
    maildir
        .store(&work, second.clone())
        .await
        .expect("stored without the extra keyword");

    // "urgent" matches Dovecot's "Urgent"; 26 letters minus Urgent's leave room for 25 more.
    let dropped = maildir.dropped_flags();
    let dropped = dropped
        .get(&vec!["Work".to_string()])
        .expect("dropped keywords reported");
    assert_eq!(dropped, &BTreeSet::from(["k25".to_string(), "k26".to_string()]));
    let shown = target.messages("Work");
    let second_shown = shown
        .iter()
        .find(|s| s.sha256 == sha256_hex(&second.raw))
        .expect("second message");
    let mut want: BTreeSet<String> = (0..25).map(|i| format!("k{i:02}")).collect();
    want.insert("Urgent".into());
    assert_eq!(second_shown.flags, want);
    let first_shown = shown
        .iter()
        .find(|s| s.sha256 == sha256_hex(&first.raw))
        .expect("first message");
    assert_eq!(first_shown.flags, BTreeSet::from(["Urgent".to_string()]));
}

#[tokio::test]
async fn fingerprints_match_the_stored_messages_after_dovecot_has_read_them() {
    let target = Target::new("store-fingerprints");
    let maildir = target.maildir();
    let sent = folder(&["Sent"]);
    let messages: Vec<Message> = (0..20)
        .map(|i| {
            message(
                "Sent",
                i + 1,
                sample_message(i as usize % 15, 100),
                vec![Flag::Seen],
                1_600_000_000,
                0,
            )
        })
        .collect();
    maildir.prepare_folder(&sent).await.expect("prepared");
    for result in maildir.store_batch(&sent, messages.clone()).await {
        result.expect("stored");
    }
    // Dovecot indexes the folder and renames every file (new flags).
    target.doveadm(
        &[],
        &[
            "flags",
            "add",
            "-u",
            &target.user.name,
            "\\Answered",
            "mailbox",
            "Sent",
            "all",
        ],
    );
    assert_eq!(target.message_count("Sent"), 20);

    let counts = maildir
        .fingerprints(&sent)
        .await
        .expect("readable")
        .expect("known");
    let want: FingerprintCounts = messages.iter().map(|m| Fingerprint::of_message(&m.raw)).collect();
    assert_eq!(counts, want);
    // Five of the sample messages were stored twice (same content, different source UIDs).
    assert_eq!(counts.count(&Fingerprint::of_message(&sample_message(0, 100))), 2);
}

#[tokio::test]
async fn state_round_trips_beside_the_mail_and_a_corrupt_state_file_is_refused_clearly() {
    let target = Target::new("store-state");
    let maildir = target.maildir();
    assert_eq!(maildir.load_state().await.expect("no state yet"), None);

    let mut state = SyncState::new();
    let source = MailboxName::encode("已发送", false);
    let folder_state = state.folder_mut(&source);
    folder_state.uid_validity = 77;
    folder_state.target = vec!["Sent".into()];
    folder_state.copied = "1:100,205".parse().expect("a UID set");
    maildir.save_state(&state).await.expect("saved");
    assert_eq!(
        target.maildir().load_state().await.expect("readable"),
        Some(state.clone())
    );

    // The state file is no mailbox to Dovecot.
    let before = target.mailboxes(&[]);
    assert!(before.iter().all(|name| !name.contains("state")), "{before:?}");

    std::fs::write(maildir.state_path(), b"{\"format\": 1, \"folders\": [{").expect("corrupted");
    let err = maildir
        .load_state()
        .await
        .expect_err("a corrupt state is an error");
    assert_eq!(err.kind(), ErrorKind::Io);
    let message = err.to_string();
    assert!(
        message.contains(&maildir.state_path().display().to_string()),
        "{message}"
    );
    assert!(message.contains("restore it from a backup"), "{message}");
    // Saving again replaces it atomically.
    maildir
        .save_state(&state)
        .await
        .expect("saved over the corrupt file");
    assert_eq!(maildir.load_state().await.expect("readable"), Some(state));
}

#[tokio::test]
async fn folder_names_the_maildir_cannot_hold_are_refused_without_writing() {
    let target = Target::new("store-names");
    let maildir = target.maildir();
    for bad in [&["a.b"][..], &["x", "y/z"], &[""]] {
        let err = maildir.prepare_folder(&folder(bad)).await.expect_err("refused");
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}");
        let m = message("INBOX", 1, sample_message(1, 10), vec![], 1_600_000_000, 0);
        let err = maildir.store(&folder(bad), m).await.expect_err("refused");
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}");
    }
    let listed = target.mailboxes(&[]);
    let unexpected: Vec<&String> = listed
        .iter()
        .filter(|n| !["INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"].contains(&n.as_str()))
        .collect();
    assert!(unexpected.is_empty(), "{unexpected:?}");
}
