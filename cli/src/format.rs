//! Rendering values for people: timestamps, durations, sizes, rates.

use std::time::Duration;

/// A Unix timestamp in milliseconds as UTC, `2025-01-31 13:45:07.123`.
pub fn timestamp(ms: i64) -> String {
    let (days, ms_of_day) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (year, month, day) = civil_from_days(days);
    let (hours, minutes) = (ms_of_day / 3_600_000, ms_of_day / 60_000 % 60);
    let (seconds, millis) = (ms_of_day / 1000 % 60, ms_of_day % 1000);
    format!("{year:04}-{month:02}-{day:02} {hours:02}:{minutes:02}:{seconds:02}.{millis:03}")
}

/// An optional timestamp; `-` when absent.
pub fn maybe_timestamp(ms: Option<i64>) -> String {
    ms.map_or_else(|| "-".to_owned(), timestamp)
}

/// The calendar date of a day counted from 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// A duration with a unit that suits it: `850 µs`, `12.4 ms`, `3.21 s`.
pub fn duration(duration: Duration) -> String {
    let micros = duration.as_secs_f64() * 1e6;
    if micros < 1000.0 {
        format!("{micros:.0} µs")
    } else if micros < 1e6 {
        format!("{:.2} ms", micros / 1e3)
    } else {
        format!("{:.2} s", micros / 1e6)
    }
}

/// A milliseconds difference between two timestamps; `-` when either is absent.
pub fn elapsed_ms(from: Option<i64>, to: Option<i64>) -> String {
    match (from, to) {
        (Some(from), Some(to)) if to >= from => duration(Duration::from_millis((to - from) as u64)),
        _ => "-".to_owned(),
    }
}

/// A byte count: `512 B`, `12.5 KiB`, `3.0 MiB`.
pub fn bytes(count: u64) -> String {
    match count {
        0..1024 => format!("{count} B"),
        1024..1_048_576 => format!("{:.1} KiB", count as f64 / 1024.0),
        _ => format!("{:.1} MiB", count as f64 / 1_048_576.0),
    }
}

/// `count / seconds` with one decimal, or `-` for an empty interval.
pub fn rate(count: u64, elapsed: Duration) -> String {
    if elapsed.is_zero() {
        "-".to_owned()
    } else {
        format!("{:.1}", count as f64 / elapsed.as_secs_f64())
    }
}

/// A short, printable preview of a payload: the text itself when it is short UTF-8, else its
/// size.
pub fn payload(data: Option<&[u8]>) -> String {
    match data {
        None => "-".to_owned(),
        Some(data) => match std::str::from_utf8(data) {
            Ok(text) if text.chars().count() <= 60 && !text.chars().any(char::is_control) => {
                format!("{text}  ({})", bytes(data.len() as u64))
            }
            _ => bytes(data.len() as u64),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_calendar_times() {
        assert_eq!(timestamp(0), "1970-01-01 00:00:00.000");
        assert_eq!(timestamp(951_782_400_123), "2000-02-29 00:00:00.123");
        assert_eq!(timestamp(1_764_231_902_005), "2025-11-27 08:25:02.005");
        assert_eq!(maybe_timestamp(None), "-");
    }

    #[test]
    fn durations_sizes_and_rates_pick_a_unit() {
        assert_eq!(duration(Duration::from_micros(850)), "850 µs");
        assert_eq!(duration(Duration::from_micros(12_400)), "12.40 ms");
        assert_eq!(duration(Duration::from_millis(3_210)), "3.21 s");
        assert_eq!(elapsed_ms(Some(1_000), Some(1_500)), "500.00 ms");
        assert_eq!(elapsed_ms(None, Some(1)), "-");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(12_800), "12.5 KiB");
        assert_eq!(rate(10, Duration::from_secs(4)), "2.5");
        assert_eq!(rate(10, Duration::ZERO), "-");
    }

    #[test]
    fn payloads_show_short_text_and_otherwise_their_size() {
        assert_eq!(payload(Some(b"done")), "done  (4 B)");
        assert_eq!(payload(Some(&[0, 159, 146, 150])), "4 B");
        assert_eq!(payload(None), "-");
    }
}
