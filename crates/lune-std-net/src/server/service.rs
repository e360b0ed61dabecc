//! One request through a Luau handler: read the body within limits, build the
//! request table, run the handler on its own Luau thread, and turn what it
//! returns into a response. Handler errors become 500s and go to stderr.

use std::{future::Future, net::SocketAddr, pin::Pin, rc::Rc};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use lune_std_serde::compression::{self, CompressionFormat};
use mlua::prelude::*;

use super::config::ServeConfig;
use async_tungstenite::{
    WebSocketStream,
    tungstenite::{handshake::derive_accept_key, protocol::Role},
};
use mlua_luau_scheduler::LuaSpawnExt;

use crate::{
    rt::FuturesIo,
    shared::{
        body::bytes_from_lua,
        headers, request,
        websocket::{self, WebSocket},
    },
};

type HttpResponse = Response<Full<Bytes>>;

struct Inner {
    lua: Lua,
    handle_request: Option<LuaFunction>,
    handle_web_socket: Option<LuaFunction>,
    max_body_size: usize,
}

/// The hyper service of one connection: shared server state and the peer.
#[derive(Clone)]
pub(crate) struct Service {
    inner: Rc<Inner>,
    peer: Option<SocketAddr>,
}

impl Service {
    pub(crate) fn new(lua: Lua, config: ServeConfig) -> Self {
        Self {
            inner: Rc::new(Inner {
                lua,
                handle_request: config.handle_request,
                handle_web_socket: config.handle_web_socket,
                max_body_size: config.max_body_size,
            }),
            peer: None,
        }
    }

    /// The same server, for a connection from `peer`.
    pub(crate) fn for_peer(&self, peer: SocketAddr) -> Self {
        Self {
            inner: self.inner.clone(),
            peer: Some(peer),
        }
    }
}

impl hyper::service::Service<Request<Incoming>> for Service {
    type Response = HttpResponse;
    type Error = std::convert::Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, Self::Error>>>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let inner = self.inner.clone();
        let peer = self.peer;
        Box::pin(async move { Ok(handle(&inner, peer, request).await) })
    }
}

fn is_websocket_upgrade(request: &Request<Incoming>) -> bool {
    let has_token = |name, token: &str| {
        request
            .headers()
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    };
    has_token(header::CONNECTION, "upgrade") && has_token(header::UPGRADE, "websocket")
}

async fn handle(
    inner: &Inner,
    peer: Option<SocketAddr>,
    request: Request<Incoming>,
) -> HttpResponse {
    if let Some(handler) = inner.handle_web_socket.as_ref()
        && is_websocket_upgrade(&request)
    {
        return upgrade(&inner.lua, handler.clone(), peer, request);
    }
    let Some(handler) = inner.handle_request.clone() else {
        let mut response = plain(
            StatusCode::UPGRADE_REQUIRED,
            "This server only accepts WebSocket connections",
        );
        response
            .headers_mut()
            .insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        return response;
    };
    let (parts, body) = request.into_parts();
    let body = match read_body(&parts.headers, body, inner.max_body_size).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let table = match request::request_table(&inner.lua, &parts, &body, peer) {
        Ok(table) => table,
        Err(e) => {
            return internal_error(&format!(
                "net.serve: failed to build the request table: {e}"
            ));
        }
    };
    match handler.call_async::<LuaValue>(table).await {
        Ok(value) => match response_from_lua(value) {
            Ok(response) => response,
            Err(e) => internal_error(&format!(
                "net.serve: the request handler returned an invalid response: {e}"
            )),
        },
        Err(e) => internal_error(&format!("net.serve: the request handler errored:\n{e}")),
    }
}

/// Answers a WebSocket upgrade with 101 and hands the upgraded connection to
/// `handleWebSocket(socket, request)` on its own Luau thread. A handler error
/// is reported and closes the socket with 1011.
fn upgrade(
    lua: &Lua,
    handler: LuaFunction,
    peer: Option<SocketAddr>,
    mut request: Request<Incoming>,
) -> HttpResponse {
    let Some(key) = request.headers().get(header::SEC_WEBSOCKET_KEY).cloned() else {
        return plain(StatusCode::BAD_REQUEST, "Missing Sec-WebSocket-Key header");
    };
    let version_ok = request
        .headers()
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_some_and(|v| v.as_bytes() == b"13");
    if !version_ok {
        let mut response = plain(
            StatusCode::UPGRADE_REQUIRED,
            "Unsupported WebSocket version",
        );
        response.headers_mut().insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        return response;
    }
    let (parts, body) = request.into_parts();
    let table = match request::request_table(lua, &parts, &[], peer) {
        Ok(table) => table,
        Err(e) => {
            return internal_error(&format!(
                "net.serve: failed to build the request table: {e}"
            ));
        }
    };
    request = Request::from_parts(parts, body);
    let on_upgrade = hyper::upgrade::on(&mut request);
    let lua_inner = lua.clone();
    lua.spawn_local(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let stream = WebSocketStream::from_raw_socket(
            FuturesIo(upgraded),
            Role::Server,
            Some(websocket::config()),
        )
        .await;
        let socket = WebSocket::new(stream, None);
        let handle = socket.handle();
        let result = match websocket::into_object(&lua_inner, socket) {
            Ok(object) => handler.call_async::<()>((object, table)).await,
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            eprintln!("net.serve: the WebSocket handler errored:\n{e}");
            handle.close(1011, "Internal error").await;
        }
    });
    let accept = derive_accept_key(key.as_bytes());
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let map = response.headers_mut();
    map.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    map.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(value) = HeaderValue::from_str(&accept) {
        map.insert(header::SEC_WEBSOCKET_ACCEPT, value);
    }
    response
}

/// Reads the request body, answering 413 past the limit without buffering the
/// rest, and decompressing a known `Content-Encoding`.
async fn read_body(
    headers: &http::HeaderMap,
    body: Incoming,
    limit: usize,
) -> Result<Bytes, HttpResponse> {
    let too_large = || {
        let mut response = plain(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("Request body is larger than the server's limit of {limit} bytes"),
        );
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        response
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(too_large());
    }
    let bytes = match Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => return Err(too_large()),
        Err(e) => {
            return Err(plain(
                StatusCode::BAD_REQUEST,
                &format!("Failed to read the request body: {e}"),
            ));
        }
    };
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase());
    match encoding.as_deref().and_then(CompressionFormat::from_header) {
        Some(format) if !bytes.is_empty() => {
            let decoded = blocking::unblock(move || compression::decompress(format, &bytes)).await;
            match decoded {
                Ok(decoded) if decoded.len() <= limit => Ok(Bytes::from(decoded)),
                Ok(_) => Err(too_large()),
                Err(e) => Err(plain(
                    StatusCode::BAD_REQUEST,
                    &format!("Failed to decompress the request body: {e}"),
                )),
            }
        }
        _ => Ok(bytes),
    }
}

/// A handler's return value: a string or buffer (200, `text/plain`) or a
/// table `{ status?, headers?, body? }`.
fn response_from_lua(value: LuaValue) -> LuaResult<HttpResponse> {
    match value {
        LuaValue::String(_) | LuaValue::Buffer(_) => {
            let body = bytes_from_lua(&value, "response body")?;
            let mut response = Response::new(Full::new(body));
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            Ok(response)
        }
        LuaValue::Table(table) => {
            let status = match table.raw_get::<LuaValue>("status")? {
                LuaValue::Nil => StatusCode::OK,
                // Lune coerces numeric strings, so "404" works as well as 404.
                other => match lua_number(&other) {
                    Some(n) => status_code(n)?,
                    None => {
                        return Err(LuaError::runtime(format!(
                            "'status' must be a number, got {}",
                            lune_utils::type_name(&other)
                        )));
                    }
                },
            };
            let body = match table.raw_get::<LuaValue>("body")? {
                LuaValue::Nil => Bytes::new(),
                other => bytes_from_lua(&other, "response body")?,
            };
            let headers = match table.raw_get::<LuaValue>("headers")? {
                LuaValue::Nil => Vec::new(),
                LuaValue::Table(t) => headers::read_headers(Some(t))?,
                other => {
                    return Err(LuaError::runtime(format!(
                        "'headers' must be a table, got {}",
                        lune_utils::type_name(&other)
                    )));
                }
            };
            let mut response = Response::new(Full::new(body));
            *response.status_mut() = status;
            let map = response.headers_mut();
            for (name, value) in headers {
                // The body's length is known; hyper frames it. A handler's own
                // framing headers could only contradict it.
                if name != header::CONTENT_LENGTH && name != header::TRANSFER_ENCODING {
                    map.append(name, value);
                }
            }
            Ok(response)
        }
        other => Err(LuaError::runtime(format!(
            "expected a string, buffer or table {{ status?, headers?, body? }}, got {}",
            lune_utils::type_name(&other)
        ))),
    }
}

/// A number, or a string that holds one.
fn lua_number(value: &LuaValue) -> Option<f64> {
    match value {
        LuaValue::Integer(n) => Some(*n as f64),
        LuaValue::Number(n) => Some(*n),
        LuaValue::String(s) => s.to_str().ok()?.trim().parse().ok(),
        _ => None,
    }
}

fn status_code(n: f64) -> LuaResult<StatusCode> {
    if n.fract() != 0.0 || !(200.0..=999.0).contains(&n) {
        return Err(LuaError::runtime(format!(
            "'status' must be a whole number from 200 to 999 (1xx statuses are not final responses), got {n}"
        )));
    }
    StatusCode::from_u16(n as u16)
        .map_err(|e| LuaError::runtime(format!("'status' {n} is not a valid status code: {e}")))
}

fn plain(status: StatusCode, text: &str) -> HttpResponse {
    let mut response = Response::new(Full::new(Bytes::copy_from_slice(text.as_bytes())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

/// Reports `message` on stderr and answers 500.
fn internal_error(message: &str) -> HttpResponse {
    eprintln!("{message}");
    plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
}
