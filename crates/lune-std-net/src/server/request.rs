//! The request a `net.serve` handler sees.

use std::net::SocketAddr;

use mlua::prelude::*;

use crate::shared::headers;

/// The request table a `net.serve` handler receives: `method`, `path`
/// (`/` if empty), `query` and `headers` (a value seen once is a string,
/// several times an array), `body`, and the client's `ip` and `port`.
pub(super) fn request_table(
    lua: &Lua,
    parts: &http::request::Parts,
    body: &[u8],
    peer: Option<SocketAddr>,
) -> LuaResult<LuaTable> {
    let table = lua.create_table_with_capacity(0, 7)?;
    table.raw_set("method", parts.method.as_str())?;
    let path = parts.uri.path();
    table.raw_set("path", if path.is_empty() { "/" } else { path })?;
    let query = parts.uri.query().unwrap_or_default();
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    table.raw_set(
        "query",
        headers::write_multi_map(lua, pairs.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())))?,
    )?;
    table.raw_set("headers", headers::write_headers(lua, &parts.headers)?)?;
    table.raw_set("body", lua.create_string(body)?)?;
    if let Some(peer) = peer {
        table.raw_set("ip", peer.ip().to_string())?;
        table.raw_set("port", peer.port())?;
    }
    Ok(table)
}
