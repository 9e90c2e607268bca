//! Sending over SMTP (`--smtp-url`), with TLS required unless the relay is on loopback.

use std::fmt;
use std::net::IpAddr;

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use url::{Host, Url};

use crate::message::{parse_mailbox, render};
use crate::{MailError, Mailer, Message, SendFuture};

/// How the connection to the relay is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Security {
    /// `smtp://`: plain connection upgraded with STARTTLS; the upgrade is required.
    StartTls,
    /// `smtps://`: TLS from the first byte.
    ImplicitTls,
    /// `smtp://...?tls=none`: no TLS at all; only for relays on the loopback interface.
    None,
}

impl Security {
    fn default_port(self) -> u16 {
        match self {
            Self::StartTls => 587,
            Self::ImplicitTls => 465,
            Self::None => 25,
        }
    }
}

/// What an SMTP URL says, before any transport is built.
#[derive(PartialEq, Eq)]
struct SmtpUrl {
    host: String,
    port: u16,
    security: Security,
    /// User name and password, percent-decoded.
    credentials: Option<(String, String)>,
}

impl fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpUrl")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.credentials.as_ref().map(|(user, _)| user))
            .finish_non_exhaustive()
    }
}

impl SmtpUrl {
    /// Accepts exactly:
    /// - `smtp://[user:password@]host[:port]` (STARTTLS required, port 587 by default;
    ///   `?tls=required` may be spelled out),
    /// - `smtps://[user:password@]host[:port]` (implicit TLS, port 465 by default),
    /// - `smtp://[user:password@]host[:port]?tls=none` where host is `localhost` or a loopback
    ///   address (port 25 by default).
    fn parse(url: &str) -> Result<Self, MailError> {
        let url = Url::parse(url.trim()).map_err(|_| MailError::InvalidSmtpUrl)?;
        let mut tls = None;
        for (key, value) in url.query_pairs() {
            if key != "tls" || tls.is_some() {
                return Err(MailError::InvalidSmtpUrl);
            }
            tls = Some(value.into_owned());
        }
        let security = match (url.scheme(), tls.as_deref()) {
            ("smtp", None | Some("required")) => Security::StartTls,
            ("smtp", Some("none")) => Security::None,
            ("smtps", None) => Security::ImplicitTls,
            _ => return Err(MailError::InvalidSmtpUrl),
        };
        if !matches!(url.path(), "" | "/") || url.fragment().is_some() {
            return Err(MailError::InvalidSmtpUrl);
        }
        // `smtp` is not a scheme the URL standard knows, so an IPv4 host comes back as a
        // `Domain` and no host is lower-cased or checked: do both here.
        let ip = match url.host() {
            Some(Host::Domain(name)) => name.parse::<IpAddr>().ok(),
            Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            None => return Err(MailError::InvalidSmtpUrl),
        };
        let (host, loopback) = match (ip, url.host_str()) {
            (Some(ip), _) => (ip.to_string(), ip.is_loopback()),
            (None, Some(name)) if is_host_name(name) => {
                let name = name.to_ascii_lowercase();
                let loopback = name == "localhost";
                (name, loopback)
            }
            _ => return Err(MailError::InvalidSmtpUrl),
        };
        if security == Security::None && !loopback {
            return Err(MailError::InvalidSmtpUrl);
        }
        let port = match url.port() {
            Some(0) => return Err(MailError::InvalidSmtpUrl),
            Some(port) => port,
            None => security.default_port(),
        };
        let credentials = match (url.username(), url.password()) {
            ("", None) => None,
            (user, Some(password)) if !user.is_empty() => {
                Some((percent_decode(user)?, percent_decode(password)?))
            }
            // A user without a password (or the reverse) is a mistake, not "no login".
            _ => return Err(MailError::InvalidSmtpUrl),
        };
        Ok(Self {
            host,
            port,
            security,
            credentials,
        })
    }
}

/// Letters, digits, `-` and `.`: what a DNS name for a mail relay is made of.
fn is_host_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

fn percent_decode(part: &str) -> Result<String, MailError> {
    percent_encoding::percent_decode_str(part)
        .decode_utf8()
        .map(|decoded| decoded.into_owned())
        .map_err(|_| MailError::InvalidSmtpUrl)
}

/// Hands messages to an SMTP relay, one connection per message.
///
/// `Debug` shows the relay, the security mode and the user name, never the password.
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    host: String,
    port: u16,
    security: Security,
    username: Option<String>,
}

impl SmtpMailer {
    /// A mailer for the relay described by `url`, sending as `from`.
    ///
    /// Accepted URLs: `smtp://user:password@host:port` (STARTTLS, required),
    /// `smtps://user:password@host:port` (implicit TLS) and, for test relays on the loopback
    /// interface only, `smtp://localhost:port?tls=none`. User name and password are
    /// percent-decoded. Fails with [`MailError::InvalidSmtpUrl`] for anything else,
    /// [`MailError::InvalidAddress`] for a bad `from`, and [`MailError::Send`] if TLS cannot be
    /// set up (for example, no trusted root certificates on the system).
    pub fn from_url(url: &str, from: &str) -> Result<Self, MailError> {
        let from = parse_mailbox(from)?;
        let SmtpUrl {
            host,
            port,
            security,
            credentials,
        } = SmtpUrl::parse(url)?;
        let tls = match security {
            Security::None => Tls::None,
            Security::StartTls => Tls::Required(tls_parameters(&host)?),
            Security::ImplicitTls => Tls::Wrapper(tls_parameters(&host)?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.as_str())
            .port(port)
            .tls(tls);
        let username = credentials.as_ref().map(|(user, _)| user.clone());
        if let Some((user, password)) = credentials {
            builder = builder.credentials(Credentials::new(user, password));
        }
        Ok(Self {
            transport: builder.build(),
            from,
            host,
            port,
            security,
            username,
        })
    }
}

fn tls_parameters(host: &str) -> Result<TlsParameters, MailError> {
    TlsParameters::new(host.to_owned()).map_err(|e| MailError::Send(Box::new(e)))
}

impl fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl Mailer for SmtpMailer {
    fn send<'a>(&'a self, message: Message) -> SendFuture<'a> {
        Box::pin(async move {
            let email = render(&self.from, &message)?;
            self.transport
                .send(email)
                .await
                .map(|_response| ())
                .map_err(send_error)
        })
    }
}

/// Keeps lettre's error as the source unless it may quote the server's reply, which often
/// repeats the recipient address: then only the reply code is kept.
fn send_error(error: lettre::transport::smtp::Error) -> MailError {
    if error.is_transient() || error.is_permanent() || error.is_response() {
        MailError::Send(Box::new(SmtpRefusal {
            code: error.status().map(|code| code.to_string()),
            permanent: error.is_permanent(),
        }))
    } else {
        MailError::Send(Box::new(error))
    }
}

/// The relay answered with an error (or with something unreadable); its text is dropped.
#[derive(Debug)]
struct SmtpRefusal {
    code: Option<String>,
    permanent: bool,
}

impl fmt::Display for SmtpRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.code, self.permanent) {
            (Some(code), true) => write!(f, "the SMTP server refused with {code} (permanent)"),
            (Some(code), false) => write!(f, "the SMTP server refused with {code} (transient)"),
            (None, _) => f.write_str("the SMTP server sent an unexpected reply"),
        }
    }
}

impl std::error::Error for SmtpRefusal {}

#[cfg(test)]
#[allow(clippy::panic)]
mod tests;
