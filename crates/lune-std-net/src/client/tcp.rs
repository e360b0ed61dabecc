//! `net.tcp.connect` and `net.unix.connect`: the shared connect path,
//! returning a `TcpStream`.

use std::path::PathBuf;

use mlua::prelude::*;

use crate::{
    rt::{
        connect::{self, DEFAULT_CONNECT_TIMEOUT, Target, Tls},
        tls::{Alpn, ClientTls},
    },
    shared::{
        options::Options,
        tcp::{Endpoints, Side, TcpStream},
    },
};

/// `config` of `net.tcp.connect`: `true` for TLS, or `{ tls?, ttl?,
/// timeout? }` where `tls` is `true` or `{ ca?, cert?, key?, serverName? }`.
pub(crate) struct TcpConfig {
    tls: Option<ClientTls>,
    ttl: Option<u32>,
    /// How long the connection (and TLS handshake) may take.
    timeout: std::time::Duration,
}

impl FromLua for TcpConfig {
    fn from_lua(value: LuaValue, _: &Lua) -> LuaResult<Self> {
        let mut config = Self {
            tls: None,
            ttl: None,
            timeout: DEFAULT_CONNECT_TIMEOUT,
        };
        match value {
            LuaValue::Nil => {}
            LuaValue::Boolean(tls) => config.tls = tls.then(ClientTls::default),
            LuaValue::Table(t) => {
                let fields = Options::new(&t);
                config.tls = match t.get::<LuaValue>("tls")? {
                    LuaValue::Boolean(tls) => tls.then(ClientTls::default),
                    _ => fields.client_tls("tls")?,
                };
                config.ttl = fields.whole("ttl", 0, 255)?.map(|ttl| ttl as u32);
                config.timeout = fields
                    .seconds("timeout")?
                    .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
            }
            other => {
                return Err(LuaError::runtime(format!(
                    "Invalid TCP config - expected a boolean or a table {{ tls?, ttl?, timeout? }}, got {}",
                    lune_utils::type_name(&other)
                )));
            }
        }
        Ok(config)
    }
}

/// Connects to `host:port` as `config` says.
pub(crate) async fn connect(host: &str, port: u16, config: TcpConfig) -> LuaResult<TcpStream> {
    let target = Target {
        host,
        port,
        unix: None,
        tls: config.tls.as_ref().map(|options| Tls {
            alpn: Alpn::Raw,
            options,
        }),
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
    let side = Side::Connected {
        host: host.to_string(),
    };
    Ok(TcpStream::new(
        stream,
        Endpoints::Ip { local, remote },
        side,
    ))
}

/// Connects to the Unix socket at `path`.
pub(crate) async fn connect_unix(path: PathBuf) -> LuaResult<TcpStream> {
    let stream = connect::open(&Target::unix(&path), DEFAULT_CONNECT_TIMEOUT)
        .await
        .map_err(LuaError::external)?;
    let side = Side::Connected {
        host: String::new(),
    };
    Ok(TcpStream::new(stream, Endpoints::Unix { path }, side))
}
