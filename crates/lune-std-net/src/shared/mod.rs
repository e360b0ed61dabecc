//! The types Luau sees, shared by the client and the server.

pub(crate) mod body;
pub(crate) mod decode;
pub(crate) mod encode;
pub(crate) mod framing;
pub(crate) mod headers;
pub(crate) mod options;
pub(crate) mod reader;
pub(crate) mod signal;
pub(crate) mod stack;
pub(crate) mod tcp;
pub(crate) mod udp;
pub(crate) mod websocket;
