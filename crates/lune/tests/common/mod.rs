//! Helpers for the Rust tests that run a `lune` server as a child process
//! and watch it from outside.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
};

/// A `lune` child running `script` (relative to the workspace root) with
/// `env`, which prints the port it serves on as its first line of output.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) pid: u32,
    pub(crate) port: u16,
}

impl Server {
    pub(crate) fn start(script: &str, env: &[(String, String)]) -> Self {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut child = Command::new(env!("CARGO_BIN_EXE_lune"))
            .args(["run", script])
            .current_dir(&root)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("lune starts");
        let pid = child.id();
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut port = String::new();
        stdout
            .read_line(&mut port)
            .expect("the server prints its port");
        let port = port.trim().parse().expect("a port");
        Self { child, pid, port }
    }

    /// A `/proc/<pid>/status` field in kB (`VmRSS`, `VmHWM`).
    pub(crate) fn status_kib(&self, field: &str) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid)).expect("/proc status");
        status
            .lines()
            .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("a field in kB")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
