//! OutboxMailer: one private, parseable `.eml` file per message.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use lockstep_mail::{MailError, Mailer, Message, OutboxMailer};
use mail_parser::MessageParser;

use crate::{SECRET_ADDRESS, SECRET_LINK, assert_no_secrets, error_chain, plain, reset_message};

const FROM: &str = "Lockstep <hub@lockstep.example>";

fn eml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    files
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn outbox_writes_one_private_parseable_eml_per_message() {
    let data = tempfile::tempdir().unwrap();
    let outbox = data.path().join("outbox");
    let mailer = OutboxMailer::new(outbox.clone(), FROM).unwrap();
    assert_eq!(mailer.dir(), outbox);
    assert_eq!(mode(&outbox), 0o700);

    mailer.send(reset_message()).await.unwrap();

    let files = eml_files(&outbox);
    assert_eq!(files.len(), 1, "{files:?}");
    let file = &files[0];
    let name = file.file_name().unwrap().to_str().unwrap();
    // <yyyymmddThhmmssZ>-<uuid v7>.eml
    let (stamp, rest) = name.split_once('-').unwrap();
    assert_eq!(stamp.len(), 16, "{name}");
    assert!(
        stamp.ends_with('Z') && stamp.as_bytes()[8] == b'T',
        "{name}"
    );
    let id = uuid::Uuid::parse_str(rest.strip_suffix(".eml").unwrap()).unwrap();
    assert_eq!(id.get_version_num(), 7, "{name}");
    assert_eq!(mode(file), 0o600);

    let raw = fs::read(file).unwrap();
    let parsed = MessageParser::default().parse(&raw).unwrap();
    let from = parsed.from().unwrap().first().unwrap();
    assert_eq!(from.address(), Some("hub@lockstep.example"));
    assert_eq!(from.name(), Some("Lockstep"));
    assert_eq!(
        parsed.to().unwrap().first().unwrap().address(),
        Some(SECRET_ADDRESS)
    );
    assert_eq!(parsed.subject(), Some("Reset your Lockstep password"));
    assert!(parsed.date().is_some());
    assert!(parsed.message_id().unwrap().ends_with("@lockstep.example"));
    assert_eq!(
        plain(&parsed.body_text(0).unwrap()),
        plain(&reset_message().body)
    );
    assert!(
        String::from_utf8_lossy(&raw).contains("\r\n\r\n"),
        "RFC 5322 uses CRLF"
    );
}

#[tokio::test]
async fn two_messages_make_two_files() {
    let data = tempfile::tempdir().unwrap();
    let mailer = OutboxMailer::new(data.path().join("outbox"), FROM).unwrap();
    mailer.send(reset_message()).await.unwrap();
    let invitation = Message {
        subject: "You are invited".to_owned(),
        ..reset_message()
    };
    mailer.send(invitation).await.unwrap();

    let files = eml_files(mailer.dir());
    assert_eq!(files.len(), 2, "{files:?}");
    // Names sort in sending order.
    let subjects: Vec<String> = files
        .iter()
        .map(|file| {
            let raw = fs::read(file).unwrap();
            let parsed = MessageParser::default().parse(&raw).unwrap();
            parsed.subject().unwrap().to_owned()
        })
        .collect();
    assert_eq!(
        subjects,
        ["Reset your Lockstep password", "You are invited"]
    );
}

#[tokio::test]
async fn non_ascii_text_survives_and_a_subject_cannot_add_headers() {
    let data = tempfile::tempdir().unwrap();
    let mailer = OutboxMailer::new(data.path().join("outbox"), FROM).unwrap();
    let message = Message {
        to: "Zoë Ünal <zoe@example.org>".to_owned(),
        subject: "Grüße\r\nBcc: eve@evil.example".to_owned(),
        body: format!("Grüße, Zoë — 密码 {SECRET_LINK}\n{}\n", "x".repeat(200)),
    };
    mailer.send(message.clone()).await.unwrap();

    let files = eml_files(mailer.dir());
    let raw = fs::read(&files[0]).unwrap();
    assert!(raw.is_ascii(), "headers and body are transfer-encoded");
    let parsed = MessageParser::default().parse(&raw).unwrap();
    assert!(parsed.bcc().is_none());
    assert!(!String::from_utf8_lossy(&raw).contains("\r\nBcc:"));
    let to = parsed.to().unwrap().first().unwrap();
    assert_eq!(to.address(), Some("zoe@example.org"));
    assert_eq!(to.name(), Some("Zoë Ünal"));
    assert!(parsed.subject().unwrap().starts_with("Grüße"));
    assert_eq!(plain(&parsed.body_text(0).unwrap()), plain(&message.body));
}

#[tokio::test]
async fn bad_recipient_is_refused_and_nothing_is_written() {
    let data = tempfile::tempdir().unwrap();
    let mailer = OutboxMailer::new(data.path().join("outbox"), FROM).unwrap();
    for to in [
        "",
        "alice.secret",
        "alice.secret@",
        "@example.org",
        "alice.secret@example.org, bob@example.org",
        "alice.secret@example.org\r\nBcc: eve@evil.example",
    ] {
        let message = Message {
            to: to.to_owned(),
            ..reset_message()
        };
        let error = mailer.send(message).await.unwrap_err();
        assert!(
            matches!(error, MailError::InvalidAddress),
            "{to:?}: {error:?}"
        );
        assert_no_secrets(&error_chain(&error));
    }
    assert!(eml_files(mailer.dir()).is_empty());
}

#[tokio::test]
async fn bad_sender_is_refused_when_the_mailer_is_built() {
    let data = tempfile::tempdir().unwrap();
    let result = OutboxMailer::new(data.path().join("outbox"), "hub at lockstep");
    assert!(matches!(result, Err(MailError::InvalidAddress)));
}

#[tokio::test]
async fn an_outbox_deleted_while_running_is_created_again() {
    let data = tempfile::tempdir().unwrap();
    let mailer = OutboxMailer::new(data.path().join("outbox"), FROM).unwrap();
    fs::remove_dir(mailer.dir()).unwrap();
    mailer.send(reset_message()).await.unwrap();
    assert_eq!(eml_files(mailer.dir()).len(), 1);
    assert_eq!(mode(mailer.dir()), 0o700);
}

#[tokio::test]
async fn write_failures_are_io_errors_without_personal_data() {
    let data = tempfile::tempdir().unwrap();
    let outbox = data.path().join("outbox");
    let mailer = OutboxMailer::new(outbox.clone(), FROM).unwrap();
    // Replace the directory by a file: nothing can be written below it.
    fs::remove_dir(&outbox).unwrap();
    fs::write(&outbox, b"not a directory").unwrap();

    let error = mailer.send(reset_message()).await.unwrap_err();
    assert!(matches!(error, MailError::Io(_)), "{error:?}");
    assert_no_secrets(&error_chain(&error));
    assert_no_secrets(&format!("{mailer:?}"));
}

#[test]
fn every_error_message_is_free_of_personal_data() {
    let errors = [
        MailError::InvalidAddress,
        MailError::InvalidSmtpUrl,
        MailError::Send(SECRET_ADDRESS.into()),
        MailError::Io(std::io::Error::other(SECRET_LINK)),
    ];
    for error in errors {
        // The detail stays in `source()`, which a caller can choose not to log.
        let text = error.to_string();
        assert!(!text.is_empty());
        assert_no_secrets(&text);
    }
}

/// The hub and its mailer agree on addresses: every address `EmailAddress` (the one parser
/// invitations and accounts use) accepts is one the mailer renders and writes, and the ones the
/// mailer refuses are refused there first.
#[tokio::test]
async fn every_address_the_hub_accepts_is_one_it_can_mail() {
    let data = tempfile::tempdir().unwrap();
    let mailer = OutboxMailer::new(data.path().join("outbox"), FROM).unwrap();
    let corpus = [
        "ada@example.com",
        "Ada.Lovelace+hub@Mail.Example.co.uk",
        "o'brien@example.ie",
        "x_y-z@sub-domain.example",
        "a!#$%&*/=?^`{|}~@example.com",
        "jürgen@müller.example",
        "\"><script>alert(1)</script>@example.com",
        "a>b@x.example",
        "a<b@x.example",
        "x@[127.0.0.1]",
        "x@[IPv6:::1]",
        "\"quoted\"@example.com",
        "\"a b\"@example.com",
        "Ada <ada@example.com>",
        "a..b@example.com",
        "ada.@example.com",
        "a(b)@example.com",
        "a,b@example.com",
        "a:b@example.com",
        "a\\b@example.com",
        "ada@-example.com",
        "ada@example",
        "ada@localhost",
        "a@b@example.com",
    ];
    let mut accepted = 0;
    for address in corpus {
        let Ok(email) = lockstep_domain::EmailAddress::parse(address) else {
            continue;
        };
        accepted += 1;
        let message = Message {
            to: email.as_str().to_owned(),
            subject: "Invitation".to_owned(),
            body: "Hello".to_owned(),
        };
        let sent = mailer.send(message).await;
        assert!(
            sent.is_ok(),
            "the hub accepts {address:?} but cannot mail it: {sent:?}"
        );
    }
    assert_eq!(accepted, 6, "the corpus's good addresses were refused");
    for refused in [
        "\"><script>alert(1)</script>@example.com",
        "a>b@x.example",
        "x@[127.0.0.1]",
    ] {
        assert!(
            lockstep_domain::EmailAddress::parse(refused).is_err(),
            "{refused:?}"
        );
    }
}
