//! Logging setup: JSON lines by default, a human format on request.

use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::LogFormat;

/// `to_stdout`: the server logs to stdout; other commands log to stderr so that their output
/// (often JSON for scripts) stays clean.
pub fn init(format: LogFormat, level: &str, to_stdout: bool) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| parse_filter(&v))
        .or_else(|| parse_filter(level))
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO));
    let builder = tracing_subscriber::fmt::layer()
        .with_span_events(FmtSpan::NONE)
        .with_writer(move || -> Box<dyn std::io::Write> {
            if to_stdout {
                Box::new(std::io::stdout())
            } else {
                Box::new(std::io::stderr())
            }
        });
    let registry = tracing_subscriber::registry().with(filter);
    let _ = match format {
        // Span fields (request_id, method, path, app) are on every line inside a request.
        LogFormat::Json => registry
            .with(
                builder
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false),
            )
            .try_init(),
        LogFormat::Pretty => registry.with(builder.compact()).try_init(),
    };
}

/// A log filter: `level` or `target=level` directives separated by commas, e.g.
/// `sessiond=debug,info`. Targets are Rust module paths; anything else is refused rather than
/// silently matching nothing.
pub fn parse_filter(text: &str) -> Option<Targets> {
    let is_level = |l: &str| l.eq_ignore_ascii_case("off") || l.parse::<tracing::Level>().is_ok();
    let is_target = |t: &str| {
        !t.is_empty()
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '-'))
    };
    let valid = text
        .split(',')
        .map(str::trim)
        .all(|d| match d.split_once('=') {
            Some((target, level)) => is_target(target) && is_level(level),
            None => is_level(d) || is_target(d),
        });
    if valid { text.parse().ok() } else { None }
}

#[cfg(test)]
mod tests {
    use super::parse_filter;

    #[test]
    fn log_filters_accept_levels_and_targets_and_refuse_junk() {
        for ok in [
            "info",
            "sessiond=debug,info",
            "off",
            "sqlx=warn, sessiond_http=trace",
        ] {
            assert!(parse_filter(ok).is_some(), "{ok}");
        }
        for bad in ["[[[", "info,", "sessiond=loud", "a b=info", ""] {
            assert!(parse_filter(bad).is_none(), "{bad}");
        }
    }
}
