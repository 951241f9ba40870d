//! Mailbox names as they travel on the wire, and how to read them.
//!
//! A server may send a name as modified UTF-7 (RFC 3501 5.1.3), as UTF-8 (RFC 6855
//! UTF8=ACCEPT, and many servers regardless), or as raw bytes in a legacy charset such as
//! GBK (some Chinese servers). [`MailboxName`] keeps the exact bytes so the folder can always
//! be addressed again, and [`MailboxName::decode`] finds the most plausible reading.

use std::fmt;

use bytes::Bytes;
use encoding_rs::{BIG5, EUC_KR, Encoding, GB18030, SHIFT_JIS};

/// A mailbox name exactly as the server sent it (quoted-string escapes already removed).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MailboxName {
    raw: Bytes,
}

/// How a mailbox name's bytes were read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NameEncoding {
    /// Plain ASCII with nothing to decode.
    Ascii,
    /// ASCII containing `&` that is not valid modified UTF-7: taken literally (some servers
    /// send `Q&A` unencoded).
    AsciiLiteral,
    /// Modified UTF-7 (RFC 3501).
    ModifiedUtf7,
    /// UTF-8.
    Utf8,
    /// A legacy charset, decoded without errors (GB18030 covers GBK and GB2312).
    Legacy(&'static Encoding),
    /// Nothing fit; undecodable bytes became U+FFFD. The raw bytes still address the folder.
    Lossy,
}

/// A readable form of a [`MailboxName`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedName {
    /// The name as text.
    pub text: String,
    /// How it was read.
    pub encoding: NameEncoding,
}

/// The legacy charsets tried, in order, for 8-bit names that are not UTF-8.
pub const LEGACY_CHARSETS: [&Encoding; 4] = [GB18030, BIG5, SHIFT_JIS, EUC_KR];

impl MailboxName {
    /// A name from the bytes a server sent.
    pub fn from_raw(raw: impl Into<Bytes>) -> Self {
        MailboxName { raw: raw.into() }
    }

    /// The name to send for `text`: modified UTF-7, or UTF-8 once UTF8=ACCEPT is enabled.
    ///
    /// ```
    /// use mailmigrate::imap::codec::MailboxName;
    /// assert_eq!(MailboxName::encode("已发送", false).raw(), b"&XfJT0ZAB-");
    /// assert_eq!(MailboxName::encode("Q&A", false).raw(), b"Q&-A");
    /// assert_eq!(MailboxName::encode("已发送", true).raw(), "已发送".as_bytes());
    /// ```
    pub fn encode(text: &str, utf8_enabled: bool) -> Self {
        if utf8_enabled {
            MailboxName::from_raw(Bytes::copy_from_slice(text.as_bytes()))
        } else {
            MailboxName::from_raw(encode_mutf7(text).into_bytes())
        }
    }

    /// The bytes, to send back to the server that named the folder.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// The bytes as a shared buffer.
    pub fn raw_bytes(&self) -> &Bytes {
        &self.raw
    }

    /// Whether this is the INBOX (case-insensitive, RFC 3501 5.1).
    pub fn is_inbox(&self) -> bool {
        self.raw.eq_ignore_ascii_case(b"INBOX")
    }

    /// The most plausible reading: strict modified UTF-7 for ASCII names, then UTF-8, then the
    /// [`LEGACY_CHARSETS`], then a lossy UTF-8 reading.
    ///
    /// ```
    /// use mailmigrate::imap::codec::{MailboxName, NameEncoding};
    /// let gbk = MailboxName::from_raw(&b"\xd2\xd1\xb7\xa2\xcb\xcd"[..]); // 已发送 in GBK
    /// let decoded = gbk.decode();
    /// assert_eq!(decoded.text, "已发送");
    /// assert!(matches!(decoded.encoding, NameEncoding::Legacy(_)));
    /// ```
    pub fn decode(&self) -> DecodedName {
        decode_name(&self.raw)
    }
}

fn decode_name(raw: &[u8]) -> DecodedName {
    if raw.is_ascii() {
        if !raw.contains(&b'&') {
            return DecodedName {
                text: ascii(raw),
                encoding: NameEncoding::Ascii,
            };
        }
        return match decode_mutf7(raw) {
            Some(text) => DecodedName {
                text,
                encoding: NameEncoding::ModifiedUtf7,
            },
            None => DecodedName {
                text: ascii(raw),
                encoding: NameEncoding::AsciiLiteral,
            },
        };
    }
    if let Ok(text) = std::str::from_utf8(raw) {
        return DecodedName {
            text: text.to_owned(),
            encoding: NameEncoding::Utf8,
        };
    }
    for encoding in LEGACY_CHARSETS {
        if let Some(text) = encoding.decode_without_bom_handling_and_without_replacement(raw) {
            return DecodedName {
                text: text.into_owned(),
                encoding: NameEncoding::Legacy(encoding),
            };
        }
    }
    DecodedName {
        text: String::from_utf8_lossy(raw).into_owned(),
        encoding: NameEncoding::Lossy,
    }
}

fn ascii(raw: &[u8]) -> String {
    raw.iter().map(|&b| b as char).collect()
}

impl fmt::Debug for MailboxName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MailboxName({:?})", self.decode().text)
    }
}

impl fmt::Display for MailboxName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.decode().text)
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

fn b64_value(c: u8) -> Option<u32> {
    B64.iter().position(|&x| x == c).map(|p| p as u32)
}

/// Encodes `text` as modified UTF-7 (RFC 3501 5.1.3).
pub fn encode_mutf7(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run: Vec<u16> = Vec::new();
    for ch in text.chars() {
        if (' '..='~').contains(&ch) {
            flush_run(&mut out, &mut run);
            if ch == '&' {
                out.push_str("&-");
            } else {
                out.push(ch);
            }
        } else {
            let mut buf = [0u16; 2];
            run.extend_from_slice(ch.encode_utf16(&mut buf));
        }
    }
    flush_run(&mut out, &mut run);
    out
}

fn flush_run(out: &mut String, run: &mut Vec<u16>) {
    if run.is_empty() {
        return;
    }
    out.push('&');
    let bytes: Vec<u8> = run.iter().flat_map(|u| u.to_be_bytes()).collect();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | (u32::from(b) << (16 - 8 * i)));
        let digits = chunk.len() + 1;
        for i in 0..digits {
            out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out.push('-');
    run.clear();
}

/// Decodes strict modified UTF-7; `None` if `raw` is not valid modified UTF-7.
pub fn decode_mutf7(raw: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let c = raw[i];
        if c != b'&' {
            if !(0x20..=0x7e).contains(&c) {
                return None;
            }
            out.push(c as char);
            i += 1;
            continue;
        }
        let end = i + 1 + raw[i + 1..].iter().position(|&b| b == b'-')?;
        let run = &raw[i + 1..end];
        if run.is_empty() {
            out.push('&');
        } else {
            decode_b64_run(run, &mut out)?;
        }
        i = end + 1;
    }
    Some(out)
}

fn decode_b64_run(run: &[u8], out: &mut String) -> Option<()> {
    let mut bits = 0u32;
    let mut nbits = 0u32;
    let mut units = Vec::with_capacity(run.len() * 6 / 16);
    for &c in run {
        bits = (bits << 6) | b64_value(c)?;
        nbits += 6;
        if nbits >= 16 {
            nbits -= 16;
            units.push((bits >> nbits) as u16);
            bits &= (1 << nbits) - 1;
        }
    }
    // Leftover bits must be padding zeros, fewer than one base64 digit's worth of a unit.
    if nbits >= 6 || bits != 0 || units.is_empty() {
        return None;
    }
    let decoded = String::from_utf16(&units).ok()?;
    // Printable ASCII must be sent directly, never inside a base64 run (RFC 3501 5.1.3).
    if decoded.chars().any(|ch| (' '..='~').contains(&ch)) {
        return None;
    }
    out.push_str(&decoded);
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_provider_names_decode() {
        let cases: &[(&[u8], &str)] = &[
            (b"&XfJT0ZAB-", "已发送"),
            (b"&g0l6P3ux-", "草稿箱"),
            (b"&dcVr0mWHTvZZOQ-", "病毒文件夹"),
            (b"[Gmail]/&XfJT0ZCuTvY-", "[Gmail]/已发邮件"),
            (b"&UXZO1mWHTvZZOQ-/Work", "其他文件夹/Work"),
            (b"Entw&APw-rfe", "Entwürfe"),
            (b"Q&-A", "Q&A"),
        ];
        for (raw, text) in cases {
            let decoded = MailboxName::from_raw(Bytes::copy_from_slice(raw)).decode();
            assert_eq!(&decoded.text, text, "{raw:?}");
            assert_eq!(decoded.encoding, NameEncoding::ModifiedUtf7);
        }
    }

    #[test]
    fn ascii_with_a_stray_ampersand_is_taken_literally() {
        let decoded = MailboxName::from_raw(&b"Q&A"[..]).decode();
        assert_eq!(decoded.text, "Q&A");
        assert_eq!(decoded.encoding, NameEncoding::AsciiLiteral);
    }

    #[test]
    fn utf8_names_are_read_as_utf8() {
        let decoded = MailboxName::from_raw("项目/2024".as_bytes().to_vec()).decode();
        assert_eq!(decoded.text, "项目/2024");
        assert_eq!(decoded.encoding, NameEncoding::Utf8);
    }

    #[test]
    fn gbk_names_from_chinese_servers_decode_with_gb18030() {
        let (gbk, _, _) = GB18030.encode("垃圾邮件");
        let decoded = MailboxName::from_raw(gbk.into_owned()).decode();
        assert_eq!(decoded.text, "垃圾邮件");
        assert_eq!(decoded.encoding, NameEncoding::Legacy(GB18030));
    }

    #[test]
    fn malformed_mutf7_is_rejected_strictly() {
        for bad in [&b"&Jjo"[..], b"&Jjo!-", b"&AGE-", b"&2D3-", b"\x01"] {
            assert_eq!(decode_mutf7(bad), None, "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn mutf7_round_trips_any_text(text in "\\PC{0,40}") {
            let encoded = encode_mutf7(&text);
            prop_assert!(encoded.is_ascii());
            prop_assert_eq!(decode_mutf7(encoded.as_bytes()), Some(text));
        }

        #[test]
        fn decoding_any_bytes_never_panics(raw in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = MailboxName::from_raw(raw).decode();
        }
    }
}
