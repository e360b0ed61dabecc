//! The Linux reactor: one epoll instance per thread that runs
//! [`block_on`], sockets registered once with `EPOLLET`, readiness kept per
//! socket with a tick so that a `WouldBlock` seen after a newer event never
//! clears that event. See the parent module for why.

use crate::lock;

use std::{
    cell::RefCell,
    future::Future,
    io,
    os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd},
    pin::pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll, Wake, Waker},
};

/// The key of the wake-up eventfd in the epoll set.
const WAKE_KEY: u64 = u64::MAX;
/// Polls in a row (the future keeps waking itself) after which ready
/// sockets are collected anyway, so that busy Luau threads never starve I/O.
const BUSY_POLLS_PER_IO_CHECK: u32 = 8;
/// Events taken per `epoll_wait`.
const EVENTS: usize = 256;

/// Readiness of one socket in one direction (0: read, 1: write).
#[derive(Default)]
struct Slot {
    state: Mutex<[Direction; 2]>,
}

struct Direction {
    ready: bool,
    /// The peer closed this direction (or the socket failed): it stays
    /// ready, since no further edge will come for what is left to see (a
    /// read that took the last data still has the end of stream to read).
    closed: bool,
    /// Counts the events; a clear only applies to the tick it saw.
    tick: u64,
    waker: Option<Waker>,
}

impl Default for Direction {
    fn default() -> Self {
        // A new socket may already be readable or writable: try it first.
        Self {
            ready: true,
            closed: false,
            tick: 0,
            waker: None,
        }
    }
}

/// The sockets of one reactor, by key (index and generation).
#[derive(Default)]
struct Slab {
    entries: Vec<(u32, Option<Arc<Slot>>)>,
    free: Vec<usize>,
}

impl Slab {
    fn insert(&mut self, slot: Arc<Slot>) -> u64 {
        let index = self.free.pop().unwrap_or_else(|| {
            self.entries.push((0, None));
            self.entries.len() - 1
        });
        let entry = &mut self.entries[index];
        entry.0 = entry.0.wrapping_add(1);
        entry.1 = Some(slot);
        (u64::from(entry.0) << 32) | index as u64
    }

    fn get(&self, key: u64) -> Option<&Arc<Slot>> {
        let (generation, index) = ((key >> 32) as u32, (key & 0xffff_ffff) as usize);
        match self.entries.get(index) {
            Some((g, Some(slot))) if *g == generation => Some(slot),
            _ => None,
        }
    }

    fn remove(&mut self, key: u64) {
        let index = (key & 0xffff_ffff) as usize;
        if self.get(key).is_some() {
            self.entries[index].1 = None;
            self.free.push(index);
        }
    }
}

/// One thread's reactor.
struct Reactor {
    epoll: OwnedFd,
    /// Written by wakers on other threads while the driving thread sleeps.
    wake: OwnedFd,
    slots: Mutex<Slab>,
}

thread_local! {
    /// The reactor this thread's [`block_on`] drives, while it runs.
    static CURRENT: RefCell<Option<Arc<Reactor>>> = const { RefCell::new(None) };
}

fn check(result: libc::c_int) -> io::Result<libc::c_int> {
    if result < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(result)
    }
}

impl Reactor {
    fn new() -> io::Result<Self> {
        // SAFETY: plain system calls; each fd is owned as soon as it exists.
        unsafe {
            let epoll = OwnedFd::from_raw_fd(check(libc::epoll_create1(libc::EPOLL_CLOEXEC))?);
            let wake = OwnedFd::from_raw_fd(check(libc::eventfd(
                0,
                libc::EFD_CLOEXEC | libc::EFD_NONBLOCK,
            ))?);
            let mut event = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: WAKE_KEY,
            };
            check(libc::epoll_ctl(
                epoll.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                wake.as_raw_fd(),
                &raw mut event,
            ))?;
            Ok(Self {
                epoll,
                wake,
                slots: Mutex::new(Slab::default()),
            })
        }
    }

    /// Waits up to `timeout` ms (-1: until something happens) and marks
    /// the sockets that became ready, waking whoever waits on them. A wait
    /// that may block is done with `sleeping` set, which is cleared as soon
    /// as the wait ends: the wakes that follow come from this thread and
    /// need no eventfd write.
    fn react(&self, events: &mut [libc::epoll_event], timeout: libc::c_int, sleeping: &AtomicBool) {
        // SAFETY: `events` is valid for `events.len()` entries.
        let n = unsafe {
            libc::epoll_wait(
                self.epoll.as_raw_fd(),
                events.as_mut_ptr(),
                events.len() as libc::c_int,
                timeout,
            )
        };
        sleeping.store(false, Ordering::SeqCst);
        // EINTR: a signal came; the caller polls and comes back.
        let Ok(n) = usize::try_from(n) else {
            return;
        };
        let mut wakers = Vec::new();
        {
            let slots = lock(&self.slots);
            for event in &events[..n] {
                let (flags, key) = (event.events, event.u64);
                if key == WAKE_KEY {
                    let mut count = 0u64;
                    // SAFETY: reads 8 bytes into `count`.
                    unsafe {
                        libc::read(self.wake.as_raw_fd(), (&raw mut count).cast(), 8);
                    }
                    continue;
                }
                let Some(slot) = slots.get(key) else {
                    continue;
                };
                let has = |bits: libc::c_int| flags & bits as u32 != 0;
                let failed = has(libc::EPOLLHUP | libc::EPOLLERR);
                let read_closed = failed || has(libc::EPOLLRDHUP);
                let readable = read_closed || has(libc::EPOLLIN | libc::EPOLLPRI);
                let writable = failed || has(libc::EPOLLOUT);
                let mut state = lock(&slot.state);
                for (dir, hit, closed) in [(0, readable, read_closed), (1, writable, failed)] {
                    if hit {
                        let d = &mut state[dir];
                        d.ready = true;
                        d.closed |= closed;
                        d.tick = d.tick.wrapping_add(1);
                        wakers.extend(d.waker.take());
                    }
                }
            }
        }
        for waker in wakers {
            waker.wake();
        }
    }
}

/// A socket registered with the reactor of the thread that made it.
pub struct Registration {
    reactor: Arc<Reactor>,
    slot: Arc<Slot>,
    key: u64,
    fd: RawFd,
}

impl Registration {
    /// Registers `fd` (a non-blocking socket, which must outlive the
    /// registration) with this thread's reactor; `None` when [`block_on`]
    /// does not drive this thread.
    #[must_use]
    pub fn new(fd: BorrowedFd<'_>) -> Option<io::Result<Self>> {
        let reactor = CURRENT.with(|current| current.borrow().clone())?;
        let slot = Arc::new(Slot::default());
        let key = lock(&reactor.slots).insert(slot.clone());
        let mut event = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32,
            u64: key,
        };
        // SAFETY: `fd` is open (borrowed); `event` is valid.
        let added = check(unsafe {
            libc::epoll_ctl(
                reactor.epoll.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                fd.as_raw_fd(),
                &raw mut event,
            )
        });
        if let Err(e) = added {
            lock(&reactor.slots).remove(key);
            return Some(Err(e));
        }
        Some(Ok(Self {
            reactor,
            slot,
            key,
            fd: fd.as_raw_fd(),
        }))
    }

    /// Ready (with the tick to pass to [`Registration::clear_ready`]) when
    /// the socket may be read (`write` false) or written; otherwise the
    /// task is woken when it may.
    pub fn poll_ready(&self, cx: &mut Context<'_>, write: bool) -> Poll<u64> {
        let mut state = lock(&self.slot.state);
        let dir = &mut state[usize::from(write)];
        if dir.ready {
            return Poll::Ready(dir.tick);
        }
        if dir.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            return Poll::Pending;
        }
        // Another task waited here before: it is woken to look again (as
        // async-io does), never left waiting for an event it will not get.
        let replaced = dir.waker.replace(cx.waker().clone());
        drop(state);
        if let Some(waker) = replaced {
            waker.wake();
        }
        Poll::Pending
    }

    /// The socket said `WouldBlock` (or took less than offered) at `tick`:
    /// it is not ready until its next event.
    pub fn clear_ready(&self, write: bool, tick: u64) {
        let mut state = lock(&self.slot.state);
        let dir = &mut state[usize::from(write)];
        if dir.tick == tick && !dir.closed {
            dir.ready = false;
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // SAFETY: the socket is still open (it outlives its registration);
        // a failure only means it is already out of the set.
        unsafe {
            libc::epoll_ctl(
                self.reactor.epoll.as_raw_fd(),
                libc::EPOLL_CTL_DEL,
                self.fd,
                std::ptr::null_mut(),
            );
        }
        lock(&self.reactor.slots).remove(self.key);
    }
}

/// Wakes the thread in [`block_on`].
struct Unparker {
    notified: AtomicBool,
    /// True while the thread sleeps in `epoll_wait`.
    sleeping: AtomicBool,
    reactor: Arc<Reactor>,
}

impl Wake for Unparker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.notified.swap(true, Ordering::SeqCst) && self.sleeping.load(Ordering::SeqCst) {
            let one = 1u64;
            // SAFETY: writes 8 bytes from `one` to the eventfd.
            unsafe {
                libc::write(self.reactor.wake.as_raw_fd(), (&raw const one).cast(), 8);
            }
        }
    }
}

/// Clears [`CURRENT`] when `block_on` returns or unwinds.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        CURRENT.with(|current| current.borrow_mut().take());
    }
}

/// Runs `fut` to completion on this thread, driving this thread's reactor
/// while it waits. A nested call, or a system that refuses an epoll
/// instance, runs async-io's `block_on` instead.
pub(super) fn drive<T>(fut: impl Future<Output = T>) -> T {
    if CURRENT.with(|current| current.borrow().is_some()) {
        return async_io::block_on(fut);
    }
    let Ok(reactor) = Reactor::new().map(Arc::new) else {
        return async_io::block_on(fut);
    };
    CURRENT.with(|current| *current.borrow_mut() = Some(reactor.clone()));
    let _installed = Installed;
    let unparker = Arc::new(Unparker {
        notified: AtomicBool::new(true),
        sleeping: AtomicBool::new(false),
        reactor: reactor.clone(),
    });
    let waker = Waker::from(unparker.clone());
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(fut);
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; EVENTS];
    let mut busy_polls = 0;
    loop {
        if unparker.notified.swap(false, Ordering::SeqCst) {
            if let Poll::Ready(value) = fut.as_mut().poll(&mut cx) {
                return value;
            }
            busy_polls += 1;
            if busy_polls >= BUSY_POLLS_PER_IO_CHECK {
                busy_polls = 0;
                reactor.react(&mut events, 0, &unparker.sleeping);
            }
            continue;
        }
        busy_polls = 0;
        unparker.sleeping.store(true, Ordering::SeqCst);
        if unparker.notified.load(Ordering::SeqCst) {
            unparker.sleeping.store(false, Ordering::SeqCst);
        } else {
            reactor.react(&mut events, -1, &unparker.sleeping);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{
        io::{Read, Write},
        os::fd::AsFd,
        task::Poll,
    };

    use super::Registration;
    use crate::reactor::block_on;

    #[test]
    fn readiness_comes_from_the_reactor_and_wakes_across_threads() {
        let (mut a, b) = std::os::unix::net::UnixStream::pair().expect("a socket pair");
        b.set_nonblocking(true).expect("non-blocking");
        assert!(
            Registration::new(b.as_fd()).is_none(),
            "no reactor outside block_on"
        );
        let got = block_on(async {
            let reg = Registration::new(b.as_fd())
                .expect("a reactor inside block_on")
                .expect("registered");
            // Drain: nothing to read yet.
            let tick = std::future::poll_fn(|cx| reg.poll_ready(cx, false)).await;
            let mut buf = [0u8; 8];
            assert!((&b).read(&mut buf).is_err(), "nothing to read yet");
            reg.clear_ready(false, tick);
            // Another thread writes: whenever it does, the edge is only
            // taken in by the reactor once this task waits, and wakes it.
            let writer = std::thread::spawn(move || {
                a.write_all(b"hi").expect("write");
                a
            });
            let mut polled_pending = false;
            std::future::poll_fn(|cx| match reg.poll_ready(cx, false) {
                Poll::Ready(_) => Poll::Ready(()),
                Poll::Pending => {
                    polled_pending = true;
                    Poll::Pending
                }
            })
            .await;
            assert!(polled_pending, "it waited for the edge");
            let n = (&b).read(&mut buf).expect("readable now");
            drop(writer.join());
            buf[..n].to_vec()
        });
        assert_eq!(got, b"hi");
    }

    #[test]
    fn nested_block_on_falls_back_to_async_io() {
        let value = block_on(async { block_on(async { 7 }) });
        assert_eq!(value, 7);
    }
}
