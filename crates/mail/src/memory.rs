//! A mailer that keeps messages in memory, for tests in other crates.

use std::fmt;
use std::sync::{Mutex, PoisonError};

use crate::message::parse_mailbox;
use crate::{MailError, Mailer, Message, SendFuture};

/// Keeps every message it is given; [`MemoryMailer::messages`] returns them in sending order.
///
/// Like the real mailers it refuses a recipient that is not an e-mail address
/// ([`MailError::InvalidAddress`]), and then keeps nothing.
#[derive(Default)]
pub struct MemoryMailer {
    messages: Mutex<Vec<Message>>,
}

impl MemoryMailer {
    /// An empty mailer.
    pub fn new() -> Self {
        Self::default()
    }

    /// The messages sent so far, oldest first.
    pub fn messages(&self) -> Vec<Message> {
        self.messages
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl fmt::Debug for MemoryMailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self
            .messages
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        f.debug_struct("MemoryMailer")
            .field("messages", &count)
            .finish()
    }
}

impl Mailer for MemoryMailer {
    fn send<'a>(&'a self, message: Message) -> SendFuture<'a> {
        Box::pin(async move {
            parse_mailbox(&message.to)?;
            self.messages
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(message);
            Ok::<(), MailError>(())
        })
    }
}
