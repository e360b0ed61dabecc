//! `net.tcp.listen`: a TCP (or TLS) server socket.
//!
//! Connections are accepted by a background task that also runs each TLS
//! handshake in its own task, so a slow client never holds up the others;
//! finished streams queue in a bounded channel that `accept` reads.

use std::{net::SocketAddr, time::Duration};

use async_channel::{Receiver, Sender};
use async_net::TcpListener;
use futures_rustls::TlsAcceptor;
use mlua::prelude::*;

use super::config::{parse_address, server_tls_with_alpn};
use crate::{
    rt,
    shared::{stream::Stream, tcp::TcpStream},
};

const BACKLOG: usize = 128;
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

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
        if let Some(address) = table.get::<Option<String>>("address")? {
            config.address = parse_address(&address)?;
        }
        if let Some(tls) = table.get::<Option<LuaTable>>("tls")? {
            let cert: LuaString = tls
                .get("cert")
                .map_err(|_| LuaError::runtime("Invalid 'tls' - 'cert' must be a PEM string"))?;
            let key: LuaString = tls
                .get("key")
                .map_err(|_| LuaError::runtime("Invalid 'tls' - 'key' must be a PEM string"))?;
            let server = server_tls_with_alpn(&cert.as_bytes(), &key.as_bytes(), &[])?;
            config.tls = Some(TlsAcceptor::from(server));
        }
        Ok(config)
    }
}

/// A listening socket as Luau sees it: `ip`, `port`, `accept`, `close`.
pub(crate) struct Listener {
    bound: SocketAddr,
    accepted: Receiver<Stream>,
    stop: std::cell::RefCell<Option<Sender<()>>>,
    loop_ended: Receiver<()>,
}

/// Binds and starts accepting in the background.
pub(crate) async fn listen(port: u16, config: ListenConfig) -> LuaResult<Listener> {
    let addr = SocketAddr::new(config.address, port);
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| LuaError::runtime(format!("Failed to bind to {addr} - {e}")))?;
    let bound = listener.local_addr()?;
    let (accepted_tx, accepted) = async_channel::bounded(BACKLOG);
    let (stop, stopped) = async_channel::bounded::<()>(1);
    // Dropped when the accept loop ends, which tells `close` the socket is gone.
    let (loop_alive, loop_ended) = async_channel::bounded::<()>(1);
    rt::spawn(async move {
        let _alive = loop_alive;
        loop {
            let next = futures_lite::future::or(async { Some(listener.accept().await) }, async {
                let _ = stopped.recv().await;
                None
            })
            .await;
            let (tcp, _) = match next {
                None => break,
                Some(Ok(pair)) => pair,
                Some(Err(e)) => {
                    eprintln!("net.tcp.listen: failed to accept a connection on {bound}: {e}");
                    async_io::Timer::after(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            match &config.tls {
                None => {
                    if accepted_tx.send(Stream::Plain(tcp)).await.is_err() {
                        break;
                    }
                }
                Some(acceptor) => {
                    let acceptor = acceptor.clone();
                    let accepted_tx = accepted_tx.clone();
                    rt::spawn(async move {
                        let handshake = futures_lite::future::or(
                            async { acceptor.accept(tcp).await.ok() },
                            async {
                                async_io::Timer::after(TLS_HANDSHAKE_TIMEOUT).await;
                                None
                            },
                        );
                        if let Some(tls) = handshake.await {
                            let _ = accepted_tx.send(Stream::ServerTls(Box::new(tls))).await;
                        }
                    });
                }
            }
        }
    });
    Ok(Listener {
        bound,
        accepted,
        stop: std::cell::RefCell::new(Some(stop)),
        loop_ended,
    })
}

impl Listener {
    /// Stops accepting. Dropping the stop sender ends the accept loop, which
    /// drops the socket.
    fn close(&self) {
        self.stop.borrow_mut().take();
        self.accepted.close();
    }
}

impl LuaUserData for Listener {
    fn add_fields<F: LuaUserDataFields<Self>>(fields: &mut F) {
        fields.add_field_method_get("ip", |_, this| Ok(this.bound.ip().to_string()));
        fields.add_field_method_get("port", |_, this| Ok(this.bound.port()));
    }

    fn add_methods<M: LuaUserDataMethods<Self>>(methods: &mut M) {
        methods.add_async_method("accept", |_, this, ()| async move {
            let accepted = this.accepted.clone();
            drop(this);
            match accepted.recv().await {
                Ok(stream) => TcpStream::new(stream).map(Some).map_err(LuaError::external),
                Err(_) => Ok(None),
            }
        });
        methods.add_async_method("close", |_, this, ()| async move {
            this.close();
            // Once this returns, connecting to the port is refused.
            let _ = this.loop_ended.recv().await;
            Ok(())
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
