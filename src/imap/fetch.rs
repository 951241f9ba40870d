//! `UID FETCH` as a stream that hands out each message as soon as its response is complete.

use bytes::Bytes;
use futures::io::{AsyncRead, AsyncWrite};

use crate::imap::Session;
use crate::imap::Unsolicited;
use crate::imap::codec::{Code, Command, Data, Fetch, Flag, InternalDate, Status, Tag};
use crate::imap::failure::Side;
use crate::imap::session::{Completion, Incoming, Step};
use crate::{Error, Result, Uid, UidSet};

/// Split responses of different messages held at once while waiting for their missing
/// parts; bounds memory when a server splits FETCH responses in odd ways.
const MAX_PARTIAL: usize = 8;

/// What to fetch for each message (the UID always comes too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FetchItems {
    /// `FLAGS`
    pub flags: bool,
    /// `INTERNALDATE`
    pub internal_date: bool,
    /// `RFC822.SIZE`
    pub size: bool,
    /// `BODY.PEEK[]`: the whole message, without setting `\Seen`.
    pub body: bool,
    /// `MODSEQ` (only sent when the server advertises CONDSTORE).
    pub modseq: bool,
    /// `BODY.PEEK[HEADER]`: the header section only, for fingerprints.
    pub header: bool,
}

impl FetchItems {
    /// What a migration copies: `(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])`.
    pub const MIGRATION: FetchItems = FetchItems {
        flags: true,
        internal_date: true,
        size: true,
        body: true,
        modseq: false,
        header: false,
    };

    /// Everything but the body: for listing what a folder holds.
    pub const ENVELOPE: FetchItems = FetchItems {
        flags: true,
        internal_date: true,
        size: true,
        body: false,
        modseq: false,
        header: false,
    };

    /// What a fingerprint needs: `(UID RFC822.SIZE BODY.PEEK[HEADER])`.
    pub const FINGERPRINT: FetchItems = FetchItems {
        flags: false,
        internal_date: false,
        size: true,
        body: false,
        modseq: false,
        header: true,
    };

    /// The items in IMAP syntax, e.g. `(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])`.
    pub fn to_imap(&self, condstore: bool) -> String {
        let mut items = vec!["UID"];
        if self.flags {
            items.push("FLAGS");
        }
        if self.internal_date {
            items.push("INTERNALDATE");
        }
        if self.size {
            items.push("RFC822.SIZE");
        }
        if self.modseq && condstore {
            items.push("MODSEQ");
        }
        if self.body {
            items.push("BODY.PEEK[]");
        }
        if self.header {
            items.push("BODY.PEEK[HEADER]");
        }
        format!("({})", items.join(" "))
    }

    /// Whether `fetch` carries everything asked for (INTERNALDATE excepted: it reads as
    /// `None` when the server sends NIL, so waiting for it could wait forever).
    fn complete(&self, fetch: &Fetch, condstore: bool) -> bool {
        fetch.uid.is_some()
            && (!self.body || fetch.body.is_some())
            && (!self.header || fetch.header.is_some())
            && (!self.size || fetch.size.is_some())
            && (!self.flags || fetch.flags.is_some())
            && (!(self.modseq && condstore) || fetch.modseq.is_some())
    }
}

/// One fetched message.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchedMessage {
    /// Its UID.
    pub uid: Uid,
    /// Its sequence number at the time of the fetch.
    pub seq: u32,
    /// Its flags (empty if not asked for).
    pub flags: Vec<Flag>,
    /// INTERNALDATE, if asked for and readable.
    pub internal_date: Option<InternalDate>,
    /// RFC822.SIZE, if asked for.
    pub size: Option<u32>,
    /// The whole message, if asked for: a slice of the read buffer, not a copy.
    pub body: Option<Bytes>,
    /// The header section, if asked for (`BODY.PEEK[HEADER]`).
    pub header: Option<Bytes>,
    /// MODSEQ, if asked for under CONDSTORE.
    pub modseq: Option<u64>,
}

/// The messages of one `UID FETCH`, each handed out as soon as its response is complete.
/// Only the message in hand is held in memory, not the folder.
///
/// Call [`FetchStream::next`] until it returns `None`, or turn it into a
/// [`futures::Stream`] with [`FetchStream::into_stream`]. Dropping it early is allowed: the
/// session reads and discards the rest before its next command.
///
/// A FETCH response the server sends on its own (a flag change by another client) goes to
/// the session's unsolicited queue, not to this stream.
pub struct FetchStream<'a, S> {
    session: &'a mut Session<S>,
    /// `None` once the tagged completion was read (or the stream failed).
    tag: Option<Tag>,
    uids: UidSet,
    items: FetchItems,
    condstore: bool,
    partial: Vec<Fetch>,
    ready: std::collections::VecDeque<FetchedMessage>,
    codes: Vec<Code>,
    /// The command's failure, returned once the messages before it are handed out.
    failure: Option<Error>,
}

impl<S> std::fmt::Debug for FetchStream<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FetchStream")
            .field("tag", &self.tag)
            .field("uids", &self.uids)
            .field("items", &self.items)
            .finish_non_exhaustive()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    /// Starts `UID FETCH uids items` in the selected folder and returns the stream of
    /// messages. An empty `uids` sends nothing and yields nothing.
    pub async fn uid_fetch(&mut self, uids: &UidSet, items: FetchItems) -> Result<FetchStream<'_, S>> {
        let condstore = self.capabilities.has("CONDSTORE");
        let mut stream = FetchStream {
            session: self,
            tag: None,
            uids: uids.clone(),
            items,
            condstore,
            partial: Vec::new(),
            ready: std::collections::VecDeque::new(),
            codes: Vec::new(),
            failure: None,
        };
        if uids.is_empty() {
            return Ok(stream);
        }
        let text = items.to_imap(condstore);
        let command = Command::UidFetch {
            uids,
            items: &text,
            changed_since: None,
        };
        stream.session.ready().await?;
        let mut out = Completion::default();
        let (tag, rejected) = stream
            .session
            .send(&command, "UID FETCH", is_fetch, &mut out)
            .await?;
        if let Some(st) = rejected {
            return Err(stream.session.failed("UID FETCH", None, st, Side::Read));
        }
        for data in out.data {
            if let Data::Fetch(fetch) = data {
                stream.accept(*fetch);
            }
        }
        stream.tag = Some(tag);
        Ok(stream)
    }

    /// [`Session::uid_fetch`] with [`FetchItems::MIGRATION`]: UID, flags, internal date,
    /// size and the whole message.
    pub async fn fetch_messages(&mut self, uids: &UidSet) -> Result<FetchStream<'_, S>> {
        self.uid_fetch(uids, FetchItems::MIGRATION).await
    }
}

fn is_fetch(data: &Data) -> bool {
    matches!(data, Data::Fetch(_))
}

impl<'a, S: AsyncRead + AsyncWrite + Unpin + Send> FetchStream<'a, S> {
    /// The next message; `None` once the server completed the command. After an error
    /// caused by the connection (network, timeout, BYE) the stream ends; after a response
    /// the codec could not read (`ErrorKind::Protocol`) it goes on.
    pub async fn next(&mut self) -> Option<Result<FetchedMessage>> {
        loop {
            if let Some(message) = self.ready.pop_front() {
                return Some(Ok(message));
            }
            if let Some(err) = self.failure.take() {
                return Some(Err(err));
            }
            let tag = self.tag.clone()?;
            let what = format!("messages from IMAP server {}", self.session.peer);
            let response = match self.session.read_incoming(&what).await {
                Ok(Incoming::Response(response)) => response,
                Ok(Incoming::Skipped(err)) => {
                    return Some(Err(Error::protocol(format!(
                        "IMAP server {} sent a FETCH response that could not be read, so a message may be missing \
                         from this fetch: {err}",
                        self.session.peer
                    ))));
                }
                Err(err) => {
                    self.tag = None;
                    return Some(Err(err));
                }
            };
            match self.session.dispatch(response, is_fetch, &mut self.codes) {
                Step::Data(Data::Fetch(fetch)) => {
                    if let Some(message) = self.accept(*fetch) {
                        return Some(Ok(message));
                    }
                }
                Step::Data(_) | Step::Handled | Step::Continue(_) => {}
                Step::Tagged(st) => {
                    if let Some(st) = self.session.complete(&tag, st) {
                        self.tag = None;
                        self.flush_partial();
                        if st.status != Status::Ok {
                            // e.g. `NO [EXPUNGEISSUED]`: the messages sent before it are good.
                            self.failure = Some(self.session.failed("UID FETCH", None, st, Side::Read));
                        }
                    }
                }
                Step::Bye(text) => {
                    self.tag = None;
                    return Some(Err(self.session.bye_error("UID FETCH", &text)));
                }
            }
        }
    }

    /// The stream as a [`futures::Stream`] (boxed, so it is `Unpin` and `Send`).
    pub fn into_stream(self) -> futures::stream::BoxStream<'a, Result<FetchedMessage>>
    where
        S: 'a,
    {
        futures::StreamExt::boxed(futures::stream::unfold(self, |mut stream| async move {
            let item = stream.next().await?;
            Some((item, stream))
        }))
    }

    /// Takes one FETCH response: a complete message of ours, a part to hold, or an
    /// unsolicited event.
    fn accept(&mut self, fetch: Fetch) -> Option<FetchedMessage> {
        let fetch = match self.partial.iter().position(|p| p.seq == fetch.seq) {
            Some(i) => merge(self.partial.swap_remove(i), fetch),
            None => fetch,
        };
        if fetch.uid.is_some_and(|uid| !self.uids.contains(uid)) {
            self.unsolicited(fetch);
            return None;
        }
        if self.items.complete(&fetch, self.condstore) {
            return message(fetch);
        }
        if self.partial.len() >= MAX_PARTIAL {
            let oldest = self.partial.remove(0);
            if let Some(message) = self.settle(oldest) {
                self.ready.push_back(message);
            }
        }
        self.partial.push(fetch);
        None
    }

    /// At the end: parts that hold a message of ours become messages, the rest are flag
    /// updates.
    fn flush_partial(&mut self) {
        for fetch in std::mem::take(&mut self.partial) {
            if let Some(message) = self.settle(fetch) {
                self.ready.push_back(message);
            }
        }
    }

    fn settle(&mut self, fetch: Fetch) -> Option<FetchedMessage> {
        let ours =
            fetch.uid.is_some_and(|u| self.uids.contains(u)) && (!self.items.body || fetch.body.is_some());
        if ours {
            message(fetch)
        } else {
            self.unsolicited(fetch);
            None
        }
    }

    fn unsolicited(&mut self, fetch: Fetch) {
        self.session.push_unsolicited(Unsolicited::Fetch {
            seq: fetch.seq,
            uid: fetch.uid,
            flags: fetch.flags,
            modseq: fetch.modseq,
        });
    }
}

fn merge(mut a: Fetch, b: Fetch) -> Fetch {
    a.uid = b.uid.or(a.uid);
    a.flags = b.flags.or(a.flags);
    a.internal_date = b.internal_date.or(a.internal_date);
    a.size = b.size.or(a.size);
    a.body = b.body.or(a.body);
    a.header = b.header.or(a.header);
    a.modseq = b.modseq.or(a.modseq);
    a
}

fn message(fetch: Fetch) -> Option<FetchedMessage> {
    Some(FetchedMessage {
        uid: fetch.uid?,
        seq: fetch.seq,
        flags: fetch.flags.unwrap_or_default(),
        internal_date: fetch.internal_date,
        size: fetch.size,
        body: fetch.body,
        header: fetch.header,
        modseq: fetch.modseq,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migration_items_are_the_standard_set() {
        assert_eq!(
            FetchItems::MIGRATION.to_imap(false),
            "(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])"
        );
        let with_modseq = FetchItems {
            modseq: true,
            ..FetchItems::ENVELOPE
        };
        assert_eq!(
            with_modseq.to_imap(true),
            "(UID FLAGS INTERNALDATE RFC822.SIZE MODSEQ)"
        );
        assert_eq!(with_modseq.to_imap(false), "(UID FLAGS INTERNALDATE RFC822.SIZE)");
    }

    #[test]
    fn split_responses_merge_later_parts_over_earlier_ones() {
        let a = Fetch {
            seq: 3,
            uid: None,
            flags: Some(vec![Flag::Seen]),
            internal_date: None,
            size: None,
            body: None,
            header: None,
            modseq: None,
        };
        let b = Fetch {
            seq: 3,
            uid: Uid::new(9),
            flags: None,
            internal_date: None,
            size: Some(5),
            body: Some(Bytes::from_static(b"hello")),
            header: None,
            modseq: None,
        };
        let merged = merge(a, b);
        assert_eq!(merged.uid, Uid::new(9));
        assert_eq!(merged.flags, Some(vec![Flag::Seen]));
        assert_eq!(merged.body.as_deref(), Some(&b"hello"[..]));
        assert!(FetchItems::MIGRATION.complete(&merged, false));
    }
}
