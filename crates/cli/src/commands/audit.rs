//! `lockstep audit export|verify`.

use crate::args::AuditCommand;
use crate::client::ApiClient;
use crate::plural;
use anyhow::Context;
use lockstep_ledger::{ExportedLedger, Finding, VerifiedLedger, verify_export, verify_structure};
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
            let (entries, checkpoints) =
                (ledger.entries.len() as u64, ledger.checkpoints.len() as u64);
            println!(
                "Exported {entries} {} and {checkpoints} {} to {}.",
                plural(entries, "entry", "entries"),
                plural(checkpoints, "checkpoint", "checkpoints"),
                output.display()
            );
            Ok(())
        }
        AuditCommand::Verify {
            export,
            data,
            database,
            organization,
        } => {
            let ledgers = match export {
                Some(export) => {
                    let text = std::fs::read_to_string(&export)
                        .with_context(|| format!("cannot read {}", export.display()))?;
                    let ledger: ExportedLedger = serde_json::from_str(&text).map_err(|e| {
                        anyhow::anyhow!("{} is not a ledger export: {e}", export.display())
                    })?;
                    vec![(ledger, Standing::Exported)]
                }
                None => stored_ledgers(data, database, organization).await?,
            };
            let mut failed = 0;
            for (ledger, standing) in &ledgers {
                let verified = match standing {
                    Standing::Exported | Standing::Live { checkpointed: true } => {
                        verify_export(ledger)
                    }
                    Standing::Live {
                        checkpointed: false,
                    }
                    | Standing::Deleted => verify_structure(ledger),
                };
                match verified {
                    Ok(verified) => println!("OK: {}", report(ledger, *standing, &verified)),
                    Err(findings) => {
                        failed += 1;
                        for finding in &findings {
                            println!("FAILED: {}: {}", ledger.origin, describe(finding));
                        }
                    }
                }
            }
            if failed > 0 {
                anyhow::bail!(
                    "{failed} of {} {} {} not verify",
                    ledgers.len(),
                    plural(ledgers.len() as u64, "ledger", "ledgers"),
                    if failed == 1 { "does" } else { "do" }
                );
            }
            Ok(())
        }
    }
}

/// What is known about a ledger's organization, which decides how far it can be verified.
#[derive(Clone, Copy, Debug)]
enum Standing {
    /// From an export file: always checkpointed and signed.
    Exported,
    /// A live organization's stored ledger, with or without a signed checkpoint yet.
    Live { checkpointed: bool },
    /// A deleted organization: its ledger stays, its key may be gone.
    Deleted,
}

fn report(ledger: &ExportedLedger, standing: Standing, verified: &VerifiedLedger) -> String {
    let organization = ledger
        .origin
        .strip_prefix("lockstep/audit/")
        .unwrap_or(&ledger.origin);
    let signed = lockstep_ledger::VerifyingKey::parse_vkey(&ledger.vkey).is_ok();
    match standing {
        Standing::Deleted => format!(
            "organization {organization}: deleted; {} {} and {} {} verified for structure{}.",
            verified.size,
            plural(verified.size, "entry", "entries"),
            verified.checkpoints,
            plural(verified.checkpoints as u64, "checkpoint", "checkpoints"),
            if signed && verified.checkpoints > 0 {
                ", signatures included"
            } else {
                ""
            }
        ),
        Standing::Live {
            checkpointed: false,
        } => format!(
            "organization {organization}: no checkpoint signed yet; {} {} verified for structure.",
            verified.size,
            plural(verified.size, "entry", "entries"),
        ),
        Standing::Exported | Standing::Live { checkpointed: true } => format!(
            "{}: {} {}; {} {} verified up to size {}; {} {} after the latest checkpoint.",
            ledger.origin,
            verified.size,
            plural(verified.size, "entry", "entries"),
            verified.checkpoints,
            plural(verified.checkpoints as u64, "checkpoint", "checkpoints"),
            verified.checked_size,
            verified.unchecked_tail,
            plural(verified.unchecked_tail, "entry", "entries"),
        ),
    }
}

/// The ledgers in a store, read directly: no unsealing, no keys.
async fn stored_ledgers(
    data: Option<std::path::PathBuf>,
    database: Option<String>,
    organization: Option<String>,
) -> anyhow::Result<Vec<(ExportedLedger, Standing)>> {
    let data = data.unwrap_or_else(|| std::path::PathBuf::from("./lockstep-data"));
    let store = match database {
        Some(url) => lockstep_storage::Store::connect(&url)
            .await
            .context("cannot open the PostgreSQL store given by --database")?,
        None => {
            let path = data.join("lockstep.db");
            if !path.exists() {
                anyhow::bail!(
                    "{} holds no store: give --data DIR, --database URL or --export FILE",
                    data.display()
                );
            }
            lockstep_storage::Store::open_sqlite(&path).await?
        }
    };
    let orgs = match organization {
        Some(id) => vec![
            id.parse()
                .map_err(|_| anyhow::anyhow!("{id:?} is not an organization id"))?,
        ],
        None => {
            let mut conn = store.read().await?;
            lockstep_storage::ledger::ledgers(&mut conn).await?
        }
    };
    let mut ledgers = Vec::with_capacity(orgs.len());
    for org in orgs {
        let ledger = lockstep_app::stored_ledger(&store, org).await?;
        let mut conn = store.read().await?;
        let exists = lockstep_storage::organizations::get(&mut conn, org)
            .await?
            .is_some();
        drop(conn);
        let standing = if exists {
            Standing::Live {
                checkpointed: !ledger.checkpoints.is_empty(),
            }
        } else {
            Standing::Deleted
        };
        ledgers.push((ledger, standing));
    }
    store.close().await;
    if ledgers.is_empty() {
        anyhow::bail!("no ledger is stored there yet");
    }
    Ok(ledgers)
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
