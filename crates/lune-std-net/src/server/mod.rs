//! The HTTP server behind `net.serve`: the shared accept path, one hyper
//! connection per client (HTTP/1.1, or HTTP/2 by ALPN over TLS), and a handle
//! that stops it gracefully. Everything runs on the Luau thread.

mod accept;
mod body;
mod compress;
pub(super) mod config;
mod connections;
pub(super) mod listener;
mod release;
pub(crate) mod request;
pub(super) mod response;
pub(super) mod service;
mod upgrade;

use std::{cell::Cell, rc::Rc, sync::Arc, time::Duration};

use futures_lite::future;
use futures_rustls::TlsAcceptor;
use hyper::server::conn::{http1, http2};
use lune_utils::TableBuilder;
use mlua::prelude::*;
use mlua_luau_scheduler::LuaSpawnExt;

use self::{
    accept::{Accepted, Bind, Local},
    config::ServeConfig,
    connections::Connections,
    service::Service,
};
use crate::{
    report,
    rt::{Activity, PeerIo, Stream},
    rt::{HyperTimer, LocalExecutor},
    shared::{self, signal::Signal},
};

/// How long in-flight requests may take to finish after `stop`, unless
/// `stop({ drain = seconds })` says otherwise.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Concurrent HTTP/2 streams per connection.
const MAX_CONCURRENT_STREAMS: u32 = 128;
/// Bytes buffered per HTTP/2 stream beyond what flow control lets out.
const MAX_SEND_BUF_SIZE: usize = 64 * 1024;

/// What outlives a request on one server: its shutdown and its count of
/// connections (upgraded `WebSocket`s among them).
pub(super) struct Lifetime {
    shutdown: Rc<Shutdown>,
    connections: Rc<Connections>,
}

impl Default for Lifetime {
    /// Of a server nobody stops (the fuzzer's).
    fn default() -> Self {
        Self {
            shutdown: Rc::default(),
            connections: Connections::new(),
        }
    }
}

/// How a server stops: `stop` sets how long in-flight requests may take
/// (`drain`) and fires `stopped`, which ends the accept loop and shuts
/// connections down gracefully; the accept loop fires `listener_closed`
/// once the socket is gone, which `stop` waits for so that new connections
/// are refused as soon as it returns.
pub(super) struct Shutdown {
    stopped: Signal,
    listener_closed: Signal,
    drain: Cell<Duration>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self {
            stopped: Signal::default(),
            listener_closed: Signal::default(),
            drain: Cell::new(SHUTDOWN_GRACE),
        }
    }
}

/// Binds `port`, starts serving in the background, and returns the handle.
/// With `unixSocket`, the port is not used.
pub(super) async fn serve(lua: Lua, port: u16, config: ServeConfig) -> LuaResult<LuaTable> {
    let bind = match &config.unix_socket {
        Some(path) => Bind::Unix(path.clone()),
        None => Bind::Tcp {
            addr: std::net::SocketAddr::new(config.address, port),
            reuse_port: config.reuse_port,
        },
    };
    let (listener, bound) = accept::bind(&bind).await?;
    let shutdown = Rc::new(Shutdown::default());
    let tls = config.tls.clone().map(TlsAcceptor::from);
    let max_connections = config.max_connections;
    let timeouts = Timeouts::of(&config);
    let connections = Connections::new();
    let lifetime = Lifetime {
        shutdown: shutdown.clone(),
        connections: connections.clone(),
    };
    let service = Service::new(lua.clone(), config, lifetime);
    let loop_lua = lua.clone();
    let loop_shutdown = shutdown.clone();
    let loop_connections = connections.clone();
    let connections_idle = connections.clone();
    lua.spawn_local(async move {
        let exec = LocalExecutor::new(loop_lua.clone());
        let conn_lua = loop_lua.clone();
        let conn_shutdown = loop_shutdown.clone();
        let on_accept = move |conn: Accepted| {
            let activity = timeouts.idle.map(|_| Activity::new());
            let peer = request::Peer::new(conn.peer(), conn.stream.tls_info());
            let service = service.for_connection(peer, activity.clone());
            let exec = exec.clone();
            let shutdown = conn_shutdown.clone();
            let open = loop_connections.open();
            conn_lua.spawn_local(async move {
                let _open = open;
                // Holds the connection's place under maxConnections.
                let _permit = conn.permit;
                serve_connection(conn.stream, service, exec, timeouts, activity, &shutdown).await;
            });
            future::ready(())
        };
        let spawn_lua = loop_lua.clone();
        let spawn = move |task| spawn_lua.spawn_local(task);
        let accepting = accept::run(
            &spawn,
            listener,
            tls,
            max_connections,
            "net.serve",
            &loop_shutdown.stopped,
            on_accept,
        );
        // The release loop never ends by itself: it goes with the listener.
        future::or(accepting, release::when_idle(&connections_idle, &loop_lua)).await;
        loop_shutdown.listener_closed.fire();
    });
    handle(&lua, bound, shutdown, connections)
}

/// The table `net.serve` returns: `ip` and `port` (or `path` for a Unix
/// socket) and `stop`, which works both as `handle.stop()` and
/// `handle:stop()`. `stop()` returns once the listener is closed, in-flight
/// requests finishing within 10 s behind it (as in Lune); `stop({ drain =
/// seconds? })` gives them `drain` seconds (default 10) and returns once
/// every connection is closed.
fn handle(
    lua: &Lua,
    bound: Local,
    shutdown: Rc<Shutdown>,
    connections: Rc<Connections>,
) -> LuaResult<LuaTable> {
    let builder = TableBuilder::new(lua.clone())?;
    let builder = match bound {
        Local::Ip(addr) => builder
            .with_value("ip", addr.ip().to_string())?
            .with_value("port", addr.port())?,
        Local::Unix(path) => {
            use std::os::unix::ffi::OsStrExt;
            builder.with_value("path", lua.create_string(path.as_os_str().as_bytes())?)?
        }
    };
    builder
        .with_async_function("stop", move |_, args: LuaMultiValue| {
            let shutdown = shutdown.clone();
            let connections = connections.clone();
            async move {
                let drain = stop_options(&args)?;
                if shutdown.stopped.is_set() {
                    return Err(LuaError::runtime(
                        "Server already stopped - stop was called more than once",
                    ));
                }
                if let Some(drain) = drain {
                    shutdown.drain.set(drain);
                }
                shutdown.stopped.fire();
                shutdown.listener_closed.wait().await;
                if drain.is_some() {
                    connections.until(|open| open == 0).await;
                }
                report::flush();
                Ok(())
            }
        })?
        .build_readonly()
}

/// The options of `stop`, called as `stop(options?)` or
/// `handle:stop(options?)` (the handle, which has `stop`, is skipped):
/// `Some(drain)` when a table was given, `drain` defaulting to 10 s (0
/// closes in-flight requests at once).
pub(super) fn stop_options(args: &LuaMultiValue) -> LuaResult<Option<Duration>> {
    let is_handle = |v: &LuaValue| matches!(v, LuaValue::Table(t) if matches!(t.raw_get("stop"), Ok(LuaValue::Function(_))));
    let Some(options) = args.iter().find(|v| !v.is_nil() && !is_handle(v)) else {
        return Ok(None);
    };
    let LuaValue::Table(options) = options else {
        return Err(LuaError::runtime(format!(
            "Invalid stop options - expected a table {{ drain: number? }}, got {}",
            lune_utils::type_name(options)
        )));
    };
    let drain = options.raw_get::<LuaValue>("drain")?;
    if matches!(drain, LuaValue::Integer(0)) || matches!(drain, LuaValue::Number(n) if n == 0.0) {
        return Ok(Some(Duration::ZERO));
    }
    Ok(Some(
        shared::options::seconds(&drain, "drain")?.unwrap_or(SHUTDOWN_GRACE),
    ))
}

/// How long a connection's peer may take to send headers and to take data,
/// and how long an idle connection is kept.
#[derive(Clone, Copy)]
pub(super) struct Timeouts {
    header: Duration,
    send: Duration,
    idle: Option<Duration>,
}

impl Timeouts {
    pub(super) fn of(config: &ServeConfig) -> Self {
        Self {
            header: config.header_timeout,
            send: config.send_timeout,
            idle: config.idle_timeout,
        }
    }
}

/// Runs one connection until the client leaves, it stays idle for
/// `idleTimeout` or the server stops; on stop, requests in flight get the
/// drain time to finish.
async fn serve_connection(
    stream: Stream,
    service: Service,
    exec: LocalExecutor,
    timeouts: Timeouts,
    activity: Option<Arc<Activity>>,
    shutdown: &Shutdown,
) {
    let h2 = stream.is_h2().then_some(exec);
    if let Err(e) = serve_io(stream, service, timeouts, activity, h2, shutdown).await
        && !is_peers_doing(&e)
    {
        report::error(&format!("net.serve: a connection failed: {e}"));
    }
}

/// Whether a connection's failure is the peer's doing, and so nothing to
/// report: it left or reset the connection, sent what is not HTTP or broke
/// HTTP/2's rules (hyper answered or sent GOAWAY already), stalled past
/// `headerTimeout` or took no data for `sendTimeout`. What is left is ours:
/// hyper refusing what the service produced, or a socket error no peer can
/// cause. A script's failing body function is reported where it failed.
fn is_peers_doing(e: &hyper::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        if cause.is::<shared::body::BodyError>() {
            return true;
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::{
                BrokenPipe, ConnectionAborted, ConnectionReset, NotConnected, TimedOut,
                UnexpectedEof,
            };
            return matches!(
                io.kind(),
                BrokenPipe
                    | ConnectionAborted
                    | ConnectionReset
                    | NotConnected
                    | TimedOut
                    | UnexpectedEof
            );
        }
        source = cause.source();
    }
    !e.is_user()
}

/// Serves HTTP on one connection's I/O with the settings of every served
/// connection: HTTP/2 when `h2` gives its executor (ALPN chose it),
/// HTTP/1.1 with upgrades otherwise. The accept loop and the fuzzer both
/// come through here. Returns hyper's error when the connection failed.
pub(super) async fn serve_io<I, S>(
    io: I,
    service: S,
    timeouts: Timeouts,
    activity: Option<Arc<Activity>>,
    h2: Option<LocalExecutor>,
    shutdown: &Shutdown,
) -> Result<(), hyper::Error>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::Service<
            http::Request<hyper::body::Incoming>,
            Response = response::HttpResponse,
            Error = std::convert::Infallible,
        > + 'static,
    S::Future: 'static,
{
    let idle = activity.clone().zip(timeouts.idle);
    let io = PeerIo::new(io, timeouts.send, activity);
    let finished = if let Some(exec) = h2 {
        let conn = http2::Builder::new(exec)
            .timer(HyperTimer::new())
            .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
            .max_send_buf_size(MAX_SEND_BUF_SIZE)
            .serve_connection(io, service);
        drive(conn, shutdown, idle, http2::Connection::graceful_shutdown).await
    } else {
        // hyper's header timer runs from the moment a kept-alive connection
        // goes idle, so it must not end an idle connection before idleTimeout.
        let header = timeouts
            .idle
            .map_or(timeouts.header, |idle| idle.max(timeouts.header));
        let conn = http1::Builder::new()
            .timer(HyperTimer::new())
            .header_read_timeout(header)
            .keep_alive(true)
            .serve_connection(io, service)
            .with_upgrades();
        drive(
            conn,
            shutdown,
            idle,
            http1::UpgradeableConnection::graceful_shutdown,
        )
        .await
    };
    // Past the drain time the connection was dropped: that is no error.
    finished.unwrap_or(Ok(()))
}

/// Drives `conn` until it ends; when the server stops or the connection
/// has been idle for its limit, shuts it down gracefully.
async fn drive<C, E>(
    conn: C,
    shutdown: &Shutdown,
    idle: Option<(Arc<Activity>, Duration)>,
    graceful: impl FnOnce(std::pin::Pin<&mut C>),
) -> Option<Result<(), E>>
where
    C: Future<Output = Result<(), E>>,
{
    let mut conn = std::pin::pin!(conn);
    let finished = future::or(async { Some(conn.as_mut().await) }, async {
        let idle = async {
            match &idle {
                Some((activity, limit)) => activity.idle(*limit).await,
                None => future::pending().await,
            }
        };
        future::or(shutdown.stopped.wait(), idle).await;
        None
    })
    .await;
    if finished.is_some() {
        return finished;
    }
    graceful(conn.as_mut());
    // Past the drain time the connection is dropped, which closes it.
    let drain = shutdown.drain.get();
    future::or(async { Some(conn.await) }, async {
        async_io::Timer::after(drain).await;
        None
    })
    .await
}
