//! The folder plan for real providers' LIST outputs, written out in full.
//!
//! Each listing is what the provider's server sent (from public client logs and bug reports;
//! see each test), parsed by the small LIST-line reader below so the data stays readable.

use mailmigrate::folder::{
    Decision, FolderPlan, Layout, ListedFolder, PlanOptions, ProviderHints, Role, SourceListing,
    TargetListing, TargetPath, TargetRules,
};
use mailmigrate::imap::codec::{MailboxName, NameEncoding};

/// Reads `* LIST (attributes) "delimiter" name` lines (also XLIST, NIL delimiters, atoms and
/// quoted names with `\\` and `\"` escapes). Test data only: the crate's own parser lives in
/// `imap::codec`.
fn listing(transcript: &str) -> Vec<ListedFolder> {
    transcript
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(list_line)
        .collect()
}

fn list_line(line: &str) -> ListedFolder {
    let rest = line
        .strip_prefix("* LIST ")
        .or_else(|| line.strip_prefix("* XLIST "))
        .unwrap_or_else(|| panic!("not a LIST line: {line}"));
    let close = rest.find(')').expect("attribute list");
    let attributes: Vec<String> = rest[1..close].split_whitespace().map(str::to_owned).collect();
    let rest = rest[close + 1..].trim_start();
    let (delimiter, rest) = match rest.strip_prefix("NIL ") {
        Some(rest) => (None, rest),
        None => {
            let (text, rest) = quoted(rest);
            (text.chars().next(), rest)
        }
    };
    let rest = rest.trim_start();
    let name = if rest.starts_with('"') {
        quoted(rest).0
    } else {
        rest.to_owned()
    };
    ListedFolder::new(name, delimiter, attributes)
}

fn quoted(text: &str) -> (String, &str) {
    let mut out = String::new();
    let mut chars = text.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => out.push(chars.next().expect("escaped char").1),
            '"' => return (out, &text[i + 1..]),
            c => out.push(c),
        }
    }
    panic!("unterminated quoted string in {text}");
}

/// One line per source folder: `name => target/path [role]` or `name => skip: reason`.
fn render(plan: &FolderPlan) -> String {
    plan.entries()
        .iter()
        .map(|e| match &e.decision {
            Decision::Copy {
                path,
                role: Some(role),
            } => format!("{} => {path} [{role}]", e.name),
            Decision::Copy { path, role: None } => format!("{} => {path}", e.name),
            Decision::CreateOnly { path } => format!("{} => {path} (create only)", e.name),
            Decision::Skip(reason) => format!("{} => skip: {reason:?}", e.name),
            other => format!("{} => {other:?}", e.name),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn expected(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

fn mirror() -> PlanOptions {
    PlanOptions::default()
}

fn under(root: &str) -> PlanOptions {
    PlanOptions {
        layout: Layout::UnderAddress {
            root: root.to_owned(),
        },
        ..PlanOptions::default()
    }
}

/// A Dovecot target with SPECIAL-USE configured (the stock `15-mailboxes.conf` names).
fn dovecot_target() -> TargetListing {
    TargetListing::new(TargetRules::imap('/').unwrap()).with_folders(listing(
        r#"
        * LIST (\HasNoChildren) "/" INBOX
        * LIST (\HasNoChildren \Drafts) "/" Drafts
        * LIST (\HasNoChildren \Junk) "/" Junk
        * LIST (\HasNoChildren \Trash) "/" Trash
        * LIST (\HasNoChildren \Sent) "/" Sent
        "#,
    ))
}

fn maildir() -> TargetListing {
    TargetListing::new(TargetRules::maildir())
}

/// Exchange Online as a target, as its LIST shows it.
fn exchange_target() -> TargetListing {
    TargetListing::new(TargetRules::exchange()).with_folders(listing(
        r#"
        * LIST (\HasNoChildren \Archive) "/" Archive
        * LIST (\HasNoChildren \Trash) "/" "Deleted Items"
        * LIST (\HasNoChildren \Drafts) "/" Drafts
        * LIST (\Marked \HasNoChildren) "/" INBOX
        * LIST (\HasNoChildren \Junk) "/" "Junk Email"
        * LIST (\HasNoChildren \Sent) "/" "Sent Items"
        "#,
    ))
}

/// Gmail in English (imap.gmail.com, SPECIAL-USE).
const GMAIL: &str = r#"
    * LIST (\HasNoChildren) "/" "INBOX"
    * LIST (\HasChildren) "/" "Projects"
    * LIST (\HasNoChildren) "/" "Projects/2024"
    * LIST (\HasChildren \Noselect) "/" "[Gmail]"
    * LIST (\All \HasNoChildren) "/" "[Gmail]/All Mail"
    * LIST (\Drafts \HasNoChildren) "/" "[Gmail]/Drafts"
    * LIST (\HasNoChildren \Important) "/" "[Gmail]/Important"
    * LIST (\HasNoChildren \Sent) "/" "[Gmail]/Sent Mail"
    * LIST (\HasNoChildren \Junk) "/" "[Gmail]/Spam"
    * LIST (\Flagged \HasNoChildren) "/" "[Gmail]/Starred"
    * LIST (\HasNoChildren \Trash) "/" "[Gmail]/Trash"
"#;

#[test]
fn gmail_mirror_lands_in_the_targets_system_folders_and_skips_views() {
    let plan = FolderPlan::build(&SourceListing::new(listing(GMAIL)), &dovecot_target(), &mirror());
    assert_eq!(
        render(&plan),
        expected(
            "
            INBOX => INBOX [inbox]
            Projects => Projects
            Projects/2024 => Projects/2024
            [Gmail] => skip: NoselectEmpty
            [Gmail]/All Mail => skip: Virtual(All)
            [Gmail]/Drafts => Drafts [drafts]
            [Gmail]/Important => skip: Virtual(Important)
            [Gmail]/Sent Mail => Sent [sent]
            [Gmail]/Spam => Junk [junk]
            [Gmail]/Starred => skip: Virtual(Flagged)
            [Gmail]/Trash => Trash [trash]
            "
        )
    );
}

#[test]
fn gmail_under_address_keeps_recognisable_system_names_under_the_root() {
    let plan = FolderPlan::build(
        &SourceListing::new(listing(GMAIL)),
        &maildir(),
        &under("old@gmail.com"),
    );
    assert_eq!(
        render(&plan),
        expected(
            "
            INBOX => old@gmail．com/Inbox [inbox]
            Projects => old@gmail．com/Projects
            Projects/2024 => old@gmail．com/Projects/2024
            [Gmail] => skip: NoselectEmpty
            [Gmail]/All Mail => skip: Virtual(All)
            [Gmail]/Drafts => old@gmail．com/Drafts [drafts]
            [Gmail]/Important => skip: Virtual(Important)
            [Gmail]/Sent Mail => old@gmail．com/Sent [sent]
            [Gmail]/Spam => old@gmail．com/Junk [junk]
            [Gmail]/Starred => skip: Virtual(Flagged)
            [Gmail]/Trash => old@gmail．com/Trash [trash]
            "
        )
    );
    assert_eq!(
        plan.root().map(ToString::to_string).as_deref(),
        Some("old@gmail．com")
    );
}

#[test]
fn gmail_all_mail_is_copied_as_a_plain_folder_when_views_are_kept() {
    let options = PlanOptions {
        skip_virtual: false,
        ..mirror()
    };
    let plan = FolderPlan::build(&SourceListing::new(listing(GMAIL)), &dovecot_target(), &options);
    let rendered = render(&plan);
    assert!(
        rendered.contains("[Gmail]/All Mail => [Gmail]/All Mail [all]"),
        "{rendered}"
    );
    assert!(
        rendered.contains("[Gmail]/Starred => [Gmail]/Starred [flagged]"),
        "{rendered}"
    );
    assert!(
        rendered.contains("[Gmail] => [Gmail] (create only)"),
        "{rendered}"
    );
    assert!(
        rendered.contains("[Gmail]/Sent Mail => Sent [sent]"),
        "{rendered}"
    );
}

/// Gmail in Simplified Chinese, with labels "Sent" and "Trash" another client created
/// (LIST from a public Python notebook against imap.gmail.com).
#[test]
fn gmail_chinese_special_use_wins_and_lookalike_labels_keep_their_own_folders() {
    let source = SourceListing::new(listing(
        r#"
        * LIST (\HasNoChildren) "/" "INBOX"
        * LIST (\HasNoChildren) "/" "Sent"
        * LIST (\HasNoChildren) "/" "Trash"
        * LIST (\HasChildren \Noselect) "/" "[Gmail]"
        * LIST (\HasNoChildren \Junk) "/" "[Gmail]/&V4NXPpCuTvY-"
        * LIST (\HasNoChildren \Trash) "/" "[Gmail]/&XfJSIJZkkK5O9g-"
        * LIST (\Flagged \HasNoChildren) "/" "[Gmail]/&XfJSoGYfaAc-"
        * LIST (\HasNoChildren \Sent) "/" "[Gmail]/&XfJT0ZCuTvY-"
        * LIST (\All \HasNoChildren) "/" "[Gmail]/&YkBnCZCuTvY-"
        * LIST (\Drafts \HasNoChildren) "/" "[Gmail]/&g0l6Pw-"
        * LIST (\HasNoChildren \Important) "/" "[Gmail]/&kc2JgQ-"
        "#,
    ));
    let plan = FolderPlan::build(&source, &maildir(), &mirror());
    assert_eq!(
        render(&plan),
        expected(
            "
            INBOX => INBOX [inbox]
            Sent => Sent (2)
            Trash => Trash (2)
            [Gmail] => skip: NoselectEmpty
            [Gmail]/垃圾邮件 => Junk [junk]
            [Gmail]/已删除邮件 => Trash [trash]
            [Gmail]/已加星标 => skip: Virtual(Flagged)
            [Gmail]/已发邮件 => Sent [sent]
            [Gmail]/所有邮件 => skip: Virtual(All)
            [Gmail]/草稿 => Drafts [drafts]
            [Gmail]/重要 => skip: Virtual(Important)
            "
        )
    );
}

/// Exchange (a Polish mailbox's LIST, from a public how-to) into Dovecot.
#[test]
fn exchange_system_folders_map_to_dovecot_names() {
    let source = SourceListing::new(listing(
        r#"
        * LIST (\HasChildren) "/" Archiwum
        * LIST (\HasNoChildren) "/" Archiwum/Tidal
        * LIST (\HasNoChildren) "/" Calendar
        * LIST (\HasChildren) "/" Contacts
        * LIST (\HasNoChildren \Trash) "/" "Deleted Items"
        * LIST (\HasNoChildren \Drafts) "/" Drafts
        * LIST (\Marked \HasNoChildren) "/" INBOX
        * LIST (\HasNoChildren \Junk) "/" "Junk Email"
        * LIST (\HasChildren) "/" Kategorie
        * LIST (\HasNoChildren) "/" Kategorie/Przesy&AUI-ki
        * LIST (\HasNoChildren) "/" "NA POTEM"
        * LIST (\HasNoChildren) "/" Outbox
        * LIST (\HasNoChildren \Sent) "/" "Sent Items"
        * LIST (\HasNoChildren) "/" "Tematy/Dozowniki &AUE-azienkowe"
        "#,
    ));
    let plan = FolderPlan::build(&source, &dovecot_target(), &mirror());
    assert_eq!(
        render(&plan),
        expected(
            "
            Archiwum => Archiwum
            Archiwum/Tidal => Archiwum/Tidal
            Calendar => Calendar
            Contacts => Contacts
            Deleted Items => Trash [trash]
            Drafts => Drafts [drafts]
            INBOX => INBOX [inbox]
            Junk Email => Junk [junk]
            Kategorie => Kategorie
            Kategorie/Przesyłki => Kategorie/Przesyłki
            NA POTEM => NA POTEM
            Outbox => Outbox
            Sent Items => Sent [sent]
            Tematy/Dozowniki Łazienkowe => Tematy/Dozowniki Łazienkowe
            "
        )
    );
}

/// QQ Mail / Tencent Exmail (LIST from a public protocol write-up and a live capture):
/// no SPECIAL-USE, custom folders under `其他文件夹`.
const QQ: &str = r#"
    * LIST (\NoSelect \HasChildren) "/" "&UXZO1mWHTvZZOQ-"
    * LIST (\HasNoChildren) "/" "&UXZO1mWHTvZZOQ-/&VFhd5XuAU4Y-"
    * LIST (\HasNoChildren) "/" "&UXZO1mWHTvZZOQ-/QQ&kK5O9ouilgU-"
    * LIST (\HasNoChildren) "/" "INBOX"
    * LIST (\HasNoChildren) "/" "Sent Messages"
    * LIST (\HasNoChildren) "/" "Drafts"
    * LIST (\HasNoChildren) "/" "Deleted Messages"
    * LIST (\HasNoChildren) "/" "Junk"
"#;

#[test]
fn qq_folders_are_recognised_by_name_and_lifted_out_of_other_folders() {
    let source = SourceListing::new(listing(QQ)).with_hints(ProviderHints::qq());
    let plan = FolderPlan::build(&source, &exchange_target(), &mirror());
    assert_eq!(
        render(&plan),
        expected(
            "
            其他文件夹 => skip: NoselectEmpty
            其他文件夹/员工简历 => 员工简历
            其他文件夹/QQ邮件订阅 => QQ邮件订阅
            Deleted Messages => Deleted Items [trash]
            Drafts => Drafts [drafts]
            INBOX => INBOX [inbox]
            Junk => Junk Email [junk]
            Sent Messages => Sent Items [sent]
            "
        )
    );
}

#[test]
fn qq_without_the_hint_keeps_other_folders_as_a_parent() {
    let plan = FolderPlan::build(&SourceListing::new(listing(QQ)), &exchange_target(), &mirror());
    let rendered = render(&plan);
    assert!(
        rendered.contains("其他文件夹 => 其他文件夹 (create only)"),
        "{rendered}"
    );
    assert!(
        rendered.contains("其他文件夹/员工简历 => 其他文件夹/员工简历"),
        "{rendered}"
    );
}

/// NetEase 126.com (Coremail; LIST after ID from a public protocol log): SPECIAL-USE on
/// Chinese names, custom Chinese and emoji folders.
const NETEASE: &str = r#"
    * LIST () "/" "INBOX"
    * LIST (\Drafts) "/" "&g0l6P3ux-"
    * LIST (\Sent) "/" "&XfJT0ZAB-"
    * LIST (\Trash) "/" "&XfJSIJZk-"
    * LIST (\Junk) "/" "&V4NXPpCuTvY-"
    * LIST () "/" "&dcVr0pCuTvY-"
    * LIST () "/" "&Xn9USpCuTvY-"
    * LIST () "/" "&i6KWBZCuTvY-"
    * LIST () "/" "Archive"
    * LIST () "/" "&Ti1lhw-"
    * LIST () "/" "&2D3eAQ-"
    * LIST () "/" "Folder1"
    * LIST () "/" "Spambox"
"#;

#[test]
fn netease_mirror_maps_chinese_system_folders() {
    let plan = FolderPlan::build(
        &SourceListing::new(listing(NETEASE)),
        &dovecot_target(),
        &mirror(),
    );
    assert_eq!(
        render(&plan),
        expected(
            "
            😁 => 😁
            中文 => 中文
            垃圾邮件 => Junk [junk]
            已删除 => Trash [trash]
            已发送 => Sent [sent]
            广告邮件 => 广告邮件
            病毒邮件 => 病毒邮件
            草稿箱 => Drafts [drafts]
            订阅邮件 => 订阅邮件
            Archive => Archive [archive]
            Folder1 => Folder1
            INBOX => INBOX [inbox]
            Spambox => Spambox
            "
        )
    );
}

#[test]
fn netease_under_address_can_use_chinese_system_names() {
    let mut options = under("old@126.com");
    for (role, name) in [
        (Role::Inbox, "收件箱"),
        (Role::Sent, "已发送"),
        (Role::Drafts, "草稿箱"),
        (Role::Trash, "已删除"),
        (Role::Junk, "垃圾邮件"),
        (Role::Archive, "归档"),
    ] {
        options.role_names.insert(role, name.to_owned());
    }
    let plan = FolderPlan::build(&SourceListing::new(listing(NETEASE)), &maildir(), &options);
    assert_eq!(
        render(&plan),
        expected(
            "
            😁 => old@126．com/😁
            中文 => old@126．com/中文
            垃圾邮件 => old@126．com/垃圾邮件 [junk]
            已删除 => old@126．com/已删除 [trash]
            已发送 => old@126．com/已发送 [sent]
            广告邮件 => old@126．com/广告邮件
            病毒邮件 => old@126．com/病毒邮件
            草稿箱 => old@126．com/草稿箱 [drafts]
            订阅邮件 => old@126．com/订阅邮件
            Archive => old@126．com/归档 [archive]
            Folder1 => old@126．com/Folder1
            INBOX => old@126．com/收件箱 [inbox]
            Spambox => old@126．com/Spambox
            "
        )
    );
}

/// A legacy Coremail or Aliyun personal server sending raw GBK names, no SPECIAL-USE.
#[test]
fn coremail_raw_gbk_names_are_decoded_and_recognised() {
    let gbk = |text: &str| encoding_rs::GBK.encode(text).0.into_owned();
    let folders = [
        ListedFolder::new("INBOX", Some('/'), [""; 0]),
        ListedFolder::new(gbk("已发送"), Some('/'), [""; 0]),
        ListedFolder::new(gbk("草稿箱"), Some('/'), [""; 0]),
        ListedFolder::new(gbk("已删除"), Some('/'), [""; 0]),
        ListedFolder::new(gbk("垃圾邮件"), Some('/'), [""; 0]),
        ListedFolder::new(gbk("项目/2024"), Some('/'), [""; 0]),
    ];
    let plan = FolderPlan::build(&SourceListing::new(folders), &dovecot_target(), &mirror());
    assert_eq!(
        render(&plan),
        expected(
            "
            INBOX => INBOX [inbox]
            草稿箱 => Drafts [drafts]
            垃圾邮件 => Junk [junk]
            项目/2024 => 项目/2024
            已发送 => Sent [sent]
            已删除 => Trash [trash]
            "
        )
    );
    let legacy = plan
        .entries()
        .iter()
        .filter(|e| matches!(e.encoding, NameEncoding::Legacy(_)))
        .count();
    assert_eq!(legacy, 5);
}

/// Courier (personal namespace `INBOX.`, `.` delimiter, a shared namespace) into Exchange,
/// which ignores case and reserves `Files`.
#[test]
fn courier_into_exchange_strips_the_namespace_and_avoids_case_collisions() {
    let source = SourceListing::new(listing(
        r##"
        * LIST (\HasChildren) "." "INBOX"
        * LIST (\HasNoChildren) "." "INBOX.Sent"
        * LIST (\HasNoChildren) "." "INBOX.Trash"
        * LIST (\HasNoChildren) "." "INBOX.Drafts"
        * LIST (\HasNoChildren) "." "INBOX.spam"
        * LIST (\HasChildren) "." "INBOX.Projects"
        * LIST (\HasNoChildren) "." "INBOX.Projects.2024"
        * LIST (\HasNoChildren) "." "INBOX.Projects.2024/Q1 plan"
        * LIST (\HasNoChildren) "." "INBOX.projects"
        * LIST (\HasNoChildren) "." "INBOX.Files"
        * LIST (\HasNoChildren) "." "INBOX.Receipts "
        * LIST (\HasNoChildren) "." "INBOX.a*b%c"
        * LIST (\HasNoChildren) "." "#shared.team"
        "##,
    ))
    .with_personal_prefix("INBOX.")
    .with_other_prefixes(["#shared."]);
    let plan = FolderPlan::build(&source, &exchange_target(), &mirror());
    assert_eq!(
        render(&plan),
        expected(
            "
            #shared.team => skip: OtherNamespace
            INBOX => INBOX [inbox]
            INBOX.Drafts => Drafts [drafts]
            INBOX.Files => Files (2)
            INBOX.Projects => Projects
            INBOX.Projects.2024 => Projects/2024
            INBOX.Projects.2024/Q1 plan => Projects/2024／Q1 plan
            INBOX.Receipts  => Receipts
            INBOX.Sent => Sent Items [sent]
            INBOX.Trash => Deleted Items [trash]
            INBOX.a*b%c => a＊b％c
            INBOX.projects => projects (2)
            INBOX.spam => Junk Email [junk]
            "
        )
    );
    let q1 = plan
        .entry(&MailboxName::from_raw("INBOX.Projects.2024/Q1 plan"))
        .unwrap();
    assert_eq!(
        q1.decision.path(),
        Some(&TargetPath::new(["Projects", "2024／Q1 plan"]))
    );
}

/// Dovecot (`/` delimiter, SPECIAL-USE, INBOX with children) into a Maildir.
#[test]
fn dovecot_into_maildir_replaces_dots_and_keeps_inbox_children() {
    let source = SourceListing::new(listing(
        r#"
        * LIST (\HasChildren) "/" INBOX
        * LIST (\HasNoChildren) "/" INBOX/Receipts
        * LIST (\HasNoChildren \Sent) "/" Sent
        * LIST (\HasNoChildren \Trash) "/" Trash
        * LIST (\HasNoChildren \Drafts) "/" Drafts
        * LIST (\HasNoChildren \Junk) "/" Junk
        * LIST (\HasNoChildren \Archive) "/" Archive
        * LIST (\HasChildren) "/" Clients
        * LIST (\HasNoChildren) "/" "Clients/ACME Inc."
        * LIST (\HasNoChildren) "/" "Clients/v2.0 release"
        * LIST (\HasNoChildren) "/" .hidden
        * LIST (\HasNoChildren) "/" "Taxes \\ 2023"
        * LIST (\HasNoChildren) "/" "Work/Q&-A"
        * LIST (\HasNoChildren) "/" Entw&APw-rfe
        * LIST (\HasNoChildren) "/" ~backup
        "#,
    ));
    let plan = FolderPlan::build(&source, &maildir(), &mirror());
    assert_eq!(
        render(&plan),
        expected(
            "
            .hidden => ．hidden
            Archive => Archive [archive]
            Clients => Clients
            Clients/ACME Inc. => Clients/ACME Inc．
            Clients/v2.0 release => Clients/v2．0 release
            Drafts => Drafts [drafts]
            Entwürfe => Entwürfe
            INBOX => INBOX [inbox]
            INBOX/Receipts => INBOX/Receipts
            Junk => Junk [junk]
            Sent => Sent [sent]
            Taxes \\ 2023 => Taxes ＼ 2023
            Trash => Trash [trash]
            Work/Q&A => Work/Q&A
            ~backup => ～backup
            "
        )
    );
}

/// Mail.ru (Russian names with SPECIAL-USE and XLIST's `\Spam`, plus English folders
/// a client created; LIST from a public bug report).
#[test]
fn mail_ru_attributes_beat_english_names_which_keep_their_own_folders() {
    let source = SourceListing::new(listing(
        r#"
        * LIST (\Inbox) "/" "INBOX"
        * LIST () "/" "Notebook"
        * LIST () "/" "Trash"
        * LIST () "/" "Sent"
        * LIST () "/" "Drafts"
        * LIST (\Spam) "/" "&BCEEPwQwBDw-"
        * LIST (\Sent) "/" "&BB4EQgQ,BEAEMAQyBDsENQQ9BD0ESwQ1-"
        * LIST (\Drafts) "/" "&BCcENQRABD0EPgQyBDgEOgQ4-"
        * LIST (\Trash) "/" "&BBoEPgRABDcEOAQ9BDA-"
        "#,
    ));
    let plan = FolderPlan::build(&source, &dovecot_target(), &mirror());
    assert_eq!(
        render(&plan),
        expected(
            "
            Отправленные => Sent [sent]
            Корзина => Trash [trash]
            Спам => Junk [junk]
            Черновики => Drafts [drafts]
            Drafts => Drafts (2)
            INBOX => INBOX [inbox]
            Notebook => Notebook
            Sent => Sent (2)
            Trash => Trash (2)
            "
        )
    );
}
