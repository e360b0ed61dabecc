//! `net.tcp.connect` and `net.unix.connect`: the shared connect path,
//! returning a `TcpStream`.

use std::path::PathBuf;

use mlua::prelude::*;

use super::{connect, tls::Alpn};
use crate::shared::{
    options::Options,
    tcp::{Endpoints, TcpStream},
};

/// `config` of `net.tcp.connect`: `true` for TLS, or `{ tls?, ttl? }`.
pub(crate) struct TcpConfig {
    tls: bool,
    ttl: Option<u32>,
}

impl FromLua for TcpConfig {
    fn from_lua(value: LuaValue, _: &Lua) -> LuaResult<Self> {
        match value {
            LuaValue::Nil => Ok(Self {
                tls: false,
                ttl: None,
            }),
            LuaValue::Boolean(tls) => Ok(Self { tls, ttl: None }),
            LuaValue::Table(t) => {
                let fields = Options::new(&t);
                Ok(Self {
                    tls: fields.flag("tls")?.unwrap_or(false),
                    ttl: fields.whole("ttl", 0, 255)?.map(|ttl| ttl as u32),
                })
            }
            other => Err(LuaError::runtime(format!(
                "Invalid TCP config - expected a boolean or a table {{ tls?, ttl? }}, got {}",
                lune_utils::type_name(&other)
            ))),
        }
    }
}

/// Connects to `host:port` as `config` says.
pub(crate) async fn connect(host: &str, port: u16, config: TcpConfig) -> LuaResult<TcpStream> {
    let tcp = connect::tcp(host, port).await.map_err(LuaError::external)?;
    let socket = tcp.get_ref();
    let (local, remote) = socket
        .local_addr()
        .and_then(|local| Ok((local, socket.peer_addr()?)))
        .map_err(|e| LuaError::runtime(format!("Connection to {host}:{port} failed: {e}")))?;
    if let Some(ttl) = config.ttl {
        socket.set_ttl(ttl)?;
    }
    let stream = if config.tls {
        connect::tls(tcp, host, Alpn::None)
            .await
            .map_err(LuaError::external)?
    } else {
        crate::shared::stream::Stream::Plain(tcp)
    };
    Ok(TcpStream::new(stream, local, remote))
}

/// Connects to the Unix socket at `path`.
pub(crate) async fn connect_unix(path: PathBuf) -> LuaResult<TcpStream> {
    let stream = connect::unix(&path).await.map_err(LuaError::external)?;
    Ok(TcpStream::with_ends(stream, Endpoints::Unix { path }))
}
