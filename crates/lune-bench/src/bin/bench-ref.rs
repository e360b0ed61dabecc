//! Reference servers and clients in plain Rust on one executor thread:
//!
//! - `bench-ref http <port>`: hyper HTTP/1.1 hello world (keep-alive);
//!   `/__connections` answers how many connections it has accepted
//! - `bench-ref ws <port>`: async-tungstenite echo server
//! - `bench-ref tcp-sink <port>`: reads and discards everything
//! - `bench-ref http-client <url> <requests> <workers>`: keep-alive GETs, prints req/s
//! - `bench-ref ws-client <url> <messages>`: 32-byte echo round trips, prints msgs/s
//! - `bench-ref tcp-write <host:port> <mib>`: writes MiB to a sink, prints MiB/s
//!
//! - `bench-ref load <url> <connections> <seconds>`: keep-alive GET load over
//!   that many connections; prints `<requests/s> <p99 ms>`
//!
//! Servers print `ready <port>` once bound.

use std::{convert::Infallible, rc::Rc, time::Instant};

use async_executor::LocalExecutor;
use async_net::{TcpListener, TcpStream};
use async_tungstenite::tungstenite::Message;
use bytes::Bytes;
use futures_lite::{AsyncWriteExt, StreamExt};
use http_body_util::{BodyExt, Empty, Full};
use smol_hyper::rt::FuturesIo;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let exec = Rc::new(LocalExecutor::new());
    let mode = args.get(1).map_or("", String::as_str);
    let arg = |i: usize| args.get(i).cloned().unwrap_or_default();
    let result = async_io::block_on(exec.run(async {
        match mode {
            "http" => http_server(&exec, &arg(2)).await,
            "ws" => ws_server(&exec, &arg(2)).await,
            "tcp-sink" => tcp_sink(&exec, &arg(2)).await,
            "http-client" => {
                http_client(
                    &exec,
                    &arg(2),
                    arg(3).parse().unwrap_or(3000),
                    arg(4).parse().unwrap_or(1),
                )
                .await
            }
            "ws-client" => ws_client(&arg(2), arg(3).parse().unwrap_or(10_000)).await,
            "tcp-write" => tcp_write(&arg(2), arg(3).parse().unwrap_or(1024)).await,
            "load" => {
                load(
                    &exec,
                    &arg(2),
                    arg(3).parse().unwrap_or(64),
                    arg(4).parse().unwrap_or(5.0),
                )
                .await
            }
            other => Err(format!("unknown mode '{other}'")),
        }
    }));
    if let Err(e) = result {
        eprintln!("bench-ref: {e}");
        std::process::exit(1);
    }
}

async fn bind(port: &str) -> Result<TcpListener, String> {
    let listener = TcpListener::bind(format!("127.0.0.1:{port}"))
        .await
        .map_err(|e| e.to_string())?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    println!("ready {port}");
    Ok(listener)
}

async fn http_server(exec: &Rc<LocalExecutor<'_>>, port: &str) -> Result<(), String> {
    let listener = bind(port).await?;
    let accepted = Rc::new(std::cell::Cell::new(0u64));
    loop {
        let (stream, _) = listener.accept().await.map_err(|e| e.to_string())?;
        let _ = stream.set_nodelay(true);
        accepted.set(accepted.get() + 1);
        let accepted = accepted.clone();
        exec.spawn(async move {
            let service =
                hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let body = if req.uri().path() == "/__connections" {
                        Bytes::from(accepted.get().to_string())
                    } else {
                        Bytes::from_static(b"Hello, World!")
                    };
                    async move { Ok::<_, Infallible>(http::Response::new(Full::new(body))) }
                });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(FuturesIo::new(stream), service)
                .await;
        })
        .detach();
    }
}

async fn ws_server(exec: &Rc<LocalExecutor<'_>>, port: &str) -> Result<(), String> {
    let listener = bind(port).await?;
    loop {
        let (stream, _) = listener.accept().await.map_err(|e| e.to_string())?;
        let _ = stream.set_nodelay(true);
        exec.spawn(async move {
            let Ok(mut ws) = async_tungstenite::accept_async(stream).await else {
                return;
            };
            while let Some(Ok(message)) = ws.next().await {
                if (message.is_text() || message.is_binary()) && ws.send(message).await.is_err() {
                    break;
                }
            }
        })
        .detach();
    }
}

async fn tcp_sink(exec: &Rc<LocalExecutor<'_>>, port: &str) -> Result<(), String> {
    let listener = bind(port).await?;
    loop {
        let (stream, _) = listener.accept().await.map_err(|e| e.to_string())?;
        exec.spawn(async move {
            let _ = futures_lite::io::copy(stream, futures_lite::io::sink()).await;
        })
        .detach();
    }
}

/// A URL's parsed form and its `host:port`.
fn parse_url(url: &str) -> Result<(http::Uri, String), String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e: http::uri::InvalidUri| e.to_string())?;
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
    async fn connect(
        exec: &LocalExecutor<'_>,
        authority: &str,
        path: &str,
    ) -> Result<Self, String> {
        let stream = TcpStream::connect(authority)
            .await
            .map_err(|e| e.to_string())?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http1::handshake(FuturesIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        exec.spawn(async move {
            let _ = conn.await;
        })
        .detach();
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
            .map_err(|e| e.to_string())?;
        let response = self
            .sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }
}

async fn http_client(
    exec: &Rc<LocalExecutor<'_>>,
    url: &str,
    requests: usize,
    workers: usize,
) -> Result<(), String> {
    let (uri, authority) = parse_url(url)?;
    let workers = workers.max(1);
    let per_worker = requests / workers;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let mut client = Http1::connect(exec, &authority, uri.path()).await?;
        tasks.push(exec.spawn(async move {
            for _ in 0..per_worker {
                client.get().await?;
            }
            Ok::<_, String>(())
        }));
    }
    for task in tasks {
        task.await?;
    }
    println!(
        "{:.1}",
        (per_worker * workers) as f64 / start.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn ws_client(url: &str, messages: usize) -> Result<(), String> {
    let (_, authority) = parse_url(url)?;
    let stream = TcpStream::connect(&authority)
        .await
        .map_err(|e| e.to_string())?;
    let _ = stream.set_nodelay(true);
    let (mut ws, _) = async_tungstenite::client_async(url, stream)
        .await
        .map_err(|e| e.to_string())?;
    let payload = "x".repeat(32);
    let start = Instant::now();
    for _ in 0..messages {
        ws.send(Message::text(payload.clone()))
            .await
            .map_err(|e| e.to_string())?;
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

async fn tcp_write(addr: &str, mib: usize) -> Result<(), String> {
    let mut stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let chunk = vec![7u8; 1024 * 1024];
    let start = Instant::now();
    for _ in 0..mib {
        stream.write_all(&chunk).await.map_err(|e| e.to_string())?;
    }
    stream.close().await.map_err(|e| e.to_string())?;
    println!("{:.1}", mib as f64 / start.elapsed().as_secs_f64());
    Ok(())
}

async fn load(
    exec: &Rc<LocalExecutor<'_>>,
    url: &str,
    connections: usize,
    seconds: f64,
) -> Result<(), String> {
    let (uri, authority) = parse_url(url)?;
    let warmup = std::time::Duration::from_secs_f64((seconds / 5.0).min(1.0));
    let measure = std::time::Duration::from_secs_f64(seconds);
    let measure_from = Instant::now() + warmup;
    let measure_until = measure_from + measure;
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let mut client = Http1::connect(exec, &authority, uri.path()).await?;
        tasks.push(exec.spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let sent = Instant::now();
                if sent >= measure_until {
                    return Ok::<_, String>(latencies);
                }
                client.get().await?;
                if sent >= measure_from {
                    latencies.push(sent.elapsed());
                }
            }
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await?);
    }
    all.sort();
    let p99 = lune_bench::percentile(&all, 99.0);
    println!(
        "{:.1} {:.3}",
        all.len() as f64 / measure.as_secs_f64(),
        p99.as_secs_f64() * 1000.0
    );
    Ok(())
}
