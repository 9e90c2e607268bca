//! Lockstep's outgoing e-mail (password reset links, invitations).
//!
//! Callers hold a [`Mailer`] trait object and never know where a message goes:
//! - [`SmtpMailer`] hands it to an SMTP relay (`--smtp-url`), always over TLS unless the relay is
//!   on the loopback interface;
//! - [`OutboxMailer`], the embedded default, writes it as an RFC 5322 `.eml` file into a directory
//!   (`DATA/outbox/`) so a local user still gets it;
//! - [`MemoryMailer`] keeps it in memory, for other crates' tests.
//!
//! Messages carry personal data and secret links: no `Debug` or `Display` in this crate prints a
//! recipient address, a body or an SMTP password.

mod error;
mod memory;
mod message;
mod outbox;
mod smtp;

use std::future::Future;
use std::pin::Pin;

pub use error::MailError;
pub use memory::MemoryMailer;
pub use message::Message;
pub use outbox::OutboxMailer;
pub use smtp::SmtpMailer;

/// The future a [`Mailer`] returns; boxed so that `dyn Mailer` works.
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<(), MailError>> + Send + 'a>>;

/// Somewhere a [`Message`] can be sent.
pub trait Mailer: Send + Sync + std::fmt::Debug {
    /// Sends one message. Resolves once the message is handed over (accepted by the relay,
    /// written to disk, stored in memory).
    fn send<'a>(&'a self, message: Message) -> SendFuture<'a>;

    /// Whether a sent message reaches its recipient's mailbox (a mail server), rather than a
    /// folder on the hub that only its operator reads ([`OutboxMailer`]). Secret links go only
    /// to their recipient where this is `true`; otherwise the hub may show them once to whoever
    /// sent them.
    fn reaches_recipient(&self) -> bool {
        true
    }
}
