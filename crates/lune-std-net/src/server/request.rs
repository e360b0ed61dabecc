//! The request a `net.serve` handler sees.

use std::net::SocketAddr;

use mlua::prelude::*;

use crate::{rt::TlsInfo, shared::headers};

/// Who is on the other end of a served connection.
#[derive(Default)]
pub(crate) struct Peer {
    /// `None` over a Unix socket.
    pub(crate) addr: Option<SocketAddr>,
    /// On TLS connections.
    pub(crate) tls: Option<TlsInfo>,
}

impl Peer {
    /// `request.tls`: `{ version, alpn?, peerCertificate? }`.
    fn tls_table(&self, lua: &Lua) -> LuaResult<Option<LuaTable>> {
        let Some(tls) = &self.tls else {
            return Ok(None);
        };
        let table = lua.create_table_with_capacity(0, 3)?;
        table.raw_set("version", tls.version)?;
        table.raw_set("alpn", tls.alpn.as_deref())?;
        table.raw_set("peerCertificate", tls.peer_certificate.as_deref())?;
        Ok(Some(table))
    }
}

/// The request table a `net.serve` handler receives: `method`, `path`
/// (`/` if empty), `query` and `headers` (a value seen once is a string,
/// several times an array), `body`, the client's `ip` and `port`, and on a
/// TLS connection `tls`.
pub(super) fn request_table(
    lua: &Lua,
    parts: &http::request::Parts,
    body: &[u8],
    peer: &Peer,
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
    if let Some(addr) = peer.addr {
        table.raw_set("ip", addr.ip().to_string())?;
        table.raw_set("port", addr.port())?;
    }
    if let Some(tls) = peer.tls_table(lua)? {
        table.raw_set("tls", tls)?;
    }
    Ok(table)
}
