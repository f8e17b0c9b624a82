//! The overview's figures: sessions over time and verification outcomes, computed from counts
//! over the outbox and a page of recent verifications. The series functions are pure.

use std::collections::BTreeMap;

use super::ConsoleService;
use crate::application::Application;
use crate::clock::Timestamp;
use crate::error::Result;
use crate::events::EventType;
use crate::session::SessionStatus;
use crate::store::{EventCount, SessionFilter, VerificationOrder};
use crate::verification::{State, Verification};

pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 24 * HOUR_MS;
/// Verifications the outcome table reads, newest first.
pub const RECENT_VERIFICATIONS: u32 = 1000;

/// One bucket of the sessions chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    pub start: Timestamp,
    pub created: u64,
    pub revoked: u64,
    /// Ended any way (revoked, signed out, removed, replaced, lapsed).
    pub ended: u64,
    /// Usable sessions at the end of the bucket.
    pub active: u64,
}

/// Outcomes of one provider's verifications.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// `(none chosen)` for verifications that never reached a provider.
    pub provider: String,
    pub succeeded: u64,
    pub failed: u64,
    /// Cancelled or expired.
    pub abandoned: u64,
    pub unfinished: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overview {
    pub active_now: u64,
    /// The last 24 hours, hour by hour, oldest first.
    pub hourly: Vec<Bucket>,
    /// The last 30 days, day by day (UTC), oldest first.
    pub daily: Vec<Bucket>,
    pub outcomes: Vec<Outcome>,
    /// How many verifications `outcomes` covers (the newest [`RECENT_VERIFICATIONS`]).
    pub verifications_read: usize,
}

fn ends_session(kind: EventType) -> bool {
    matches!(
        kind,
        EventType::SessionRevoked
            | EventType::SessionEnded
            | EventType::SessionRemoved
            | EventType::SessionReplaced
            | EventType::SessionExpired
    )
}

/// `buckets` buckets of `width` ms ending with the one that holds `now`, filled from `counts`;
/// the active count is walked back from `active_now` through each bucket's creations and ends.
pub fn session_series(
    counts: &[EventCount],
    active_now: u64,
    now: Timestamp,
    width: i64,
    buckets: usize,
) -> Vec<Bucket> {
    let last = now.as_millis().div_euclid(width) * width;
    let first = last - width * (buckets as i64 - 1);
    let mut out: Vec<Bucket> = (0..buckets)
        .map(|i| Bucket {
            start: Timestamp(first + width * i as i64),
            created: 0,
            revoked: 0,
            ended: 0,
            active: 0,
        })
        .collect();
    for c in counts {
        let Some(b) = usize::try_from((c.bucket - first).div_euclid(width))
            .ok()
            .and_then(|i| out.get_mut(i))
        else {
            continue;
        };
        match c.kind {
            EventType::SessionCreated => b.created += c.count,
            k if ends_session(k) => {
                b.ended += c.count;
                if k == EventType::SessionRevoked {
                    b.revoked += c.count;
                }
            }
            _ => {}
        }
    }
    let mut active = active_now;
    for b in out.iter_mut().rev() {
        b.active = active;
        active = (active + b.ended).saturating_sub(b.created);
    }
    out
}

/// Outcomes per provider, most used first.
pub fn outcomes(vs: &[Verification], now: Timestamp) -> Vec<Outcome> {
    let mut by: BTreeMap<String, Outcome> = BTreeMap::new();
    for v in vs {
        let name = v
            .provider
            .clone()
            .unwrap_or_else(|| "(none chosen)".to_owned());
        let o = by.entry(name.clone()).or_insert_with(|| Outcome {
            provider: name,
            ..Outcome::default()
        });
        match v.effective_state(now) {
            State::Success => o.succeeded += 1,
            State::Failed(_) => o.failed += 1,
            State::Cancelled | State::Expired => o.abandoned += 1,
            _ => o.unfinished += 1,
        }
    }
    let mut list: Vec<Outcome> = by.into_values().collect();
    list.sort_by_key(|o| std::cmp::Reverse(o.succeeded + o.failed + o.abandoned + o.unfinished));
    list
}

impl ConsoleService {
    /// The newest events about a session or user (what its lifecycle timeline shows).
    pub async fn timeline(
        &self,
        app: &Application,
        subject: &str,
    ) -> Result<Vec<crate::events::Event>> {
        Ok(self.store().events_about(&app.id, subject, 100).await?)
    }

    /// The overview of one application at `now`.
    pub async fn overview(&self, app: &Application, now: Timestamp) -> Result<Overview> {
        let active = SessionFilter {
            statuses: vec![SessionStatus::Active],
            ..SessionFilter::default()
        };
        let (_, active_now) = self.login().list_sessions(app, &active, 1, 0, now).await?;
        let since_day = Timestamp(now.as_millis().div_euclid(HOUR_MS) * HOUR_MS - 23 * HOUR_MS);
        let hourly_counts = self
            .store()
            .count_events(&app.id, since_day, HOUR_MS)
            .await?;
        let since_month = Timestamp(now.as_millis().div_euclid(DAY_MS) * DAY_MS - 29 * DAY_MS);
        let daily_counts = self
            .store()
            .count_events(&app.id, since_month, DAY_MS)
            .await?;
        let (recent, _) = self
            .store()
            .list_verifications(
                &app.id,
                VerificationOrder::Created,
                true,
                RECENT_VERIFICATIONS,
                0,
            )
            .await?;
        Ok(Overview {
            active_now,
            hourly: session_series(&hourly_counts, active_now, now, HOUR_MS, 24),
            daily: session_series(&daily_counts, active_now, now, DAY_MS, 30),
            outcomes: outcomes(&recent, now),
            verifications_read: recent.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_walks_the_active_count_back_through_creations_and_ends() {
        let now = Timestamp(10 * HOUR_MS + 5);
        let counts = [
            EventCount {
                bucket: 9 * HOUR_MS,
                kind: EventType::SessionCreated,
                count: 4,
            },
            EventCount {
                bucket: 10 * HOUR_MS,
                kind: EventType::SessionRevoked,
                count: 1,
            },
            EventCount {
                bucket: 10 * HOUR_MS,
                kind: EventType::SessionExpired,
                count: 1,
            },
            // Outside the window: ignored.
            EventCount {
                bucket: 2 * HOUR_MS,
                kind: EventType::SessionCreated,
                count: 99,
            },
        ];
        let s = session_series(&counts, 2, now, HOUR_MS, 3);
        assert_eq!(
            s.iter().map(|b| b.start.0 / HOUR_MS).collect::<Vec<_>>(),
            [8, 9, 10]
        );
        assert_eq!(s[2].active, 2);
        assert_eq!((s[2].revoked, s[2].ended), (1, 2));
        assert_eq!(s[1].active, 4);
        assert_eq!(s[1].created, 4);
        assert_eq!(s[0].active, 0);
    }
}
