//! Tests a source account before migrating it: connects, logs in, and prints the server's
//! capabilities, namespaces, hierarchy delimiter and every folder with its decoded name,
//! role and message count.
//!
//! ```text
//! cargo run --example check --features tokio -- --from imaps://USER@HOST[:PORT] [--ca-file PEM]
//! ```
//!
//! Schemes: `imaps://` (implicit TLS, port 993), `imap://` (STARTTLS required, port 143),
//! `imap+insecure://` (plaintext: loopback tests only), and the same for POP3: `pop3s://`
//! (995), `pop3://` (STLS required, 110), `pop3+insecure://`. A `@` in the user may be written as
//! is or as `%40`. The password comes from the environment variable
//! `MAILMIGRATE_SOURCE_PASSWORD`, or a prompt; never from the command line. An OAuth2
//! access token in `MAILMIGRATE_SOURCE_OAUTH2_TOKEN` logs in with XOAUTH2 instead.

#[macro_use]
#[path = "shared/stdout.rs"]
mod stdout;

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use mailmigrate::imap::codec::{ListItem, NameAttribute, NameEncoding, Namespace, StatusAttribute};
use mailmigrate::imap::{self, Session, SessionOptions, Unsolicited};
use mailmigrate::net::{
    AccountUrl, MaybeTls, Protocol, Security, ServerConfig, TcpStream, TlsConfig, TokioTimer,
};
use mailmigrate::{Credentials, Error, ErrorKind};

const USAGE: &str = "usage: check --from imaps://USER@HOST[:PORT] [--ca-file PEM] [--timeout SECONDS]
  schemes: imaps:// (TLS, 993)  imap:// (STARTTLS required, 143)  imap+insecure:// (plaintext, tests only)
           pop3s:// (TLS, 995)  pop3:// (STLS required, 110)  pop3+insecure:// (plaintext, tests only)
  password: $MAILMIGRATE_SOURCE_PASSWORD or a prompt (OAuth2: $MAILMIGRATE_SOURCE_OAUTH2_TOKEN)";

struct Args {
    from: String,
    ca_file: Option<String>,
    timeout: Duration,
}

fn parse_args() -> Result<Args, String> {
    let mut from = None;
    let mut ca_file = None;
    let mut timeout = Duration::from_secs(60);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--from" => from = Some(value("--from")?),
            "--ca-file" => ca_file = Some(value("--ca-file")?),
            "--timeout" => {
                let secs = value("--timeout")?;
                timeout = Duration::from_secs(
                    secs.parse()
                        .map_err(|_| format!("{secs:?} is not a number of seconds"))?,
                );
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Args {
        from: from.ok_or("--from is required")?,
        ca_file,
        timeout,
    })
}

/// The password (or token) from the environment, or typed at a prompt without echo.
fn credentials(user: &str) -> Result<Credentials, String> {
    if let Ok(token) = std::env::var("MAILMIGRATE_SOURCE_OAUTH2_TOKEN") {
        return Ok(Credentials::oauth2(user, token));
    }
    if let Ok(password) = std::env::var("MAILMIGRATE_SOURCE_PASSWORD") {
        return Ok(Credentials::password(user, password));
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err("set MAILMIGRATE_SOURCE_PASSWORD (no terminal to prompt on)".to_owned());
    }
    eprint!("Password for {user}: ");
    let _ = std::io::stderr().flush();
    // No extra dependency for a no-echo prompt: ask the terminal itself (Unix `stty`).
    let echo_off = std::process::Command::new("stty")
        .arg("-echo")
        .stdin(std::process::Stdio::inherit())
        .status()
        .is_ok_and(|s| s.success());
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if echo_off {
        let _ = std::process::Command::new("stty")
            .arg("echo")
            .stdin(std::process::Stdio::inherit())
            .status();
        eprintln!();
    }
    read.map_err(|e| format!("could not read the password: {e}"))?;
    Ok(Credentials::password(user, line.trim_end_matches(['\r', '\n'])))
}

fn security_name(security: Security) -> &'static str {
    match security {
        Security::Tls => "implicit TLS",
        Security::StartTls => "STARTTLS",
        Security::Plaintext => "plaintext (no encryption)",
    }
}

/// A folder's role, from its special-use attributes (RFC 6154 / XLIST) or INBOX.
fn role(item: &ListItem) -> &'static str {
    if item.name.is_inbox() {
        return "inbox";
    }
    for attribute in &item.attributes {
        let role = match attribute {
            NameAttribute::Inbox => "inbox",
            NameAttribute::Sent => "sent",
            NameAttribute::Drafts => "drafts",
            NameAttribute::Trash => "trash",
            NameAttribute::Junk => "junk",
            NameAttribute::Archive => "archive",
            NameAttribute::All => "all mail",
            NameAttribute::Flagged => "flagged",
            NameAttribute::Important => "important",
            _ => continue,
        };
        return role;
    }
    "-"
}

/// Pads `text` to `width` terminal columns, counting CJK and other wide characters as two.
fn pad(text: &str, width: usize) -> String {
    let columns: usize = text.chars().map(|c| if is_wide(c) { 2 } else { 1 }).sum();
    format!("{text}{}", " ".repeat(width.saturating_sub(columns)))
}

fn is_wide(c: char) -> bool {
    matches!(c as u32, 0x1100..=0x115F | 0x2E80..=0xA4CF | 0xAC00..=0xD7A3 | 0xF900..=0xFAFF | 0xFE30..=0xFE4F | 0xFF00..=0xFF60 | 0xFFE0..=0xFFE6 | 0x20000..=0x3FFFD)
}

fn show_namespaces(label: &str, list: &[Namespace]) {
    if list.is_empty() {
        say!("  {label:<12} none");
    }
    for ns in list {
        let delimiter = ns
            .delimiter
            .map(|d| format!("{d:?}"))
            .unwrap_or_else(|| "NIL".into());
        say!(
            "  {label:<12} prefix {:?}, delimiter {delimiter}",
            ns.prefix.to_string()
        );
    }
}

/// Plain-words notes on capabilities that matter to a migration.
fn capability_notes(session: &Session<MaybeTls<TcpStream>>) -> Vec<&'static str> {
    let caps = session.capabilities();
    let mut notes = Vec::new();
    if !caps.has("IMAP4rev1") && !caps.has("IMAP4rev2") {
        notes.push("the server does not claim IMAP4rev1: expect trouble");
    }
    if !caps.has("SPECIAL-USE") && !caps.has("XLIST") {
        notes.push("no SPECIAL-USE or XLIST: system folders (Sent, Drafts, ...) are recognised by name only");
    }
    if !caps.has("NAMESPACE") {
        notes.push("no NAMESPACE: the folder prefix is guessed from the folder list");
    }
    if !caps.has("IDLE") {
        notes.push("no IDLE: new mail is found by polling");
    }
    if !caps.has("ESEARCH") {
        notes.push("no ESEARCH: listing a big folder's UIDs takes longer");
    }
    if !caps.has("CONDSTORE") {
        notes.push("no CONDSTORE: flag changes are found by comparing all flags");
    }
    if !caps.has("UIDPLUS") {
        notes.push("no UIDPLUS: fine for a source; as a target, stored copies are found by searching");
    }
    notes
}

async fn check(args: Args) -> Result<(), Error> {
    let url: AccountUrl = args.from.parse()?;
    let mut tls = TlsConfig::default();
    if let Some(path) = &args.ca_file {
        let pem = std::fs::read(path).map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("cannot read the CA file {path}: {e}"),
            )
        })?;
        tls = tls.with_ca_pem(&pem)?;
    }
    let server = url.server().with_tls(tls).with_timeout(args.timeout);
    let credentials = credentials(&url.user).map_err(|m| Error::new(ErrorKind::InvalidInput, m))?;
    match url.protocol {
        Protocol::Imap => check_imap(&server, &credentials).await,
        Protocol::Pop3 => check_pop3(&server, &credentials).await,
    }
}

/// POP3 moves the inbox only: capabilities, message count and total size are all it has.
async fn check_pop3(server: &ServerConfig, credentials: &Credentials) -> Result<(), Error> {
    say!("Server:       {server} ({})", security_name(server.security));
    let summary = mailmigrate::pop3::check(server, credentials, Arc::new(TokioTimer)).await?;
    say!("Logged in as: {}", credentials.user());
    say!("{summary}");
    say!("Note:         POP3 moves the inbox only; use IMAP to move every folder if the server offers it.");
    Ok(())
}

async fn check_imap(server: &ServerConfig, credentials: &Credentials) -> Result<(), Error> {
    say!("Server:       {server} ({})", security_name(server.security));
    let mut session = imap::connect(server, Arc::new(TokioTimer), SessionOptions::default()).await?;
    say!("Greeting:     {}", session.greeting().text.trim());
    say!(
        "Encrypted:    {}",
        if session.is_tls() { "yes (TLS)" } else { "NO" }
    );
    session.login(credentials).await?;
    say!("Logged in as: {}", credentials.user());

    let caps: Vec<&str> = session.capabilities().atoms.iter().map(String::as_str).collect();
    say!("\nCapabilities ({}):", caps.len());
    for line in caps.chunks(8) {
        say!("  {}", line.join(" "));
    }
    let notes = capability_notes(&session);
    if !notes.is_empty() {
        say!("\nNotes:");
        for note in notes {
            say!("  - {note}");
        }
    }

    say!("\nNamespaces:");
    match session.namespace().await? {
        Some(ns) => {
            show_namespaces("personal", &ns.personal);
            show_namespaces("other users", &ns.other_users);
            show_namespaces("shared", &ns.shared);
        }
        None => say!("  (NAMESPACE not supported)"),
    }
    let delimiter = session.delimiter().await?;
    say!(
        "Delimiter:    {}",
        delimiter
            .map(|d| format!("{d:?}"))
            .unwrap_or_else(|| "none (flat folder list)".into())
    );

    let mut folders = session.list_all().await?;
    folders.sort_by_key(|f| (!f.name.is_inbox(), f.name.decode().text));
    say!("\nFolders ({}):", folders.len());
    say!("  {:<32} {:<10} {:>9}  attributes", "name", "role", "messages");
    let mut total = 0u64;
    let mut problems = 0;
    for folder in &folders {
        let decoded = folder.name.decode();
        let selectable = !folder
            .attributes
            .iter()
            .any(|a| matches!(a, NameAttribute::NoSelect | NameAttribute::NonExistent));
        let count = if selectable {
            match session.status(&folder.name, &[StatusAttribute::Messages]).await {
                Ok(status) => {
                    let n = status.messages.unwrap_or(0);
                    total += u64::from(n);
                    n.to_string()
                }
                Err(err) if err.kind() == ErrorKind::Transient && session.is_closed() => return Err(err),
                Err(err) => {
                    problems += 1;
                    format!("error: {err}")
                }
            }
        } else {
            "-".to_owned()
        };
        let attributes: Vec<String> = folder.attributes.iter().map(|a| a.as_imap().to_owned()).collect();
        say!(
            "  {} {:<10} {:>9}  {}",
            pad(&decoded.text, 32),
            role(folder),
            count,
            attributes.join(" ")
        );
        if decoded.text.as_bytes() != folder.name.raw() {
            let how = match decoded.encoding {
                NameEncoding::ModifiedUtf7 => "modified UTF-7".to_owned(),
                NameEncoding::Utf8 => "UTF-8".to_owned(),
                NameEncoding::Legacy(enc) => format!("legacy {}", enc.name()),
                NameEncoding::Lossy => "undecodable, shown lossily".to_owned(),
                other => format!("{other:?}"),
            };
            say!(
                "  {:<32} (raw {:?}, {how})",
                "",
                String::from_utf8_lossy(folder.name.raw())
            );
        }
    }
    say!("\nTotal: {} folders, {total} messages.", folders.len());

    for event in session.take_unsolicited() {
        if let Unsolicited::Alert(text) = event {
            say!("Server alert: {text}");
        }
    }
    session.logout().await?;
    if problems > 0 {
        say!("{problems} folder(s) could not be counted; see above.");
    }
    say!("The account is ready to migrate.");
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("error: {message}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match check(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("check failed ({}): {err}", err.kind());
            ExitCode::FAILURE
        }
    }
}
