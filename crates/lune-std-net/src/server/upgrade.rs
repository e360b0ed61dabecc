//! WebSocket upgrades on `net.serve`: the handshake answer (with a
//! subprotocol chosen from the server's `protocols`), then the upgraded
//! connection handed to `handleWebSocket(socket, request)` on its own Luau
//! thread. A handler error is reported and closes the socket with 1011.

use std::rc::Rc;

use async_tungstenite::tungstenite::{handshake::derive_accept_key, protocol::Role};
use futures_lite::future;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use mlua::prelude::*;
use mlua_luau_scheduler::LuaSpawnExt;

use super::{
    Lifetime, Shutdown,
    connections::Open,
    request::{self, Peer},
    response::{HttpResponse, plain},
    service,
};
use crate::{
    report,
    rt::FuturesIo,
    shared::{
        body::OutBody,
        websocket::{self, WebSocket, deflate},
    },
};

/// True when `request` asks for a WebSocket.
pub(super) fn is_websocket(headers: &HeaderMap) -> bool {
    let has_token = |name, token: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    };
    has_token(header::CONNECTION, "upgrade") && has_token(header::UPGRADE, "websocket")
}

/// The first subprotocol the client offered that the server speaks.
fn choose_protocol(headers: &HeaderMap, supported: &[String]) -> Option<HeaderValue> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .find(|offered| supported.iter().any(|s| s == offered))
        .and_then(|chosen| HeaderValue::from_str(chosen).ok())
}

/// Answers the upgrade and starts the handler once the connection upgraded.
pub(super) fn upgrade(
    lua: &Lua,
    handler: LuaFunction,
    protocols: &Rc<[String]>,
    settings: websocket::Settings,
    lifetime: &Lifetime,
    peer: &Peer,
    request: Request<Incoming>,
) -> HttpResponse {
    let key = match check_request(request.headers()) {
        Ok(key) => key,
        Err(refusal) => return refusal.response(),
    };
    let protocol = choose_protocol(request.headers(), protocols);
    let deflate = settings
        .compress
        .then(|| deflate::accept(request.headers()))
        .flatten();
    let (parts, body) = request.into_parts();
    let table = match request::request_table(lua, &parts, &[], peer) {
        Ok(table) => table,
        Err(e) => return service::table_failed(&e),
    };
    let mut request = Request::from_parts(parts, body);
    let socket = Upgrading {
        on_upgrade: hyper::upgrade::on(&mut request),
        protocol: protocol
            .as_ref()
            .and_then(|p| p.to_str().ok())
            .map(str::to_string),
        settings,
        deflate: deflate.as_ref().map(|(params, _)| *params),
        // Counted as a connection of the server until the socket is done.
        open: lifetime.connections.open(),
        shutdown: lifetime.shutdown.clone(),
    };
    let lua_inner = lua.clone();
    lua.spawn_local(async move { socket.run(&lua_inner, handler, table).await });
    accepted(&key, protocol, deflate.map(|(_, answer)| answer))
}

/// Why a request is no WebSocket handshake we take (RFC 6455 §4.2.2).
enum Refusal {
    NoKey,
    /// A version other than 13.
    Version,
}

impl Refusal {
    fn response(&self) -> HttpResponse {
        match self {
            Self::NoKey => plain(StatusCode::BAD_REQUEST, "Missing Sec-WebSocket-Key header"),
            Self::Version => {
                let mut response = plain(
                    StatusCode::UPGRADE_REQUIRED,
                    "Unsupported WebSocket version",
                );
                response.headers_mut().insert(
                    header::SEC_WEBSOCKET_VERSION,
                    HeaderValue::from_static("13"),
                );
                response
            }
        }
    }
}

/// The client's key, when the request is a handshake we take.
fn check_request(headers: &http::HeaderMap) -> Result<HeaderValue, Refusal> {
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .cloned()
        .ok_or(Refusal::NoKey)?;
    let version_ok = headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_some_and(|v| v.as_bytes() == b"13");
    if !version_ok {
        return Err(Refusal::Version);
    }
    Ok(key)
}

/// The 101 answer to a handshake with `key`, with the chosen subprotocol
/// and the permessage-deflate answer.
fn accepted(
    key: &HeaderValue,
    protocol: Option<HeaderValue>,
    extensions: Option<HeaderValue>,
) -> HttpResponse {
    let accept = derive_accept_key(key.as_bytes());
    let mut response = Response::new(OutBody::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let map = response.headers_mut();
    map.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    map.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(value) = HeaderValue::from_str(&accept) {
        map.insert(header::SEC_WEBSOCKET_ACCEPT, value);
    }
    if let Some(protocol) = protocol {
        map.insert(header::SEC_WEBSOCKET_PROTOCOL, protocol);
    }
    if let Some(extensions) = extensions {
        map.insert(header::SEC_WEBSOCKET_EXTENSIONS, extensions);
    }
    response
}

/// A WebSocket answered with 101, waiting for hyper to hand it over.
struct Upgrading {
    on_upgrade: hyper::upgrade::OnUpgrade,
    protocol: Option<String>,
    settings: websocket::Settings,
    /// permessage-deflate, when the handshake negotiated it.
    deflate: Option<deflate::Params>,
    open: Open,
    shutdown: Rc<Shutdown>,
}

impl Upgrading {
    /// Runs `handler` with the socket and the request table; a handler
    /// error closes it with 1011, a stopped server with 1001 once the drain
    /// time is over.
    async fn run(self, lua: &Lua, handler: LuaFunction, table: LuaTable) {
        let _open = self.open;
        // The peer left before the upgrade went through: nobody to serve.
        let Ok(upgraded) = self.on_upgrade.await else {
            return;
        };
        let stream = self
            .settings
            .stream(FuturesIo(upgraded), Role::Server, self.deflate)
            .await;
        let socket = WebSocket::new(stream, self.protocol, &self.settings);
        let handle = socket.handle();
        let handled = async {
            match websocket::into_object(lua, socket) {
                Ok(object) => Some(handler.call_async::<()>((object, table)).await),
                Err(e) => Some(Err(e)),
            }
        };
        let shutdown = &self.shutdown;
        let stopped = async {
            shutdown.stopped.wait().await;
            async_io::Timer::after(shutdown.drain.get()).await;
            None
        };
        match future::or(handled, stopped).await {
            Some(Ok(())) => {}
            Some(Err(e)) => {
                report::error(&format!("net.serve: the WebSocket handler errored:\n{e}"));
                handle.close(1011, "Internal error").await;
            }
            None => handle.close(1001, "Server stopping").await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_offered_protocol_the_server_speaks() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("a, chat"),
        );
        headers.append(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("v2"),
        );
        let supported = ["v2".to_string(), "chat".to_string()];
        assert_eq!(
            choose_protocol(&headers, &supported),
            Some(HeaderValue::from_static("chat"))
        );
        assert_eq!(choose_protocol(&headers, &["x".to_string()]), None);
        assert_eq!(choose_protocol(&HeaderMap::new(), &supported), None);
    }
}
