//! The publish directory: files a web server can serve as they are (the
//! issuing CA certificate, the newest full and delta CRLs, every CRL by
//! number), each replaced atomically. It knows a directory and what to
//! write there, nothing of where the contents come from.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The mode of a published file: readable by all, written by us.
const PUBLIC: u32 = 0o644;

/// A directory whose files are only ever replaced whole.
#[derive(Debug, Clone)]
pub struct PublishDir {
    dir: PathBuf,
}

impl PublishDir {
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Writes a CRL as `<number>.crl` and as `<kind>.crl` (`full.crl`,
    /// `delta.crl`), the name of the newest of its kind.
    pub fn write_crl(&self, number: u64, kind: &str, der: &[u8]) -> std::io::Result<()> {
        self.write(&format!("{number}.crl"), der)?;
        self.write(&format!("{kind}.crl"), der)
    }

    /// Writes `name` so that a reader never sees a half-written file: write
    /// to a temporary file, fsync, rename over, fsync the directory. The
    /// temporary file has a random name and is created exclusively
    /// (O_EXCL, so never through a symlink someone planted).
    pub fn write(&self, name: &str, contents: &[u8]) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let mut tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .tempfile_in(&self.dir)?;
        tmp.write_all(contents)?;
        // Published for anyone (a web server's user among them): CRLs and
        // the CA certificate are public, while temporary files start 0600.
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(PUBLIC))?;
        tmp.as_file().sync_all()?;
        tmp.persist(self.dir.join(name)).map_err(|e| e.error)?;
        std::fs::File::open(&self.dir)?.sync_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crl_is_written_by_number_and_by_kind_without_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let publish = PublishDir::new(&dir.path().join("pub"));
        publish.write_crl(7, "delta", b"first").unwrap();
        publish.write_crl(8, "delta", b"second").unwrap();
        let read = |name: &str| std::fs::read(dir.path().join("pub").join(name)).unwrap();
        assert_eq!(read("7.crl"), b"first");
        assert_eq!(read("delta.crl"), b"second");
        let mode = std::fs::metadata(dir.path().join("pub/delta.crl"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, PUBLIC);
        let names: Vec<_> = std::fs::read_dir(dir.path().join("pub"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");
    }

    #[test]
    fn a_planted_symlink_is_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let publish = dir.path().join("pub");
        std::fs::create_dir(&publish).unwrap();
        // Every name a writer of this process could have predicted.
        for name in ["full.crl", "7.crl"] {
            let planted = publish.join(format!(".{name}.tmp-{}", std::process::id()));
            std::os::unix::fs::symlink(&victim, planted).unwrap();
        }
        PublishDir::new(&publish)
            .write_crl(7, "full", b"a CRL")
            .unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert_eq!(std::fs::read(publish.join("full.crl")).unwrap(), b"a CRL");
    }
}
