//! Request bodies as a handler receives them: read within `maxBodySize`
//! (413, from `Content-Length` or while reading) and `bodyTimeout` (408 when
//! no byte comes for that long), then decompressed within the same limit.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_lite::future;
use http::{StatusCode, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::response::{HttpResponse, closing, plain};
use crate::shared::decode::{self, DecodeError};

/// The limits a request body is read under.
#[derive(Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) max_size: usize,
    pub(crate) timeout: Duration,
}

/// Reads the whole body, or the response that refuses it.
pub(crate) async fn read(
    headers: &http::HeaderMap,
    mut body: Incoming,
    limits: Limits,
) -> Result<Bytes, HttpResponse> {
    let too_large = || {
        closing(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!(
                "Request body is larger than the server's limit of {} bytes",
                limits.max_size
            ),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limits.max_size as u64) {
        return Err(too_large());
    }
    let mut bytes = BytesMut::new();
    loop {
        let frame = future::or(async { Some(body.frame().await) }, async {
            async_io::Timer::after(limits.timeout).await;
            None
        })
        .await;
        let frame = match frame {
            None => {
                return Err(closing(
                    StatusCode::REQUEST_TIMEOUT,
                    &format!(
                        "Request body stalled: no data for {} seconds",
                        limits.timeout.as_secs_f64()
                    ),
                ));
            }
            Some(None) => break,
            Some(Some(Ok(frame))) => frame,
            Some(Some(Err(e))) => {
                return Err(closing(
                    StatusCode::BAD_REQUEST,
                    &format!("Failed to read the request body: {e}"),
                ));
            }
        };
        if let Ok(data) = frame.into_data() {
            if bytes.len() + data.len() > limits.max_size {
                return Err(too_large());
            }
            bytes.extend_from_slice(&data);
        }
    }
    let bytes = bytes.freeze();
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok());
    match encoding.and_then(decode::format_of) {
        Some(format) if !bytes.is_empty() => decode::decode(format, bytes, Some(limits.max_size))
            .await
            .map_err(|e| match e {
                DecodeError::TooLarge { .. } => too_large(),
                DecodeError::Invalid(e) => plain(
                    StatusCode::BAD_REQUEST,
                    &format!("Failed to decompress the request body: {e}"),
                ),
            }),
        _ => Ok(bytes),
    }
}
