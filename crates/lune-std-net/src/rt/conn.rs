//! [`Conn`]: a plain socket (TCP or Unix) that makes only the system calls
//! the work needs.
//!
//! - On the thread `lune_utils::reactor::block_on` drives (the `lune`
//!   binary's Luau thread), the socket is registered once, edge-triggered,
//!   with the runtime's own reactor: no `epoll_ctl` per wait.
//! - Elsewhere (our crate inside Lune, under async-io's `block_on`) it is on
//!   async-io's reactor, and remembers when the kernel had no more data for
//!   it: a read that returned less than it asked for emptied the receive
//!   queue, so the next read waits for readiness first instead of making a
//!   `recv` that is known to fail with `EAGAIN`.
//! - Either way, a read or write that was cut short means "not ready" until
//!   the next readiness event; reads go straight into hyper's uninitialised
//!   buffer (no zeroing); writes of several buffers are one `writev`.

use std::{
    io::{self, IoSlice, Write},
    mem::MaybeUninit,
    os::fd::{AsFd, AsRawFd},
    pin::Pin,
    task::{Context, Poll, ready},
};

use async_io::Async;
use futures_lite::{AsyncRead, AsyncWrite};
use lune_utils::reactor::Registration;

/// A TCP connection.
pub(crate) type TcpConn = Conn<std::net::TcpStream>;
/// A Unix domain socket connection.
pub(crate) type UnixConn = Conn<std::os::unix::net::UnixStream>;

/// A non-blocking socket and the reactor that watches it; see the module
/// docs.
pub(crate) enum Conn<T: AsFd> {
    /// The runtime's reactor (the registration is dropped, and so leaves
    /// the epoll set, before the socket closes).
    Own(Registration, T),
    /// async-io's reactor.
    AsyncIo {
        io: Async<T>,
        /// The receive queue was empty after the last read.
        read_drained: bool,
        /// The send buffer was full after the last write.
        write_full: bool,
    },
}

impl<T: AsFd> Conn<T> {
    /// Makes `io` non-blocking and registers it with the runtime's reactor
    /// where this thread has one, else with async-io's.
    pub(crate) fn new(io: T) -> io::Result<Self> {
        let on: libc::c_int = 1;
        // SAFETY: FIONBIO reads one int; the fd is open (owned by `io`).
        if unsafe { libc::ioctl(io.as_fd().as_raw_fd(), libc::FIONBIO, &raw const on) } < 0 {
            return Err(io::Error::last_os_error());
        }
        if let Some(registration) = Registration::new(io.as_fd()) {
            return Ok(Self::Own(registration?, io));
        }
        Ok(Self::AsyncIo {
            io: Async::new(io)?,
            read_drained: false,
            write_full: false,
        })
    }

    /// The socket, for addresses and socket options.
    pub(crate) fn get_ref(&self) -> &T {
        match self {
            Self::Own(_, io) => io,
            Self::AsyncIo { io, .. } => io.get_ref(),
        }
    }

    /// Runs `op` once the socket is (or may be) ready in direction `write`.
    /// `op` returns its result and whether it drained the direction (a
    /// short read or write); `WouldBlock` drains it too.
    fn poll_op<R>(
        &mut self,
        cx: &mut Context<'_>,
        write: bool,
        mut op: impl FnMut(&T) -> io::Result<(R, bool)>,
    ) -> Poll<io::Result<R>> {
        match self {
            Self::Own(registration, io) => loop {
                let tick = ready!(registration.poll_ready(cx, write));
                match op(io) {
                    Ok((value, short)) => {
                        if short {
                            registration.clear_ready(write, tick);
                        }
                        return Poll::Ready(Ok(value));
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        registration.clear_ready(write, tick);
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Poll::Ready(Err(e)),
                }
            },
            Self::AsyncIo {
                io,
                read_drained,
                write_full,
            } => {
                let drained = if write { write_full } else { read_drained };
                loop {
                    if *drained {
                        if write {
                            ready!(io.poll_writable(cx))?;
                        } else {
                            ready!(io.poll_readable(cx))?;
                        }
                        *drained = false;
                    }
                    match op(io.get_ref()) {
                        Ok((value, short)) => {
                            *drained = short;
                            return Poll::Ready(Ok(value));
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => *drained = true,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Poll::Ready(Err(e)),
                    }
                }
            }
        }
    }

    /// Reads into `buf` without initialising it first.
    pub(crate) fn poll_read_uninit(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut [MaybeUninit<u8>],
    ) -> Poll<io::Result<usize>> {
        let len = buf.len();
        self.poll_op(cx, false, |io| {
            // SAFETY: `recv` writes at most `len` bytes into `buf`, which is
            // valid for that many; it never reads them.
            let n = unsafe { libc::recv(io.as_fd().as_raw_fd(), buf.as_mut_ptr().cast(), len, 0) };
            let n = usize::try_from(n).map_err(|_| io::Error::last_os_error())?;
            // A read of 0 is the end of the stream: not "drained", the
            // next read must see it again.
            Ok((n, n > 0 && n < len))
        })
    }
}

impl<T: AsFd> Conn<T>
where
    for<'a> &'a T: Write,
{
    fn poll_write_bufs(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let len: usize = bufs.iter().map(|b| b.len()).sum();
        self.poll_op(cx, true, |mut io| {
            let n = io.write_vectored(bufs)?;
            Ok((n, n < len))
        })
    }
}

impl<T: AsFd + Unpin> AsyncRead for Conn<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        // SAFETY: same layout; `recv` only ever writes initialised bytes
        // into it, so `buf` stays initialised.
        let buf = unsafe { &mut *(std::ptr::from_mut(buf) as *mut [MaybeUninit<u8>]) };
        self.get_mut().poll_read_uninit(cx, buf)
    }
}

impl<T: AsFd + Unpin> AsyncWrite for Conn<T>
where
    for<'a> &'a T: Write,
{
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_write_bufs(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_write_bufs(cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Shuts the write side down: the peer sees the end of the stream.
        let fd = self.get_ref().as_fd().as_raw_fd();
        // SAFETY: `fd` is this socket's, open for as long as `self` lives.
        let done = unsafe { libc::shutdown(fd, libc::SHUT_WR) };
        Poll::Ready(if done == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        })
    }
}
