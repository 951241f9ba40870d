use std::collections::HashMap;
use std::fmt;

/// A message's content identity: a hash of its header section plus its exact size.
///
/// The engine uses fingerprints only when it cannot trust UIDs (the source's UIDVALIDITY
/// changed, or the state was lost): a source message whose fingerprint the target already
/// holds is not copied again. Within one copy pass UIDs decide, so two identical messages in
/// one folder are both copied. The header section is hashed, not the body, so both sides can
/// compute it cheaply (`BODY.PEEK[HEADER]` and `RFC822.SIZE` over IMAP).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Fingerprint {
    header_hash: [u8; 16],
    size: u64,
}

impl Fingerprint {
    /// The fingerprint of a whole raw message.
    ///
    /// ```
    /// use mailmigrate::sync::Fingerprint;
    /// let msg = b"Subject: hi\r\nMessage-ID: <1@x>\r\n\r\nbody\r\n";
    /// let header = b"Subject: hi\r\nMessage-ID: <1@x>\r\n\r\n";
    /// assert_eq!(Fingerprint::of_message(msg), Fingerprint::of_header(header, msg.len() as u64));
    /// ```
    pub fn of_message(raw: &[u8]) -> Self {
        Self::of_header(header_section(raw), raw.len() as u64)
    }

    /// The fingerprint from a message's header section (up to and including the blank line,
    /// as IMAP's `BODY[HEADER]` returns it) and its total size in bytes.
    pub fn of_header(header: &[u8], size: u64) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, header);
        let mut header_hash = [0u8; 16];
        header_hash.copy_from_slice(&digest.as_ref()[..16]);
        Fingerprint { header_hash, size }
    }

    /// The message size this fingerprint was made with.
    pub fn size(&self) -> u64 {
        self.size
    }
}

/// The header section of a raw message: everything up to and including the first empty line
/// (CRLF CRLF, or LF LF for bare-LF messages), or the whole message if it has no body.
fn header_section(raw: &[u8]) -> &[u8] {
    let crlf = raw.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4);
    // An LF LF after the first CRLF CRLF cannot end the header: don't scan a CRLF message's
    // whole body for one (that was a quarter of the engine's CPU time).
    let before_crlf = &raw[..crlf.unwrap_or(raw.len())];
    let lf = before_crlf.windows(2).position(|w| w == b"\n\n").map(|p| p + 2);
    let end = match (crlf, lf) {
        (Some(a), Some(b)) => a.min(b),
        (Some(a), None) => a,
        (None, Some(b)) => b,
        (None, None) => raw.len(),
    };
    &raw[..end]
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint(")?;
        for b in &self.header_hash[..6] {
            write!(f, "{b:02x}")?;
        }
        write!(f, "…/{})", self.size)
    }
}

/// A multiset of fingerprints: how many messages with each fingerprint a folder holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FingerprintCounts {
    counts: HashMap<Fingerprint, u32>,
}

impl FingerprintCounts {
    /// An empty multiset.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one message with `fingerprint`.
    pub fn add(&mut self, fingerprint: Fingerprint) {
        *self.counts.entry(fingerprint).or_insert(0) += 1;
    }

    /// Removes one message with `fingerprint`; returns whether there was one.
    pub fn take(&mut self, fingerprint: &Fingerprint) -> bool {
        match self.counts.get_mut(fingerprint) {
            Some(n) if *n > 1 => {
                *n -= 1;
                true
            }
            Some(_) => {
                self.counts.remove(fingerprint);
                true
            }
            None => false,
        }
    }

    /// How many messages with `fingerprint`.
    pub fn count(&self, fingerprint: &Fingerprint) -> u32 {
        self.counts.get(fingerprint).copied().unwrap_or(0)
    }

    /// How many messages in all.
    pub fn total(&self) -> u64 {
        self.counts.values().map(|&n| u64::from(n)).sum()
    }
}

impl FromIterator<Fingerprint> for FingerprintCounts {
    fn from_iter<I: IntoIterator<Item = Fingerprint>>(iter: I) -> Self {
        let mut counts = FingerprintCounts::new();
        for fp in iter {
            counts.add(fp);
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_messages_count_twice_and_are_taken_one_at_a_time() {
        let a = Fingerprint::of_message(b"Message-ID: <a@x>\r\n\r\nsame\r\n");
        let mut counts: FingerprintCounts = [a, a].into_iter().collect();
        assert_eq!(counts.count(&a), 2);
        assert!(counts.take(&a));
        assert!(counts.take(&a));
        assert!(!counts.take(&a));
        assert_eq!(counts.total(), 0);
    }

    #[test]
    fn size_and_headers_both_distinguish() {
        let a = Fingerprint::of_message(b"Message-ID: <a@x>\r\n\r\nbody\r\n");
        let b = Fingerprint::of_message(b"Message-ID: <a@x>\r\n\r\nbody!\r\n");
        let c = Fingerprint::of_message(b"Message-ID: <b@x>\r\n\r\nbody\r\n");
        assert_ne!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn headerless_and_bare_lf_messages_have_fingerprints() {
        assert_eq!(header_section(b"no blank line"), b"no blank line");
        assert_eq!(header_section(b"A: b\n\nbody\r\n\r\n"), b"A: b\n\n");
    }

    #[test]
    fn the_header_ends_at_the_first_blank_line_of_either_kind() {
        assert_eq!(header_section(b"A: b\r\n\r\nbody\n\nmore\n"), b"A: b\r\n\r\n");
        assert_eq!(header_section(b"A: b\r\n\nbody\r\n\r\n"), b"A: b\r\n\n");
        assert_eq!(header_section(b"A: b\r\n\r\n"), b"A: b\r\n\r\n");
    }
}
