//! `lockstep vault init|status|unseal|seal`.

use crate::args::{Format, VaultCommand};
use crate::client::ApiClient;
use serde::{Deserialize, Serialize};

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
        VaultCommand::Unseal(args) => {
            let client = ApiClient::new(&args, None)?;
            let key = zeroize::Zeroizing::new(super::read_secret("Unseal key share: ")?);
            let body = serde_json::json!({ "key": key.as_str() });
            let status: SealStatus = client.post("/api/v1/sys/unseal", &body).await?;
            show(&status, args.format)
        }
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
