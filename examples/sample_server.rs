//! A local sample source for trying mailmigrate without a server of your own: a private
//! Dovecot on 127.0.0.1 holding one account with a few hundred messages, Chinese and
//! special-character folder names, flags, keywords and a 5 MB attachment.
//!
//! ```text
//! cargo run --example sample_server -- --info-file /tmp/sample.env
//! ```
//!
//! It writes shell-style `KEY=value` lines to the info file (ports, user, the test CA's
//! path; the password is in `MAILMIGRATE_SOURCE_PASSWORD`; an empty second account for an
//! IMAP target is `SAMPLE_TARGET_USER`), prints them, and serves until
//! its standard input closes or it is killed. `scripts/demo.sh` uses it. Needs Dovecot
//! (`apt-get install dovecot-imapd dovecot-pop3d`).

#[path = "../tests/support/mod.rs"]
mod support;

use std::io::Read;
use std::time::{Duration, SystemTime};

use support::{Dovecot, SeedMessage, sample_date, sample_message};

const USER: &str = "old@example.com";
/// An empty account on the same server, to try an IMAP target.
const TARGET_USER: &str = "new@example.com";
/// A throw-away password for a throw-away local server.
const PASSWORD: &str = "sample-password";

/// Folders and how many messages each gets.
const FOLDERS: &[(&str, usize)] = &[
    ("INBOX", 180),
    ("Sent", 60),
    ("Drafts", 4),
    ("Trash", 10),
    ("项目/2024", 25),
    ("项目/2025/计划", 12),
    ("客户 A+B", 8),
    ("Q&A", 6),
    ("a*b", 3),
    ("back\\slash", 3),
    ("Reports 100%", 5),
];

const FLAGS: &[&[&str]] = &[
    &[],
    &["\\Seen"],
    &["\\Seen", "\\Answered"],
    &["\\Flagged", "\\Seen"],
    &["\\Seen", "$Forwarded"],
    &["Work"],
];

fn attachment_message() -> Vec<u8> {
    let mut msg = b"From: Reports <reports@example.com>\r\nTo: old@example.com\r\nSubject: =?UTF-8?B?5bm05bqm5oql5ZGK?= (annual report, 5 MB attachment)\r\nDate: Mon, 02 Dec 2024 09:30:00 +0800\r\nMessage-ID: <annual-report@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe report is attached.\r\n--b1\r\nContent-Type: application/octet-stream; name=\"report.bin\"\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"report.bin\"\r\n\r\n".to_vec();
    let line = b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\r\n";
    while msg.len() < 5 << 20 {
        msg.extend_from_slice(line);
    }
    msg.extend_from_slice(b"--b1--\r\n");
    msg
}

fn main() {
    let mut info_file = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--info-file" => info_file = args.next(),
            other => {
                eprintln!("unknown argument {other:?}; usage: sample_server [--info-file PATH]");
                std::process::exit(64);
            }
        }
    }

    let dovecot = Dovecot::start();
    dovecot.add_user(USER, PASSWORD);
    dovecot.add_user(TARGET_USER, PASSWORD);
    let mut n = 0;
    let mut total = 0;
    for &(folder, count) in FOLDERS {
        let messages: Vec<SeedMessage> = (0..count)
            .map(|_| {
                n += 1;
                SeedMessage::new(sample_message(n, 800 + (n * 131) % 12_000))
                    .with_flags(FLAGS[n % FLAGS.len()])
                    .received_at(sample_date(n))
            })
            .collect();
        total += dovecot.seed(USER, folder, messages);
    }
    let when = SystemTime::UNIX_EPOCH + Duration::from_secs(1_733_103_000);
    total += dovecot.seed(
        USER,
        "INBOX",
        [SeedMessage::new(attachment_message())
            .with_flags(&["\\Seen"])
            .received_at(when)],
    );

    let ca_path = dovecot.dir().join("sample-ca.pem");
    std::fs::write(&ca_path, dovecot.ca_pem()).expect("write the CA file");
    let info = format!(
        "SAMPLE_USER={USER}\nSAMPLE_TARGET_USER={TARGET_USER}\nSAMPLE_HOST=127.0.0.1\nSAMPLE_IMAP_PORT={}\nSAMPLE_IMAPS_PORT={}\nSAMPLE_POP3_PORT={}\nSAMPLE_POP3S_PORT={}\nSAMPLE_CA_FILE={}\nSAMPLE_MESSAGES={total}\nMAILMIGRATE_SOURCE_PASSWORD={PASSWORD}\nMAILMIGRATE_TARGET_PASSWORD={PASSWORD}\n",
        dovecot.imap_port(),
        dovecot.imaps_port(),
        dovecot.pop3_port(),
        dovecot.pop3s_port(),
        ca_path.display(),
    );
    if let Some(path) = &info_file {
        std::fs::write(path, &info).expect("write the info file");
    }
    println!("{info}");
    println!(
        "sample source ready: {total} messages in {} folders; try\n  MAILMIGRATE_SOURCE_PASSWORD={PASSWORD} cargo run --features tokio --example check -- --from imaps://{USER}@127.0.0.1:{} --ca-file {}\nserving until standard input closes (Ctrl-D) or this process is killed",
        FOLDERS.len(),
        dovecot.imaps_port(),
        ca_path.display()
    );
    // Serve until stdin closes; dropping `dovecot` stops the server and removes its files.
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    drop(dovecot);
}
