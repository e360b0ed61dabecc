//! One stream type for every connection, hiding whether TLS is in use and
//! whether the socket is TCP or a Unix domain socket. It is hyper's I/O
//! object as it is (reads into hyper's buffer without zeroing it, vectored
//! writes on plain sockets) and a futures-io stream for everything else.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll, ready},
};

use futures_lite::{AsyncRead, AsyncWrite};

use crate::rt::{TcpConn, UnixConn};

/// A TCP connection, plain or wrapped in TLS (as a client or as a server),
/// or a plain Unix domain socket connection.
pub(crate) enum Stream {
    Plain(TcpConn),
    ClientTls(Box<futures_rustls::client::TlsStream<TcpConn>>),
    ServerTls(Box<futures_rustls::server::TlsStream<TcpConn>>),
    Unix(UnixConn),
}

impl Stream {
    /// The TCP socket underneath, for socket options; `None` for Unix sockets.
    pub(crate) fn tcp(&self) -> Option<&std::net::TcpStream> {
        match self {
            Self::Plain(s) => Some(s.get_ref()),
            Self::ClientTls(s) => Some(s.get_ref().0.get_ref()),
            Self::ServerTls(s) => Some(s.get_ref().0.get_ref()),
            Self::Unix(_) => None,
        }
    }

    /// The protocol chosen by ALPN, if any.
    pub(crate) fn alpn(&self) -> Option<&[u8]> {
        match self {
            Self::Plain(_) | Self::Unix(_) => None,
            Self::ClientTls(s) => s.get_ref().1.alpn_protocol(),
            Self::ServerTls(s) => s.get_ref().1.alpn_protocol(),
        }
    }

    /// True when ALPN chose HTTP/2.
    pub(crate) fn is_h2(&self) -> bool {
        self.alpn() == Some(b"h2")
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::ClientTls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Self::ServerTls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Self::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::ClientTls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Self::ServerTls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Self::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Self::ClientTls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
            Self::ServerTls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
            Self::Unix(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::ClientTls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Self::ServerTls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Self::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_close(cx),
            Self::ClientTls(s) => Pin::new(s.as_mut()).poll_close(cx),
            Self::ServerTls(s) => Pin::new(s.as_mut()).poll_close(cx),
            Self::Unix(s) => Pin::new(s).poll_close(cx),
        }
    }
}

impl hyper::rt::Read for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        // SAFETY: the plain sockets only write into the buffer (`recv`);
        // TLS streams get it zeroed first. `advance` below counts only
        // bytes that were written.
        let unfilled = unsafe { buf.as_mut() };
        let n = match self.get_mut() {
            Self::Plain(s) => ready!(s.poll_read_uninit(cx, unfilled))?,
            Self::Unix(s) => ready!(s.poll_read_uninit(cx, unfilled))?,
            tls => {
                for byte in unfilled.iter_mut() {
                    byte.write(0);
                }
                // SAFETY: every byte was just initialised.
                let init = unsafe { &mut *(std::ptr::from_mut(unfilled) as *mut [u8]) };
                ready!(AsyncRead::poll_read(Pin::new(tls), cx, init))?
            }
        };
        // SAFETY: `n` bytes were read into the buffer.
        unsafe { buf.advance(n) };
        Poll::Ready(Ok(()))
    }
}

impl hyper::rt::Write for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        AsyncWrite::poll_write(self, cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        AsyncWrite::poll_write_vectored(self, cx, bufs)
    }

    /// Plain sockets take several buffers in one `writev`; TLS streams
    /// would encrypt them one by one, so hyper joins them instead.
    fn is_write_vectored(&self) -> bool {
        matches!(self, Self::Plain(_) | Self::Unix(_))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        AsyncWrite::poll_flush(self, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        AsyncWrite::poll_close(self, cx)
    }
}
