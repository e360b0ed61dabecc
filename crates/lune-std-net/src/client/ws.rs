//! `net.socket`: the WebSocket client handshake over the shared connect path.

use async_tungstenite::tungstenite::{self, client::IntoClientRequest};
use http::{HeaderName, HeaderValue};
use mlua::prelude::*;

use super::{connect, tls::Alpn};
use crate::shared::{headers, stream::Stream, websocket};

/// `net.socket(url, options?)`.
pub(crate) struct SocketConfig {
    pub(crate) url: String,
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    pub(crate) protocols: Vec<String>,
}

impl SocketConfig {
    pub(crate) fn from_lua_args(url: LuaValue, options: Option<LuaTable>) -> LuaResult<Self> {
        let LuaValue::String(url) = url else {
            return Err(LuaError::runtime(format!(
                "net.socket expects a url string, got {}",
                lune_utils::type_name(&url)
            )));
        };
        let mut config = Self {
            url: url.to_str()?.to_string(),
            headers: Vec::new(),
            protocols: Vec::new(),
        };
        if let Some(options) = options {
            config.headers = headers::read_headers(options.get("headers")?)?;
            if let Some(protocols) = options.get::<Option<LuaTable>>("protocols")? {
                for protocol in protocols.sequence_values::<String>() {
                    config.protocols.push(protocol?);
                }
            }
        }
        Ok(config)
    }
}

/// Connects and completes the WebSocket handshake.
pub(crate) async fn connect(config: SocketConfig) -> Result<websocket::WebSocket<Stream>, String> {
    let url = crate::url::parse(&config.url, &["ws", "wss"])?;
    let host = url.host_str().unwrap_or_default().to_string();
    let port = url.port_or_known_default().unwrap_or(80);
    let tls = (url.scheme() == "wss").then_some(Alpn::Http1);
    let stream = connect::connect(&host, port, tls)
        .await
        .map_err(|e| e.to_string())?;
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| format!("Invalid WebSocket url '{}': {e}", config.url))?;
    for (name, value) in config.headers {
        request.headers_mut().append(name, value);
    }
    if !config.protocols.is_empty() {
        let offered = HeaderValue::from_str(&config.protocols.join(", "))
            .map_err(|_| "Invalid WebSocket protocol name".to_string())?;
        request
            .headers_mut()
            .insert("sec-websocket-protocol", offered);
    }
    let (stream, response) =
        async_tungstenite::client_async_with_config(request, stream, Some(websocket::config()))
            .await
            .map_err(|e| match e {
                tungstenite::Error::Http(response) => format!(
                    "Server at {} did not upgrade to a WebSocket (it answered {})",
                    config.url,
                    response.status()
                ),
                other => format!("WebSocket handshake with {} failed: {other}", config.url),
            })?;
    let protocol = response
        .headers()
        .get("sec-websocket-protocol")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    Ok(websocket::WebSocket::new(stream, protocol))
}
