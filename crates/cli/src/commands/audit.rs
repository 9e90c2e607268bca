//! `lockstep audit export|verify`.

use crate::args::AuditCommand;
use crate::client::ApiClient;
use anyhow::Context;
use lockstep_ledger::{ExportedLedger, Finding, verify_export};
use std::io::Write;

pub async fn run(command: AuditCommand) -> anyhow::Result<()> {
    match command {
        AuditCommand::Export { auth, output } => {
            let token = match auth.token.clone() {
                Some(token) if !token.trim().is_empty() => token.trim().to_owned(),
                _ => super::read_secret("Administrator token (session or API token): ")?,
            };
            let client = ApiClient::new(&auth.client, Some(token))?;
            let ledger: ExportedLedger = client.get("/api/v1/audit/ledger/export").await?;
            let json = serde_json::to_vec_pretty(&ledger)?;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let mut file = options
                .open(&output)
                .with_context(|| format!("cannot write {}", output.display()))?;
            file.write_all(&json)?;
            file.sync_all()?;
            println!(
                "Exported {} entries and {} checkpoints to {}.",
                ledger.entries.len(),
                ledger.checkpoints.len(),
                output.display()
            );
            Ok(())
        }
        AuditCommand::Verify { export } => {
            let text = std::fs::read_to_string(&export)
                .with_context(|| format!("cannot read {}", export.display()))?;
            let ledger: ExportedLedger = serde_json::from_str(&text)
                .map_err(|e| anyhow::anyhow!("{} is not a ledger export: {e}", export.display()))?;
            match verify_export(&ledger) {
                Ok(verified) => {
                    println!(
                        "OK: {} entries; {} checkpoints verified up to size {}; {} entries after the latest checkpoint.",
                        verified.size,
                        verified.checkpoints,
                        verified.checked_size,
                        verified.unchecked_tail
                    );
                    Ok(())
                }
                Err(findings) => {
                    for finding in &findings {
                        println!("FAILED: {}", describe(finding));
                    }
                    anyhow::bail!("the ledger does not verify ({} finding(s))", findings.len())
                }
            }
        }
    }
}

fn describe(finding: &Finding) -> String {
    match finding {
        Finding::BadVerifierKey => "the verifier key cannot be read".to_owned(),
        Finding::BadSignature { checkpoint } => {
            format!("checkpoint {checkpoint} has no valid signature")
        }
        Finding::RootMismatch {
            checkpoint,
            size,
            first_bad_entry,
        } => match first_bad_entry {
            Some(entry) => format!(
                "checkpoint {checkpoint} (size {size}) does not match the entries; the first bad entry is at position {entry}"
            ),
            None => format!("checkpoint {checkpoint} (size {size}) does not match the entries"),
        },
        Finding::SizeBeyondEntries { checkpoint, size } => {
            format!(
                "checkpoint {checkpoint} covers {size} entries, more than the export holds (entries were removed)"
            )
        }
        Finding::NotAppendOnly { checkpoint } => {
            format!("checkpoint {checkpoint} is not an extension of the one before it")
        }
        Finding::WrongOrigin { checkpoint } => {
            format!("checkpoint {checkpoint} is for another ledger")
        }
        Finding::RunningRootCount {
            entries,
            running_roots,
        } => {
            format!("{entries} entries but {running_roots} running roots")
        }
        Finding::RunningRootMismatch { first_bad_entry } => {
            format!(
                "the entries were changed: the first bad entry is at position {first_bad_entry}"
            )
        }
    }
}
