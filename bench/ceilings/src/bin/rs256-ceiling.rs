//! The crypto ceiling: RS256-2048 signing with a key parsed once (the same code sessiond mints
//! with), on N threads for D seconds. Prints one JSON line: signatures/s and per-signature
//! latency percentiles. Usage: rs256-ceiling THREADS SECONDS

use std::time::{Duration, Instant};

use sessiond_crypto::jwt::SigningKey;

fn main() {
    let mut args = std::env::args().skip(1);
    let threads: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1).max(1);
    let secs: f64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(5.0);
    let Ok((key, _)) = SigningKey::generate_rs256() else {
        eprintln!("rs256-ceiling: key generation failed");
        std::process::exit(1);
    };
    let key = std::sync::Arc::new(key);
    let claims = serde_json::json!({
        "exp": 1_800_000_060, "iat": 1_800_000_000, "iss": "https://app.sessiond.localhost",
        "nbf": 1_799_999_990, "sid": "sess_0000000000000000000000", "sub": "user_0000000000000000000000",
        "sts": "active", "v": 2,
    });
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let key = key.clone();
            let claims = claims.clone();
            std::thread::spawn(move || {
                let mut lat = Vec::with_capacity(1 << 16);
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let jwt = key.sign_jwt(Some("ins_0"), &[], &claims);
                    std::hint::black_box(jwt);
                    lat.push(t.elapsed().as_nanos() as u64);
                }
                lat
            })
        })
        .collect();
    let mut all: Vec<u64> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap_or_default())
        .collect();
    all.sort_unstable();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0) as f64
            / 1e6
    };
    println!(
        "{}",
        serde_json::json!({"rps": all.len() as f64 / secs, "p50_ms": pct(0.50), "p99_ms": pct(0.99), "threads": threads})
    );
}
