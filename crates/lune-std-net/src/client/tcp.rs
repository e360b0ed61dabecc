//! `net.tcp.connect` and `net.unix.connect`: the shared connect path,
//! returning a `TcpStream`.

use std::path::PathBuf;

use mlua::prelude::*;

use crate::{
    rt::{
        connect::{self, DEFAULT_CONNECT_TIMEOUT, Target},
        tls::Alpn,
    },
    shared::{
        options::Options,
        tcp::{Endpoints, TcpStream},
    },
};

/// `config` of `net.tcp.connect`: `true` for TLS, or `{ tls?, ttl?, timeout? }`.
pub(crate) struct TcpConfig {
    tls: bool,
    ttl: Option<u32>,
    /// How long the connection (and TLS handshake) may take.
    timeout: std::time::Duration,
}

impl FromLua for TcpConfig {
    fn from_lua(value: LuaValue, _: &Lua) -> LuaResult<Self> {
        match value {
            LuaValue::Nil => Ok(Self {
                tls: false,
                ttl: None,
                timeout: DEFAULT_CONNECT_TIMEOUT,
            }),
            LuaValue::Boolean(tls) => Ok(Self {
                tls,
                ttl: None,
                timeout: DEFAULT_CONNECT_TIMEOUT,
            }),
            LuaValue::Table(t) => {
                let fields = Options::new(&t);
                Ok(Self {
                    tls: fields.flag("tls")?.unwrap_or(false),
                    ttl: fields.whole("ttl", 0, 255)?.map(|ttl| ttl as u32),
                    timeout: fields
                        .seconds("timeout")?
                        .unwrap_or(DEFAULT_CONNECT_TIMEOUT),
                })
            }
            other => Err(LuaError::runtime(format!(
                "Invalid TCP config - expected a boolean or a table {{ tls?, ttl?, timeout? }}, got {}",
                lune_utils::type_name(&other)
            ))),
        }
    }
}

/// Connects to `host:port` as `config` says.
pub(crate) async fn connect(host: &str, port: u16, config: TcpConfig) -> LuaResult<TcpStream> {
    let target = Target {
        host,
        port,
        unix: None,
        tls: config.tls.then_some(Alpn::Raw),
        proxy: None,
        user_agent: None,
    };
    let stream = connect::open(&target, config.timeout)
        .await
        .map_err(LuaError::external)?;
    let socket = stream
        .tcp()
        .ok_or_else(|| LuaError::runtime(format!("Connection to {host}:{port} is not TCP")))?;
    let (local, remote) = socket
        .local_addr()
        .and_then(|local| Ok((local, socket.peer_addr()?)))
        .map_err(|e| LuaError::runtime(format!("Connection to {host}:{port} failed: {e}")))?;
    if let Some(ttl) = config.ttl {
        socket.set_ttl(ttl)?;
    }
    Ok(TcpStream::new(stream, local, remote))
}

/// Connects to the Unix socket at `path`.
pub(crate) async fn connect_unix(path: PathBuf) -> LuaResult<TcpStream> {
    let stream = connect::open(&Target::unix(&path), DEFAULT_CONNECT_TIMEOUT)
        .await
        .map_err(LuaError::external)?;
    Ok(TcpStream::with_ends(stream, Endpoints::Unix { path }))
}
