//! The audit chain: `eidca audit verify` accepts the chain the CA wrote and
//! names the first record that was edited, deleted or swapped.

mod common;

use common::{KeyKind, TestCa, make_csr};

fn tamper(ca: &TestCa, sql: &str) {
    let conn = rusqlite::Connection::open(ca.store_path()).unwrap();
    conn.execute_batch(sql).unwrap();
}

#[test]
fn audit_chain_verifies_and_names_an_edited_deleted_or_swapped_record() {
    let setup = || {
        let ca = TestCa::new();
        let csr = make_csr(ca.path(), KeyKind::P256);
        for card in ["TP03000001", "TP03000002", "TP03000003", "TP03000004"] {
            ca.issue("A800000014", card, "person-sign", &csr);
        }
        let out = ca.run_ok(&["audit", "verify"]);
        assert!(out.contains("4 records"), "{out}");
        ca
    };
    let check = |ca: &TestCa, record: &str| {
        let out = ca.run(&["audit", "verify"]);
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("audit record {record}")),
            "{stderr}"
        );
    };
    let ca = setup();
    tamper(&ca, "UPDATE audit_log SET detail = '{}' WHERE id = 2");
    check(&ca, "2");
    let ca = setup();
    tamper(&ca, "DELETE FROM audit_log WHERE id = 3");
    check(&ca, "4");
    let ca = setup();
    tamper(
        &ca,
        "UPDATE audit_log SET id = 100 WHERE id = 1; UPDATE audit_log SET id = 1 WHERE id = 2; UPDATE audit_log SET id = 2 WHERE id = 100;",
    );
    check(&ca, "1");
}
