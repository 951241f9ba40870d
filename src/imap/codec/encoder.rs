//! Encodes commands: tags, and for each argument an atom, a quoted string or a literal.
//!
//! imap-proto's builders panic on CR/LF and cover few commands, so this is ours: every
//! argument is checked, and what cannot be sent is an `InvalidInput` error, never a panic.

use base64::Engine as _;
use bytes::{BufMut, Bytes, BytesMut};

use crate::imap::codec::{Command, Flag, Fragment, InternalDate, StatusAttribute, Tag};
use crate::{Error, ErrorKind};

/// Which literal forms the server accepts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EncodeOptions {
    /// LITERAL+ (RFC 7888): non-synchronizing literals of any size.
    pub literal_plus: bool,
    /// LITERAL- (RFC 7888): non-synchronizing literals up to 4096 bytes.
    pub literal_minus: bool,
}

/// The largest non-synchronizing literal LITERAL- allows (RFC 7888 section 4).
const LITERAL_MINUS_MAX: usize = 4096;

/// Turns [`Command`]s into bytes, numbering the tags.
#[derive(Debug, Default)]
pub struct CommandEncoder {
    next_tag: u32,
    options: EncodeOptions,
}

impl CommandEncoder {
    /// An encoder starting at tag `A0001`.
    pub fn new() -> Self {
        CommandEncoder::default()
    }

    /// Sets the literal forms to use (after reading the capabilities).
    pub fn set_options(&mut self, options: EncodeOptions) {
        self.options = options;
    }

    /// Encodes `command` with a fresh tag. Fails with `InvalidInput` for arguments that
    /// cannot be sent (e.g. a user name with NUL); error messages name the argument, never
    /// its value.
    ///
    /// The fragments of LOGIN and AUTHENTICATE hold the secret in clear: never log them.
    ///
    /// ```
    /// use mailmigrate::imap::codec::{Command, CommandEncoder, Fragment};
    /// let mut encoder = CommandEncoder::new();
    /// let (tag, fragments) = encoder.encode(&Command::Noop).unwrap();
    /// assert_eq!(tag.0, "A0001");
    /// assert_eq!(fragments, vec![Fragment::Line("A0001 NOOP\r\n".into())]);
    /// ```
    pub fn encode(&mut self, command: &Command<'_>) -> crate::Result<(Tag, Vec<Fragment>)> {
        // The tag is only consumed once the command is known to be sendable.
        let tag = Tag(format!("A{:04}", self.next_tag.wrapping_add(1)));
        let mut w = Writer::new(self.options);
        w.raw(tag.0.as_bytes());
        w.raw(b" ");
        write_command(&mut w, command)?;
        w.raw(b"\r\n");
        self.next_tag = self.next_tag.wrapping_add(1);
        Ok((tag, w.finish()))
    }

    /// `DONE\r\n`, ending IDLE.
    pub fn done() -> Bytes {
        Bytes::from_static(b"DONE\r\n")
    }

    /// One SASL response line: `data` base64-encoded plus CRLF.
    ///
    /// ```
    /// use mailmigrate::imap::codec::CommandEncoder;
    /// assert_eq!(&CommandEncoder::sasl_response(b"\0u\0p")[..], b"AHUAcA==\r\n");
    /// ```
    pub fn sasl_response(data: &[u8]) -> Bytes {
        let mut line = base64::engine::general_purpose::STANDARD
            .encode(data)
            .into_bytes();
        line.extend_from_slice(b"\r\n");
        Bytes::from(line)
    }

    /// `*\r\n`, cancelling an AUTHENTICATE exchange.
    pub fn sasl_cancel() -> Bytes {
        Bytes::from_static(b"*\r\n")
    }
}

fn write_command(w: &mut Writer, command: &Command<'_>) -> crate::Result<()> {
    match command {
        Command::Capability => w.raw(b"CAPABILITY"),
        Command::Noop => w.raw(b"NOOP"),
        Command::Logout => w.raw(b"LOGOUT"),
        Command::StartTls => w.raw(b"STARTTLS"),
        Command::Namespace => w.raw(b"NAMESPACE"),
        Command::Idle => w.raw(b"IDLE"),
        Command::Close => w.raw(b"CLOSE"),
        Command::Unselect => w.raw(b"UNSELECT"),
        Command::Login { user, password } => {
            w.raw(b"LOGIN ");
            // Quoted rather than atoms: some servers mis-read atom passwords, and a quoted
            // string is valid wherever an astring is.
            w.string(user.as_bytes(), "the user name")?;
            w.raw(b" ");
            w.string(password.expose().as_bytes(), "the password")?;
        }
        Command::Authenticate {
            mechanism,
            initial_response,
        } => {
            w.raw(b"AUTHENTICATE ");
            w.atom(mechanism, "the SASL mechanism")?;
            if let Some(ir) = initial_response {
                w.raw(b" ");
                if ir.is_empty() {
                    // RFC 4959: an empty initial response is sent as "=".
                    w.raw(b"=");
                } else {
                    let encoded = base64::engine::general_purpose::STANDARD.encode(ir.expose());
                    w.raw(encoded.as_bytes());
                }
            }
        }
        Command::Id(params) => {
            w.raw(b"ID ");
            match params {
                None | Some([]) => w.raw(b"NIL"),
                Some(params) => {
                    w.raw(b"(");
                    // No space before ")": NetEase rejects it ("Request not ending with").
                    for (i, (key, value)) in params.iter().enumerate() {
                        if i > 0 {
                            w.raw(b" ");
                        }
                        w.string(key.as_bytes(), "an ID field name")?;
                        w.raw(b" ");
                        w.string(value.as_bytes(), "an ID field value")?;
                    }
                    w.raw(b")");
                }
            }
        }
        Command::Enable(caps) => {
            if caps.is_empty() {
                return Err(invalid("ENABLE needs at least one capability"));
            }
            w.raw(b"ENABLE");
            for cap in caps.iter() {
                w.raw(b" ");
                w.atom(cap, "a capability to ENABLE")?;
            }
        }
        Command::List {
            reference,
            pattern,
            return_special_use,
        } => {
            w.raw(b"LIST ");
            w.astring(reference, AtomKind::Mailbox, "the LIST reference")?;
            w.raw(b" ");
            w.astring(pattern, AtomKind::ListPattern, "the LIST pattern")?;
            if *return_special_use {
                w.raw(b" RETURN (SPECIAL-USE)");
            }
        }
        Command::Lsub { reference, pattern } => {
            w.raw(b"LSUB ");
            w.astring(reference, AtomKind::Mailbox, "the LSUB reference")?;
            w.raw(b" ");
            w.astring(pattern, AtomKind::ListPattern, "the LSUB pattern")?;
        }
        Command::Xlist { reference, pattern } => {
            w.raw(b"XLIST ");
            w.astring(reference, AtomKind::Mailbox, "the XLIST reference")?;
            w.raw(b" ");
            w.astring(pattern, AtomKind::ListPattern, "the XLIST pattern")?;
        }
        Command::Status { mailbox, items } => {
            if items.is_empty() {
                return Err(invalid("STATUS needs at least one item to return"));
            }
            w.raw(b"STATUS ");
            w.mailbox(mailbox.raw())?;
            w.raw(b" (");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    w.raw(b" ");
                }
                w.raw(status_attribute(*item).as_bytes());
            }
            w.raw(b")");
        }
        Command::Select { mailbox, condstore } | Command::Examine { mailbox, condstore } => {
            w.raw(if matches!(command, Command::Select { .. }) {
                b"SELECT "
            } else {
                b"EXAMINE "
            });
            w.mailbox(mailbox.raw())?;
            if *condstore {
                w.raw(b" (CONDSTORE)");
            }
        }
        Command::Create(mailbox) => {
            w.raw(b"CREATE ");
            w.mailbox(mailbox.raw())?;
        }
        Command::Subscribe(mailbox) => {
            w.raw(b"SUBSCRIBE ");
            w.mailbox(mailbox.raw())?;
        }
        Command::UidSearch { criteria, esearch } => {
            check_syntax(criteria, "the UID SEARCH criteria")?;
            w.raw(b"UID SEARCH ");
            if *esearch {
                w.raw(b"RETURN (ALL) ");
            }
            w.raw(criteria.as_bytes());
        }
        Command::UidFetch {
            uids,
            items,
            changed_since,
        } => {
            if uids.is_empty() {
                return Err(invalid("UID FETCH needs at least one UID"));
            }
            check_syntax(items, "the UID FETCH items")?;
            w.raw(b"UID FETCH ");
            w.raw(uids.to_string().as_bytes());
            w.raw(b" ");
            w.raw(items.as_bytes());
            if let Some(modseq) = changed_since {
                w.raw(format!(" (CHANGEDSINCE {modseq})").as_bytes());
            }
        }
        Command::Append {
            mailbox,
            flags,
            internal_date,
            message,
        } => {
            w.raw(b"APPEND ");
            w.mailbox(mailbox.raw())?;
            append_part(w, flags, *internal_date, message)?;
        }
        Command::MultiAppend { mailbox, messages } => {
            if messages.is_empty() {
                return Err(invalid("MULTIAPPEND needs at least one message"));
            }
            w.raw(b"APPEND ");
            w.mailbox(mailbox.raw())?;
            for m in messages.iter() {
                append_part(w, &m.flags, m.internal_date, &m.message)?;
            }
        }
    }
    Ok(())
}

/// ` [(flags)] ["date"] literal` of one message of an APPEND.
fn append_part(
    w: &mut Writer,
    flags: &[Flag],
    internal_date: Option<InternalDate>,
    message: &Bytes,
) -> crate::Result<()> {
    let sendable: Vec<&Flag> = flags
        .iter()
        .filter(|f| !matches!(f, Flag::Recent | Flag::MayCreate))
        .collect();
    if !sendable.is_empty() {
        w.raw(b" (");
        for (i, flag) in sendable.into_iter().enumerate() {
            if i > 0 {
                w.raw(b" ");
            }
            if !flag.can_send() {
                return Err(invalid(format!(
                    "the flag {:?} cannot be sent to an IMAP server (a keyword must be \
                     a non-empty atom of printable ASCII); leave it out",
                    flag.as_imap()
                )));
            }
            w.raw(flag.as_imap().as_bytes());
        }
        w.raw(b")");
    }
    if let Some(date) = internal_date {
        w.raw(b" \"");
        w.raw(date.to_imap_string().as_bytes());
        w.raw(b"\"");
    }
    w.raw(b" ");
    w.literal(message.clone());
    Ok(())
}

fn status_attribute(item: StatusAttribute) -> &'static str {
    match item {
        StatusAttribute::Messages => "MESSAGES",
        StatusAttribute::Recent => "RECENT",
        StatusAttribute::UidNext => "UIDNEXT",
        StatusAttribute::UidValidity => "UIDVALIDITY",
        StatusAttribute::Unseen => "UNSEEN",
        StatusAttribute::HighestModSeq => "HIGHESTMODSEQ",
        StatusAttribute::Size => "SIZE",
    }
}

/// Raw IMAP syntax passed through by the caller (search keys, fetch items): it must stay on
/// one line, or the server would read the rest as a new command.
fn check_syntax(text: &str, what: &str) -> crate::Result<()> {
    if text.is_empty() {
        return Err(invalid(format!("{what} are empty")));
    }
    if let Some(b) = text.bytes().find(|&b| !(0x20..0x7f).contains(&b)) {
        return Err(invalid(format!(
            "{what} contain the byte 0x{b:02x}; only printable ASCII on one line can be sent"
        )));
    }
    Ok(())
}

fn invalid(message: impl Into<std::borrow::Cow<'static, str>>) -> Error {
    Error::new(ErrorKind::InvalidInput, message)
}

/// Which bytes may go unquoted.
#[derive(Clone, Copy, PartialEq, Eq)]
enum AtomKind {
    /// astring: ATOM-CHAR plus `]`.
    Mailbox,
    /// list-mailbox: also the wildcards `%` and `*`.
    ListPattern,
}

/// ATOM-CHAR (RFC 3501 section 9): printable ASCII except atom-specials.
pub(crate) fn is_atom_char(b: u8) -> bool {
    (0x21..0x7f).contains(&b) && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
}

fn is_unquoted(b: u8, kind: AtomKind) -> bool {
    is_atom_char(b) || b == b']' || (kind == AtomKind::ListPattern && matches!(b, b'%' | b'*'))
}

/// Whether `bytes` can be a quoted string: 7-bit, no NUL, CR or LF.
fn quotable(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .all(|&b| (0x01..0x80).contains(&b) && b != b'\r' && b != b'\n')
}

/// Accumulates one command's fragments.
struct Writer {
    options: EncodeOptions,
    line: BytesMut,
    fragments: Vec<Fragment>,
}

impl Writer {
    fn new(options: EncodeOptions) -> Self {
        Writer {
            options,
            line: BytesMut::with_capacity(64),
            fragments: Vec::new(),
        }
    }

    fn raw(&mut self, bytes: &[u8]) {
        self.line.put_slice(bytes);
    }

    fn atom(&mut self, text: &str, what: &str) -> crate::Result<()> {
        if text.is_empty() || !text.bytes().all(is_atom_char) {
            return Err(invalid(format!("{what} {text:?} is not an IMAP atom")));
        }
        self.raw(text.as_bytes());
        Ok(())
    }

    /// An astring: an atom when every byte allows it, else a quoted string or a literal.
    fn astring(&mut self, bytes: &[u8], kind: AtomKind, what: &str) -> crate::Result<()> {
        if !bytes.is_empty() && bytes.iter().all(|&b| is_unquoted(b, kind)) {
            self.raw(bytes);
            Ok(())
        } else {
            self.string(bytes, what)
        }
    }

    fn mailbox(&mut self, raw: &[u8]) -> crate::Result<()> {
        self.astring(raw, AtomKind::Mailbox, "the mailbox name")
    }

    /// A string: quoted with `\"` and `\\` escapes when 7-bit on one line, else a literal.
    /// NUL cannot be sent in either form.
    fn string(&mut self, bytes: &[u8], what: &str) -> crate::Result<()> {
        if bytes.contains(&0) {
            // The message names only the argument: it may be a password.
            return Err(invalid(format!(
                "{what} contains a NUL byte, which IMAP cannot send"
            )));
        }
        if quotable(bytes) {
            self.line.reserve(bytes.len() + 2);
            self.line.put_u8(b'"');
            for &b in bytes {
                if b == b'"' || b == b'\\' {
                    self.line.put_u8(b'\\');
                }
                self.line.put_u8(b);
            }
            self.line.put_u8(b'"');
        } else {
            self.literal(Bytes::copy_from_slice(bytes));
        }
        Ok(())
    }

    /// `{n}` (wait for `+`), or `{n+}` under LITERAL+ (or LITERAL- up to 4096 bytes).
    fn literal(&mut self, data: Bytes) {
        let non_sync =
            self.options.literal_plus || (self.options.literal_minus && data.len() <= LITERAL_MINUS_MAX);
        let header = if non_sync {
            format!("{{{}+}}\r\n", data.len())
        } else {
            format!("{{{}}}\r\n", data.len())
        };
        self.raw(header.as_bytes());
        let line = self.line.split().freeze();
        self.fragments.push(Fragment::Line(line));
        self.fragments.push(Fragment::Literal {
            data,
            sync: !non_sync,
        });
    }

    fn finish(mut self) -> Vec<Fragment> {
        if !self.line.is_empty() {
            let line = self.line.split().freeze();
            self.fragments.push(Fragment::Line(line));
        }
        self.fragments
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::codec::{AppendMessage, MailboxName};
    use crate::{Secret, Uid, UidSet};

    fn line(s: &str) -> Fragment {
        Fragment::Line(Bytes::copy_from_slice(s.as_bytes()))
    }

    fn lit(s: &[u8], sync: bool) -> Fragment {
        Fragment::Literal {
            data: Bytes::copy_from_slice(s),
            sync,
        }
    }

    fn enc(command: Command<'_>) -> Vec<Fragment> {
        CommandEncoder::new().encode(&command).expect("encodable").1
    }

    fn enc_with(options: EncodeOptions, command: Command<'_>) -> Vec<Fragment> {
        let mut e = CommandEncoder::new();
        e.set_options(options);
        e.encode(&command).expect("encodable").1
    }

    fn err(command: Command<'_>) -> Error {
        CommandEncoder::new()
            .encode(&command)
            .expect_err("must be rejected")
    }

    const PLUS: EncodeOptions = EncodeOptions {
        literal_plus: true,
        literal_minus: false,
    };
    const MINUS: EncodeOptions = EncodeOptions {
        literal_plus: false,
        literal_minus: true,
    };

    #[test]
    fn tags_count_up_from_a0001_and_skip_rejected_commands() {
        let mut e = CommandEncoder::new();
        assert_eq!(e.encode(&Command::Noop).unwrap().0, Tag("A0001".into()));
        assert!(e.encode(&Command::Enable(&[])).is_err());
        assert_eq!(e.encode(&Command::Noop).unwrap().0, Tag("A0002".into()));
        for _ in 0..9997 {
            e.encode(&Command::Noop).unwrap();
        }
        assert_eq!(e.encode(&Command::Noop).unwrap().0, Tag("A10000".into()));
    }

    #[test]
    fn simple_commands_are_one_line() {
        for (command, text) in [
            (Command::Capability, "A0001 CAPABILITY\r\n"),
            (Command::Noop, "A0001 NOOP\r\n"),
            (Command::Logout, "A0001 LOGOUT\r\n"),
            (Command::StartTls, "A0001 STARTTLS\r\n"),
            (Command::Namespace, "A0001 NAMESPACE\r\n"),
            (Command::Idle, "A0001 IDLE\r\n"),
            (Command::Close, "A0001 CLOSE\r\n"),
            (Command::Unselect, "A0001 UNSELECT\r\n"),
        ] {
            assert_eq!(enc(command), vec![line(text)]);
        }
    }

    #[test]
    fn login_quotes_and_escapes_user_and_password() {
        let pw = Secret::new(r#"p"a\ss word"#);
        assert_eq!(
            enc(Command::Login {
                user: "alice@example.com",
                password: &pw
            }),
            vec![line(
                "A0001 LOGIN \"alice@example.com\" \"p\\\"a\\\\ss word\"\r\n"
            )]
        );
    }

    #[test]
    fn login_sends_8bit_password_as_synchronizing_literal() {
        let pw = Secret::new("pässwort");
        assert_eq!(
            enc(Command::Login {
                user: "bob",
                password: &pw
            }),
            vec![
                line("A0001 LOGIN \"bob\" {9}\r\n"),
                lit("pässwort".as_bytes(), true),
                line("\r\n"),
            ]
        );
        assert_eq!(
            enc_with(
                PLUS,
                Command::Login {
                    user: "bob",
                    password: &pw
                }
            ),
            vec![
                line("A0001 LOGIN \"bob\" {9+}\r\n"),
                lit("pässwort".as_bytes(), false),
                line("\r\n"),
            ]
        );
    }

    #[test]
    fn login_with_crlf_in_user_uses_literal_and_nul_is_rejected_without_echoing_secret() {
        let pw = Secret::new("x");
        assert_eq!(
            enc(Command::Login {
                user: "a\r\nb",
                password: &pw
            }),
            vec![
                line("A0001 LOGIN {4}\r\n"),
                lit(b"a\r\nb", true),
                line(" \"x\"\r\n")
            ]
        );
        let secret = Secret::new("hunter2\0");
        let e = err(Command::Login {
            user: "bob",
            password: &secret,
        });
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(e.to_string().contains("the password"), "{e}");
    }

    #[test]
    fn authenticate_with_and_without_initial_response() {
        assert_eq!(
            enc(Command::Authenticate {
                mechanism: "XOAUTH2",
                initial_response: None
            }),
            vec![line("A0001 AUTHENTICATE XOAUTH2\r\n")]
        );
        let ir = Secret::new("\0alice\0pw");
        assert_eq!(
            enc(Command::Authenticate {
                mechanism: "PLAIN",
                initial_response: Some(&ir)
            }),
            vec![line("A0001 AUTHENTICATE PLAIN AGFsaWNlAHB3\r\n")]
        );
        let empty = Secret::new("");
        assert_eq!(
            enc(Command::Authenticate {
                mechanism: "PLAIN",
                initial_response: Some(&empty)
            }),
            vec![line("A0001 AUTHENTICATE PLAIN =\r\n")]
        );
        assert_eq!(
            err(Command::Authenticate {
                mechanism: "PL AIN",
                initial_response: None
            })
            .kind(),
            ErrorKind::InvalidInput
        );
    }

    #[test]
    fn id_has_no_space_before_closing_paren() {
        let params = [("name", "mailmigrate"), ("version", "0.1 \"beta\"")];
        assert_eq!(
            enc(Command::Id(Some(&params))),
            vec![line(
                "A0001 ID (\"name\" \"mailmigrate\" \"version\" \"0.1 \\\"beta\\\"\")\r\n"
            )]
        );
        assert_eq!(enc(Command::Id(None)), vec![line("A0001 ID NIL\r\n")]);
        assert_eq!(enc(Command::Id(Some(&[]))), vec![line("A0001 ID NIL\r\n")]);
    }

    #[test]
    fn enable_takes_atoms_only() {
        assert_eq!(
            enc(Command::Enable(&["CONDSTORE", "UTF8=ACCEPT"])),
            vec![line("A0001 ENABLE CONDSTORE UTF8=ACCEPT\r\n")]
        );
        assert_eq!(err(Command::Enable(&["A B"])).kind(), ErrorKind::InvalidInput);
        assert_eq!(err(Command::Enable(&[])).kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn list_lsub_xlist_render_reference_and_pattern() {
        assert_eq!(
            enc(Command::List {
                reference: b"",
                pattern: b"*",
                return_special_use: false
            }),
            vec![line("A0001 LIST \"\" *\r\n")]
        );
        assert_eq!(
            enc(Command::List {
                reference: b"",
                pattern: b"%",
                return_special_use: true
            }),
            vec![line("A0001 LIST \"\" % RETURN (SPECIAL-USE)\r\n")]
        );
        assert_eq!(
            enc(Command::Lsub {
                reference: b"INBOX.",
                pattern: b"*"
            }),
            vec![line("A0001 LSUB INBOX. *\r\n")]
        );
        assert_eq!(
            enc(Command::Xlist {
                reference: b"",
                pattern: b"a b*"
            }),
            vec![line("A0001 XLIST \"\" \"a b*\"\r\n")]
        );
    }

    #[test]
    fn mailbox_names_are_atom_quoted_or_literal() {
        let atom = MailboxName::from_raw(&b"[Gmail]/Sent"[..]);
        assert_eq!(
            enc(Command::Create(&atom)),
            vec![line("A0001 CREATE [Gmail]/Sent\r\n")]
        );
        let quoted = MailboxName::from_raw(&br#"Sent Items "old" \x"#[..]);
        assert_eq!(
            enc(Command::Subscribe(&quoted)),
            vec![line("A0001 SUBSCRIBE \"Sent Items \\\"old\\\" \\\\x\"\r\n")]
        );
        let star = MailboxName::from_raw(&b"a*b"[..]);
        assert_eq!(
            enc(Command::Create(&star)),
            vec![line("A0001 CREATE \"a*b\"\r\n")]
        );
        let gbk = MailboxName::from_raw(&b"\xd2\xd1\xb7\xa2\xcb\xcd"[..]);
        assert_eq!(
            enc(Command::Select {
                mailbox: &gbk,
                condstore: true
            }),
            vec![
                line("A0001 SELECT {6}\r\n"),
                lit(b"\xd2\xd1\xb7\xa2\xcb\xcd", true),
                line(" (CONDSTORE)\r\n"),
            ]
        );
        assert_eq!(
            enc_with(
                MINUS,
                Command::Examine {
                    mailbox: &gbk,
                    condstore: false
                }
            ),
            vec![
                line("A0001 EXAMINE {6+}\r\n"),
                lit(b"\xd2\xd1\xb7\xa2\xcb\xcd", false),
                line("\r\n")
            ]
        );
        let empty = MailboxName::from_raw(&b""[..]);
        assert_eq!(enc(Command::Create(&empty)), vec![line("A0001 CREATE \"\"\r\n")]);
        let nul = MailboxName::from_raw(&b"a\0b"[..]);
        assert_eq!(err(Command::Create(&nul)).kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn status_lists_items() {
        let inbox = MailboxName::from_raw(&b"INBOX"[..]);
        let items = [
            StatusAttribute::Messages,
            StatusAttribute::Recent,
            StatusAttribute::UidNext,
            StatusAttribute::UidValidity,
            StatusAttribute::Unseen,
            StatusAttribute::HighestModSeq,
            StatusAttribute::Size,
        ];
        assert_eq!(
            enc(Command::Status {
                mailbox: &inbox,
                items: &items
            }),
            vec![line(
                "A0001 STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ SIZE)\r\n"
            )]
        );
        assert_eq!(
            err(Command::Status {
                mailbox: &inbox,
                items: &[]
            })
            .kind(),
            ErrorKind::InvalidInput
        );
    }

    #[test]
    fn uid_search_and_fetch_pass_validated_syntax() {
        assert_eq!(
            enc(Command::UidSearch {
                criteria: "UID 100:*",
                esearch: false
            }),
            vec![line("A0001 UID SEARCH UID 100:*\r\n")]
        );
        assert_eq!(
            enc(Command::UidSearch {
                criteria: "ALL",
                esearch: true
            }),
            vec![line("A0001 UID SEARCH RETURN (ALL) ALL\r\n")]
        );
        assert_eq!(
            err(Command::UidSearch {
                criteria: "ALL\r\nA2 LOGOUT",
                esearch: false
            })
            .kind(),
            ErrorKind::InvalidInput
        );
        let uids: UidSet = "1:3,7".parse().unwrap();
        assert_eq!(
            enc(Command::UidFetch {
                uids: &uids,
                items: "(UID FLAGS)",
                changed_since: None
            }),
            vec![line("A0001 UID FETCH 1:3,7 (UID FLAGS)\r\n")]
        );
        assert_eq!(
            enc(Command::UidFetch {
                uids: &uids,
                items: "(FLAGS)",
                changed_since: Some(42)
            }),
            vec![line("A0001 UID FETCH 1:3,7 (FLAGS) (CHANGEDSINCE 42)\r\n")]
        );
        assert_eq!(
            err(Command::UidFetch {
                uids: &uids,
                items: "(BODY[]\n)",
                changed_since: None
            })
            .kind(),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            err(Command::UidFetch {
                uids: &uids,
                items: "(FLAGS \u{e9})",
                changed_since: None
            })
            .kind(),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            err(Command::UidFetch {
                uids: &UidSet::new(),
                items: "(FLAGS)",
                changed_since: None
            })
            .kind(),
            ErrorKind::InvalidInput
        );
        let one = UidSet::range(Uid::MIN, Uid::MIN);
        assert_eq!(
            err(Command::UidFetch {
                uids: &one,
                items: "",
                changed_since: None
            })
            .kind(),
            ErrorKind::InvalidInput
        );
    }

    #[test]
    fn append_sends_flags_date_and_message_literal() {
        let sent = MailboxName::from_raw(&b"Sent"[..]);
        let date = InternalDate::parse(" 1-Jan-2024 10:00:00 +0800").unwrap();
        let flags = [Flag::Seen, Flag::Recent, Flag::Keyword("$Forwarded".into())];
        let message = Bytes::from_static(b"Subject: x\r\n\r\nhi\r\n");
        let command = Command::Append {
            mailbox: &sent,
            flags: &flags,
            internal_date: Some(date),
            message: message.clone(),
        };
        assert_eq!(
            enc(command.clone()),
            vec![
                line("A0001 APPEND Sent (\\Seen $Forwarded) \" 1-Jan-2024 10:00:00 +0800\" {18}\r\n"),
                Fragment::Literal {
                    data: message.clone(),
                    sync: true
                },
                line("\r\n"),
            ]
        );
        assert_eq!(
            enc_with(PLUS, command),
            vec![
                line("A0001 APPEND Sent (\\Seen $Forwarded) \" 1-Jan-2024 10:00:00 +0800\" {18+}\r\n"),
                Fragment::Literal {
                    data: message.clone(),
                    sync: false
                },
                line("\r\n"),
            ]
        );
        let bare = Command::Append {
            mailbox: &sent,
            flags: &[Flag::Recent],
            internal_date: None,
            message: message.clone(),
        };
        assert_eq!(
            enc(bare),
            vec![
                line("A0001 APPEND Sent {18}\r\n"),
                Fragment::Literal {
                    data: message.clone(),
                    sync: true
                },
                line("\r\n")
            ]
        );
        let bad = [Flag::Keyword("caf\u{e9}".into())];
        let e = err(Command::Append {
            mailbox: &sent,
            flags: &bad,
            internal_date: None,
            message,
        });
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn multiappend_sends_every_message_in_one_command() {
        let sent = MailboxName::from_raw(&b"Sent"[..]);
        let a = Bytes::from_static(b"A\r\n");
        let b = Bytes::from_static(b"B!\r\n");
        let messages = [
            AppendMessage {
                flags: vec![Flag::Seen],
                internal_date: None,
                message: a.clone(),
            },
            AppendMessage {
                flags: Vec::new(),
                internal_date: None,
                message: b.clone(),
            },
        ];
        let command = Command::MultiAppend {
            mailbox: &sent,
            messages: &messages,
        };
        assert_eq!(
            enc_with(PLUS, command),
            vec![
                line("A0001 APPEND Sent (\\Seen) {3+}\r\n"),
                Fragment::Literal { data: a, sync: false },
                line(" {4+}\r\n"),
                Fragment::Literal { data: b, sync: false },
                line("\r\n"),
            ]
        );
        let empty = err(Command::MultiAppend {
            mailbox: &sent,
            messages: &[],
        });
        assert_eq!(empty.kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn literal_minus_only_covers_small_literals() {
        let sent = MailboxName::from_raw(&b"Sent"[..]);
        let small = Bytes::from(vec![b'a'; 4096]);
        let big = Bytes::from(vec![b'a'; 4097]);
        let small_frags = enc_with(
            MINUS,
            Command::Append {
                mailbox: &sent,
                flags: &[],
                internal_date: None,
                message: small.clone(),
            },
        );
        assert_eq!(small_frags[0], line("A0001 APPEND Sent {4096+}\r\n"));
        assert_eq!(
            small_frags[1],
            Fragment::Literal {
                data: small,
                sync: false
            }
        );
        let big_frags = enc_with(
            MINUS,
            Command::Append {
                mailbox: &sent,
                flags: &[],
                internal_date: None,
                message: big.clone(),
            },
        );
        assert_eq!(big_frags[0], line("A0001 APPEND Sent {4097}\r\n"));
        assert_eq!(
            big_frags[1],
            Fragment::Literal {
                data: big,
                sync: true
            }
        );
    }

    #[test]
    fn append_message_is_not_copied() {
        let sent = MailboxName::from_raw(&b"Sent"[..]);
        let message = Bytes::from(vec![b'x'; 1000]);
        let frags = enc(Command::Append {
            mailbox: &sent,
            flags: &[],
            internal_date: None,
            message: message.clone(),
        });
        match &frags[1] {
            Fragment::Literal { data, .. } => assert_eq!(data.as_ptr(), message.as_ptr()),
            other => panic!("expected the literal, got {other:?}"),
        }
    }

    #[test]
    fn sasl_lines() {
        assert_eq!(&CommandEncoder::sasl_response(b"")[..], b"\r\n");
        assert_eq!(
            &CommandEncoder::sasl_response(b"user=a\x01auth=Bearer t\x01\x01")[..],
            b"dXNlcj1hAWF1dGg9QmVhcmVyIHQBAQ==\r\n"
        );
        assert_eq!(&CommandEncoder::sasl_cancel()[..], b"*\r\n");
        assert_eq!(&CommandEncoder::done()[..], b"DONE\r\n");
    }
}
