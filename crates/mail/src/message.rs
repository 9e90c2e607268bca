//! The message callers hand to a mailer, and its rendering into an RFC 5322 message.

use std::fmt;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, SinglePart};

use crate::MailError;

/// One message. The body is plain text (UTF-8).
///
/// `Debug` prints the subject only: the recipient is personal data and the body may hold a
/// secret link.
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    /// The recipient, `user@example.com` or `Name <user@example.com>`.
    pub to: String,
    /// The subject line.
    pub subject: String,
    /// The plain-text body.
    pub body: String,
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// Parses a sender or recipient (`user@example.com` or `Name <user@example.com>`).
pub(crate) fn parse_mailbox(address: &str) -> Result<Mailbox, MailError> {
    address
        .trim()
        .parse::<Mailbox>()
        .map_err(|_| MailError::InvalidAddress)
}

/// Builds the RFC 5322 message: From, To, Subject, Date, Message-ID, MIME-Version and a
/// `text/plain; charset=utf-8` body. Header values are encoded by lettre, so a subject cannot
/// inject headers.
pub(crate) fn render(from: &Mailbox, message: &Message) -> Result<lettre::Message, MailError> {
    let to = parse_mailbox(&message.to)?;
    let message_id = format!("<{}@{}>", uuid::Uuid::now_v7(), from.email.domain());
    lettre::Message::builder()
        .from(from.clone())
        .to(to)
        .subject(message.subject.as_str())
        .message_id(Some(message_id))
        .singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_PLAIN)
                .body(message.body.clone()),
        )
        .map_err(|_| MailError::InvalidAddress)
}
