//! `* CAPABILITY` and `* ENABLED`: atoms separated by any number of spaces.
//!
//! imap-proto requires IMAP4rev1 and single spaces (research B.3), and returns ENABLED as
//! capabilities; here IMAP4rev2-only lists and doubled spaces are fine and ENABLED stays apart.

use crate::imap::codec::Data;

use super::{code::capabilities, lossy};

pub(crate) fn capability(i: &[u8]) -> Result<Data, &[u8]> {
    Ok(Data::Capability(capabilities(i)))
}

pub(crate) fn enabled(i: &[u8]) -> Result<Data, &[u8]> {
    Ok(Data::Enabled(
        i.split(|&b| b == b' ')
            .filter(|t| !t.is_empty())
            .map(|t| lossy(t).to_ascii_uppercase())
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rev2_only_and_doubled_spaces() {
        let Ok(Data::Capability(caps)) = capability(b" IMAP4rev2  AUTH=PLAIN   LITERAL- ") else {
            panic!()
        };
        assert_eq!(
            caps.atoms.iter().map(String::as_str).collect::<Vec<_>>(),
            ["AUTH=PLAIN", "IMAP4REV2", "LITERAL-"]
        );
        assert!(caps.has("IMAP4rev2") && caps.has_auth("PLAIN") && !caps.has("IMAP4rev1"));
    }

    #[test]
    fn enabled_is_kept_apart_and_upper_cased() {
        assert_eq!(
            enabled(b" condstore  QRESYNC"),
            Ok(Data::Enabled(vec!["CONDSTORE".into(), "QRESYNC".into()]))
        );
        assert_eq!(enabled(b""), Ok(Data::Enabled(vec![])));
    }
}
