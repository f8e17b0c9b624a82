//! The console's HTML: the page frame, the building blocks every page uses, and the charts
//! (SVG drawn here, so the page needs no script to show them). Every dynamic value is escaped.

use std::fmt::Write as _;

use sessiond_core::Timestamp;
use sessiond_core::console::Operator;
use sessiond_core::console::overview::Bucket;
use sessiond_core::session::SessionStatus;

pub use crate::pages::html::esc;

/// What the frame needs to know about the request.
pub struct Frame<'a> {
    pub operator: Option<&'a Operator>,
    /// Anti-forgery token for the frame's own forms (sign out).
    pub csrf: &'a str,
    /// The application in view, for the section navigation: (id, name).
    pub app: Option<(&'a str, &'a str)>,
    /// Which navigation entry is current.
    pub current: &'a str,
}

pub fn document(title: &str, frame: &Frame<'_>, body: &str) -> String {
    let mut nav = String::new();
    if let Some(op) = frame.operator {
        let link = |href: &str, label: &str, key: &str| {
            let cur = if key == frame.current {
                " aria-current=\"page\""
            } else {
                ""
            };
            format!("<li><a href=\"{href}\"{cur}>{label}</a></li>")
        };
        nav.push_str("<nav aria-label=\"Console\"><ul>");
        nav.push_str(&link("/console/apps", "Applications", "apps"));
        nav.push_str(&link("/console/audit", "Audit log", "audit"));
        nav.push_str(&link("/console/account", "Account", "account"));
        nav.push_str("</ul></nav>");
        let _ = write!(
            nav,
            "<div class=\"who\"><span>{} <span class=\"badge\">{}</span></span>\
             <form method=\"post\" action=\"/console/sign-out\">{}\
             <button type=\"submit\" class=\"link\">Sign out</button></form></div>",
            esc(&op.email),
            op.role.as_str(),
            csrf_field(frame.csrf)
        );
    }
    let mut sub = String::new();
    if let Some((id, name)) = frame.app {
        let base = format!("/console/apps/{}", esc(id));
        sub.push_str("<nav aria-label=\"Application\" class=\"sub\"><p class=\"app-name\">");
        sub.push_str(&esc(name));
        sub.push_str("</p><ul>");
        for (path, label, key) in [
            ("", "Overview", "overview"),
            ("/users", "Users", "users"),
            ("/sessions", "Sessions", "sessions"),
            ("/verifications", "Verifications", "verifications"),
            ("/webhooks", "Webhooks", "webhooks"),
            ("/settings", "Settings and keys", "settings"),
        ] {
            let cur = if key == frame.current {
                " aria-current=\"page\""
            } else {
                ""
            };
            let _ = write!(sub, "<li><a href=\"{base}{path}\"{cur}>{label}</a></li>");
        }
        sub.push_str("</ul></nav>");
    }
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"referrer\" content=\"no-referrer\">\
         <title>{} · sessiond console</title><link rel=\"icon\" href=\"data:,\">\
         <link rel=\"stylesheet\" href=\"/console/assets/console.css\"></head>\
         <body><a class=\"skip\" href=\"#main\">Skip to content</a>\
         <header class=\"top\"><a class=\"brand\" href=\"/console\">sessiond console</a>{nav}</header>\
         {sub}<main id=\"main\" tabindex=\"-1\">{body}</main>\
         <script src=\"/console/assets/console.js\" defer></script></body></html>",
        esc(title)
    )
}

pub fn csrf_field(token: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        esc(token)
    )
}

/// A form that posts one action, as a single button. `confirm` asks first (console.js).
pub fn action_button(
    action: &str,
    csrf: &str,
    label: &str,
    class: &str,
    confirm: Option<&str>,
) -> String {
    let confirm = confirm.map_or(String::new(), |c| format!(" data-confirm=\"{}\"", esc(c)));
    format!(
        "<form method=\"post\" action=\"{}\" class=\"inline\"{confirm}>{}\
         <button type=\"submit\" class=\"{class}\">{}</button></form>",
        esc(action),
        csrf_field(csrf),
        esc(label)
    )
}

/// A table with a caption; cells are HTML already escaped by the caller.
pub fn table(caption: &str, headers: &[&str], rows: &[Vec<String>]) -> String {
    if rows.is_empty() {
        return format!("<p class=\"empty\">{}: none.</p>", esc(caption));
    }
    let mut t = format!(
        "<div class=\"table\" role=\"region\" aria-label=\"{0}\" tabindex=\"0\"><table><caption>{0}</caption><thead><tr>",
        esc(caption)
    );
    for h in headers {
        let _ = write!(t, "<th scope=\"col\">{}</th>", esc(h));
    }
    t.push_str("</tr></thead><tbody>");
    for r in rows {
        t.push_str("<tr>");
        for c in r {
            let _ = write!(t, "<td>{c}</td>");
        }
        t.push_str("</tr>");
    }
    t.push_str("</tbody></table></div>");
    t
}

/// `<dl>` of label/value pairs; values are HTML already escaped by the caller.
pub fn facts(pairs: &[(&str, String)]) -> String {
    let mut s = String::from("<dl class=\"facts\">");
    for (k, v) in pairs {
        let _ = write!(s, "<div><dt>{}</dt><dd>{v}</dd></div>", esc(k));
    }
    s.push_str("</dl>");
    s
}

pub fn link(href: &str, text: &str) -> String {
    format!("<a href=\"{}\">{}</a>", esc(href), esc(text))
}

pub fn code(s: &str) -> String {
    format!("<code>{}</code>", esc(s))
}

/// A status badge: the word is always there, colour only repeats it.
pub fn status_badge(status: SessionStatus) -> String {
    let kind = match status {
        SessionStatus::Active => "ok",
        SessionStatus::Pending => "warn",
        _ => "off",
    };
    format!(
        "<span class=\"badge {kind}\">{}</span>",
        esc(status.as_str())
    )
}

pub fn badge(text: &str, kind: &str) -> String {
    format!("<span class=\"badge {kind}\">{}</span>", esc(text))
}

/// UTC date and time to the second, in a `<time>` element.
pub fn time(t: Timestamp) -> String {
    let iso = iso(t);
    format!(
        "<time datetime=\"{iso}\">{}</time>",
        iso.replace('T', " ").trim_end_matches('Z')
    )
}

pub fn opt_time(t: Option<Timestamp>) -> String {
    t.map_or_else(|| "—".to_owned(), time)
}

pub fn iso(t: Timestamp) -> String {
    let secs = t.as_millis().div_euclid(1000);
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| t.as_millis().to_string())
}

pub fn error_box(text: &str) -> String {
    format!("<p class=\"error\" role=\"alert\">{}</p>", esc(text))
}

/// One series of a chart: its name, its CSS class, and its value in a bucket.
pub type Series<'a> = (&'a str, &'a str, fn(&Bucket) -> u64);

/// A bar chart of `series` (one value per bucket), with an accessible table beside it for
/// readers who do not see the picture.
pub fn bar_chart(title: &str, buckets: &[Bucket], series: &[Series<'_>]) -> String {
    const W: f64 = 720.0;
    const H: f64 = 180.0;
    const PAD_L: f64 = 40.0;
    const PAD_B: f64 = 22.0;
    let max = buckets
        .iter()
        .flat_map(|b| series.iter().map(move |(_, _, f)| f(b)))
        .max()
        .unwrap_or(0)
        .max(1);
    let n = buckets.len().max(1) as f64;
    let slot = (W - PAD_L) / n;
    let bar = (slot * 0.8) / series.len().max(1) as f64;
    let mut svg = format!(
        "<svg viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{}\" class=\"chart\">",
        esc(title)
    );
    let _ = write!(
        svg,
        "<line x1=\"{PAD_L}\" y1=\"{y}\" x2=\"{W}\" y2=\"{y}\" class=\"axis\"/>\
         <text x=\"{tx}\" y=\"12\" class=\"tick\" text-anchor=\"end\">{max}</text>\
         <text x=\"{tx}\" y=\"{y}\" class=\"tick\" text-anchor=\"end\">0</text>",
        y = H - PAD_B,
        tx = PAD_L - 4.0
    );
    for (i, b) in buckets.iter().enumerate() {
        let x0 = PAD_L + slot * i as f64 + slot * 0.1;
        for (j, (_, class, f)) in series.iter().enumerate() {
            let v = f(b);
            let h = (H - PAD_B - 14.0) * v as f64 / max as f64;
            let _ = write!(
                svg,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" class=\"{class}\"/>",
                x0 + bar * j as f64,
                H - PAD_B - h,
                bar.max(1.0),
                h
            );
        }
    }
    let label_every = (buckets.len() / 6).max(1);
    for (i, b) in buckets.iter().enumerate().step_by(label_every) {
        let x = PAD_L + slot * i as f64 + slot / 2.0;
        let _ = write!(
            svg,
            "<text x=\"{x:.1}\" y=\"{}\" class=\"tick\" text-anchor=\"middle\">{}</text>",
            H - 6.0,
            esc(&short_label(b.start, buckets))
        );
    }
    svg.push_str("</svg>");
    let mut legend = String::from("<ul class=\"legend\">");
    for (name, class, _) in series {
        let _ = write!(
            legend,
            "<li><span class=\"swatch {class}\" aria-hidden=\"true\"></span>{}</li>",
            esc(name)
        );
    }
    legend.push_str("</ul>");
    let mut headers = vec!["Start (UTC)"];
    headers.extend(series.iter().map(|(n, _, _)| *n));
    let rows: Vec<Vec<String>> = buckets
        .iter()
        .map(|b| {
            let mut r = vec![esc(&iso(b.start))];
            r.extend(series.iter().map(|(_, _, f)| f(b).to_string()));
            r
        })
        .collect();
    format!(
        "<figure class=\"chart\"><figcaption>{}</figcaption>{svg}{legend}\
         <details><summary>Figures</summary>{}</details></figure>",
        esc(title),
        table(title, &headers, &rows)
    )
}

/// Horizontal stacked bars, one per row (e.g. a provider), each split into `parts` (name, CSS
/// class); every row is labelled in the picture and the caller shows the figures as a table.
pub fn stacked_bars(title: &str, parts: &[(&str, &str)], rows: &[(String, Vec<u64>)]) -> String {
    const W: f64 = 720.0;
    const LABEL: f64 = 190.0;
    const ROW: f64 = 28.0;
    if rows.is_empty() {
        return String::new();
    }
    let h = ROW * rows.len() as f64 + 8.0;
    let max = rows
        .iter()
        .map(|(_, v)| v.iter().sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1);
    let mut svg = format!(
        "<svg viewBox=\"0 0 {W} {h}\" role=\"img\" aria-label=\"{}\" class=\"chart\">",
        esc(title)
    );
    for (i, (name, values)) in rows.iter().enumerate() {
        let y = 4.0 + ROW * i as f64;
        let total: u64 = values.iter().sum();
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" class=\"tick\" text-anchor=\"end\">{}</text>",
            LABEL - 8.0,
            y + ROW * 0.6,
            esc(name)
        );
        let mut x = LABEL;
        for (v, (_, class)) in values.iter().zip(parts) {
            let w = (W - LABEL - 40.0) * *v as f64 / max as f64;
            if w > 0.0 {
                let _ = write!(
                    svg,
                    "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{:.1}\" class=\"{class}\"/>",
                    ROW - 8.0
                );
            }
            x += w;
        }
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" class=\"tick\">{total}</text>",
            x + 4.0,
            y + ROW * 0.6
        );
    }
    svg.push_str("</svg>");
    let mut legend = String::from("<ul class=\"legend\">");
    for (name, class) in parts {
        let _ = write!(
            legend,
            "<li><span class=\"swatch {class}\" aria-hidden=\"true\"></span>{}</li>",
            esc(name)
        );
    }
    legend.push_str("</ul>");
    format!(
        "<figure class=\"chart\"><figcaption>{}</figcaption>{svg}{legend}</figure>",
        esc(title)
    )
}

/// An axis label: the hour for hourly buckets, the date for daily ones.
fn short_label(t: Timestamp, buckets: &[Bucket]) -> String {
    let width = match buckets {
        [a, b, ..] => b.start.as_millis() - a.start.as_millis(),
        _ => 0,
    };
    let iso = iso(t);
    if width < 86_400_000 {
        iso.get(11..16).unwrap_or("").to_owned()
    } else {
        iso.get(5..10).unwrap_or("").to_owned()
    }
}
