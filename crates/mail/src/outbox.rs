//! The embedded default: each message becomes an RFC 5322 `.eml` file in an outbox directory.

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use lettre::message::Mailbox;
use time::OffsetDateTime;
use time::macros::format_description;

use crate::message::{parse_mailbox, render};
use crate::{MailError, Mailer, Message, SendFuture};

/// Writes each message as `<UTC timestamp>-<uuid v7>.eml` into a directory.
///
/// The directory is created with mode 0700 and each file with mode 0600: the files hold secret
/// links. A file appears under its final name only once it is complete (it is written under a
/// hidden temporary name and renamed), so a reader watching the directory never sees half a
/// message. File names sort by sending time.
pub struct OutboxMailer {
    dir: PathBuf,
    from: Mailbox,
}

impl OutboxMailer {
    /// A mailer writing into `dir` (created if missing) with `from` as the sender.
    ///
    /// Fails with [`MailError::InvalidAddress`] if `from` is not an e-mail address and with
    /// [`MailError::Io`] if the directory cannot be created.
    pub fn new(dir: PathBuf, from: &str) -> Result<Self, MailError> {
        let from = parse_mailbox(from)?;
        create_private_dir(&dir).map_err(MailError::Io)?;
        Ok(Self { dir, from })
    }

    /// The directory the messages are written to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl fmt::Debug for OutboxMailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboxMailer")
            .field("dir", &self.dir)
            .field("from", &self.from.to_string())
            .finish()
    }
}

impl Mailer for OutboxMailer {
    fn send<'a>(&'a self, message: Message) -> SendFuture<'a> {
        Box::pin(async move {
            let bytes = render(&self.from, &message)?.formatted();
            let name = file_name(OffsetDateTime::now_utc(), uuid::Uuid::now_v7())?;
            let dir = self.dir.clone();
            tokio::task::spawn_blocking(move || write_message(&dir, &name, &bytes))
                .await
                .map_err(|join| MailError::Io(io::Error::other(join)))?
                .map_err(MailError::Io)
        })
    }

    /// The outbox is a folder on the hub: nobody but the operator reads it.
    fn reaches_recipient(&self) -> bool {
        false
    }
}

/// `20250131T235959Z-<uuid v7>.eml`.
fn file_name(now: OffsetDateTime, id: uuid::Uuid) -> Result<String, MailError> {
    let stamp = now
        .format(format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .map_err(|e| MailError::Io(io::Error::other(e)))?;
    Ok(format!("{stamp}-{id}.eml"))
}

fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

fn write_message(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    // The directory may have been removed since the mailer was built.
    create_private_dir(dir)?;
    let temporary = dir.join(format!(".{name}.tmp"));
    let written = write_new_private_file(&temporary, bytes)
        .and_then(|()| fs::rename(&temporary, dir.join(name)));
    if written.is_err() {
        // Best effort: the original error is the one worth reporting.
        let _ = fs::remove_file(&temporary);
    }
    written
}

fn write_new_private_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn file_names_sort_by_time_and_end_in_eml() {
        let id = uuid::Uuid::nil();
        let name = file_name(time::macros::datetime!(2025-01-31 23:59:59 UTC), id).unwrap();
        assert_eq!(
            name,
            "20250131T235959Z-00000000-0000-0000-0000-000000000000.eml"
        );
    }
}
