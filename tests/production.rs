//! Production mode refuses development keys, readable key files,
//! development RA tokens and an implicit base URL — one test per refusal.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::TestCa;

/// A production CA on a fresh (non-development) hierarchy with private key
/// files (allowed by `ca.allow_software_keys`), a real token and an
/// explicit base URL; `edit` breaks one rule.
fn production_ca(edit: impl FnOnce(String) -> String) -> TestCa {
    production_ca_for("Test Authority", edit)
}

/// [`production_ca`] on a hierarchy naming `organization`.
fn production_ca_for(organization: &str, edit: impl FnOnce(String) -> String) -> TestCa {
    let ca = TestCa::for_organization(organization, |c| {
        let c = c
            .replace("mode = \"development\"", "mode = \"production\"")
            .replace("[ca]\n", "[ca]\nallow_software_keys = true\n")
            .replace(
                "c130ed9f928632bb2741eb43744301dea78acecae9023fb49b05c7f171257f85",
                // sha256("a-real-officer-token")
                "5a3c5f1c4b0c6f2b7ee0f4a4f2c6c2cf0a8c66a8f8ea5f5d0d1c7d4f1d7b4a11",
            )
            .replace(
                "98cf681f2a5cde03b61e87f21f50956519de249c09b0b0c5af316ce8ddd861a7",
                "0b7f1d3f6c1e2a9d8e4c5b6a7f8e9d0c1b2a3f4e5d6c7b8a9f0e1d2c3b4a5f6e",
            );
        edit(c)
    });
    for key in ["issuing-ca.key", "ocsp-responder.key"] {
        std::fs::set_permissions(
            ca.path().join("keys").join(key),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
    }
    ca
}

fn refusal(ca: &TestCa) -> String {
    let out = ca.run(&["status", "4000"]);
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn production_mode_starts_when_every_rule_is_kept() {
    let ca = production_ca(|c| c);
    let message = refusal(&ca);
    assert!(message.contains("certificate 4000 not found"), "{message}");
}

#[test]
fn production_mode_refuses_the_development_keys_whatever_their_path() {
    let ca = production_ca(|c| c);
    let repo_keys = concat!(env!("CARGO_MANIFEST_DIR"), "/keys-dev");
    for name in ["issuing-ca.crt", "issuing-ca.key"] {
        std::fs::copy(
            format!("{repo_keys}/{name}"),
            ca.path().join("keys").join(name),
        )
        .unwrap();
    }
    std::fs::set_permissions(
        ca.path().join("keys/issuing-ca.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let message = refusal(&ca);
    assert!(
        message.contains("ca.issuing_cert") && message.contains("public development key"),
        "{message}"
    );
}

#[test]
fn production_mode_refuses_a_hierarchy_made_by_dev_keys() {
    let ca = production_ca_for(eidca::devkeys::ORGANIZATION, |c| c);
    let message = refusal(&ca);
    assert!(
        message.contains("ca.issuing_cert") && message.contains("eidca dev-keys"),
        "{message}"
    );
}

#[test]
fn production_mode_refuses_key_files_unless_software_keys_are_allowed() {
    let ca = production_ca(|c| c.replace("allow_software_keys = true\n", ""));
    let message = refusal(&ca);
    assert!(
        message.contains("ca.issuing_key")
            && message.contains("a CA key in a file")
            && message.contains("ca.allow_software_keys"),
        "{message}"
    );
}

#[test]
fn production_mode_refuses_key_files_readable_by_others() {
    let ca = production_ca(|c| c);
    std::fs::set_permissions(
        ca.path().join("keys/ocsp-responder.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let message = refusal(&ca);
    assert!(
        message.contains("ca.ocsp_key") && message.contains("readable by group or others"),
        "{message}"
    );
}

#[test]
fn production_mode_refuses_the_development_tokens() {
    let ca = production_ca(|c| {
        c.replace(
            "5a3c5f1c4b0c6f2b7ee0f4a4f2c6c2cf0a8c66a8f8ea5f5d0d1c7d4f1d7b4a11",
            "c130ed9f928632bb2741eb43744301dea78acecae9023fb49b05c7f171257f85",
        )
    });
    let message = refusal(&ca);
    assert!(
        message.contains("dev-officer") && message.contains("development token"),
        "{message}"
    );
}

#[test]
fn production_mode_refuses_a_data_directory_readable_by_others() {
    let ca = production_ca(|c| c);
    std::fs::create_dir_all(ca.data_dir()).unwrap();
    std::fs::set_permissions(ca.data_dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let message = refusal(&ca);
    assert!(
        message.contains("data directory") && message.contains("chmod 700"),
        "{message}"
    );
}

#[test]
fn production_mode_requires_an_explicit_base_url() {
    let ca = production_ca(|c| c.replace("base_url = \"http://127.0.0.1:8080\"", ""));
    let message = refusal(&ca);
    assert!(message.contains("publish.base_url"), "{message}");
}

#[test]
fn development_mode_warns_at_start() {
    let ca = TestCa::new();
    let mut child = ca
        .command()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    let mut seen = Vec::new();
    for line in lines.by_ref().take(10) {
        let line = line.unwrap();
        let done = line.contains("listening on");
        seen.push(line);
        if done {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        seen.iter()
            .any(|l| l.contains("WARN") && l.contains("development mode")),
        "{seen:?}"
    );
}
