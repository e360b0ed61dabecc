//! Reference servers and clients in plain Rust on ONE thread, on either of two
//! runtimes: `--rt tokio` (the default; tokio's `current_thread` runtime, the
//! limit lune is measured against) or `--rt smol` (the async-io + async-executor
//! stack lune itself is built on). Every mode has one implementation, generic
//! over the runtime.
//!
//! - `bench-ref [--rt R] http [port] [--exit-after N]`: hyper HTTP/1.1 hello
//!   world (keep-alive); `/__connections` answers how many connections it has
//!   accepted; with `--exit-after`, exits once it has answered N requests and
//!   a client has left (so a profiler sees a clean exit)
//! - `bench-ref http-luau [port] [--exit-after N]`: the hyper + Luau
//!   reference (tokio only; see `lune_bench::luau_server`): the hello
//!   handler of `scripts/bench/serve.luau` run by one Luau VM per request
//! - `bench-ref [--rt R] ws [port]`: async-tungstenite echo server
//! - `bench-ref [--rt R] tcp-sink [port]`: reads and discards everything
//! - `bench-ref [--rt R] http-client <url> <requests> <workers>`: exactly that
//!   many keep-alive GETs over `workers` connections, prints req/s
//! - `bench-ref [--rt R] ws-client <url> <messages>`: 32-byte echo round trips,
//!   prints msgs/s
//! - `bench-ref [--rt R] tcp-write <host:port> <mib>`: writes MiB to a sink,
//!   prints MiB/s
//!
//! Servers bind 127.0.0.1 (port 0, any free port, by default) and print
//! `ready <port>` once bound.

use std::{
    convert::Infallible,
    future::Future,
    io,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use async_executor::LocalExecutor;
use async_tungstenite::tungstenite::Message;
use bytes::Bytes;
use futures_lite::{AsyncRead, AsyncWrite, AsyncWriteExt, StreamExt};
use http_body_util::{BodyExt, Empty, Full};

/// A single-threaded async runtime and its TCP types. Every future spawned
/// is `Send` only because tokio's `spawn` asks it; nothing leaves the thread.
trait Runtime {
    type Listener;
    /// A connected socket, `TCP_NODELAY` set.
    type Stream: Send + Unpin + 'static;
    /// The socket as futures-io, for WebSocket and raw TCP.
    type Io: AsyncRead + AsyncWrite + Send + Unpin + 'static;
    /// The socket as hyper wants it.
    type HyperIo: hyper::rt::Read + hyper::rt::Write + Send + Unpin + 'static;

    fn block_on<F: Future>(future: F) -> F::Output;
    fn spawn<T: Send + 'static>(
        future: impl Future<Output = T> + Send + 'static,
    ) -> impl Future<Output = T>;
    fn spawn_detached(future: impl Future<Output = ()> + Send + 'static);
    /// Binds 127.0.0.1:`port`; returns the listener and the bound port.
    async fn bind(port: u16) -> io::Result<(Self::Listener, u16)>;
    async fn accept(listener: &Self::Listener) -> io::Result<Self::Stream>;
    async fn connect(addr: &str) -> io::Result<Self::Stream>;
    fn io(stream: Self::Stream) -> Self::Io;
    fn hyper_io(stream: Self::Stream) -> Self::HyperIo;
}

/// tokio's `current_thread` runtime.
struct Tokio;

impl Runtime for Tokio {
    type Listener = tokio::net::TcpListener;
    type Stream = tokio::net::TcpStream;
    type Io = async_tungstenite::tokio::TokioAdapter<tokio::net::TcpStream>;
    type HyperIo = hyper_util::rt::TokioIo<tokio::net::TcpStream>;

    fn block_on<F: Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime")
            .block_on(future)
    }

    fn spawn<T: Send + 'static>(
        future: impl Future<Output = T> + Send + 'static,
    ) -> impl Future<Output = T> {
        let handle = tokio::spawn(future);
        async move { handle.await.expect("task panicked") }
    }

    fn spawn_detached(future: impl Future<Output = ()> + Send + 'static) {
        drop(tokio::spawn(future));
    }

    async fn bind(port: u16) -> io::Result<(Self::Listener, u16)> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let port = listener.local_addr()?.port();
        Ok((listener, port))
    }

    async fn accept(listener: &Self::Listener) -> io::Result<Self::Stream> {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    async fn connect(addr: &str) -> io::Result<Self::Stream> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    fn io(stream: Self::Stream) -> Self::Io {
        async_tungstenite::tokio::TokioAdapter::new(stream)
    }

    fn hyper_io(stream: Self::Stream) -> Self::HyperIo {
        hyper_util::rt::TokioIo::new(stream)
    }
}

/// smol's stack: async-io's reactor and an async-executor `LocalExecutor`.
struct Smol;

thread_local! {
    static SMOL: LocalExecutor<'static> = const { LocalExecutor::new() };
}

impl Runtime for Smol {
    type Listener = async_net::TcpListener;
    type Stream = async_net::TcpStream;
    type Io = async_net::TcpStream;
    type HyperIo = smol_hyper::rt::FuturesIo<async_net::TcpStream>;

    fn block_on<F: Future>(future: F) -> F::Output {
        SMOL.with(|exec| async_io::block_on(exec.run(future)))
    }

    fn spawn<T: Send + 'static>(
        future: impl Future<Output = T> + Send + 'static,
    ) -> impl Future<Output = T> {
        SMOL.with(|exec| exec.spawn(future))
    }

    fn spawn_detached(future: impl Future<Output = ()> + Send + 'static) {
        SMOL.with(|exec| exec.spawn(future).detach());
    }

    async fn bind(port: u16) -> io::Result<(Self::Listener, u16)> {
        let listener = async_net::TcpListener::bind(("127.0.0.1", port)).await?;
        let port = listener.local_addr()?.port();
        Ok((listener, port))
    }

    async fn accept(listener: &Self::Listener) -> io::Result<Self::Stream> {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    async fn connect(addr: &str) -> io::Result<Self::Stream> {
        let stream = async_net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    fn io(stream: Self::Stream) -> Self::Io {
        stream
    }

    fn hyper_io(stream: Self::Stream) -> Self::HyperIo {
        smol_hyper::rt::FuturesIo::new(stream)
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let positional = lune_bench::positional(&args);
    let result = if positional.first() == Some(&"http-luau") {
        let port = positional.get(1).and_then(|p| p.parse().ok()).unwrap_or(0);
        lune_bench::luau_server::serve(port, lune_bench::arg(&args, "--exit-after", 0))
    } else {
        match lune_bench::arg(&args, "--rt", String::from("tokio")).as_str() {
            "tokio" => run::<Tokio>(&args),
            "smol" => run::<Smol>(&args),
            other => Err(format!("unknown runtime '{other}' (tokio or smol)")),
        }
    };
    if let Err(e) = result {
        eprintln!("bench-ref: {e}");
        std::process::exit(1);
    }
}

/// Runs the mode `args` name on runtime `R`.
fn run<R: Runtime>(args: &[String]) -> Result<(), String> {
    let positional = lune_bench::positional(args);
    let arg = |i: usize| positional.get(i).copied().unwrap_or_default();
    let number = |i: usize, default: usize| arg(i).parse().unwrap_or(default);
    let port = || match arg(1) {
        "" => Ok(0),
        port => port
            .parse::<u16>()
            .map_err(|e| format!("port '{port}': {e}")),
    };
    let exit_after: u64 = lune_bench::arg(args, "--exit-after", 0);
    R::block_on(async {
        match arg(0) {
            "http" => http_server::<R>(port()?, exit_after).await,
            "ws" => ws_server::<R>(port()?).await,
            "tcp-sink" => tcp_sink::<R>(port()?).await,
            "http-client" => http_client::<R>(arg(1), number(2, 3000), number(3, 1)).await,
            "ws-client" => ws_client::<R>(arg(1), number(2, 10_000)).await,
            "tcp-write" => tcp_write::<R>(arg(1), number(2, 1024)).await,
            other => Err(format!("unknown mode '{other}'")),
        }
    })
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

async fn bind<R: Runtime>(port: u16) -> Result<R::Listener, String> {
    let (listener, port) = R::bind(port).await.map_err(err)?;
    println!("ready {port}");
    Ok(listener)
}

/// Counts of an HTTP server, shared by its connections.
#[derive(Default)]
struct Counts {
    accepted: AtomicU64,
    served: AtomicU64,
}

async fn http_server<R: Runtime>(port: u16, exit_after: u64) -> Result<(), String> {
    let listener = bind::<R>(port).await?;
    let counts = Arc::new(Counts::default());
    loop {
        let stream = R::accept(&listener).await.map_err(err)?;
        counts.accepted.fetch_add(1, Ordering::Relaxed);
        let counts = counts.clone();
        R::spawn_detached(async move {
            let service_counts = counts.clone();
            let service =
                hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let body = if req.uri().path() == "/__connections" {
                        Bytes::from(service_counts.accepted.load(Ordering::Relaxed).to_string())
                    } else {
                        service_counts.served.fetch_add(1, Ordering::Relaxed);
                        Bytes::from_static(b"Hello, World!")
                    };
                    async move { Ok::<_, Infallible>(http::Response::new(Full::new(body))) }
                });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(R::hyper_io(stream), service)
                .await;
            if exit_after > 0 && counts.served.load(Ordering::Relaxed) >= exit_after {
                std::process::exit(0);
            }
        });
    }
}

async fn ws_server<R: Runtime>(port: u16) -> Result<(), String> {
    let listener = bind::<R>(port).await?;
    loop {
        let stream = R::accept(&listener).await.map_err(err)?;
        R::spawn_detached(async move {
            let Ok(mut ws) = async_tungstenite::accept_async(R::io(stream)).await else {
                return;
            };
            while let Some(Ok(message)) = ws.next().await {
                if (message.is_text() || message.is_binary()) && ws.send(message).await.is_err() {
                    break;
                }
            }
        });
    }
}

async fn tcp_sink<R: Runtime>(port: u16) -> Result<(), String> {
    let listener = bind::<R>(port).await?;
    loop {
        let stream = R::accept(&listener).await.map_err(err)?;
        R::spawn_detached(async move {
            let _ = futures_lite::io::copy(R::io(stream), futures_lite::io::sink()).await;
        });
    }
}

/// A URL's parsed form and its `host:port`.
fn parse_url(url: &str) -> Result<(http::Uri, String), String> {
    let uri: http::Uri = url.parse().map_err(err)?;
    let authority = uri
        .authority()
        .map(ToString::to_string)
        .ok_or("url needs a host")?;
    Ok((uri, authority))
}

/// One keep-alive HTTP/1.1 connection that GETs one path.
struct Http1 {
    sender: hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    authority: String,
    path: String,
}

impl Http1 {
    async fn connect<R: Runtime>(authority: &str, path: &str) -> Result<Self, String> {
        let stream = R::connect(authority).await.map_err(err)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(R::hyper_io(stream))
            .await
            .map_err(err)?;
        R::spawn_detached(async move {
            let _ = conn.await;
        });
        Ok(Self {
            sender,
            authority: authority.to_string(),
            path: path.to_string(),
        })
    }

    async fn get(&mut self) -> Result<(), String> {
        let request = http::Request::get(self.path.as_str())
            .header("host", &self.authority)
            .body(Empty::<Bytes>::new())
            .map_err(err)?;
        let response = self.sender.send_request(request).await.map_err(err)?;
        response.into_body().collect().await.map_err(err)?;
        Ok(())
    }
}

/// Exactly `requests` GETs, spread over `workers` keep-alive connections.
async fn http_client<R: Runtime>(url: &str, requests: usize, workers: usize) -> Result<(), String> {
    let (uri, authority) = parse_url(url)?;
    let workers = workers.max(1);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..workers {
        let count = requests / workers + usize::from(worker < requests % workers);
        let mut client = Http1::connect::<R>(&authority, uri.path()).await?;
        tasks.push(R::spawn(async move {
            for _ in 0..count {
                client.get().await?;
            }
            Ok::<_, String>(())
        }));
    }
    for task in tasks {
        task.await?;
    }
    println!("{:.1}", requests as f64 / start.elapsed().as_secs_f64());
    Ok(())
}

async fn ws_client<R: Runtime>(url: &str, messages: usize) -> Result<(), String> {
    let (_, authority) = parse_url(url)?;
    let stream = R::connect(&authority).await.map_err(err)?;
    let (mut ws, _) = async_tungstenite::client_async(url, R::io(stream))
        .await
        .map_err(err)?;
    let payload = "x".repeat(32);
    let start = Instant::now();
    for _ in 0..messages {
        ws.send(Message::text(payload.clone())).await.map_err(err)?;
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(_) | Message::Binary(_))) => break,
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.to_string()),
                None => return Err("closed".into()),
            }
        }
    }
    println!("{:.1}", messages as f64 / start.elapsed().as_secs_f64());
    Ok(())
}

async fn tcp_write<R: Runtime>(addr: &str, mib: usize) -> Result<(), String> {
    let mut stream = R::io(R::connect(addr).await.map_err(err)?);
    let chunk = vec![7u8; 1024 * 1024];
    let start = Instant::now();
    for _ in 0..mib {
        stream.write_all(&chunk).await.map_err(err)?;
    }
    stream.close().await.map_err(err)?;
    println!("{:.1}", mib as f64 / start.elapsed().as_secs_f64());
    Ok(())
}
