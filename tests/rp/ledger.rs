//! The ledger of the relying-party simulator: every status change the
//! driver committed, when each channel first showed it, and every breach of
//! SPEC §4–§6 noticed on the way. The report at the end is computed from it.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use crate::crl::{CERTIFICATE_HOLD, Listed};

/// A certificate's status as a relying party can tell it; a revocation
/// carries its reasonCode (RFC 5280 §5.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Good,
    Suspended,
    Revoked(u8),
}

impl Status {
    /// What a CRL view says of a serial: unlisted is good, certificateHold
    /// is suspended, any other reason is revoked.
    pub fn from_entry(entry: Option<&Listed>) -> Self {
        match entry.map(|listed| listed.reason) {
            None => Self::Good,
            Some(CERTIFICATE_HOLD) => Self::Suspended,
            Some(reason) => Self::Revoked(reason),
        }
    }
}

/// Where a relying party learns a status (SPEC §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// OCSP asked at the origin right after the change's 2xx.
    OcspAtOrigin,
    /// OCSP by GET, the answer kept as long as its max-age allows.
    OcspBehindCache,
    /// The newest full CRL patched by the newest delta against it.
    DeltaCrl,
    /// The full CRL alone.
    FullCrl,
}

impl Channel {
    pub const ALL: [Channel; 4] = [
        Self::OcspAtOrigin,
        Self::OcspBehindCache,
        Self::DeltaCrl,
        Self::FullCrl,
    ];

    fn index(self) -> usize {
        self as usize
    }

    fn name(self) -> &'static str {
        match self {
            Self::OcspAtOrigin => "OCSP at origin",
            Self::OcspBehindCache => "OCSP behind cache",
            Self::DeltaCrl => "delta CRL",
            Self::FullCrl => "full CRL",
        }
    }
}

/// The promised worst case per channel (SPEC §6) plus the simulator's
/// allowance for polling and HTTP. OCSP at origin has no allowance: the
/// first request after the commit must show the change.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub ocsp_max_age: Duration,
    pub delta_crl_interval: Duration,
    pub full_crl_interval: Duration,
    pub allowance: Duration,
}

impl Bounds {
    /// The longest a channel may take to show a change; `None` for OCSP at
    /// the origin, which must show it on the first request.
    pub fn of(&self, channel: Channel) -> Option<Duration> {
        let promised = match channel {
            Channel::OcspAtOrigin => return None,
            Channel::OcspBehindCache => self.ocsp_max_age,
            Channel::DeltaCrl => self.delta_crl_interval,
            Channel::FullCrl => self.full_crl_interval,
        };
        Some(promised + self.allowance)
    }

    /// How long the simulator waits for a change before giving up on it.
    pub fn patience(&self) -> Duration {
        self.full_crl_interval + self.allowance * 2
    }
}

/// One committed status change.
#[derive(Debug, Clone)]
pub struct Change {
    pub serial: String,
    pub status: Status,
    /// When the RA API's 2xx arrived: the change was committed before.
    pub committed: Instant,
    /// When each channel first showed it.
    pub seen: [Option<Instant>; 4],
}

impl Change {
    fn seen_everywhere(&self) -> bool {
        self.seen.iter().all(Option::is_some)
    }
}

/// Changes, observations and violations of one run.
#[derive(Debug)]
pub struct Ledger {
    pub bounds: Bounds,
    changes: Vec<Change>,
    /// The newest change of each serial: only it can still be observed.
    newest: HashMap<String, usize>,
    violations: Vec<String>,
    started: Instant,
}

impl Ledger {
    pub fn new(bounds: Bounds) -> Self {
        Self {
            bounds,
            changes: Vec::new(),
            newest: HashMap::new(),
            violations: Vec::new(),
            started: Instant::now(),
        }
    }

    /// Records a change whose 2xx arrived at `committed`.
    pub fn record(&mut self, serial: &str, status: Status, committed: Instant) {
        self.newest.insert(serial.to_owned(), self.changes.len());
        self.changes.push(Change {
            serial: serial.to_owned(),
            status,
            committed,
            seen: [None; 4],
        });
    }

    /// Marks the newest change of every serial `view` shows in its new
    /// status as seen on `channel`, at `fetched` (or at its commit, if the
    /// view was fetched while the change was in flight). `view` answers
    /// `None` for serials it says nothing about.
    pub fn observe(
        &mut self,
        channel: Channel,
        fetched: Instant,
        view: impl Fn(&str) -> Option<Status>,
    ) {
        for &at in self.newest.values() {
            let change = &mut self.changes[at];
            let seen = &mut change.seen[channel.index()];
            if seen.is_none() && view(&change.serial) == Some(change.status) {
                *seen = Some(fetched.max(change.committed));
            }
        }
    }

    /// Whether `serial` may change again: its last change was seen on every
    /// channel, or has waited longer than any bound.
    pub fn settled(&self, serial: &str, now: Instant) -> bool {
        self.newest.get(serial).is_none_or(|&at| {
            let change = &self.changes[at];
            change.seen_everywhere() || now > change.committed + self.bounds.patience()
        })
    }

    /// Whether every change was seen everywhere.
    pub fn all_seen(&self) -> bool {
        self.changes.iter().all(Change::seen_everywhere)
    }

    /// Notes a breach of the specification.
    pub fn violation(&mut self, what: String) {
        let at = self.started.elapsed().as_secs_f64();
        self.violations.push(format!("{at:7.2}s  {what}"));
    }

    /// The per-channel figures and every violation, as of `now`: a change
    /// unseen past its bound is a violation, one still within it is pending.
    pub fn report(&self, now: Instant) -> Report {
        let mut violations = self.violations.clone();
        let channels = Channel::ALL.map(|channel| {
            let bound = self.bounds.of(channel);
            let mut delays = Vec::new();
            let mut pending = 0;
            for change in &self.changes {
                match change.seen[channel.index()] {
                    Some(seen) => {
                        let delay = seen - change.committed;
                        if bound.is_some_and(|bound| delay > bound) {
                            violations.push(format!(
                                "{}: {} became {:?}, shown after {:.2}s > {:.2}s",
                                channel.name(),
                                change.serial,
                                change.status,
                                delay.as_secs_f64(),
                                bound.unwrap_or_default().as_secs_f64()
                            ));
                        }
                        delays.push(delay);
                    }
                    None if bound.is_some_and(|bound| now < change.committed + bound) => {
                        pending += 1
                    }
                    None => violations.push(format!(
                        "{}: {} became {:?}, not shown {}",
                        channel.name(),
                        change.serial,
                        change.status,
                        if bound.is_some() {
                            "by the end of the run"
                        } else {
                            "by the first request after the commit"
                        }
                    )),
                }
            }
            delays.sort();
            ChannelFigures {
                channel,
                bound,
                changes: self.changes.len(),
                pending,
                median: delays.get(delays.len() / 2).copied(),
                worst: delays.last().copied(),
                seen: delays.len(),
            }
        });
        Report {
            channels,
            violations,
        }
    }
}

/// The figures of one channel.
#[derive(Debug, Clone)]
pub struct ChannelFigures {
    pub channel: Channel,
    pub bound: Option<Duration>,
    pub changes: usize,
    pub seen: usize,
    pub pending: usize,
    pub median: Option<Duration>,
    pub worst: Option<Duration>,
}

/// What a run observed.
#[derive(Debug, Clone)]
pub struct Report {
    pub channels: [ChannelFigures; 4],
    pub violations: Vec<String>,
}

impl Report {
    pub fn figures(&self, channel: Channel) -> &ChannelFigures {
        &self.channels[channel.index()]
    }
}

fn seconds(d: Option<Duration>) -> String {
    d.map_or_else(|| "-".into(), |d| format!("{:.3}s", d.as_secs_f64()))
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<18} {:>14} {:>8} {:>6} {:>8} {:>9} {:>9}",
            "channel", "bound", "changes", "seen", "pending", "median", "worst"
        )?;
        for c in &self.channels {
            let bound = c
                .bound
                .map_or_else(|| "first request".into(), |b| seconds(Some(b)));
            writeln!(
                f,
                "{:<18} {:>14} {:>8} {:>6} {:>8} {:>9} {:>9}",
                c.channel.name(),
                bound,
                c.changes,
                c.seen,
                c.pending,
                seconds(c.median),
                seconds(c.worst)
            )?;
        }
        writeln!(f, "violations: {}", self.violations.len())?;
        for v in &self.violations {
            writeln!(f, "  {v}")?;
        }
        Ok(())
    }
}
