//! Runs every `tests/**/*.luau` script and every `examples/*.luau` through
//! the `lune` binary as its own named test case. Files and folders whose names start with `_` are helper
//! modules, not tests. A script passes when it exits with code 0 and no Rust
//! panic was printed.
//!
//! Local fixture servers (HTTP, HTTPS with a CA made here, HTTP/2, a proxy,
//! WebSocket and TCP echo) are started once and handed to every script
//! through `LUNE_TEST_*` environment variables; `SSL_CERT_FILE` trusts the CA.
//!
//! `LUNE_TEST_BIN=/path/to/lune` runs the scripts with another binary
//! instead of the one built here (`scripts/lune-compat.sh` runs `tests/net`
//! with Lune itself: `cargo test -p lune --test luau -- net/`). Scripts see it
//! as `LUNE_BIN`, for the processes they start. A script that needs something
//! only this runtime has says so in its leading comment lines, with a line
//! `-- ours-only: <why>`; under another binary it is reported as ignored.

use std::{
    io::Read,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use libtest_mimic::{Arguments, Failed, Trial};

const SCRIPT_TIMEOUT: Duration = Duration::from_secs(180);

/// Marks a script that only this workspace's `lune` can run (see the docs).
const OURS_ONLY_MARKER: &str = "-- ours-only:";

fn main() {
    let mut args = Arguments::from_args();
    // Scripts mostly wait on sockets, so run more of them than there are cores.
    if args.test_threads.is_none() {
        args.test_threads = Some(4);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let root = root.canonicalize().expect("the workspace root exists");
    let fixtures = lune_test_fixtures::start().expect("the test fixture servers start");
    let mut env = fixtures.env();
    if let Some((_, ca)) = env.iter().find(|(k, _)| k == "LUNE_TEST_CA_FILE") {
        env.push(("SSL_CERT_FILE".into(), ca.clone()));
    }
    let bin = std::env::var("LUNE_TEST_BIN")
        .ok()
        .filter(|bin| !bin.is_empty())
        .map(PathBuf::from);
    let foreign = bin.is_some();
    let bin = Arc::new(bin.unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_lune"))));
    if foreign {
        eprintln!(
            "running scripts with {} (LUNE_TEST_BIN); '{OURS_ONLY_MARKER}' scripts are ignored",
            bin.display()
        );
    }
    env.push(("LUNE_BIN".into(), bin.to_string_lossy().into_owned()));
    let env = Arc::new(env);

    // Test scripts are named by their path below tests/; examples run as
    // tests too, named examples/<name>.
    let mut scripts = Vec::new();
    discover(&root.join("tests"), &mut scripts);
    discover(&root.join("examples"), &mut scripts);
    scripts.sort();
    let trials = scripts
        .into_iter()
        .map(|script| {
            let relative = script.strip_prefix(&root).unwrap_or(&script);
            let relative = relative.strip_prefix("tests").unwrap_or(relative);
            let name = relative
                .with_extension("")
                .to_string_lossy()
                .replace('\\', "/");
            let ignored = foreign && is_ours_only(&script);
            let root = root.clone();
            let env = env.clone();
            let bin = bin.clone();
            Trial::test(name, move || run_script(&bin, &root, &script, &env))
                .with_ignored_flag(ignored)
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}

/// Collects test scripts: `.luau` files not inside or named like `_helpers`.
fn discover(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('_') || name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            discover(&path, out);
        } else if path.extension().is_some_and(|e| e == "luau") {
            out.push(path);
        }
    }
}

/// True when the script's leading comment lines carry the ours-only marker.
fn is_ours_only(script: &Path) -> bool {
    let Ok(source) = std::fs::read_to_string(script) else {
        return false;
    };
    source
        .lines()
        .map(str::trim)
        .take_while(|line| line.starts_with("--"))
        .any(|line| line.starts_with(OURS_ONLY_MARKER))
}

fn run_script(
    bin: &Path,
    root: &Path,
    script: &Path,
    env: &[(String, String)],
) -> Result<(), Failed> {
    let relative = script.strip_prefix(root).unwrap_or(script);
    let mut child = Command::new(bin)
        .arg("run")
        .arg(relative)
        .current_dir(root)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("failed to start {}: {e}", bin.display()))?;
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let out_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let err_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break Some(status);
        }
        if started.elapsed() > SCRIPT_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    // A Rust panic fails the script whatever its exit code says.
    if stderr.contains("panicked at") {
        return Err(format!(
            "{} panicked (exit status {status:?})\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
            relative.display()
        )
        .into());
    }
    match status {
        Some(status) if status.success() => Ok(()),
        Some(status) => Err(format!(
            "{} exited with {status}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
            relative.display()
        )
        .into()),
        None => Err(format!(
            "{} did not finish within {SCRIPT_TIMEOUT:?}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
            relative.display()
        )
        .into()),
    }
}
