//! The async IMAP session: connection set-up, reading and writing, and the routing of every
//! response to the command waiting for it or to the queue of unsolicited events.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::imap::Unsolicited;
use crate::imap::codec::{
    AppendMessage, Capabilities, Code, Command, CommandEncoder, Data, DecodeError, EncodeOptions, Flag,
    Fragment, Limits, Response, ResponseDecoder, Status, StatusResponse, Tag,
};
use crate::imap::failure::{Side, command_error, scrub};
use crate::net::{MaybeTls, Security, ServerConfig, Timer, TlsConfig, TlsConnector, with_timeout};
use crate::{Error, ErrorKind, Result};

/// The least room one read gets. Reads use what is left in the decoder's buffer (up to
/// 64 KiB) before it grows, so message bodies split from it do not pin unused space.
const MIN_READ: usize = 8 * 1024;
/// How many bytes one write (and so one timeout) covers.
const WRITE_CHUNK: usize = 64 * 1024;
/// Non-synchronizing literals up to this size are copied into the command buffer so a small
/// APPEND goes out in one write.
const COALESCE_LITERAL: usize = 16 * 1024;
/// Completed tags of pipelined commands kept while waiting for another one.
const MAX_EARLY: usize = 1024;

/// Options of an IMAP session. `Default` gives safe values.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// Size and nesting limits on everything the server sends.
    pub limits: Limits,
    /// Send the IMAP `ID` command (RFC 2971) right after login when the server advertises it.
    /// On by default: NetEase (163/126/qiye.163) rejects SELECT from clients that did not.
    pub send_id: bool,
    /// The fields sent with `ID`.
    pub client_id: Vec<(String, String)>,
    /// Most unsolicited events kept until [`Session::take_unsolicited`]; older ones are
    /// dropped (and counted) so a chatty server cannot grow memory without bound.
    pub max_unsolicited: usize,
    /// Most commands [`Session::append_many`] writes before reading their results, so neither
    /// side's socket buffer can fill up and deadlock.
    pub max_pipeline: usize,
    /// How [`Session::append_many`] groups messages into one MULTIAPPEND command (RFC 3502)
    /// when the server advertises it; `None` sends one APPEND per message (pipelined).
    pub multiappend: Option<MultiAppendLimits>,
}

/// The size of one MULTIAPPEND command (RFC 3502): the server stores its messages in one
/// transaction, far cheaper for it than one transaction per message (Dovecot needs about a
/// quarter of the CPU time), but all or nothing, so a refused command is retried one message
/// at a time to find the message the server refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MultiAppendLimits {
    /// Most messages in one command.
    pub max_messages: usize,
    /// Most message bytes in one command, which bounds what a server holds before it can
    /// commit; a message larger than this is sent alone.
    pub max_bytes: usize,
}

impl Default for MultiAppendLimits {
    fn default() -> Self {
        MultiAppendLimits {
            max_messages: 100,
            max_bytes: 4 << 20,
        }
    }
}

impl MultiAppendLimits {
    /// Splits `messages` into consecutive commands within these limits, in order.
    pub fn split<'m>(&self, messages: &'m [AppendMessage]) -> Vec<&'m [AppendMessage]> {
        let mut chunks = Vec::new();
        let mut start = 0;
        while start < messages.len() {
            let mut end = start + 1;
            let mut bytes = messages[start].message.len();
            while end < messages.len()
                && end - start < self.max_messages
                && bytes + messages[end].message.len() <= self.max_bytes
            {
                bytes += messages[end].message.len();
                end += 1;
            }
            chunks.push(&messages[start..end]);
            start = end;
        }
        chunks
    }
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            limits: Limits::default(),
            send_id: true,
            client_id: vec![
                ("name".to_owned(), "mailmigrate".to_owned()),
                ("version".to_owned(), env!("CARGO_PKG_VERSION").to_owned()),
            ],
            max_unsolicited: 10_000,
            max_pipeline: 32,
            multiappend: Some(MultiAppendLimits::default()),
        }
    }
}

/// How the server greeted us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Greeting {
    /// `PREAUTH`: the connection is already authenticated; no login needed (or possible).
    pub preauth: bool,
    /// The greeting's text.
    pub text: String,
}

/// Where the session is in the IMAP state machine (RFC 3501 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// Greeted, not logged in.
    NotAuthenticated,
    /// Logged in, no folder selected.
    Authenticated,
    /// A folder is selected (see [`Session::selected`]).
    Selected,
    /// The connection is closed (LOGOUT, BYE, a network error or a fatal protocol error).
    Closed,
}

/// The state of the folder opened by SELECT or EXAMINE, kept up to date by EXISTS/EXPUNGE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    /// The folder, raw.
    pub name: crate::imap::codec::MailboxName,
    /// How many messages it holds.
    pub exists: u32,
    /// `RECENT` count.
    pub recent: u32,
    /// UIDVALIDITY (`None` only from servers that break RFC 3501 by not sending it).
    pub uid_validity: Option<u32>,
    /// The UID the next message will get, when the server said.
    pub uid_next: Option<u32>,
    /// HIGHESTMODSEQ (CONDSTORE servers).
    pub highest_modseq: Option<u64>,
    /// The first unseen message number, when the server said.
    pub unseen: Option<u32>,
    /// The flags defined in the folder.
    pub flags: Vec<Flag>,
    /// The flags a client can store permanently (`\*` = new keywords allowed).
    pub permanent_flags: Vec<Flag>,
    /// Opened read-only (EXAMINE, or the server's `[READ-ONLY]`).
    pub read_only: bool,
}

/// An async IMAP client session over any futures-io byte stream.
///
/// One command runs at a time: every method takes `&mut self`. Responses the server sends
/// on its own go to a queue ([`Session::take_unsolicited`]) and update [`Session::selected`].
/// Every network wait is bounded by the server's timeout, measured on the session's
/// [`Timer`].
///
/// Build one with [`Session::establish`] over a connected stream (any runtime), with
/// [`Session::from_stream`] over a stream that already carries the protocol, or with
/// [`crate::imap::connect`] (feature `tokio`).
pub struct Session<S> {
    pub(crate) stream: S,
    pub(crate) decoder: ResponseDecoder,
    pub(crate) encoder: CommandEncoder,
    pub(crate) timer: Arc<dyn Timer>,
    pub(crate) options: SessionOptions,
    /// `host:port`, for messages.
    pub(crate) peer: String,
    pub(crate) host: String,
    pub(crate) timeout: Duration,
    pub(crate) user: Option<String>,
    pub(crate) greeting: Greeting,
    pub(crate) capabilities: Capabilities,
    /// Bumped on every capability update, so a command can tell whether it brought new ones.
    pub(crate) capability_updates: u64,
    pub(crate) enabled: BTreeSet<String>,
    pub(crate) state: SessionState,
    pub(crate) selected: Option<Mailbox>,
    pub(crate) unsolicited: VecDeque<Unsolicited>,
    /// Unsolicited events pushed so far (IDLE watches it).
    pub(crate) unsolicited_pushed: u64,
    pub(crate) unsolicited_dropped: u64,
    /// Commands sent whose tagged completion has not been read yet (a dropped fetch stream,
    /// a cancelled call): drained before the next command.
    pub(crate) pending: Vec<Tag>,
    /// The IDLE command in progress, if any (needs `DONE` before anything else).
    pub(crate) idling: Option<Tag>,
    /// Tagged completions read while waiting for another tag (pipelined commands).
    pub(crate) early: HashMap<String, StatusResponse>,
    /// Set while the stream is in a state a cancelled future cannot recover from (mid-write,
    /// mid-SASL): if still set at the next call, the session is unusable.
    pub(crate) busy: Option<&'static str>,
    /// Why the session is closed.
    pub(crate) closed: Option<String>,
}

impl<S> fmt::Debug for Session<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("peer", &self.peer)
            .field("user", &self.user)
            .field("state", &self.state())
            .field("capabilities", &self.capabilities.atoms.len())
            .field("selected", &self.selected.as_ref().map(|m| &m.name))
            .field("unsolicited", &self.unsolicited.len())
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

/// One thing read from the server: a response, or a response the codec had to skip.
pub(crate) enum Incoming {
    Response(Response),
    Skipped(DecodeError),
}

/// What a response means for the command in progress.
pub(crate) enum Step {
    /// Untagged data the command asked for.
    Data(Data),
    /// A `+` continuation.
    Continue(Bytes),
    /// A tagged completion (maybe of another, pipelined, command).
    Tagged(StatusResponse),
    /// `* BYE`: the session is closed.
    Bye(String),
    /// Handled by the session (state update or unsolicited queue).
    Handled,
}

/// Whether untagged data belongs to the command in progress.
pub(crate) type Mine = fn(&Data) -> bool;

pub(crate) fn nothing(_: &Data) -> bool {
    false
}

/// What a command collected on the way to its tagged completion.
#[derive(Default)]
pub(crate) struct Completion {
    pub(crate) data: Vec<Data>,
    /// Codes of untagged `OK`s (SELECT's UIDVALIDITY, UIDNEXT, ...).
    pub(crate) codes: Vec<Code>,
    /// The first response the codec could not parse, and how many there were.
    pub(crate) skipped: Option<DecodeError>,
    pub(crate) skipped_count: usize,
}

impl Completion {
    fn skip(&mut self, err: DecodeError) {
        self.skipped_count += 1;
        if self.skipped.is_none() {
            self.skipped = Some(err);
        }
    }
}

/// Where [`Session::read_until`] stopped.
pub(crate) enum Until {
    Continue(Bytes),
    Done(StatusResponse),
}

impl<S> Session<S> {
    /// The session's state.
    pub fn state(&self) -> SessionState {
        if self.closed.is_some() {
            SessionState::Closed
        } else {
            self.state
        }
    }

    /// Whether the connection is closed (the next command fails; reconnect).
    pub fn is_closed(&self) -> bool {
        self.closed.is_some()
    }

    /// The greeting.
    pub fn greeting(&self) -> &Greeting {
        &self.greeting
    }

    /// The capabilities last advertised (refreshed after STARTTLS and after login).
    pub fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    /// Extensions turned on with [`Session::enable`], upper-cased.
    pub fn enabled(&self) -> &BTreeSet<String> {
        &self.enabled
    }

    /// Whether the server accepts UTF-8 mailbox names (`UTF8=ACCEPT` enabled), i.e. whether to
    /// pass `true` to [`MailboxName::encode`](crate::imap::codec::MailboxName::encode).
    pub fn utf8_enabled(&self) -> bool {
        self.enabled.contains("UTF8=ACCEPT")
    }

    /// The selected folder, kept up to date by EXISTS and EXPUNGE.
    pub fn selected(&self) -> Option<&Mailbox> {
        self.selected.as_ref()
    }

    /// The server's `host:port`.
    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// The logged-in account, once logged in.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// Takes every queued unsolicited event, oldest first.
    pub fn take_unsolicited(&mut self) -> Vec<Unsolicited> {
        self.unsolicited.drain(..).collect()
    }

    /// How many unsolicited events were dropped because the queue was full
    /// ([`SessionOptions::max_unsolicited`]).
    pub fn unsolicited_dropped(&self) -> u64 {
        self.unsolicited_dropped
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    pub(crate) fn poison(&mut self, reason: impl Into<String>) {
        if self.closed.is_none() {
            self.closed = Some(reason.into());
        }
        self.selected = None;
    }

    pub(crate) fn push_unsolicited(&mut self, event: Unsolicited) {
        self.unsolicited_pushed += 1;
        if self.unsolicited.len() >= self.options.max_unsolicited.max(1) {
            self.unsolicited.pop_front();
            self.unsolicited_dropped += 1;
        }
        self.unsolicited.push_back(event);
    }

    pub(crate) fn set_capabilities(&mut self, caps: Capabilities) {
        self.encoder.set_options(EncodeOptions {
            literal_plus: caps.has("LITERAL+"),
            literal_minus: caps.has("LITERAL-"),
        });
        self.capabilities = caps;
        self.capability_updates += 1;
    }

    /// The transient error for a server that said BYE during `command`.
    pub(crate) fn bye_error(&self, command: &str, text: &str) -> Error {
        Error::new(
            ErrorKind::Transient,
            format!(
                "IMAP server {} closed the connection during {command}: {}; reconnect and retry later",
                self.peer,
                text.trim()
            ),
        )
    }

    /// The error for a failed tagged response.
    pub(crate) fn failed(
        &self,
        command: &'static str,
        what: Option<&str>,
        st: StatusResponse,
        side: Side,
    ) -> Error {
        command_error(&self.peer, command, what, st, side)
    }

    /// Routes one response: state updates and unsolicited events here, data for `mine` and
    /// tagged completions back to the caller.
    pub(crate) fn dispatch(&mut self, response: Response, mine: Mine, codes: &mut Vec<Code>) -> Step {
        match response {
            Response::Continue { text } => Step::Continue(text),
            Response::Status(st) if st.tag.is_some() => {
                match &st.code {
                    Some(Code::Capability(caps)) => self.set_capabilities(caps.clone()),
                    Some(Code::Alert) => self.push_unsolicited(Unsolicited::Alert(st.text.clone())),
                    _ => {}
                }
                Step::Tagged(st)
            }
            Response::Status(st) => {
                match st.status {
                    Status::Bye => {
                        let text = st.text;
                        self.poison(format!("the server said BYE: {}", text.trim()));
                        self.push_unsolicited(Unsolicited::Bye(text.clone()));
                        return Step::Bye(text);
                    }
                    Status::No | Status::Bad if st.code != Some(Code::Alert) => {
                        self.push_unsolicited(Unsolicited::Warning(st.text.clone()));
                    }
                    _ => {}
                }
                match st.code {
                    Some(Code::Alert) => self.push_unsolicited(Unsolicited::Alert(st.text)),
                    Some(Code::Capability(caps)) => {
                        self.set_capabilities(caps.clone());
                        self.push_unsolicited(Unsolicited::Capability(caps));
                    }
                    Some(code) => codes.push(code),
                    None => {}
                }
                Step::Handled
            }
            Response::Data(data) => {
                self.track(&data);
                if mine(&data) {
                    Step::Data(data)
                } else {
                    self.unsolicited_data(data);
                    Step::Handled
                }
            }
        }
    }

    /// Session state every response keeps current, whoever it is for.
    fn track(&mut self, data: &Data) {
        match data {
            Data::Exists(n) => {
                if let Some(mailbox) = &mut self.selected {
                    mailbox.exists = *n;
                }
            }
            Data::Expunge(_) => {
                if let Some(mailbox) = &mut self.selected {
                    mailbox.exists = mailbox.exists.saturating_sub(1);
                }
            }
            Data::Recent(n) => {
                if let Some(mailbox) = &mut self.selected {
                    mailbox.recent = *n;
                }
            }
            Data::Flags(flags) => {
                if let Some(mailbox) = &mut self.selected {
                    mailbox.flags = flags.clone();
                }
            }
            Data::Capability(caps) => self.set_capabilities(caps.clone()),
            Data::Enabled(names) => self.enabled.extend(names.iter().map(|n| n.to_ascii_uppercase())),
            _ => {}
        }
    }

    fn unsolicited_data(&mut self, data: Data) {
        let event = match data {
            Data::Exists(n) => Unsolicited::Exists(n),
            Data::Recent(n) => Unsolicited::Recent(n),
            Data::Expunge(n) => Unsolicited::Expunge(n),
            Data::Vanished { earlier, uids } => Unsolicited::Vanished { earlier, uids },
            Data::Fetch(fetch) => Unsolicited::Fetch {
                seq: fetch.seq,
                uid: fetch.uid,
                flags: fetch.flags,
                modseq: fetch.modseq,
            },
            Data::Flags(flags) => Unsolicited::Flags(flags),
            Data::Capability(caps) => Unsolicited::Capability(caps),
            Data::Enabled(_) => return,
            other => Unsolicited::Other(other),
        };
        self.push_unsolicited(event);
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    /// A session over `stream`, a connection that already carries IMAP (TLS done if wanted),
    /// to `server` (whose host, port and timeout are used; its `security` is the caller's
    /// business here). Reads the greeting; fails on `BYE`.
    pub async fn from_stream(
        stream: S,
        server: &ServerConfig,
        timer: Arc<dyn Timer>,
        options: SessionOptions,
    ) -> Result<Self> {
        let mut session = Session {
            stream,
            decoder: ResponseDecoder::new(options.limits),
            encoder: CommandEncoder::new(),
            timer,
            options,
            peer: server.to_string(),
            host: server.host.clone(),
            timeout: server.timeout,
            user: None,
            greeting: Greeting {
                preauth: false,
                text: String::new(),
            },
            capabilities: Capabilities::default(),
            capability_updates: 0,
            enabled: BTreeSet::new(),
            state: SessionState::NotAuthenticated,
            selected: None,
            unsolicited: VecDeque::new(),
            unsolicited_pushed: 0,
            unsolicited_dropped: 0,
            pending: Vec::new(),
            idling: None,
            early: HashMap::new(),
            busy: None,
            closed: None,
        };
        session.read_greeting().await?;
        Ok(session)
    }

    async fn read_greeting(&mut self) -> Result<()> {
        let what = format!("the greeting from IMAP server {}", self.peer);
        let response = match self.read_incoming(&what).await? {
            Incoming::Response(response) => response,
            Incoming::Skipped(err) => {
                self.poison("unreadable greeting");
                return Err(Error::protocol(format!(
                    "IMAP server {} sent an unreadable greeting ({err}); is this an IMAP port?",
                    self.peer
                )));
            }
        };
        let st = match response {
            Response::Status(st) if st.tag.is_none() => st,
            _ => {
                self.poison("no greeting");
                return Err(Error::protocol(format!(
                    "IMAP server {} did not start with a greeting; is this an IMAP port?",
                    self.peer
                )));
            }
        };
        match &st.code {
            Some(Code::Capability(caps)) => self.set_capabilities(caps.clone()),
            Some(Code::Alert) => self.push_unsolicited(Unsolicited::Alert(st.text.clone())),
            _ => {}
        }
        match st.status {
            Status::Ok => {
                self.greeting = Greeting {
                    preauth: false,
                    text: st.text,
                };
                Ok(())
            }
            Status::PreAuth => {
                self.state = SessionState::Authenticated;
                self.greeting = Greeting {
                    preauth: true,
                    text: st.text,
                };
                Ok(())
            }
            Status::Bye => {
                self.poison(format!("the server said BYE: {}", st.text.trim()));
                Err(Error::new(
                    ErrorKind::Transient,
                    format!(
                        "IMAP server {} refused the connection: BYE {}; retry later",
                        self.peer,
                        st.text.trim()
                    ),
                ))
            }
            Status::No | Status::Bad => {
                self.poison("bad greeting");
                Err(Error::protocol(format!(
                    "IMAP server {} greeted with {:?} {}; is this an IMAP port?",
                    self.peer,
                    st.status,
                    st.text.trim()
                )))
            }
        }
    }

    // ---- reading ----

    /// Reads more bytes, waiting at most `limit`. `Ok(Err(timeout))` if the time ran out
    /// (the session stays usable: reads are cancel-safe); I/O errors and end-of-stream close
    /// the session.
    pub(crate) async fn fill(&mut self, what: &str, limit: Duration) -> Result<Result<(), Error>> {
        let buf = self.decoder.read_buf(MIN_READ);
        let read = self.stream.read(buf);
        match with_timeout(&*self.timer, limit, what, read).await {
            Err(timeout) => Ok(Err(timeout)),
            Ok(Err(io)) => {
                let err = Error::network(&self.peer, io);
                self.poison(err.to_string());
                Err(err)
            }
            Ok(Ok(0)) => {
                let reason = self.closed.clone();
                self.poison("the server closed the connection");
                let said = reason.map(|r| format!(" ({r})")).unwrap_or_default();
                Err(Error::new(
                    ErrorKind::Transient,
                    // `what` names the server.
                    format!(
                        "the connection was closed while we waited for {what}{said}; reconnect and retry"
                    ),
                ))
            }
            Ok(Ok(n)) => {
                self.decoder.filled(n);
                Ok(Ok(()))
            }
        }
    }

    /// The next response already buffered, without reading. Fatal decode errors close the
    /// session.
    pub(crate) fn decode_buffered(&mut self) -> Result<Option<Incoming>> {
        match self.decoder.decode() {
            Ok(Some(response)) => Ok(Some(Incoming::Response(response))),
            Ok(None) => Ok(None),
            Err(err) if err.is_fatal() => {
                let message = err.to_string();
                self.poison(message.clone());
                Err(Error::from(err).context(format!("IMAP server {}", self.peer)))
            }
            Err(err) => Ok(Some(Incoming::Skipped(err))),
        }
    }

    /// The next response, reading as needed; every read is bounded by the session timeout.
    pub(crate) async fn read_incoming(&mut self, what: &str) -> Result<Incoming> {
        loop {
            if let Some(incoming) = self.decode_buffered()? {
                return Ok(incoming);
            }
            if let Err(timeout) = self.fill(what, self.timeout).await? {
                self.poison(timeout.to_string());
                return Err(timeout);
            }
        }
    }

    /// Reads until `tag` completes (or, with `want_continue`, until a `+`), routing
    /// everything else.
    pub(crate) async fn read_until(
        &mut self,
        tag: &Tag,
        command: &'static str,
        mine: Mine,
        out: &mut Completion,
        want_continue: bool,
    ) -> Result<Until> {
        if let Some(st) = self.early.remove(&tag.0) {
            return Ok(Until::Done(st));
        }
        let what = format!("the answer to {command} from IMAP server {}", self.peer);
        loop {
            let response = match self.read_incoming(&what).await {
                Ok(Incoming::Response(response)) => response,
                Ok(Incoming::Skipped(err)) => {
                    out.skip(err);
                    continue;
                }
                Err(err) => return Err(err),
            };
            match self.dispatch(response, mine, &mut out.codes) {
                Step::Data(data) => out.data.push(data),
                Step::Handled => {}
                Step::Continue(text) => {
                    if want_continue {
                        return Ok(Until::Continue(text));
                    }
                    // A stray `+` when nothing waits for one: nothing to send, ignore it.
                }
                Step::Tagged(st) => {
                    if let Some(st) = self.complete(tag, st) {
                        return Ok(Until::Done(st));
                    }
                }
                Step::Bye(text) => {
                    if command != "LOGOUT" {
                        return Err(self.bye_error(command, &text));
                    }
                }
            }
        }
    }

    /// Reads until `tag` completes, routing everything else.
    pub(crate) async fn wait_tagged(
        &mut self,
        tag: &Tag,
        command: &'static str,
        mine: Mine,
        out: &mut Completion,
    ) -> Result<StatusResponse> {
        loop {
            // Without `want_continue`, read_until only returns at the completion.
            if let Until::Done(st) = self.read_until(tag, command, mine, out, false).await? {
                return Ok(st);
            }
        }
    }

    /// Files a tagged completion: returns it if it is `tag`'s, else keeps it for the
    /// pipelined command it belongs to.
    pub(crate) fn complete(&mut self, tag: &Tag, st: StatusResponse) -> Option<StatusResponse> {
        let got = st.tag.clone()?;
        self.pending.retain(|t| *t != got);
        if self.idling.as_ref() == Some(&got) {
            self.idling = None;
        }
        if got == *tag {
            return Some(st);
        }
        if self.early.len() < MAX_EARLY {
            self.early.insert(got.0, st);
        }
        None
    }

    // ---- writing ----

    async fn write_raw(&mut self, data: &[u8], what: &str) -> Result<()> {
        self.busy = Some("writing a command");
        for chunk in data.chunks(WRITE_CHUNK) {
            match with_timeout(&*self.timer, self.timeout, what, self.stream.write_all(chunk)).await {
                Ok(Ok(())) => {}
                Ok(Err(io)) => {
                    let err = Error::network(&self.peer, io);
                    self.poison(err.to_string());
                    return Err(err);
                }
                Err(timeout) => {
                    self.poison(timeout.to_string());
                    return Err(timeout);
                }
            }
        }
        match with_timeout(&*self.timer, self.timeout, what, self.stream.flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(io)) => {
                let err = Error::network(&self.peer, io);
                self.poison(err.to_string());
                return Err(err);
            }
            Err(timeout) => {
                self.poison(timeout.to_string());
                return Err(timeout);
            }
        }
        self.busy = None;
        Ok(())
    }

    /// Writes bytes outside a command (SASL responses, `DONE`).
    pub(crate) async fn write_line(&mut self, data: &[u8], command: &str) -> Result<()> {
        let what = format!("IMAP server {} to accept {command}", self.peer);
        self.write_raw(data, &what).await
    }

    /// Encodes and writes `command`, waiting for `+` before each synchronizing literal.
    /// Returns the tag, and the tagged status if the server answered before a literal could
    /// be sent (a rejection: the rest of the command is not sent).
    pub(crate) async fn send(
        &mut self,
        command: &Command<'_>,
        name: &'static str,
        mine: Mine,
        out: &mut Completion,
    ) -> Result<(Tag, Option<StatusResponse>)> {
        let (tag, fragments) = self.encoder.encode(command)?;
        let what = format!("IMAP server {} to accept {name}", self.peer);
        self.pending.push(tag.clone());
        // Small pieces are gathered into writes of about WRITE_CHUNK; never the whole command,
        // which for a MULTIAPPEND would copy megabytes of messages.
        let mut buf: Vec<u8> = Vec::new();
        for fragment in fragments {
            match fragment {
                Fragment::Line(line) => buf.extend_from_slice(&line),
                Fragment::Literal { data, sync: false } => {
                    if data.len() <= COALESCE_LITERAL {
                        buf.extend_from_slice(&data);
                    } else {
                        self.write_raw(&buf, &what).await?;
                        buf.clear();
                        self.write_raw(&data, &what).await?;
                    }
                }
                Fragment::Literal { data, sync: true } => {
                    self.write_raw(&buf, &what).await?;
                    buf.clear();
                    // The server now waits for the literal: a call cancelled here leaves the
                    // stream mid-command.
                    self.busy = Some("waiting to send a literal");
                    match self.read_until(&tag, name, mine, out, true).await? {
                        Until::Continue(_) => self.write_raw(&data, &what).await?,
                        Until::Done(st) => {
                            self.busy = None;
                            return Ok((tag, Some(st)));
                        }
                    }
                }
            }
            if buf.len() >= WRITE_CHUNK {
                self.write_raw(&buf, &what).await?;
                buf.clear();
            }
        }
        if !buf.is_empty() {
            self.write_raw(&buf, &what).await?;
        }
        Ok((tag, None))
    }

    // ---- commands ----

    /// Makes the session ready for a new command: refuses if closed, finishes whatever an
    /// abandoned call left (an unfinished fetch stream, an IDLE without DONE).
    pub(crate) async fn ready(&mut self) -> Result<()> {
        if let Some(phase) = self.busy {
            self.poison(format!("a call was cancelled while {phase}"));
        }
        if let Some(reason) = &self.closed {
            return Err(Error::new(
                ErrorKind::Transient,
                format!(
                    "the IMAP connection to {} is closed ({reason}); reconnect to continue",
                    self.peer
                ),
            ));
        }
        if let Some(tag) = self.idling.clone() {
            self.write_line(&CommandEncoder::done(), "DONE").await?;
            self.idling = None;
            let mut out = Completion::default();
            self.wait_tagged(&tag, "IDLE", nothing, &mut out).await?;
        }
        while let Some(tag) = self.pending.first().cloned() {
            let mut out = Completion::default();
            // Whatever the abandoned command fetched is dropped; its FETCHes become flag
            // events at most.
            self.wait_tagged(&tag, "an earlier command", nothing, &mut out)
                .await?;
            self.pending.retain(|t| *t != tag);
        }
        self.early.clear();
        Ok(())
    }

    /// Runs one command to its tagged completion. Returns the status (any of OK/NO/BAD) and
    /// what was collected; a BYE, a network error or a timeout is an `Err`.
    pub(crate) async fn run(
        &mut self,
        command: &Command<'_>,
        name: &'static str,
        mine: Mine,
    ) -> Result<(StatusResponse, Completion)> {
        self.ready().await?;
        let mut out = Completion::default();
        let (tag, rejected) = self.send(command, name, mine, &mut out).await?;
        let st = match rejected {
            Some(st) => st,
            None => self.wait_tagged(&tag, name, mine, &mut out).await?,
        };
        Ok((st, out))
    }

    /// Runs a command that must succeed: a NO/BAD becomes an error of the kind `side` and
    /// the response code say; a response the codec could not read fails the command (the
    /// session stays usable) rather than silently losing what it held.
    pub(crate) async fn run_ok(
        &mut self,
        command: &Command<'_>,
        name: &'static str,
        what: Option<&str>,
        side: Side,
        mine: Mine,
    ) -> Result<(StatusResponse, Completion)> {
        let (st, out) = self.run(command, name, mine).await?;
        if st.status != Status::Ok {
            return Err(self.failed(name, what, st, side));
        }
        if let Some(err) = &out.skipped {
            return Err(Error::protocol(format!(
                "IMAP server {} answered {name} with {} unreadable response(s), the first: {err}",
                self.peer, out.skipped_count
            )));
        }
        Ok((st, out))
    }

    /// The error for a LOGIN/AUTHENTICATE the server refused.
    pub(crate) fn auth_error(
        &self,
        mechanism: &str,
        st: &StatusResponse,
        secret: &str,
        extra: Option<&str>,
    ) -> Error {
        let kind = match crate::imap::failure::kind_of(st, Side::Read) {
            ErrorKind::Transient => ErrorKind::Transient,
            ErrorKind::Tls => ErrorKind::Tls,
            ErrorKind::Protocol => ErrorKind::Protocol,
            _ => ErrorKind::Auth,
        };
        let user = self.user.as_deref().unwrap_or("?");
        let text = scrub(st.text.trim().trim_end_matches('.'), secret);
        let extra = extra
            .map(|e| format!(" ({})", scrub(e, secret)))
            .unwrap_or_default();
        let advice = match (kind, mechanism) {
            (ErrorKind::Transient, _) => "the server is busy or temporarily refusing logins; retry later",
            (ErrorKind::Tls, _) => {
                "the server only accepts logins over an encrypted connection; use TLS or STARTTLS"
            }
            (_, "XOAUTH2") => {
                "the access token was rejected or has expired; obtain a fresh OAuth2 token for this account"
            }
            _ => {
                "check the user name and password; many providers (QQ/Tencent Exmail, NetEase 163/126, Gmail, Outlook) \
                 need an app password or authorization code for IMAP, and IMAP access may have to be enabled in the webmail settings first"
            }
        };
        let code = st
            .code
            .as_ref()
            .map(|c| format!("[{}] ", crate::imap::failure::code_name(c)))
            .unwrap_or_default();
        Error::new(
            kind,
            format!(
                "IMAP server {} rejected the login of {user} ({mechanism}): {code}{text}{extra}; {advice}",
                self.host
            ),
        )
        .with_source(crate::imap::CommandFailed {
            command: if mechanism == "LOGIN" {
                "LOGIN"
            } else {
                "AUTHENTICATE"
            },
            status: st.status,
            code: st.code.clone(),
            text,
        })
    }
}

impl<S> Session<S> {
    /// The same session over `stream` (STARTTLS swaps the plaintext stream for TLS), and
    /// the stream it had.
    fn replace_stream<T>(self, stream: T) -> (S, Session<T>) {
        let Session {
            stream: old,
            decoder,
            encoder,
            timer,
            options,
            peer,
            host,
            timeout,
            user,
            greeting,
            capabilities,
            capability_updates,
            enabled,
            state,
            selected,
            unsolicited,
            unsolicited_pushed,
            unsolicited_dropped,
            pending,
            idling,
            early,
            busy,
            closed,
        } = self;
        let session = Session {
            stream,
            decoder,
            encoder,
            timer,
            options,
            peer,
            host,
            timeout,
            user,
            greeting,
            capabilities,
            capability_updates,
            enabled,
            state,
            selected,
            unsolicited,
            unsolicited_pushed,
            unsolicited_dropped,
            pending,
            idling,
            early,
            busy,
            closed,
        };
        (old, session)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<MaybeTls<S>> {
    /// Sets up a session over `stream`, a fresh connection to `server`: the TLS handshake
    /// first for [`Security::Tls`], STARTTLS after the greeting for [`Security::StartTls`]
    /// (failing if the server does not offer it), nothing for [`Security::Plaintext`].
    /// Needs no runtime.
    pub async fn establish(
        stream: S,
        server: &ServerConfig,
        timer: Arc<dyn Timer>,
        options: SessionOptions,
    ) -> Result<Self> {
        match server.security {
            Security::Tls => {
                let connector = TlsConnector::new(&server.tls)?;
                let what = format!("the TLS handshake with {server}");
                let tls = with_timeout(
                    &*timer,
                    server.timeout,
                    &what,
                    connector.connect(&server.host, stream),
                )
                .await??;
                Session::from_stream(MaybeTls::Tls(Box::new(tls)), server, timer, options).await
            }
            Security::Plaintext => {
                Session::from_stream(MaybeTls::Plain(stream), server, timer, options).await
            }
            Security::StartTls => {
                let session = Session::from_stream(MaybeTls::Plain(stream), server, timer, options).await?;
                session.starttls(&server.tls).await
            }
        }
    }

    /// Whether the connection is TLS-protected.
    pub fn is_tls(&self) -> bool {
        self.stream.is_tls()
    }

    /// Upgrades a plaintext session with STARTTLS (RFC 3501 6.2.1). Fails with
    /// [`ErrorKind::Tls`] if the server does not advertise STARTTLS, refuses it, or sends
    /// anything between its OK and the TLS handshake (those bytes could be injected by an
    /// attacker and are never read as protected). Capabilities are asked again over TLS.
    pub async fn starttls(mut self, tls: &TlsConfig) -> Result<Self> {
        if self.stream.is_tls() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "STARTTLS on a connection that is already TLS",
            ));
        }
        if self.greeting.preauth {
            return Err(Error::new(
                ErrorKind::Tls,
                format!(
                    "IMAP server {} pre-authenticated the plaintext connection, so STARTTLS is impossible; connect with implicit TLS instead",
                    self.peer
                ),
            ));
        }
        if self.capabilities.atoms.is_empty() {
            self.refresh_capabilities().await?;
        }
        if !self.capabilities.has("STARTTLS") {
            self.poison("STARTTLS not offered");
            return Err(Error::new(
                ErrorKind::Tls,
                format!(
                    "IMAP server {} does not offer STARTTLS, and the connection must not continue unencrypted; use implicit TLS (imaps, usually port 993)",
                    self.peer
                ),
            ));
        }
        let (st, _) = self.run(&Command::StartTls, "STARTTLS", nothing).await?;
        if st.status != Status::Ok {
            self.poison("STARTTLS refused");
            return Err(Error::new(
                ErrorKind::Tls,
                format!(
                    "IMAP server {} refused STARTTLS: {:?} {}; use implicit TLS (imaps, usually port 993)",
                    self.peer,
                    st.status,
                    st.text.trim()
                ),
            ));
        }
        let injected = self.decoder.buffered();
        if injected != 0 {
            self.poison("plaintext after STARTTLS");
            return Err(Error::new(
                ErrorKind::Tls,
                format!(
                    "IMAP server {} sent {injected} unencrypted byte(s) after accepting STARTTLS and before the TLS handshake; \
                     someone may be tampering with the connection, so it was closed",
                    self.peer
                ),
            ));
        }
        let connector = TlsConnector::new(tls)?;
        let host = self.host.clone();
        let what = format!("the TLS handshake with {}", self.peer);
        let (stream, rest) = self.replace_stream(());
        let MaybeTls::Plain(plain) = stream else {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "STARTTLS on a connection that is already TLS",
            ));
        };
        let tls_stream =
            with_timeout(&*rest.timer, rest.timeout, &what, connector.connect(&host, plain)).await??;
        let (_, mut session) = rest.replace_stream(MaybeTls::Tls(Box::new(tls_stream)));
        // RFC 3501 6.2.1: what the server said before TLS is not to be trusted.
        session.capabilities = Capabilities::default();
        session.refresh_capabilities().await?;
        Ok(session)
    }
}

/// Connects to `server` over TCP (tokio) and sets up the session as its `security` says.
///
/// ```no_run
/// # async fn demo() -> mailmigrate::Result<()> {
/// use std::sync::Arc;
/// use mailmigrate::Credentials;
/// use mailmigrate::imap::{self, SessionOptions};
/// use mailmigrate::net::{Security, ServerConfig, TokioTimer};
/// let server = ServerConfig::new("imap.example.com", 993, Security::Tls);
/// let mut session = imap::connect(&server, Arc::new(TokioTimer), SessionOptions::default()).await?;
/// session.login(&Credentials::password("alice@example.com", "app-password")).await?;
/// for folder in session.list_all().await? {
///     println!("{}", folder.name);
/// }
/// session.logout().await
/// # }
/// ```
#[cfg(feature = "tokio")]
pub async fn connect(
    server: &ServerConfig,
    timer: Arc<dyn Timer>,
    options: SessionOptions,
) -> Result<Session<MaybeTls<crate::net::TcpStream>>> {
    let tcp = crate::net::connect_tcp(server).await?;
    Session::establish(tcp, server, timer, options).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn sized(lengths: &[usize]) -> Vec<AppendMessage> {
        lengths
            .iter()
            .map(|&n| AppendMessage {
                flags: Vec::new(),
                internal_date: None,
                message: Bytes::from(vec![b'x'; n]),
            })
            .collect()
    }

    fn split(limits: MultiAppendLimits, lengths: &[usize]) -> Vec<Vec<usize>> {
        let messages = sized(lengths);
        limits
            .split(&messages)
            .into_iter()
            .map(|chunk| chunk.iter().map(|m| m.message.len()).collect())
            .collect()
    }

    #[test]
    fn multiappend_chunks_keep_order_and_stay_within_both_limits() {
        let limits = MultiAppendLimits {
            max_messages: 3,
            max_bytes: 10,
        };
        assert_eq!(
            split(limits, &[1, 2, 3, 4, 5, 20, 1, 9, 1, 1, 1, 1]),
            vec![
                vec![1, 2, 3],
                vec![4, 5],
                vec![20],
                vec![1, 9],
                vec![1, 1, 1],
                vec![1]
            ]
        );
        assert!(split(limits, &[]).is_empty());
        // Nonsense limits still make progress: one message per command.
        let zero = MultiAppendLimits {
            max_messages: 0,
            max_bytes: 0,
        };
        assert_eq!(split(zero, &[1, 2]), vec![vec![1], vec![2]]);
    }
}
