//! What a relying party's own integration can run, decided without I/O: the capabilities it
//! declares against what a provider's first step needs, and which providers suit a user.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::provider::{Next, Provider};

/// Something a relying party's integration can do for an "advanced" session, which runs a
/// provider without the hosted pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Capability {
    /// Open a URL in the user's browser.
    LaunchBrowser,
    /// Get a deep link to the user's phone (or show it as a QR code).
    DeeplinkToMobile,
    /// Show text to the user.
    ShowContent,
    /// Fetch a fresh deep link when the current one is about to expire.
    RefreshStepContent,
    /// Receive the browser back at the redirect URL and read the result then.
    CaptureRedirect,
    /// Ask for the result until it is there.
    PollResult,
    /// Ask for the result after the browser came back.
    PollAfterRedirect,
}

impl Capability {
    pub const ALL: [Capability; 7] = [
        Capability::LaunchBrowser,
        Capability::DeeplinkToMobile,
        Capability::ShowContent,
        Capability::RefreshStepContent,
        Capability::CaptureRedirect,
        Capability::PollResult,
        Capability::PollAfterRedirect,
    ];
}

/// How an advanced session can start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Negotiated {
    /// The integration runs the provider's first step itself.
    Direct,
    /// The hosted pages run it; the browser comes back to the redirect URL.
    Hosted,
    /// Neither; why.
    Refused(Gap),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gap {
    /// The step needs these capabilities.
    Missing(Vec<Capability>),
    /// The step is a redirect, and there is no redirect URL to come back to.
    NoRedirectUrl,
    /// The step asks the user for input (a form or a choice): only the hosted pages can.
    NeedsHostedPages,
    /// Falling back to the hosted pages needs a redirect URL and these capabilities.
    CannotFallBack(Vec<Capability>),
}

/// What running `next` without the hosted pages needs; `None` when only they can run it.
pub fn needs(next: &Next, refreshable: bool) -> Option<Vec<Capability>> {
    use Capability::*;
    match next {
        Next::Done(_) => Some(vec![PollResult]),
        Next::Deeplink(_) if refreshable => {
            Some(vec![DeeplinkToMobile, PollResult, RefreshStepContent])
        }
        Next::Deeplink(_) => Some(vec![DeeplinkToMobile, PollResult]),
        Next::Redirect(_) => Some(vec![LaunchBrowser, CaptureRedirect]),
        Next::Form { .. } | Next::Choose(_) => None,
    }
}

/// Decides how an advanced session starts from what the first step needs and what the relying
/// party declared.
pub fn negotiate(
    next: &Next,
    refreshable: bool,
    declared: &[Capability],
    has_redirect_url: bool,
    fallback_to_hosted: bool,
) -> Negotiated {
    let lacking = |want: &[Capability]| -> Vec<Capability> {
        want.iter()
            .copied()
            .filter(|c| !declared.contains(c))
            .collect()
    };
    let direct_gap = match needs(next, refreshable).map(|want| lacking(&want)) {
        None => Some(Gap::NeedsHostedPages),
        Some(missing) if !missing.is_empty() => Some(Gap::Missing(missing)),
        Some(_) if matches!(next, Next::Redirect(_)) && !has_redirect_url => {
            Some(Gap::NoRedirectUrl)
        }
        Some(_) => None,
    };
    let Some(gap) = direct_gap else {
        return Negotiated::Direct;
    };
    if !fallback_to_hosted {
        return Negotiated::Refused(gap);
    }
    let missing = lacking(&[Capability::LaunchBrowser, Capability::CaptureRedirect]);
    if missing.is_empty() && has_redirect_url {
        Negotiated::Hosted
    } else {
        Negotiated::Refused(Gap::CannotFallBack(missing))
    }
}

/// ITU calling codes of the countries the built-in providers cover, longest first.
const CALLING_CODES: [(&str, &str); 5] = [
    ("1", "US"),
    ("44", "GB"),
    ("52", "MX"),
    ("55", "BR"),
    ("62", "ID"),
];

/// The country (ISO 3166 alpha-2) of an E.164 phone number, where the providers know it.
pub fn country_of_phone(phone: &str) -> Option<&'static str> {
    let digits = phone.strip_prefix('+')?;
    CALLING_CODES
        .into_iter()
        .find(|(code, _)| digits.starts_with(code))
        .map(|(_, c)| c)
}

/// Providers for a user, each list in the order given.
pub struct Recommendation {
    /// Those that cover the user's countries (named, or the phone number's).
    pub relevant: Vec<Arc<dyn Provider>>,
    pub remainder: Vec<Arc<dyn Provider>>,
}

/// Splits `providers` into those that suit the user and the rest.
pub fn recommend(
    providers: impl Iterator<Item = Arc<dyn Provider>>,
    phone: Option<&str>,
    countries: &[String],
) -> Recommendation {
    let mut wanted: Vec<String> = countries.iter().map(|c| c.to_ascii_uppercase()).collect();
    if let Some(c) = phone.and_then(country_of_phone) {
        wanted.push(c.to_owned());
    }
    let (relevant, remainder) = providers.partition(|p| {
        p.info()
            .geography
            .iter()
            .any(|g| wanted.iter().any(|w| w == g))
    });
    Recommendation {
        relevant,
        remainder,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verification::provider::{Deeplink, Outcome};
    use Capability::*;

    fn deeplink() -> Next {
        Next::Deeplink(Deeplink {
            content: "x".into(),
            code: "c".into(),
            ttl_secs: 60,
        })
    }

    #[test]
    fn a_step_runs_directly_when_every_need_is_declared() {
        let done = Next::Done(Outcome::Failure(crate::verification::FailReason::Internal));
        assert_eq!(
            negotiate(&done, false, &[PollResult], false, false),
            Negotiated::Direct
        );
        assert_eq!(
            negotiate(
                &deeplink(),
                true,
                &[DeeplinkToMobile, PollResult],
                false,
                false
            ),
            Negotiated::Refused(Gap::Missing(vec![RefreshStepContent]))
        );
        let redirect = Next::Redirect("https://idp.example".into());
        assert_eq!(
            negotiate(
                &redirect,
                false,
                &[LaunchBrowser, CaptureRedirect],
                false,
                false
            ),
            Negotiated::Refused(Gap::NoRedirectUrl)
        );
        assert_eq!(
            negotiate(
                &redirect,
                false,
                &[LaunchBrowser, CaptureRedirect],
                true,
                false
            ),
            Negotiated::Direct
        );
    }

    #[test]
    fn a_gap_falls_back_to_the_hosted_pages_only_when_it_can() {
        let form = Next::Choose(Vec::new());
        assert_eq!(
            negotiate(&form, false, &Capability::ALL, true, false),
            Negotiated::Refused(Gap::NeedsHostedPages)
        );
        assert_eq!(
            negotiate(&form, false, &[LaunchBrowser, CaptureRedirect], true, true),
            Negotiated::Hosted
        );
        assert_eq!(
            negotiate(&form, false, &[LaunchBrowser], true, true),
            Negotiated::Refused(Gap::CannotFallBack(vec![CaptureRedirect]))
        );
        assert_eq!(
            negotiate(&form, false, &[LaunchBrowser, CaptureRedirect], false, true),
            Negotiated::Refused(Gap::CannotFallBack(vec![]))
        );
    }

    #[test]
    fn phone_numbers_name_their_country() {
        assert_eq!(country_of_phone("+15551234567"), Some("US"));
        assert_eq!(country_of_phone("+447700900123"), Some("GB"));
        assert_eq!(country_of_phone("15551234567"), None);
        assert_eq!(country_of_phone("+33123456789"), None);
    }
}
