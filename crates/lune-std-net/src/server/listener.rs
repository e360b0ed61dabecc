//! `net.tcp.listen`: a TCP (or TLS) server socket over the shared accept
//! path. Accepted streams queue in a bounded channel that `accept` reads;
//! while it is full, further connections wait in the kernel's backlog.

use std::{net::SocketAddr, rc::Rc};

use async_channel::Receiver;
use futures_rustls::TlsAcceptor;
use mlua::prelude::*;
use mlua_luau_scheduler::LuaSpawnExt;

use super::accept::{self, Accepted};
use crate::shared::{options::Options, signal::Signal, tcp::TcpStream};

const BACKLOG: usize = 128;

/// `net.tcp.listen(port, { address?, tls? })`.
pub(crate) struct ListenConfig {
    address: std::net::IpAddr,
    tls: Option<TlsAcceptor>,
}

impl FromLua for ListenConfig {
    fn from_lua(value: LuaValue, _: &Lua) -> LuaResult<Self> {
        let mut config = Self {
            address: std::net::IpAddr::from([127, 0, 0, 1]),
            tls: None,
        };
        let table = match value {
            LuaValue::Nil => return Ok(config),
            LuaValue::Table(t) => t,
            other => {
                return Err(LuaError::runtime(format!(
                    "Invalid listen config - expected a table {{ address?, tls? }}, got {}",
                    lune_utils::type_name(&other)
                )));
            }
        };
        let fields = Options::new(&table);
        if let Some(address) = fields.address("address")? {
            config.address = address;
        }
        config.tls = fields.server_tls("tls", &[])?.map(TlsAcceptor::from);
        Ok(config)
    }
}

/// A listening socket as Luau sees it: `ip`, `port`, `accept`, `close`.
pub(crate) struct Listener {
    bound: SocketAddr,
    accepted: Receiver<Accepted>,
    stop: Rc<Signal>,
    closed: Rc<Signal>,
}

/// Binds and starts accepting in the background.
pub(crate) async fn listen(lua: Lua, port: u16, config: ListenConfig) -> LuaResult<Listener> {
    let (listener, bound) = accept::bind(config.address, port).await?;
    let (queue, accepted) = async_channel::bounded(BACKLOG);
    let stop = Rc::new(Signal::default());
    let closed = Rc::new(Signal::default());
    let (loop_stop, loop_closed) = (stop.clone(), closed.clone());
    let loop_lua = lua.clone();
    lua.spawn_local(async move {
        let on_accept = move |conn: Accepted| {
            let queue = queue.clone();
            async move {
                // Fails only once the listener was closed: the connection drops.
                let _ = queue.send(conn).await;
            }
        };
        accept::run(
            &loop_lua,
            listener,
            config.tls,
            "net.tcp.listen",
            &loop_stop,
            on_accept,
        )
        .await;
        loop_closed.fire();
    });
    Ok(Listener {
        bound,
        accepted,
        stop,
        closed,
    })
}

impl Listener {
    /// Stops accepting; connections not yet accepted are dropped.
    fn close(&self) {
        self.stop.fire();
        self.accepted.close();
    }
}

impl LuaUserData for Listener {
    fn add_fields<F: LuaUserDataFields<Self>>(fields: &mut F) {
        fields.add_field_method_get("ip", |_, this| Ok(this.bound.ip().to_string()));
        fields.add_field_method_get("port", |_, this| Ok(this.bound.port()));
    }

    fn add_methods<M: LuaUserDataMethods<Self>>(methods: &mut M) {
        methods.add_async_method("accept", |_, this, ()| {
            lune_utils::wake_on_drop(async move {
                let accepted = this.accepted.clone();
                drop(this);
                match accepted.recv().await {
                    Ok(conn) => Ok(Some(TcpStream::new(conn.stream, conn.local, conn.peer))),
                    Err(_) => Ok(None),
                }
            })
        });
        methods.add_async_method("close", |_, this, ()| {
            lune_utils::wake_on_drop(async move {
                this.close();
                // Once this returns, connecting to the port is refused.
                this.closed.wait().await;
                Ok(())
            })
        });
        methods.add_meta_method(LuaMetaMethod::ToString, |_, this, ()| {
            Ok(format!("TcpListener({})", this.bound))
        });
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.close();
    }
}
