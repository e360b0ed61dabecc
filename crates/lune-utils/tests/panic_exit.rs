//! A panic swallowed by whoever runs the panicking code (an executor's
//! detached task, a joined thread) must still end the process non-zero.

use std::process::Command;

const CHILD: &str = "LUNE_UTILS_PANIC_CHILD";

/// Runs in the child process: installs the hook, then panics on a thread
/// whose failure is ignored, as a detached task's would be.
#[test]
fn child_panics_on_a_swallowed_thread() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    lune_utils::exit_on_panic();
    let _ignored = std::thread::spawn(|| panic!("deliberate panic")).join();
    // Only reached when the hook did not end the process.
    std::process::exit(0);
}

#[test]
fn swallowed_panic_exits_non_zero() {
    let exe = std::env::current_exe().expect("the test binary");
    let output = Command::new(exe)
        .args([
            "--exact",
            "child_panics_on_a_swallowed_thread",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .output()
        .expect("the child runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(lune_utils::PANIC_EXIT_CODE),
        "a panic ends the process with the panic exit code; stderr: {stderr}"
    );
    assert!(
        stderr.contains("deliberate panic"),
        "the message is printed: {stderr}"
    );
}
