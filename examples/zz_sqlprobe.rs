use rusqlite::{Connection, OpenFlags};
use std::time::Instant;
fn cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let f: Vec<u64> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .skip(11)
        .take(2)
        .map(|x| x.parse().unwrap())
        .collect();
    (f[0] + f[1]) as f64 * 10_000.0
}
fn main() {
    let path = "/tmp/eidca-bench/data/eidca.sqlite3";
    let serials: Vec<String> = std::fs::read_to_string("/tmp/eidca-bench/sample.txt")
        .unwrap()
        .lines()
        .map(|l| l.to_owned())
        .collect();
    for (label, pragmas) in [
        ("default", vec![]),
        ("cache 16M", vec![("cache_size", "-16384")]),
        ("mmap 1G", vec![("mmap_size", "1073741824")]),
        (
            "both 16M",
            vec![("mmap_size", "1073741824"), ("cache_size", "-16384")],
        ),
        (
            "both 64M",
            vec![("mmap_size", "1073741824"), ("cache_size", "-65536")],
        ),
    ] {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .unwrap();
        for (k, v) in pragmas {
            conn.pragma_update(None, k, v).unwrap();
        }
        let mut stmt = conn.prepare("SELECT status, reason, status_since, status_seq FROM certificates WHERE serial = ?1").unwrap();
        for _ in 0..2 {
            let t = Instant::now();
            let c = cpu();
            for i in 0..300_000 {
                let s = &serials[i % serials.len()];
                let v: i64 = stmt.query_row([s], |r| r.get(3)).unwrap();
                std::hint::black_box(v);
            }
            println!(
                "{label}: {:.2} µs cpu {:.2}",
                t.elapsed().as_nanos() as f64 / 300_000.0 / 1000.0,
                (cpu() - c) / 300_000.0
            );
        }
        conn.execute_batch("BEGIN").unwrap();
        let t = Instant::now();
        for i in 0..100_000 {
            let s = &serials[i % serials.len()];
            let v: i64 = stmt.query_row([s], |r| r.get(3)).unwrap();
            std::hint::black_box(v);
        }
        println!(
            "{label} in one txn: {:.2} µs",
            t.elapsed().as_nanos() as f64 / 100_000.0 / 1000.0
        );
        conn.execute_batch("COMMIT").unwrap();
    }
}
