//! RSA key pairs: generation, PEM files, and the key id (fingerprint) recorded in every object.
//!
//! The public key (`etl-public.pem`, SPKI PEM) is all `etl raw` ever needs; the private key
//! (`etl-private.pem`, PKCS#8 PEM, mode 0600) is read only by `standard`, `cat` and `verify`.

use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::{RsaPrivateKey, RsaPublicKey};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// File name of the public key written by `etl keys generate`.
pub const PUBLIC_FILE: &str = "etl-public.pem";
/// File name of the private key written by `etl keys generate`.
pub const PRIVATE_FILE: &str = "etl-private.pem";

/// Errors reading, writing or generating keys.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file could not be read.
    #[error("cannot read key file {path}: {source}")]
    Read {
        /// File path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The key file is not a PEM key of the expected kind.
    #[error("{path} is not a {expected} PEM key: {reason}")]
    Parse {
        /// File path.
        path: PathBuf,
        /// "public" or "private".
        expected: &'static str,
        /// Parser message.
        reason: String,
    },
    /// Writing the key files failed.
    #[error("cannot write key file {path}: {source}")]
    Write {
        /// File path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Refused to overwrite an existing key.
    #[error("{0} already exists; refusing to overwrite a key (use --force)")]
    Exists(PathBuf),
    /// Key generation failed.
    #[error("key generation failed: {0}")]
    Generate(String),
}

/// Key id: the first 16 bytes of SHA-256 over the public key's DER (SPKI), in hex.
pub fn key_id(public: &RsaPublicKey) -> String {
    let der = public.to_public_key_der().map(|d| d.as_bytes().to_vec()).unwrap_or_default();
    hex::encode(&Sha256::digest(&der)[..16])
}

/// Generates a new RSA private key of `bits` bits.
pub fn generate(bits: usize) -> Result<RsaPrivateKey, KeyError> {
    if !(2048..=8192).contains(&bits) {
        return Err(KeyError::Generate(format!("{bits} bits: choose between 2048 and 8192")));
    }
    RsaPrivateKey::new(&mut rand::thread_rng(), bits).map_err(|e| KeyError::Generate(e.to_string()))
}

/// Writes `etl-public.pem` and `etl-private.pem` into `dir`; returns their paths.
pub fn write_pair(dir: &Path, key: &RsaPrivateKey, force: bool) -> Result<(PathBuf, PathBuf), KeyError> {
    std::fs::create_dir_all(dir).map_err(|source| KeyError::Write { path: dir.into(), source })?;
    let public_path = dir.join(PUBLIC_FILE);
    let private_path = dir.join(PRIVATE_FILE);
    for p in [&public_path, &private_path] {
        if p.exists() && !force {
            return Err(KeyError::Exists(p.clone()));
        }
    }
    let private_pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| KeyError::Generate(e.to_string()))?;
    let public_pem = key
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| KeyError::Generate(e.to_string()))?;
    write_private(&private_path, private_pem.as_bytes())?;
    std::fs::write(&public_path, public_pem).map_err(|source| KeyError::Write { path: public_path.clone(), source })?;
    Ok((public_path, private_path))
}

fn write_private(path: &Path, pem: &[u8]) -> Result<(), KeyError> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(|source| KeyError::Write { path: path.into(), source })?;
    f.write_all(pem).map_err(|source| KeyError::Write { path: path.into(), source })
}

fn read(path: &Path) -> Result<String, KeyError> {
    std::fs::read_to_string(path).map_err(|source| KeyError::Read { path: path.into(), source })
}

/// Loads a public key (SPKI "PUBLIC KEY" or PKCS#1 "RSA PUBLIC KEY" PEM).
pub fn load_public(path: &Path) -> Result<RsaPublicKey, KeyError> {
    let pem = read(path)?;
    RsaPublicKey::from_public_key_pem(&pem)
        .or_else(|_| {
            use rsa::pkcs1::DecodeRsaPublicKey;
            RsaPublicKey::from_pkcs1_pem(&pem)
        })
        .map_err(|e| KeyError::Parse { path: path.into(), expected: "public", reason: e.to_string() })
}

/// Loads a private key (PKCS#8 "PRIVATE KEY" or PKCS#1 "RSA PRIVATE KEY" PEM).
pub fn load_private(path: &Path) -> Result<RsaPrivateKey, KeyError> {
    let pem = read(path)?;
    RsaPrivateKey::from_pkcs8_pem(&pem)
        .or_else(|_| {
            use rsa::pkcs1::DecodeRsaPrivateKey;
            RsaPrivateKey::from_pkcs1_pem(&pem)
        })
        .map_err(|e| KeyError::Parse { path: path.into(), expected: "private", reason: e.to_string() })
}

/// A process-wide 2048-bit test key pair (generation is slow; do it once).
#[cfg(test)]
pub(crate) fn test_keypair() -> (RsaPrivateKey, RsaPublicKey) {
    static KEY: std::sync::OnceLock<RsaPrivateKey> = std::sync::OnceLock::new();
    let k = KEY.get_or_init(|| generate(2048).unwrap()).clone();
    let p = k.to_public_key();
    (k, p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_then_load_roundtrips_and_refuses_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let (key, _) = test_keypair();
        let (pubp, privp) = write_pair(dir.path(), &key, false).unwrap();
        assert_eq!(key_id(&load_public(&pubp).unwrap()), key_id(&key.to_public_key()));
        assert_eq!(load_private(&privp).unwrap(), key);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&privp).unwrap().permissions().mode() & 0o777, 0o600);
        }
        assert!(matches!(write_pair(dir.path(), &key, false), Err(KeyError::Exists(_))));
        // A public key is not a private key, and the error names the file.
        let err = load_private(&pubp).unwrap_err().to_string();
        assert!(err.contains("etl-public.pem") && err.contains("private"), "{err}");
    }

    #[test]
    fn key_id_is_stable_hex() {
        let (key, public) = test_keypair();
        assert_eq!(key_id(&public), key_id(&key.to_public_key()));
        assert_eq!(key_id(&public).len(), 32);
    }
}
