//! The `TcpStream` object Luau sees, for connected and accepted streams alike,
//! over TCP (with or without TLS) or a Unix domain socket.
//!
//! Reads and writes each hold their own async lock, so they may run at the
//! same time on different Luau threads (both poll the one stream, never at
//! once: everything runs on the Luau thread). `close` wakes a waiting
//! `read`, which then returns nil. `upgradeTls` turns a plain stream into
//! TLS in place (STARTTLS).

use std::{
    any::Any,
    cell::{Cell, RefCell},
    fmt, io,
    net::SocketAddr,
    path::PathBuf,
    pin::Pin,
    rc::Rc,
    task::{Context, Poll},
    time::Duration,
};

use async_lock::Mutex;
use futures_lite::{AsyncRead, AsyncWrite, future};
use mlua::prelude::*;

use super::{body::bytes_from_lua, options, signal::Signal};
use crate::rt::{
    Stream, TcpConn, TlsInfo,
    connect::{self, DEFAULT_CONNECT_TIMEOUT},
    tls::{self, Alpn, CertProblem, ClientTls},
};

/// The longest keep-alive idle time the kernel takes (`TCP_KEEPIDLE`).
const MAX_KEEPALIVE_SECONDS: f64 = 32767.0;

/// The two ends of a stream: IP addresses and ports, or a Unix socket's path.
pub(crate) enum Endpoints {
    Ip {
        local: SocketAddr,
        remote: SocketAddr,
    },
    Unix {
        path: PathBuf,
    },
}

impl fmt::Display for Endpoints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ip { remote, .. } => write!(f, "{remote}"),
            Self::Unix { path } => write!(f, "{}", path.display()),
        }
    }
}

/// Which end made the stream, for `upgradeTls`.
pub(crate) enum Side {
    /// `net.tcp.connect` to this host (the name TLS checks by default).
    Connected { host: String },
    /// Accepted by a listener.
    Accepted,
}

struct Inner {
    /// Polled by one reader and one writer at a time (each holds its lock
    /// while it waits); only `upgradeTls` and `close` take it out.
    stream: RefCell<Option<Stream>>,
    reading: Mutex<()>,
    writing: Mutex<()>,
    /// Set while `upgradeTls` runs.
    upgrading: Cell<bool>,
    closed: Signal,
    ends: Endpoints,
    side: Side,
    /// The handshake's outcome, once the stream is TLS.
    tls: RefCell<Option<TlsInfo>>,
    /// The TCP socket, for socket options; released on close.
    socket: RefCell<Option<std::net::TcpStream>>,
    /// Kept while the stream is open (a listener's connection slot).
    held: RefCell<Option<Box<dyn Any>>>,
}

/// A TCP (or TLS, or Unix socket) stream: `localIp`, `localPort`,
/// `remoteIp`, `remotePort` (or `path`), `peerCertificate`, `read`,
/// `write`, `close`, `setNoDelay`, `setKeepAlive`, `upgradeTls`.
pub(crate) struct TcpStream {
    inner: Rc<Inner>,
}

impl TcpStream {
    /// A stream whose ends are `ends`, made by `side`.
    pub(crate) fn new(stream: Stream, ends: Endpoints, side: Side) -> Self {
        // A second handle on the socket (for its options), not a second
        // connection.
        let socket = stream.tcp().and_then(|s| s.try_clone().ok());
        let tls = stream.tls_info();
        Self {
            inner: Rc::new(Inner {
                stream: RefCell::new(Some(stream)),
                reading: Mutex::new(()),
                writing: Mutex::new(()),
                upgrading: Cell::new(false),
                closed: Signal::default(),
                ends,
                side,
                tls: RefCell::new(tls),
                socket: RefCell::new(socket),
                held: RefCell::new(None),
            }),
        }
    }

    /// A handle that can close this stream from outside (a listener's
    /// `close({ drain })`) without keeping it alive.
    pub(crate) fn closer(&self) -> Closer {
        Closer(Rc::downgrade(&self.inner))
    }

    /// Keeps `value` until the stream is closed or dropped.
    pub(crate) fn holding(self, value: Box<dyn Any>) -> Self {
        *self.inner.held.borrow_mut() = Some(value);
        self
    }

    /// The TCP socket for setting `option`; an error once closed or for a
    /// Unix socket.
    fn socket(&self, option: &str) -> LuaResult<std::cell::Ref<'_, std::net::TcpStream>> {
        if let Endpoints::Unix { .. } = self.inner.ends {
            return Err(LuaError::runtime(format!(
                "{option} applies to TCP streams - this stream is a Unix socket"
            )));
        }
        std::cell::Ref::filter_map(self.inner.socket.borrow(), Option::as_ref)
            .map_err(|_| LuaError::runtime(format!("TCP stream is closed - cannot use {option}")))
    }

    fn set_no_delay(&self, on: LuaValue) -> LuaResult<()> {
        let LuaValue::Boolean(on) = on else {
            return Err(LuaError::runtime(format!(
                "Invalid 'on' - expected a boolean, got {}",
                options::describe(&on)
            )));
        };
        self.socket("setNoDelay")?
            .set_nodelay(on)
            .map_err(|e| LuaError::runtime(format!("setNoDelay failed ({}): {e}", self.inner.ends)))
    }

    /// `false` turns keep-alive probes off; seconds turn them on, probing a
    /// connection idle that long, then every that many seconds.
    fn set_keep_alive(&self, value: LuaValue) -> LuaResult<()> {
        let idle = match value {
            LuaValue::Boolean(false) => None,
            other => Some(
                options::seconds_up_to(&other, "seconds", MAX_KEEPALIVE_SECONDS)?.ok_or_else(
                    || {
                        LuaError::runtime(
                            "Invalid 'seconds' - expected a number of seconds or false, got nil",
                        )
                    },
                )?,
            ),
        };
        let socket = self.socket("setKeepAlive")?;
        let sock = socket2::SockRef::from(&*socket);
        let set = match idle {
            None => sock.set_keepalive(false),
            Some(idle) => {
                // The kernel counts whole seconds, from 1.
                let whole = Duration::from_secs(idle.as_secs_f64().ceil().max(1.0) as u64);
                let params = socket2::TcpKeepalive::new()
                    .with_time(whole)
                    .with_interval(whole);
                sock.set_tcp_keepalive(&params)
            }
        };
        set.map_err(|e| {
            LuaError::runtime(format!("setKeepAlive failed ({}): {e}", self.inner.ends))
        })
    }

    /// An error for `what` while `upgradeTls` runs, else none.
    fn not_upgrading(&self, what: &str) -> LuaResult<()> {
        if self.inner.upgrading.get() {
            return Err(LuaError::runtime(format!(
                "Cannot {what} the TCP stream ({}) while upgradeTls is in progress",
                self.inner.ends
            )));
        }
        Ok(())
    }

    async fn read(&self, size: usize) -> LuaResult<Option<Vec<u8>>> {
        self.not_upgrading("read")?;
        if self.inner.closed.is_set() {
            return Ok(None);
        }
        let _reading = self.inner.reading.lock().await;
        let mut buf = vec![0u8; size];
        let read = future::or(
            async {
                Some(
                    future::poll_fn(|cx| self.inner.poll(cx, |s, cx| s.poll_read(cx, &mut buf)))
                        .await,
                )
            },
            async {
                self.inner.closed.wait().await;
                None
            },
        )
        .await;
        match read {
            None | Some(Ok(0)) => Ok(None),
            Some(Ok(n)) => {
                buf.truncate(n);
                Ok(Some(buf))
            }
            Some(Err(e)) if e.kind() == io::ErrorKind::NotConnected => Ok(None),
            Some(Err(e)) => Err(self.failed("read from", &e)),
        }
    }

    async fn write(&self, data: &[u8]) -> LuaResult<()> {
        self.not_upgrading("write to")?;
        let closed = || LuaError::runtime("TCP stream is closed - cannot write");
        if self.inner.closed.is_set() {
            return Err(closed());
        }
        let _writing = self.inner.writing.lock().await;
        let mut written = 0;
        while written < data.len() {
            let n = future::poll_fn(|cx| {
                self.inner
                    .poll(cx, |s, cx| s.poll_write(cx, &data[written..]))
            })
            .await;
            match n {
                Ok(0) => return Err(self.failed("write to", &io::ErrorKind::WriteZero.into())),
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return Err(closed()),
                Err(e) => return Err(self.failed("write to", &e)),
            }
        }
        future::poll_fn(|cx| self.inner.poll(cx, AsyncWrite::poll_flush))
            .await
            .map_err(|e| self.failed("write to", &e))
    }

    /// A failed read or write, saying what was wrong with a certificate
    /// when that was it (a server that wants a client certificate says so
    /// only after the TLS 1.3 handshake).
    fn failed(&self, what: &str, e: &io::Error) -> LuaError {
        let ends = &self.inner.ends;
        match CertProblem::of(e) {
            Some(problem) => {
                let host = ends.to_string();
                LuaError::runtime(format!(
                    "Failed to {what} TCP stream ({ends}): {}",
                    problem.describe(&host, &host, false)
                ))
            }
            None => LuaError::runtime(format!("Failed to {what} TCP stream ({ends}): {e}")),
        }
    }

    /// `upgradeTls(options?)`: the TLS handshake over this plain stream, as
    /// a client (`{ serverName?, ca?, cert?, key? }`, checking the host it
    /// connected to by default) or, on an accepted stream, as a server
    /// (`{ cert, key, clientCa?, requireClientCert? }`). The stream holds
    /// no bytes of its own (reads go straight to the socket), so nothing
    /// read before is lost. A failed handshake closes the stream.
    async fn upgrade_tls(&self, options: Option<LuaTable>) -> LuaResult<()> {
        let inner = &self.inner;
        let refuse = |why: &str| {
            Err(LuaError::runtime(format!(
                "Cannot upgrade the TCP stream ({}) to TLS - {why}",
                inner.ends
            )))
        };
        if inner.closed.is_set() {
            return refuse("it is closed");
        }
        if inner.upgrading.get() {
            return refuse("an upgrade is already in progress");
        }
        let handshake = match (&inner.side, options) {
            (Side::Connected { host }, options) => {
                let tls = match &options {
                    Some(table) => options::client_tls_table(table, "options")?,
                    None => ClientTls::default(),
                };
                Handshake::Client(host.clone(), tls)
            }
            (Side::Accepted, Some(table)) => {
                let pem = options::server_pem(&table, "options")?;
                Handshake::Server(tls::server(&pem, &[]).map_err(LuaError::external)?)
            }
            (Side::Accepted, None) => {
                return refuse(
                    "an accepted stream needs its certificate: upgradeTls({ cert = ..., key = ... })",
                );
            }
        };
        let (Some(_reading), Some(_writing)) = (inner.reading.try_lock(), inner.writing.try_lock())
        else {
            return refuse("a read or write is in progress");
        };
        let taken = inner.stream.borrow_mut().take();
        let tcp = match taken {
            Some(Stream::Plain(tcp)) => tcp,
            other => {
                let why = match &other {
                    Some(Stream::Unix(_)) => "it is a Unix socket",
                    Some(_) => "it is TLS already",
                    None => "it is closed",
                };
                *inner.stream.borrow_mut() = other;
                return refuse(why);
            }
        };
        let upgrading = Upgrading::start(inner);
        let upgraded = future::or(handshake.run(tcp), async {
            async_io::Timer::after(DEFAULT_CONNECT_TIMEOUT).await;
            Err(format!(
                "the TLS handshake timed out after {} seconds",
                DEFAULT_CONNECT_TIMEOUT.as_secs()
            ))
        })
        .await;
        if let Ok(stream) = &upgraded {
            *inner.tls.borrow_mut() = stream.tls_info();
        }
        let upgraded = upgraded.map(|stream| *inner.stream.borrow_mut() = Some(stream));
        // Without the stream back (a failed handshake), this closes it.
        drop(upgrading);
        upgraded.map_err(|why| {
            LuaError::runtime(format!(
                "TLS upgrade of the TCP stream ({}) failed: {why}",
                inner.ends
            ))
        })
    }

    async fn close(&self) {
        self.inner.close().await;
    }
}

/// Marks a stream as upgrading while the handshake runs. Dropped early (the
/// calling thread was cancelled), it closes the stream: its socket went
/// into the handshake and is gone.
struct Upgrading<'a>(&'a Inner);

impl<'a> Upgrading<'a> {
    fn start(inner: &'a Inner) -> Self {
        inner.upgrading.set(true);
        Self(inner)
    }
}

impl Drop for Upgrading<'_> {
    fn drop(&mut self) {
        self.0.upgrading.set(false);
        // Never a panic in a Drop: a poll is the only other borrower, and
        // none runs while a future is dropped.
        if self
            .0
            .stream
            .try_borrow()
            .is_ok_and(|stream| stream.is_none())
        {
            self.0.close_without_stream();
        }
    }
}

/// The handshake `upgradeTls` makes.
enum Handshake {
    /// As a client of `host`.
    Client(String, ClientTls),
    Server(std::sync::Arc<rustls::ServerConfig>),
}

impl Handshake {
    async fn run(self, tcp: TcpConn) -> Result<Stream, String> {
        match self {
            Self::Client(host, tls) => connect::tls(tcp, &host, Alpn::Raw, &tls)
                .await
                .map_err(|e| e.to_string()),
            Self::Server(config) => {
                let stream = futures_rustls::TlsAcceptor::from(config)
                    .accept(tcp)
                    .await
                    .map_err(|e| match CertProblem::of(&e) {
                        Some(CertProblem::ClientCertRequired) => {
                            "the client presented no certificate (requireClientCert)".to_string()
                        }
                        Some(problem) => format!("the client's certificate: {problem:?}"),
                        None => e.to_string(),
                    })?;
                Ok(Stream::ServerTls(Box::new(stream)))
            }
        }
    }
}

impl Inner {
    /// Marks the stream closed once its socket is gone (a failed or
    /// abandoned upgrade).
    fn close_without_stream(&self) {
        self.closed.fire();
        self.socket.borrow_mut().take();
        self.held.borrow_mut().take();
    }

    /// Polls the stream with `f`; `NotConnected` once it is gone.
    fn poll<T>(
        &self,
        cx: &mut Context<'_>,
        f: impl FnOnce(Pin<&mut Stream>, &mut Context<'_>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        // Never borrowed across an await: a poll is the only borrower.
        match self.stream.try_borrow_mut().as_deref_mut() {
            Ok(Some(stream)) => f(Pin::new(stream), cx),
            _ => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }

    async fn close(&self) {
        if self.closed.is_set() {
            return;
        }
        self.closed.fire();
        {
            let _writing = self.writing.lock().await;
            // The peer may be gone already; the socket closes either way.
            let _ = future::poll_fn(|cx| self.poll(cx, AsyncWrite::poll_close)).await;
        }
        let _reading = self.reading.lock().await;
        self.stream.borrow_mut().take();
        self.socket.borrow_mut().take();
        self.held.borrow_mut().take();
    }
}

/// Closes a [`TcpStream`] from outside; see [`TcpStream::closer`].
#[derive(Clone)]
pub(crate) struct Closer(std::rc::Weak<Inner>);

impl Closer {
    /// True once the stream is closed or gone.
    pub(crate) fn is_closed(&self) -> bool {
        self.0.upgrade().is_none_or(|inner| inner.closed.is_set())
    }

    /// Resolves once the stream is closed or gone.
    pub(crate) async fn closed(&self) {
        if let Some(inner) = self.0.upgrade() {
            inner.closed.wait().await;
        }
    }

    pub(crate) async fn close(&self) {
        if let Some(inner) = self.0.upgrade() {
            inner.close().await;
        }
    }
}

/// The most `read(size)` returns at once, whatever `size` says.
const MAX_READ_SIZE: usize = 16 * 1024 * 1024;

fn read_size(size: Option<LuaValue>) -> LuaResult<usize> {
    let size = size.unwrap_or(LuaValue::Nil);
    Ok(options::size(&size, "size")?.map_or(options::DEFAULT_READ_SIZE, |n| n.min(MAX_READ_SIZE)))
}

impl LuaUserData for TcpStream {
    fn add_fields<F: LuaUserDataFields<Self>>(fields: &mut F) {
        fn ip(ends: &Endpoints, local: bool) -> Option<SocketAddr> {
            match ends {
                Endpoints::Ip {
                    local: l,
                    remote: r,
                } => Some(if local { *l } else { *r }),
                Endpoints::Unix { .. } => None,
            }
        }
        fields.add_field_method_get("localIp", |_, this| {
            Ok(ip(&this.inner.ends, true).map(|a| a.ip().to_string()))
        });
        fields.add_field_method_get("localPort", |_, this| {
            Ok(ip(&this.inner.ends, true).map(|a| a.port()))
        });
        fields.add_field_method_get("remoteIp", |_, this| {
            Ok(ip(&this.inner.ends, false).map(|a| a.ip().to_string()))
        });
        fields.add_field_method_get("remotePort", |_, this| {
            Ok(ip(&this.inner.ends, false).map(|a| a.port()))
        });
        fields.add_field_method_get("peerCertificate", |_, this| {
            Ok(this
                .inner
                .tls
                .borrow()
                .as_ref()
                .and_then(|tls| tls.peer_certificate.clone()))
        });
        fields.add_field_method_get("path", |lua, this| match &this.inner.ends {
            Endpoints::Unix { path } => {
                use std::os::unix::ffi::OsStrExt;
                Ok(Some(lua.create_string(path.as_os_str().as_bytes())?))
            }
            Endpoints::Ip { .. } => Ok(None),
        });
    }

    fn add_methods<M: LuaUserDataMethods<Self>>(methods: &mut M) {
        methods.add_async_method("read", |lua, this, size: Option<LuaValue>| {
            lune_utils::wake_on_drop(async move {
                let size = read_size(size)?;
                match this.read(size).await? {
                    Some(bytes) => Ok(LuaValue::String(lua.create_string(bytes)?)),
                    None => Ok(LuaValue::Nil),
                }
            })
        });
        methods.add_async_method("write", |_, this, data: LuaValue| {
            lune_utils::wake_on_drop(async move {
                match &data {
                    // Lua strings are immutable: write straight from Lua's memory.
                    LuaValue::String(s) => this.write(&s.as_bytes()).await,
                    other => this.write(&bytes_from_lua(other, "TCP data")?).await,
                }
            })
        });
        methods.add_async_method("close", |_, this, ()| {
            lune_utils::wake_on_drop(async move {
                this.close().await;
                Ok(())
            })
        });
        methods.add_async_method("upgradeTls", |_, this, options: Option<LuaTable>| {
            lune_utils::wake_on_drop(async move { this.upgrade_tls(options).await })
        });
        methods.add_method("setNoDelay", |_, this, on: LuaValue| this.set_no_delay(on));
        methods.add_method("setKeepAlive", |_, this, value: LuaValue| {
            this.set_keep_alive(value)
        });
        methods.add_meta_method(LuaMetaMethod::ToString, |_, this, ()| {
            Ok(match &this.inner.ends {
                Endpoints::Ip { local, remote } => format!("TcpStream({local} -> {remote})"),
                Endpoints::Unix { path } => format!("TcpStream(unix:{})", path.display()),
            })
        });
    }
}

#[cfg(test)]
mod tests {
    /// Regression: the docs said `read()` defaults to 8 KiB while it read up
    /// to 64 KiB.
    #[test]
    fn documented_read_default_matches_the_code() {
        let docs = include_str!("../../types.d.luau");
        let said = format!("(default {} KiB)", super::options::DEFAULT_READ_SIZE / 1024);
        assert!(docs.contains(&said), "types.d.luau should say {said}");
    }
}
