//! Shared pieces of the benchmark tools: argument parsing and statistics.
//! Every tool runs on ONE executor thread, the practical limit a
//! single-threaded Luau runtime is compared against.

use std::time::Duration;

/// `--name value` from the command line, parsed.
#[must_use]
pub fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The `p`-th percentile (0..=100) of sorted samples.
#[must_use]
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&samples, 0.0), Duration::from_millis(1));
        assert_eq!(percentile(&samples, 100.0), Duration::from_millis(100));
        assert_eq!(percentile(&samples, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&[], 99.0), Duration::ZERO);
    }

    #[test]
    fn args() {
        let args: Vec<String> = ["x", "--connections", "64"]
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(arg(&args, "--connections", 1), 64);
        assert_eq!(arg(&args, "--duration", 5), 5);
    }
}
