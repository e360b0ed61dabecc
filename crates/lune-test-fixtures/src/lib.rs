//! Local servers for the Luau test suite and the benchmarks: an httpbin-like
//! HTTP/1.1 server, the same over TLS (HTTP/2 by ALPN) with a certificate
//! authority made at start, one that requires a client certificate signed
//! by that authority, an untrusted TLS server, a forward proxy, TCP
//! and TLS echo servers, and a blackholed address (connecting to it never
//! completes). Nothing here touches the internet.

use std::{io, path::PathBuf, sync::Arc};

use async_net::{TcpListener, TcpStream};
use futures_rustls::TlsAcceptor;
use hyper::service::service_fn;

mod http;
mod proxy;
mod rt;
mod tls;

use crate::{
    http::ConnInfo,
    rt::{Exec, HyperIo, SmolTimer},
};

/// The running fixtures: what scripts need to reach them.
pub struct Fixtures {
    env: Vec<(String, String)>,
}

impl Fixtures {
    /// The `LUNE_TEST_*` environment variables for test scripts.
    #[must_use]
    pub fn env(&self) -> Vec<(String, String)> {
        self.env.clone()
    }
}

/// Starts every fixture server on `127.0.0.1`, port 0. They run on
/// background threads until the process exits.
pub fn start() -> io::Result<Fixtures> {
    let certs = tls::generate()?;
    let dir = std::env::temp_dir().join(format!("lune-test-fixtures-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let ca_file: PathBuf = dir.join("ca.pem");
    std::fs::write(&ca_file, &certs.ca_pem)?;

    let http = bind()?;
    let https = bind()?;
    let untrusted = bind()?;
    let proxy = bind()?;
    let tcp_echo = bind()?;
    let tls_echo = bind()?;
    let drop_mid_body = bind()?;
    let mtls = bind()?;
    let blackhole = blackhole()?;
    let addr = |l: &TcpListener| l.local_addr();
    let env = vec![
        (
            "LUNE_TEST_HTTP".into(),
            format!("http://127.0.0.1:{}", addr(&http)?.port()),
        ),
        (
            "LUNE_TEST_HTTPS".into(),
            format!("https://localhost:{}", addr(&https)?.port()),
        ),
        (
            "LUNE_TEST_HTTPS_UNTRUSTED".into(),
            format!("https://localhost:{}", addr(&untrusted)?.port()),
        ),
        (
            "LUNE_TEST_CA_FILE".into(),
            ca_file.to_string_lossy().into_owned(),
        ),
        ("LUNE_TEST_TLS_CERT".into(), certs.for_scripts.cert.clone()),
        ("LUNE_TEST_TLS_KEY".into(), certs.for_scripts.key.clone()),
        ("LUNE_TEST_CA_PEM".into(), certs.ca_pem.clone()),
        ("LUNE_TEST_CLIENT_CERT".into(), certs.client.cert.clone()),
        ("LUNE_TEST_CLIENT_KEY".into(), certs.client.key.clone()),
        (
            "LUNE_TEST_OTHER_NAME_CERT".into(),
            certs.other_name.cert.clone(),
        ),
        (
            "LUNE_TEST_OTHER_NAME_KEY".into(),
            certs.other_name.key.clone(),
        ),
        ("LUNE_TEST_EXPIRED_CERT".into(), certs.expired.cert.clone()),
        ("LUNE_TEST_EXPIRED_KEY".into(), certs.expired.key.clone()),
        (
            "LUNE_TEST_NOT_YET_VALID_CERT".into(),
            certs.not_yet_valid.cert.clone(),
        ),
        (
            "LUNE_TEST_NOT_YET_VALID_KEY".into(),
            certs.not_yet_valid.key.clone(),
        ),
        ("LUNE_TEST_PRIVATE_CA".into(), certs.private_ca_pem.clone()),
        (
            "LUNE_TEST_PRIVATE_CERT".into(),
            certs.private_server.cert.clone(),
        ),
        (
            "LUNE_TEST_PRIVATE_KEY".into(),
            certs.private_server.key.clone(),
        ),
        (
            "LUNE_TEST_MTLS".into(),
            format!("https://localhost:{}", addr(&mtls)?.port()),
        ),
        (
            "LUNE_TEST_PROXY".into(),
            format!("http://127.0.0.1:{}", addr(&proxy)?.port()),
        ),
        (
            "LUNE_TEST_TCP_ECHO".into(),
            format!("127.0.0.1:{}", addr(&tcp_echo)?.port()),
        ),
        (
            "LUNE_TEST_TLS_ECHO".into(),
            format!("localhost:{}", addr(&tls_echo)?.port()),
        ),
        ("LUNE_TEST_BLACKHOLE".into(), blackhole.to_string()),
        (
            "LUNE_TEST_HTTP_DROP".into(),
            format!("http://127.0.0.1:{}", addr(&drop_mid_body)?.port()),
        ),
    ];

    let http_tls = TlsAcceptor::from(tls::server_config(
        &certs.server,
        &[b"h2", b"http/1.1"],
        None,
    )?);
    let untrusted_tls = TlsAcceptor::from(tls::server_config(
        &certs.untrusted,
        &[b"h2", b"http/1.1"],
        None,
    )?);
    let echo_tls = TlsAcceptor::from(tls::server_config(&certs.server, &[], None)?);
    let mtls_tls = TlsAcceptor::from(tls::server_config(
        &certs.server,
        &[b"http/1.1"],
        Some(&certs.ca_pem),
    )?);

    rt::spawn(accept_loop(http, None, serve_http));
    rt::spawn(accept_loop(https, Some(http_tls), serve_http));
    rt::spawn(accept_loop(untrusted, Some(untrusted_tls), serve_http));
    rt::spawn(accept_loop(mtls, Some(mtls_tls), serve_http));
    rt::spawn(accept_loop(proxy, None, |stream, _| serve_proxy(stream)));
    rt::spawn(accept_loop(tcp_echo, None, |stream, _| echo(stream)));
    rt::spawn(accept_loop(tls_echo, Some(echo_tls), |stream, _| {
        echo(stream)
    }));
    rt::spawn(accept_loop(drop_mid_body, None, |stream, _| {
        drop_mid_body_reply(stream)
    }));
    Ok(Fixtures { env })
}

/// An address whose connects hang: a listener with a backlog of 0 that
/// never accepts, its queue filled by one connection of its own, so the
/// kernel drops every further SYN (as a firewall that drops packets does).
/// Both sockets live until the process exits.
fn blackhole() -> io::Result<std::net::SocketAddr> {
    use socket2::{Domain, Socket, Type};
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    listener.bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())?;
    listener.listen(0)?;
    let addr = listener
        .local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::other("the blackhole is not an IP socket"))?;
    let filler = std::net::TcpStream::connect(addr)?;
    std::mem::forget(listener);
    std::mem::forget(filler);
    Ok(addr)
}

fn bind() -> io::Result<TcpListener> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    TcpListener::try_from(listener)
}

/// A TCP connection, after TLS when the server has it.
enum Conn {
    Plain(TcpStream),
    Tls(Box<futures_rustls::server::TlsStream<TcpStream>>),
}

impl Conn {
    fn is_h2(&self) -> bool {
        match self {
            Self::Plain(_) => false,
            Self::Tls(s) => s.get_ref().1.alpn_protocol() == Some(b"h2"),
        }
    }
}

async fn accept_loop<F, Fut>(listener: TcpListener, tls: Option<TlsAcceptor>, serve: F)
where
    F: Fn(Conn, ConnInfo) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let serve = Arc::new(serve);
    loop {
        let Ok((tcp, peer)) = listener.accept().await else {
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let tls = tls.clone();
        let serve = serve.clone();
        rt::spawn(async move {
            let info = ConnInfo {
                id: http::connection_id(),
                peer,
                tls: tls.is_some(),
            };
            let conn = match tls {
                None => Conn::Plain(tcp),
                Some(acceptor) => match acceptor.accept(tcp).await {
                    Ok(stream) => Conn::Tls(Box::new(stream)),
                    Err(_) => return,
                },
            };
            serve(conn, info).await;
        });
    }
}

async fn serve_http(conn: Conn, info: ConnInfo) {
    let service = service_fn(move |request| http::handle(request, info));
    if conn.is_h2() {
        let Conn::Tls(stream) = conn else { return };
        let _ = hyper::server::conn::http2::Builder::new(Exec)
            .timer(SmolTimer::new())
            .serve_connection(HyperIo::new(stream), service)
            .await;
        return;
    }
    let builder = hyper::server::conn::http1::Builder::new();
    let _ = match conn {
        Conn::Plain(stream) => {
            builder
                .serve_connection(HyperIo::new(stream), service)
                .with_upgrades()
                .await
        }
        Conn::Tls(stream) => {
            builder
                .serve_connection(HyperIo::new(stream), service)
                .with_upgrades()
                .await
        }
    };
}

async fn serve_proxy(conn: Conn) {
    let Conn::Plain(stream) = conn else { return };
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(HyperIo::new(stream), service_fn(proxy::handle))
        .with_upgrades()
        .await;
}

/// Answers any request with a head promising 1000 bytes, sends 10 and
/// closes: a connection that breaks mid-body.
async fn drop_mid_body_reply(conn: Conn) {
    let Conn::Plain(mut stream) = conn else {
        return;
    };
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match futures_lite::AsyncReadExt::read(&mut stream, &mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789";
    let _ = futures_lite::AsyncWriteExt::write_all(&mut stream, reply).await;
}

async fn echo(conn: Conn) {
    match conn {
        Conn::Plain(stream) => {
            let _ = futures_lite::io::copy(stream.clone(), stream).await;
        }
        Conn::Tls(stream) => {
            let (reader, mut writer) = futures_lite::io::split(stream);
            let _ = futures_lite::io::copy(reader, &mut writer).await;
        }
    }
}
