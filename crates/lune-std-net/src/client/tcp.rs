//! `net.tcp.connect`: the shared connect path, returning a `TcpStream`.

use mlua::prelude::*;

use super::{connect, tls::Alpn};
use crate::shared::tcp::TcpStream;

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
                let tls = t.get::<Option<bool>>("tls").map_err(|_| {
                    LuaError::runtime("Invalid TCP config - 'tls' must be a boolean")
                })?;
                let ttl = t.get::<Option<u32>>("ttl").map_err(|_| {
                    LuaError::runtime(
                        "Invalid TCP config - 'ttl' must be a whole number from 0 to 255",
                    )
                })?;
                if ttl.is_some_and(|ttl| ttl > 255) {
                    return Err(LuaError::runtime(
                        "Invalid TCP config - 'ttl' must be a whole number from 0 to 255",
                    ));
                }
                Ok(Self {
                    tls: tls.unwrap_or(false),
                    ttl,
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
    if let Some(ttl) = config.ttl {
        tcp.set_ttl(ttl)?;
    }
    let stream = if config.tls {
        connect::tls(tcp, host, Alpn::None)
            .await
            .map_err(LuaError::external)?
    } else {
        crate::shared::stream::Stream::Plain(tcp)
    };
    TcpStream::new(stream).map_err(LuaError::external)
}
