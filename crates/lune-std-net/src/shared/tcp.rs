//! The `TcpStream` object Luau sees, for connected and accepted streams alike,
//! over TCP (with or without TLS) or a Unix domain socket.
//!
//! The stream is split into read and write halves, each behind its own async
//! lock, so reads and writes may run at the same time on different Luau
//! threads. `close` wakes a waiting `read`, which then returns nil.

use std::{any::Any, cell::RefCell, fmt, net::SocketAddr, path::PathBuf, rc::Rc, time::Duration};

use async_lock::Mutex;
use futures_lite::{
    AsyncReadExt, AsyncWriteExt,
    io::{ReadHalf, WriteHalf},
};
use mlua::prelude::*;

use super::{body::bytes_from_lua, options, signal::Signal};
use crate::rt::Stream;

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

struct Inner {
    reader: Mutex<Option<ReadHalf<Stream>>>,
    writer: Mutex<Option<WriteHalf<Stream>>>,
    closed: Signal,
    ends: Endpoints,
    /// The TCP socket, for socket options; released on close.
    socket: RefCell<Option<std::net::TcpStream>>,
    /// Kept while the stream is open (a listener's connection slot).
    held: RefCell<Option<Box<dyn Any>>>,
}

/// A TCP (or TLS, or Unix socket) stream: `localIp`, `localPort`,
/// `remoteIp`, `remotePort` (or `path`), `read`, `write`, `close`,
/// `setNoDelay`, `setKeepAlive`.
pub(crate) struct TcpStream {
    inner: Rc<Inner>,
}

impl TcpStream {
    /// A stream between `local` and `remote`, as they were when it was
    /// accepted or connected (a peer that has since reset has no address).
    pub(crate) fn new(stream: Stream, local: SocketAddr, remote: SocketAddr) -> Self {
        Self::with_ends(stream, Endpoints::Ip { local, remote })
    }

    /// A stream whose ends are `ends`.
    pub(crate) fn with_ends(stream: Stream, ends: Endpoints) -> Self {
        // A second handle on the socket (for its options), not a second
        // connection.
        let socket = stream.tcp().and_then(|s| s.try_clone().ok());
        let (reader, writer) = futures_lite::io::split(stream);
        Self {
            inner: Rc::new(Inner {
                reader: Mutex::new(Some(reader)),
                writer: Mutex::new(Some(writer)),
                closed: Signal::default(),
                ends,
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

    async fn read(&self, size: usize) -> LuaResult<Option<Vec<u8>>> {
        if self.inner.closed.is_set() {
            return Ok(None);
        }
        let mut reader = self.inner.reader.lock().await;
        let Some(half) = reader.as_mut() else {
            return Ok(None);
        };
        let mut buf = vec![0u8; size];
        let read = futures_lite::future::or(async { Some(half.read(&mut buf).await) }, async {
            self.inner.closed.wait().await;
            None
        })
        .await;
        match read {
            None | Some(Ok(0)) => Ok(None),
            Some(Ok(n)) => {
                buf.truncate(n);
                Ok(Some(buf))
            }
            Some(Err(e)) => Err(LuaError::runtime(format!(
                "Failed to read from TCP stream ({}): {e}",
                self.inner.ends
            ))),
        }
    }

    async fn write(&self, data: &[u8]) -> LuaResult<()> {
        let closed = || LuaError::runtime("TCP stream is closed - cannot write");
        if self.inner.closed.is_set() {
            return Err(closed());
        }
        let mut writer = self.inner.writer.lock().await;
        let half = writer.as_mut().ok_or_else(closed)?;
        let written = async {
            half.write_all(data).await?;
            half.flush().await
        };
        written.await.map_err(|e| {
            LuaError::runtime(format!(
                "Failed to write to TCP stream ({}): {e}",
                self.inner.ends
            ))
        })
    }

    async fn close(&self) {
        self.inner.close().await;
    }
}

impl Inner {
    async fn close(&self) {
        if self.closed.is_set() {
            return;
        }
        self.closed.fire();
        if let Some(mut half) = self.writer.lock().await.take() {
            // The peer may be gone already; the socket closes either way.
            let _ = half.close().await;
        }
        self.reader.lock().await.take();
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
