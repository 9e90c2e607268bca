//! The operator's files directory (`--files-root`): `sqlite` and `files` connections reach files
//! only inside it. A path is refused when it is absolute, climbs out with `..`, or passes through a
//! symbolic link anywhere below the root; what is opened is checked again after canonicalization.

use crate::{ConnectorError, FailureKind};
use std::path::{Component, Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilesRoot {
    /// Canonical (absolute, no links).
    root: PathBuf,
}

impl FilesRoot {
    /// The directory must exist; it is canonicalized once.
    pub fn new(dir: &Path) -> Result<FilesRoot, String> {
        let root = dir.canonicalize().map_err(|err| {
            format!(
                "the files directory {} cannot be used: {err}",
                dir.display()
            )
        })?;
        if !root.is_dir() {
            return Err(format!("{} is not a directory", dir.display()));
        }
        Ok(FilesRoot { root })
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Resolves `relative` inside the root, refusing escapes and symbolic links. The target must
    /// exist. `field` names the config field in the error.
    pub fn resolve(&self, field: &str, relative: &str) -> Result<PathBuf, ConnectorError> {
        crate::config::check_relative_path(field, relative)?;
        let mut current = self.root.clone();
        for component in Path::new(relative).components() {
            let Component::Normal(part) = component else {
                continue;
            };
            current.push(part);
            let meta = std::fs::symlink_metadata(&current).map_err(|_| {
                ConnectorError::failed(
                    FailureKind::NotFound,
                    format!("{field}: no such file or folder"),
                )
            })?;
            if meta.file_type().is_symlink() {
                return Err(ConnectorError::failed(
                    FailureKind::Policy,
                    format!("{field}: symbolic links are not followed"),
                ));
            }
        }
        let canonical = current.canonicalize().map_err(|_| {
            ConnectorError::failed(
                FailureKind::NotFound,
                format!("{field}: no such file or folder"),
            )
        })?;
        if !canonical.starts_with(&self.root) {
            return Err(ConnectorError::failed(
                FailureKind::Policy,
                format!("{field}: outside the files directory"),
            ));
        }
        Ok(canonical)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn confines_paths() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("data")).unwrap();
        std::fs::write(dir.path().join("data/a.csv"), "x\n1\n").unwrap();
        std::fs::write(outside.path().join("secret.csv"), "x\n1\n").unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("secret.csv"),
            dir.path().join("data/l.csv"),
        )
        .unwrap();
        let root = FilesRoot::new(dir.path()).unwrap();

        assert!(
            root.resolve("config.path", "data/a.csv")
                .unwrap()
                .ends_with("data/a.csv")
        );
        assert!(root.resolve("config.path", "./data").is_ok());
        for (bad, kind) in [
            ("../x", None),
            ("data/../../x", None),
            ("/etc/passwd", None),
            ("link/secret.csv", Some(FailureKind::Policy)),
            ("data/l.csv", Some(FailureKind::Policy)),
            ("data/missing.csv", Some(FailureKind::NotFound)),
        ] {
            let err = root.resolve("config.path", bad).unwrap_err();
            assert_eq!(err.kind(), kind, "{bad}");
        }
    }
}
