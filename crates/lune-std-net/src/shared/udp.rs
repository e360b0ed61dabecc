//! `net.udp.bind` and the `UdpSocket` object Luau sees.
//!
//! Datagrams go out whole or not at all, up to [`MAX_DATAGRAM`] bytes. Any
//! number of Luau threads may wait in `recv` at once (each gets its own
//! datagram); `close` wakes them all, and they return nil.

use std::{
    cell::{Cell, RefCell},
    net::{IpAddr, Ipv4Addr, SocketAddr},
    rc::Rc,
};

use mlua::prelude::*;

use super::{body::bytes_from_lua, options, signal::Signal};
use crate::rt::connect;

/// The largest UDP payload over IPv4: 65535 minus the IP and UDP headers.
pub(crate) const MAX_DATAGRAM: usize = 65507;
/// Room for any datagram the kernel can hand over.
const RECV_BUFFER: usize = 65536;

/// `net.udp.bind(port, { address?, broadcast? })`.
pub(crate) struct UdpConfig {
    address: IpAddr,
    broadcast: bool,
}

impl FromLua for UdpConfig {
    fn from_lua(value: LuaValue, _: &Lua) -> LuaResult<Self> {
        let mut config = Self {
            address: IpAddr::from([127, 0, 0, 1]),
            broadcast: false,
        };
        let table = match value {
            LuaValue::Nil => return Ok(config),
            LuaValue::Table(t) => t,
            other => {
                return Err(LuaError::runtime(format!(
                    "Invalid UDP config - expected a table {{ address?, broadcast? }}, got {}",
                    lune_utils::type_name(&other)
                )));
            }
        };
        let fields = options::Options::new(&table);
        if let Some(address) = fields.address("address")? {
            config.address = address;
        }
        config.broadcast = fields.flag("broadcast")?.unwrap_or(false);
        Ok(config)
    }
}

struct Inner {
    /// The socket; `None` once closed.
    socket: RefCell<Option<async_net::UdpSocket>>,
    closed: Signal,
    local: SocketAddr,
    connected: Cell<Option<SocketAddr>>,
}

/// A UDP socket as Luau sees it: `ip`, `port`, `send`, `recv`, `connect`,
/// `joinMulticast`, `leaveMulticast`, `close`.
pub(crate) struct UdpSocket {
    inner: Rc<Inner>,
}

/// Binds a UDP socket to `config.address:port`.
pub(crate) async fn bind(port: u16, config: UdpConfig) -> LuaResult<UdpSocket> {
    let addr = SocketAddr::new(config.address, port);
    let fail = |e: std::io::Error| LuaError::runtime(format!("Failed to bind to {addr} - {e}"));
    let socket = async_net::UdpSocket::bind(addr).await.map_err(fail)?;
    if config.broadcast {
        socket.set_broadcast(true).map_err(fail)?;
    }
    let local = socket.local_addr().map_err(fail)?;
    Ok(UdpSocket {
        inner: Rc::new(Inner {
            socket: RefCell::new(Some(socket)),
            closed: Signal::default(),
            local,
            connected: Cell::new(None),
        }),
    })
}

impl UdpSocket {
    fn socket(&self, action: &str) -> LuaResult<async_net::UdpSocket> {
        self.inner
            .socket
            .borrow()
            .clone()
            .ok_or_else(|| LuaError::runtime(format!("UDP socket is closed - cannot {action}")))
    }

    /// The address of `host:port` to use from this socket: of the socket's
    /// own IP version where the name has one.
    async fn target(&self, host: &str, port: u16) -> LuaResult<SocketAddr> {
        let addrs = connect::resolve(host, port)
            .await
            .map_err(LuaError::external)?;
        let v6 = self.inner.local.is_ipv6();
        addrs
            .iter()
            .find(|a| a.is_ipv6() == v6)
            .or_else(|| addrs.first())
            .copied()
            .ok_or_else(|| LuaError::runtime(format!("No address found for host '{host}'")))
    }

    async fn send(&self, data: &[u8], to: Option<(String, u16)>) -> LuaResult<()> {
        if data.len() > MAX_DATAGRAM {
            return Err(LuaError::runtime(format!(
                "UDP datagram of {} bytes is larger than the limit of {MAX_DATAGRAM} bytes",
                data.len()
            )));
        }
        let socket = self.socket("send")?;
        let (sent, peer) = match to {
            Some((host, port)) => {
                let addr = self.target(&host, port).await?;
                (socket.send_to(data, addr).await, addr.to_string())
            }
            None => match self.inner.connected.get() {
                Some(addr) => (socket.send(data).await, addr.to_string()),
                None => {
                    return Err(LuaError::runtime(
                        "UDP send needs a host and a port - the socket is not connected",
                    ));
                }
            },
        };
        match sent {
            Ok(n) if n == data.len() => Ok(()),
            Ok(n) => Err(LuaError::runtime(format!(
                "UDP send to {peer} sent {n} of {} bytes",
                data.len()
            ))),
            Err(e) => Err(LuaError::runtime(format!("UDP send to {peer} failed: {e}"))),
        }
    }

    async fn recv(&self) -> LuaResult<Option<(Vec<u8>, SocketAddr)>> {
        if self.inner.closed.is_set() {
            return Ok(None);
        }
        let socket = self.socket("receive")?;
        let mut buf = vec![0u8; RECV_BUFFER];
        let received =
            futures_lite::future::or(async { Some(socket.recv_from(&mut buf).await) }, async {
                self.inner.closed.wait().await;
                None
            })
            .await;
        match received {
            None => Ok(None),
            Some(Ok((n, from))) => {
                buf.truncate(n);
                Ok(Some((buf, from)))
            }
            Some(Err(e)) => Err(LuaError::runtime(format!(
                "UDP receive on {} failed: {e}",
                self.inner.local
            ))),
        }
    }

    async fn connect(&self, host: &str, port: u16) -> LuaResult<()> {
        let socket = self.socket("connect")?;
        let addr = self.target(host, port).await?;
        socket
            .connect(addr)
            .await
            .map_err(|e| LuaError::runtime(format!("UDP connect to {addr} failed: {e}")))?;
        self.inner.connected.set(Some(addr));
        Ok(())
    }

    /// Joins (or leaves) `group` on `interface`: an IPv4 address for an IPv4
    /// group (default any), an interface index for an IPv6 one (default 0).
    fn multicast(&self, join: bool, group: &LuaValue, interface: &LuaValue) -> LuaResult<()> {
        let action = if join { "join" } else { "leave" };
        let text = match group {
            LuaValue::String(s) => s.to_string_lossy(),
            other => {
                return Err(LuaError::runtime(format!(
                    "Invalid 'group' - expected a multicast address string, got {}",
                    options::describe(other)
                )));
            }
        };
        let group: IpAddr = connect::bare(&text)
            .parse()
            .ok()
            .filter(IpAddr::is_multicast)
            .ok_or_else(|| {
                LuaError::runtime(format!(
                    "Invalid multicast group '{text}' - expected an address such as 239.255.0.1 or ff02::1"
                ))
            })?;
        let socket = self.socket(&format!("{action} a multicast group"))?;
        let result = match group {
            IpAddr::V4(group) => {
                let interface = match interface {
                    LuaValue::Nil => Ipv4Addr::UNSPECIFIED,
                    LuaValue::String(s) => s.to_string_lossy().parse().map_err(|_| {
                        LuaError::runtime(format!(
                            "Invalid 'interface' - expected the IPv4 address of an interface, got '{}'",
                            s.to_string_lossy()
                        ))
                    })?,
                    other => {
                        return Err(LuaError::runtime(format!(
                            "Invalid 'interface' - expected the IPv4 address of an interface, got {}",
                            options::describe(other)
                        )));
                    }
                };
                if join {
                    socket.join_multicast_v4(group, interface)
                } else {
                    socket.leave_multicast_v4(group, interface)
                }
            }
            IpAddr::V6(group) => {
                let index = options::whole(interface, "interface", 0, u64::from(u32::MAX))?
                    .unwrap_or(0) as u32;
                if join {
                    socket.join_multicast_v6(&group, index)
                } else {
                    socket.leave_multicast_v6(&group, index)
                }
            }
        };
        result.map_err(|e| {
            LuaError::runtime(format!("Failed to {action} multicast group {group}: {e}"))
        })
    }

    fn close(&self) {
        self.inner.closed.fire();
        self.inner.socket.borrow_mut().take();
    }
}

/// The `host, port` pair of `send`: both or neither.
fn destination(host: Option<LuaValue>, port: Option<LuaValue>) -> LuaResult<Option<(String, u16)>> {
    match (host, port) {
        (None | Some(LuaValue::Nil), None | Some(LuaValue::Nil)) => Ok(None),
        (Some(LuaValue::String(host)), Some(port)) => Ok(Some((
            host.to_str()?.to_string(),
            options::port(&port, "port")?,
        ))),
        (Some(LuaValue::String(_)), None) => Err(LuaError::runtime(
            "Invalid 'port' - expected a port number from 0 to 65535, got nil",
        )),
        (Some(other), _) => Err(LuaError::runtime(format!(
            "Invalid 'host' - expected a string, got {}",
            options::describe(&other)
        ))),
        (None, Some(_)) => Err(LuaError::runtime(
            "Invalid 'host' - expected a string, got nil",
        )),
    }
}

impl LuaUserData for UdpSocket {
    fn add_fields<F: LuaUserDataFields<Self>>(fields: &mut F) {
        fields.add_field_method_get("ip", |_, this| Ok(this.inner.local.ip().to_string()));
        fields.add_field_method_get("port", |_, this| Ok(this.inner.local.port()));
    }

    fn add_methods<M: LuaUserDataMethods<Self>>(methods: &mut M) {
        methods.add_async_method(
            "send",
            |_, this, (data, host, port): (LuaValue, Option<LuaValue>, Option<LuaValue>)| {
                lune_utils::wake_on_drop(async move {
                    let to = destination(host, port)?;
                    match &data {
                        LuaValue::String(s) => this.send(&s.as_bytes(), to).await,
                        other => this.send(&bytes_from_lua(other, "UDP data")?, to).await,
                    }
                })
            },
        );
        methods.add_async_method("recv", |lua, this, ()| {
            lune_utils::wake_on_drop(async move {
                let Some((data, from)) = this.recv().await? else {
                    return Ok(LuaValue::Nil);
                };
                let message = lua.create_table_with_capacity(0, 3)?;
                message.raw_set("data", lua.create_string(&data)?)?;
                message.raw_set("ip", from.ip().to_string())?;
                message.raw_set("port", from.port())?;
                Ok(LuaValue::Table(message))
            })
        });
        methods.add_async_method("connect", |_, this, (host, port): (LuaValue, LuaValue)| {
            lune_utils::wake_on_drop(async move {
                let Some((host, port)) = destination(Some(host), Some(port))? else {
                    return Err(LuaError::runtime(
                        "Invalid 'host' - expected a string, got nil",
                    ));
                };
                this.connect(&host, port).await
            })
        });
        methods.add_method(
            "joinMulticast",
            |_, this, (group, interface): (LuaValue, Option<LuaValue>)| {
                this.multicast(true, &group, &interface.unwrap_or(LuaValue::Nil))
            },
        );
        methods.add_method(
            "leaveMulticast",
            |_, this, (group, interface): (LuaValue, Option<LuaValue>)| {
                this.multicast(false, &group, &interface.unwrap_or(LuaValue::Nil))
            },
        );
        methods.add_method("close", |_, this, ()| {
            this.close();
            Ok(())
        });
        methods.add_meta_method(LuaMetaMethod::ToString, |_, this, ()| {
            Ok(
                match (this.inner.closed.is_set(), this.inner.connected.get()) {
                    (true, _) => format!("UdpSocket({}, closed)", this.inner.local),
                    (false, Some(peer)) => format!("UdpSocket({} -> {peer})", this.inner.local),
                    (false, None) => format!("UdpSocket({})", this.inner.local),
                },
            )
        });
    }
}
