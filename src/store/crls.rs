//! Published CRLs and the two queries that feed them: the listed
//! certificates (full CRL) and the changes since a base (delta CRL).

use rusqlite::{Connection, OptionalExtension, Row, params};
use time::OffsetDateTime;

use super::{StoreError, from_unix, to_unix};
use crate::domain::{CertStatus, Serial};
use crate::revocation::{CrlKind, HistoryRow, ListedCertificate, StatusChange, net_changes};

/// A published CRL, without its DER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlSummary {
    pub number: u64,
    pub kind: CrlKind,
    pub base_number: Option<u64>,
    pub this_update: OffsetDateTime,
    pub next_update: OffsetDateTime,
    /// The newest status change this CRL reflects.
    pub covers_seq: i64,
    pub entries: u64,
}

const SUMMARY_COLUMNS: &str =
    "number, kind, base_number, this_update, next_update, covers_seq, entries";

fn summary_from_row(row: &Row<'_>) -> rusqlite::Result<CrlSummary> {
    let kind: String = row.get(1)?;
    let time = |col: usize| -> rusqlite::Result<OffsetDateTime> {
        from_unix(row.get(col)?).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(col, rusqlite::types::Type::Integer, e.into())
        })
    };
    Ok(CrlSummary {
        number: row.get(0)?,
        kind: if kind == "full" {
            CrlKind::Full
        } else {
            CrlKind::Delta
        },
        base_number: row.get(2)?,
        this_update: time(3)?,
        next_update: time(4)?,
        covers_seq: row.get(5)?,
        entries: row.get(6)?,
    })
}

/// Every published CRL, in number order: the publication history that the
/// sync window is judged on.
pub fn history(conn: &Connection) -> Result<Vec<CrlSummary>, StoreError> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {SUMMARY_COLUMNS} FROM crls ORDER BY number"
    ))?;
    let rows = statement.query_map([], summary_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The newest CRL of a kind.
pub fn latest(conn: &Connection, kind: CrlKind) -> Result<Option<CrlSummary>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {SUMMARY_COLUMNS} FROM crls WHERE kind = ?1 ORDER BY number DESC LIMIT 1"
        ))?
        .query_row([kind.name()], summary_from_row)
        .optional()?)
}

/// The DER and summary of the newest CRL of a kind.
pub fn latest_der(
    conn: &Connection,
    kind: CrlKind,
) -> Result<Option<(CrlSummary, Vec<u8>)>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {SUMMARY_COLUMNS}, der FROM crls WHERE kind = ?1 ORDER BY number DESC LIMIT 1"
        ))?
        .query_row([kind.name()], |r| Ok((summary_from_row(r)?, r.get(7)?)))
        .optional()?)
}

/// Any CRL ever published, by number.
pub fn by_number(
    conn: &Connection,
    number: u64,
) -> Result<Option<(CrlSummary, Vec<u8>)>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {SUMMARY_COLUMNS}, der FROM crls WHERE number = ?1"
        ))?
        .query_row([number], |r| Ok((summary_from_row(r)?, r.get(7)?)))
        .optional()?)
}

/// The highest CRL number ever committed (0 when none).
pub fn highest_number(conn: &Connection) -> Result<u64, StoreError> {
    Ok(conn
        .prepare_cached("SELECT COALESCE(MAX(number), 0) FROM crls")?
        .query_row([], |r| r.get(0))?)
}

/// The newest status change sequence number (0 when none).
pub fn newest_change(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM status_changes")?
        .query_row([], |r| r.get(0))?)
}

/// The time of the oldest status change after `seq` (one a delta has not shown yet).
pub fn oldest_change_after(
    conn: &Connection,
    seq: i64,
) -> Result<Option<OffsetDateTime>, StoreError> {
    // Issuance is a history row too, but not a change a CRL shows.
    let at: Option<i64> = conn
        .prepare_cached("SELECT MIN(at) FROM status_changes WHERE seq > ?1 AND action != 'issue'")?
        .query_row([seq], |r| r.get(0))?;
    at.map(from_unix).transpose()
}

/// Records a signed CRL. Fails with a constraint error when `number` is
/// taken, so two publishers can never commit the same number.
///
/// The DER goes in through incremental blob I/O into a zeroblob: binding a
/// 50 MB full CRL as a parameter would have SQLite copy it twice (the bound
/// value, then the record) before writing it out page by page.
pub fn insert(conn: &Connection, summary: &CrlSummary, der: &[u8]) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO crls (number, kind, base_number, this_update, next_update, covers_seq, entries, der)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, zeroblob(?8))",
    )?
    .execute(params![
        summary.number,
        summary.kind.name(),
        summary.base_number,
        to_unix(summary.this_update),
        to_unix(summary.next_update),
        summary.covers_seq,
        summary.entries,
        der.len(),
    ])?;
    // `number` is the INTEGER PRIMARY KEY, i.e. the rowid.
    let rowid = i64::try_from(summary.number)
        .map_err(|_| StoreError::Corrupt(format!("CRL number {} too large", summary.number)))?;
    conn.blob_open("main", "crls", "der", rowid, false)?
        .write_at(der, 0)?;
    Ok(())
}

/// A column that does not hold what the schema promises.
fn bad_column(col: usize, message: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(col, rusqlite::types::Type::Text, message.into())
}

/// A stored status (a name and, at `col + 1`, a reason code); None when the
/// name is NULL (no status: before issuance), an error when it is unknown.
/// Reads the text in place: the full CRL decodes a million of these.
fn status_at(row: &Row<'_>, col: usize) -> rusqlite::Result<Option<CertStatus>> {
    let text = |e| bad_column(col, format!("{e}"));
    let Some(name) = row.get_ref(col)?.as_str_or_null().map_err(text)? else {
        return Ok(None);
    };
    let reason: Option<u8> = row.get(col + 1)?;
    CertStatus::from_stored(name, reason)
        .map(Some)
        .ok_or_else(|| bad_column(col, format!("unknown stored status {name}/{reason:?}")))
}

fn serial_at(row: &Row<'_>, col: usize) -> rusqlite::Result<Serial> {
    let hex = row
        .get_ref(col)?
        .as_str()
        .map_err(|e| bad_column(col, format!("{e}")))?;
    hex.parse()
        .map_err(|e| bad_column(col, format!("serial {hex}: {e}")))
}

/// The full CRL's query: a range of the partial index `certificates_listed`
/// (two ranges: one per listed status, from `not_after >= ?1`), which holds
/// only suspended and revoked certificates, with every column the CRL needs.
///
/// `status != 'good'` repeats the index's WHERE clause word for word: SQLite
/// uses a partial index only when it can prove that the query implies the
/// index's condition, and it does not see that `status IN (...)` does.
/// Without it the query reads the whole `certificates` table, good
/// certificates and DER included (BENCHMARKS.md, "CRLs").
pub const LISTED_SQL: &str = "SELECT serial, status, reason, status_since FROM certificates
     WHERE status != 'good' AND status IN ('suspended', 'revoked') AND not_after >= ?1";

/// The delta CRL's query: the status history after the base, one range of
/// the `status_changes` primary key (`seq > ?1`), in order. Each row carries
/// the status it replaced, so the first row of a certificate gives its
/// status at the base and no other table or index is read: the cost is the
/// number of changes, whatever the size of the store.
pub const CHANGES_SQL: &str = "SELECT serial, prev_status, prev_reason, prev_at, status, reason, at
     FROM status_changes WHERE seq > ?1 ORDER BY seq";

/// Streams every suspended or revoked certificate whose notAfter is at or
/// after `not_after_from` (the previous full CRL's thisUpdate), in one pass
/// over the `certificates_listed` index; `f` sees one entry at a time.
pub fn for_each_listed(
    conn: &Connection,
    not_after_from: Option<OffsetDateTime>,
    mut f: impl FnMut(ListedCertificate) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let from = not_after_from.map(to_unix).unwrap_or(i64::MIN);
    let mut stmt = conn.prepare_cached(LISTED_SQL)?;
    let mut rows = stmt.query([from])?;
    while let Some(row) = rows.next()? {
        let status = status_at(row, 1)?
            .ok_or_else(|| StoreError::Corrupt("a listed certificate has no status".into()))?;
        f(ListedCertificate {
            serial: serial_at(row, 0)?,
            status,
            since: from_unix(row.get(3)?)?,
        })?;
    }
    Ok(())
}

/// Every certificate with a status change after `base_seq`, with its status
/// as of `base_seq` (good, with no start time, if not yet issued then) and
/// now. Cost follows the number of changes (see [`CHANGES_SQL`]).
pub fn changes_since(conn: &Connection, base_seq: i64) -> Result<Vec<StatusChange>, StoreError> {
    let mut stmt = conn.prepare_cached(CHANGES_SQL)?;
    let mut rows = stmt.query([base_seq])?;
    let mut history = Vec::new();
    while let Some(row) = rows.next()? {
        let serial = serial_at(row, 0)?;
        let before = match (status_at(row, 1)?, row.get::<_, Option<i64>>(3)?) {
            (Some(status), Some(since)) => Some((status, from_unix(since)?)),
            (None, None) => None,
            _ => {
                return Err(StoreError::Corrupt(format!(
                    "a status change of {serial} has half of the status it replaced"
                )));
            }
        };
        let after = status_at(row, 4)?.ok_or_else(|| {
            StoreError::Corrupt(format!("a status change of {serial} has no status"))
        })?;
        history.push(HistoryRow {
            serial,
            before,
            after,
            at: from_unix(row.get(6)?)?,
        });
    }
    Ok(net_changes(history))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::schema::migrate(&mut conn).unwrap();
        conn
    }

    /// The plan SQLite chooses, one step a line, as `EXPLAIN QUERY PLAN` says it.
    fn plan(conn: &Connection, sql: &str) -> Vec<String> {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        stmt.query_map([0], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn full_crl_query_seeks_the_listed_index_and_never_scans_certificates() {
        let steps = plan(&store(), LISTED_SQL);
        assert_eq!(
            steps,
            [
                "SEARCH certificates USING COVERING INDEX certificates_listed (status=? AND not_after>?)"
            ],
        );
    }

    #[test]
    fn delta_query_reads_only_a_range_of_recent_changes() {
        let steps = plan(&store(), CHANGES_SQL);
        assert!(
            steps
                .iter()
                .any(|s| s == "SEARCH status_changes USING INTEGER PRIMARY KEY (rowid>?)"),
            "{steps:#?}"
        );
        assert_eq!(steps.len(), 1, "{steps:#?}");
    }
}
