//! `@lune/net`: an HTTP client and server, `WebSocket`s, TCP, UDP and Unix
//! domain sockets for Luau, compatible with Lune's library and extended with
//! pooling, HTTP/2, timeouts, custom trust, HTTPS serving and a TCP server.
//!
//! This file is the wiring table: one thin adapter per Luau function; the
//! work lives in `client/`, `server/`, `shared/` and `url/`.

use std::rc::Rc;

use lune_utils::TableBuilder;
use mlua::prelude::*;

mod client;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod report;
mod rt;
mod server;
mod shared;
mod url;

use client::{Client, config::RequestConfig};

/// One request from Rust, with no Luau state, through the same client as
/// `net.request`. Lune's CLI calls it; not part of this crate's API proper.
#[doc(hidden)]
pub use client::fetch::{FetchBody, FetchResponse, fetch};

/// Builds the `@lune/net` table. Needs a scheduler attached to `lua`.
pub fn module(lua: Lua) -> LuaResult<LuaTable> {
    let client = Rc::new(Client::new());
    let request = {
        let client = client.clone();
        lua.create_async_function(move |lua, config: RequestConfig| {
            let client = client.clone();
            // Boxed once here: mlua moves the future it is given a few
            // times, and a request's is kilobytes.
            let request = Box::pin(async move { client.request(config).await });
            lune_utils::wake_on_drop(async move {
                let response = request.await.map_err(LuaError::external)?;
                response.into_lua(&lua)
            })
        })?
    };
    let serve = lua.create_async_function(|lua, (port, config): (LuaValue, LuaValue)| {
        lune_utils::wake_on_drop(async move {
            let port = shared::options::port(&port, "port")?;
            let config = server::config::ServeConfig::from_lua(config, &lua)?;
            server::serve(lua, port, config).await
        })
    })?;
    let socket =
        lua.create_async_function(|lua, (url, options): (LuaValue, Option<LuaTable>)| {
            lune_utils::wake_on_drop(async move {
                let config = client::ws::SocketConfig::from_lua_args(url, options)?;
                let socket = client::ws::connect(config)
                    .await
                    .map_err(LuaError::external)?;
                shared::websocket::into_object(&lua, socket)
            })
        })?;
    let tcp = tcp_table(&lua)?;
    let sse = sse_table(&lua, client.clone())?;
    let udp = udp_table(&lua)?;
    let unix = unix_table(&lua)?;
    let ws = TableBuilder::new(lua.clone())?
        .with_value("connect", socket.clone())?
        .build_readonly()?;
    let http = TableBuilder::new(lua.clone())?
        .with_value("request", request.clone())?
        .with_value("serve", serve.clone())?
        .build_readonly()?;
    TableBuilder::new(lua)?
        .with_value("request", request)?
        .with_value("serve", serve)?
        .with_value("socket", socket)?
        .with_value("http", http)?
        .with_value("ws", ws)?
        .with_value("tcp", tcp)?
        .with_value("sse", sse)?
        .with_value("udp", udp)?
        .with_value("unix", unix)?
        .with_function("urlEncode", url_encode)?
        .with_function("urlDecode", url_decode)?
        .build_readonly()
}

/// `net.tcp`: `connect` and `listen`.
fn tcp_table(lua: &Lua) -> LuaResult<LuaTable> {
    TableBuilder::new(lua.clone())?
        .with_async_function(
            "connect",
            |_, (host, port, config): (String, LuaValue, client::tcp::TcpConfig)| async move {
                let port = shared::options::port(&port, "port")?;
                client::tcp::connect(&host, port, config).await
            },
        )?
        .with_async_function(
            "listen",
            |_, (port, config): (LuaValue, server::listener::ListenConfig)| async move {
                let port = shared::options::port(&port, "port")?;
                server::listener::listen(port, config).await
            },
        )?
        .build_readonly()
}

/// `net.sse`: `connect`, over the client of `net.request`.
fn sse_table(lua: &Lua, client: Rc<Client>) -> LuaResult<LuaTable> {
    TableBuilder::new(lua.clone())?
        .with_async_function(
            "connect",
            move |lua, (url, options): (LuaValue, Option<LuaTable>)| {
                let client = client.clone();
                async move {
                    let config = client::sse::SseConfig::from_lua_args(url, options)?;
                    client::sse::connect(lua, client, config).await
                }
            },
        )?
        .build_readonly()
}

/// `net.udp`: `bind`.
fn udp_table(lua: &Lua) -> LuaResult<LuaTable> {
    TableBuilder::new(lua.clone())?
        .with_async_function(
            "bind",
            |_, (port, config): (LuaValue, shared::udp::UdpConfig)| async move {
                let port = shared::options::port(&port, "port")?;
                shared::udp::bind(port, config).await
            },
        )?
        .build_readonly()
}

/// `net.unix`: `connect` and `listen` on Unix domain sockets.
fn unix_table(lua: &Lua) -> LuaResult<LuaTable> {
    TableBuilder::new(lua.clone())?
        .with_async_function("connect", |_, path: LuaValue| async move {
            client::tcp::connect_unix(unix_path(&path)?).await
        })?
        .with_async_function("listen", |_, path: LuaValue| async move {
            server::listener::listen_unix(unix_path(&path)?).await
        })?
        .build_readonly()
}

/// The `@lune/net` type definitions.
#[must_use]
pub fn typedefs() -> String {
    include_str!("../types.d.luau").to_string()
}

/// The `path` argument of `net.unix.connect` and `net.unix.listen`.
fn unix_path(path: &LuaValue) -> LuaResult<std::path::PathBuf> {
    shared::options::path(path, "path")?
        .ok_or_else(|| LuaError::runtime("Invalid 'path' - expected a file path, got nil"))
}

fn url_encode(_: &Lua, (s, binary): (LuaString, Option<bool>)) -> LuaResult<String> {
    url::encode(&s.as_bytes(), binary.unwrap_or(false)).map_err(LuaError::runtime)
}

fn url_decode(lua: &Lua, (s, binary): (LuaString, Option<bool>)) -> LuaResult<LuaString> {
    let bytes = url::decode(&s.as_bytes(), binary.unwrap_or(false)).map_err(LuaError::runtime)?;
    lua.create_string(bytes)
}

#[cfg(test)]
mod tests {
    /// Regression: Lune builds mlua with `error-send`, where every error a
    /// script sees must be `Send + Sync`; an `Rc` in the body error broke
    /// Lune's build with our crate.
    #[test]
    fn errors_are_send_and_sync_as_lune_needs() {
        fn check<T: std::error::Error + Send + Sync + 'static>() {}
        check::<crate::client::error::RequestError>();
        check::<crate::client::ws::SocketError>();
        check::<crate::rt::connect::ConnectError>();
        check::<crate::rt::tls::PemError>();
        check::<crate::shared::reader::IncomingError>();
    }
}
