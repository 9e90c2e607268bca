//! Unseal key share text, as pasted into the unseal page or piped to `lockstep vault unseal`:
//! every line of the input is submitted to a sealed vault, as the hub does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lockstep_vault::{SealConfig, UnsealKey, Vault};
use rand::SeedableRng;
use std::sync::LazyLock;

/// A vault of three shares, two of which unseal it, made from a fixed seed so the corpus can hold
/// its real shares (`fuzz/corpus/share_text`).
static CONFIG: LazyLock<Option<SealConfig>> = LazyLock::new(|| {
    let mut rng = rand::rngs::StdRng::seed_from_u64(13);
    lockstep_vault::initialize(3, 2, &mut rng)
        .ok()
        .map(|init| init.config)
});

fuzz_target!(|data: &[u8]| {
    let Some(config) = CONFIG.as_ref() else {
        return;
    };
    let text = String::from_utf8_lossy(data);
    let vault = Vault::sealed(config.clone());
    for line in text.lines() {
        let _ = vault.submit_share(&UnsealKey::from_text(line));
    }
});
