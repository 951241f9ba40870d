//! Deterministic test messages and digests.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

/// 2020-01-01T00:00:00Z, the first sample date.
const SAMPLE_EPOCH: u64 = 1_577_836_800;

/// The moment message `i` was "sent": its `Date:` header, and a good internal date to seed
/// it with (one hour apart per index, 7 s past the hour so nothing is round).
pub fn sample_date(i: usize) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(SAMPLE_EPOCH + i as u64 * 3_600 + 7)
}

/// A valid RFC 5322 message, identical for the same `(i, body_len)` on every run.
///
/// CRLF line endings throughout; `From`, `To`, `Subject: Test message {i}`, `Date`
/// ([`sample_date`]), `Message-ID: <sample-{i}-{body_len}@mailmigrate.test>`, and a
/// UTF-8 `text/plain` 8bit body of exactly `body_len` bytes (ending in CRLF when
/// `body_len >= 2`). The body cycles through lines that trip careless code: lines starting
/// with `.` and `..`, a line that is only `.`, a line starting with `From `, and 8-bit UTF-8
/// text (German, Chinese, Russian).
pub fn sample_message(i: usize, body_len: usize) -> Vec<u8> {
    let mut msg = format!(
        "From: Sender {i} <sender{i}@example.test>\r\n\
         To: Recipient <rcpt@example.test>\r\n\
         Subject: Test message {i}\r\n\
         Date: {date}\r\n\
         Message-ID: <sample-{i}-{body_len}@mailmigrate.test>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: 8bit\r\n\
         \r\n",
        date = rfc5322_date(sample_date(i)),
    )
    .into_bytes();
    msg.reserve(body_len);
    let body_start = msg.len();
    let mut n = 0;
    loop {
        let remaining = body_len - (msg.len() - body_start);
        let line = body_line(i, n);
        // Keep at least 2 bytes back so the body can always end in CRLF.
        if line.len() + 4 <= remaining {
            msg.extend_from_slice(line.as_bytes());
            msg.extend_from_slice(b"\r\n");
            n += 1;
            continue;
        }
        if remaining >= 2 {
            msg.extend(b"0123456789".iter().cycle().take(remaining - 2));
            msg.extend_from_slice(b"\r\n");
        } else {
            msg.extend(std::iter::repeat_n(b'x', remaining));
        }
        break;
    }
    msg
}

fn body_line(i: usize, n: usize) -> String {
    match n % 6 {
        0 => format!("Message {i}, line {n}: the quick brown fox jumps over the lazy dog."),
        1 => format!(".A line starting with a dot (message {i}, line {n})."),
        2 => format!("Grüße aus Köln, 你好世界, Привет мир ({i}/{n})"),
        3 => ".".to_owned(),
        4 => format!("..Two dots lead this line ({i}/{n})."),
        _ => format!("From here on, line {n} of message {i} looks like an mbox separator."),
    }
}

/// Lower-case hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

/// `Wed, 01 Jan 2020 00:00:07 +0000`.
fn rfc5322_date(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {d:02} {} {y} {:02}:{:02}:{:02} +0000",
        WEEKDAYS[(days % 7) as usize],
        MONTHS[(m - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// (year, month 1-12, day 1-31) of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}
