//! Memory comes back after load: a server that held 1000 keep-alive
//! connections and answered 10 000 requests returns to within 2x its idle
//! resident memory once the clients are gone.
//!
//! Regression: 1000 connections plus load took a server from 8.8 MB to
//! 47.9 MB resident, and it stayed there after every client left.

mod common;

use common::Server;
use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    time::{Duration, Instant},
};

const CONNECTIONS: usize = 1000;
const REQUESTS_PER_CONNECTION: usize = 10;

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

/// Reads one response (headers and a Content-Length body) from `stream`.
fn read_response(reader: &mut BufReader<&TcpStream>) {
    let mut length = 0usize;
    let mut line = String::new();
    loop {
        line.clear();
        reader.read_line(&mut line).expect("a response line");
        assert!(!line.is_empty(), "the server closed the connection early");
        if line == "\r\n" {
            break;
        }
        if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = value.trim().parse().expect("a length");
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).expect("the body");
}

#[test]
fn memory_returns_to_idle_after_load() {
    let server = Server::start("tests/net/hardening/_soak_server.luau", &[]);
    let (pid, port) = (server.pid, server.port);

    let idle_fds = open_fds(pid);
    let idle = server.status_kib("VmRSS");

    let streams: Vec<TcpStream> = (0..CONNECTIONS)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).expect("connects"))
        .collect();
    for round in 0..REQUESTS_PER_CONNECTION {
        for stream in &streams {
            write!(&*stream, "GET /{round} HTTP/1.1\r\nHost: x\r\n\r\n").expect("sends");
        }
        for stream in &streams {
            read_response(&mut BufReader::new(stream));
        }
    }
    let loaded = server.status_kib("VmRSS");
    drop(streams);

    // Wait for the server to notice every client left, then for memory.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut now = server.status_kib("VmRSS");
    while Instant::now() < deadline && (open_fds(pid) > idle_fds || now > 2 * idle) {
        std::thread::sleep(Duration::from_millis(100));
        now = server.status_kib("VmRSS");
    }
    drop(server);
    assert!(
        now <= 2 * idle,
        "resident memory came back to within 2x idle: idle {idle} KiB, loaded {loaded} KiB, after {now} KiB"
    );
}
