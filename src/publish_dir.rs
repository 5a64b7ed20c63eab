//! The publish directory: files a web server can serve as they are (the
//! issuing CA certificate, the newest full and delta CRLs, every CRL by
//! number), each replaced atomically. It knows a directory and what to
//! write there, nothing of where the contents come from.

use std::io::Write;
use std::path::{Path, PathBuf};

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
    /// to a temporary file, fsync, rename over, fsync the directory.
    pub fn write(&self, name: &str, contents: &[u8]) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let tmp = self.dir.join(format!(".{name}.tmp-{}", std::process::id()));
        {
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(contents)?;
            file.sync_all()?;
        }
        std::fs::rename(&tmp, self.dir.join(name))?;
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
        let names: Vec<_> = std::fs::read_dir(dir.path().join("pub"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");
    }
}
