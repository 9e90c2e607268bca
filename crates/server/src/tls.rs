//! TLS: the self-signed certificate made on first start, and the rustls server configuration
//! (TLS 1.2 and 1.3 only, ring as the one crypto provider).
//!
//! On first start we make a small local certificate authority, sign a server certificate for
//! `localhost`, `127.0.0.1` and `::1` with it, and throw the authority's private key away: clients
//! trust `tls/ca.pem`, and nobody can sign another certificate with it. The server certificate
//! is valid a year (from a day before it was made) and is made anew, with a new CA, at a start
//! within 30 days of its end.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum TlsError {
    #[error("cannot read or write {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} holds no usable PEM {what}")]
    Pem { path: PathBuf, what: &'static str },
    #[error("cannot make the self-signed certificate")]
    Generate(#[source] rcgen::Error),
    #[error("the certificate and key do not form a usable TLS configuration")]
    Config(#[source] rustls::Error),
}

/// Where the certificate, its key and the CA clients should trust are kept.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Only for the self-signed certificate: what clients pass as `--ca-cert`.
    pub ca: Option<PathBuf>,
}

/// Installs ring as the process-wide rustls provider (idempotent).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// How long the self-signed server certificate is valid (browsers refuse more than 398 days).
pub const SERVER_VALIDITY: time::Duration = time::Duration::days(365);
/// How long the throw-away CA is valid; its key is discarded, so it signs nothing else.
pub const CA_VALIDITY: time::Duration = time::Duration::days(3 * 365);
/// Both start this long before they are made, so a client whose clock is a little behind
/// accepts them.
const BACKDATE: time::Duration = time::Duration::days(1);
/// A self-signed certificate expiring within this time is made anew at start.
pub const RENEW_BEFORE: time::Duration = time::Duration::days(30);

/// Returns the self-signed certificate files in `dir`, making them on first use and again
/// when the certificate expires within [`RENEW_BEFORE`] (or cannot be read): clients then need
/// the new `ca.pem`.
pub fn ensure_self_signed(dir: &Path) -> Result<TlsFiles, TlsError> {
    let files = TlsFiles {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
        ca: Some(dir.join("ca.pem")),
    };
    let now = time::OffsetDateTime::now_utc();
    let existed = files.cert.exists() && files.key.exists();
    if existed && expires_at(&files.cert).is_some_and(|at| at > now + RENEW_BEFORE) {
        return Ok(files);
    }
    if existed {
        tracing::warn!(
            "the self-signed certificate ends within 30 days (or cannot be read): a new one and a \
             new CA are made; clients need the new tls/ca.pem"
        );
    }
    create_dir_private(dir)?;

    let ca_key = KeyPair::generate().map_err(TlsError::Generate)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(TlsError::Generate)?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Lockstep local CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca_params.not_before = now - BACKDATE;
    ca_params.not_after = now + CA_VALIDITY;
    let ca_cert = ca_params.self_signed(&ca_key).map_err(TlsError::Generate)?;
    let issuer = rcgen::Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate().map_err(TlsError::Generate)?;
    let mut params =
        CertificateParams::new(vec!["localhost".to_owned()]).map_err(TlsError::Generate)?;
    params
        .distinguished_name
        .push(DnType::CommonName, "Lockstep hub");
    params
        .subject_alt_names
        .push(SanType::IpAddress([127, 0, 0, 1].into()));
    params
        .subject_alt_names
        .push(SanType::IpAddress(std::net::Ipv6Addr::LOCALHOST.into()));
    params.not_before = now - BACKDATE;
    params.not_after = now + SERVER_VALIDITY;
    // What browsers and TLS libraries expect of a server certificate: not a CA (with a subject
    // key identifier), the issuer's key identifier, an ECDSA key used for signatures only, and
    // TLS server authentication as its one purpose.
    params.is_ca = IsCa::ExplicitNoCa;
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params
        .signed_by(&server_key, &issuer)
        .map_err(TlsError::Generate)?;

    write_file(&files.key, server_key.serialize_pem().as_bytes(), true)?;
    write_file(&files.cert, cert.pem().as_bytes(), false)?;
    if let Some(ca) = &files.ca {
        write_file(ca, ca_cert.pem().as_bytes(), false)?;
    }
    Ok(files)
}

/// When the first certificate of the PEM file at `path` expires; `None` when it cannot be read.
fn expires_at(path: &Path) -> Option<time::OffsetDateTime> {
    let der = CertificateDer::pem_file_iter(path).ok()?.next()?.ok()?;
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    Some(cert.validity().not_after.to_datetime())
}

/// A rustls configuration from PEM files: TLS 1.2 and 1.3 only, HTTP/2 and HTTP/1.1 via ALPN.
pub fn server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|_| TlsError::Pem {
            path: files.cert.clone(),
            what: "certificate",
        })?
        .collect::<Result<_, _>>()
        .map_err(|_| TlsError::Pem {
            path: files.cert.clone(),
            what: "certificate",
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: files.cert.clone(),
            what: "certificate",
        });
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|_| TlsError::Pem {
        path: files.key.clone(),
        what: "private key",
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(TlsError::Config)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(TlsError::Config)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn create_dir_private(dir: &Path) -> Result<(), TlsError> {
    std::fs::create_dir_all(dir).map_err(|source| TlsError::Io {
        path: dir.to_owned(),
        source,
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(
            |source| TlsError::Io {
                path: dir.to_owned(),
                source,
            },
        )?;
    }
    Ok(())
}

fn write_file(path: &Path, contents: &[u8], private: bool) -> Result<(), TlsError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if private { 0o600 } else { 0o644 });
    }
    let io = |source| TlsError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = options.open(path).map_err(io)?;
    file.write_all(contents).map_err(io)?;
    file.sync_all().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::extensions::ParsedExtension;
    use x509_parser::prelude::{X509Certificate, parse_x509_certificate};

    fn der(path: &Path) -> Vec<u8> {
        CertificateDer::pem_file_iter(path)
            .ok()
            .and_then(|mut certs| certs.next())
            .and_then(Result::ok)
            .map(|c| c.as_ref().to_vec())
            .unwrap_or_default()
    }

    fn parse(der: &[u8]) -> X509Certificate<'_> {
        parse_x509_certificate(der)
            .map(|(_, cert)| cert)
            .unwrap_or_else(|e| unreachable!("{e}"))
    }

    #[test]
    fn self_signed_material_is_made_once_and_kept() {
        install_crypto_provider();
        let dir = tempfile::tempdir().unwrap_or_else(|e| unreachable!("{e}"));
        let tls = dir.path().join("tls");
        let first = ensure_self_signed(&tls).unwrap_or_else(|e| unreachable!("{e}"));
        let cert = std::fs::read(&first.cert).unwrap_or_default();
        assert!(server_config(&first).is_ok());
        let second = ensure_self_signed(&tls).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(
            std::fs::read(&second.cert).unwrap_or_default(),
            cert,
            "certificate was remade"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&first.key).map(|m| m.permissions().mode() & 0o777);
            assert_eq!(mode.ok(), Some(0o600));
        }
    }

    #[test]
    fn the_certificates_have_a_sane_validity_and_the_extensions_clients_expect() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| unreachable!("{e}"));
        let files = ensure_self_signed(dir.path()).unwrap_or_else(|e| unreachable!("{e}"));
        let now = time::OffsetDateTime::now_utc();
        let about = |at: time::OffsetDateTime, expected: time::OffsetDateTime| {
            (at - expected).abs() < time::Duration::minutes(5)
        };
        let (server_der, ca_der) = (
            der(&files.cert),
            der(files.ca.as_deref().unwrap_or(dir.path())),
        );
        let (server, ca) = (parse(&server_der), parse(&ca_der));

        let validity = server.validity();
        assert!(about(
            validity.not_before.to_datetime(),
            now - time::Duration::days(1)
        ));
        assert!(about(
            validity.not_after.to_datetime(),
            now + time::Duration::days(365)
        ));
        let validity = ca.validity();
        assert!(about(
            validity.not_before.to_datetime(),
            now - time::Duration::days(1)
        ));
        assert!(about(
            validity.not_after.to_datetime(),
            now + time::Duration::days(3 * 365)
        ));

        // The server certificate: not a CA, signatures only, TLS server authentication, SANs.
        let basic = server
            .basic_constraints()
            .ok()
            .flatten()
            .map(|b| b.value.ca);
        assert_eq!(basic, Some(false));
        let usage = server.key_usage().ok().flatten().map(|k| k.value);
        assert!(
            usage.is_some_and(|k| k.digital_signature() && !k.key_cert_sign()),
            "{usage:?}"
        );
        let eku = server.extended_key_usage().ok().flatten().map(|e| e.value);
        assert!(
            eku.is_some_and(|e| e.server_auth && !e.client_auth && !e.any),
            "{eku:?}"
        );
        let sans = server
            .subject_alternative_name()
            .ok()
            .flatten()
            .map(|s| s.value.general_names.len());
        assert_eq!(sans, Some(3));

        // Key identifiers: the server's authority key identifier is the CA's subject key id.
        let ski = |cert: &X509Certificate<'_>| {
            cert.extensions()
                .iter()
                .find_map(|e| match e.parsed_extension() {
                    ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0.to_vec()),
                    _ => None,
                })
        };
        let aki = server
            .extensions()
            .iter()
            .find_map(|e| match e.parsed_extension() {
                ParsedExtension::AuthorityKeyIdentifier(aki) => {
                    aki.key_identifier.as_ref().map(|id| id.0.to_vec())
                }
                _ => None,
            });
        assert!(ski(&server).is_some_and(|id| !id.is_empty()));
        assert!(ski(&ca).is_some());
        assert_eq!(aki, ski(&ca));
        assert!(server.verify_signature(Some(ca.public_key())).is_ok());

        // The CA signs certificates only, one level deep.
        let basic = ca
            .basic_constraints()
            .ok()
            .flatten()
            .map(|b| (b.value.ca, b.value.path_len_constraint));
        assert_eq!(basic, Some((true, Some(0))));
        let usage = ca.key_usage().ok().flatten().map(|k| k.value);
        assert!(
            usage.is_some_and(|k| k.key_cert_sign() && !k.digital_signature()),
            "{usage:?}"
        );
    }

    #[test]
    fn a_certificate_near_its_end_is_made_anew() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| unreachable!("{e}"));
        let files = ensure_self_signed(dir.path()).unwrap_or_else(|e| unreachable!("{e}"));
        // Replace it with one that ends in 10 days, as a year-old one would.
        let key = KeyPair::generate().unwrap_or_else(|e| unreachable!("{e}"));
        let mut params = CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap_or_else(|e| unreachable!("{e}"));
        params.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(10);
        let old = params
            .self_signed(&key)
            .unwrap_or_else(|e| unreachable!("{e}"));
        std::fs::write(&files.cert, old.pem()).unwrap_or_else(|e| unreachable!("{e}"));
        let renewed = ensure_self_signed(dir.path()).unwrap_or_else(|e| unreachable!("{e}"));
        let ends = expires_at(&renewed.cert).unwrap_or_else(|| unreachable!("unreadable"));
        assert!(ends > time::OffsetDateTime::now_utc() + time::Duration::days(300));
        install_crypto_provider();
        assert!(
            server_config(&renewed).is_ok(),
            "the new key does not fit the new certificate"
        );
    }
}
