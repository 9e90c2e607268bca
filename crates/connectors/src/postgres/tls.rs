//! TLS for PostgreSQL connections: a rustls client configuration built for each connection with
//! the ring provider (never the process default), following libpq's `sslmode` meanings.

use super::PostgresConfig;
use crate::{ConnectorError, Secret, Secrets, TlsMode};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::sync::Arc;
use tokio_postgres_rustls::MakeRustlsConnect;

/// The TLS connector for `config.tls`, or `None` for `disable`.
///
/// * `prefer` and `require` encrypt but do not check the server's certificate (as libpq does);
/// * `verify-full` checks the chain against `ca_certificate` (or the Mozilla roots when none is
///   set) and that the certificate names the configured host.
///
/// A client certificate (`client_certificate` with the secret `client_key`) is offered in every
/// TLS mode.
pub(super) fn connector(
    config: &PostgresConfig,
    secrets: &Secrets,
) -> Result<Option<MakeRustlsConnect>, ConnectorError> {
    if config.tls == TlsMode::Disable {
        return Ok(None);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|_| ConnectorError::config("config.tls", "the TLS library cannot be set up"))?;
    let builder = match config.tls {
        TlsMode::VerifyFull => builder.with_root_certificates(roots(config)?),
        TlsMode::Disable | TlsMode::Prefer | TlsMode::Require => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider))),
    };
    let client_config = match &config.client_certificate {
        None => builder.with_no_client_auth(),
        Some(pem) => {
            let chain = CertificateDer::pem_slice_iter(pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .ok()
                .filter(|chain| !chain.is_empty())
                .ok_or_else(|| {
                    ConnectorError::config("config.client_certificate", "is not a PEM certificate")
                })?;
            let key_pem = secrets
                .get("client_key")
                .map(Secret::expose)
                .ok_or_else(|| {
                    ConnectorError::config(
                        "secrets.client_key",
                        "a client certificate needs its private key",
                    )
                })?;
            let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|_| {
                ConnectorError::config("secrets.client_key", "is not a PEM private key")
            })?;
            builder.with_client_auth_cert(chain, key).map_err(|_| {
                ConnectorError::config(
                    "secrets.client_key",
                    "does not fit the client certificate, or its type is not supported",
                )
            })?
        }
    };
    Ok(Some(MakeRustlsConnect::new(client_config)))
}

/// The trusted roots for `verify-full`: `ca_certificate` when set, else the Mozilla roots.
fn roots(config: &PostgresConfig) -> Result<RootCertStore, ConnectorError> {
    let Some(pem) = &config.ca_certificate else {
        return Ok(RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        });
    };
    let mut store = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        let cert =
            cert.map_err(|_| ConnectorError::config("config.ca_certificate", "is not valid PEM"))?;
        store.add(cert).map_err(|_| {
            ConnectorError::config(
                "config.ca_certificate",
                "holds a certificate that cannot be used as a trust anchor",
            )
        })?;
    }
    if store.is_empty() {
        return Err(ConnectorError::config(
            "config.ca_certificate",
            "holds no certificate",
        ));
    }
    Ok(store)
}

/// For `prefer` and `require`: any certificate is accepted (the connection is encrypted against
/// passive listeners only), but the handshake signatures are still checked, so the peer must hold
/// the key of the certificate it shows.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Says in a few words why a TLS handshake failed, from rustls's error kind (never from text the
/// peer sent).
pub(crate) fn describe_tls_error(err: &rustls::Error) -> &'static str {
    use rustls::CertificateError as C;
    match err {
        rustls::Error::InvalidCertificate(cert) => match cert {
            C::UnknownIssuer => "the server's certificate is not signed by a trusted authority",
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                "the server's certificate does not match the host name"
            }
            C::Expired | C::ExpiredContext { .. } => "the server's certificate has expired",
            C::NotValidYet | C::NotValidYetContext { .. } => {
                "the server's certificate is not valid yet"
            }
            C::Revoked => "the server's certificate is revoked",
            _ => "the server's certificate is invalid",
        },
        rustls::Error::NoCertificatesPresented => "the server presented no certificate",
        rustls::Error::AlertReceived(_) => {
            "the server ended the handshake (it may want a different client certificate or TLS version)"
        }
        rustls::Error::PeerIncompatible(_) => {
            "the server and Lockstep have no TLS version or cipher suite in common"
        }
        _ => "the handshake failed",
    }
}

/// The rustls error somewhere in `err`'s chain of causes (also inside I/O errors, where
/// tokio-rustls puts it).
pub(crate) fn find_rustls_error<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a rustls::Error> {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<rustls::Error>() {
            return Some(found);
        }
        if let Some(found) = e
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Some(found);
        }
        current = e.source();
    }
    None
}

/// The first I/O error in `err`'s chain of causes.
pub(crate) fn find_io_error<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a std::io::Error> {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<std::io::Error>() {
            return Some(found);
        }
        current = e.source();
    }
    None
}
