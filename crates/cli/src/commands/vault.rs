//! `lockstep vault init|status|unseal|seal`.

use crate::args::{Format, VaultCommand};
use crate::client::ApiClient;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

#[derive(Debug, Serialize, Deserialize)]
struct SealStatus {
    sealed: bool,
    progress: u8,
    threshold: u8,
    shares: u8,
}

pub async fn run(command: VaultCommand) -> anyhow::Result<()> {
    match command {
        VaultCommand::Init(args) => crate::serve::init(args).await,
        VaultCommand::Status(args) => {
            let client = ApiClient::new(&args, None)?;
            let status: SealStatus = client.get("/api/v1/sys/seal-status").await?;
            show(&status, args.format)
        }
        VaultCommand::Unseal(args) => unseal(&args).await,
        VaultCommand::Rotate(args) => {
            let token = super::operator_token(args.token.clone())?;
            let client = ApiClient::new(&args.client, Some(token))?;
            let rotated: serde_json::Value = client
                .post("/api/v1/sys/rotate", &serde_json::json!({}))
                .await?;
            match args.client.format {
                Format::Json => println!("{rotated}"),
                Format::Text => println!(
                    "Keyring rotated: new organization keys are wrapped with version {}.",
                    rotated
                        .get("keyring_version")
                        .and_then(|v| v.as_u64())
                        .unwrap_or(0)
                ),
            }
            Ok(())
        }
        VaultCommand::Seal(args) => {
            let token = super::operator_token(args.token.clone())?;
            let client = ApiClient::new(&args.client, Some(token))?;
            let status: SealStatus = client
                .post("/api/v1/sys/seal", &serde_json::json!({}))
                .await?;
            show(&status, args.client.format)
        }
    }
}

/// Enters one share from the terminal's prompt, or every line piped into standard input (blank
/// lines skipped) until the hub is unsealed; says how many were entered and the progress.
async fn unseal(args: &crate::args::ClientArgs) -> anyhow::Result<()> {
    use std::io::{BufRead, IsTerminal};
    let client = ApiClient::new(args, None)?;
    let shares: Vec<Zeroizing<String>> = if std::io::stdin().is_terminal() {
        vec![Zeroizing::new(super::read_secret("Unseal key share: ")?)]
    } else {
        let mut shares = Vec::new();
        for line in std::io::stdin().lock().lines() {
            let line = Zeroizing::new(line?);
            if !line.trim().is_empty() {
                shares.push(Zeroizing::new(line.trim().to_owned()));
            }
        }
        shares
    };
    if shares.is_empty() {
        anyhow::bail!("nothing was entered: give one unseal key share per line");
    }
    let mut status: Option<SealStatus> = None;
    let (mut entered, mut refused) = (0usize, 0usize);
    for (line, share) in shares.iter().enumerate() {
        if status.as_ref().is_some_and(|s| !s.sealed) {
            break;
        }
        let body = serde_json::json!({ "key": share.as_str() });
        match client
            .post::<_, SealStatus>("/api/v1/sys/unseal", &body)
            .await
        {
            Ok(now) => {
                entered += 1;
                status = Some(now);
            }
            Err(err) if shares.len() > 1 => {
                refused += 1;
                eprintln!("Share {} refused: {err:#}", line + 1);
            }
            Err(err) => return Err(err),
        }
    }
    let Some(status) = status else {
        anyhow::bail!("no key share was accepted ({refused} refused)");
    };
    if args.format == Format::Text && shares.len() > 1 {
        println!(
            "Entered {entered} key {}{}.",
            if entered == 1 { "share" } else { "shares" },
            if refused > 0 {
                format!(" ({refused} refused)")
            } else {
                String::new()
            }
        );
    }
    show(&status, args.format)?;
    if refused > 0 && status.sealed {
        anyhow::bail!("still sealed: {refused} of the key shares given were refused");
    }
    Ok(())
}

fn show(status: &SealStatus, format: Format) -> anyhow::Result<()> {
    match format {
        Format::Json => println!("{}", serde_json::to_string(status)?),
        Format::Text if status.sealed => println!(
            "Sealed: {} of {} key shares entered (of {} in all).",
            status.progress, status.threshold, status.shares
        ),
        Format::Text => println!("Unsealed."),
    }
    Ok(())
}
