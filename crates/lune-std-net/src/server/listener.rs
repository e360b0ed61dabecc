//! `net.tcp.listen` and `net.unix.listen`: a TCP (or TLS) or Unix server
//! socket over the shared accept path. Accepted streams queue in a bounded
//! channel that `accept` reads; while it is full, further connections wait
//! in the kernel's backlog. The loop runs only while a script waits on the
//! listener, so an open listener keeps no script alive.

use std::{cell::RefCell, net::SocketAddr, rc::Rc, time::Duration};

use async_channel::Receiver;
use futures_lite::future;
use futures_rustls::TlsAcceptor;
use lune_utils::tasks::TaskGroup;
use mlua::prelude::*;

use super::accept::{self, Accepted, Bind, Local};
use crate::shared::{
    options::Options,
    signal::Signal,
    tcp::{Closer, Side, TcpStream},
};

const BACKLOG: usize = 128;

/// `net.tcp.listen(port, { address?, tls?, reusePort?, maxConnections? })`.
pub(crate) struct ListenConfig {
    address: std::net::IpAddr,
    tls: Option<TlsAcceptor>,
    reuse_port: bool,
    max_connections: Option<usize>,
}

impl Default for ListenConfig {
    fn default() -> Self {
        Self {
            address: std::net::IpAddr::from([127, 0, 0, 1]),
            tls: None,
            reuse_port: false,
            max_connections: None,
        }
    }
}

impl FromLua for ListenConfig {
    fn from_lua(value: LuaValue, _: &Lua) -> LuaResult<Self> {
        let mut config = Self::default();
        let table = match value {
            LuaValue::Nil => return Ok(config),
            LuaValue::Table(t) => t,
            other => {
                return Err(LuaError::runtime(format!(
                    "Invalid listen config - expected a table {{ address?, tls?, reusePort?, maxConnections? }}, got {}",
                    lune_utils::type_name(&other)
                )));
            }
        };
        let fields = Options::new(&table);
        if let Some(address) = fields.address("address")? {
            config.address = address;
        }
        config.tls = fields.server_tls("tls", &[])?.map(TlsAcceptor::from);
        config.reuse_port = fields.flag("reusePort")?.unwrap_or(false);
        config.max_connections = max_connections(&fields)?;
        Ok(config)
    }
}

/// `maxConnections`: a whole number of connections, 1 or more.
pub(super) fn max_connections(fields: &Options<'_>) -> LuaResult<Option<usize>> {
    Ok(fields
        .whole("maxConnections", 1, u64::from(u32::MAX))?
        .map(|n| n as usize))
}

/// A listening socket as Luau sees it: `ip` and `port` (or `path`), `accept`, `close`.
pub(crate) struct Listener {
    bound: Local,
    accepted: Receiver<Accepted>,
    stop: Rc<Signal>,
    closed: Rc<Signal>,
    /// The accept loop and its TLS handshakes, run only while a script waits
    /// in `accept` or `close`: an open listener nobody accepts from keeps no
    /// script alive (connections wait in the kernel's backlog meanwhile).
    tasks: Rc<TaskGroup>,
    /// The streams accepted so far, for `close({ drain })`.
    streams: Rc<RefCell<Vec<Closer>>>,
}

/// Binds `port`; connections are accepted while a thread waits in `accept`.
pub(crate) async fn listen(port: u16, config: ListenConfig) -> LuaResult<Listener> {
    let bind = Bind::Tcp {
        addr: SocketAddr::new(config.address, port),
        reuse_port: config.reuse_port,
    };
    start(&bind, config.tls, config.max_connections, "net.tcp.listen").await
}

/// Binds a Unix socket at `path`, accepting like [`listen`].
pub(crate) async fn listen_unix(path: std::path::PathBuf) -> LuaResult<Listener> {
    start(&Bind::Unix(path), None, None, "net.unix.listen").await
}

async fn start(
    bind: &Bind,
    tls: Option<TlsAcceptor>,
    max_connections: Option<usize>,
    what: &'static str,
) -> LuaResult<Listener> {
    let (listener, bound) = accept::bind(bind).await?;
    let (queue, accepted) = async_channel::bounded(BACKLOG);
    let stop = Rc::new(Signal::default());
    let closed = Rc::new(Signal::default());
    let (loop_stop, loop_closed) = (stop.clone(), closed.clone());
    let tasks = TaskGroup::new();
    // Weak: the group holds this loop, which spawns its TLS handshakes there.
    let group = Rc::downgrade(&tasks);
    tasks.spawn(async move {
        let spawn = move |task| {
            if let Some(group) = group.upgrade() {
                group.spawn(task);
            }
        };
        let on_accept = move |conn: Accepted| {
            let queue = queue.clone();
            async move {
                // Fails only once the listener was closed: the connection drops.
                let _ = queue.send(conn).await;
            }
        };
        accept::run(
            &spawn,
            listener,
            tls,
            max_connections,
            what,
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
        tasks,
        streams: Rc::default(),
    })
}

impl Listener {
    /// Stops accepting; connections not yet accepted are dropped.
    fn close(&self) {
        self.stop.fire();
        self.accepted.close();
    }

    /// `close({ drain })`: gives the accepted streams `drain` to be closed
    /// by the script, then closes the rest.
    async fn drain(streams: &RefCell<Vec<Closer>>, drain: Duration) {
        // A copy: a cancelled `close` leaves the list as it was.
        let open: Vec<Closer> = streams.borrow().clone();
        let all_closed = async {
            for stream in &open {
                stream.closed().await;
            }
        };
        future::or(all_closed, async {
            async_io::Timer::after(drain).await;
        })
        .await;
        for stream in open.iter().filter(|s| !s.is_closed()) {
            stream.close().await;
        }
    }
}

impl LuaUserData for Listener {
    fn add_fields<F: LuaUserDataFields<Self>>(fields: &mut F) {
        fields.add_field_method_get("ip", |_, this| match &this.bound {
            Local::Ip(addr) => Ok(Some(addr.ip().to_string())),
            Local::Unix(_) => Ok(None),
        });
        fields.add_field_method_get("port", |_, this| match &this.bound {
            Local::Ip(addr) => Ok(Some(addr.port())),
            Local::Unix(_) => Ok(None),
        });
        fields.add_field_method_get("path", |lua, this| match &this.bound {
            Local::Unix(path) => {
                use std::os::unix::ffi::OsStrExt;
                Ok(Some(lua.create_string(path.as_os_str().as_bytes())?))
            }
            Local::Ip(_) => Ok(None),
        });
    }

    fn add_methods<M: LuaUserDataMethods<Self>>(methods: &mut M) {
        methods.add_async_method("accept", |_, this, ()| {
            lune_utils::wake_on_drop(async move {
                let accepted = this.accepted.clone();
                let streams = this.streams.clone();
                let tasks = this.tasks.clone();
                drop(this);
                match tasks.drive(accepted.recv()).await {
                    Ok(conn) => {
                        // The stream holds its connection slot until closed.
                        let stream = TcpStream::new(conn.stream, conn.ends, Side::Accepted)
                            .holding(Box::new(conn.permit));
                        let mut streams = streams.borrow_mut();
                        streams.retain(|s| !s.is_closed());
                        streams.push(stream.closer());
                        Ok(Some(stream))
                    }
                    Err(_) => Ok(None),
                }
            })
        });
        // `close()`, or `close({ drain = seconds? })`, which also closes the
        // accepted streams (after `drain`, default 10 s, for the script to
        // finish with them) and returns once they are all closed.
        methods.add_async_method("close", |_, this, options: LuaMultiValue| {
            lune_utils::wake_on_drop(async move {
                let drain = super::stop_options(&options)?;
                this.close();
                // Once this returns, connecting to the port is refused.
                this.tasks.drive(this.closed.wait()).await;
                if let Some(drain) = drain {
                    let streams = this.streams.clone();
                    drop(this);
                    Listener::drain(&streams, drain).await;
                }
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
