//! Shared test harness: a throw-away CA (fresh development hierarchy, config
//! and data directory), certificates issued on it, CSRs made by openssl, the
//! eidca binary, a running server on an ephemeral port, an HTTP client, the
//! CRL decoder and the pkilint linters.
#![allow(dead_code)]

pub mod crl;
pub mod hsm;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use eidca::authority::{Actor, Authority, CertificateRecord, IssueRequest};
use eidca::domain::Channel;

/// The development configuration of the repository, used as the template.
const DEV_CONFIG: &str = include_str!("../../ca-config/eidca.toml");

/// A CA in a temporary directory: `keys/` (a new dev hierarchy), `eidca.toml`, `data/`.
pub struct TestCa {
    pub dir: tempfile::TempDir,
    /// Environment of every eidca this CA runs (a token's SOFTHSM2_CONF).
    env: Vec<(String, String)>,
}

impl TestCa {
    /// A fresh hierarchy and the development config pointing at it.
    pub fn new() -> Self {
        Self::with_config(|c| c)
    }

    /// As [`TestCa::new`], with the config text edited by `edit`.
    pub fn with_config(edit: impl FnOnce(String) -> String) -> Self {
        Self::for_organization(eidca::devkeys::ORGANIZATION, edit)
    }

    /// As [`TestCa::with_config`], on a hierarchy whose certificates name
    /// `organization` (anything but the development one passes production checks).
    pub fn for_organization(organization: &str, edit: impl FnOnce(String) -> String) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = DEV_CONFIG.replace("../keys-dev/", "keys/");
        if hsm::token_keys() {
            config = keys_in_token(dir.path(), organization, config);
        } else {
            eidca::devkeys::generate_for(
                &dir.path().join("keys"),
                organization,
                time::OffsetDateTime::now_utc(),
            )
            .expect("dev keys");
        }
        std::fs::write(dir.path().join("eidca.toml"), edit(config)).expect("write config");
        TestCa {
            dir,
            env: Vec::new(),
        }
    }

    /// A CA whose issuing and OCSP keys are generated in `token` by `eidca
    /// keys generate` and certified by `eidca dev-keys`; every eidca it runs
    /// gets the token's SOFTHSM2_CONF. `edit` gets the config text.
    pub fn on_token(token: &hsm::SoftHsm, edit: impl FnOnce(String) -> String) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let (issuing, ocsp) = (token.uri("issuing"), token.uri("ocsp"));
        for uri in [&issuing, &ocsp] {
            token.eidca_ok(&["keys", "generate", "--key", uri, "--algorithm", "ec-p256"]);
        }
        let keys = dir.path().join("keys");
        token.eidca_ok(&[
            "dev-keys",
            "--out",
            utf8(&keys),
            "--issuing-key",
            &issuing,
            "--ocsp-key",
            &ocsp,
        ]);
        let config = DEV_CONFIG.replace("../keys-dev/", "keys/");
        let config = replace_key_line(&config, "issuing_key", &issuing);
        let config = replace_key_line(&config, "ocsp_key", &ocsp);
        std::fs::write(dir.path().join("eidca.toml"), edit(config)).expect("write config");
        TestCa {
            dir,
            env: vec![("SOFTHSM2_CONF".into(), utf8(&token.conf).into())],
        }
    }

    /// Whether this CA's issuing and OCSP keys are in a token.
    pub fn keys_in_token(&self) -> bool {
        hsm::token_keys()
    }

    /// Gives the issuing CA a new key of `algorithm` (`eidca keys generate`
    /// names), where this CA keeps its keys (a file, or the token), and
    /// returns a CSR for it; the caller has the root certify it into
    /// `keys/issuing-ca.crt`.
    pub fn new_issuing_key(&self, algorithm: &str) -> PathBuf {
        let keys = self.path().join("keys");
        let csr = keys.join("issuing-ca.csr");
        let subject = "C=TW,O=eidca test,CN=Test Issuing CA";
        if hsm::token_keys() {
            let uri = hsm::process_token().uri(&format!("issuing-{}", unique()));
            eidca_ok(&["keys", "generate", "--key", &uri, "--algorithm", algorithm]);
            std::fs::write(
                &csr,
                eidca_ok(&["keys", "csr", "--key", &uri, "--subject", subject]),
            )
            .expect("csr");
            let config = std::fs::read_to_string(self.config_path()).expect("config");
            let config = replace_key_line(&config, "issuing_key", &uri);
            std::fs::write(self.config_path(), config).expect("config");
        } else {
            let key = keys.join("issuing-ca.key");
            let genpkey: &[&str] = match algorithm {
                "ec-p256" => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
                "ec-p384" => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
                rsa => &[
                    "-algorithm",
                    "RSA",
                    "-pkeyopt",
                    match rsa {
                        "rsa-2048" => "rsa_keygen_bits:2048",
                        "rsa-3072" => "rsa_keygen_bits:3072",
                        _ => "rsa_keygen_bits:4096",
                    },
                ],
            };
            let mut args = vec!["genpkey"];
            args.extend(genpkey);
            args.extend(["-out", utf8(&key)]);
            openssl_ok(&args);
            openssl_ok(&[
                "req",
                "-new",
                "-key",
                utf8(&key),
                "-subj",
                "/C=TW/O=eidca test/CN=Test Issuing CA",
                "-out",
                utf8(&csr),
            ]);
        }
        csr
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn config_path(&self) -> PathBuf {
        self.path().join("eidca.toml")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.path().join("data")
    }

    pub fn store_path(&self) -> PathBuf {
        self.data_dir().join("eidca.sqlite3")
    }

    pub fn root_cert(&self) -> PathBuf {
        self.path().join("keys/root-ca.crt")
    }

    pub fn issuing_cert(&self) -> PathBuf {
        self.path().join("keys/issuing-ca.crt")
    }

    /// The eidca binary with `--config` and `--data` set for this CA.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_eidca"));
        cmd.arg("--config")
            .arg(self.config_path())
            .arg("--data")
            .arg(self.data_dir());
        cmd.env_remove("EIDCA_CONFIG")
            .env_remove("EIDCA_DATA_DIR")
            .env_remove("EIDCA_LISTEN");
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// Runs `eidca <args>` and returns its output.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("run eidca")
    }

    /// Runs `eidca <args>`, asserts success, returns stdout.
    pub fn run_ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "eidca {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 stdout")
    }

    /// The library's authority on this CA (same store the binary uses).
    pub fn authority(&self) -> eidca::authority::Authority {
        self.authority_with_clock(std::sync::Arc::new(eidca::clock::SystemClock))
    }

    /// As [`TestCa::authority`], with "now" taken from `clock`.
    pub fn authority_with_clock(
        &self,
        clock: std::sync::Arc<dyn eidca::clock::Clock>,
    ) -> eidca::authority::Authority {
        let config = self.config_with_env(&[]).expect("config");
        eidca::authority::Authority::open(config, clock).expect("authority")
    }

    /// This CA's configuration as the binary loads it, with `pairs` as the
    /// whole environment.
    pub fn config_with_env(
        &self,
        pairs: &[(&str, &str)],
    ) -> Result<eidca::config::Config, eidca::config::ConfigError> {
        let source = eidca::config::ConfigSource {
            path: self.config_path(),
            listen: None,
            data_dir: self.data_dir(),
        };
        let env = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        eidca::config::Config::load_with_env(&source, env)
    }

    /// Issues a certificate through the CLI from an openssl CSR; returns
    /// (serial hex, PEM path). For tests of the command line and of the
    /// certificate itself; anything else uses [`issue`].
    pub fn issue(&self, code: &str, card: &str, profile: &str, csr: &Path) -> (String, PathBuf) {
        let pem = self.run_ok(&[
            "issue",
            "--subscriber",
            code,
            "--name",
            "Test Subscriber",
            "--card",
            card,
            "--profile",
            profile,
            "--csr",
            csr.to_str().expect("utf-8 path"),
        ]);
        let path = self.path().join(format!("{}-{}.pem", card, rand_suffix()));
        std::fs::write(&path, &pem).expect("write cert");
        let serial = openssl_ok(&[
            "x509",
            "-in",
            path.to_str().expect("path"),
            "-noout",
            "-serial",
        ]);
        let serial = serial.trim().trim_start_matches("serial=").to_lowercase();
        (serial.trim_start_matches("00").to_owned(), path)
    }

    /// `openssl verify` of the certificate in `cert` up to this CA's root,
    /// through its issuing CA, with `options` (CRL checks) first.
    pub fn openssl_verify(&self, options: &[&str], cert: &Path) -> Output {
        let (root, issuing) = (self.root_cert(), self.issuing_cert());
        let mut args = vec![
            "verify",
            "-CAfile",
            utf8(&root),
            "-untrusted",
            utf8(&issuing),
        ];
        args.extend_from_slice(options);
        args.push(utf8(cert));
        openssl(&args)
    }

    /// Starts `eidca serve` on an ephemeral port with extra environment.
    pub fn serve(&self, env: &[(&str, &str)]) -> Server {
        let mut cmd = self.command();
        cmd.arg("serve").arg("--listen").arg("127.0.0.1:0");
        for (k, v) in env {
            cmd.env(k, v);
        }
        Server::start(cmd)
    }
}

/// The subscriber of every test certificate whose subscriber does not matter.
pub const SUBSCRIBER: &str = "A800000014";

/// The RA officer the tests act as through the library.
pub const OFFICER: Actor<'static> = Actor {
    name: "test-officer",
    channel: Channel::Ra,
};

/// One P-256 CSR (DER) for every certificate issued through the library:
/// issuance needs a valid proof of possession, not a distinct key per
/// certificate, and rcgen is far quicker than an openssl process.
pub fn shared_csr() -> &'static [u8] {
    static CSR: OnceLock<Vec<u8>> = OnceLock::new();
    CSR.get_or_init(|| {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.serialize_request(&key).expect("CSR").der().to_vec()
    })
}

/// Issues a person-sign certificate for [`SUBSCRIBER`] on `card`.
pub fn issue(authority: &Authority, card: &str) -> CertificateRecord {
    issue_for(authority, SUBSCRIBER, card, "person-sign")
}

/// Issues a certificate through the library as [`OFFICER`], from the
/// shared CSR: the way a test gets a certificate it needs, when issuance is
/// not what it tests.
pub fn issue_for(
    authority: &Authority,
    subscriber: &str,
    card: &str,
    profile: &str,
) -> CertificateRecord {
    let request = IssueRequest {
        subscriber_code: subscriber,
        subscriber_name: "Test Subscriber",
        card_number: card,
        profile,
        csr: shared_csr(),
    };
    authority.issue(&request, OFFICER).expect("issue")
}

/// An HTTP client for the test server: never through a proxy, and giving
/// up after `timeout`.
pub fn http_client(timeout: Duration) -> reqwest::blocking::Client {
    http_client_builder(timeout).build().expect("HTTP client")
}

/// As [`http_client`], for a test that sets more (a local address, redirects).
pub fn http_client_builder(timeout: Duration) -> reqwest::blocking::ClientBuilder {
    reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(timeout)
}

fn utf8(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// A name no other CA of any test process uses.
fn unique() -> String {
    format!("{}-{}", std::process::id(), rand_suffix())
}

/// `eidca <args>` without a CA (key ceremony commands); asserts success.
pub fn eidca_ok(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_eidca"))
        .args(args)
        .output()
        .expect("run eidca");
    assert!(
        out.status.success(),
        "eidca {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

/// The config with `ca.<key> = "<value>"`.
pub fn replace_key_line(config: &str, key: &str, value: &str) -> String {
    config
        .lines()
        .map(|line| {
            if line.starts_with(&format!("{key} = ")) {
                format!("{key} = \"{value}\"")
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// Keys generated in this process's token, their certificates made by a
/// fresh development root (`eidca dev-keys --issuing-key --ocsp-key`), and
/// the config pointing at them.
fn keys_in_token(dir: &Path, organization: &str, config: String) -> String {
    let token = hsm::process_token();
    let name = unique();
    let issuing = token.uri(&format!("issuing-{name}"));
    let ocsp = token.uri(&format!("ocsp-{name}"));
    for uri in [&issuing, &ocsp] {
        eidca_ok(&["keys", "generate", "--key", uri, "--algorithm", "ec-p256"]);
    }
    let keys = dir.join("keys");
    let existing = [&issuing, &ocsp].map(|uri| {
        let key = eidca::signer::KeyRef::parse(uri, None, 1).expect("uri");
        eidca::signer::Signer::open("test", &key).expect("token key")
    });
    eidca::devkeys::generate_with(
        &keys,
        organization,
        time::OffsetDateTime::now_utc(),
        eidca::devkeys::ExistingKeys {
            issuing: Some(&existing[0]),
            ocsp: Some(&existing[1]),
        },
    )
    .expect("dev keys for token keys");
    let config = replace_key_line(&config, "issuing_key", &issuing);
    replace_key_line(&config, "ocsp_key", &ocsp)
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// A running `eidca serve`, killed on drop.
pub struct Server {
    pub child: Child,
    pub base_url: String,
    /// Every line the server wrote to stderr so far.
    pub log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// The thread that reads stderr into `log`; it ends when the server exits.
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(mut cmd: Command) -> Server {
        let mut child = cmd
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn eidca serve");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = std::sync::Arc::clone(&log);
        let reader = std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if !sent && let Some(url) = line.split("listening on ").nth(1) {
                    let _ = tx.send(url.trim().to_owned());
                    sent = true;
                }
                eprintln!("[serve] {line}");
                kept.lock().unwrap_or_else(|p| p.into_inner()).push(line);
            }
        });
        let base_url = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("server did not report its address");
        Server {
            child,
            base_url,
            log,
            reader: Some(reader),
        }
    }

    /// The log lines so far that contain `needle`.
    pub fn log_lines_with(&self, needle: &str) -> Vec<String> {
        let log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        log.iter().filter(|l| l.contains(needle)).cloned().collect()
    }

    /// Sends SIGTERM and waits for the exit status (graceful shutdown).
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM {pid} failed");
        let status = self.child.wait().expect("wait for eidca serve");
        // Its last lines are in `log` once the reader has seen the pipe close.
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        status
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    /// Sends SIGKILL and waits.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs openssl and returns its output.
pub fn openssl(args: &[&str]) -> Output {
    Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl is installed by scripts/test")
}

/// Runs openssl, asserts success, returns stdout.
pub fn openssl_ok(args: &[&str]) -> String {
    let out = openssl(args);
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Key types for test CSRs.
#[derive(Debug, Clone, Copy)]
pub enum KeyKind {
    P256,
    P384,
    Rsa2048,
    Rsa1024,
}

/// Makes a key and a CSR with openssl in `dir`; returns the CSR path.
/// The CSR's subject is deliberately unrelated to any subscriber.
pub fn make_csr(dir: &Path, kind: KeyKind) -> PathBuf {
    let n = rand_suffix();
    let key = dir.join(format!("key-{n}.pem"));
    let csr = dir.join(format!("req-{n}.csr"));
    let algo: &[&str] = match kind {
        KeyKind::P256 => &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        KeyKind::P384 => &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"],
        KeyKind::Rsa2048 => &["-newkey", "rsa:2048"],
        KeyKind::Rsa1024 => &["-newkey", "rsa:1024"],
    };
    let mut args = vec![
        "req",
        "-new",
        "-nodes",
        "-subj",
        "/C=XX/CN=Mallory From The CSR/O=Ignored",
    ];
    args.extend_from_slice(algo);
    let (k, c) = (key.to_str().expect("path"), csr.to_str().expect("path"));
    args.extend_from_slice(&["-keyout", k, "-out", c]);
    openssl_ok(&args);
    csr
}

/// Path of a pkilint command; the tests fail (never skip) without it.
pub fn pkilint(tool: &str) -> PathBuf {
    let dir = std::env::var("EIDCA_PKILINT_BIN").unwrap_or_else(|_| {
        let local = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin");
        local.to_owned()
    });
    let path = Path::new(&dir).join(tool);
    assert!(
        path.exists(),
        "{} not found: run scripts/test, which installs pkilint",
        path.display()
    );
    path
}

/// Runs a pkilint linter on a file and asserts no ERROR or FATAL finding.
pub fn assert_pkilint_clean(tool: &str, extra: &[&str], file: &Path) {
    let out = Command::new(pkilint(tool))
        .args(["lint"])
        .args(extra)
        .arg(file)
        .output()
        .expect("run pkilint");
    let report =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let bad: Vec<&str> = report
        .lines()
        .filter(|l| {
            l.contains("(ERROR)")
                || l.contains("(FATAL)")
                || l.contains("ERROR")
                || l.contains("FATAL")
        })
        .collect();
    assert!(bad.is_empty(), "{tool} on {}: {}", file.display(), report);
}
