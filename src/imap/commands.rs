//! The IMAP commands a migration needs, as methods of [`Session`].

use bytes::Bytes;
use futures::io::{AsyncRead, AsyncWrite};

use crate::imap::codec::{
    AppendMessage, Capabilities, Code, Command, CommandEncoder, Data, ListItem, ListKind, MailboxName,
    Namespaces, Status, StatusAttribute, StatusItems, StatusResponse,
};
use crate::imap::failure::Side;
use crate::imap::session::{Completion, Mine, SessionState, Until, nothing};
use crate::imap::{Mailbox, Session};
use crate::{Credentials, Error, ErrorKind, Result, Secret, Uid, UidSet};

/// How to authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthMechanism {
    /// The `LOGIN` command (user name and password).
    Login,
    /// `AUTHENTICATE PLAIN` (RFC 4616), with the initial response inline under SASL-IR.
    Plain,
    /// `AUTHENTICATE XOAUTH2` with an OAuth2 access token (Gmail, Office 365).
    XOAuth2,
}

impl AuthMechanism {
    fn name(self) -> &'static str {
        match self {
            AuthMechanism::Login => "LOGIN",
            AuthMechanism::Plain => "PLAIN",
            AuthMechanism::XOAuth2 => "XOAUTH2",
        }
    }
}

/// Where an APPENDed message landed (RFC 4315 `APPENDUID`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AppendUid {
    /// The folder's UIDVALIDITY.
    pub uid_validity: u32,
    /// The new message's UID.
    pub uid: Uid,
}

fn is_list(data: &Data) -> bool {
    matches!(data, Data::List(item) if item.kind == ListKind::List)
}

fn is_list_or_xlist(data: &Data) -> bool {
    matches!(data, Data::List(item) if item.kind != ListKind::Lsub)
}

fn is_lsub(data: &Data) -> bool {
    matches!(data, Data::List(item) if item.kind == ListKind::Lsub)
}

fn is_select_data(data: &Data) -> bool {
    matches!(data, Data::Flags(_) | Data::Exists(_) | Data::Recent(_))
}

fn is_search(data: &Data) -> bool {
    matches!(data, Data::Search(_) | Data::ESearch(_))
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    /// Asks for the capabilities again (`CAPABILITY`) and returns them.
    pub async fn refresh_capabilities(&mut self) -> Result<&Capabilities> {
        let before = self.capability_updates;
        self.run_ok(&Command::Capability, "CAPABILITY", None, Side::Read, nothing)
            .await?;
        if self.capability_updates == before {
            return Err(Error::protocol(format!(
                "IMAP server {} answered CAPABILITY without listing any capability",
                self.peer
            )));
        }
        Ok(&self.capabilities)
    }

    /// Logs in with `credentials`, choosing the mechanism: XOAUTH2 for
    /// [`Credentials::OAuth2`]; for passwords `LOGIN`, or `AUTHENTICATE PLAIN` when the
    /// server disables LOGIN. Then refreshes the capabilities and, when advertised and
    /// [`SessionOptions::send_id`](crate::imap::SessionOptions::send_id) is on, sends `ID`.
    ///
    /// After a `PREAUTH` greeting this does nothing. A refused login is [`ErrorKind::Auth`]
    /// with a message naming the account (never the password).
    pub async fn login(&mut self, credentials: &Credentials) -> Result<()> {
        if self.state != SessionState::NotAuthenticated && self.closed.is_none() {
            return Ok(());
        }
        if self.capabilities.atoms.is_empty() {
            self.refresh_capabilities().await?;
        }
        let mechanism = match credentials {
            Credentials::OAuth2 { .. } => AuthMechanism::XOAuth2,
            Credentials::Password { .. } if !self.capabilities.has("LOGINDISABLED") => AuthMechanism::Login,
            Credentials::Password { .. } if self.capabilities.has_auth("PLAIN") => AuthMechanism::Plain,
            Credentials::Password { .. } => {
                return Err(Error::new(
                    ErrorKind::Tls,
                    format!(
                        "IMAP server {} refuses password logins on this connection (LOGINDISABLED, no AUTH=PLAIN); connect with TLS or STARTTLS",
                        self.peer
                    ),
                ));
            }
        };
        self.authenticate_with(credentials, mechanism).await
    }

    /// Logs in with a chosen mechanism (see [`Session::login`] for the automatic choice).
    pub async fn authenticate_with(
        &mut self,
        credentials: &Credentials,
        mechanism: AuthMechanism,
    ) -> Result<()> {
        let user = credentials.user().to_owned();
        self.user = Some(user.clone());
        match (credentials, mechanism) {
            (Credentials::Password { user, password }, AuthMechanism::Login) => {
                let (st, _) = self
                    .run(&Command::Login { user, password }, "LOGIN", nothing)
                    .await?;
                if st.status != Status::Ok {
                    return Err(self.auth_error("LOGIN", &st, password.expose(), None));
                }
                self.after_login(&st).await
            }
            (Credentials::Password { user, password }, AuthMechanism::Plain) => {
                let payload = Secret::new(format!("\0{user}\0{}", password.expose()));
                self.sasl("PLAIN", &payload, password.expose()).await
            }
            (Credentials::OAuth2 { user, token }, AuthMechanism::XOAuth2) => {
                if !self.capabilities.has_auth("XOAUTH2") {
                    return Err(Error::new(
                        ErrorKind::SourceRefused,
                        format!(
                            "IMAP server {} does not offer OAuth2 login (AUTH=XOAUTH2); use a password or app password",
                            self.peer
                        ),
                    ));
                }
                let payload = Secret::new(format!("user={user}\x01auth=Bearer {}\x01\x01", token.expose()));
                self.sasl("XOAUTH2", &payload, token.expose()).await
            }
            _ => Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "{} cannot log in with these credentials; OAuth2 tokens need XOAUTH2, passwords LOGIN or PLAIN",
                    mechanism.name()
                ),
            )),
        }
    }

    /// One SASL exchange with a single client message (`payload`).
    async fn sasl(&mut self, mechanism: &'static str, payload: &Secret, secret: &str) -> Result<()> {
        let ir = self.capabilities.has("SASL-IR");
        let command = Command::Authenticate {
            mechanism,
            initial_response: ir.then_some(payload),
        };
        self.ready().await?;
        let mut out = Completion::default();
        let (tag, _) = self.send(&command, "AUTHENTICATE", nothing, &mut out).await?;
        self.busy = Some("authenticating");
        let mut sent = ir;
        let mut server_said: Option<String> = None;
        let mut rounds = 0;
        let st = loop {
            match self
                .read_until(&tag, "AUTHENTICATE", nothing, &mut out, true)
                .await?
            {
                Until::Done(st) => break st,
                Until::Continue(challenge) => {
                    rounds += 1;
                    let answer = if !sent {
                        sent = true;
                        CommandEncoder::sasl_response(payload.expose().as_bytes())
                    } else if rounds <= 3 {
                        // XOAUTH2 reports a failure as a challenge holding base64 JSON; the
                        // client answers with an empty line and gets the tagged NO.
                        server_said = Some(decode_challenge(&challenge));
                        Bytes::from_static(b"\r\n")
                    } else {
                        CommandEncoder::sasl_cancel()
                    };
                    self.write_line(&answer, "AUTHENTICATE").await?;
                    self.busy = Some("authenticating");
                }
            }
        };
        self.busy = None;
        if st.status != Status::Ok {
            return Err(self.auth_error(mechanism, &st, secret, server_said.as_deref()));
        }
        self.after_login(&st).await
    }

    async fn after_login(&mut self, st: &StatusResponse) -> Result<()> {
        self.state = SessionState::Authenticated;
        // Capabilities change at login (RFC 3501 6.2.3); use the ones in the OK if present.
        if !matches!(st.code, Some(Code::Capability(_))) {
            self.refresh_capabilities().await?;
        }
        if self.options.send_id && self.capabilities.has("ID") {
            let fields = self.options.client_id.clone();
            let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            match self.id(&pairs).await {
                Ok(_) => {}
                // A refused ID is no reason to fail the login; a dead connection is.
                Err(err) if self.closed.is_none() && err.kind() != ErrorKind::Transient => {}
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }

    /// Sends `ID` (RFC 2971) with `fields` (`&[]` sends `ID NIL`) and returns the server's
    /// fields.
    pub async fn id(&mut self, fields: &[(&str, &str)]) -> Result<Vec<(String, Option<String>)>> {
        let arg = if fields.is_empty() { None } else { Some(fields) };
        let (_, out) = self
            .run_ok(&Command::Id(arg), "ID", None, Side::Read, |d| {
                matches!(d, Data::Id(_))
            })
            .await?;
        Ok(out
            .data
            .into_iter()
            .find_map(|d| match d {
                Data::Id(fields) => Some(fields),
                _ => None,
            })
            .unwrap_or_default())
    }

    /// `ENABLE` (RFC 5161): returns what the server enabled (upper-cased).
    pub async fn enable(&mut self, extensions: &[&str]) -> Result<Vec<String>> {
        let (_, out) = self
            .run_ok(&Command::Enable(extensions), "ENABLE", None, Side::Read, |d| {
                matches!(d, Data::Enabled(_))
            })
            .await?;
        Ok(out
            .data
            .into_iter()
            .flat_map(|d| match d {
                Data::Enabled(names) => names,
                _ => Vec::new(),
            })
            .map(|n| n.to_ascii_uppercase())
            .collect())
    }

    /// `NAMESPACE` (RFC 2342); `None` when the server does not advertise it.
    pub async fn namespace(&mut self) -> Result<Option<Namespaces>> {
        if !self.capabilities.has("NAMESPACE") {
            return Ok(None);
        }
        let (_, out) = self
            .run_ok(&Command::Namespace, "NAMESPACE", None, Side::Read, |d| {
                matches!(d, Data::Namespace(_))
            })
            .await?;
        let found = out.data.into_iter().find_map(|d| match d {
            Data::Namespace(ns) => Some(ns),
            _ => None,
        });
        match found {
            Some(ns) => Ok(Some(ns)),
            None => Err(Error::protocol(format!(
                "IMAP server {} answered NAMESPACE without the namespace data",
                self.peer
            ))),
        }
    }

    /// The hierarchy delimiter (`LIST "" ""`); `None` for a flat server.
    pub async fn delimiter(&mut self) -> Result<Option<char>> {
        let command = Command::List {
            reference: b"",
            pattern: b"",
            return_special_use: false,
        };
        let (_, out) = self.run_ok(&command, "LIST", None, Side::Read, is_list).await?;
        Ok(out.data.into_iter().find_map(|d| match d {
            Data::List(item) => item.delimiter,
            _ => None,
        }))
    }

    /// Every folder (`LIST "" "*"`), with special-use attributes: `RETURN (SPECIAL-USE)`
    /// when the server advertises SPECIAL-USE with LIST-EXTENDED, `XLIST` when it only has
    /// XLIST (old Gmail, Coremail).
    pub async fn list_all(&mut self) -> Result<Vec<ListItem>> {
        self.list(b"", b"*").await
    }

    /// `LIST reference pattern`, with special-use attributes as for [`Session::list_all`].
    pub async fn list(&mut self, reference: &[u8], pattern: &[u8]) -> Result<Vec<ListItem>> {
        let caps = &self.capabilities;
        let special_use = caps.has("SPECIAL-USE");
        let (command, mine): (Command<'_>, Mine) = if special_use || !caps.has("XLIST") {
            (
                Command::List {
                    reference,
                    pattern,
                    return_special_use: special_use && caps.has("LIST-EXTENDED"),
                },
                is_list,
            )
        } else {
            (Command::Xlist { reference, pattern }, is_list_or_xlist)
        };
        let name = if matches!(command, Command::Xlist { .. }) {
            "XLIST"
        } else {
            "LIST"
        };
        let (_, out) = self.run_ok(&command, name, None, Side::Read, mine).await?;
        Ok(list_items(out.data))
    }

    /// `LSUB reference pattern`: the subscribed folders.
    pub async fn lsub(&mut self, reference: &[u8], pattern: &[u8]) -> Result<Vec<ListItem>> {
        let (_, out) = self
            .run_ok(
                &Command::Lsub { reference, pattern },
                "LSUB",
                None,
                Side::Read,
                is_lsub,
            )
            .await?;
        Ok(list_items(out.data))
    }

    /// `STATUS` of `mailbox`. Attributes the server does not advertise (HIGHESTMODSEQ
    /// without CONDSTORE, SIZE without STATUS=SIZE) are left out rather than sent.
    pub async fn status(
        &mut self,
        mailbox: &MailboxName,
        attributes: &[StatusAttribute],
    ) -> Result<StatusItems> {
        let condstore = self.capabilities.has("CONDSTORE");
        let size = self.capabilities.has("STATUS=SIZE");
        let items: Vec<StatusAttribute> = attributes
            .iter()
            .copied()
            .filter(|a| match a {
                StatusAttribute::HighestModSeq => condstore,
                StatusAttribute::Size => size,
                _ => true,
            })
            .collect();
        if items.is_empty() {
            return Ok(StatusItems::default());
        }
        let command = Command::Status {
            mailbox,
            items: &items,
        };
        let name = mailbox.to_string();
        let (_, out) = self
            .run_ok(&command, "STATUS", Some(&name), Side::Read, |d| {
                matches!(d, Data::Status(_))
            })
            .await?;
        let mut fallback = None;
        for data in out.data {
            if let Data::Status(status) = data {
                if status.name == *mailbox || (status.name.is_inbox() && mailbox.is_inbox()) {
                    return Ok(status.items);
                }
                fallback = Some(status.items);
            }
        }
        // Some servers echo the name re-encoded; with one STATUS asked for, one answer is it.
        fallback.ok_or_else(|| {
            Error::protocol(format!(
                "IMAP server {} answered STATUS {name:?} without the status data",
                self.peer
            ))
        })
    }

    /// `SELECT` (read-write), with `(CONDSTORE)` when advertised so HIGHESTMODSEQ is known.
    pub async fn select(&mut self, mailbox: &MailboxName) -> Result<Mailbox> {
        self.open(mailbox, false).await
    }

    /// `EXAMINE` (read-only: what a migration source uses; flags such as `\Seen` do not
    /// change).
    pub async fn examine(&mut self, mailbox: &MailboxName) -> Result<Mailbox> {
        self.open(mailbox, true).await
    }

    async fn open(&mut self, mailbox: &MailboxName, read_only: bool) -> Result<Mailbox> {
        let condstore = self.capabilities.has("CONDSTORE");
        let (command, name) = if read_only {
            (Command::Examine { mailbox, condstore }, "EXAMINE")
        } else {
            (Command::Select { mailbox, condstore }, "SELECT")
        };
        // A failed SELECT leaves no folder selected (RFC 3501 6.3.1).
        self.selected = None;
        if self.state == SessionState::Selected {
            self.state = SessionState::Authenticated;
        }
        let folder = mailbox.to_string();
        let (st, out) = self
            .run_ok(&command, name, Some(&folder), Side::Read, is_select_data)
            .await?;
        let mut result = Mailbox {
            name: mailbox.clone(),
            exists: 0,
            recent: 0,
            uid_validity: None,
            uid_next: None,
            highest_modseq: None,
            unseen: None,
            flags: Vec::new(),
            permanent_flags: Vec::new(),
            read_only,
        };
        for data in out.data {
            match data {
                Data::Exists(n) => result.exists = n,
                Data::Recent(n) => result.recent = n,
                Data::Flags(flags) => result.flags = flags,
                _ => {}
            }
        }
        for code in out.codes.into_iter().chain(st.code) {
            match code {
                Code::UidValidity(v) => result.uid_validity = Some(v),
                Code::UidNext(v) => result.uid_next = Some(v),
                Code::HighestModSeq(v) => result.highest_modseq = Some(v),
                Code::Unseen(v) => result.unseen = Some(v),
                Code::PermanentFlags(flags) => result.permanent_flags = flags,
                Code::ReadOnly => result.read_only = true,
                Code::ReadWrite => result.read_only = false,
                _ => {}
            }
        }
        self.state = SessionState::Selected;
        self.selected = Some(result.clone());
        Ok(result)
    }

    /// `UID SEARCH criteria` in the selected folder; with ESEARCH advertised, as
    /// `RETURN (ALL)` so a big folder's answer is a compact set. `criteria` is IMAP search
    /// syntax in ASCII, e.g. `ALL` or `UID 1000:*`.
    pub async fn uid_search(&mut self, criteria: &str) -> Result<UidSet> {
        let esearch = self.capabilities.has("ESEARCH");
        let command = Command::UidSearch { criteria, esearch };
        let (_, out) = self
            .run_ok(&command, "UID SEARCH", None, Side::Read, is_search)
            .await?;
        let mut uids = UidSet::new();
        for data in out.data {
            match data {
                Data::Search(result) => uids.extend(result.ids.into_iter().filter_map(Uid::new)),
                Data::ESearch(result) => {
                    if let Some(all) = result.all {
                        for (first, last) in all.ranges() {
                            uids.insert_range(first, last);
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(uids)
    }

    /// `CREATE mailbox`. An existing folder is an error; see [`Session::create_if_missing`].
    pub async fn create(&mut self, mailbox: &MailboxName) -> Result<()> {
        let name = mailbox.to_string();
        self.run_ok(
            &Command::Create(mailbox),
            "CREATE",
            Some(&name),
            Side::Write,
            nothing,
        )
        .await?;
        Ok(())
    }

    /// `CREATE mailbox`, succeeding if it already exists. Returns whether it was created.
    pub async fn create_if_missing(&mut self, mailbox: &MailboxName) -> Result<bool> {
        let name = mailbox.to_string();
        let (st, _) = self.run(&Command::Create(mailbox), "CREATE", nothing).await?;
        if st.status == Status::Ok {
            return Ok(true);
        }
        let exists = matches!(
            st.code,
            Some(Code::Known(crate::imap::codec::KnownCode::AlreadyExists))
        ) || self
            .list(b"", mailbox.raw())
            .await
            .map(|items| !items.is_empty())
            .unwrap_or(false);
        if exists {
            return Ok(false);
        }
        Err(self.failed("CREATE", Some(&name), st, Side::Write))
    }

    /// `SUBSCRIBE mailbox`.
    pub async fn subscribe(&mut self, mailbox: &MailboxName) -> Result<()> {
        let name = mailbox.to_string();
        self.run_ok(
            &Command::Subscribe(mailbox),
            "SUBSCRIBE",
            Some(&name),
            Side::Write,
            nothing,
        )
        .await?;
        Ok(())
    }

    /// `NOOP`: lets the server report changes (they land in the unsolicited queue).
    pub async fn noop(&mut self) -> Result<()> {
        self.run_ok(&Command::Noop, "NOOP", None, Side::Read, nothing)
            .await?;
        Ok(())
    }

    /// `CLOSE`: leaves the selected folder (expunging `\Deleted` messages if read-write).
    pub async fn close(&mut self) -> Result<()> {
        self.run_ok(&Command::Close, "CLOSE", None, Side::Read, nothing)
            .await?;
        self.selected = None;
        self.state = SessionState::Authenticated;
        Ok(())
    }

    /// `APPEND` one message; returns its UID under UIDPLUS. With LITERAL+ the message goes
    /// out without waiting for the server's `+`.
    pub async fn append(
        &mut self,
        mailbox: &MailboxName,
        message: &AppendMessage,
    ) -> Result<Option<AppendUid>> {
        let command = Command::Append {
            mailbox,
            flags: &message.flags,
            internal_date: message.internal_date,
            message: message.message.clone(),
        };
        let name = mailbox.to_string();
        let (st, _) = self.run(&command, "APPEND", nothing).await?;
        append_result(self, st, &name)
    }

    /// APPENDs `messages` to one folder, in order, and returns one result per message.
    ///
    /// When the server advertises MULTIAPPEND (RFC 3502) and
    /// [`SessionOptions::multiappend`](crate::imap::SessionOptions::multiappend) allows it,
    /// the messages go in a few APPEND commands of many messages each (one server
    /// transaction per command); a command the server refuses is retried one message at a
    /// time, so only the messages it refuses on their own fail. Otherwise each message is
    /// its own APPEND, pipelined: up to
    /// [`SessionOptions::max_pipeline`](crate::imap::SessionOptions::max_pipeline) commands
    /// are written back to back, then their results are read. Either way there is no round
    /// trip per message under LITERAL+ (or LITERAL- for small messages).
    ///
    /// A connection failure is the outer error: then which of the messages in flight were
    /// stored is unknown.
    pub async fn append_many(
        &mut self,
        mailbox: &MailboxName,
        messages: &[AppendMessage],
    ) -> Result<Vec<Result<Option<AppendUid>>>> {
        let limits = match self.options.multiappend {
            Some(limits) if self.capabilities().has("MULTIAPPEND") => limits,
            _ => return self.append_pipelined(mailbox, messages).await,
        };
        let mut results = Vec::with_capacity(messages.len());
        for chunk in limits.split(messages) {
            let outcomes = match chunk {
                [_] => self.append_pipelined(mailbox, chunk).await?,
                _ => self.multi_append(mailbox, chunk).await?,
            };
            results.extend(outcomes);
        }
        Ok(results)
    }

    /// One MULTIAPPEND command; see [`Session::append_many`].
    async fn multi_append(
        &mut self,
        mailbox: &MailboxName,
        messages: &[AppendMessage],
    ) -> Result<Vec<Result<Option<AppendUid>>>> {
        let command = Command::MultiAppend { mailbox, messages };
        let (st, _) = self.run(&command, "APPEND", nothing).await?;
        if st.status == Status::Ok {
            return Ok(appended_uids(st.code, messages.len()));
        }
        // Nothing was stored (all or nothing). [TRYCREATE] holds for every message alike;
        // any other refusal may be one message's fault: find out which.
        if matches!(st.code, Some(Code::TryCreate)) {
            let name = mailbox.to_string();
            return Ok(messages
                .iter()
                .map(|_| Err(self.failed("APPEND", Some(&name), st.clone(), Side::Write)))
                .collect());
        }
        self.append_pipelined(mailbox, messages).await
    }

    /// One APPEND per message, up to `max_pipeline` written before their results are read.
    async fn append_pipelined(
        &mut self,
        mailbox: &MailboxName,
        messages: &[AppendMessage],
    ) -> Result<Vec<Result<Option<AppendUid>>>> {
        let name = mailbox.to_string();
        let mut results = Vec::with_capacity(messages.len());
        let depth = self.options.max_pipeline.max(1);
        for batch in messages.chunks(depth) {
            self.ready().await?;
            let mut out = Completion::default();
            let mut sent = Vec::with_capacity(batch.len());
            for message in batch {
                let command = Command::Append {
                    mailbox,
                    flags: &message.flags,
                    internal_date: message.internal_date,
                    message: message.message.clone(),
                };
                sent.push(self.send(&command, "APPEND", nothing, &mut out).await?);
            }
            for (tag, rejected) in sent {
                let st = match rejected {
                    Some(st) => st,
                    None => self.wait_tagged(&tag, "APPEND", nothing, &mut out).await?,
                };
                results.push(append_result(self, st, &name));
            }
            self.early.clear();
        }
        Ok(results)
    }

    /// `LOGOUT`, then closes the stream.
    pub async fn logout(mut self) -> Result<()> {
        if self.closed.is_some() {
            return Ok(());
        }
        let result = self.run(&Command::Logout, "LOGOUT", nothing).await;
        self.poison("logged out");
        let _ = futures::io::AsyncWriteExt::close(&mut self.stream).await;
        match result {
            Ok(_) => Ok(()),
            // The server may hang up right after its BYE.
            Err(err) if err.kind() == ErrorKind::Transient => Ok(()),
            Err(err) => Err(err),
        }
    }
}

fn append_result<S>(session: &Session<S>, st: StatusResponse, name: &str) -> Result<Option<AppendUid>> {
    if st.status != Status::Ok {
        return Err(session.failed("APPEND", Some(name), st, Side::Write));
    }
    Ok(match st.code {
        Some(Code::AppendUid { uid_validity, uids }) => {
            uids.first().map(|uid| AppendUid { uid_validity, uid })
        }
        _ => None,
    })
}

/// Where each of `count` messages appended by one command landed: the UIDs of
/// `[APPENDUID v uid-set]` in ascending order, which is the order the messages were sent
/// (RFC 4315). A set of another size says nothing about which is which: no UIDs then.
fn appended_uids(code: Option<Code>, count: usize) -> Vec<Result<Option<AppendUid>>> {
    match code {
        Some(Code::AppendUid { uid_validity, uids }) if uids.len() == count as u64 => uids
            .iter()
            .map(|uid| Ok(Some(AppendUid { uid_validity, uid })))
            .collect(),
        _ => (0..count).map(|_| Ok(None)).collect(),
    }
}

fn list_items(data: Vec<Data>) -> Vec<ListItem> {
    data.into_iter()
        .filter_map(|d| match d {
            Data::List(item) => Some(item),
            _ => None,
        })
        .collect()
}

/// A SASL challenge as text for an error message (XOAUTH2 sends base64 JSON); bounded.
fn decode_challenge(challenge: &[u8]) -> String {
    use base64::Engine;
    let trimmed: &[u8] = challenge.trim_ascii();
    let text = match base64::engine::general_purpose::STANDARD.decode(trimmed) {
        Ok(raw) => String::from_utf8_lossy(&raw).into_owned(),
        Err(_) => String::from_utf8_lossy(trimmed).into_owned(),
    };
    let mut text: String = text.chars().filter(|c| !c.is_control()).take(300).collect();
    if text.is_empty() {
        text = "no details".into();
    }
    format!("server said: {text}")
}
