//! SoftHSM2 tokens for the tests (SPEC §11), each in its own temporary
//! `SOFTHSM2_CONF` directory, and the switch that runs the CA suites on
//! token keys.
//!
//! `EIDCA_TEST_KEYS=softhsm` (set by `scripts/test` for a second pass of
//! the issuance, CRL and OCSP suites) makes every [`super::TestCa`] keep its
//! issuing and OCSP keys in a token of this process, generated there by
//! `eidca keys generate`. SoftHSM reads `SOFTHSM2_CONF` once, at
//! `C_Initialize`, so that pass sets it for the whole test process;
//! [`process_token`] makes the process's token before any test signs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Debian's SoftHSM2 module.
pub const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// Distinctive, so that a test can look for it in logs and messages.
pub const PIN: &str = "73916482";
const SO_PIN: &str = "12345678";

/// A token in a configuration directory.
pub struct SoftHsm {
    /// Holds `softhsm2.conf`, `tokens/` and `pin` (when the token is ours).
    _dir: Option<tempfile::TempDir>,
    pub conf: PathBuf,
    pub tokens: PathBuf,
    pub label: String,
    pub pin_file: PathBuf,
}

impl SoftHsm {
    /// A token of its own, in a new temporary directory: for tests that
    /// run eidca as a child process.
    pub fn new(label: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let conf = dir.path().join("softhsm2.conf");
        let tokens = dir.path().join("tokens");
        std::fs::create_dir(&tokens).expect("tokens dir");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .expect("softhsm2.conf");
        let pin_dir = dir.path().to_path_buf();
        Self::init(conf, tokens, label, &pin_dir, Some(dir))
    }

    fn init(
        conf: PathBuf,
        tokens: PathBuf,
        label: &str,
        pin_dir: &Path,
        dir: Option<tempfile::TempDir>,
    ) -> Self {
        let pin_file = pin_dir.join(format!("{label}.pin"));
        std::fs::write(&pin_file, format!("{PIN}\n")).expect("pin file");
        let hsm = SoftHsm {
            _dir: dir,
            conf,
            tokens,
            label: label.to_owned(),
            pin_file,
        };
        let out = hsm
            .tool("softhsm2-util")
            .args(["--init-token", "--free", "--label", label])
            .args(["--so-pin", SO_PIN, "--pin", PIN])
            .output()
            .expect("softhsm2-util (Debian softhsm2; scripts/test installs it)");
        assert!(
            out.status.success(),
            "softhsm2-util --init-token: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        hsm
    }

    /// A program run against this token's configuration.
    pub fn tool(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("SOFTHSM2_CONF", &self.conf);
        cmd
    }

    /// `eidca <args>` against this token.
    pub fn eidca(&self, args: &[&str]) -> std::process::Output {
        self.tool(env!("CARGO_BIN_EXE_eidca"))
            .args(args)
            .output()
            .expect("run eidca")
    }

    /// [`SoftHsm::eidca`], asserting success; its stdout.
    pub fn eidca_ok(&self, args: &[&str]) -> String {
        let out = self.eidca(args);
        assert!(
            out.status.success(),
            "eidca {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 stdout")
    }

    /// The RFC 7512 URI of key `object`, with the module and the PIN file.
    pub fn uri(&self, object: &str) -> String {
        format!(
            "pkcs11:token={};object={object}?module-path={MODULE}&pin-source=file:{}",
            self.label,
            self.pin_file.display()
        )
    }

    /// `pkcs11-tool` on this token, logged in.
    pub fn pkcs11_tool(&self, args: &[&str]) -> std::process::Output {
        self.tool("pkcs11-tool")
            .args(["--module", MODULE, "--token-label", &self.label])
            .args(["--login", "--pin", PIN])
            .args(args)
            .output()
            .expect("pkcs11-tool (Debian opensc; scripts/test installs it)")
    }
}

/// Whether this test process runs the CA suites on token keys.
pub fn token_keys() -> bool {
    std::env::var("EIDCA_TEST_KEYS").as_deref() == Ok("softhsm")
}

/// The token of this test process, in the directory `SOFTHSM2_CONF`
/// names; made on first use, before anything in the process signs.
pub fn process_token() -> &'static SoftHsm {
    static TOKEN: OnceLock<SoftHsm> = OnceLock::new();
    TOKEN.get_or_init(|| {
        let conf = PathBuf::from(
            std::env::var_os("SOFTHSM2_CONF")
                .expect("EIDCA_TEST_KEYS=softhsm needs SOFTHSM2_CONF (scripts/test sets both)"),
        );
        let dir = conf.parent().expect("conf dir").to_path_buf();
        let tokens = dir.join("tokens");
        let label = format!("eidca-{}", std::process::id());
        SoftHsm::init(conf, tokens, &label, &dir, None)
    })
}
