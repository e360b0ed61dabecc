//! Keep-alive connections, reused per origin.
//!
//! HTTP/1.1 connections are lent out one request at a time and come back when
//! the response body has been read; an HTTP/2 connection is shared by every
//! request to its origin. Idle connections expire; closed ones are never
//! handed out.

use std::{
    cell::RefCell,
    rc::Rc,
    time::{Duration, Instant},
};

use event_listener::Event;
use http::HeaderValue;
use hyper::client::conn::{http1, http2};
use rustc_hash::FxHashMap;

use crate::{
    rt::{
        ClientExecutor, ConnTasks, HyperTimer, TlsAlert,
        connect::{self, ConnectError, Proxy, Target, Tls},
        tls::{Alpn, ClientTls},
    },
    shared::body::OutBody,
};

const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
const MAX_IDLE_PER_ORIGIN: usize = 64;
/// The longest a connection may take to be made (TCP, proxy, TLS, HTTP/2).
const CONNECT_TIMEOUT: Duration = connect::DEFAULT_CONNECT_TIMEOUT;
/// How often a request waiting for another's connect checks that the other
/// thread was not cancelled.
const LIVENESS_CHECK: Duration = Duration::from_millis(100);

pub(super) type Body = OutBody;

/// `fut`'s output, or `None` once `deadline` has passed.
async fn within<T>(deadline: Instant, fut: impl Future<Output = T>) -> Option<T> {
    futures_lite::future::or(async { Some(fut.await) }, async {
        async_io::Timer::at(deadline).await;
        None
    })
    .await
}

/// Where a connection goes: scheme, host, port and the proxy in between,
/// or the Unix socket that carries it (`options.unixSocket`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct Origin {
    pub(super) https: bool,
    pub(super) host: String,
    pub(super) port: u16,
    pub(super) proxy: Option<(String, u16)>,
    pub(super) unix: Option<std::path::PathBuf>,
    /// `options.tls`: connections made with other options are not shared.
    pub(super) tls: ClientTls,
}

/// A connection ready to carry one request.
pub(super) enum Sender {
    H1(http1::SendRequest<Body>),
    H2(http2::SendRequest<Body>),
}

/// A connection taken from the pool, its tasks (which run while a request
/// waits on it), and whether it was reused.
pub(super) struct Checkout {
    pub(super) sender: Sender,
    pub(super) tasks: Rc<ConnTasks>,
    pub(super) reused: bool,
    /// What a new TLS connection's server reported after the handshake.
    pub(super) alert: Option<TlsAlert>,
}

/// Whether the Luau thread that asked for something is still waiting for it.
/// A thread cancelled with `task.cancel` is never resumed again, but its
/// pending future is only dropped when the garbage collector gets to it, so
/// state it holds must be recognisable as abandoned before then.
pub(super) type Liveness = Rc<dyn Fn() -> bool>;

/// An https connection being made, which other requests to the same origin
/// wait for: it may turn out to be HTTP/2 and carry them all.
struct Connecting {
    id: u64,
    done: Rc<Event>,
    alive: Liveness,
}

/// An HTTP/1.1 connection lent out for one exchange. [`Lease::release`]
/// gives it back once the response was read to the end; dropping it closes
/// the connection (a response not read to its end leaves it unusable).
pub(super) struct Lease {
    pool: Pool,
    origin: Origin,
    sender: http1::SendRequest<Body>,
    tasks: Rc<ConnTasks>,
}

impl Lease {
    pub(super) fn release(self) {
        self.pool.checkin(self.origin, self.sender, self.tasks);
    }
}

/// An idle HTTP/1.1 connection and since when it is idle.
type Idle = (http1::SendRequest<Body>, Rc<ConnTasks>, Instant);

#[derive(Default)]
struct State {
    // Looked up several times per request: a fast hash (the keys are the
    // script's own origins, not a peer's input).
    idle: FxHashMap<Origin, Vec<Idle>>,
    h2: FxHashMap<Origin, (http2::SendRequest<Body>, Rc<ConnTasks>)>,
    connecting: FxHashMap<Origin, Connecting>,
    next_id: u64,
}

/// The client's connection pool, owned by the Luau thread. Clones share it.
#[derive(Clone)]
pub(super) struct Pool {
    state: Rc<RefCell<State>>,
    idle_timeout: Duration,
}

/// Removes a `connecting` entry and wakes its waiters when the connect ends
/// in any way: done, failed, timed out or dropped.
struct ConnectingGuard {
    state: Rc<RefCell<State>>,
    origin: Origin,
    id: u64,
}

impl Drop for ConnectingGuard {
    fn drop(&mut self) {
        // Never a panic in a Drop (this one also runs at teardown): a state
        // in use elsewhere keeps its entry, which its own owner clears.
        let Ok(mut state) = self.state.try_borrow_mut() else {
            return;
        };
        if state
            .connecting
            .get(&self.origin)
            .is_some_and(|c| c.id == self.id)
            && let Some(entry) = state.connecting.remove(&self.origin)
        {
            entry.done.notify(usize::MAX);
        }
    }
}

impl Pool {
    pub(super) fn new() -> Self {
        Self::with_idle_timeout(IDLE_TIMEOUT)
    }

    /// A pool whose idle connections expire after `idle_timeout`.
    pub(super) fn with_idle_timeout(idle_timeout: Duration) -> Self {
        Self {
            state: Rc::default(),
            idle_timeout,
        }
    }

    /// A connection to `origin`: an idle or shared one if there is one,
    /// otherwise a new one. `alive` tells whether the asking thread still
    /// waits; an abandoned connect never holds up other requests.
    pub(super) async fn checkout(
        &self,
        origin: &Origin,
        alive: &Liveness,
        user_agent: Option<&HeaderValue>,
    ) -> Result<Checkout, ConnectError> {
        loop {
            if let Some((sender, tasks)) = self.take_idle(origin).await {
                return Ok(Checkout {
                    sender,
                    tasks,
                    reused: true,
                    alert: None,
                });
            }
            if !origin.https {
                break;
            }
            let pending = {
                let mut state = self.state.borrow_mut();
                match state.connecting.get(origin) {
                    Some(c) if (c.alive)() => Some(c.done.clone()),
                    Some(_) => {
                        // Its thread was cancelled: nobody will finish it.
                        if let Some(c) = state.connecting.remove(origin) {
                            c.done.notify(usize::MAX);
                        }
                        None
                    }
                    None => None,
                }
            };
            let Some(done) = pending else { break };
            let listener = done.listen();
            // Woken when the connect ends; checked again now and then in
            // case the connecting thread was cancelled meanwhile.
            futures_lite::future::or(listener, async {
                async_io::Timer::after(LIVENESS_CHECK).await;
            })
            .await;
        }
        let guard = origin.https.then(|| {
            let mut state = self.state.borrow_mut();
            state.next_id += 1;
            let id = state.next_id;
            state.connecting.insert(
                origin.clone(),
                Connecting {
                    id,
                    done: Rc::new(Event::new()),
                    alive: alive.clone(),
                },
            );
            ConnectingGuard {
                state: self.state.clone(),
                origin: origin.clone(),
                id,
            }
        });
        // Boxed: a connect (TCP, proxy, TLS) is a large future that most
        // requests, served by a pooled connection, never start.
        let opened = Box::pin(self.open(origin, user_agent)).await;
        drop(guard);
        opened.map(|(sender, tasks, alert)| Checkout {
            sender,
            tasks,
            reused: false,
            alert,
        })
    }

    /// Lends an HTTP/1.1 connection out until its response has been read.
    pub(super) fn lease(
        &self,
        origin: Origin,
        sender: http1::SendRequest<Body>,
        tasks: Rc<ConnTasks>,
    ) -> Lease {
        Lease {
            pool: self.clone(),
            origin,
            sender,
            tasks,
        }
    }

    /// Gives back an HTTP/1.1 connection whose response was fully read.
    pub(super) fn checkin(
        &self,
        origin: Origin,
        sender: http1::SendRequest<Body>,
        tasks: Rc<ConnTasks>,
    ) {
        if sender.is_closed() {
            return;
        }
        let mut state = self.state.borrow_mut();
        let idle = state.idle.entry(origin).or_default();
        if idle.len() < MAX_IDLE_PER_ORIGIN {
            idle.push((sender, tasks, Instant::now()));
        }
    }

    async fn take_idle(&self, origin: &Origin) -> Option<(Sender, Rc<ConnTasks>)> {
        let shared = self.state.borrow().h2.get(origin).cloned();
        if let Some((mut sender, tasks)) = shared {
            if !sender.is_closed() && tasks.drive(sender.ready()).await.is_ok() {
                return Some((Sender::H2(sender), tasks));
            }
            self.state.borrow_mut().h2.remove(origin);
        }
        loop {
            let candidate = {
                let mut state = self.state.borrow_mut();
                let idle = state.idle.get_mut(origin)?;
                let now = Instant::now();
                let timeout = self.idle_timeout;
                idle.retain(|(s, _, since)| !s.is_closed() && now - *since < timeout);
                idle.pop()
            };
            let (mut sender, tasks, _) = candidate?;
            // The connection finishes its last exchange (and notices a
            // server that closed it) as its tasks run here.
            if tasks.drive(sender.ready()).await.is_ok() {
                return Some((Sender::H1(sender), tasks));
            }
        }
    }

    async fn open(
        &self,
        origin: &Origin,
        user_agent: Option<&HeaderValue>,
    ) -> Result<(Sender, Rc<ConnTasks>, Option<TlsAlert>), ConnectError> {
        let deadline = Instant::now() + CONNECT_TIMEOUT;
        // The client refuses https over a Unix socket before it gets here.
        let target = Target {
            host: &origin.host,
            port: origin.port,
            unix: origin.unix.as_deref(),
            tls: origin.https.then_some(Tls {
                alpn: Alpn::Http,
                options: &origin.tls,
            }),
            proxy: origin.proxy.as_ref().map(|addr| Proxy {
                addr,
                tunnel: false,
            }),
            user_agent,
        };
        let stream = connect::open(&target, CONNECT_TIMEOUT).await?;
        let alert = stream.tls_alert();
        // The HTTP handshake counts toward the same bound.
        let timed_out = || ConnectError::Timeout {
            addr: format!("{}:{}", connect::bare(&origin.host), origin.port),
            after: CONNECT_TIMEOUT,
        };
        let handshake_failed = ConnectError::Handshake;
        let tasks = ConnTasks::new();
        if stream.is_h2() {
            let handshake = http2::Builder::new(ClientExecutor::new(&tasks))
                .timer(HyperTimer::new())
                .handshake(stream);
            let (sender, conn) = within(deadline, tasks.drive(handshake))
                .await
                .ok_or_else(timed_out)?
                .map_err(handshake_failed)?;
            tasks.spawn(async move {
                // A failed connection fails the requests waiting on it.
                let _ = conn.await;
            });
            self.state
                .borrow_mut()
                .h2
                .insert(origin.clone(), (sender.clone(), tasks.clone()));
            Ok((Sender::H2(sender), tasks, alert))
        } else {
            let (sender, conn) = within(deadline, http1::Builder::new().handshake(stream))
                .await
                .ok_or_else(timed_out)?
                .map_err(handshake_failed)?;
            tasks.spawn(async move {
                // A failed connection fails the requests waiting on it.
                let _ = conn.await;
            });
            Ok((Sender::H1(sender), tasks, alert))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http_body_util::BodyExt;

    use super::{ClientTls, Origin, Pool, Sender};

    /// GET `/conn` from the fixture server; returns the id of the connection
    /// that served it, and gives the connection back to the pool.
    async fn connection_id(pool: &Pool, origin: &Origin) -> String {
        let alive: super::Liveness = std::rc::Rc::new(|| true);
        let checkout = pool.checkout(origin, &alive, None).await.expect("connects");
        let tasks = checkout.tasks;
        let Sender::H1(mut sender) = checkout.sender else {
            panic!("plain http is HTTP/1.1");
        };
        let request = http::Request::get("/conn")
            .header("host", "127.0.0.1")
            .body(crate::shared::body::OutBody::empty())
            .expect("a valid request");
        let response = tasks
            .drive(sender.send_request(request))
            .await
            .expect("a response");
        let body = tasks
            .drive(response.into_body().collect())
            .await
            .expect("a body")
            .to_bytes();
        pool.checkin(origin.clone(), sender, tasks);
        String::from_utf8_lossy(&body).into_owned()
    }

    #[test]
    fn idle_connections_are_reused_then_expire() {
        let fixtures = lune_test_fixtures::start().expect("fixtures start");
        let http = fixtures
            .env()
            .into_iter()
            .find(|(k, _)| k == "LUNE_TEST_HTTP")
            .map(|(_, v)| v)
            .expect("the http fixture");
        let port: u16 = http
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("a port");
        let origin = Origin {
            https: false,
            host: "127.0.0.1".into(),
            port,
            proxy: None,
            unix: None,
            tls: ClientTls::default(),
        };
        async_io::block_on(async {
            let pool = Pool::with_idle_timeout(Duration::from_millis(100));
            let first = connection_id(&pool, &origin).await;
            let second = connection_id(&pool, &origin).await;
            assert_eq!(first, second, "a fresh idle connection is reused");
            async_io::Timer::after(Duration::from_millis(250)).await;
            let third = connection_id(&pool, &origin).await;
            assert_ne!(second, third, "an expired idle connection is not reused");
        });
    }
}
