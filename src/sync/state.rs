use std::collections::BTreeSet;

use bytes::Bytes;

use crate::UidSet;
use crate::imap::codec::MailboxName;

/// The version of the serialised [`SyncState`] format written by this crate.
pub const STATE_FORMAT: u32 = 1;

/// Everything the engine needs to resume an account without copying anything twice.
///
/// The host persists it (the engine hands it over through
/// [`Migrator::save_state`](crate::sync::Migrator::save_state)); with the `serde` feature it
/// serialises to a documented format, e.g. as JSON:
///
/// ```json
/// {
///   "format": 1,
///   "folders": [
///     { "source": "INBOX", "target": ["INBOX"], "uid_validity": 1700000000,
///       "copied": "1:2500,2502:2600", "highest_modseq": 4012 },
///     { "source": {"hex": "d2d1b7a2cbcd"}, "target": ["Sent"], "uid_validity": 7, "copied": "" }
///   ],
///   "pop3": { "copied_uidls": ["000001a2", "000001a3"] }
/// }
/// ```
///
/// `source` is the folder's name exactly as the source server sent it: a string when it is
/// UTF-8 (modified UTF-7 names are ASCII), `{"hex": ...}` otherwise. `copied` is a UID set in
/// IMAP syntax. A reader must refuse a `format` it does not know.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SyncState {
    /// Always [`STATE_FORMAT`] when written by this version.
    pub format: u32,
    /// One entry per source folder that has been started.
    pub folders: Vec<FolderState>,
    /// Set when the source is POP3.
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "Option::is_none"))]
    pub pop3: Option<Pop3State>,
}

impl SyncState {
    /// An empty state in the current format.
    pub fn new() -> Self {
        SyncState {
            format: STATE_FORMAT,
            folders: Vec::new(),
            pop3: None,
        }
    }

    /// The state of the source folder named `source` (raw bytes), if any.
    pub fn folder(&self, source: &MailboxName) -> Option<&FolderState> {
        self.folders.iter().find(|f| f.source.0 == source.raw())
    }

    /// The state of the source folder named `source`, created empty if missing.
    pub fn folder_mut(&mut self, source: &MailboxName) -> &mut FolderState {
        match self.folders.iter().position(|f| f.source.0 == source.raw()) {
            Some(i) => &mut self.folders[i],
            None => {
                self.folders.push(FolderState {
                    source: RawName(source.raw_bytes().clone()),
                    target: Vec::new(),
                    uid_validity: 0,
                    copied: UidSet::new(),
                    highest_modseq: None,
                    uid_next: None,
                });
                let last = self.folders.len() - 1;
                &mut self.folders[last]
            }
        }
    }

    /// How many messages the state records as copied, over all folders and POP3.
    pub fn copied_count(&self) -> u64 {
        let imap: u64 = self.folders.iter().map(|f| f.copied.len()).sum();
        imap + self.pop3.as_ref().map_or(0, |p| p.copied_uidls.len() as u64)
    }
}

/// Progress of one source folder.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct FolderState {
    /// The source folder's name as the server sent it.
    pub source: RawName,
    /// The target folder's path (components) it is copied into.
    pub target: Vec<String>,
    /// The source folder's UIDVALIDITY the `copied` UIDs belong to. When the source reports
    /// another value, these UIDs mean nothing any more and fingerprints decide.
    pub uid_validity: u32,
    /// Source UIDs already stored in the target (or deliberately skipped, e.g. too large).
    pub copied: UidSet,
    /// The source's HIGHESTMODSEQ at the last completed pass, when it supports CONDSTORE.
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "Option::is_none"))]
    pub highest_modseq: Option<u64>,
    /// The source's UIDNEXT when the last pass over the folder completed without failures.
    /// New mail always raises UIDNEXT, so an unchanged value (under the same UIDVALIDITY)
    /// lets a re-run skip the folder after one STATUS.
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "Option::is_none"))]
    pub uid_next: Option<u32>,
}

/// Progress of a POP3 source (its inbox).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Pop3State {
    /// The UIDLs (or TOP-header fingerprints where the server lacks UIDL) already stored.
    pub copied_uidls: BTreeSet<String>,
}

/// A folder name exactly as a server sent it; serialises as a string when it is UTF-8 and as
/// `{"hex": "..."}` otherwise, so 8-bit names survive a round trip through JSON.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RawName(pub Bytes);

impl RawName {
    /// The name as a [`MailboxName`].
    pub fn to_mailbox_name(&self) -> MailboxName {
        MailboxName::from_raw(self.0.clone())
    }
}

#[cfg(feature = "serde")]
mod raw_name_serde {
    use super::RawName;
    use bytes::Bytes;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Repr<'a> {
        Text(std::borrow::Cow<'a, str>),
        Hex { hex: String },
    }

    impl Serialize for RawName {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            match std::str::from_utf8(&self.0) {
                Ok(text) => Repr::Text(text.into()).serialize(serializer),
                Err(_) => {
                    let hex = self.0.iter().map(|b| format!("{b:02x}")).collect();
                    Repr::Hex { hex }.serialize(serializer)
                }
            }
        }
    }

    impl<'de> Deserialize<'de> for RawName {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            match Repr::deserialize(deserializer)? {
                Repr::Text(text) => Ok(RawName(Bytes::copy_from_slice(text.as_bytes()))),
                Repr::Hex { hex } => {
                    let bad = || serde::de::Error::custom("folder name: 'hex' must be pairs of hex digits");
                    if hex.len() % 2 != 0 {
                        return Err(bad());
                    }
                    let bytes = (0..hex.len())
                        .step_by(2)
                        .map(|i| hex.get(i..i + 2).and_then(|p| u8::from_str_radix(p, 16).ok()))
                        .collect::<Option<Vec<u8>>>()
                        .ok_or_else(bad)?;
                    Ok(RawName(Bytes::from(bytes)))
                }
            }
        }
    }
}

#[cfg(all(test, feature = "serde"))]
mod tests {
    use super::*;
    use crate::Uid;

    #[test]
    fn state_round_trips_through_json_with_8bit_names_and_compact_uid_sets() {
        let mut state = SyncState::new();
        let inbox = MailboxName::from_raw(&b"INBOX"[..]);
        let gbk = MailboxName::from_raw(&b"\xd2\xd1\xb7\xa2\xcb\xcd"[..]);
        let f = state.folder_mut(&inbox);
        f.uid_validity = 1_700_000_000;
        f.copied = (1..=25_000).filter_map(Uid::new).collect();
        f.target = vec!["INBOX".into()];
        state.folder_mut(&gbk).uid_validity = 7;
        state.pop3 = Some(Pop3State {
            copied_uidls: ["a".to_string()].into(),
        });

        let json = serde_json::to_string(&state).unwrap();
        assert!(json.contains(r#""copied":"1:25000""#), "{json}");
        assert!(json.contains(r#"{"hex":"d2d1b7a2cbcd"}"#), "{json}");
        assert!(json.len() < 400, "{} bytes", json.len());
        let back: SyncState = serde_json::from_str(&json).unwrap();
        assert_eq!(back, state);
        assert_eq!(back.folder(&gbk).map(|f| f.uid_validity), Some(7));
        assert_eq!(back.copied_count(), 25_001);
    }

    #[test]
    fn malformed_hex_names_are_rejected_with_a_clear_message() {
        let json =
            r#"{"format":1,"folders":[{"source":{"hex":"zz"},"target":[],"uid_validity":1,"copied":""}]}"#;
        let err = serde_json::from_str::<SyncState>(json).unwrap_err().to_string();
        assert!(err.contains("did not match") || err.contains("hex"), "{err}");
    }
}
