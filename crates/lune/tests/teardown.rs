//! A script that ends with servers, connections, sockets and streams still
//! open exits with its own exit code and never a panic (NET-SPEC Part E 5),
//! and SIGINT/SIGTERM end it with 130/143 after closing its listeners.
//!
//! Regression: a script that ended with an HTTPS server's HTTP/2
//! connection open died with "tasks can only be spawned within an active
//! scheduler" and exit code 101 (inside Lune: "panic in a function that
//! cannot unwind", an abort), because a connection's `Drop` spawned a task
//! while the scheduler was tearing down.

use std::{
    io::{BufRead, BufReader, Read},
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    sync::OnceLock,
    time::{Duration, Instant},
};

const SCRIPT: &str = "crates/lune/tests/teardown/states.luau";

/// Every state `states.luau` can open.
const STATES: &[&str] = &[
    "http1",
    "http2",
    "tls_plaintext_peer",
    "websocket",
    "tcp_listen",
    "listener_open",
    "streamed_bodies",
    "sse",
    "udp",
    "client_objects",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The fixture servers' variables (for the TLS certificate), started once.
fn env() -> &'static [(String, String)] {
    static ENV: OnceLock<Vec<(String, String)>> = OnceLock::new();
    ENV.get_or_init(|| {
        let fixtures = lune_test_fixtures::start().expect("the fixtures start");
        let mut env = fixtures.env();
        if let Some((_, ca)) = env.iter().find(|(k, _)| k == "LUNE_TEST_CA_FILE") {
            env.push(("SSL_CERT_FILE".into(), ca.clone()));
        }
        // The servers live as long as the test process.
        std::mem::forget(fixtures);
        env
    })
}

fn lune(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lune"));
    command
        .arg("run")
        .args(args)
        .current_dir(root())
        .envs(env().iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null());
    command
}

/// Runs `states.luau` with `ending` and `states` and checks that it printed
/// "open", exited with `code` and that no panic was reported.
fn ends_cleanly(ending: &str, states: &[&str], code: i32) {
    let mut args = vec![SCRIPT, ending];
    args.extend_from_slice(states);
    let mut child = lune(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lune starts");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{ending} {states:?}: the script did not end"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let Output { stdout, stderr, .. } = child.wait_with_output().expect("output");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&stdout),
        String::from_utf8_lossy(&stderr),
    );
    let context =
        format!("{ending} {states:?}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}");
    assert!(stdout.contains("open"), "the states opened: {context}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("panic"),
        "no panic: {context}"
    );
    assert_eq!(status.code(), Some(code), "exit code: {context}");
}

#[test]
fn exit_with_each_state_open() {
    for state in STATES {
        ends_cleanly("exit", &[state], 0);
    }
}

#[test]
fn exit_with_every_state_open() {
    ends_cleanly("exit", STATES, 0);
}

#[test]
fn an_erroring_thread_then_exit_with_every_state_open() {
    ends_cleanly("error_then_exit", STATES, 1);
}

#[test]
fn the_script_ends_with_objects_open() {
    ends_cleanly("end", &["client_objects"], 0);
}

/// Regression: a listener nobody accepted from ran its accept loop on the
/// scheduler, so a script that ended (or failed) with it open never exited.
#[test]
fn a_listener_left_open_kept_the_script_running() {
    ends_cleanly("end", &["listener_open"], 0);
    ends_cleanly("error", &["listener_open"], 1);
}

#[test]
fn the_script_errors_with_objects_open() {
    ends_cleanly("error", &["client_objects"], 1);
}

/// A server on a Unix socket and on TCP, ended by `signal`: the exit code
/// is 128 + the signal, the socket file is gone, nothing panicked.
fn ended_by(signal: i32) {
    let dir = std::env::temp_dir().join(format!("lune-signal-{}-{signal}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let socket = dir.join("server.sock");
    let script = dir.join("serve.luau");
    std::fs::write(
        &script,
        format!(
            r#"local net = require("@lune/net")
local unix = net.serve(0, {{ unixSocket = "{}", handleRequest = function() return "x" end }})
local tcp = net.serve(0, function() return "y" end)
print("open")
"#,
            socket.display()
        ),
    )
    .expect("the script is written");
    let script = script.to_string_lossy().into_owned();
    let mut child = lune(&[&script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lune starts");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("a line");
    assert_eq!(line.trim(), "open", "the servers are up");
    assert!(socket.exists(), "the Unix socket file exists while serving");
    let pid = libc::pid_t::try_from(child.id()).expect("a pid");
    // SAFETY: kill only sends a signal to the child this test started.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0, "the signal is sent");
    let status = child.wait().expect("the script ends");
    let mut stderr = String::new();
    if let Some(mut err) = child.stderr.take() {
        err.read_to_string(&mut stderr).expect("stderr");
    }
    assert!(!stderr.contains("panic"), "no panic: {stderr}");
    assert_eq!(status.code(), Some(128 + signal), "stderr: {stderr}");
    assert!(!socket.exists(), "the Unix socket file was removed");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sigint_exits_130_with_listeners_closed() {
    ended_by(libc::SIGINT);
}

#[test]
fn sigterm_exits_143_with_listeners_closed() {
    ended_by(libc::SIGTERM);
}
