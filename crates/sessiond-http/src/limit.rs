//! Rate limits, as token buckets on the node: one per application (requests), one per client
//! address (failed authentications). Time comes from the application clock, so tests drive it.
//!
//! Limits are per node: with several nodes behind a load balancer an application may get up to
//! the limit from each.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use sessiond_core::application::AppId;
use sessiond_core::clock::Timestamp;

/// Server-wide limits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimits {
    /// Requests per second an application may make by default (its settings may say otherwise);
    /// 0 turns the application limit off.
    pub app_per_sec: u32,
    /// Requests an application may burst above its rate, as seconds of that rate.
    pub app_burst_secs: u32,
    /// Failed authentications a client address may make per minute before its requests are
    /// refused; 0 turns the limit off.
    pub auth_failures_per_min: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            app_per_sec: 10_000,
            app_burst_secs: 2,
            auth_failures_per_min: 30,
        }
    }
}

/// Most client addresses tracked; past it, addresses whose bucket has refilled are forgotten.
const MAX_TRACKED_CLIENTS: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: i64,
}

impl Bucket {
    fn full(capacity: f64, now: i64) -> Self {
        Bucket {
            tokens: capacity,
            at: now,
        }
    }

    fn refill(&mut self, rate_per_ms: f64, capacity: f64, now: i64) {
        let elapsed = (now - self.at).max(0) as f64;
        self.tokens = (self.tokens + elapsed * rate_per_ms).min(capacity);
        self.at = now.max(self.at);
    }

    /// Takes one token, or says in how many whole seconds one will be there.
    fn take(&mut self, rate_per_ms: f64) -> Result<(), u64> {
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(retry_secs(1.0 - self.tokens, rate_per_ms))
        }
    }
}

fn retry_secs(missing: f64, rate_per_ms: f64) -> u64 {
    let ms = missing / rate_per_ms;
    ((ms / 1000.0).ceil() as u64).max(1)
}

/// The node's buckets.
#[derive(Debug)]
pub struct RateLimiter {
    limits: RateLimits,
    apps: Mutex<HashMap<AppId, Bucket>>,
    clients: Mutex<HashMap<IpAddr, Bucket>>,
}

impl RateLimiter {
    pub fn new(limits: RateLimits) -> Self {
        RateLimiter {
            limits,
            apps: Mutex::new(HashMap::new()),
            clients: Mutex::new(HashMap::new()),
        }
    }

    pub fn limits(&self) -> RateLimits {
        self.limits
    }

    /// Counts one request of `app` at `rate` per second (`None`: the server default). `Err`
    /// carries the seconds until the next request would be allowed.
    pub fn admit_app(&self, app: &AppId, rate: Option<u32>, now: Timestamp) -> Result<(), u64> {
        let rate = rate.unwrap_or(self.limits.app_per_sec);
        if rate == 0 {
            return Ok(());
        }
        let per_ms = f64::from(rate) / 1000.0;
        let capacity = f64::from(rate) * f64::from(self.limits.app_burst_secs.max(1));
        let Ok(mut apps) = self.apps.lock() else {
            return Ok(());
        };
        let b = apps
            .entry(app.clone())
            .or_insert_with(|| Bucket::full(capacity, now.0));
        b.refill(per_ms, capacity, now.0);
        b.take(per_ms)
    }

    fn auth_params(&self) -> Option<(f64, f64)> {
        let n = self.limits.auth_failures_per_min;
        (n > 0).then(|| (f64::from(n) / 60_000.0, f64::from(n)))
    }

    /// Whether `client` may try to authenticate: `Err` (seconds to wait) once its failures have
    /// used up its allowance.
    pub fn check_client(&self, client: IpAddr, now: Timestamp) -> Result<(), u64> {
        let Some((per_ms, capacity)) = self.auth_params() else {
            return Ok(());
        };
        let Ok(mut clients) = self.clients.lock() else {
            return Ok(());
        };
        match clients.get_mut(&client) {
            None => Ok(()),
            Some(b) => {
                b.refill(per_ms, capacity, now.0);
                if b.tokens >= 1.0 {
                    Ok(())
                } else {
                    Err(retry_secs(1.0 - b.tokens, per_ms))
                }
            }
        }
    }

    /// Records a failed authentication of `client`.
    pub fn failed_auth(&self, client: IpAddr, now: Timestamp) {
        let Some((per_ms, capacity)) = self.auth_params() else {
            return;
        };
        let Ok(mut clients) = self.clients.lock() else {
            return;
        };
        if clients.len() >= MAX_TRACKED_CLIENTS && !clients.contains_key(&client) {
            clients.retain(|_, b| {
                b.refill(per_ms, capacity, now.0);
                b.tokens < capacity
            });
        }
        let b = clients
            .entry(client)
            .or_insert_with(|| Bucket::full(capacity, now.0));
        b.refill(per_ms, capacity, now.0);
        let _ = b.take(per_ms);
    }
}

impl Default for RateLimiter {
    fn default() -> Self {
        RateLimiter::new(RateLimits::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn application_bucket_allows_the_burst_then_the_rate() {
        let l = RateLimiter::new(RateLimits {
            app_per_sec: 10,
            app_burst_secs: 2,
            auth_failures_per_min: 0,
        });
        let app = AppId::new();
        let t = Timestamp(1_000_000);
        for _ in 0..20 {
            assert_eq!(l.admit_app(&app, None, t), Ok(()));
        }
        assert_eq!(l.admit_app(&app, None, t), Err(1));
        // 100 ms later one more token is there.
        assert_eq!(l.admit_app(&app, None, Timestamp(t.0 + 100)), Ok(()));
        assert!(l.admit_app(&app, None, Timestamp(t.0 + 100)).is_err());
        assert_eq!(l.admit_app(&app, Some(0), t), Ok(()), "0 is off");
        let other = AppId::new();
        assert_eq!(
            l.admit_app(&other, None, t),
            Ok(()),
            "buckets are per application"
        );
    }

    #[test]
    fn failed_authentications_block_the_client_for_a_while() {
        let l = RateLimiter::new(RateLimits {
            app_per_sec: 0,
            app_burst_secs: 1,
            auth_failures_per_min: 6,
        });
        let ip: IpAddr = [192, 0, 2, 1].into();
        let t = Timestamp(5_000_000);
        for _ in 0..6 {
            assert_eq!(l.check_client(ip, t), Ok(()));
            l.failed_auth(ip, t);
        }
        assert_eq!(
            l.check_client(ip, t),
            Err(10),
            "one failure back every 10 s"
        );
        assert_eq!(l.check_client([192, 0, 2, 2].into(), t), Ok(()));
        assert_eq!(l.check_client(ip, Timestamp(t.0 + 10_000)), Ok(()));
    }
}
