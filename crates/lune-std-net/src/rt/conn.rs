//! [`Conn`]: a plain socket (TCP or Unix) on async-io's reactor that
//! remembers what the kernel last told it, so that the I/O path makes only
//! the system calls the work needs.
//!
//! - A read that returned less than it asked for emptied the receive queue:
//!   the next read waits for readiness first instead of making a `recv`
//!   that is known to fail with `EAGAIN` (one syscall per request saved on
//!   a keep-alive connection). A write that was cut short likewise waits.
//! - Reads go straight into hyper's uninitialised buffer (no zeroing).
//! - Writes of several buffers are one `writev`.
//!
//! Readiness is async-io's own (`Async::poll_readable`): waiting registers
//! interest, and a readiness event that arrives in between is never lost.

use std::{
    io::{self, IoSlice, Read, Write},
    mem::MaybeUninit,
    os::fd::{AsFd, AsRawFd},
    pin::Pin,
    task::{Context, Poll, ready},
};

use async_io::Async;
use futures_lite::{AsyncRead, AsyncWrite};

/// A TCP connection.
pub(crate) type TcpConn = Conn<std::net::TcpStream>;
/// A Unix domain socket connection.
pub(crate) type UnixConn = Conn<std::os::unix::net::UnixStream>;

/// A non-blocking socket registered with the reactor; see the module docs.
pub(crate) struct Conn<T: AsFd> {
    io: Async<T>,
    /// The receive queue was empty after the last read.
    read_drained: bool,
    /// The send buffer was full after the last write.
    write_full: bool,
}

impl<T: AsFd> From<Async<T>> for Conn<T> {
    fn from(io: Async<T>) -> Self {
        Self {
            io,
            read_drained: false,
            write_full: false,
        }
    }
}

impl<T: AsFd> Conn<T> {
    /// The socket, for addresses and socket options.
    pub(crate) fn get_ref(&self) -> &T {
        self.io.get_ref()
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
        loop {
            let drained = if write {
                self.write_full
            } else {
                self.read_drained
            };
            if drained {
                if write {
                    ready!(self.io.poll_writable(cx))?;
                    self.write_full = false;
                } else {
                    ready!(self.io.poll_readable(cx))?;
                    self.read_drained = false;
                }
            }
            let (result, now_drained) = match op(self.io.get_ref()) {
                Ok((value, short)) => (Ok(value), short),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if write {
                        self.write_full = true;
                    } else {
                        self.read_drained = true;
                    }
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => (Err(e), false),
            };
            if write {
                self.write_full = now_drained;
            } else {
                self.read_drained = now_drained;
            }
            return Poll::Ready(result);
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
    for<'a> &'a T: Read + Write,
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

impl<T: AsFd + Unpin> AsyncRead for Conn<T>
where
    for<'a> &'a T: Read + Write,
{
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let len = buf.len();
        self.get_mut().poll_op(cx, false, |mut io| {
            let n = io.read(buf)?;
            Ok((n, n > 0 && n < len))
        })
    }
}

impl<T: AsFd + Unpin> AsyncWrite for Conn<T>
where
    for<'a> &'a T: Read + Write,
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
        let fd = self.io.get_ref().as_fd().as_raw_fd();
        // SAFETY: `fd` is this socket's, open for as long as `self` lives.
        let done = unsafe { libc::shutdown(fd, libc::SHUT_WR) };
        Poll::Ready(if done == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        })
    }
}
