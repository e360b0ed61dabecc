//! The HTTP server behind `net.serve`: an accept loop on the Luau thread,
//! one hyper connection per client (HTTP/1.1, or HTTP/2 by ALPN over TLS),
//! and a handle that stops it gracefully.

pub(crate) mod config;
pub(crate) mod listener;
mod service;

use std::{net::SocketAddr, rc::Rc, time::Duration};

use async_net::TcpListener;
use futures_lite::future;
use futures_rustls::TlsAcceptor;
use hyper::server::conn::{http1, http2};
use lune_utils::TableBuilder;
use mlua::prelude::*;
use mlua_luau_scheduler::LuaSpawnExt;

use self::{config::ServeConfig, service::Service};
use crate::{
    rt::{HyperIo, HyperTimer, LocalExecutor},
    shared::{signal::Signal, stream::Stream},
};

/// How long in-flight requests may take to finish after `stop`.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How long a client may take to complete the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How a server stops: `stop` fires `stopped`, which ends the accept loop and
/// shuts connections down gracefully; the accept loop fires
/// `listener_closed` once the socket is gone, which `stop` waits for so that
/// new connections are refused as soon as it returns.
#[derive(Default)]
pub(crate) struct Shutdown {
    stopped: Signal,
    listener_closed: Signal,
}

/// Binds `port`, starts serving in the background, and returns the handle.
pub(crate) async fn serve(lua: Lua, port: u16, config: ServeConfig) -> LuaResult<LuaTable> {
    let addr = SocketAddr::new(config.address, port);
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| LuaError::runtime(format!("Failed to bind to {addr} - {e}")))?;
    let bound = listener.local_addr()?;
    let shutdown = Rc::new(Shutdown::default());
    let tls = config.tls.clone().map(TlsAcceptor::from);
    let header_timeout = config.header_timeout;
    let service = Service::new(lua.clone(), config);
    lua.spawn_local(accept_loop(
        lua.clone(),
        listener,
        tls,
        service,
        header_timeout,
        shutdown.clone(),
    ));
    handle(&lua, bound, shutdown)
}

/// The table `net.serve` returns: `ip`, `port` and `stop`, which works
/// both as `handle.stop()` and `handle:stop()`.
fn handle(lua: &Lua, bound: SocketAddr, shutdown: Rc<Shutdown>) -> LuaResult<LuaTable> {
    TableBuilder::new(lua.clone())?
        .with_value("ip", bound.ip().to_string())?
        .with_value("port", bound.port())?
        .with_async_function("stop", move |_, _: LuaMultiValue| {
            let shutdown = shutdown.clone();
            async move {
                if shutdown.stopped.is_set() {
                    return Err(LuaError::runtime(
                        "Server already stopped - stop was called more than once",
                    ));
                }
                shutdown.stopped.fire();
                shutdown.listener_closed.wait().await;
                Ok(())
            }
        })?
        .build_readonly()
}

async fn accept_loop(
    lua: Lua,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    service: Service,
    header_timeout: Duration,
    shutdown: Rc<Shutdown>,
) {
    loop {
        let accepted = future::or(async { Some(listener.accept().await) }, async {
            shutdown.stopped.wait().await;
            None
        })
        .await;
        let (tcp, peer) = match accepted {
            None => {
                drop(listener);
                shutdown.listener_closed.fire();
                return;
            }
            Some(Ok(pair)) => pair,
            Some(Err(e)) => {
                // Out of file descriptors and similar: report, back off, go on.
                let on = listener
                    .local_addr()
                    .map(|addr| format!(" on {addr}"))
                    .unwrap_or_default();
                eprintln!("net.serve: failed to accept a connection{on}: {e}");
                async_io::Timer::after(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let service = service.for_peer(peer);
        let tls = tls.clone();
        let shutdown = shutdown.clone();
        let exec = LocalExecutor::new(lua.clone());
        lua.spawn_local(async move {
            let stream = match tls {
                None => Stream::Plain(tcp),
                Some(acceptor) => {
                    let handshake = future::or(async { acceptor.accept(tcp).await.ok() }, async {
                        async_io::Timer::after(TLS_HANDSHAKE_TIMEOUT).await;
                        None
                    });
                    match handshake.await {
                        Some(tls) => Stream::ServerTls(Box::new(tls)),
                        None => return,
                    }
                }
            };
            serve_connection(stream, service, exec, header_timeout, &shutdown).await;
        });
    }
}

/// Runs one connection until the client leaves or the server stops; on stop,
/// requests in flight get `SHUTDOWN_GRACE` to finish.
async fn serve_connection(
    stream: Stream,
    service: Service,
    exec: LocalExecutor,
    header_timeout: Duration,
    shutdown: &Shutdown,
) {
    if stream.is_h2() {
        let conn = http2::Builder::new(exec)
            .timer(HyperTimer::new())
            .serve_connection(HyperIo::new(stream), service);
        drive(conn, shutdown, http2::Connection::graceful_shutdown).await;
    } else {
        let conn = http1::Builder::new()
            .timer(HyperTimer::new())
            .header_read_timeout(header_timeout)
            .keep_alive(true)
            .serve_connection(HyperIo::new(stream), service)
            .with_upgrades();
        drive(
            conn,
            shutdown,
            http1::UpgradeableConnection::graceful_shutdown,
        )
        .await;
    }
}

async fn drive<C, E>(conn: C, shutdown: &Shutdown, graceful: impl FnOnce(std::pin::Pin<&mut C>))
where
    C: Future<Output = Result<(), E>>,
{
    let mut conn = std::pin::pin!(conn);
    let finished = future::or(async { Some(conn.as_mut().await) }, async {
        shutdown.stopped.wait().await;
        None
    })
    .await;
    if finished.is_none() {
        graceful(conn.as_mut());
        let _ = future::or(async { Some(conn.await) }, async {
            async_io::Timer::after(SHUTDOWN_GRACE).await;
            None
        })
        .await;
    }
}
