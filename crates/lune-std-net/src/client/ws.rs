//! `net.socket`: the WebSocket client handshake (RFC 6455 §4.1) as an
//! HTTP/1.1 upgrade over the shared connect path.

use std::fmt;

use async_tungstenite::tungstenite::{
    handshake::{client::generate_key, derive_accept_key},
    protocol::Role,
};
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, StatusCode, header};
use http_body_util::Empty;
use hyper::{client::conn::http1, upgrade::Upgraded};
use mlua::prelude::*;

use super::{
    proxy,
    request::{host_header, origin_form},
};
use crate::{
    rt::{
        ConnTasks, FuturesIo, Stream,
        connect::{self, ConnectError, DEFAULT_CONNECT_TIMEOUT, Proxy, Target, Tls},
        tls::{Alpn, CertProblem, ClientTls},
    },
    shared::{
        headers,
        options::{self, Options},
        websocket::{self, deflate},
    },
};

/// A WebSocket over an upgraded HTTP connection, client or server side.
pub(super) type UpgradedSocket = websocket::WebSocket<websocket::Wire<FuturesIo<Upgraded>>>;

/// `net.socket(url, options?)`.
pub(crate) struct SocketConfig {
    pub(super) url: String,
    pub(super) headers: Vec<(HeaderName, HeaderValue)>,
    pub(super) protocols: Vec<String>,
    /// Connect to this Unix socket; the URL's host only names the `Host` header.
    pub(super) unix_socket: Option<std::path::PathBuf>,
    pub(super) settings: websocket::Settings,
    /// How long connecting (TCP, proxy, TLS) may take.
    pub(super) timeout: std::time::Duration,
    /// `options.tls`, for wss.
    pub(super) tls: ClientTls,
}

impl SocketConfig {
    pub(crate) fn from_lua_args(url: LuaValue, options: Option<LuaTable>) -> LuaResult<Self> {
        let mut config = Self {
            url: options::url(&url, "net.socket")?,
            headers: Vec::new(),
            protocols: Vec::new(),
            unix_socket: None,
            settings: websocket::Settings::default(),
            timeout: DEFAULT_CONNECT_TIMEOUT,
            tls: ClientTls::default(),
        };
        if let Some(options) = options {
            let fields = Options::new(&options);
            config.headers = headers::read_headers(fields.table("headers")?)?;
            config.protocols = fields.strings("protocols")?;
            config.unix_socket = fields.path("unixSocket")?;
            config.settings = websocket::Settings::from_options(&fields, "compress")?;
            if let Some(timeout) = fields.seconds("timeout")? {
                config.timeout = timeout;
            }
            config.tls = fields.client_tls("tls")?.unwrap_or_default();
        }
        Ok(config)
    }
}

/// Why a WebSocket could not be opened.
#[derive(Debug)]
pub(crate) enum SocketError {
    Url(String),
    Connect(ConnectError),
    Http {
        url: String,
        source: hyper::Error,
    },
    NotUpgraded {
        url: String,
        status: StatusCode,
    },
    BadAccept {
        url: String,
    },
    UnofferedProtocol {
        url: String,
        protocol: String,
    },
    /// The server's `Sec-WebSocket-Extensions` answer is not one we can take.
    Extensions {
        url: String,
        problem: String,
    },
}

impl fmt::Display for SocketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Url(message) => write!(f, "{message}"),
            Self::Connect(e) => write!(f, "{e}"),
            Self::Http { url, source } => match CertProblem::of(source) {
                Some(problem) => write!(
                    f,
                    "WebSocket handshake with {url} failed: {}",
                    problem.describe(url, url, false)
                ),
                None => write!(f, "WebSocket handshake with {url} failed: {source}"),
            },
            Self::NotUpgraded { url, status } => write!(
                f,
                "Server at {url} did not upgrade to a WebSocket (it answered {status})"
            ),
            Self::BadAccept { url } => write!(
                f,
                "WebSocket handshake with {url} failed: the server's Sec-WebSocket-Accept is wrong"
            ),
            Self::UnofferedProtocol { url, protocol } => write!(
                f,
                "WebSocket handshake with {url} failed: the server chose subprotocol '{protocol}', which was not offered"
            ),
            Self::Extensions { url, problem } => {
                write!(f, "WebSocket handshake with {url} failed: {problem}")
            }
        }
    }
}

impl std::error::Error for SocketError {}

/// Connects and completes the WebSocket handshake.
pub(crate) async fn connect(config: SocketConfig) -> Result<UpgradedSocket, SocketError> {
    let url = crate::url::parse(&config.url, &["ws", "wss"]).map_err(SocketError::Url)?;
    let http_error = |source| SocketError::Http {
        url: config.url.clone(),
        source,
    };
    let stream = open(&url, &config).await?;
    let (mut sender, conn) = http1::Builder::new()
        .handshake::<_, Empty<Bytes>>(stream)
        .await
        .map_err(http_error)?;
    // Runs (while the handshake below waits on it) until the upgrade, then
    // hands the connection over.
    let tasks = ConnTasks::new();
    tasks.spawn(async move {
        // A failed connection fails the request the handshake awaits.
        let _ = conn.with_upgrades().await;
    });
    let key = generate_key();
    let request = handshake_request(&url, &config, &key)?;
    let response = tasks
        .drive(sender.send_request(request))
        .await
        .map_err(http_error)?;
    let protocol = check_response(&response, &key, &config)?;
    let deflate =
        deflate::accepted(response.headers(), config.settings.compress).map_err(|problem| {
            SocketError::Extensions {
                url: config.url.clone(),
                problem,
            }
        })?;
    let upgraded = tasks
        .drive(hyper::upgrade::on(response))
        .await
        .map_err(http_error)?;
    let stream = config
        .settings
        .stream(FuturesIo(upgraded), Role::Client, deflate)
        .await;
    Ok(websocket::WebSocket::new(
        stream,
        protocol,
        &config.settings,
    ))
}

/// The connection a handshake goes over: to the URL's host, through
/// `HTTP(S)_PROXY` by a CONNECT tunnel for ws and wss alike (as browsers
/// do), or to `unixSocket` (never proxied, plain only), within the timeout.
async fn open(url: &url::Url, config: &SocketConfig) -> Result<Stream, SocketError> {
    let tls = (url.scheme() == "wss").then_some(Tls {
        alpn: Alpn::Http1,
        options: &config.tls,
    });
    if config.unix_socket.is_some() && tls.is_some() {
        return Err(SocketError::Url(format!(
            "Cannot connect to '{}' over a Unix socket - wss is not supported there, use ws",
            config.url
        )));
    }
    let proxy = match &config.unix_socket {
        Some(_) => None,
        None => proxy::for_url(url).map_err(SocketError::Url)?,
    };
    let target = Target {
        host: url.host_str().unwrap_or_default(),
        port: url.port_or_known_default().unwrap_or(80),
        unix: config.unix_socket.as_deref(),
        tls,
        proxy: proxy.as_ref().map(|addr| Proxy { addr, tunnel: true }),
        user_agent: None,
    };
    connect::open(&target, config.timeout)
        .await
        .map_err(SocketError::Connect)
}

/// The upgrade request (RFC 6455 §4.1) with the script's headers (its own
/// `Host` replaces ours) and the offered subprotocols.
fn handshake_request(
    url: &url::Url,
    config: &SocketConfig,
    key: &str,
) -> Result<Request<Empty<Bytes>>, SocketError> {
    let invalid =
        |e: String| SocketError::Url(format!("Invalid WebSocket url '{}': {e}", config.url));
    let mut request = Request::get(origin_form(url))
        .header(header::HOST, host_header(url).map_err(invalid)?)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_VERSION, "13")
        .header(header::SEC_WEBSOCKET_KEY, key)
        .body(Empty::new())
        .map_err(|e| invalid(e.to_string()))?;
    let map = request.headers_mut();
    for (name, value) in &config.headers {
        if name == header::HOST {
            map.insert(name.clone(), value.clone());
        } else {
            map.append(name.clone(), value.clone());
        }
    }
    if !config.protocols.is_empty() {
        let offered = HeaderValue::from_str(&config.protocols.join(", "))
            .map_err(|_| SocketError::Url("Invalid WebSocket protocol name".to_string()))?;
        map.insert(header::SEC_WEBSOCKET_PROTOCOL, offered);
    }
    if config.settings.compress {
        map.insert(
            header::SEC_WEBSOCKET_EXTENSIONS,
            HeaderValue::from_static(deflate::OFFER),
        );
    }
    Ok(request)
}

/// Checks the server's answer to the handshake: 101, the right
/// `Sec-WebSocket-Accept`, and no subprotocol that was not offered (it may
/// choose none, RFC 6455 §4.1). Gives the chosen subprotocol.
fn check_response<B>(
    response: &http::Response<B>,
    key: &str,
    config: &SocketConfig,
) -> Result<Option<String>, SocketError> {
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        return Err(SocketError::NotUpgraded {
            url: config.url.clone(),
            status: response.status(),
        });
    }
    let accept_ok = response
        .headers()
        .get(header::SEC_WEBSOCKET_ACCEPT)
        .is_some_and(|v| v.as_bytes() == derive_accept_key(key.as_bytes()).as_bytes());
    if !accept_ok {
        return Err(SocketError::BadAccept {
            url: config.url.clone(),
        });
    }
    let protocol = response
        .headers()
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_string());
    if let Some(chosen) = &protocol
        && !config.protocols.iter().any(|p| p == chosen)
    {
        return Err(SocketError::UnofferedProtocol {
            url: config.url.clone(),
            protocol: chosen.clone(),
        });
    }
    Ok(protocol)
}
