//! Message UIDs and compact sets of them.

use std::fmt;
use std::num::NonZeroU32;

/// An IMAP message UID: a non-zero 32-bit number, unique within one folder for one
/// UIDVALIDITY (RFC 3501 2.3.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(transparent))]
pub struct Uid(NonZeroU32);

impl Uid {
    /// The smallest UID.
    pub const MIN: Uid = Uid(NonZeroU32::MIN);
    /// The largest UID.
    pub const MAX: Uid = Uid(NonZeroU32::MAX);

    /// `None` for 0, which is not a UID.
    pub fn new(value: u32) -> Option<Uid> {
        NonZeroU32::new(value).map(Uid)
    }

    /// The number.
    pub fn get(self) -> u32 {
        self.0.get()
    }
}

impl fmt::Display for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A set of UIDs stored as sorted, disjoint, non-adjacent inclusive ranges, so the
/// 25,000 UIDs of a folder with few gaps take a few bytes, not kilobytes.
///
/// ```
/// use mailmigrate::{Uid, UidSet};
/// let mut set = UidSet::new();
/// for n in [1, 2, 3, 7, 5, 6] {
///     set.insert(Uid::new(n).unwrap());
/// }
/// assert_eq!(set.to_string(), "1:3,5:7");
/// assert_eq!(set.len(), 6);
/// assert!(!set.contains(Uid::new(4).unwrap()));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct UidSet {
    /// Sorted, disjoint, non-adjacent `(first, last)` pairs with `first <= last`.
    ranges: Vec<(u32, u32)>,
}

impl UidSet {
    /// The empty set.
    pub fn new() -> Self {
        UidSet::default()
    }

    /// All UIDs from `first` to `last` inclusive (empty when `first > last`).
    pub fn range(first: Uid, last: Uid) -> Self {
        let mut set = UidSet::new();
        set.insert_range(first, last);
        set
    }

    /// Whether the set holds no UID.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// How many UIDs the set holds.
    pub fn len(&self) -> u64 {
        self.ranges.iter().map(|&(a, b)| u64::from(b - a) + 1).sum()
    }

    /// How many ranges the set is made of (its storage size).
    pub fn range_count(&self) -> usize {
        self.ranges.len()
    }

    /// The ranges, in ascending order.
    pub fn ranges(&self) -> impl Iterator<Item = (Uid, Uid)> + '_ {
        self.ranges.iter().map(|&(a, b)| (uid(a), uid(b)))
    }

    /// The smallest UID in the set.
    pub fn first(&self) -> Option<Uid> {
        self.ranges.first().map(|&(a, _)| uid(a))
    }

    /// The largest UID in the set.
    pub fn last(&self) -> Option<Uid> {
        self.ranges.last().map(|&(_, b)| uid(b))
    }

    /// Whether `uid` is in the set.
    pub fn contains(&self, uid: Uid) -> bool {
        let n = uid.get();
        self.ranges
            .binary_search_by(|&(a, b)| {
                if b < n {
                    std::cmp::Ordering::Less
                } else if a > n {
                    std::cmp::Ordering::Greater
                } else {
                    std::cmp::Ordering::Equal
                }
            })
            .is_ok()
    }

    /// Adds one UID; returns whether it was new.
    pub fn insert(&mut self, uid: Uid) -> bool {
        if self.contains(uid) {
            return false;
        }
        self.insert_range(uid, uid);
        true
    }

    /// Adds all UIDs from `first` to `last` inclusive.
    pub fn insert_range(&mut self, first: Uid, last: Uid) {
        let (mut a, mut b) = (first.get(), last.get());
        if a > b {
            return;
        }
        // Ranges before the new one that neither overlap nor touch it.
        let start = self.ranges.partition_point(|&(_, hi)| hi.saturating_add(1) < a);
        // Ranges up to the first one that starts after the new one plus one.
        let end = self.ranges.partition_point(|&(lo, _)| lo <= b.saturating_add(1));
        if start < end {
            a = a.min(self.ranges[start].0);
            b = b.max(self.ranges[end - 1].1);
        }
        self.ranges.splice(start..end, std::iter::once((a, b)));
    }

    /// Every UID, ascending.
    pub fn iter(&self) -> impl Iterator<Item = Uid> + '_ {
        self.ranges.iter().flat_map(|&(a, b)| (a..=b).map(uid))
    }

    /// The UIDs of `self` that are not in `other`.
    pub fn difference(&self, other: &UidSet) -> UidSet {
        let mut out = Vec::new();
        let mut j = 0;
        for &(mut a, b) in &self.ranges {
            while j < other.ranges.len() && other.ranges[j].1 < a {
                j += 1;
            }
            let mut k = j;
            let mut done = false;
            while k < other.ranges.len() && other.ranges[k].0 <= b {
                let (oa, ob) = other.ranges[k];
                if oa > a {
                    out.push((a, oa - 1));
                }
                if ob >= b {
                    done = true;
                    break;
                }
                a = ob + 1;
                k += 1;
            }
            if !done {
                out.push((a, b));
            }
        }
        UidSet { ranges: out }
    }

    /// Splits the set into IMAP sequence-set strings of at most `max_uids` UIDs each,
    /// so one command never grows past what servers accept.
    pub fn chunks(&self, max_uids: u32) -> Vec<UidSet> {
        let max = u64::from(max_uids.max(1));
        let mut chunks = Vec::new();
        let mut current = UidSet::new();
        let mut count = 0u64;
        for &(mut a, b) in &self.ranges {
            loop {
                let room = max - count;
                let span = u64::from(b - a) + 1;
                if span <= room {
                    current.ranges.push((a, b));
                    count += span;
                    break;
                }
                let cut = a + (room as u32) - 1;
                current.ranges.push((a, cut));
                chunks.push(std::mem::take(&mut current));
                count = 0;
                a = cut + 1;
            }
            if count == max {
                chunks.push(std::mem::take(&mut current));
                count = 0;
            }
        }
        if !current.is_empty() {
            chunks.push(current);
        }
        chunks
    }
}

fn uid(n: u32) -> Uid {
    // Ranges only ever hold values taken from `Uid`s, so they are non-zero.
    Uid::new(n).unwrap_or(Uid::MIN)
}

impl FromIterator<Uid> for UidSet {
    fn from_iter<I: IntoIterator<Item = Uid>>(iter: I) -> Self {
        let mut uids: Vec<u32> = iter.into_iter().map(Uid::get).collect();
        uids.sort_unstable();
        let mut set = UidSet::new();
        for n in uids {
            match set.ranges.last_mut() {
                Some((_, b)) if n <= b.saturating_add(1) => *b = (*b).max(n),
                _ => set.ranges.push((n, n)),
            }
        }
        set
    }
}

impl Extend<Uid> for UidSet {
    fn extend<I: IntoIterator<Item = Uid>>(&mut self, iter: I) {
        for uid in iter {
            self.insert(uid);
        }
    }
}

/// The IMAP sequence-set form, e.g. `1:3,5,9:12`; empty for the empty set.
impl fmt::Display for UidSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, &(a, b)) in self.ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if a == b {
                write!(f, "{a}")?;
            } else {
                write!(f, "{a}:{b}")?;
            }
        }
        Ok(())
    }
}

/// Error from parsing a [`UidSet`] string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a UID set (expected numbers and ranges like 1:3,5): {0:?}")]
pub struct ParseUidSetError(String);

impl std::str::FromStr for UidSet {
    type Err = ParseUidSetError;

    /// Parses `1:3,5,9:12` (the form `Display` writes; `*` is not accepted).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut set = UidSet::new();
        if s.is_empty() {
            return Ok(set);
        }
        let err = || ParseUidSetError(s.chars().take(64).collect());
        for part in s.split(',') {
            let (a, b) = match part.split_once(':') {
                Some((a, b)) => (a, b),
                None => (part, part),
            };
            let a = a.parse::<u32>().ok().and_then(Uid::new).ok_or_else(err)?;
            let b = b.parse::<u32>().ok().and_then(Uid::new).ok_or_else(err)?;
            set.insert_range(a.min(b), a.max(b));
        }
        Ok(set)
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for UidSet {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for UidSet {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn u(n: u32) -> Uid {
        Uid::new(n).unwrap()
    }

    #[test]
    fn zero_is_not_a_uid() {
        assert_eq!(Uid::new(0), None);
    }

    #[test]
    fn adjacent_and_overlapping_ranges_merge() {
        let mut set = UidSet::new();
        set.insert_range(u(10), u(20));
        set.insert_range(u(1), u(5));
        set.insert_range(u(6), u(9));
        assert_eq!(set.to_string(), "1:20");
        set.insert_range(u(30), u(40));
        set.insert_range(u(15), u(35));
        assert_eq!(set.to_string(), "1:40");
        set.insert(u(u32::MAX));
        assert_eq!(set.to_string(), "1:40,4294967295");
    }

    #[test]
    fn twenty_five_thousand_uids_with_few_gaps_take_a_few_ranges() {
        let set: UidSet = (1..=25_000u32).filter(|n| n % 5_000 != 0).map(u).collect();
        assert_eq!(set.len(), 24_995);
        assert_eq!(set.range_count(), 5);
        assert!(set.to_string().len() < 64);
    }

    #[test]
    fn parse_rejects_zero_and_garbage() {
        assert!("0".parse::<UidSet>().is_err());
        assert!("1:x".parse::<UidSet>().is_err());
        assert!("1,,2".parse::<UidSet>().is_err());
        assert_eq!("5:3,1".parse::<UidSet>().unwrap().to_string(), "1,3:5");
    }

    proptest! {
        #[test]
        fn behaves_like_a_btreeset(values in proptest::collection::vec(1u32..200, 0..80),
                                   others in proptest::collection::vec(1u32..200, 0..80),
                                   chunk in 1u32..20) {
            let model: BTreeSet<u32> = values.iter().copied().collect();
            let mut set = UidSet::new();
            for &v in &values { set.insert(u(v)); }
            prop_assert_eq!(set.iter().map(Uid::get).collect::<Vec<_>>(), model.iter().copied().collect::<Vec<_>>());
            prop_assert_eq!(set.len(), model.len() as u64);
            prop_assert_eq!(&values.iter().copied().map(u).collect::<UidSet>(), &set);
            for w in set.ranges.windows(2) { prop_assert!(w[0].1 + 1 < w[1].0); }

            let other_model: BTreeSet<u32> = others.iter().copied().collect();
            let other: UidSet = others.iter().copied().map(u).collect();
            let diff = set.difference(&other);
            prop_assert_eq!(diff.iter().map(Uid::get).collect::<Vec<_>>(),
                            model.difference(&other_model).copied().collect::<Vec<_>>());

            let parsed: UidSet = set.to_string().parse().unwrap();
            prop_assert_eq!(&parsed, &set);

            let chunks = set.chunks(chunk);
            prop_assert!(chunks.iter().all(|c| c.len() <= u64::from(chunk) && !c.is_empty()));
            let rejoined: UidSet = chunks.iter().flat_map(|c| c.iter().collect::<Vec<_>>()).collect();
            prop_assert_eq!(rejoined, set);
        }
    }
}
