//! A Prometheus histogram that each thread records into its own shard of, summed when
//! `/metrics` is scraped: for a figure recorded on every message by every runtime (the bridge's
//! round trip), so a message writes two counters on a cache line only its own thread writes.
//!
//! Why not the exporter's histogram: its `record` appends the sample to one lock-free list
//! that every runtime appends to (an epoch pin and an atomic on a shared cache line per
//! message), and upkeep folds the list into buckets every few seconds; per message that was
//! about as much work as the bucket counts themselves, and a cache line bouncing between
//! cores.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use metrics_exporter_prometheus::formatting::sanitize_label_value;

/// Shards per histogram: threads beyond this many share one (still exact: the counters are
/// atomic adds).
const SHARDS: usize = 16;

/// The most bucket bounds a histogram takes.
const MAX_BOUNDS: usize = 15;

static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's shard, in every sharded histogram: handed out in turn, so the runtimes'
    /// threads (the ones that record) get one each.
    static SHARD: usize = NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % SHARDS;
}

/// One thread's counts, on cache lines of their own.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Shard {
    /// Samples by bucket: slot `i` counts those above bound `i − 1` and at most bound `i`,
    /// the slot after the last bound those above every bound.
    slots: [AtomicU64; MAX_BOUNDS + 1],
    /// Every sample added up, in nanoseconds (exact; 584 years before it wraps).
    sum_nanos: AtomicU64,
}

/// A histogram of durations with fixed bucket bounds, in seconds as Prometheus has them.
#[derive(Debug)]
pub(crate) struct ShardedHistogram {
    name: &'static str,
    help: &'static str,
    /// `instance="…"`, ready to print, when the server has one.
    instance: Option<String>,
    bounds: &'static [f64],
    bounds_nanos: Vec<u64>,
    shards: Box<[Shard]>,
}

impl ShardedHistogram {
    /// An empty histogram `name` with buckets at `bounds` (seconds, ascending; at most 15),
    /// labelled `instance` when one is given.
    pub fn new(
        name: &'static str,
        help: &'static str,
        bounds: &'static [f64],
        instance: Option<&str>,
    ) -> Self {
        let bounds = &bounds[..bounds.len().min(MAX_BOUNDS)];
        ShardedHistogram {
            name,
            help,
            instance: instance.map(|i| format!("instance=\"{}\"", sanitize_label_value(i))),
            bounds,
            bounds_nanos: bounds.iter().map(|s| (s * 1e9).round() as u64).collect(),
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
        }
    }

    /// Records one sample in this thread's shard.
    pub fn record(&self, took: Duration) {
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        let slot = self
            .bounds_nanos
            .iter()
            .position(|&bound| nanos <= bound)
            .unwrap_or(self.bounds_nanos.len());
        let shard = &self.shards[SHARD.with(|s| *s)];
        shard.slots[slot].fetch_add(1, Ordering::Relaxed);
        shard.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Appends the histogram in the Prometheus text format, as the exporter writes its own:
    /// help, type, cumulative buckets, `+Inf`, sum (seconds), count.
    pub fn render(&self, out: &mut String) {
        let mut slots = [0u64; MAX_BOUNDS + 1];
        let mut sum_nanos = 0u64;
        for shard in &self.shards {
            for (total, slot) in slots.iter_mut().zip(&shard.slots) {
                *total += slot.load(Ordering::Relaxed);
            }
            sum_nanos = sum_nanos.wrapping_add(shard.sum_nanos.load(Ordering::Relaxed));
        }
        let name = self.name;
        let _ = writeln!(out, "# HELP {name} {}", self.help);
        let _ = writeln!(out, "# TYPE {name} histogram");
        let labels = |le: Option<&str>| match (&self.instance, le) {
            (Some(i), Some(le)) => format!("{{{i},le=\"{le}\"}}"),
            (None, Some(le)) => format!("{{le=\"{le}\"}}"),
            (Some(i), None) => format!("{{{i}}}"),
            (None, None) => String::new(),
        };
        let mut count = 0;
        for (bound, slot) in self.bounds.iter().zip(slots) {
            count += slot;
            let le = labels(Some(&bound.to_string()));
            let _ = writeln!(out, "{name}_bucket{le} {count}");
        }
        count += slots[self.bounds.len()];
        let _ = writeln!(out, "{name}_bucket{} {count}", labels(Some("+Inf")));
        let sum = sum_nanos as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum{} {sum}", labels(None));
        let _ = writeln!(out, "{name}_count{} {count}\n", labels(None));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_from_many_threads_land_in_cumulative_buckets() {
        let h = ShardedHistogram::new("rtt_seconds", "Round trips.", &[0.001, 0.01], Some("a"));
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| {
                    h.record(Duration::from_micros(500));
                    h.record(Duration::from_millis(5));
                    h.record(Duration::from_secs(1));
                });
            }
        });
        h.record(Duration::from_millis(1));
        let mut text = String::new();
        h.render(&mut text);
        let expected = "# HELP rtt_seconds Round trips.\n\
            # TYPE rtt_seconds histogram\n\
            rtt_seconds_bucket{instance=\"a\",le=\"0.001\"} 4\n\
            rtt_seconds_bucket{instance=\"a\",le=\"0.01\"} 7\n\
            rtt_seconds_bucket{instance=\"a\",le=\"+Inf\"} 10\n\
            rtt_seconds_sum{instance=\"a\"} 3.0175\n\
            rtt_seconds_count{instance=\"a\"} 10\n\n";
        assert_eq!(text, expected);
    }
}
