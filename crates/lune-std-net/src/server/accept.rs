//! The one accept path of every server (`net.serve`, `net.tcp.listen`): bind,
//! accept, the TLS handshake with its timeout, and the peer address carried
//! along. Everything here runs on the Luau thread, where the accepted
//! connections are used.
//!
//! An error of one connection (a peer that reset before it was accepted, a
//! failed or slow TLS handshake) never surfaces as a failure of the listener:
//! it is reported on stderr and the loop goes on. Errors of the listening
//! socket itself (out of file descriptors) are reported and retried after a
//! short pause.

use std::{
    future::Future,
    io,
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use async_net::TcpListener;
use futures_lite::future;
use futures_rustls::TlsAcceptor;
use mlua::prelude::*;
use mlua_luau_scheduler::LuaSpawnExt;

use super::report;
use crate::shared::{signal::Signal, stream::Stream};

/// How long a client may take to complete the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The pause after an error of the listening socket itself.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// A connection ready for use: TLS done if the server has TLS.
pub(crate) struct Accepted {
    pub(crate) stream: Stream,
    pub(crate) local: SocketAddr,
    pub(crate) peer: SocketAddr,
}

/// Binds `address:port`; the error names the address.
pub(crate) async fn bind(address: IpAddr, port: u16) -> LuaResult<(TcpListener, SocketAddr)> {
    let addr = SocketAddr::new(address, port);
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| LuaError::runtime(format!("Failed to bind to {addr} - {e}")))?;
    let bound = listener
        .local_addr()
        .map_err(|e| LuaError::runtime(format!("Failed to bind to {addr} - {e}")))?;
    Ok((listener, bound))
}

/// True for errors that belong to one connection rather than the socket.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::NotConnected
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

/// Accepts until `stop` fires, then drops the listening socket. Each
/// connection goes to `on_accept` once its TLS handshake (if any) is done:
/// plain connections in order, awaited here (so a full queue holds further
/// connections in the kernel's backlog), TLS ones from their own tasks.
/// `what` names the server in reports (`net.serve`).
pub(crate) async fn run<H, F>(
    lua: &Lua,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    what: &'static str,
    stop: &Signal,
    on_accept: H,
) where
    H: Fn(Accepted) -> F + Clone + 'static,
    F: Future<Output = ()> + 'static,
{
    let local = listener.local_addr().ok();
    loop {
        let accepted = future::or(async { Some(listener.accept().await) }, async {
            stop.wait().await;
            None
        })
        .await;
        let (tcp, peer) = match accepted {
            None => return,
            Some(Ok(pair)) => pair,
            Some(Err(e)) if is_connection_error(&e) => continue,
            Some(Err(e)) => {
                let on = local.map(|a| format!(" on {a}")).unwrap_or_default();
                report::error(&format!("{what}: failed to accept a connection{on}: {e}"));
                async_io::Timer::after(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let local = tcp.local_addr().ok().or(local).unwrap_or(peer);
        match &tls {
            None => {
                on_accept(Accepted {
                    stream: Stream::Plain(tcp),
                    local,
                    peer,
                })
                .await;
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                let on_accept = on_accept.clone();
                lua.spawn_local(async move {
                    let handshake = future::or(async { Some(acceptor.accept(tcp).await) }, async {
                        async_io::Timer::after(TLS_HANDSHAKE_TIMEOUT).await;
                        None
                    });
                    match handshake.await {
                        Some(Ok(tls)) => {
                            on_accept(Accepted {
                                stream: Stream::ServerTls(Box::new(tls)),
                                local,
                                peer,
                            })
                            .await;
                        }
                        // The client's port is left out so that repeats from
                        // one client count as one error in the report.
                        Some(Err(e)) => report::error(&format!(
                            "{what}: TLS handshake with a client at {} failed: {e}",
                            peer.ip()
                        )),
                        None => report::error(&format!(
                            "{what}: TLS handshake with a client at {} timed out after {} s",
                            peer.ip(),
                            TLS_HANDSHAKE_TIMEOUT.as_secs()
                        )),
                    }
                });
            }
        }
    }
}
