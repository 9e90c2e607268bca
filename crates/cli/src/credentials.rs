//! Printing the one-time credentials of a new vault, and the `--dev` file that keeps them.

use crate::args::Format;
use anyhow::Context;
use lockstep_app::{Credentials, UnsealKey};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The `--format json` output of `vault init`, and the `--dev` file's content.
#[derive(Serialize, Deserialize)]
pub struct CredentialsJson {
    pub unseal_keys: Vec<String>,
    pub key_threshold: u8,
    pub operator_token: String,
}

impl CredentialsJson {
    fn from(credentials: &Credentials) -> CredentialsJson {
        CredentialsJson {
            unseal_keys: credentials
                .unseal_keys
                .iter()
                .map(|k| k.expose().to_owned())
                .collect(),
            key_threshold: credentials.key_threshold,
            operator_token: credentials.operator_token.expose().to_owned(),
        }
    }
}

impl Drop for CredentialsJson {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.unseal_keys.iter_mut().for_each(Zeroize::zeroize);
        self.operator_token.zeroize();
    }
}

/// Prints the shares and the operator token, once, to standard output.
pub fn print(credentials: &Credentials, format: Format) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match format {
        Format::Json => {
            serde_json::to_writer(&mut out, &CredentialsJson::from(credentials))?;
            writeln!(out)?;
        }
        Format::Text => {
            let n = credentials.unseal_keys.len();
            let k = credentials.key_threshold;
            writeln!(
                out,
                "Lockstep's vault is initialized. These are shown this once and stored nowhere:"
            )?;
            writeln!(
                out,
                "give each unseal key to a different person, keep the operator token in a password manager."
            )?;
            writeln!(out)?;
            for (i, key) in credentials.unseal_keys.iter().enumerate() {
                writeln!(out, "  Unseal key {}: {}", i + 1, key.expose())?;
            }
            writeln!(out)?;
            writeln!(
                out,
                "  Key threshold:  {k} of {n} {} the hub",
                crate::plural(n as u64, "key unseals", "keys unseal")
            )?;
            writeln!(
                out,
                "  Operator token: {}",
                credentials.operator_token.expose()
            )?;
            writeln!(out)?;
            let times = if k == 1 {
                "once".to_owned()
            } else {
                format!("{k} times")
            };
            writeln!(
                out,
                "After every restart the hub is sealed: run `lockstep vault unseal` {times}, one key each (or pipe the keys in, one per line)."
            )?;
        }
    }
    out.flush()?;
    Ok(())
}

/// Where `--dev` keeps the credentials.
pub fn dev_file(data: &Path) -> PathBuf {
    data.join("dev-unseal-keys.json")
}

/// `--dev` only: writes the credentials into the data directory (mode 0600).
pub fn save_dev(data: &Path, credentials: &Credentials) -> anyhow::Result<()> {
    let path = dev_file(data);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    serde_json::to_writer_pretty(&mut file, &CredentialsJson::from(credentials))?;
    file.sync_all()?;
    Ok(())
}

/// `--dev` only: reads the unseal keys saved by [`save_dev`].
pub fn load_dev_keys(data: &Path) -> anyhow::Result<Vec<UnsealKey>> {
    let path = dev_file(data);
    let text = zeroize::Zeroizing::new(std::fs::read_to_string(&path).with_context(|| {
        format!(
            "--dev needs {} (written when a data directory is first started with --dev); \
             this vault was initialized without it: unseal it with `lockstep vault unseal`",
            path.display()
        )
    })?);
    // serde's message could quote a key; say only that the file is not what we wrote.
    let saved: CredentialsJson = serde_json::from_str(&text)
        .map_err(|_| anyhow::anyhow!("{} is not a Lockstep dev keys file", path.display()))?;
    Ok(saved
        .unseal_keys
        .iter()
        .map(|k| UnsealKey::from_text(k))
        .collect())
}
