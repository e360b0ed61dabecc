//! One request through a Luau handler: route WebSocket upgrades, read the
//! body within limits, build the request table, run the handler on its own
//! Luau thread, and turn what it returns into a response. Handler errors
//! become 500s and are reported on stderr.

use std::{future::Future, pin::Pin, rc::Rc, sync::Arc};

use http::{HeaderValue, Request, StatusCode, header};
use hyper::body::Incoming;
use mlua::prelude::*;

use super::{
    Lifetime,
    body::{self, Limits},
    compress::Compress,
    config::ServeConfig,
    request::{self, Peer},
    response::{self, HttpResponse, plain},
    upgrade,
};
use crate::{report, rt::Activity, shared::websocket};

struct Inner {
    lua: Lua,
    handle_request: Option<LuaFunction>,
    handle_web_socket: Option<LuaFunction>,
    protocols: Rc<[String]>,
    websocket: websocket::Settings,
    limits: Limits,
    stream_bodies: bool,
    compress: Option<Compress>,
    /// Upgraded `WebSocket`s count as connections and end with the server.
    lifetime: Lifetime,
}

/// The hyper service of one connection: shared server state, the peer, and
/// the connection's activity (requests in flight count as activity for
/// `idleTimeout`).
#[derive(Clone)]
pub(crate) struct Service {
    inner: Rc<Inner>,
    peer: Rc<Peer>,
    activity: Option<Arc<Activity>>,
}

impl Service {
    pub(crate) fn new(lua: Lua, config: ServeConfig, lifetime: Lifetime) -> Self {
        Self {
            inner: Rc::new(Inner {
                lua,
                handle_request: config.handle_request,
                handle_web_socket: config.handle_web_socket,
                protocols: config.protocols.into(),
                websocket: config.websocket,
                limits: Limits {
                    max_size: config.max_body_size,
                    timeout: config.body_timeout,
                },
                stream_bodies: config.stream_bodies,
                compress: config.compress,
                lifetime,
            }),
            peer: Rc::default(),
            activity: None,
        }
    }

    /// The same server, for a connection from `peer` whose requests count
    /// in `activity`.
    pub(crate) fn for_connection(&self, peer: Peer, activity: Option<Arc<Activity>>) -> Self {
        Self {
            inner: self.inner.clone(),
            peer: Rc::new(peer),
            activity,
        }
    }
}

impl hyper::service::Service<Request<Incoming>> for Service {
    type Response = HttpResponse;
    type Error = std::convert::Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, Self::Error>>>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let inner = self.inner.clone();
        let peer = self.peer.clone();
        let busy = self.activity.as_ref().map(Activity::busy);
        Box::pin(async move {
            let response = handle(&inner, &peer, request).await;
            drop(busy);
            Ok(response)
        })
    }
}

async fn handle(inner: &Inner, peer: &Peer, request: Request<Incoming>) -> HttpResponse {
    if let Some(handler) = inner.handle_web_socket.as_ref()
        && upgrade::is_websocket(request.headers())
    {
        return upgrade::upgrade(
            &inner.lua,
            handler.clone(),
            &inner.protocols,
            inner.websocket,
            &inner.lifetime,
            peer,
            request,
        );
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
    let (parts, incoming) = request.into_parts();
    // What compression needs of the request, taken only when it is on.
    let compressing = inner
        .compress
        .as_ref()
        .map(|compress| (compress, compress.wanted(&parts.method, &parts.headers)));
    let response = answer(inner, handler, peer, parts, incoming).await;
    match compressing {
        Some((compress, wanted)) => compress.apply(&inner.lua, wanted, response),
        None => response,
    }
}

/// The handler's answer to one request (the body read whole first, or
/// streamed to it with `streamBodies`).
async fn answer(
    inner: &Inner,
    handler: LuaFunction,
    peer: &Peer,
    parts: http::request::Parts,
    incoming: Incoming,
) -> HttpResponse {
    if inner.stream_bodies {
        return handle_streamed(inner, handler, peer, parts, incoming).await;
    }
    let body = match body::read(&parts.headers, incoming, inner.limits).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let table = match request::request_table(&inner.lua, &parts, &body, peer) {
        Ok(table) => table,
        Err(e) => return table_failed(&e),
    };
    run_handler(inner, &handler, table)
        .await
        .unwrap_or_else(|failed| internal_error(&failed))
}

/// `streamBodies`: the handler runs at the head, with `request.body` empty
/// and `request.bodyReader` reading the body within the limits. A body the
/// limits ended is answered 413 or 408 whatever the handler did; one the
/// handler left unread closes the connection after the response.
async fn handle_streamed(
    inner: &Inner,
    handler: LuaFunction,
    peer: &Peer,
    parts: http::request::Parts,
    incoming: Incoming,
) -> HttpResponse {
    let (reader, progress) = match body::stream(&parts.headers, incoming, inner.limits) {
        Ok(streamed) => streamed,
        Err(refusal) => return refusal.response(),
    };
    let table = request::request_table(&inner.lua, &parts, &[], peer).and_then(|table| {
        table.raw_set("bodyReader", inner.lua.create_userdata(reader)?)?;
        Ok(table)
    });
    let table = match table {
        Ok(table) => table,
        Err(e) => return table_failed(&e),
    };
    let response = match run_handler(inner, &handler, table).await {
        Ok(response) => response,
        // A handler that threw because the limits ended the body (its read
        // failed) gets its 413 or 408 from `settle`, unreported; any other
        // error is its own.
        Err(_) if progress.failed() => plain(StatusCode::INTERNAL_SERVER_ERROR, ""),
        Err(failed) => internal_error(&failed),
    };
    // Also lets go of a body the handler left unread, whatever it answered.
    progress.settle(response).await
}

/// Runs the handler on the request table: the response it returns, or why
/// there is none (it threw, or returned something that is no response).
async fn run_handler(
    inner: &Inner,
    handler: &LuaFunction,
    table: LuaTable,
) -> Result<HttpResponse, String> {
    match handler.call_async::<LuaValue>(table).await {
        Ok(value) => response::from_lua(&inner.lua, value).map_err(|e| {
            format!("net.serve: the request handler returned an invalid response: {e}")
        }),
        Err(e) => Err(format!("net.serve: the request handler errored:\n{e}")),
    }
}

/// The 500 for a request table that could not be made (out of memory).
pub(super) fn table_failed(e: &LuaError) -> HttpResponse {
    internal_error(&format!(
        "net.serve: failed to build the request table: {e}"
    ))
}

/// Reports `message` on stderr and answers 500.
fn internal_error(message: &str) -> HttpResponse {
    report::error(message);
    plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
}
