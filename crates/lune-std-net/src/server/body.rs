//! Request bodies as a handler receives them: read within `maxBodySize`
//! (413, from `Content-Length` or while reading) and `bodyTimeout` (408 when
//! no byte comes for that long), then decompressed within the same limit.

use std::time::Duration;

use bytes::Bytes;
use http::{StatusCode, header};
use hyper::body::Incoming;

use super::response::{HttpResponse, closing, plain};
use crate::shared::{
    decode,
    reader::{BodyFault, IncomingBody},
};

/// The limits a request body is read under.
#[derive(Clone, Copy)]
pub(super) struct Limits {
    pub(super) max_size: usize,
    pub(super) timeout: Duration,
}

/// Reads the whole body, or the response that refuses it.
pub(super) async fn read(
    headers: &http::HeaderMap,
    body: Incoming,
    limits: Limits,
) -> Result<Bytes, HttpResponse> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limits.max_size as u64) {
        return Err(refusal(&BodyFault::TooLarge {
            limit: limits.max_size,
        }));
    }
    let format = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .and_then(decode::format_of);
    let reading = IncomingBody::new(
        body,
        None,
        format,
        Some(limits.max_size),
        Some(limits.timeout),
        "request body",
    );
    let bytes = match reading {
        Ok(mut reading) => reading.read_to_end().await,
        Err(e) => Err(e),
    };
    bytes.map_err(|e| refusal(&e.fault))
}

/// The one status rule for a request body the server cannot take: too
/// large 413 and stalled 408 (both closing: the rest of the body is not
/// read), broken 400 (closing), not valid for its encoding 400.
fn refusal(fault: &BodyFault) -> HttpResponse {
    match fault {
        BodyFault::TooLarge { limit } => closing(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("Request body is larger than the server's limit of {limit} bytes"),
        ),
        BodyFault::Stalled(after) => closing(
            StatusCode::REQUEST_TIMEOUT,
            &format!(
                "Request body stalled: no data for {} seconds",
                after.as_secs_f64()
            ),
        ),
        BodyFault::Broken(e) => closing(
            StatusCode::BAD_REQUEST,
            &format!("Failed to read the request body: {e}"),
        ),
        BodyFault::Decompress(e) => plain(
            StatusCode::BAD_REQUEST,
            &format!("Failed to decompress the request body: {e}"),
        ),
    }
}
