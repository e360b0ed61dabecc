//! Shared pieces of the benchmark tools: command-line parsing, and the
//! hyper + Luau reference server ([`luau_server`]). Every tool runs on ONE
//! executor thread, the practical limit a single-threaded Luau runtime is
//! compared against.

pub mod luau_server;

/// `--name value` from the command line, parsed; `default` when absent or
/// unparsable.
#[must_use]
pub fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The arguments that are not `--name value` options, in order.
#[must_use]
pub fn positional(args: &[String]) -> Vec<&str> {
    let mut out = Vec::new();
    let mut iter = args.iter();
    while let Some(a) = iter.next() {
        if a.starts_with("--") {
            iter.next();
        } else {
            out.push(a.as_str());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn args() {
        let args = strings(&["x", "--connections", "64"]);
        assert_eq!(arg(&args, "--connections", 1), 64);
        assert_eq!(arg(&args, "--duration", 5), 5);
        assert_eq!(arg(&args, "--connections", String::new()), "64");
    }

    #[test]
    fn positionals_skip_options() {
        let args = strings(&["--rt", "smol", "http", "0", "--exit-after", "10", "x"]);
        assert_eq!(positional(&args), ["http", "0", "x"]);
        assert!(positional(&[]).is_empty());
    }
}
