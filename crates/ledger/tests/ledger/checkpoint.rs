//! Signed checkpoints: signing, verifying, tampering, key ids and verifier key texts.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use lockstep_ledger::merkle::{empty_root, leaf_hash};
use lockstep_ledger::{Checkpoint, LedgerError, SigningKey, VerifyingKey};
use rand::SeedableRng;
use rand::rngs::StdRng;
use sha2::{Digest, Sha256};

const NAME: &str = "lockstep.example.org/org/42";

fn key(seed: u64) -> SigningKey {
    SigningKey::generate(&mut StdRng::seed_from_u64(seed))
}

fn checkpoint() -> Checkpoint {
    Checkpoint {
        origin: NAME.to_owned(),
        size: 12,
        root: leaf_hash(b"some root"),
    }
}

/// The note with the body replaced by `body`, keeping the signature lines.
fn with_body(note: &str, body: &str) -> String {
    let (_, signatures) = note.split_once("\n\n").unwrap();
    format!("{body}\n{signatures}")
}

#[test]
fn sign_and_verify_round_trip() {
    let key = key(1);
    let cp = checkpoint();
    let note = key.sign(NAME, &cp).unwrap();
    assert!(note.starts_with(&cp.body()));
    assert!(note.contains(&format!("\n\n\u{2014} {NAME} ")));
    assert!(note.ends_with('\n'));
    assert_eq!(key.verifying_key().verify_note(NAME, &note).unwrap(), cp);

    let empty = Checkpoint {
        origin: NAME.to_owned(),
        size: 0,
        root: empty_root(),
    };
    let note = key.sign(NAME, &empty).unwrap();
    assert_eq!(key.verifying_key().verify_note(NAME, &note).unwrap(), empty);
}

#[test]
fn changed_size_root_or_origin_fails() {
    let key = key(2);
    let cp = checkpoint();
    let note = key.sign(NAME, &cp).unwrap();
    let vk = key.verifying_key();
    let changed = [
        Checkpoint {
            size: 13,
            ..cp.clone()
        },
        Checkpoint {
            root: leaf_hash(b"another root"),
            ..cp.clone()
        },
        Checkpoint {
            origin: "lockstep.example.org/org/43".to_owned(),
            ..cp.clone()
        },
    ];
    for other in changed {
        let forged = with_body(&note, &other.body());
        assert_eq!(
            vk.verify_note(NAME, &forged),
            Err(LedgerError::BadSignature),
            "{other:?}"
        );
    }
    // An extension line added after signing is part of the signed bytes.
    let extended = with_body(&note, &format!("{}extra\n", cp.body()));
    assert_eq!(
        vk.verify_note(NAME, &extended),
        Err(LedgerError::BadSignature)
    );
}

#[test]
fn flipped_signature_byte_fails() {
    let key = key(3);
    let note = key.sign(NAME, &checkpoint()).unwrap();
    let (body, line) = note.split_once("\n\n").unwrap();
    let b64 = line.trim_end().rsplit_once(' ').unwrap().1;
    let blob = STANDARD.decode(b64).unwrap();
    assert_eq!(blob.len(), 4 + 64);
    for at in [4, 20, 40, 67] {
        let mut bad = blob.clone();
        bad[at] ^= 0x01;
        let forged = format!("{body}\n\n\u{2014} {NAME} {}\n", STANDARD.encode(&bad));
        assert_eq!(
            key.verifying_key().verify_note(NAME, &forged),
            Err(LedgerError::BadSignature),
            "byte {at}"
        );
    }
    // A flipped key id byte makes the line someone else's: no signature by our key remains.
    let mut bad = blob.clone();
    bad[0] ^= 0x01;
    let forged = format!("{body}\n\n\u{2014} {NAME} {}\n", STANDARD.encode(&bad));
    assert_eq!(
        key.verifying_key().verify_note(NAME, &forged),
        Err(LedgerError::SignatureNotFound)
    );
}

#[test]
fn note_signed_by_another_key_fails() {
    let ours = key(4);
    let theirs = key(5);
    let cp = checkpoint();
    let note = theirs.sign(NAME, &cp).unwrap();
    assert_eq!(
        ours.verifying_key().verify_note(NAME, &note),
        Err(LedgerError::SignatureNotFound)
    );
    // Their signature under our key id is still rejected.
    let their_line = note.split_once("\n\n").unwrap().1;
    let their_sig = &STANDARD
        .decode(their_line.trim_end().rsplit_once(' ').unwrap().1)
        .unwrap()[4..];
    let our_id = ours.verifying_key().key_id(NAME).to_be_bytes();
    let forged = format!(
        "{}\n\u{2014} {NAME} {}\n",
        cp.body(),
        STANDARD.encode([our_id.as_slice(), their_sig].concat())
    );
    assert_eq!(
        ours.verifying_key().verify_note(NAME, &forged),
        Err(LedgerError::BadSignature)
    );
    // Our signature under another key name is not ours.
    let note = ours.sign("someone.else", &cp).unwrap();
    assert_eq!(
        ours.verifying_key().verify_note(NAME, &note),
        Err(LedgerError::SignatureNotFound)
    );
}

#[test]
fn other_signatures_in_the_note_are_ignored() {
    let ours = key(6);
    let theirs = key(7);
    let cp = checkpoint();
    let our_note = ours.sign(NAME, &cp).unwrap();
    let their_note = theirs.sign("witness.example", &cp).unwrap();
    let their_line = their_note.split_once("\n\n").unwrap().1;
    let cosigned = format!("{our_note}{their_line}");
    assert_eq!(
        ours.verifying_key().verify_note(NAME, &cosigned).unwrap(),
        cp
    );
    assert_eq!(
        theirs
            .verifying_key()
            .verify_note("witness.example", &cosigned)
            .unwrap(),
        cp
    );
}

#[test]
fn malformed_notes_are_rejected() {
    let key = key(8);
    let vk = key.verifying_key();
    let note = key.sign(NAME, &checkpoint()).unwrap();
    let line = note.split_once("\n\n").unwrap().1.to_owned();
    for bad in [
        String::new(),
        checkpoint().body(),
        note.trim_end().to_owned(),
        format!("{note}\n"),
        note.replace('\u{2014}', "-"),
        format!("{}\n{}", checkpoint().body(), line.replace(' ', "  ")),
        format!("{}\n\u{2014} {NAME} !!!\n", checkpoint().body()),
        format!("{}\n\u{2014} {NAME} AAAA\n", checkpoint().body()),
        format!("{}\n", checkpoint().body()),
    ] {
        assert!(vk.verify_note(NAME, &bad).is_err(), "{bad:?}");
    }
    assert!(key.sign("bad name", &checkpoint()).is_err());
    assert!(key.sign("bad+name", &checkpoint()).is_err());
    let no_origin = Checkpoint {
        origin: String::new(),
        ..checkpoint()
    };
    assert!(key.sign(NAME, &no_origin).is_err());
}

#[test]
fn extension_lines_are_signed_and_ignored() {
    // A note from another signer may carry extension lines after the root; the signature covers
    // the body bytes exactly as sent. Sign such a body directly with Ed25519, as another
    // implementation would.
    use ed25519_dalek::Signer as _;
    let seed = [9u8; 32];
    let key = SigningKey::from_bytes(&seed);
    let raw = ed25519_dalek::SigningKey::from_bytes(&seed);
    let cp = checkpoint();
    let body = format!("{}x-extension 1\nx-extension 2\n", cp.body());
    let signature = raw.sign(body.as_bytes()).to_bytes();
    let id = key.verifying_key().key_id(NAME).to_be_bytes();
    let note = format!(
        "{body}\n\u{2014} {NAME} {}\n",
        STANDARD.encode([id.as_slice(), signature.as_slice()].concat())
    );
    assert_eq!(key.verifying_key().verify_note(NAME, &note).unwrap(), cp);
    // Dropping the extension lines breaks the signature.
    assert_eq!(
        key.verifying_key()
            .verify_note(NAME, &with_body(&note, &cp.body())),
        Err(LedgerError::BadSignature)
    );
}

#[test]
fn go_note_example_signature_verifies() {
    // The example from the Go signed-note package documentation. Its text is not a checkpoint,
    // so verification gets past the signature and stops at parsing the body.
    let (name, key) = VerifyingKey::parse_vkey(
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    )
    .unwrap();
    let note = "If you think cryptography is the answer to your problem,\n\
                then you don't know what your problem is.\n\
                \n\
                \u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
    assert!(matches!(
        key.verify_note(&name, note),
        Err(LedgerError::MalformedCheckpoint { .. })
    ));
    let tampered = note.replace("answer", "Answer");
    assert_eq!(
        key.verify_note(&name, &tampered),
        Err(LedgerError::BadSignature)
    );
}

#[test]
fn key_id_follows_the_definition() {
    let key = key(10);
    let public = key.verifying_key().to_bytes();
    let mut input = NAME.as_bytes().to_vec();
    input.push(b'\n');
    input.push(0x01);
    input.extend_from_slice(&public);
    let digest = Sha256::digest(&input);
    let expected = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
    assert_eq!(key.verifying_key().key_id(NAME), expected);

    let vkey = key.verifying_key().to_vkey(NAME).unwrap();
    let mut b64_key = vec![0x01];
    b64_key.extend_from_slice(&public);
    assert_eq!(
        vkey,
        format!("{NAME}+{expected:08x}+{}", STANDARD.encode(b64_key))
    );
}

#[test]
fn vkey_round_trip_and_rejections() {
    let key = key(11);
    let vk = key.verifying_key();
    let text = vk.to_vkey(NAME).unwrap();
    assert_eq!(
        VerifyingKey::parse_vkey(&text).unwrap(),
        (NAME.to_owned(), vk)
    );
    assert_eq!(VerifyingKey::from_bytes(&vk.to_bytes()).unwrap(), vk);

    let other = key_name_swap(&text);
    assert!(
        VerifyingKey::parse_vkey(&other).is_err(),
        "renamed key with the old id"
    );
    let (name, rest) = text.split_once('+').unwrap();
    let (id, b64) = rest.split_once('+').unwrap();
    for bad in [
        String::new(),
        name.to_owned(),
        format!("{name}+{id}"),
        format!("{name}+{}+{b64}", &id[..7]),
        format!("{name}+0x{}+{b64}", &id[..6]),
        format!("{name}+00000000+{b64}"),
        format!("{name}+{id}+{}", STANDARD.encode([0x02u8; 33])),
        format!("{name}+{id}+{}", STANDARD.encode([0x01u8; 32])),
        format!("bad name+{id}+{b64}"),
    ] {
        assert!(VerifyingKey::parse_vkey(&bad).is_err(), "{bad:?}");
    }
    assert!(vk.to_vkey("bad name").is_err());
}

fn key_name_swap(vkey: &str) -> String {
    format!("other{}", &vkey[vkey.find('+').unwrap()..])
}

#[test]
fn signing_key_bytes_round_trip_and_debug_hides_them() {
    // RFC 8032 §7.1 test 1: the seed and its public key.
    let seed: [u8; 32] = hex32("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
    let public = hex32("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
    let key = SigningKey::from_bytes(&seed);
    assert_eq!(key.verifying_key().to_bytes(), public);
    assert_eq!(*key.to_bytes(), seed);
    let debug = format!("{key:?}");
    assert!(!debug.contains("9d61"), "{debug}");
    assert!(!debug.contains(&STANDARD.encode(seed)), "{debug}");
    assert!(!debug.contains(&format!("{seed:?}")), "{debug}");

    let restored = SigningKey::from_bytes(&key.to_bytes());
    let note = restored.sign(NAME, &checkpoint()).unwrap();
    assert!(key.verifying_key().verify_note(NAME, &note).is_ok());
}

fn hex32(text: &str) -> [u8; 32] {
    let bytes: Vec<u8> = (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect();
    bytes.try_into().unwrap()
}
