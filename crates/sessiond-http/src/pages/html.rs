//! Server-rendered HTML of the hosted verification pages. Every dynamic value is escaped.

use std::fmt::Write as _;

use sessiond_core::verification::provider::FormField;
use sessiond_core::verification::service::{Page, View};

use super::handoff::Delivery;
use sessiond_core::verification::{FailReason, State};

pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

pub fn document(title: &str, app: Option<&str>, head_extra: &str, body: &str) -> String {
    let header = app.map_or(String::new(), |a| {
        format!(
            "<header><p>Identity verification for <strong>{}</strong></p></header>",
            esc(a)
        )
    });
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"referrer\" content=\"no-referrer\">{head_extra}\
         <title>{}</title><link rel=\"icon\" href=\"data:,\"><link rel=\"stylesheet\" href=\"/verify/assets/verify.css\"></head>\
         <body><main>{header}{body}</main>\
         <script src=\"/verify/assets/verify.js\" defer></script></body></html>",
        esc(title)
    )
}

fn hidden(page: &Page, action: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"t\" value=\"{}\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <input type=\"hidden\" name=\"action\" value=\"{}\">",
        esc(&page.token),
        esc(&page.csrf),
        esc(action)
    )
}

fn cancel_form(page: &Page) -> String {
    format!(
        "<form class=\"inline\" method=\"post\" action=\"/verify/step\">{}\
         <button type=\"submit\" class=\"secondary\">Cancel verification</button></form>",
        hidden(page, "cancel")
    )
}

fn back_form(page: &Page) -> String {
    format!(
        "<form class=\"inline\" method=\"post\" action=\"/verify/step\">{}\
         <button type=\"submit\" class=\"secondary\">Choose another method</button></form>",
        hidden(page, "back")
    )
}

fn field_html(f: &FormField, value: &str, error: Option<&String>, first: bool) -> String {
    let id = format!("f-{}", f.name);
    let mut describedby = Vec::new();
    let hint = f.hint.map_or(String::new(), |h| {
        describedby.push(format!("{id}-hint"));
        format!("<span class=\"hint\" id=\"{id}-hint\">{}</span>", esc(h))
    });
    let err = error.map_or(String::new(), |e| {
        describedby.push(format!("{id}-error"));
        format!(
            "<span class=\"field-error\" id=\"{id}-error\">{}</span>",
            esc(e)
        )
    });
    let mode = if f.kind == "numeric" {
        " inputmode=\"numeric\" pattern=\"[0-9]*\""
    } else {
        ""
    };
    format!(
        "<label for=\"{id}\">{}{}{hint}</label>{err}<input type=\"text\" id=\"{id}\" name=\"{}\" value=\"{}\"{}{}{}{}{}>",
        esc(f.label),
        if f.required { "" } else { " (optional)" },
        esc(f.name),
        esc(value),
        mode,
        f.autocomplete
            .map_or(String::new(), |a| format!(" autocomplete=\"{}\"", esc(a))),
        if f.required { " required" } else { "" },
        if describedby.is_empty() {
            String::new()
        } else {
            format!(" aria-describedby=\"{}\"", describedby.join(" "))
        },
        if error.is_some() {
            " aria-invalid=\"true\"".to_owned()
        } else if first {
            " autofocus".to_owned()
        } else {
            String::new()
        }
    )
}

pub fn reason_text(s: Option<State>) -> &'static str {
    match s {
        Some(State::Failed(FailReason::NoMatch)) => {
            "The details you entered did not match our records."
        }
        Some(State::Failed(FailReason::UserCanceled)) => "You cancelled the verification.",
        Some(State::Failed(FailReason::Internal)) => "Something went wrong on our side.",
        Some(State::Failed(_)) => "The verification did not succeed.",
        Some(State::Cancelled) => "The site that requested this verification cancelled it.",
        Some(State::Expired) => "This verification took too long and expired.",
        _ => "The verification did not succeed.",
    }
}

/// The page for a view (the finished redirect case is answered with a 303 by the caller).
/// The page; `delivery` is the hand-off of a finished session (see `handoff::delivery`).
pub fn render(page: &Page, delivery: Option<&Delivery>) -> String {
    let app = page.application_name.as_str();
    let mut body = String::new();
    let mut head = String::new();
    let title;
    match &page.view {
        View::ChooseProvider(cards) => {
            title = "Choose how to verify";
            body.push_str("<h1>Choose how to verify your identity</h1>");
            if cards.is_empty() {
                body.push_str("<p>No verification method is available for this request.</p>");
            } else {
                let _ = write!(
                    body,
                    "<form method=\"post\" action=\"/verify/step\">{}<ul class=\"choices\">",
                    hidden(page, "choose_provider")
                );
                for c in cards {
                    let _ = write!(
                        body,
                        "<li><button type=\"submit\" class=\"choice\" name=\"provider\" value=\"{}\">\
                         <img src=\"/verify/assets/{}\" alt=\"\"><span>{}<small>{}</small></span></button></li>",
                        esc(&c.id),
                        esc(&c.logo),
                        esc(&c.name),
                        esc(&c.description)
                    );
                }
                body.push_str("</ul></form>");
            }
            body.push_str(&cancel_form(page));
        }
        View::Form {
            provider,
            fields,
            values,
            errors,
            can_go_back,
        } => {
            title = "Enter your details";
            let _ = write!(
                body,
                "<h1>Enter your details</h1><p class=\"lead\">{}</p>",
                esc(provider)
            );
            if !errors.is_empty() {
                body.push_str(
                    "<div class=\"errors\" role=\"alert\"><h2>Please correct the following</h2><ul>",
                );
                for f in fields {
                    if let Some(e) = errors.get(f.name) {
                        let _ = write!(
                            body,
                            "<li><a href=\"#f-{}\">{}: {}</a></li>",
                            esc(f.name),
                            esc(f.label),
                            esc(e)
                        );
                    }
                }
                body.push_str("</ul></div>");
            }
            let _ = write!(
                body,
                "<form method=\"post\" action=\"/verify/step\" novalidate>{}",
                hidden(page, "submit")
            );
            for (i, f) in fields.iter().enumerate() {
                let v = values.get(f.name).map_or("", String::as_str);
                body.push_str(&field_html(f, v, errors.get(f.name), i == 0));
            }
            body.push_str("<button type=\"submit\">Verify</button></form>");
            if *can_go_back {
                body.push_str(&back_form(page));
            }
            body.push_str(&cancel_form(page));
        }
        View::ChooseSubProvider {
            provider,
            choices,
            can_go_back,
        } => {
            title = "Choose your provider";
            let _ = write!(
                body,
                "<h1>Choose your provider</h1><p class=\"lead\">{}</p>\
                 <form method=\"post\" action=\"/verify/step\">{}<ul class=\"choices\">",
                esc(provider),
                hidden(page, "submit")
            );
            for c in choices {
                let _ = write!(
                    body,
                    "<li><button type=\"submit\" class=\"choice\" name=\"choice\" value=\"{}\"><span>{}<small>{}</small></span></button></li>",
                    esc(&c.id),
                    esc(&c.label),
                    esc(&c.description)
                );
            }
            body.push_str("</ul></form>");
            if *can_go_back {
                body.push_str(&back_form(page));
            }
            body.push_str(&cancel_form(page));
        }
        View::Deeplink {
            provider, content, ..
        } => {
            title = "Continue in your wallet";
            // Reloads to notice completion and to show a fresh link before this one expires.
            let _ = write!(
                head,
                "<meta http-equiv=\"refresh\" content=\"5;url=/verify/launch?t={}\">",
                esc(&page.token)
            );
            let _ = write!(
                body,
                "<h1>Continue in your wallet</h1><p class=\"lead\">{}</p>\
                 <p>Open this link on the phone that holds your wallet. It changes every few \
                 seconds; this page updates by itself.</p>\
                 <p><a class=\"button\" id=\"deeplink\" href=\"{}\">Open wallet</a></p>\
                 <p class=\"deeplink\">{}</p><p role=\"status\">Waiting for your wallet…</p>",
                esc(provider),
                esc(content),
                esc(content)
            );
            body.push_str(&cancel_form(page));
        }
        View::External(url) => {
            title = "Continue with your provider";
            let _ = write!(
                body,
                "<h1>Continue with your provider</h1><p><a class=\"button\" href=\"{}\">Continue</a></p>",
                esc(url)
            );
        }
        View::Finished { reason, handoff } => {
            let success = &handoff.success;
            title = if *success {
                "Verification complete"
            } else {
                "Verification not completed"
            };
            if *success {
                body.push_str(
                    "<h1>Verification complete</h1><p class=\"status ok\" role=\"status\">Your identity was verified.</p>",
                );
            } else {
                let _ = write!(
                    body,
                    "<h1>Verification not completed</h1><p class=\"status fail\" role=\"status\">{}</p>",
                    esc(reason_text(*reason))
                );
            }
            match delivery {
                None => {}
                Some(Delivery::Redirect(url)) => {
                    let _ = write!(
                        body,
                        "<p><a class=\"button\" href=\"{}\">Continue</a></p>",
                        esc(url)
                    );
                }
                Some(Delivery::PostMessage {
                    target,
                    message,
                    origins,
                }) => {
                    let origins = serde_json::to_string(origins).unwrap_or_else(|_| "[]".into());
                    let _ = write!(
                        body,
                        "<div id=\"sessiond-result\" data-target=\"{}\" data-message=\"{}\" data-origins=\"{}\"></div>\
                         <p id=\"sessiond-delivery\" role=\"status\">Sending the result back…</p>",
                        esc(target),
                        esc(&message.to_string()),
                        esc(&origins)
                    );
                }
            }
        }
    }
    document(title, Some(app), &head, &body)
}

pub fn error_page(title: &str, message: &str) -> String {
    document(
        title,
        None,
        "",
        &format!(
            "<h1>{}</h1><p class=\"status fail\" role=\"alert\">{}</p>",
            esc(title),
            esc(message)
        ),
    )
}
