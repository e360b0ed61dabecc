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
    let body = match body::read(&parts.headers, incoming, inner.limits).await {
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
        Ok(value) => match response::from_lua(&inner.lua, value) {
            Ok(response) => response,
            Err(e) => internal_error(&format!(
                "net.serve: the request handler returned an invalid response: {e}"
            )),
        },
        Err(e) => internal_error(&format!("net.serve: the request handler errored:\n{e}")),
    }
}

/// Reports `message` on stderr and answers 500.
fn internal_error(message: &str) -> HttpResponse {
    report::error(message);
    plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
}
