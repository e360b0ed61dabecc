//! The "hyper + Luau" reference (`bench-ref http-luau`): the least work any
//! Luau runtime must do to serve HTTP, measured as the limit for one: tokio's
//! `current_thread` executor, hyper's HTTP/1.1 server and ONE Luau VM. Per
//! request it builds a table with the fields Lune's request has (`method`,
//! `path`, `query`, `headers`, `body`), calls the Luau handler of
//! `scripts/bench/serve.luau` with it and turns the `{ status, headers,
//! body }` it returns into the response. Nothing else: no yielding handler
//! threads, no limits, no error reporting.

use std::{cell::Cell, convert::Infallible, rc::Rc};

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use mlua::prelude::*;

/// The handler of `scripts/bench/serve.luau`, word for word.
const HANDLER: &str = r#"
return function(request)
	return { status = 200, headers = { ["content-type"] = "text/plain" }, body = "Hello, World!" }
end
"#;

/// Serves on 127.0.0.1:`port` (printing `ready <port>`) until killed, or
/// with `exit_after` > 0, until that many requests were answered and a
/// connection closed.
///
/// # Errors
/// When the runtime, the socket or the Luau handler cannot be set up.
pub fn serve(port: u16, exit_after: u64) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, accept_loop(port, exit_after))
}

async fn accept_loop(port: u16, exit_after: u64) -> Result<(), String> {
    let lua = Lua::new();
    let handler: LuaFunction = lua.load(HANDLER).eval().map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    println!("ready {port}");
    let served = Rc::new(Cell::new(0u64));
    loop {
        let (stream, _) = listener.accept().await.map_err(|e| e.to_string())?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let (lua, handler, served) = (lua.clone(), handler.clone(), served.clone());
        tokio::task::spawn_local(async move {
            let counted = served.clone();
            let service = hyper::service::service_fn(move |request| {
                counted.set(counted.get() + 1);
                respond(lua.clone(), handler.clone(), request)
            });
            // A client that leaves mid-request ends its connection: nothing to do.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
            if exit_after > 0 && served.get() >= exit_after {
                std::process::exit(0);
            }
        });
    }
}

async fn respond(
    lua: Lua,
    handler: LuaFunction,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(http_body_util::Collected::to_bytes)
        .unwrap_or_default();
    let answer = request_table(&lua, &parts, &body)
        .and_then(|table| handler.call::<LuaTable>(table))
        .and_then(|answer| response(&answer));
    Ok(answer.unwrap_or_else(|e| {
        let mut response = Response::new(Full::new(Bytes::from(e.to_string())));
        *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        response
    }))
}

fn request_table(lua: &Lua, parts: &http::request::Parts, body: &[u8]) -> LuaResult<LuaTable> {
    let query = lua.create_table()?;
    for pair in parts.uri.query().unwrap_or_default().split('&') {
        if let Some((key, value)) = pair.split_once('=') {
            query.raw_set(key, value)?;
        }
    }
    let headers = lua.create_table_with_capacity(0, parts.headers.len())?;
    for (name, value) in &parts.headers {
        headers.raw_set(name.as_str(), lua.create_string(value.as_bytes())?)?;
    }
    let table = lua.create_table_with_capacity(0, 5)?;
    table.raw_set("method", parts.method.as_str())?;
    table.raw_set("path", parts.uri.path())?;
    table.raw_set("query", query)?;
    table.raw_set("headers", headers)?;
    table.raw_set("body", lua.create_string(body)?)?;
    Ok(table)
}

fn response(answer: &LuaTable) -> LuaResult<Response<Full<Bytes>>> {
    let body: LuaString = answer.raw_get("body")?;
    let mut response = Response::new(Full::new(Bytes::copy_from_slice(&body.as_bytes())));
    *response.status_mut() =
        StatusCode::from_u16(answer.raw_get("status")?).map_err(LuaError::external)?;
    if let Some(headers) = answer.raw_get::<Option<LuaTable>>("headers")? {
        for pair in headers.pairs::<LuaString, LuaString>() {
            let (name, value) = pair?;
            let name = HeaderName::from_bytes(&name.as_bytes()).map_err(LuaError::external)?;
            let value = HeaderValue::from_bytes(&value.as_bytes()).map_err(LuaError::external)?;
            response.headers_mut().append(name, value);
        }
    }
    Ok(response)
}
