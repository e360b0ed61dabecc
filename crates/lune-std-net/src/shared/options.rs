//! The one reader for what scripts pass: seconds, sizes, whole numbers,
//! ports, flags, addresses and certificate/key pairs, with one set of rules
//! and messages that name the field. Nothing a script passes reaches a
//! panic: numbers are checked before they become `Duration`s or `usize`s.

use std::{net::IpAddr, path::PathBuf, sync::Arc, time::Duration};

use mlua::prelude::*;
use rustls::ServerConfig;

use crate::rt::tls::{self, ClientTls};

/// The longest duration a script may ask for: one year, in seconds.
pub(crate) const MAX_SECONDS: f64 = 365.0 * 24.0 * 3600.0;
/// The largest size a script may give: 2^53 bytes, every whole number a
/// Luau number holds exactly.
pub(crate) const MAX_SIZE: f64 = 9_007_199_254_740_992.0;

/// A `read()` without a size (of a `TcpStream` or a `BodyReader`) returns at
/// most this much, and so does each read of a stream the library consumes.
pub(crate) const DEFAULT_READ_SIZE: usize = 64 * 1024;

/// How a value is shown in an error: numbers as Luau prints them, anything
/// else by its type name.
pub(crate) fn describe(value: &LuaValue) -> String {
    match value {
        LuaValue::Integer(n) => n.to_string(),
        LuaValue::Number(n) => lune_utils::fmt::format_number(*n),
        LuaValue::String(s) => format!("'{}'", s.to_string_lossy()),
        other => lune_utils::type_name(other).to_string(),
    }
}

fn invalid(field: &str, expected: &str, got: &LuaValue) -> LuaError {
    LuaError::runtime(format!(
        "Invalid '{field}' - expected {expected}, got {}",
        describe(got)
    ))
}

fn number(value: &LuaValue) -> Option<f64> {
    match value {
        LuaValue::Integer(n) => Some(*n as f64),
        LuaValue::Number(n) => Some(*n),
        _ => None,
    }
}

/// Seconds: a positive, finite number of at most [`MAX_SECONDS`].
pub(crate) fn seconds(value: &LuaValue, field: &str) -> LuaResult<Option<Duration>> {
    seconds_up_to(value, field, MAX_SECONDS)
}

/// Seconds: a positive, finite number of at most `max` (a socket option
/// the kernel bounds more tightly than [`MAX_SECONDS`]).
pub(crate) fn seconds_up_to(
    value: &LuaValue,
    field: &str,
    max: f64,
) -> LuaResult<Option<Duration>> {
    if value.is_nil() {
        return Ok(None);
    }
    number(value)
        .filter(|n| *n > 0.0 && *n <= max.min(MAX_SECONDS))
        .and_then(|n| Duration::try_from_secs_f64(n).ok())
        .map(Some)
        .ok_or_else(|| {
            let most = if max >= MAX_SECONDS {
                "at most one year, 31536000".to_string()
            } else {
                format!("at most {}", lune_utils::fmt::format_number(max))
            };
            invalid(
                field,
                &format!("a positive number of seconds ({most})"),
                value,
            )
        })
}

/// A whole number from `min` to `max`.
pub(crate) fn whole(value: &LuaValue, field: &str, min: u64, max: u64) -> LuaResult<Option<u64>> {
    if value.is_nil() {
        return Ok(None);
    }
    number(value)
        .filter(|n| n.fract() == 0.0 && *n >= min as f64 && *n <= max as f64)
        .map(|n| Some(n as u64))
        .ok_or_else(|| invalid(field, &format!("a whole number from {min} to {max}"), value))
}

/// A size in bytes: a whole number from 1 to [`MAX_SIZE`].
pub(crate) fn size(value: &LuaValue, field: &str) -> LuaResult<Option<usize>> {
    if value.is_nil() {
        return Ok(None);
    }
    number(value)
        .filter(|n| n.fract() == 0.0 && *n >= 1.0 && *n <= MAX_SIZE)
        .map(|n| Some(usize::try_from(n as u64).unwrap_or(usize::MAX)))
        .ok_or_else(|| invalid(field, "a whole number of bytes, 1 or more", value))
}

/// The url argument of `function` (`net.socket`, `net.sse.connect`).
pub(crate) fn url(value: &LuaValue, function: &str) -> LuaResult<String> {
    match value {
        LuaValue::String(url) => Ok(url.to_str()?.to_string()),
        other => Err(LuaError::runtime(format!(
            "{function} expects a url string, got {}",
            lune_utils::type_name(other)
        ))),
    }
}

/// A port: a whole number from 0 to 65535.
pub(crate) fn port(value: &LuaValue, field: &str) -> LuaResult<u16> {
    match whole(value, field, 0, u64::from(u16::MAX))? {
        Some(port) => Ok(port as u16),
        None => Err(invalid(field, "a port number from 0 to 65535", value)),
    }
}

/// A file system path (a Unix socket's): a non-empty string without NUL
/// bytes, taken byte for byte.
pub(crate) fn path(value: &LuaValue, field: &str) -> LuaResult<Option<PathBuf>> {
    use std::os::unix::ffi::OsStrExt;
    match value {
        LuaValue::Nil => Ok(None),
        LuaValue::String(s) if !s.as_bytes().is_empty() && !s.as_bytes().contains(&0) => Ok(Some(
            PathBuf::from(std::ffi::OsStr::from_bytes(&s.as_bytes())),
        )),
        other => Err(invalid(field, "a file path", other)),
    }
}

/// The fields of a config table, read with the rules above. `None` when the
/// field is nil.
pub(crate) struct Options<'a> {
    table: &'a LuaTable,
}

impl<'a> Options<'a> {
    pub(crate) fn new(table: &'a LuaTable) -> Self {
        Self { table }
    }

    fn get(&self, key: &str) -> LuaResult<LuaValue> {
        self.table.get(key)
    }

    /// The field as it is, for options that take several kinds of value.
    pub(crate) fn raw(&self, key: &str) -> LuaResult<LuaValue> {
        self.get(key)
    }

    pub(crate) fn seconds(&self, key: &str) -> LuaResult<Option<Duration>> {
        seconds(&self.get(key)?, key)
    }

    pub(crate) fn size(&self, key: &str) -> LuaResult<Option<usize>> {
        size(&self.get(key)?, key)
    }

    pub(crate) fn whole(&self, key: &str, min: u64, max: u64) -> LuaResult<Option<u64>> {
        whole(&self.get(key)?, key, min, max)
    }

    pub(crate) fn path(&self, key: &str) -> LuaResult<Option<PathBuf>> {
        path(&self.get(key)?, key)
    }

    pub(crate) fn flag(&self, key: &str) -> LuaResult<Option<bool>> {
        match self.get(key)? {
            LuaValue::Nil => Ok(None),
            LuaValue::Boolean(b) => Ok(Some(b)),
            other => Err(invalid(key, "a boolean", &other)),
        }
    }

    pub(crate) fn string(&self, key: &str) -> LuaResult<Option<LuaString>> {
        match self.get(key)? {
            LuaValue::Nil => Ok(None),
            LuaValue::String(s) => Ok(Some(s)),
            other => Err(invalid(key, "a string", &other)),
        }
    }

    pub(crate) fn table(&self, key: &str) -> LuaResult<Option<LuaTable>> {
        match self.get(key)? {
            LuaValue::Nil => Ok(None),
            LuaValue::Table(t) => Ok(Some(t)),
            other => Err(invalid(key, "a table", &other)),
        }
    }

    pub(crate) fn function(&self, key: &str) -> LuaResult<Option<LuaFunction>> {
        match self.get(key)? {
            LuaValue::Nil => Ok(None),
            LuaValue::Function(f) => Ok(Some(f)),
            other => Err(invalid(key, "a function", &other)),
        }
    }

    /// An array of strings (`protocols = { "chat", "v2" }`).
    pub(crate) fn strings(&self, key: &str) -> LuaResult<Vec<String>> {
        let Some(table) = self.table(key)? else {
            return Ok(Vec::new());
        };
        table
            .sequence_values::<LuaValue>()
            .map(|value| match value? {
                LuaValue::String(s) => Ok(s.to_str()?.to_string()),
                other => Err(invalid(key, "an array of strings", &other)),
            })
            .collect()
    }

    /// A listening address: an IP with an optional `http://` or `https://`.
    pub(crate) fn address(&self, key: &str) -> LuaResult<Option<IpAddr>> {
        self.string(key)?
            .map(|s| parse_address(&s.to_string_lossy()))
            .transpose()
    }

    /// A server's `tls = { cert, key, clientCa?, requireClientCert? }` (PEM
    /// text), offering `alpn`: with `clientCa` clients are asked for a
    /// certificate signed by it, and with `requireClientCert` refused
    /// without one.
    pub(crate) fn server_tls(
        &self,
        key: &str,
        alpn: &[&[u8]],
    ) -> LuaResult<Option<Arc<ServerConfig>>> {
        let Some(table) = self.table(key)? else {
            return Ok(None);
        };
        let pem = server_pem(&table, key)?;
        tls::server(&pem, alpn)
            .map(Some)
            .map_err(LuaError::external)
    }

    /// A client's `tls = { ca = pem | { pem }, cert = pem, key = pem,
    /// serverName = string }`; `None` when nil.
    pub(crate) fn client_tls(&self, key: &str) -> LuaResult<Option<ClientTls>> {
        match self.get(key)? {
            LuaValue::Nil => Ok(None),
            LuaValue::Table(table) => client_tls_table(&table, key).map(Some),
            other => Err(invalid(
                key,
                "a table { ca?, cert?, key?, serverName? }",
                &other,
            )),
        }
    }
}

/// The PEM text in `table[field]`, named `prefix.field` in errors.
fn pem_field(table: &LuaTable, prefix: &str, field: &str) -> LuaResult<Option<Vec<u8>>> {
    match table.get::<LuaValue>(field)? {
        LuaValue::Nil => Ok(None),
        LuaValue::String(s) => Ok(Some(s.as_bytes().to_vec())),
        other => Err(invalid(
            &format!("{prefix}.{field}"),
            "a PEM string",
            &other,
        )),
    }
}

/// A CA option: one PEM string (which may hold several certificates) or an
/// array of them.
fn pem_list(table: &LuaTable, prefix: &str, field: &str) -> LuaResult<Vec<Vec<u8>>> {
    let name = format!("{prefix}.{field}");
    match table.get::<LuaValue>(field)? {
        LuaValue::Nil => Ok(Vec::new()),
        LuaValue::String(s) => Ok(vec![s.as_bytes().to_vec()]),
        LuaValue::Table(list) => {
            let pems = list
                .sequence_values::<LuaValue>()
                .map(|value| match value? {
                    LuaValue::String(s) => Ok(s.as_bytes().to_vec()),
                    other => Err(invalid(&name, "a PEM string or an array of them", &other)),
                })
                .collect::<LuaResult<Vec<_>>>()?;
            if pems.is_empty() {
                return Err(LuaError::runtime(format!(
                    "Invalid '{name}' - expected a PEM string or an array of them, got an empty table"
                )));
            }
            Ok(pems)
        }
        other => Err(invalid(&name, "a PEM string or an array of them", &other)),
    }
}

/// A client's TLS options from their table, named `prefix.field` in errors.
pub(crate) fn client_tls_table(table: &LuaTable, prefix: &str) -> LuaResult<ClientTls> {
    let pem = tls::ClientPem {
        ca: pem_list(table, prefix, "ca")?,
        cert: pem_field(table, prefix, "cert")?,
        key: pem_field(table, prefix, "key")?,
    };
    let server_name = match table.get::<LuaValue>("serverName")? {
        LuaValue::Nil => None,
        LuaValue::String(s) if !s.as_bytes().is_empty() => {
            let name = s.to_str()?.to_string();
            rustls_pki_types::ServerName::try_from(name.as_str()).map_err(|_| {
                LuaError::runtime(format!(
                    "Invalid '{prefix}.serverName' - '{name}' is not a DNS name or IP address"
                ))
            })?;
            Some(name)
        }
        other => {
            return Err(invalid(
                &format!("{prefix}.serverName"),
                "a host name",
                &other,
            ));
        }
    };
    let profile = if pem == tls::ClientPem::default() {
        None
    } else {
        Some(tls::client(&pem, prefix).map_err(LuaError::external)?)
    };
    Ok(ClientTls {
        profile,
        server_name,
    })
}

/// A server's or an accepted stream's TLS options.
pub(crate) fn server_pem(table: &LuaTable, prefix: &str) -> LuaResult<tls::ServerPem> {
    let field = |name: &str| format!("{prefix}.{name}");
    let required = |name: &str| -> LuaResult<Vec<u8>> {
        pem_field(table, prefix, name)?.ok_or_else(|| {
            LuaError::runtime(format!(
                "Invalid '{}' - expected a PEM string, got nil",
                field(name)
            ))
        })
    };
    let identity = tls::Identity {
        cert: required("cert")?,
        key: required("key")?,
        cert_field: field("cert"),
        key_field: field("key"),
    };
    let client_ca = pem_list(table, prefix, "clientCa")?;
    let require = match table.get::<LuaValue>("requireClientCert")? {
        LuaValue::Nil | LuaValue::Boolean(false) => false,
        LuaValue::Boolean(true) => true,
        other => {
            return Err(invalid(&field("requireClientCert"), "a boolean", &other));
        }
    };
    Ok(tls::ServerPem {
        identity,
        client_ca: (!client_ca.is_empty()).then(|| (client_ca, field("clientCa"))),
        require_client_cert: require.then(|| field("requireClientCert")),
    })
}

/// `127.0.0.1`, `::1`, `[::1]`, `http://0.0.0.0`, `https://localhost`.
pub(crate) fn parse_address(text: &str) -> LuaResult<IpAddr> {
    let trimmed = text.trim();
    let bare = trimmed
        .strip_prefix("http://")
        .or_else(|| trimmed.strip_prefix("https://"))
        .unwrap_or(trimmed)
        .trim_end_matches('/');
    if bare.eq_ignore_ascii_case("localhost") {
        return Ok(IpAddr::from([127, 0, 0, 1]));
    }
    crate::rt::connect::bare(bare).parse().map_err(|_| {
        LuaError::runtime(format!(
            "Invalid address '{text}' - expected an IPv4 or IPv6 address such as 127.0.0.1 or ::1, optionally prefixed with http://"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_reject_what_cannot_be_a_duration() {
        for bad in [-1.0, 0.0, f64::NAN, f64::INFINITY, 1e20, MAX_SECONDS + 1.0] {
            let err = seconds(&LuaValue::Number(bad), "timeout").unwrap_err();
            assert!(err.to_string().contains("'timeout'"), "{err}");
        }
        assert_eq!(
            seconds(&LuaValue::Number(0.5), "t").unwrap(),
            Some(Duration::from_millis(500))
        );
        assert_eq!(seconds(&LuaValue::Nil, "t").unwrap(), None);
    }

    #[test]
    fn sizes_and_ports() {
        for bad in [-1.0, 0.0, 1.5, f64::NAN, f64::INFINITY, 1e20] {
            assert!(size(&LuaValue::Number(bad), "maxBodySize").is_err());
        }
        assert_eq!(size(&LuaValue::Integer(10), "s").unwrap(), Some(10));
        assert!(port(&LuaValue::Integer(65536), "port").is_err());
        assert!(port(&LuaValue::Number(-1.0), "port").is_err());
        assert!(port(&LuaValue::Nil, "port").is_err());
        assert_eq!(port(&LuaValue::Integer(0), "port").unwrap(), 0);
    }

    #[test]
    fn addresses() {
        assert_eq!(
            parse_address("http://0.0.0.0").unwrap().to_string(),
            "0.0.0.0"
        );
        assert_eq!(parse_address("[::1]").unwrap().to_string(), "::1");
        assert_eq!(
            parse_address("https://localhost").unwrap().to_string(),
            "127.0.0.1"
        );
        assert!(parse_address("300.1.1.1").is_err());
        assert!(parse_address("example.com").is_err());
    }
}
