//! Errors that are nobody's script call (a handler that threw, a failed TLS
//! handshake, a failed accept) go to stderr, rate-limited so that a flood
//! keeps the log readable: the first report of each distinct error is
//! printed whole, repeats are counted and summarised once per interval.

use std::{
    collections::HashMap,
    io::Write,
    sync::Mutex,
    time::{Duration, Instant},
};

/// How often repeats are summarised.
const INTERVAL: Duration = Duration::from_secs(10);
/// At most this many whole reports per interval; past it, errors are counted.
const WHOLE_PER_INTERVAL: u32 = 20;
/// Distinct errors remembered; past it, new ones count as "other".
const MAX_DISTINCT: usize = 1024;

struct Log {
    window_start: Instant,
    whole_in_window: u32,
    /// Every distinct error seen (by a hash of its text, so a huge message
    /// is not kept whole): its one-line summary and repeats this interval.
    seen: HashMap<u64, (String, u64)>,
    other: u64,
    flush_scheduled: bool,
}

static LOG: Mutex<Option<Log>> = Mutex::new(None);

/// An error in one line, without its stack, for summaries.
fn one_line(text: &str) -> String {
    let message: Vec<&str> = text
        .lines()
        .take_while(|line| !line.trim_start().starts_with("stack traceback"))
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect();
    let mut line = message.join(" ");
    if line.len() > 300 {
        let mut cut = 300;
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        line.truncate(cut);
        line.push_str("...");
    }
    line
}

impl Log {
    fn new() -> Self {
        Self {
            window_start: Instant::now(),
            whole_in_window: 0,
            seen: HashMap::new(),
            other: 0,
            flush_scheduled: false,
        }
    }

    /// Prints the repeats counted so far and starts a new interval.
    fn summarise(&mut self, out: &mut impl Write) {
        let secs = self.window_start.elapsed().as_secs().max(1);
        for (summary, repeats) in self.seen.values_mut() {
            if *repeats > 0 {
                // A closed stderr leaves nowhere to report to.
                let _ = writeln!(
                    out,
                    "{summary} (repeated {repeats} more times in the last {secs} s)"
                );
                *repeats = 0;
            }
        }
        if self.other > 0 {
            // As above: nowhere else to report to.
            let _ = writeln!(
                out,
                "net: {} more errors in the last {secs} s were not shown",
                self.other
            );
            self.other = 0;
        }
        self.window_start = Instant::now();
        self.whole_in_window = 0;
    }

    /// Records `text`; true when it should be printed whole.
    fn record(&mut self, text: &str) -> bool {
        let key = {
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            std::hash::Hash::hash(text, &mut hasher);
            std::hash::Hasher::finish(&hasher)
        };
        if let Some((_, repeats)) = self.seen.get_mut(&key) {
            *repeats += 1;
            return false;
        }
        if self.whole_in_window < WHOLE_PER_INTERVAL && self.seen.len() < MAX_DISTINCT {
            self.whole_in_window += 1;
            self.seen.insert(key, (one_line(text), 0));
            return true;
        }
        self.other += 1;
        false
    }
}

/// Reports `text` on stderr, whole the first time, counted after that.
pub(crate) fn error(text: &str) {
    let mut guard = lune_utils::lock(&LOG);
    let log = guard.get_or_insert_with(Log::new);
    let mut err = std::io::stderr().lock();
    if log.window_start.elapsed() >= INTERVAL {
        log.summarise(&mut err);
    }
    if log.record(text) {
        // As above: nowhere else to report to.
        let _ = writeln!(err, "{text}");
    } else if !log.flush_scheduled {
        // Repeats are summarised at the end of the interval even when no
        // further error comes to trigger it.
        log.flush_scheduled = true;
        let wait = INTERVAL.saturating_sub(log.window_start.elapsed());
        // A thread of the blocking pool waits, so that no task of the
        // scheduler's keeps a script alive for it.
        blocking::unblock(move || {
            std::thread::sleep(wait);
            flush();
        })
        .detach();
    }
}

/// Prints the repeats counted so far (a server stopping calls this, so its
/// last errors are not lost).
pub(crate) fn flush() {
    let mut guard = lune_utils::lock(&LOG);
    if let Some(log) = guard.as_mut() {
        log.flush_scheduled = false;
        log.summarise(&mut std::io::stderr().lock());
    }
}

#[cfg(test)]
mod tests {
    use super::Log;

    #[test]
    fn repeats_are_counted_and_summarised() {
        let mut log = Log::new();
        let error = "ctx:\nboom\nstack traceback:\n\tline";
        assert!(log.record(error), "the first report is whole");
        for _ in 0..1000 {
            assert!(!log.record(error), "repeats are not printed");
        }
        assert!(log.record("other"), "a distinct error is printed");
        let mut out = Vec::new();
        log.summarise(&mut out);
        let text = String::from_utf8(out).expect("utf-8");
        assert!(
            text.contains("ctx: boom (repeated 1000 more times"),
            "{text}"
        );
        assert!(
            !text.contains("line"),
            "summaries leave the stack out: {text}"
        );
        let mut again = Vec::new();
        log.summarise(&mut again);
        assert!(again.is_empty(), "counts reset after a summary");
    }

    #[test]
    fn a_flood_of_distinct_errors_is_capped() {
        let mut log = Log::new();
        let printed = (0..100).filter(|i| log.record(&format!("e{i}"))).count();
        assert_eq!(printed, super::WHOLE_PER_INTERVAL as usize);
        let mut out = Vec::new();
        log.summarise(&mut out);
        assert!(
            String::from_utf8(out)
                .expect("utf-8")
                .contains("80 more errors")
        );
    }
}
