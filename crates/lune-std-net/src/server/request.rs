//! The request a `net.serve` handler sees.

use std::{borrow::Cow, net::SocketAddr};

use mlua::prelude::*;

use crate::{rt::TlsInfo, shared::stack};

/// Who is on the other end of a served connection.
#[derive(Default)]
pub(crate) struct Peer {
    /// `None` over a Unix socket.
    pub(crate) addr: Option<SocketAddr>,
    /// `addr`'s IP as `request.ip` shows it, formatted once per connection.
    ip: Option<String>,
    /// On TLS connections.
    pub(crate) tls: Option<TlsInfo>,
}

impl Peer {
    pub(crate) fn new(addr: Option<SocketAddr>, tls: Option<TlsInfo>) -> Self {
        Self {
            addr,
            ip: addr.map(|addr| addr.ip().to_string()),
            tls,
        }
    }

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
/// TLS connection `tls`. Built on the Luau stack ([`stack`]): this runs for
/// every request.
pub(super) fn request_table(
    lua: &Lua,
    parts: &http::request::Parts,
    body: &[u8],
    peer: &Peer,
) -> LuaResult<LuaTable> {
    let path = match parts.uri.path() {
        "" => "/",
        path => path,
    };
    let query = parts.uri.query().unwrap_or_default();
    let pairs: Vec<(Cow<'_, str>, Cow<'_, str>)> = if query.is_empty() {
        Vec::new()
    } else {
        url::form_urlencoded::parse(query.as_bytes()).collect()
    };
    let table = stack::build(lua, 8, |table| {
        table.string(c"method", parts.method.as_str().as_bytes());
        table.string(c"path", path.as_bytes());
        table.multi_map(
            c"query",
            pairs.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())),
        );
        table.headers(c"headers", &parts.headers);
        table.string(c"body", body);
        if let Some(ip) = &peer.ip {
            table.string(c"ip", ip.as_bytes());
        }
        if let Some(addr) = peer.addr {
            table.number(c"port", f64::from(addr.port()));
        }
    })?;
    if let Some(tls) = peer.tls_table(lua)? {
        table.raw_set("tls", tls)?;
    }
    Ok(table)
}
