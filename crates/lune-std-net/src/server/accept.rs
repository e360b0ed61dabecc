//! The one accept path of every server (`net.serve`, `net.tcp.listen`,
//! `net.unix.listen`): bind (TCP with `reusePort`, or a Unix socket file),
//! accept within `maxConnections`, the TLS handshake with its timeout, and
//! the peer address carried along. Everything here runs on the Luau thread,
//! where the accepted connections are used.
//!
//! An error of one connection (a peer that reset before it was accepted, a
//! failed or slow TLS handshake) never surfaces as a failure of the listener:
//! it is reported on stderr and the loop goes on. Errors of the listening
//! socket itself (out of file descriptors) are reported and retried after a
//! short pause.

use std::{
    cell::Cell,
    future::Future,
    io,
    net::SocketAddr,
    os::unix::fs::{FileTypeExt, MetadataExt},
    path::{Path, PathBuf},
    rc::Rc,
    time::Duration,
};

use async_io::Async;
use event_listener::Event;
use futures_lite::future;
use futures_rustls::TlsAcceptor;
use mlua::prelude::*;

use crate::{
    report,
    rt::{
        Stream, TcpConn, UnixConn,
        connect::{self, ConnectError, Target},
        tls::CertProblem,
    },
    shared::{signal::Signal, tcp::Endpoints},
};

type TcpListener = Async<std::net::TcpListener>;
type UnixListener = Async<std::os::unix::net::UnixListener>;

/// How long a client may take to complete the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The pause after an error of the listening socket itself.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// How long probing a Unix socket file for a live server may take.
const STALE_PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections the kernel queues before they are accepted (it caps this at
/// `net.core.somaxconn`).
const LISTEN_BACKLOG: i32 = 1024;

/// Where a server listens.
pub(super) enum Bind {
    /// An IP address and port; `reuse_port` lets several sockets (in several
    /// processes) share the port, the kernel spreading connections over them.
    Tcp { addr: SocketAddr, reuse_port: bool },
    /// A Unix domain socket file.
    Unix(PathBuf),
}

/// The address a server is bound to.
#[derive(Clone)]
pub(super) enum Local {
    Ip(SocketAddr),
    Unix(PathBuf),
}

impl std::fmt::Display for Local {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ip(addr) => write!(f, "{addr}"),
            Self::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// A bound listening socket.
pub(super) enum Listener {
    Tcp(TcpListener),
    Unix {
        listener: UnixListener,
        file: SocketFile,
    },
}

/// The socket file of a Unix listener, removed when the listener goes — if
/// it is still the file this listener made (another server may have
/// replaced it since).
pub(super) struct SocketFile {
    path: PathBuf,
    id: (u64, u64),
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let ours =
            std::fs::symlink_metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.id);
        if ours {
            // Gone already (removed by hand): nothing is left to clean up.
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A connection ready for use: TLS done if the server has TLS.
pub(super) struct Accepted {
    pub(super) stream: Stream,
    pub(super) ends: Endpoints,
    /// The connection's place under `maxConnections`; dropping it lets the
    /// accept loop take another connection.
    pub(super) permit: Permit,
}

impl Accepted {
    /// The client's address; `None` over a Unix socket.
    pub(super) fn peer(&self) -> Option<SocketAddr> {
        match self.ends {
            Endpoints::Ip { remote, .. } => Some(remote),
            Endpoints::Unix { .. } => None,
        }
    }
}

/// Binds as `bind` says; the error names the address.
pub(super) async fn bind(bind: &Bind) -> LuaResult<(Listener, Local)> {
    match bind {
        Bind::Tcp { addr, reuse_port } => {
            let fail = |e: io::Error| LuaError::runtime(format!("Failed to bind to {addr} - {e}"));
            let listener = bind_tcp(*addr, *reuse_port).map_err(fail)?;
            let bound = listener.get_ref().local_addr().map_err(fail)?;
            Ok((Listener::Tcp(listener), Local::Ip(bound)))
        }
        Bind::Unix(path) => {
            let fail = |e: io::Error| {
                LuaError::runtime(format!(
                    "Failed to bind to Unix socket {} - {e}",
                    path.display()
                ))
            };
            let listener = bind_unix(path).await.map_err(fail)?;
            let meta = std::fs::symlink_metadata(path).map_err(fail)?;
            let file = SocketFile {
                path: path.clone(),
                id: (meta.dev(), meta.ino()),
            };
            Ok((Listener::Unix { listener, file }, Local::Unix(path.clone())))
        }
    }
}

fn bind_tcp(addr: SocketAddr, reuse_port: bool) -> io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // As the standard library does: a restarted server rebinds its port at
    // once, without waiting for old connections in TIME_WAIT.
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Async::new(std::net::TcpListener::from(socket))
}

/// Binds a Unix socket at `path`. A socket file left behind by a server
/// that is gone (connecting to it is refused) is replaced; a live socket or
/// any other kind of file is an error.
async fn bind_unix(path: &Path) -> io::Result<UnixListener> {
    match UnixListener::bind(path) {
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
            let is_socket =
                std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket());
            if !is_socket {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "a file that is not a socket is in the way",
                ));
            }
            match connect::open(&Target::unix(path), STALE_PROBE_TIMEOUT).await {
                Ok(_) => Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    "another server is listening on it",
                )),
                Err(ConnectError::Connect { source, .. })
                    if source.kind() == io::ErrorKind::ConnectionRefused =>
                {
                    std::fs::remove_file(path)?;
                    UnixListener::bind(path)
                }
                Err(_) => Err(e),
            }
        }
        other => other,
    }
}

/// The connection slots of a server with `maxConnections`.
struct Slots {
    max: usize,
    used: Cell<usize>,
    freed: Event,
}

impl Slots {
    async fn acquire(self: &Rc<Self>) -> Permit {
        loop {
            if self.used.get() < self.max {
                self.used.set(self.used.get() + 1);
                return Permit(Some(self.clone()));
            }
            let listener = self.freed.listen();
            if self.used.get() < self.max {
                continue;
            }
            listener.await;
        }
    }
}

/// One connection's slot; frees it when dropped.
pub(super) struct Permit(Option<Rc<Slots>>);

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(slots) = self.0.take() {
            slots.used.set(slots.used.get().saturating_sub(1));
            slots.freed.notify(1);
        }
    }
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

/// A connection as the listening socket hands it over.
enum Raw {
    Tcp(std::net::TcpStream, SocketAddr),
    Unix(std::os::unix::net::UnixStream),
}

impl Listener {
    async fn accept(&self) -> io::Result<Raw> {
        match self {
            // The plain socket: `Conn::new` registers it where it is used.
            Self::Tcp(listener) => listener
                .read_with(std::net::TcpListener::accept)
                .await
                .map(|(s, a)| Raw::Tcp(s, a)),
            Self::Unix { listener, .. } => listener
                .read_with(std::os::unix::net::UnixListener::accept)
                .await
                .map(|(s, _)| Raw::Unix(s)),
        }
    }

    fn local(&self) -> Option<Local> {
        match self {
            Self::Tcp(listener) => listener.get_ref().local_addr().ok().map(Local::Ip),
            Self::Unix { file, .. } => Some(Local::Unix(file.path.clone())),
        }
    }
}

/// Accepts until `stop` fires, then drops the listening socket (a Unix
/// socket's file goes with it). With `max_connections`, no connection is
/// accepted while that many are open: further ones wait in the kernel's
/// backlog. Each connection goes to `on_accept` once its TLS handshake (if
/// any) is done: plain connections in order, awaited here (so a full queue
/// holds further connections in the backlog), TLS ones from their own
/// tasks, started with `spawn` (the scheduler for a server, the listener's
/// own task group for a listener). `what` names the server in reports
/// (`net.serve`). Config parsing refuses TLS on a Unix socket, so `tls`
/// applies to TCP connections only.
pub(super) async fn run<H, F>(
    spawn: &dyn Fn(future::BoxedLocal<()>),
    listener: Listener,
    tls: Option<TlsAcceptor>,
    max_connections: Option<usize>,
    what: &'static str,
    stop: &Signal,
    on_accept: H,
) where
    H: Fn(Accepted) -> F + Clone + 'static,
    F: Future<Output = ()> + 'static,
{
    let local = listener.local();
    let slots = max_connections.map(|max| {
        Rc::new(Slots {
            max,
            used: Cell::new(0),
            freed: Event::new(),
        })
    });
    loop {
        let accepted = future::or(
            async { Some(accept_one(&listener, slots.as_ref(), local.as_ref(), what).await) },
            async {
                stop.wait().await;
                None
            },
        )
        .await;
        let Some((permit, raw)) = accepted else {
            return;
        };
        let Some((conn, ends)) = register(raw, local.as_ref(), what) else {
            continue;
        };
        match (conn, &tls) {
            (Registered::Tcp(tcp), Some(acceptor)) => {
                let (acceptor, on_accept) = (acceptor.clone(), on_accept.clone());
                spawn(Box::pin(async move {
                    if let Some(stream) = tls_handshake(&acceptor, tcp, &ends, what).await {
                        on_accept(Accepted {
                            stream,
                            ends,
                            permit,
                        })
                        .await;
                    }
                }));
            }
            (conn, _) => {
                let stream = match conn {
                    Registered::Tcp(tcp) => Stream::Plain(tcp),
                    Registered::Unix(unix) => Stream::Unix(unix),
                };
                on_accept(Accepted {
                    stream,
                    ends,
                    permit,
                })
                .await;
            }
        }
    }
}

/// The next connection the listener accepts, with its place under
/// `maxConnections`. A connection that failed before it was accepted is
/// skipped; an error of the listening socket itself is reported and
/// retried after a pause.
async fn accept_one(
    listener: &Listener,
    slots: Option<&Rc<Slots>>,
    local: Option<&Local>,
    what: &str,
) -> (Permit, Raw) {
    loop {
        let permit = match slots {
            Some(slots) => slots.acquire().await,
            None => Permit(None),
        };
        match listener.accept().await {
            Ok(raw) => return (permit, raw),
            Err(e) if is_connection_error(&e) => {}
            Err(e) => {
                let on = local.map(|a| format!(" on {a}")).unwrap_or_default();
                report::error(&format!("{what}: failed to accept a connection{on}: {e}"));
                drop(permit);
                async_io::Timer::after(ACCEPT_BACKOFF).await;
            }
        }
    }
}

/// An accepted socket registered with the reactor.
enum Registered {
    Tcp(TcpConn),
    Unix(UnixConn),
}

/// Registers an accepted socket for I/O and notes its endpoints. That can
/// fail (out of memory for the epoll set): the connection is then dropped
/// and the error reported.
fn register(raw: Raw, local: Option<&Local>, what: &str) -> Option<(Registered, Endpoints)> {
    let registered = match raw {
        Raw::Unix(stream) => {
            let path = match local {
                Some(Local::Unix(path)) => path.clone(),
                _ => PathBuf::new(),
            };
            UnixConn::new(stream).map(|unix| (Registered::Unix(unix), Endpoints::Unix { path }))
        }
        Raw::Tcp(tcp, peer) => {
            // Nagle's algorithm only delays small writes: a socket that
            // refuses to turn it off still works.
            let _ = tcp.set_nodelay(true);
            let bound = match local {
                Some(Local::Ip(addr)) => Some(*addr),
                _ => None,
            };
            let ends = Endpoints::Ip {
                local: tcp.local_addr().ok().or(bound).unwrap_or(peer),
                remote: peer,
            };
            TcpConn::new(tcp).map(|tcp| (Registered::Tcp(tcp), ends))
        }
    };
    registered
        .map_err(|e| {
            report::error(&format!(
                "{what}: failed to register an accepted connection: {e}"
            ));
        })
        .ok()
}

/// The server side of a TLS handshake, within [`TLS_HANDSHAKE_TIMEOUT`]; a
/// failed or slow one is reported (without the client's port, so that
/// repeats from one client count as one error) and gives `None`.
async fn tls_handshake(
    acceptor: &TlsAcceptor,
    tcp: TcpConn,
    ends: &Endpoints,
    what: &str,
) -> Option<Stream> {
    let handshake = future::or(async { Some(acceptor.accept(tcp).await) }, async {
        async_io::Timer::after(TLS_HANDSHAKE_TIMEOUT).await;
        None
    });
    let client = match ends {
        Endpoints::Ip { remote, .. } => remote.ip().to_string(),
        Endpoints::Unix { .. } => "a Unix socket".to_string(),
    };
    match handshake.await {
        Some(Ok(tls)) => return Some(Stream::ServerTls(Box::new(tls))),
        Some(Err(e)) if CertProblem::of(&e) == Some(CertProblem::ClientCertRequired) => {
            report::error(&format!(
                "{what}: TLS handshake with a client at {client} failed: it presented no client certificate (tls.requireClientCert)"
            ));
        }
        Some(Err(e)) => report::error(&format!(
            "{what}: TLS handshake with a client at {client} failed: {e}"
        )),
        None => report::error(&format!(
            "{what}: TLS handshake with a client at {client} timed out after {} s",
            TLS_HANDSHAKE_TIMEOUT.as_secs()
        )),
    }
    None
}
