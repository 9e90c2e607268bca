//! The one error type of the crate; its messages never include an address, a body or a password.

/// Why a message could not be sent or a mailer not be built.
///
/// `Display` names the kind of failure only; details that cannot carry personal data (an I/O or
/// TLS error, an SMTP reply code) are in [`std::error::Error::source`].
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The recipient or sender is not a valid e-mail address.
    #[error("invalid e-mail address")]
    InvalidAddress,
    /// The SMTP URL is not one of the accepted forms.
    #[error(
        "invalid SMTP URL: expected smtp://user:password@host:port (STARTTLS), \
         smtps://user:password@host:port (implicit TLS), \
         or smtp://localhost:port?tls=none (loopback relays only)"
    )]
    InvalidSmtpUrl,
    /// The SMTP relay could not be reached or refused the message, or TLS could not be set up.
    #[error("SMTP transport failed")]
    Send(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The message could not be written to the outbox directory.
    #[error("writing the message to the outbox failed")]
    Io(#[source] std::io::Error),
}
