//! TLS settings, for clients and servers: the trust a client verifies
//! against (webpki's roots, the system store and `SSL_CERT_FILE` /
//! `SSL_CERT_DIR`, or a call's own `tls.ca`), the certificate it presents,
//! a server's certificate and the client CA it asks for; the certificates
//! and keys scripts give as PEM, with errors that name the field; and what
//! went wrong with a peer's certificate, from rustls's own error kinds.
//!
//! rustls configurations are built once per distinct set of options and
//! kept ([`client`]), not per request.

use std::{
    collections::HashMap,
    fmt,
    hash::{Hash, Hasher},
    path::Path,
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
};

use rustls::{
    AlertDescription, CertificateError, ClientConfig, RootCertStore, ServerConfig,
    server::WebPkiClientVerifier,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};

/// Which application protocols a TLS connection offers by ALPN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Alpn {
    /// `h2` then `http/1.1`: HTTP requests.
    Http,
    /// `http/1.1` only: WebSocket handshakes.
    Http1,
    /// No protocol named: raw TLS streams.
    Raw,
}

/// A certificate or key a script gave that cannot be used, naming its field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PemError {
    /// No PEM block at all where a certificate or key was expected.
    NotPem {
        field: String,
        expected: &'static str,
    },
    /// PEM, but with no `BEGIN CERTIFICATE` block.
    NoCertificate { field: String },
    /// PEM, but with no private key block.
    NoKey { field: String },
    /// A PEM block whose content does not decode.
    Broken { field: String, detail: String },
    /// The private key is not the certificate's.
    KeyMismatch { cert: String, key: String },
    /// One of a pair (`cert` and `key`) without the other, or an option
    /// that needs another (`requireClientCert` needs `clientCa`).
    Missing { given: String, missing: String },
    /// rustls refused the configuration for another reason.
    Setup(String),
}

impl fmt::Display for PemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotPem { field, expected } => write!(
                f,
                "Invalid '{field}' - expected {expected} as PEM text, got text with no PEM block"
            ),
            Self::NoCertificate { field } => write!(
                f,
                "Invalid '{field}' - no certificate ('BEGIN CERTIFICATE' block) found in it"
            ),
            Self::NoKey { field } => write!(
                f,
                "Invalid '{field}' - no private key ('BEGIN PRIVATE KEY' block) found in it"
            ),
            Self::Broken { field, detail } => {
                write!(f, "Invalid '{field}' - its PEM does not decode: {detail}")
            }
            Self::KeyMismatch { cert, key } => write!(
                f,
                "Invalid '{key}' - the private key does not match the certificate in '{cert}'"
            ),
            Self::Missing { given, missing } => {
                write!(f, "Missing '{missing}' - '{given}' needs it")
            }
            Self::Setup(message) => write!(f, "TLS setup failed: {message}"),
        }
    }
}

impl std::error::Error for PemError {}

fn has_pem_block(pem: &[u8]) -> bool {
    pem.windows(11).any(|w| w == b"-----BEGIN ")
}

/// The certificates of `pem` (a chain, or a list of CAs), at least one.
pub(crate) fn certificates(
    pem: &[u8],
    field: &str,
) -> Result<Vec<CertificateDer<'static>>, PemError> {
    if !has_pem_block(pem) {
        return Err(PemError::NotPem {
            field: field.to_string(),
            expected: "a certificate",
        });
    }
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PemError::Broken {
            field: field.to_string(),
            detail: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(PemError::NoCertificate {
            field: field.to_string(),
        });
    }
    Ok(certs)
}

/// The private key of `pem`.
pub(crate) fn private_key(pem: &[u8], field: &str) -> Result<PrivateKeyDer<'static>, PemError> {
    if !has_pem_block(pem) {
        return Err(PemError::NotPem {
            field: field.to_string(),
            expected: "a private key",
        });
    }
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => PemError::NoKey {
            field: field.to_string(),
        },
        other => PemError::Broken {
            field: field.to_string(),
            detail: other.to_string(),
        },
    })
}

/// A certificate chain and its key, with the fields they came from.
pub(crate) struct Identity {
    pub(crate) cert: Vec<u8>,
    pub(crate) key: Vec<u8>,
    pub(crate) cert_field: String,
    pub(crate) key_field: String,
}

impl Identity {
    fn parse(&self) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), PemError> {
        Ok((
            certificates(&self.cert, &self.cert_field)?,
            private_key(&self.key, &self.key_field)?,
        ))
    }

    /// rustls's refusal of this pair, as the script's error.
    fn refused(&self, e: &rustls::Error) -> PemError {
        match e {
            rustls::Error::InconsistentKeys(_) => PemError::KeyMismatch {
                cert: self.cert_field.clone(),
                key: self.key_field.clone(),
            },
            other => PemError::Setup(format!("'{}': {other}", self.cert_field)),
        }
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots_of(ca: &[Vec<u8>], field: &str) -> Result<RootCertStore, PemError> {
    let mut roots = RootCertStore::empty();
    for pem in ca {
        for cert in certificates(pem, field)? {
            roots.add(cert).map_err(|e| PemError::Broken {
                field: field.to_string(),
                detail: e.to_string(),
            })?;
        }
    }
    Ok(roots)
}

/// What a client call gave as `tls = { ca, cert, key }` (PEM text): the key
/// under which its configuration is kept.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub(crate) struct ClientPem {
    /// Replaces the default trust when not empty.
    pub(crate) ca: Vec<Vec<u8>>,
    /// The client certificate and its key.
    pub(crate) cert: Option<Vec<u8>>,
    pub(crate) key: Option<Vec<u8>>,
}

/// The rustls configurations of one set of client options, one per ALPN.
pub(crate) struct Profile {
    id: u64,
    http: Arc<ClientConfig>,
    http1: Arc<ClientConfig>,
    raw: Arc<ClientConfig>,
    /// Trusts only the call's `tls.ca`.
    own_ca: bool,
}

impl Profile {
    fn build(
        id: u64,
        roots: Arc<RootCertStore>,
        identity: Option<&Identity>,
        own_ca: bool,
    ) -> Result<Self, PemError> {
        let parsed = identity.map(Identity::parse).transpose()?;
        let make = |protocols: &[&[u8]]| -> Result<Arc<ClientConfig>, PemError> {
            let builder = ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .map_err(|e| PemError::Setup(e.to_string()))?
                .with_root_certificates(roots.clone());
            let mut config = match (&parsed, identity) {
                (Some((certs, key)), Some(identity)) => builder
                    .with_client_auth_cert(certs.clone(), key.clone_key())
                    .map_err(|e| identity.refused(&e))?,
                _ => builder.with_no_client_auth(),
            };
            config.alpn_protocols = protocols.iter().map(|p| p.to_vec()).collect();
            Ok(Arc::new(config))
        };
        Ok(Self {
            id,
            http: make(&[b"h2", b"http/1.1"])?,
            http1: make(&[b"http/1.1"])?,
            raw: make(&[])?,
            own_ca,
        })
    }

    fn config(&self, alpn: Alpn) -> Arc<ClientConfig> {
        match alpn {
            Alpn::Http => self.http.clone(),
            Alpn::Http1 => self.http1.clone(),
            Alpn::Raw => self.raw.clone(),
        }
    }
}

/// Distinct client option sets kept at most; past it the cache starts over
/// (a script making a new CA per call must not grow memory without bound).
const MAX_PROFILES: usize = 64;

static NEXT_PROFILE: AtomicU64 = AtomicU64::new(1);
static PROFILES: Mutex<Option<HashMap<ClientPem, Arc<Profile>>>> = Mutex::new(None);
static SYSTEM: OnceLock<Result<Arc<Profile>, String>> = OnceLock::new();

/// The configurations for `pem`, built on first use and kept. `prefix`
/// names the option in errors (`tls` gives `tls.ca`, `tls.cert`...).
pub(crate) fn client(pem: &ClientPem, prefix: &str) -> Result<Arc<Profile>, PemError> {
    if let Some(profile) = lune_utils::lock(&PROFILES)
        .as_ref()
        .and_then(|profiles| profiles.get(pem))
    {
        return Ok(profile.clone());
    }
    let field = |name: &str| format!("{prefix}.{name}");
    let identity = match (&pem.cert, &pem.key) {
        (Some(cert), Some(key)) => Some(Identity {
            cert: cert.clone(),
            key: key.clone(),
            cert_field: field("cert"),
            key_field: field("key"),
        }),
        (None, None) => None,
        (Some(_), None) => {
            return Err(PemError::Missing {
                given: field("cert"),
                missing: field("key"),
            });
        }
        (None, Some(_)) => {
            return Err(PemError::Missing {
                given: field("key"),
                missing: field("cert"),
            });
        }
    };
    let own_ca = !pem.ca.is_empty();
    let roots = if own_ca {
        Arc::new(roots_of(&pem.ca, &field("ca"))?)
    } else {
        system_roots().map_err(PemError::Setup)?
    };
    let id = NEXT_PROFILE.fetch_add(1, Ordering::Relaxed);
    let profile = Arc::new(Profile::build(id, roots, identity.as_ref(), own_ca)?);
    let mut profiles = lune_utils::lock(&PROFILES);
    let profiles = profiles.get_or_insert_with(HashMap::new);
    if profiles.len() >= MAX_PROFILES {
        profiles.clear();
    }
    profiles.insert(pem.clone(), profile.clone());
    Ok(profile)
}

/// A client connection's TLS: the configuration (the default trust unless
/// a call gave `tls` options) and the name to send and verify
/// (`tls.serverName`, else the host connected to). Compared by which
/// configuration it is, so that pooled connections are never shared across
/// different options.
#[derive(Clone, Default)]
pub(crate) struct ClientTls {
    pub(crate) profile: Option<Arc<Profile>>,
    pub(crate) server_name: Option<String>,
}

impl ClientTls {
    fn id(&self) -> u64 {
        self.profile.as_ref().map_or(0, |p| p.id)
    }

    /// The configuration offering `alpn`; an unusable `SSL_CERT_FILE` or
    /// `SSL_CERT_DIR` is an error for every connection on the default trust
    /// rather than a silently smaller set of roots.
    pub(crate) fn config(&self, alpn: Alpn) -> Result<Arc<ClientConfig>, String> {
        match &self.profile {
            Some(profile) => Ok(profile.config(alpn)),
            None => Ok(system()?.config(alpn)),
        }
    }

    /// True when only the call's `tls.ca` is trusted.
    pub(crate) fn own_ca(&self) -> bool {
        self.profile.as_ref().is_some_and(|p| p.own_ca)
    }
}

impl PartialEq for ClientTls {
    fn eq(&self, other: &Self) -> bool {
        self.id() == other.id() && self.server_name == other.server_name
    }
}

impl Eq for ClientTls {}

impl Hash for ClientTls {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id().hash(state);
        self.server_name.hash(state);
    }
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientTls({}, {:?})", self.id(), self.server_name)
    }
}

fn system() -> Result<Arc<Profile>, String> {
    SYSTEM
        .get_or_init(|| {
            let roots = system_roots()?;
            Profile::build(0, roots, None, false)
                .map(Arc::new)
                .map_err(|e| e.to_string())
        })
        .clone()
}

/// The default trust, read once per process.
fn system_roots() -> Result<Arc<RootCertStore>, String> {
    static ROOTS: OnceLock<Result<Arc<RootCertStore>, String>> = OnceLock::new();
    ROOTS.get_or_init(|| root_store().map(Arc::new)).clone()
}

fn root_store() -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    // The system store; unreadable or invalid entries are skipped, as every
    // TLS client does, since one bad system file must not break all of HTTPS.
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    // What the user named explicitly must work, or say why not.
    if let Some(file) = std::env::var_os("SSL_CERT_FILE") {
        let path = Path::new(&file);
        let added = add_pem_file(&mut roots, path)
            .map_err(|e| format!("SSL_CERT_FILE '{}' is unusable: {e}", path.display()))?;
        if added == 0 {
            return Err(format!(
                "SSL_CERT_FILE '{}' holds no certificate",
                path.display()
            ));
        }
    }
    if let Some(dirs) = std::env::var_os("SSL_CERT_DIR") {
        for dir in std::env::split_paths(&dirs) {
            let entries = std::fs::read_dir(&dir)
                .map_err(|e| format!("SSL_CERT_DIR '{}' is unusable: {e}", dir.display()))?;
            for entry in entries.flatten() {
                // Other files (hash links to the same certificates, CRLs,
                // READMEs) live in certificate directories too.
                let _ = add_pem_file(&mut roots, &entry.path());
            }
        }
    }
    Ok(roots)
}

/// Adds every certificate of a PEM file; how many were added.
fn add_pem_file(roots: &mut RootCertStore, path: &Path) -> Result<usize, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| e.to_string())?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let (added, _) = roots.add_parsable_certificates(certs);
    Ok(added)
}

/// A server's `tls = { cert, key, clientCa?, requireClientCert? }`.
pub(crate) struct ServerPem {
    pub(crate) identity: Identity,
    /// Ask clients for a certificate signed by one of these.
    pub(crate) client_ca: Option<(Vec<Vec<u8>>, String)>,
    /// Refuse a client without one (needs `client_ca`).
    pub(crate) require_client_cert: Option<String>,
}

/// The server configuration for `pem`, offering `alpn`.
pub(crate) fn server(pem: &ServerPem, alpn: &[&[u8]]) -> Result<Arc<ServerConfig>, PemError> {
    let (certs, key) = pem.identity.parse()?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| PemError::Setup(e.to_string()))?;
    let builder = match (&pem.client_ca, &pem.require_client_cert) {
        (None, Some(required)) => {
            return Err(PemError::Missing {
                given: required.clone(),
                missing: required.replace("requireClientCert", "clientCa"),
            });
        }
        (None, None) => builder.with_no_client_auth(),
        (Some((ca, field)), required) => {
            let roots = Arc::new(roots_of(ca, field)?);
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider());
            let verifier = if required.is_some() {
                verifier
            } else {
                verifier.allow_unauthenticated()
            };
            let verifier = verifier
                .build()
                .map_err(|e| PemError::Setup(format!("'{field}': {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| pem.identity.refused(&e))?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// What was wrong with a certificate in a handshake, from rustls's error
/// kinds (never from message text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CertProblem {
    Expired,
    NotYetValid,
    /// Not valid for the name checked.
    WrongName,
    /// Signed by no authority the verifier trusts.
    UnknownIssuer,
    /// Otherwise invalid (revoked, bad signature, wrong purpose...).
    Invalid,
    /// The server wanted a client certificate and got none (either side).
    ClientCertRequired,
    /// The server refused the client's certificate.
    ClientCertRefused,
}

impl CertProblem {
    /// The problem a failed TLS operation (an I/O error or any error whose
    /// chain holds one) ran into, if it was a certificate's.
    pub(crate) fn of(error: &(dyn std::error::Error + 'static)) -> Option<Self> {
        let mut cause = Some(error);
        while let Some(e) = cause {
            if let Some(rustls) = e.downcast_ref::<rustls::Error>() {
                return Self::of_rustls(rustls);
            }
            // (HTTP/2 keeps only the text of a broken connection's I/O
            // error: clients read it from `rt::stream::TlsAlert` instead.)
            if let Some(rustls) = e
                .downcast_ref::<std::io::Error>()
                .and_then(std::io::Error::get_ref)
                .and_then(|i| i.downcast_ref::<rustls::Error>())
            {
                return Self::of_rustls(rustls);
            }
            cause = e.source();
        }
        None
    }

    fn of_rustls(e: &rustls::Error) -> Option<Self> {
        Some(match e {
            rustls::Error::InvalidCertificate(cert) => match cert {
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    Self::Expired
                }
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                    Self::NotYetValid
                }
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => Self::WrongName,
                CertificateError::UnknownIssuer => Self::UnknownIssuer,
                _ => Self::Invalid,
            },
            rustls::Error::NoCertificatesPresented
            | rustls::Error::AlertReceived(AlertDescription::CertificateRequired) => {
                Self::ClientCertRequired
            }
            rustls::Error::AlertReceived(
                AlertDescription::BadCertificate
                | AlertDescription::UnknownCA
                | AlertDescription::CertificateExpired
                | AlertDescription::UnsupportedCertificate
                | AlertDescription::CertificateUnknown,
            ) => Self::ClientCertRefused,
            _ => return None,
        })
    }

    /// Says what is wrong with the certificate of `host` (`name` is the
    /// name checked), naming the option that changes it.
    pub(crate) fn describe(self, host: &str, name: &str, own_ca: bool) -> String {
        match self {
            Self::Expired => format!("TLS certificate of '{host}' has expired"),
            Self::NotYetValid => format!("TLS certificate of '{host}' is not valid yet"),
            Self::WrongName => format!(
                "TLS certificate of '{host}' is not valid for the name '{name}' (tls.serverName sets the name checked)"
            ),
            Self::UnknownIssuer if own_ca => format!(
                "TLS certificate of '{host}' is not signed by a CA in tls.ca (unknown issuer)"
            ),
            Self::UnknownIssuer => format!(
                "TLS certificate of '{host}' is not trusted: unknown issuer (trust its CA with tls.ca or SSL_CERT_FILE)"
            ),
            Self::Invalid => format!("TLS certificate of '{host}' is invalid"),
            Self::ClientCertRequired => format!(
                "The server '{host}' requires a client certificate (give tls.cert and tls.key)"
            ),
            Self::ClientCertRefused => {
                format!("The server '{host}' refused the client certificate in tls.cert")
            }
        }
    }
}

/// A DER certificate as PEM text.
pub(crate) fn pem_of(der: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut base64 = Vec::with_capacity(der.len().div_ceil(3) * 4);
    for chunk in der.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                base64.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]);
            } else {
                base64.push(b'=');
            }
        }
    }
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in base64.chunks(64) {
        // Every byte comes from the ASCII alphabet above.
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_of_round_trips() {
        for len in 0..10 {
            let der: Vec<u8> = (0..len * 37).map(|i| (i * 7 % 256) as u8).collect();
            let pem = pem_of(&der);
            let back = CertificateDer::from_pem_slice(pem.as_bytes())
                .map(|c| c.to_vec())
                .unwrap_or_default();
            assert_eq!(back, der, "length {}", der.len());
        }
    }

    #[test]
    fn client_configs_are_built_once_per_option_set() {
        let fixtures = lune_test_fixtures::start().expect("the fixtures");
        let env = fixtures.env();
        let pem = |name: &str| {
            env.iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone().into_bytes())
                .expect("a fixture PEM")
        };
        let with_ca = ClientPem {
            ca: vec![pem("LUNE_TEST_CA_PEM")],
            ..ClientPem::default()
        };
        let first = client(&with_ca, "tls").expect("a profile");
        let again = client(&with_ca, "tls").expect("a profile");
        assert!(
            Arc::ptr_eq(&first, &again),
            "the same options share one build"
        );
        let with_cert = ClientPem {
            cert: Some(pem("LUNE_TEST_CLIENT_CERT")),
            key: Some(pem("LUNE_TEST_CLIENT_KEY")),
            ..with_ca.clone()
        };
        let other = client(&with_cert, "tls").expect("a profile");
        assert_ne!(first.id, other.id, "other options get their own");
        let keyed = |profile: &Arc<Profile>| ClientTls {
            profile: Some(profile.clone()),
            server_name: None,
        };
        assert!(
            keyed(&first) == keyed(&again),
            "pool keys match for equal options"
        );
        assert!(
            keyed(&first) != keyed(&other),
            "and differ with a client certificate"
        );
    }

    #[test]
    fn pem_errors_name_the_field() {
        let not_pem = certificates(b"hello", "tls.ca").unwrap_err();
        assert!(matches!(not_pem, PemError::NotPem { .. }), "{not_pem}");
        assert!(not_pem.to_string().contains("'tls.ca'"), "{not_pem}");
        let key_block = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        let no_cert = certificates(key_block, "tls.cert").unwrap_err();
        assert!(
            matches!(no_cert, PemError::NoCertificate { .. }),
            "{no_cert}"
        );
        let cert_block = pem_of(b"not really der");
        let no_key = private_key(cert_block.as_bytes(), "tls.key").unwrap_err();
        assert!(matches!(no_key, PemError::NoKey { .. }), "{no_key}");
    }
}
