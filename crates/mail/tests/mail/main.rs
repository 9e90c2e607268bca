//! The crate's one integration-test binary: each mailer as a caller uses it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stderr
)]

mod memory;
mod outbox;
mod smtp;

use lockstep_mail::Message;

/// A recipient and body that must never appear in a log line.
const SECRET_ADDRESS: &str = "alice.secret@example.org";
const SECRET_LINK: &str = "https://hub.example.com/reset?token=s3cr3t-t0ken";

fn reset_message() -> Message {
    Message {
        to: SECRET_ADDRESS.to_owned(),
        subject: "Reset your Lockstep password".to_owned(),
        body: format!("Hello,\n\nopen {SECRET_LINK} to choose a new password.\n"),
    }
}

/// Panics if `text` shows personal data or secrets from [`reset_message`].
fn assert_no_secrets(text: &str) {
    for secret in [SECRET_ADDRESS, "alice.secret", SECRET_LINK, "s3cr3t-t0ken"] {
        assert!(!text.contains(secret), "{secret:?} leaked in {text:?}");
    }
}

/// The error's message and every source's message, as a log line with `{:#}` would show them.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = format!("{error} / {error:?}");
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(&format!(" / {inner} / {inner:?}"));
        source = inner.source();
    }
    text
}

#[test]
fn message_debug_shows_the_subject_only() {
    let debug = format!("{:?}", reset_message());
    assert!(debug.contains("Reset your Lockstep password"), "{debug}");
    assert_no_secrets(&debug);
}

/// A body as the reader sees it: mail uses CRLF line ends and may add blank lines at the end.
fn plain(body: &str) -> String {
    body.replace("\r\n", "\n").trim_end().to_owned()
}
