//! RFC 3501 `date-time` (INTERNALDATE): `"dd-Mon-yyyy hh:mm:ss +zzzz"`, where a one-digit
//! day is written with a leading space (` 1-Jan-2024 10:00:00 +0800`).

use std::fmt;

use crate::imap::codec::InternalDate;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

impl InternalDate {
    /// Reads an RFC 3501 date-time without its quotes, e.g. `" 1-Jan-2024 10:00:00 +0800"`.
    ///
    /// Lenient where servers are: surrounding spaces, a one-digit day without its leading
    /// space, and month names in any case are accepted. Out-of-range fields give `None`.
    ///
    /// ```
    /// use mailmigrate::imap::codec::InternalDate;
    /// let date = InternalDate::parse(" 1-Jan-2024 10:00:00 +0800").unwrap();
    /// assert_eq!(date.unix, 1_704_074_400);
    /// assert_eq!(date.offset_minutes, 480);
    /// assert_eq!(date.to_imap_string(), " 1-Jan-2024 10:00:00 +0800");
    /// ```
    pub fn parse(text: &str) -> Option<InternalDate> {
        let b = text.trim_matches(' ').as_bytes();
        // Normalise a one-digit day to two positions so the rest is fixed-width.
        let (day, rest) = match b {
            [d1, d2, b'-', rest @ ..] if d1.is_ascii_digit() && d2.is_ascii_digit() => {
                (u32::from(d1 - b'0') * 10 + u32::from(d2 - b'0'), rest)
            }
            [d, b'-', rest @ ..] if d.is_ascii_digit() => (u32::from(d - b'0'), rest),
            _ => return None,
        };
        // rest: "Mon-yyyy hh:mm:ss +zzzz"
        if rest.len() != 23
            || rest[3] != b'-'
            || rest[8] != b' '
            || rest[11] != b':'
            || rest[14] != b':'
            || rest[17] != b' '
        {
            return None;
        }
        let month_name = std::str::from_utf8(&rest[0..3]).ok()?;
        let month = MONTHS.iter().position(|m| m.eq_ignore_ascii_case(month_name))? as u32 + 1;
        let year = digits(&rest[4..8])?;
        let hour = digits(&rest[9..11])?;
        let minute = digits(&rest[12..14])?;
        let second = digits(&rest[15..17])?;
        let sign: i64 = match rest[18] {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        let zone_hours = digits(&rest[19..21])?;
        let zone_minutes = digits(&rest[21..23])?;
        if day == 0
            || day > days_in_month(year, month)
            || hour > 23
            || minute > 59
            || second > 59
            || zone_minutes > 59
        {
            return None;
        }
        let offset = sign * i64::from(zone_hours * 60 + zone_minutes);
        let local = days_from_civil(i64::from(year), month, day) * 86_400
            + i64::from(hour * 3600 + minute * 60 + second);
        Some(InternalDate {
            unix: local - offset * 60,
            offset_minutes: i16::try_from(offset).ok()?,
        })
    }

    /// The RFC 3501 form, without quotes (the encoder adds them), e.g.
    /// `" 1-Jan-2024 10:00:00 +0800"`. Same as `Display`.
    pub fn to_imap_string(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for InternalDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let offset = i64::from(self.offset_minutes);
        let local = self.unix.saturating_add(offset * 60);
        let days = local.div_euclid(86_400);
        let secs = local.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        let sign = if offset < 0 { '-' } else { '+' };
        let zone = offset.unsigned_abs();
        write!(
            f,
            "{day:>2}-{}-{year:04} {:02}:{:02}:{:02} {sign}{:02}{:02}",
            MONTHS[(month - 1) as usize],
            secs / 3600,
            secs % 3600 / 60,
            secs % 60,
            zone / 60,
            zone % 60
        )
    }
}

fn digits(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

fn is_leap(year: u32) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_dates() {
        for (text, unix, offset) in [
            (" 1-Jan-2024 10:00:00 +0800", 1_704_074_400, 480),
            ("17-Jul-1996 02:44:25 -0700", 837_596_665, -420),
            ("01-Jan-1970 00:00:00 +0000", 0, 0),
            ("29-Feb-2000 23:59:59 +0000", 951_868_799, 0),
            ("31-Dec-1969 23:59:59 +0000", -1, 0),
            (" 5-mar-2023 12:30:00 +0530", 1_677_999_600, 330),
        ] {
            let date = InternalDate::parse(text).unwrap_or_else(|| panic!("{text:?} must parse"));
            assert_eq!((date.unix, date.offset_minutes), (unix, offset), "{text}");
        }
    }

    #[test]
    fn leniency_and_rejections() {
        assert_eq!(
            InternalDate::parse("1-Jan-2024 10:00:00 +0800"),
            InternalDate::parse(" 1-Jan-2024 10:00:00 +0800")
        );
        assert_eq!(
            InternalDate::parse("  01-JAN-2024 10:00:00 +0800 "),
            InternalDate::parse(" 1-Jan-2024 10:00:00 +0800")
        );
        for bad in [
            "",
            "NIL",
            "32-Jan-2024 10:00:00 +0800",
            "29-Feb-2023 10:00:00 +0800",
            " 0-Jan-2024 10:00:00 +0800",
            " 1-Foo-2024 10:00:00 +0800",
            " 1-Jan-2024 24:00:00 +0800",
            " 1-Jan-2024 10:60:00 +0800",
            " 1-Jan-2024 10:00:60 +0800",
            " 1-Jan-2024 10:00:00 0800",
            " 1-Jan-2024 10:00:00 +0860",
            " 1-Jan-2024 10:00:00 +08000",
            " 1-Jan-24 10:00:00 +0800",
            "1-Jan-2024T10:00:00+0800",
            "é-Jan-2024 10:00:00 +0800",
        ] {
            assert_eq!(InternalDate::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn display_pads_one_digit_days_with_a_space() {
        let date = InternalDate {
            unix: 1_704_074_400,
            offset_minutes: 480,
        };
        assert_eq!(date.to_string(), " 1-Jan-2024 10:00:00 +0800");
        let west = InternalDate {
            unix: 0,
            offset_minutes: -150,
        };
        assert_eq!(west.to_imap_string(), "31-Dec-1969 21:30:00 -0230");
    }

    proptest! {
        #[test]
        fn round_trips_through_the_imap_form(
            unix in -62_135_596_800i64..253_402_300_799,
            offset in -5999i16..=5999,
        ) {
            let date = InternalDate { unix, offset_minutes: offset };
            let text = date.to_imap_string();
            let local = unix + i64::from(offset) * 60;
            // Only dates whose local time stays within years 1..=9999 have an RFC 3501 form.
            prop_assume!((-62_135_596_800..253_402_300_800).contains(&local));
            prop_assert_eq!(InternalDate::parse(&text), Some(date), "{}", text);
        }
    }
}
