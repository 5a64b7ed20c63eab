//! Published CRLs and the two queries that feed them: the listed
//! certificates (full CRL) and the changes since a base (delta CRL).

use rusqlite::{OptionalExtension, Row, params};
use time::OffsetDateTime;

use super::rows::{crl_kind_at, serial_at, status_at, status_or_null_at, time_at};
use super::{Change, Snapshot, StoreError, from_unix, to_unix};
use crate::revocation::{CrlKind, CrlSummary, HistoryRow, LatestCrls, ListedCertificate};

const SUMMARY_COLUMNS: &str =
    "number, kind, base_number, this_update, next_update, covers_seq, entries";

fn summary_from_row(row: &Row<'_>) -> rusqlite::Result<CrlSummary> {
    Ok(CrlSummary {
        number: row.get(0)?,
        kind: crl_kind_at(row, 1)?,
        base_number: row.get(2)?,
        this_update: time_at(row, 3)?,
        next_update: time_at(row, 4)?,
        covers_seq: row.get(5)?,
        entries: row.get(6)?,
    })
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

impl Snapshot<'_> {
    /// Every published CRL, in number order: the publication history that the
    /// sync window is judged on.
    pub fn crl_history(&self) -> Result<Vec<CrlSummary>, StoreError> {
        let mut statement = self.conn.prepare_cached(&format!(
            "SELECT {SUMMARY_COLUMNS} FROM crls ORDER BY number"
        ))?;
        let rows = statement.query_map([], summary_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The newest CRL of a kind.
    pub fn latest_crl(&self, kind: CrlKind) -> Result<Option<CrlSummary>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(&format!(
                "SELECT {SUMMARY_COLUMNS} FROM crls WHERE kind = ?1 ORDER BY number DESC LIMIT 1"
            ))?
            .query_row([kind.name()], summary_from_row)
            .optional()?)
    }

    /// The DER and summary of the newest CRL of a kind.
    pub fn latest_crl_der(
        &self,
        kind: CrlKind,
    ) -> Result<Option<(CrlSummary, Vec<u8>)>, StoreError> {
        Ok(self.conn
            .prepare_cached(&format!(
                "SELECT {SUMMARY_COLUMNS}, der FROM crls WHERE kind = ?1 ORDER BY number DESC LIMIT 1"
            ))?
            .query_row([kind.name()], |r| Ok((summary_from_row(r)?, r.get(7)?)))
            .optional()?)
    }

    /// Any CRL ever published, by number.
    pub fn crl_by_number(&self, number: u64) -> Result<Option<(CrlSummary, Vec<u8>)>, StoreError> {
        // Numbers are the table's rowid, an i64: a larger one names no CRL.
        let Ok(number) = i64::try_from(number) else {
            return Ok(None);
        };
        Ok(self
            .conn
            .prepare_cached(&format!(
                "SELECT {SUMMARY_COLUMNS}, der FROM crls WHERE number = ?1"
            ))?
            .query_row([number], |r| Ok((summary_from_row(r)?, r.get(7)?)))
            .optional()?)
    }

    /// The newest full and the newest delta CRL.
    pub fn latest_crls(&self) -> Result<LatestCrls, StoreError> {
        Ok(LatestCrls {
            full: self.latest_crl(CrlKind::Full)?,
            delta: self.latest_crl(CrlKind::Delta)?,
        })
    }

    /// The highest CRL number ever committed (0 when none).
    pub fn highest_crl_number(&self) -> Result<u64, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT COALESCE(MAX(number), 0) FROM crls")?
            .query_row([], |r| r.get(0))?)
    }

    /// The newest status change sequence number (0 when none).
    pub fn newest_change(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM status_changes")?
            .query_row([], |r| r.get(0))?)
    }

    /// The time of the oldest status change after `seq` (one a delta has not shown yet).
    pub fn oldest_change_after(&self, seq: i64) -> Result<Option<OffsetDateTime>, StoreError> {
        // Issuance is a history row too, but not a change a CRL shows.
        let at: Option<i64> = self
            .conn
            .prepare_cached(
                "SELECT MIN(at) FROM status_changes WHERE seq > ?1 AND action != 'issue'",
            )?
            .query_row([seq], |r| r.get(0))?;
        at.map(from_unix).transpose()
    }

    /// Streams every suspended or revoked certificate whose notAfter is at or
    /// after `not_after_from` (the previous full CRL's thisUpdate), in one pass
    /// over the `certificates_listed` index; `f` sees one entry at a time.
    pub fn for_each_listed<E: From<StoreError>>(
        &self,
        not_after_from: Option<OffsetDateTime>,
        mut f: impl FnMut(ListedCertificate) -> Result<(), E>,
    ) -> Result<(), E> {
        let from = not_after_from.map(to_unix).unwrap_or(i64::MIN);
        let listed = |row: &Row<'_>| -> rusqlite::Result<ListedCertificate> {
            Ok(ListedCertificate {
                serial: serial_at(row, 0)?,
                status: status_at(row, 1)?,
                since: time_at(row, 3)?,
            })
        };
        let mut stmt = self
            .conn
            .prepare_cached(LISTED_SQL)
            .map_err(StoreError::from)?;
        let mut rows = stmt.query([from]).map_err(StoreError::from)?;
        while let Some(row) = rows.next().map_err(StoreError::from)? {
            f(listed(row).map_err(StoreError::from)?)?;
        }
        Ok(())
    }

    /// The status history after `base_seq`, in order, each row with the
    /// status it replaced ([`crate::revocation::net_changes`] folds it into one
    /// change per certificate). Cost follows the number of changes (see
    /// [`CHANGES_SQL`]).
    pub fn history_since(&self, base_seq: i64) -> Result<Vec<HistoryRow>, StoreError> {
        let mut stmt = self.conn.prepare_cached(CHANGES_SQL)?;
        let mut rows = stmt.query([base_seq])?;
        let mut history = Vec::new();
        while let Some(row) = rows.next()? {
            let serial = serial_at(row, 0)?;
            let before = match (status_or_null_at(row, 1)?, row.get::<_, Option<i64>>(3)?) {
                (Some(status), Some(since)) => Some((status, from_unix(since)?)),
                (None, None) => None,
                _ => {
                    return Err(StoreError::Corrupt(format!(
                        "a status change of {serial} has half of the status it replaced"
                    )));
                }
            };
            history.push(HistoryRow {
                serial,
                before,
                after: status_at(row, 4)?,
                at: from_unix(row.get(6)?)?,
            });
        }
        Ok(history)
    }
}

impl Change<'_> {
    /// Records a signed CRL. Fails with a constraint error when `number` is
    /// taken, so two publishers can never commit the same number.
    ///
    /// The DER goes in through incremental blob I/O into a zeroblob: binding a
    /// 50 MB full CRL as a parameter would have SQLite copy it twice (the bound
    /// value, then the record) before writing it out page by page.
    pub fn insert_crl(&self, summary: &CrlSummary, der: &[u8]) -> Result<(), StoreError> {
        self.conn.prepare_cached(
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
        self.conn
            .blob_open("main", "crls", "der", rowid, false)?
            .write_at(der, 0)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

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
