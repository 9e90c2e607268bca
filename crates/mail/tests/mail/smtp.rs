//! SmtpMailer: URL forms, secrecy, and a round trip through a real SMTP server (aiosmtpd).

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lockstep_mail::{MailError, Mailer, SmtpMailer};
use mail_parser::MessageParser;

use crate::{SECRET_ADDRESS, assert_no_secrets, error_chain, plain, reset_message};

const FROM: &str = "Lockstep <hub@lockstep.example>";

#[test]
fn from_url_accepts_the_documented_forms() {
    for url in [
        "smtp://user:pass@mail.example.com:587",
        "smtp://mail.example.com",
        "smtps://user:pass@mail.example.com:465",
        "smtps://mail.example.com",
        "smtp://127.0.0.1:2525?tls=none",
        "smtp://localhost:2525?tls=none",
    ] {
        if let Err(error) = SmtpMailer::from_url(url, FROM) {
            panic!("{url} was refused: {error:?}");
        }
    }
}

#[test]
fn from_url_shows_what_it_parsed_but_never_the_password() {
    let mailer =
        SmtpMailer::from_url("smtps://mailer%40hub:hunter2%21@mail.example.com", FROM).unwrap();
    let debug = format!("{mailer:?}");
    for part in ["mail.example.com", "465", "ImplicitTls", "mailer@hub"] {
        assert!(debug.contains(part), "{part} missing from {debug}");
    }
    assert!(!debug.contains("hunter2"), "{debug}");

    let debug = format!(
        "{:?}",
        SmtpMailer::from_url("smtp://u:hunter2@mail.example.com", FROM).unwrap()
    );
    assert!(
        debug.contains("StartTls") && debug.contains("587"),
        "{debug}"
    );
    assert!(!debug.contains("hunter2"), "{debug}");
}

#[test]
fn from_url_refuses_plaintext_to_a_remote_host() {
    for url in [
        "smtp://mail.example.com:25?tls=none",
        "smtp://user:pass@192.0.2.1:25?tls=none",
        "smtp://localhost.example.com:25?tls=none",
    ] {
        assert!(
            matches!(
                SmtpMailer::from_url(url, FROM),
                Err(MailError::InvalidSmtpUrl)
            ),
            "{url}"
        );
    }
}

#[test]
fn from_url_refuses_garbage_without_echoing_it() {
    for url in [
        "",
        "hunter2",
        "http://user:hunter2@mail.example.com",
        "smtp://",
        "smtp://user:hunter2@mail.example.com?tls=maybe",
        "smtps://user:hunter2@mail.example.com?tls=none",
        "smtp://user:hunter2@mail.example.com:notaport",
    ] {
        let error = SmtpMailer::from_url(url, FROM).unwrap_err();
        assert!(
            matches!(error, MailError::InvalidSmtpUrl),
            "{url}: {error:?}"
        );
        assert!(!error_chain(&error).contains("hunter2"), "{url}");
    }
}

#[test]
fn from_url_refuses_a_bad_sender() {
    assert!(matches!(
        SmtpMailer::from_url("smtps://mail.example.com", "no-at-sign"),
        Err(MailError::InvalidAddress)
    ));
}

/// A port nothing listens on right now.
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn an_unreachable_relay_is_a_send_error_without_personal_data() {
    let port = free_port();
    let mailer = SmtpMailer::from_url(&format!("smtp://127.0.0.1:{port}?tls=none"), FROM).unwrap();
    let error = mailer.send(reset_message()).await.unwrap_err();
    assert!(matches!(error, MailError::Send(_)), "{error:?}");
    assert_no_secrets(&error_chain(&error));
}

/// `python3 -m aiosmtpd` storing every message it accepts in a Maildir; killed on drop.
struct SmtpSink {
    child: Child,
    port: u16,
    maildir: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmtpSink {
    /// Starts the sink, or returns `None` (after saying why) when aiosmtpd is not installed.
    fn start() -> Option<Self> {
        let installed = Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !installed {
            eprintln!(
                "SKIPPED: `python3 -c 'import aiosmtpd'` failed; `pip install aiosmtpd` to run \
                 the SMTP round trip"
            );
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let maildir = dir.path().join("maildir");
        let port = free_port();
        let child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let sink = Self {
            child,
            port,
            maildir,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "aiosmtpd did not start on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(sink)
    }

    /// The raw messages received so far.
    fn received(&self) -> Vec<Vec<u8>> {
        let new = self.maildir.join("new");
        if !Path::new(&new).exists() {
            return Vec::new();
        }
        std::fs::read_dir(new)
            .unwrap()
            .map(|entry| std::fs::read(entry.unwrap().path()).unwrap())
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn smtp_round_trip_through_a_real_server() {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    let url = format!("smtp://127.0.0.1:{}?tls=none", sink.port);
    let mailer: Box<dyn Mailer> = Box::new(SmtpMailer::from_url(&url, FROM).unwrap());

    mailer.send(reset_message()).await.unwrap();

    let received = sink.received();
    assert_eq!(received.len(), 1);
    let parsed = MessageParser::default().parse(&received[0]).unwrap();
    // The envelope, as the server saw it.
    assert_eq!(
        parsed.header_raw("X-MailFrom").map(str::trim),
        Some("hub@lockstep.example")
    );
    assert_eq!(
        parsed.header_raw("X-RcptTo").map(str::trim),
        Some(SECRET_ADDRESS)
    );
    // The message itself.
    assert_eq!(
        parsed.from().unwrap().first().unwrap().address(),
        Some("hub@lockstep.example")
    );
    assert_eq!(
        parsed.to().unwrap().first().unwrap().address(),
        Some(SECRET_ADDRESS)
    );
    assert_eq!(parsed.subject(), Some("Reset your Lockstep password"));
    assert_eq!(
        plain(&parsed.body_text(0).unwrap()),
        plain(&reset_message().body)
    );
}

#[tokio::test]
async fn starttls_is_required_never_skipped() {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    // The sink offers no STARTTLS: a mailer that requires it must not fall back to plaintext.
    let url = format!("smtp://user:hunter2@localhost:{}", sink.port);
    let mailer = SmtpMailer::from_url(&url, FROM).unwrap();

    let error = mailer.send(reset_message()).await.unwrap_err();

    assert!(matches!(error, MailError::Send(_)), "{error:?}");
    let chain = error_chain(&error);
    assert_no_secrets(&chain);
    assert!(!chain.contains("hunter2"), "{chain}");
    assert!(
        chain.contains("STARTTLS"),
        "failed for another reason: {chain}"
    );
    assert!(sink.received().is_empty());
}
