//! What the server tells us without being asked.

use crate::Uid;
use crate::UidSet;
use crate::imap::codec::{Capabilities, Data, Flag};

/// A response the server sent on its own (RFC 3501 7: any response may come at any time),
/// queued by the session for the caller to drain with
/// [`Session::take_unsolicited`](crate::imap::Session::take_unsolicited).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Unsolicited {
    /// `* n EXISTS`: the selected folder now holds `n` messages (new mail arrived).
    Exists(u32),
    /// `* n RECENT`
    Recent(u32),
    /// `* n EXPUNGE`: message number `n` is gone; later numbers shift down by one.
    Expunge(u32),
    /// `* VANISHED` (QRESYNC): these UIDs are gone.
    Vanished {
        /// Whether this answers a command (`EARLIER`) rather than reporting a live expunge.
        earlier: bool,
        /// The UIDs.
        uids: UidSet,
    },
    /// A FETCH nobody asked for: usually another client changed a message's flags.
    Fetch {
        /// Message sequence number.
        seq: u32,
        /// The UID, when the server sent it.
        uid: Option<Uid>,
        /// The new flags, when sent.
        flags: Option<Vec<Flag>>,
        /// The new MODSEQ (CONDSTORE), when sent.
        modseq: Option<u64>,
    },
    /// `* FLAGS (...)`: the folder's defined flags changed.
    Flags(Vec<Flag>),
    /// New capabilities (`* CAPABILITY` or a `[CAPABILITY]` code).
    Capability(Capabilities),
    /// `[ALERT] text`: must be shown to the person running the migration.
    Alert(String),
    /// `* NO ...` / `* BAD ...`: a warning from the server.
    Warning(String),
    /// `* BYE ...`: the server is closing the connection.
    Bye(String),
    /// Any other untagged data that arrived outside the command that asks for it.
    Other(Data),
}
