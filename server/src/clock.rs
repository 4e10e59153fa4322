//! The server's clock: the lesson's stamp in local time (honouring `TZ`) and RFC 3339 times for
//! monitor events.

use std::cell::Cell;
use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{Datelike, Local, SecondsFormat, Timelike};
use socklab_protocol::Stamp;

thread_local! {
    /// The last stamp made on this thread and the Unix second it is for: formatting local
    /// time costs far more than a line's echo, and a stamp only changes once a second.
    static LAST: Cell<Option<(u64, Stamp)>> = const { Cell::new(None) };
}

/// The stamp for now, `[%Y-%m-%d %H:%M:%S]:` in local time.
pub fn stamp_now() -> Stamp {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    LAST.with(|last| match last.get() {
        Some((s, stamp)) if s == secs => stamp,
        _ => {
            let now = Local::now();
            let stamp = Stamp::new(
                now.year(),
                now.month(),
                now.day(),
                now.hour(),
                now.minute(),
                now.second(),
            );
            last.set(Some((secs, stamp)));
            stamp
        }
    })
}

/// Now as RFC 3339 with milliseconds and the local offset, for monitor events.
pub fn rfc3339_now() -> String {
    Local::now().to_rfc3339_opts(SecondsFormat::Millis, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_is_local_time_now() {
        let expected = Local::now().format("[%Y-%m-%d %H:%M:%S]:").to_string();
        let got = stamp_now();
        // Allow for a second boundary between the two readings.
        let later = Local::now().format("[%Y-%m-%d %H:%M:%S]:").to_string();
        assert!(
            got.as_str() == expected || got.as_str() == later,
            "{got:?} vs {expected}"
        );
    }

    #[test]
    fn rfc3339_parses_back() {
        let at = rfc3339_now();
        assert!(chrono::DateTime::parse_from_rfc3339(&at).is_ok(), "{at}");
    }
}
