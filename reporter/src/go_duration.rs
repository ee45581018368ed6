//! Go's `time.Duration.String()` formatting, so messages match the original byte for byte.

use std::time::Duration;

/// Formats like Go's `Duration.String()`: `5m0s`, `1m30s`, `45s`, `1h0m0s`, `1.5s`, `250ms`, `0s`.
pub fn format(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".to_string();
    }
    if nanos < 1_000_000_000 {
        // Sub-second: Go picks the largest unit that keeps the integer part non-zero.
        let (unit, scale) = if nanos < 1_000 {
            ("ns", 1u128)
        } else if nanos < 1_000_000 {
            ("µs", 1_000)
        } else {
            ("ms", 1_000_000)
        };
        return format!("{}{unit}", fraction(nanos, scale));
    }
    let total_secs = nanos / 1_000_000_000;
    let sub = nanos % 1_000_000_000;
    let hours = total_secs / 3600;
    let minutes = (total_secs % 3600) / 60;
    let secs = total_secs % 60;
    let secs_text = fraction(secs * 1_000_000_000 + sub, 1_000_000_000);
    if hours > 0 {
        format!("{hours}h{minutes}m{secs_text}s")
    } else if minutes > 0 {
        format!("{minutes}m{secs_text}s")
    } else {
        format!("{secs_text}s")
    }
}

/// `value / scale` as a decimal without trailing zeros, as Go prints it.
fn fraction(value: u128, scale: u128) -> String {
    let int = value / scale;
    let mut frac = value % scale;
    if frac == 0 {
        return int.to_string();
    }
    let mut digits = scale.ilog10() as usize;
    while frac.is_multiple_of(10) {
        frac /= 10;
        digits -= 1;
    }
    format!("{int}.{frac:0digits$}")
}

#[cfg(test)]
mod tests {
    use super::format;
    use std::time::Duration;

    #[test]
    fn matches_go() {
        let cases = [
            (Duration::from_secs(300), "5m0s"),
            (Duration::from_secs(90), "1m30s"),
            (Duration::from_secs(45), "45s"),
            (Duration::from_secs(3600), "1h0m0s"),
            (Duration::from_secs(3661), "1h1m1s"),
            (Duration::from_secs(2), "2s"),
            (Duration::from_millis(1500), "1.5s"),
            (Duration::from_millis(250), "250ms"),
            (Duration::from_micros(1500), "1.5ms"),
            (Duration::from_nanos(42), "42ns"),
            (Duration::ZERO, "0s"),
            (Duration::from_millis(60_001), "1m0.001s"),
        ];
        for (d, want) in cases {
            assert_eq!(format(d), want, "{d:?}");
        }
    }
}
