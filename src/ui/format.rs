//! Numbers and times as the pages write them.

/// A share of the budget as a percentage (`42.0 %`, `-12.5 %` once overspent).
pub fn percent(share: Option<f64>) -> String {
    match share {
        Some(v) if v.is_finite() => format!("{:.1} %", v * 100.0),
        _ => "—".to_string(),
    }
}

/// A burn rate (`14.40`): 1 spends the budget exactly over the window.
pub fn burn(rate: Option<f64>) -> String {
    match rate {
        Some(v) if v.is_finite() && v.abs() >= 100.0 => format!("{v:.0}"),
        Some(v) if v.is_finite() => format!("{v:.2}"),
        _ => "—".to_string(),
    }
}

/// An objective in percent, as written (`99.9 %`).
pub fn objective(v: f64) -> String {
    format!("{v} %")
}

/// How long ago `then` was, roughly (`3m ago`, `2h ago`, `5d ago`); a time ahead of `now`
/// says `in 3m`.
pub fn ago(then: jiff::Timestamp, now: jiff::Timestamp) -> String {
    let seconds = now.as_second().saturating_sub(then.as_second());
    let (ahead, s) = (seconds < 0, seconds.unsigned_abs());
    let text = match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    };
    if ahead {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}

/// A time as the API writes it, for a tooltip or a `datetime` attribute.
pub fn time(t: jiff::Timestamp) -> String {
    crate::api::rfc3339(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(percent(Some(0.4213)), "42.1 %");
        assert_eq!(percent(Some(-0.125)), "-12.5 %");
        assert_eq!(percent(None), "—");
        assert_eq!(percent(Some(f64::NAN)), "—");
        assert_eq!(burn(Some(14.4)), "14.40");
        assert_eq!(burn(Some(1234.5)), "1234");
        assert_eq!(burn(None), "—");
        assert_eq!(objective(99.95), "99.95 %");
    }

    #[test]
    fn times() {
        let now: jiff::Timestamp = "2027-01-15T12:00:00Z".parse().unwrap();
        let at = |s: &str| s.parse::<jiff::Timestamp>().unwrap();
        assert_eq!(ago(at("2027-01-15T11:59:30Z"), now), "30s ago");
        assert_eq!(ago(at("2027-01-15T11:00:00Z"), now), "1h ago");
        assert_eq!(ago(at("2027-01-10T12:00:00Z"), now), "5d ago");
        assert_eq!(ago(at("2027-01-15T12:03:00Z"), now), "in 3m");
    }
}
