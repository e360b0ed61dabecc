//! `net.serve` arguments: a handler function or a config table.

use super::compress::Compress;
use std::{net::IpAddr, path::PathBuf, sync::Arc, time::Duration};

use mlua::prelude::*;
use rustls::ServerConfig;

use super::listener::max_connections;
use crate::shared::{options::Options, websocket};

/// Requests with bodies larger than this get 413 unless `maxBodySize` says otherwise.
pub(super) const DEFAULT_MAX_BODY_SIZE: usize = 128 * 1024 * 1024;
/// Connections that do not finish sending request headers within this are closed.
pub(super) const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// A request body that makes no progress for this long gets 408.
pub(super) const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// A peer that takes no bytes of a response for this long is disconnected.
pub(super) const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// What HTTPS serving offers by ALPN.
pub(super) const HTTP_ALPN: &[&[u8]] = &[b"h2", b"http/1.1"];

/// Everything `net.serve` was asked to do.
pub(crate) struct ServeConfig {
    pub(super) address: IpAddr,
    pub(super) handle_request: Option<LuaFunction>,
    pub(super) handle_web_socket: Option<LuaFunction>,
    pub(super) tls: Option<Arc<ServerConfig>>,
    pub(super) max_body_size: usize,
    pub(super) header_timeout: Duration,
    pub(super) body_timeout: Duration,
    pub(super) send_timeout: Duration,
    /// WebSocket subprotocols the server speaks, in its order of preference.
    pub(super) protocols: Vec<String>,
    /// Serve on this Unix socket instead of a TCP port.
    pub(super) unix_socket: Option<PathBuf>,
    pub(super) reuse_port: bool,
    pub(super) max_connections: Option<usize>,
    /// How long a connection with no request and no traffic is kept.
    pub(super) idle_timeout: Option<Duration>,
    /// `maxMessageSize` and `pingInterval` of upgraded `WebSocket`s.
    pub(super) websocket: websocket::Settings,
    /// `streamBodies`: handlers run at the head and read the body through
    /// `request.bodyReader`.
    pub(super) stream_bodies: bool,
    /// `compress`: how responses are compressed, if they are.
    pub(super) compress: Option<Compress>,
}

impl FromLua for ServeConfig {
    fn from_lua(value: LuaValue, _: &Lua) -> LuaResult<Self> {
        let mut config = Self {
            address: IpAddr::from([127, 0, 0, 1]),
            handle_request: None,
            handle_web_socket: None,
            tls: None,
            max_body_size: DEFAULT_MAX_BODY_SIZE,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            send_timeout: DEFAULT_SEND_TIMEOUT,
            protocols: Vec::new(),
            unix_socket: None,
            reuse_port: false,
            max_connections: None,
            idle_timeout: None,
            websocket: websocket::Settings::default(),
            stream_bodies: false,
            compress: None,
        };
        let table = match value {
            LuaValue::Function(f) => {
                config.handle_request = Some(f);
                return Ok(config);
            }
            LuaValue::Table(t) => t,
            other => {
                return Err(LuaError::runtime(format!(
                    "net.serve expects a handler function or a config table, got {}",
                    lune_utils::type_name(&other)
                )));
            }
        };
        let fields = Options::new(&table);
        config.handle_request = fields.function("handleRequest")?;
        config.handle_web_socket = fields.function("handleWebSocket")?;
        if config.handle_request.is_none() && config.handle_web_socket.is_none() {
            return Err(LuaError::runtime(
                "net.serve config needs 'handleRequest' or 'handleWebSocket' (a function)",
            ));
        }
        if let Some(address) = fields.address("address")? {
            config.address = address;
        }
        config.tls = fields.server_tls("tls", HTTP_ALPN)?;
        if let Some(size) = fields.size("maxBodySize")? {
            config.max_body_size = size;
        }
        if let Some(timeout) = fields.seconds("headerTimeout")? {
            config.header_timeout = timeout;
        }
        if let Some(timeout) = fields.seconds("bodyTimeout")? {
            config.body_timeout = timeout;
        }
        if let Some(timeout) = fields.seconds("sendTimeout")? {
            config.send_timeout = timeout;
        }
        config.protocols = fields.strings("protocols")?;
        config.unix_socket = fields.path("unixSocket")?;
        if config.unix_socket.is_some() && config.tls.is_some() {
            return Err(LuaError::runtime(
                "net.serve config has both 'unixSocket' and 'tls' - TLS is not supported on a Unix socket",
            ));
        }
        config.reuse_port = fields.flag("reusePort")?.unwrap_or(false);
        config.max_connections = max_connections(&fields)?;
        config.idle_timeout = fields.seconds("idleTimeout")?;
        config.stream_bodies = fields.flag("streamBodies")?.unwrap_or(false);
        config.compress = Compress::from_options(&fields)?;
        config.websocket = websocket::Settings::from_options(&fields, "wsCompress")?;
        Ok(config)
    }
}
