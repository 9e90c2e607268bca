//! The real server over TLS, spoken to in HTTP/2: a body over the limit is answered 413
//! problem+json — whether its length is declared or it just grows — and never a stream reset;
//! and in HTTP/1.1 by a client that sends its whole body before it reads the answer.

use super::*;

/// Serves `app` over TLS (the self-signed certificate the binary makes) on a random port and
/// answers its address and an HTTP/2-only client that trusts it.
async fn serve_tls(app: Router) -> (String, reqwest::Client, tempfile::TempDir, Vec<u8>) {
    lockstep_server::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let files = lockstep_server::tls::ensure_self_signed(dir.path()).unwrap();
    let config = lockstep_server::tls::server_config(&files).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = axum_server::from_tcp_rustls(
        listener,
        axum_server::tls_rustls::RustlsConfig::from_config(config),
    )
    .unwrap();
    tokio::spawn(server.serve(app.into_make_service_with_connect_info::<std::net::SocketAddr>()));
    let ca = std::fs::read(files.ca.unwrap()).unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
        .http2_prior_knowledge()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .unwrap();
    (format!("https://127.0.0.1:{port}"), client, dir, ca)
}

async fn assert_too_large(response: Result<reqwest::Response, reqwest::Error>, what: &str) {
    let response = match response {
        Ok(response) => response,
        Err(err) => panic!("{what}: no answer over HTTP/2: {err:?}"),
    };
    assert_eq!(response.version(), reqwest::Version::HTTP_2, "{what}");
    assert_eq!(response.status(), 413, "{what}");
    assert_eq!(
        response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json"),
        "{what}"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "urn:lockstep:problem:too-large", "{what}");
}

#[tokio::test]
async fn over_http2_an_oversized_body_is_413_problem_json_not_a_stream_reset() {
    let f = unsealed_hub().await;
    let (base, client, _dir, _ca) = serve_tls(f.app.clone()).await;
    let big = vec![b' '; 3 << 20];

    // Declared length over the limit: refused before the body is read.
    let declared = client
        .post(format!("{base}/api/v1/auth/login"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(big.clone())
        .send()
        .await;
    assert_too_large(declared, "declared length").await;

    // No length: the body grows past the limit while the handler reads it.
    let chunks = big
        .chunks(64 * 1024)
        .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
        .collect::<Vec<_>>();
    let streamed = client
        .post(format!("{base}/api/v1/auth/login"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await;
    assert_too_large(streamed, "body without length").await;

    // Refused before the body is read for another reason (no credentials): still an answer.
    let early = client
        .post(format!("{base}/api/v1/me/tokens"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(vec![b' '; 900 * 1024])
        .send()
        .await
        .expect("an answer over HTTP/2");
    assert_eq!(early.status(), 401);

    // And the connection still serves a small request afterwards.
    let health = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn over_http1_a_client_that_sends_its_whole_body_first_reads_its_413() {
    let f = unsealed_hub().await;
    let (base, _client, _dir, ca) = serve_tls(f.app.clone()).await;
    let port: u16 = base.rsplit(':').next().unwrap().parse().unwrap();
    // as Python's `requests` does: the whole body, then the answer
    let answer = tokio::task::spawn_blocking(move || send_whole_body_then_read(port, &ca, 3 << 20))
        .await
        .unwrap()
        .unwrap_or_else(|err| panic!("the connection closed before the answer was read: {err}"));
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("content-type: application/problem+json"),
        "{answer}"
    );
    assert!(
        answer.contains("urn:lockstep:problem:too-large"),
        "{answer}"
    );
}

/// Sends a POST with a `size`-byte body over HTTP/1.1 and TLS, all of it, and only then reads
/// the answer (its head and whatever of its body came before the connection closed).
fn send_whole_body_then_read(port: u16, ca: &[u8], size: usize) -> std::io::Result<String> {
    use rustls_pki_types::pem::PemObject as _;
    use std::io::{Read as _, Write as _};
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_slice_iter(ca) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let connection = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let socket = std::net::TcpStream::connect(("127.0.0.1", port))?;
    socket.set_read_timeout(Some(std::time::Duration::from_secs(30)))?;
    socket.set_write_timeout(Some(std::time::Duration::from_secs(30)))?;
    let mut tls = rustls::StreamOwned::new(connection, socket);
    let head = format!(
        "POST /api/v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Content-Type: application/json\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n"
    );
    tls.write_all(head.as_bytes())?;
    tls.write_all(&vec![b' '; size])?;
    tls.flush()?;
    let mut answer = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    loop {
        match tls.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buffer[..n]),
            Err(_) if !answer.is_empty() => break,
            Err(err) => return Err(err),
        }
    }
    Ok(String::from_utf8_lossy(&answer).into_owned())
}
