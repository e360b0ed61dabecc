//! The one connect path, [`open`]: DNS, TCP, an optional proxy (a `CONNECT`
//! tunnel, or plain HTTP to a forward proxy) and TLS, or a Unix socket, all
//! within one time bound. Every client socket is made here: `net.request`
//! (and `net.sse.connect` through it), `net.socket`, `net.tcp.connect` and
//! `net.unix.connect`.

use std::{fmt, io, net::SocketAddr, path::Path, time::Duration};

use async_io::Async;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use futures_rustls::TlsConnector;
use http::HeaderValue;
use rustls_pki_types::ServerName;

use super::{
    Stream, TcpConn, UnixConn,
    tls::{Alpn, CertProblem, ClientTls},
};

/// How long a connection may take to be made when the call sets no bound.
pub(crate) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Where a client connection goes.
pub(crate) struct Target<'a> {
    /// A name or an IP literal (`[::1]` too); over a Unix socket, only a name.
    pub(crate) host: &'a str,
    pub(crate) port: u16,
    /// Connect to this Unix socket instead (never with TLS or a proxy).
    pub(crate) unix: Option<&'a Path>,
    pub(crate) tls: Option<Tls<'a>>,
    pub(crate) proxy: Option<Proxy<'a>>,
    /// Sent to a proxy with `CONNECT`.
    pub(crate) user_agent: Option<&'a HeaderValue>,
}

/// TLS over a client connection: the protocols it offers by ALPN, and the
/// trust, client certificate and name it uses.
pub(crate) struct Tls<'a> {
    pub(crate) alpn: Alpn,
    pub(crate) options: &'a ClientTls,
}

/// A proxy between the client and its target.
pub(crate) struct Proxy<'a> {
    /// The proxy's host and port.
    pub(crate) addr: &'a (String, u16),
    /// `CONNECT` even without TLS (a WebSocket, as browsers do); otherwise a
    /// plain connection is one to the proxy, which forwards each request.
    pub(crate) tunnel: bool,
}

impl<'a> Target<'a> {
    /// The Unix socket at `path`.
    pub(crate) fn unix(path: &'a Path) -> Self {
        Self {
            host: "",
            port: 0,
            unix: Some(path),
            tls: None,
            proxy: None,
            user_agent: None,
        }
    }

    fn name(&self) -> String {
        match self.unix {
            Some(path) => path.display().to_string(),
            None => format!("{}:{}", bare(self.host), self.port),
        }
    }
}

/// `host` without the brackets of an IPv6 literal.
pub(crate) fn bare(host: &str) -> &str {
    host.trim_start_matches('[').trim_end_matches(']')
}

/// Opens a connection to `target`, failing with `Timeout` once it has
/// taken `limit`.
pub(crate) async fn open(target: &Target<'_>, limit: Duration) -> Result<Stream, ConnectError> {
    futures_lite::future::or(open_unbounded(target), async {
        async_io::Timer::after(limit).await;
        Err(ConnectError::Timeout {
            addr: target.name(),
            after: limit,
        })
    })
    .await
}

async fn open_unbounded(target: &Target<'_>) -> Result<Stream, ConnectError> {
    if let Some(path) = target.unix {
        return unix(path).await;
    }
    let tcp = match &target.proxy {
        Some(proxy) if proxy.tunnel || target.tls.is_some() => {
            tunnel(proxy.addr, target.host, target.port, target.user_agent).await?
        }
        Some(proxy) => tcp(&proxy.addr.0, proxy.addr.1).await?,
        None => tcp(target.host, target.port).await?,
    };
    match &target.tls {
        Some(tls) => self::tls(tcp, target.host, tls.alpn, tls.options).await,
        None => Ok(Stream::Plain(tcp)),
    }
}

/// Why a connection could not be made.
#[derive(Debug)]
pub(crate) enum ConnectError {
    Resolve {
        host: String,
        source: io::Error,
    },
    Connect {
        addr: String,
        source: io::Error,
    },
    Tls {
        host: String,
        /// The name sent and verified (`tls.serverName`, else the host).
        name: String,
        own_ca: bool,
        source: io::Error,
    },
    Proxy(String),
    /// The trust roots named by the environment are unusable.
    Trust(String),
    /// The HTTP/1.1 or HTTP/2 handshake over a new connection failed.
    Handshake(hyper::Error),
    Timeout {
        addr: String,
        after: Duration,
    },
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Resolve { host, source } => {
                write!(
                    f,
                    "Failed to resolve host '{host}' - DNS lookup failed ({source})"
                )
            }
            Self::Connect { addr, source } => match source.kind() {
                io::ErrorKind::ConnectionRefused => write!(f, "Connection refused ({addr})"),
                _ => write!(f, "Failed to connect to {addr} ({source})"),
            },
            Self::Tls {
                host,
                name,
                own_ca,
                source,
            } => match CertProblem::of(source) {
                Some(problem) => write!(f, "{}", problem.describe(host, name, *own_ca)),
                None => write!(f, "TLS handshake with '{host}' failed: {source}"),
            },
            Self::Proxy(message) | Self::Trust(message) => write!(f, "{message}"),
            Self::Handshake(e) => write!(f, "HTTP handshake failed: {e}"),
            Self::Timeout { addr, after } => write!(
                f,
                "Connecting to {addr} timed out after {} seconds",
                after.as_secs_f64()
            ),
        }
    }
}

impl std::error::Error for ConnectError {}

/// The addresses of `host` (a name, or an IP literal, `[::1]` too) at `port`.
pub(crate) async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, ConnectError> {
    let bare = bare(host);
    match bare.parse::<std::net::IpAddr>() {
        Ok(ip) => Ok(vec![SocketAddr::new(ip, port)]),
        Err(_) => async_net::resolve((bare, port))
            .await
            .map_err(|source| ConnectError::Resolve {
                host: bare.to_string(),
                source,
            }),
    }
}

/// Opens a TCP connection to `host:port`, trying each resolved address.
async fn tcp(host: &str, port: u16) -> Result<TcpConn, ConnectError> {
    let addrs = resolve(host, port).await?;
    let mut last = None;
    for addr in &addrs {
        match Async::<std::net::TcpStream>::connect(*addr)
            .await
            .and_then(|stream| TcpConn::new(stream.into_inner()?))
        {
            Ok(stream) => {
                // Only a latency setting: a socket that refuses it still works.
                let _ = stream.get_ref().set_nodelay(true);
                return Ok(stream);
            }
            Err(e) => last = Some((addr, e)),
        }
    }
    let (addr, source) = match last {
        Some((addr, e)) => (addr.to_string(), e),
        None => (
            format!("{}:{port}", bare(host)),
            io::Error::new(io::ErrorKind::NotFound, "no addresses found"),
        ),
    };
    Err(ConnectError::Connect { addr, source })
}

/// Opens a connection to the Unix socket at `path`.
async fn unix(path: &Path) -> Result<Stream, ConnectError> {
    Async::<std::os::unix::net::UnixStream>::connect(path)
        .await
        .and_then(|stream| UnixConn::new(stream.into_inner()?))
        .map(Stream::Unix)
        .map_err(|source| ConnectError::Connect {
            addr: path.display().to_string(),
            source,
        })
}

/// Wraps `tcp` in client TLS for `host` as `options` say: verified against
/// their trust, for their server name (else the host), presenting their
/// client certificate if any.
pub(crate) async fn tls(
    tcp: TcpConn,
    host: &str,
    alpn: Alpn,
    options: &ClientTls,
) -> Result<Stream, ConnectError> {
    let host = bare(host);
    let name = options.server_name.as_deref().unwrap_or(host);
    let failed = |source| ConnectError::Tls {
        host: host.to_string(),
        name: name.to_string(),
        own_ca: options.own_ca(),
        source,
    };
    let server_name = ServerName::try_from(name.to_string())
        .map_err(|e| failed(io::Error::new(io::ErrorKind::InvalidInput, e)))?;
    let config = options.config(alpn).map_err(ConnectError::Trust)?;
    let stream = TlsConnector::from(config)
        .connect(server_name, tcp)
        .await
        .map_err(failed)?;
    Ok(Stream::ClientTls(Box::new(
        super::stream::ClientTlsConn::new(stream),
    )))
}

/// Opens a `CONNECT` tunnel to `host:port` through the proxy at `proxy`.
async fn tunnel(
    proxy: &(String, u16),
    host: &str,
    port: u16,
    user_agent: Option<&HeaderValue>,
) -> Result<TcpConn, ConnectError> {
    let mut tcp = self::tcp(&proxy.0, proxy.1).await?;
    // The authority of an IPv6 literal keeps its brackets.
    let mut request =
        format!("CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n").into_bytes();
    if let Some(user_agent) = user_agent {
        request.extend_from_slice(b"User-Agent: ");
        request.extend_from_slice(user_agent.as_bytes());
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"\r\n");
    let proxy_name = format!("{}:{}", proxy.0, proxy.1);
    let fail = |e: io::Error| ConnectError::Proxy(format!("Proxy {proxy_name} failed: {e}"));
    tcp.write_all(&request).await.map_err(fail)?;
    // Read the proxy's reply up to the blank line, byte by byte so that no
    // bytes of the tunnelled stream are consumed.
    let mut head = Vec::with_capacity(256);
    let mut byte = [0u8; 1];
    let read_head = async {
        while !head.ends_with(b"\r\n\r\n") {
            if head.len() > 16 * 1024 {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "reply too long"));
            }
            if tcp.read(&mut byte).await? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed during CONNECT",
                ));
            }
            head.push(byte[0]);
        }
        Ok(())
    };
    // Bounded by the deadline of `open`.
    read_head.await.map_err(fail)?;
    let status_line = String::from_utf8_lossy(&head);
    let status_line = status_line.lines().next().unwrap_or_default();
    let ok = status_line
        .split_whitespace()
        .nth(1)
        .is_some_and(|code| code.starts_with('2'));
    if !ok {
        return Err(ConnectError::Proxy(format!(
            "Proxy {proxy_name} refused to tunnel to {host}:{port}: {status_line}"
        )));
    }
    Ok(tcp)
}
