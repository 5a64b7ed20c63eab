//! Several processes on one store. The OCSP responder reads SQLite's
//! WAL-index header through a mapping of the `-shm` file
//! (`eidca::ocsp::commits`); that must never cost this process SQLite's own
//! locks on the file, or another process opening the store would take
//! itself for the only one and rebuild the WAL-index under our connections.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};

use base64::Engine;
use common::{KeyKind, TestCa, make_csr, openssl_ok};
use eidca::ocsp::commits::CommitWatch;
use eidca::store::{Store, StoreReader};

/// Threads that ask for the first marker at the same moment.
const RACERS: usize = 16;

/// SQLite's "dead-man switch" byte in a `-shm` file (`UNIX_SHM_DMS` in
/// sqlite3.c): every process with the database open holds a read lock on
/// it, and a process that can lock it exclusively reinitialises the file.
const DMS_BYTE: u64 = 128;

fn issue(ca: &TestCa) -> String {
    let csr = make_csr(ca.path(), KeyKind::P256);
    ca.issue("A800000014", "TP03000001", "person-sign", &csr).0
}

/// `database` with `suffix` appended (`-shm`, `-wal`).
fn beside(database: &Path, suffix: &str) -> PathBuf {
    let mut path = database.as_os_str().to_owned();
    path.push(suffix);
    path.into()
}

/// Whether process `pid` holds a POSIX read lock on the DMS byte of `shm`,
/// as the kernel lists it in /proc/locks
/// (`1: POSIX  ADVISORY  READ 4242 fe:00:1234 128 128`; waiting requests
/// have a `->` field and do not match).
fn holds_dms_lock(pid: u32, shm: &Path) -> bool {
    let inode = std::fs::metadata(shm).expect("-shm file").ino().to_string();
    let pid = pid.to_string();
    let locks = std::fs::read_to_string("/proc/locks").expect("/proc/locks");
    locks.lines().any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [_, "POSIX", _, "READ", holder, device_inode, start, end] = fields[..] else {
            return false;
        };
        let covers = start.parse::<u64>().is_ok_and(|s| s <= DMS_BYTE)
            && (end == "EOF" || end.parse::<u64>().is_ok_and(|e| DMS_BYTE <= e));
        holder == pid && device_inode.rsplit(':').next() == Some(inode.as_str()) && covers
    })
}

/// SQLite's own verdict on the database file.
fn assert_intact(database: &Path) {
    let conn =
        rusqlite::Connection::open_with_flags(database, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let verdict: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(verdict, "ok");
}

/// A fresh watch whose first marker `RACERS` threads ask for at once.
fn raced_watch(store: &StoreReader) -> CommitWatch {
    let watch = CommitWatch::new(store);
    let start = Barrier::new(RACERS);
    let markers: Vec<_> = std::thread::scope(|s| {
        let racers: Vec<_> = (0..RACERS)
            .map(|_| {
                s.spawn(|| {
                    start.wait();
                    watch.current()
                })
            })
            .collect();
        racers.into_iter().map(|r| r.join().unwrap()).collect()
    });
    assert!(markers[0].is_some(), "a marker in WAL mode");
    assert!(markers.iter().all(|m| *m == markers[0]));
    watch
}

#[test]
fn racing_first_marker_reads_keep_sqlites_locks_and_see_other_processes_commits() {
    let ca = TestCa::new();
    let serial = issue(&ca);
    let store = StoreReader::of(&Arc::new(Store::open(&ca.store_path()).unwrap()));
    let shm = beside(store.path(), "-shm");
    let me = std::process::id();
    assert!(holds_dms_lock(me, &shm), "the store's connections lock it");

    // Many races, each on a fresh watch kept to the end: one dropped
    // descriptor anywhere is enough to lose the lock.
    let watches: Vec<_> = (0..32).map(|_| raced_watch(&store)).collect();
    assert!(
        holds_dms_lock(me, &shm),
        "a racing first read closed a descriptor of the -shm file"
    );

    let before = watches[0].current();
    ca.run_ok(&["suspend", &serial]);
    assert!(
        beside(store.path(), "-wal").exists(),
        "the CLI took itself for the last user and removed the WAL"
    );
    for watch in &watches {
        assert_ne!(watch.current(), before, "the CLI's commit is seen");
    }
    assert!(holds_dms_lock(me, &shm));
    assert_intact(store.path());
}

/// The certStatus of a DER OCSPResponse (its signature is other tests' job).
fn cert_status(der: &[u8]) -> rasn_ocsp::CertStatus {
    let response: rasn_ocsp::OcspResponse = rasn::der::decode(der).unwrap();
    let bytes = response.bytes.expect("a successful response");
    let basic: rasn_ocsp::BasicOcspResponse = rasn::der::decode(&bytes.response).unwrap();
    basic.tbs_response_data.responses[0].cert_status.clone()
}

#[test]
fn a_cli_write_while_the_server_answers_is_seen_and_leaves_the_store_intact() {
    let ca = TestCa::new();
    let serial = issue(&ca);
    let server = ca.serve(&[]);
    let request = ca.path().join("request.der");
    openssl_ok(&[
        "ocsp",
        "-issuer",
        ca.issuing_cert().to_str().unwrap(),
        "-serial",
        &format!("0x{serial}"),
        "-no_nonce",
        "-reqout",
        request.to_str().unwrap(),
    ]);
    let encoded = base64::engine::general_purpose::STANDARD.encode(std::fs::read(request).unwrap());
    let url = server.url(&format!("/ocsp/{encoded}"));
    let client = reqwest::blocking::Client::new();
    let answer = || client.get(&url).send().unwrap().bytes().unwrap();

    // The server's first marker reads, racing.
    let start = Barrier::new(RACERS);
    std::thread::scope(|s| {
        for _ in 0..RACERS {
            s.spawn(|| {
                start.wait();
                assert_eq!(cert_status(&answer()), rasn_ocsp::CertStatus::Good);
            });
        }
    });
    let shm = beside(&ca.store_path(), "-shm");
    assert!(holds_dms_lock(server.child.id(), &shm));

    ca.run_ok(&["suspend", &serial]);
    assert!(
        beside(&ca.store_path(), "-wal").exists(),
        "the CLI took itself for the last user and removed the WAL"
    );
    assert!(matches!(
        cert_status(&answer()),
        rasn_ocsp::CertStatus::Revoked(_)
    ));
    assert!(holds_dms_lock(server.child.id(), &shm));
    assert_intact(&ca.store_path());
    assert!(server.terminate().success());
    assert_intact(&ca.store_path());
}

#[test]
fn the_store_and_its_directory_are_private_to_the_service() {
    use std::os::unix::fs::PermissionsExt;
    let ca = TestCa::new();
    let server = ca.serve(&[]);
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&ca.data_dir()), 0o700, "data directory");
    for suffix in ["", "-wal", "-shm"] {
        let file = beside(&ca.store_path(), suffix);
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    let errors = server.log_lines_with("ERROR");
    let status = server.terminate();
    assert!(status.success(), "{status:?} {errors:?}");
}
