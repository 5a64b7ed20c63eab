//! CA keys in a SoftHSM2 token (SPEC §11): the key ceremony commands, the
//! start-up checks, PINs kept out of logs, concurrency on token keys, and
//! the behaviour while the token is away. Each test makes its own token in
//! a temporary SOFTHSM2_CONF directory and runs eidca as a child process.
//! (The issuance, CRL and OCSP suites run on token keys too: see
//! `common::hsm`.)

mod common;

use std::process::Output;
use std::time::Duration;

use common::hsm::{MODULE, PIN, SoftHsm};
use common::{KeyKind, TestCa, http_client, make_csr, openssl, openssl_ok};
use serde_json::{Value, json};

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The objects on the token, as `pkcs11-tool -O` lists them.
fn objects(token: &SoftHsm) -> String {
    let out = token.pkcs11_tool(&["-O"]);
    assert!(out.status.success(), "{}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn keys_generate_makes_a_sensitive_key_in_the_token_and_prints_its_public_key() {
    let token = SoftHsm::new("ceremony");
    let dir = tempfile::tempdir().unwrap();
    // (pkcs11-tool 0.23 cannot read back a P-384 public key; P-384 in a
    // token is covered by the issuance suite's token pass.)
    for (label, id, algorithm) in [
        ("root-p256", "01", "ec-p256"),
        ("issuing-rsa", "02", "rsa-2048"),
    ] {
        let uri = format!(
            "pkcs11:token=ceremony;object={label};id=%{id}?module-path={MODULE}&pin-source=file:{}",
            token.pin_file.display()
        );
        let out = token.eidca(&["keys", "generate", "--key", &uri, "--algorithm", algorithm]);
        assert!(out.status.success(), "{}", stderr(&out));
        let printed = dir.path().join(format!("{label}.pem"));
        std::fs::write(&printed, &out.stdout).unwrap();

        // The public key the token holds, read by an independent tool.
        let read = dir.path().join(format!("{label}.der"));
        let out = token.pkcs11_tool(&[
            "--read-object",
            "--type",
            "pubkey",
            "--id",
            id,
            "--output-file",
            read.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let ours = openssl_ok(&[
            "pkey",
            "-pubin",
            "-in",
            printed.to_str().unwrap(),
            "-outform",
            "DER",
            "-out",
            "/dev/stdout",
        ]);
        let theirs = openssl_ok(&[
            "pkey",
            "-pubin",
            "-inform",
            "DER",
            "-in",
            read.to_str().unwrap(),
            "-outform",
            "DER",
            "-out",
            "/dev/stdout",
        ]);
        assert_eq!(
            ours, theirs,
            "{label}: printed and token public keys differ"
        );

        // The CSR for the ceremony verifies with that key.
        let out = token.eidca(&[
            "keys",
            "csr",
            "--key",
            &uri,
            "--subject",
            "C=TW,O=eidca test,CN=Ceremony",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let csr = dir.path().join(format!("{label}.csr"));
        std::fs::write(&csr, &out.stdout).unwrap();
        let verified = openssl(&[
            "req",
            "-in",
            csr.to_str().unwrap(),
            "-verify",
            "-noout",
            "-pubkey",
        ]);
        assert!(
            String::from_utf8_lossy(&verified.stderr).contains("verify OK")
                || String::from_utf8_lossy(&verified.stdout).contains("verify OK"),
            "{}",
            stderr(&verified)
        );
    }
    let listing = objects(&token);
    for block in listing.split("Private Key Object").skip(1) {
        let access = block
            .lines()
            .find(|l| l.contains("Access:"))
            .unwrap_or_default();
        assert!(
            access.contains("sensitive") && access.contains("never extractable"),
            "{access}"
        );
        let usage = block
            .lines()
            .find(|l| l.contains("Usage:"))
            .unwrap_or_default();
        assert!(
            usage.contains("sign") && !usage.contains("decrypt"),
            "{usage}"
        );
    }
}

#[test]
fn keys_generate_refuses_an_existing_label_and_creates_nothing() {
    let token = SoftHsm::new("ceremony");
    let uri = token.uri("issuing");
    let first = token.eidca(&["keys", "generate", "--key", &uri, "--algorithm", "ec-p256"]);
    assert!(first.status.success(), "{}", stderr(&first));
    let before = objects(&token);
    let again = token.eidca(&["keys", "generate", "--key", &uri, "--algorithm", "ec-p384"]);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("already holds an object with this label"),
        "{}",
        stderr(&again)
    );
    assert_eq!(objects(&token), before);
}

/// `eidca serve` on `ca` with its config changed by `edit` (and then
/// restored), which must stop at start-up: its error output, which must
/// not hold the PIN.
fn start_failure(ca: &TestCa, edit: &dyn Fn(String) -> String) -> String {
    let original = std::fs::read_to_string(ca.config_path()).unwrap();
    std::fs::write(ca.config_path(), edit(original.clone())).unwrap();
    let mut child = ca
        .command()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("eidca serve started despite the broken configuration");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    std::fs::write(ca.config_path(), original).unwrap();
    assert!(!out.status.success());
    let message = stderr(&out);
    assert!(!message.contains(PIN), "the PIN is in: {message}");
    message
}

#[test]
fn every_start_up_failure_of_a_token_key_names_its_setting() {
    let token = SoftHsm::new("startup");
    let ca = TestCa::on_token(&token, |c| c);
    let pin_source = format!("pin-source=file:{}", token.pin_file.display());
    type Edit = Box<dyn Fn(String) -> String>;
    let cases: Vec<(&str, &str, Edit, &str)> = vec![
        (
            "missing module",
            "ca.issuing_key",
            Box::new(|c| c.replace(MODULE, "/nonexistent/libpkcs11.so")),
            "cannot load the PKCS#11 module",
        ),
        (
            "missing token",
            "ca.issuing_key",
            Box::new(|c| {
                c.replace(
                    "token=startup;object=issuing",
                    "token=elsewhere;object=issuing",
                )
            }),
            "no token labelled `elsewhere`",
        ),
        (
            "missing object",
            "ca.ocsp_key",
            Box::new(|c| c.replace("object=ocsp", "object=nothing")),
            "no private key",
        ),
        (
            "wrong PIN",
            "ca.issuing_key",
            Box::new(move |c| c.replacen(&pin_source, "pin-value=00000000", 1)),
            "refused the PIN",
        ),
        (
            "mismatch",
            "ca.issuing_key",
            Box::new(|c| c.replace("object=issuing", "object=ocsp")),
            "does not belong to the certificate",
        ),
        (
            "malformed URI",
            "ca.ocsp_key",
            Box::new(|c| c.replace("object=ocsp", "object=ocsp;slot-id=1")),
            "not supported",
        ),
        (
            "no module at all",
            "ca.issuing_key",
            Box::new(|c| c.replace(&format!("?module-path={MODULE}&"), "?")),
            "ca.pkcs11_module is not set",
        ),
    ];
    for (case, setting, edit, needle) in cases {
        let message = start_failure(&ca, &*edit);
        assert!(
            message.contains(setting) && message.contains(needle),
            "{case}: {message}"
        );
    }
    // And with every setting right, it starts.
    let out = ca.run(&["status", "4000"]);
    assert!(
        stderr(&out).contains("certificate 4000 not found"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn pin_source_and_pin_value_both_work_and_the_pin_is_in_no_log_line() {
    let token = SoftHsm::new("pins");
    let ca = TestCa::on_token(&token, |c| {
        // The responder's PIN given as a value, the issuing CA's in a file.
        let pin_file = token.pin_file.display().to_string();
        let ocsp_line = c
            .lines()
            .find(|l| l.starts_with("ocsp_key = "))
            .unwrap()
            .to_owned();
        c.replace(
            &ocsp_line,
            &ocsp_line.replace(
                &format!("pin-source=file:{pin_file}"),
                &format!("pin-value={PIN}"),
            ),
        )
    });
    assert!(
        std::fs::read_to_string(ca.config_path())
            .unwrap()
            .contains("pin-value=")
    );
    let server = ca.serve(&[("RUST_LOG", "debug")]);
    let client = http_client(Duration::from_secs(10));
    let health = client.get(server.url("/healthz")).send().unwrap();
    assert_eq!(health.status(), 200);
    let issued = client
        .post(server.url("/api/v1/certificates"))
        .bearer_auth("dev-officer-token")
        .json(&issue_body(&ca))
        .send()
        .unwrap();
    assert_eq!(issued.status(), 201);
    let lines = server.log_lines_with("");
    assert!(!lines.is_empty());
    assert!(server.log_lines_with(PIN).is_empty(), "the PIN is logged");
}

fn issue_body(ca: &TestCa) -> Value {
    let csr = std::fs::read_to_string(make_csr(ca.path(), KeyKind::P256)).unwrap();
    json!({
        "subscriber": {"code": "A800000014", "name": "CHEN Ta-wen"},
        "card_number": "TP03000001",
        "profile": "person-sign",
        "csr": csr,
    })
}

/// The RA API of a server on token keys.
struct Ra<'a> {
    ca: &'a TestCa,
    server: &'a common::Server,
    client: reqwest::blocking::Client,
}

impl<'a> Ra<'a> {
    fn new(ca: &'a TestCa, server: &'a common::Server) -> Self {
        Ra {
            ca,
            server,
            client: http_client(Duration::from_secs(30)),
        }
    }

    fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let response = self
            .client
            .post(self.server.url(path))
            .bearer_auth("dev-officer-token")
            .json(body)
            .send()
            .unwrap();
        (
            response.status().as_u16(),
            response.json().unwrap_or(Value::Null),
        )
    }

    /// Issues on `card`; (status, record or problem).
    fn issue(&self, card: &str) -> (u16, Value) {
        let mut body = issue_body(self.ca);
        body["card_number"] = json!(card);
        self.post("/api/v1/certificates", &body)
    }

    fn health(&self) -> (u16, String) {
        let response = self.client.get(self.server.url("/healthz")).send().unwrap();
        (response.status().as_u16(), response.text().unwrap())
    }

    /// Polls `/healthz` until it answers `status` (a probe's verdict stands
    /// one second).
    fn await_health(&self, status: u16) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            let (got, text) = self.health();
            if got == status {
                return text;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "healthz stayed {got}: {text}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `openssl ocsp` with a nonce for `serial`: its stdout and stderr.
    fn ocsp(&self, serial: &str) -> String {
        let serial = format!("0x{serial}");
        let url = self.server.url("/ocsp");
        let out = openssl(&[
            "ocsp",
            "-issuer",
            self.ca.issuing_cert().to_str().unwrap(),
            "-serial",
            &serial,
            "-url",
            &url,
            "-CAfile",
            self.ca.root_cert().to_str().unwrap(),
        ]);
        format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out))
    }

    /// A GET without nonce for `serial`: the DER answer.
    fn ocsp_get(&self, serial: &str) -> Vec<u8> {
        use base64::Engine;
        let request = self.ca.path().join(format!("get-{serial}.der"));
        let serial = format!("0x{serial}");
        openssl_ok(&[
            "ocsp",
            "-issuer",
            self.ca.issuing_cert().to_str().unwrap(),
            "-serial",
            &serial,
            "-no_nonce",
            "-reqout",
            request.to_str().unwrap(),
        ]);
        let der = base64::engine::general_purpose::STANDARD.encode(std::fs::read(request).unwrap());
        let url = self.server.url(&format!("/ocsp/{der}"));
        self.client
            .get(url)
            .send()
            .unwrap()
            .bytes()
            .unwrap()
            .to_vec()
    }

    fn count(&self, table: &str) -> i64 {
        let conn = rusqlite::Connection::open(self.ca.store_path()).unwrap();
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    }
}

/// DER OCSPResponse { responseStatus tryLater } (RFC 6960 §4.2.1).
const TRY_LATER: &[u8] = &[0x30, 0x03, 0x0a, 0x01, 0x03];

#[test]
fn while_the_token_is_away_nothing_that_needs_a_signature_changes_and_it_heals_by_itself() {
    let token = SoftHsm::new("faults");
    let ca = TestCa::on_token(&token, |c| c);
    let server = ca.serve(&[]);
    let ra = Ra::new(&ca, &server);
    let (status, first) = ra.issue("TP03000001");
    assert_eq!(status, 201, "{first}");
    let (status, second) = ra.issue("TP03000002");
    assert_eq!(status, 201, "{second}");
    let serial = |r: &Value| r["serial"].as_str().unwrap().to_owned();
    let (first, second) = (serial(&first), serial(&second));
    let cached = ra.ocsp_get(&second);
    assert_ne!(cached, TRY_LATER);
    let (status, crl) = ra.post("/api/v1/crls", &json!({"kind": "full"}));
    assert_eq!(status, 201, "{crl}");

    // The token goes away: SoftHSM finds no token in an empty directory.
    let away = token.tokens.with_extension("away");
    std::fs::rename(&token.tokens, &away).unwrap();
    std::fs::create_dir(&token.tokens).unwrap();
    let health = ra.await_health(503);
    assert!(
        health.contains("ca.issuing_key") && health.contains("ca.ocsp_key"),
        "{health}"
    );

    let (certificates, crls) = (ra.count("certificates"), ra.count("crls"));
    let (status, problem) = ra.issue("TP03000003");
    assert_eq!(status, 503, "{problem}");
    assert_eq!(problem["type"], "urn:eidca:problem:signer-unavailable");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("ca.issuing_key"),
        "{problem}"
    );
    let (status, problem) = ra.post("/api/v1/crls", &json!({"kind": "full"}));
    assert_eq!(status, 503, "{problem}");
    assert_eq!(problem["type"], "urn:eidca:problem:signer-unavailable");
    assert_eq!(
        (ra.count("certificates"), ra.count("crls")),
        (certificates, crls)
    );

    // A status change needs no signature: it commits.
    let (status, record) = ra.post(
        &format!("/api/v1/certificates/{first}/suspend"),
        &json!({"note": "card mislaid"}),
    );
    assert_eq!(status, 200, "{record}");
    // OCSP: a new signature is tryLater; the cached answer still holds.
    assert!(ra.ocsp(&first).contains("trylater"), "{}", ra.ocsp(&first));
    assert_eq!(ra.ocsp_get(&second), cached);

    // The token comes back: everything works again, without a restart.
    std::fs::remove_dir(&token.tokens).unwrap();
    std::fs::rename(&away, &token.tokens).unwrap();
    assert_eq!(ra.await_health(200), "ok\n");
    let (status, record) = ra.issue("TP03000003");
    assert_eq!(status, 201, "{record}");
    let (status, crl) = ra.post("/api/v1/crls", &json!({"kind": "full"}));
    assert_eq!(status, 201, "{crl}");
    let answer = ra.ocsp(&first);
    assert!(
        answer.contains("Response verify OK")
            && answer.contains("revoked")
            && answer.contains("certificateHold"),
        "{answer}"
    );
}

#[test]
fn eight_issuers_and_eight_nonce_ocsp_clients_at_once_on_token_keys() {
    let token = SoftHsm::new("load");
    let ca = TestCa::on_token(&token, |c| c);
    let server = ca.serve(&[]);
    let ra = Ra::new(&ca, &server);
    let (status, record) = ra.issue("TP03000001");
    assert_eq!(status, 201, "{record}");
    let serial = record["serial"].as_str().unwrap().to_owned();
    let issued = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for client in 0..8 {
            let (ra, issued) = (&ra, &issued);
            scope.spawn(move || {
                for n in 0..5 {
                    let (status, record) = ra.issue(&format!("TP0{client}00000{n}"));
                    assert_eq!(status, 201, "{record}");
                    let pem = record["certificate"].as_str().unwrap().to_owned();
                    issued.lock().unwrap().push(pem);
                }
            });
        }
        for _ in 0..8 {
            let (ra, serial) = (&ra, &serial);
            scope.spawn(move || {
                for _ in 0..5 {
                    let answer = ra.ocsp(serial);
                    assert!(answer.contains("Response verify OK"), "{answer}");
                    assert!(answer.contains(": good"), "{answer}");
                }
            });
        }
    });
    let issued = issued.into_inner().unwrap();
    assert_eq!(issued.len(), 40);
    for (n, pem) in issued.iter().enumerate() {
        let file = ca.path().join(format!("concurrent-{n}.pem"));
        std::fs::write(&file, pem).unwrap();
        let out = ca.openssl_verify(&[], &file);
        assert!(out.status.success(), "{}", stderr(&out));
    }
}

#[test]
fn production_mode_refuses_a_pin_value() {
    let token = SoftHsm::new("production");
    let ca = TestCa::on_token(&token, |c| {
        c.replace("mode = \"development\"", "mode = \"production\"")
    });
    let pin_source = format!("pin-source=file:{}", token.pin_file.display());
    let message = start_failure(&ca, &|c| {
        c.replacen(&pin_source, &format!("pin-value={PIN}"), 1)
    });
    assert!(
        message.contains("ca.issuing_key") && message.contains("pin-value"),
        "{message}"
    );
}
