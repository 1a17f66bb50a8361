//! Median and spread of a figure over runs.

use serde_json::{Value, json};

/// `{"median", "min", "max"}` of `values` (the lower middle value for an even count).
pub fn summary(values: &[f64]) -> Value {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match (sorted.first(), sorted.last()) {
        (Some(min), Some(max)) => {
            json!({"median": round(sorted[(sorted.len() - 1) / 2]), "min": round(*min), "max": round(*max)})
        }
        _ => Value::Null,
    }
}

pub use testkit::stats::{median, percentile};

pub fn round(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

/// This process's user + system CPU time, in seconds (from /proc, Linux).
pub fn cpu_seconds() -> f64 {
    // utime and stime: fields 14 and 15 of the line.
    stat_ticks(14) + stat_ticks(15)
}

/// The user + system CPU time of the child processes this one has waited for, in seconds.
pub fn children_cpu_seconds() -> f64 {
    // cutime and cstime: fields 16 and 17 of the line.
    stat_ticks(16) + stat_ticks(17)
}

/// Field `n` (1-based, as proc(5) numbers them) of /proc/self/stat, in seconds.
fn stat_ticks(n: usize) -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return 0.0 };
    // Fields after the command name (which may hold spaces) start after the last ')', at 3.
    let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().collect();
    fields.get(n - 3).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) / clock_ticks()
}

fn clock_ticks() -> f64 {
    // USER_HZ is 100 on every Linux this runs on.
    100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_spread() {
        assert_eq!(summary(&[3.0, 1.0, 2.0]), json!({"median": 2.0, "min": 1.0, "max": 3.0}));
        assert_eq!(summary(&[4.0, 1.0]), json!({"median": 1.0, "min": 1.0, "max": 4.0}));
        assert_eq!(summary(&[]), Value::Null);
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 50.0), 2.0);
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 95.0), 4.0);
    }

    #[test]
    fn cpu_time_is_read_and_grows() {
        let before = cpu_seconds();
        let started = std::time::Instant::now();
        let mut x = 0u64;
        while cpu_seconds() == before && started.elapsed() < std::time::Duration::from_secs(5) {
            for i in 0..1_000_000u64 {
                x = x.wrapping_mul(31).wrapping_add(i);
            }
        }
        std::hint::black_box(x);
        assert!(cpu_seconds() > before, "spinning for up to 5 s shows as CPU time");
    }
}
