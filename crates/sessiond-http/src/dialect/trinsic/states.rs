//! How each Trinsic generation spells a verification's state: generation A's `state`,
//! `failCode` and `verification.failCode`; generation B's `done`, `success` and `errorCode`; and
//! generation A's names of the disclosable fields. Core knows the states in its own words only.

use sessiond_core::verification::model::{FailReason, State};
use sessiond_core::verification::negotiate::Capability;
use sessiond_core::verification::provider::{Collection, LaunchMethod};

/// Generation A's names of the disclosable fields, in core's order
/// ([`sessiond_core::verification::model::DISCLOSABLE_FIELDS`]).
pub const DISCLOSED_FIELDS: [&str; 12] = [
    "idNumber",
    "givenName",
    "familyName",
    "address",
    "dateOfBirth",
    "country",
    "issueDate",
    "expirationDate",
    "documentFront",
    "documentBack",
    "documentPortrait",
    "selfie",
];

/// Generation A (Trinsic Connect) view of a state: `state`, `failCode`, `verification.failCode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectState {
    pub state: &'static str,
    pub fail_code: &'static str,
    pub verification_fail_code: &'static str,
}

/// Generation B (Trinsic API) view of a state: `done`, `success`, `errorCode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiState {
    pub done: bool,
    pub success: bool,
    pub error_code: Option<&'static str>,
}

/// How generation A shows `s`.
pub fn connect(s: State) -> ConnectState {
    let (state, fail_code, vfail) = match s {
        State::Created => ("IdvCreated", "SessionFailNone", "VerificationFailNone"),
        State::Initiated => ("IdvInitiated", "SessionFailNone", "VerificationFailNone"),
        State::Authenticating => (
            "IdvAuthenticating",
            "SessionFailNone",
            "VerificationFailNone",
        ),
        State::InProgress => ("IdvInProgress", "SessionFailNone", "VerificationFailNone"),
        State::Success => ("IdvSuccess", "SessionFailNone", "VerificationFailNone"),
        State::Cancelled => ("IdvFailed", "SessionFailRpCanceled", "VerificationFailNone"),
        State::Expired => ("IdvFailed", "SessionFailExpired", "VerificationFailNone"),
        State::Failed(r) => {
            let (f, v) = match r {
                FailReason::Internal => ("SessionFailInternal", "VerificationFailInternal"),
                FailReason::NoMatch | FailReason::Inauthentic => (
                    "SessionFailVerificationFailed",
                    "VerificationFailInauthentic",
                ),
                FailReason::InvalidImage => (
                    "SessionFailVerificationFailed",
                    "VerificationFailInvalidImage",
                ),
                FailReason::UnsupportedDocument => (
                    "SessionFailVerificationFailed",
                    "VerificationFailUnsupportedDocument",
                ),
                FailReason::AssuranceLevelNotMet => {
                    ("SessionFailVerificationFailed", "VerificationFailNone")
                }
                FailReason::Authentication => ("SessionFailAuthentication", "VerificationFailNone"),
                FailReason::UserCanceled => ("SessionFailUserCanceled", "VerificationFailNone"),
                FailReason::UserAbandoned => (
                    "SessionFailVerificationFailed",
                    "VerificationFailUserAbandoned",
                ),
                FailReason::UserTimedOut => ("SessionFailExpired", "VerificationFailNone"),
            };
            ("IdvFailed", f, v)
        }
    };
    ConnectState {
        state,
        fail_code,
        verification_fail_code: vfail,
    }
}

/// How generation B shows `s`.
pub fn api(s: State) -> ApiState {
    let error_code = match s {
        State::Created
        | State::Initiated
        | State::Authenticating
        | State::InProgress
        | State::Success => None,
        State::Cancelled => Some("Canceled"),
        State::Expired => Some("Expired"),
        State::Failed(r) => Some(match r {
            FailReason::Internal => "Internal",
            FailReason::NoMatch | FailReason::Authentication => "Other",
            FailReason::InvalidImage => "InvalidImage",
            FailReason::Inauthentic => "Inauthentic",
            FailReason::UnsupportedDocument => "UnsupportedDocument",
            FailReason::AssuranceLevelNotMet => "AssuranceLevelNotMet",
            FailReason::UserCanceled => "Canceled",
            FailReason::UserAbandoned => "UserAbandoned",
            FailReason::UserTimedOut => "UserTimedOut",
        }),
    };
    ApiState {
        done: s.is_terminal(),
        success: s == State::Success,
        error_code,
    }
}

/// Generation B's name of a capability (2.1.0 `IntegrationCapability`).
pub fn capability_name(c: Capability) -> &'static str {
    match c {
        Capability::LaunchBrowser => "LaunchBrowser",
        Capability::DeeplinkToMobile => "DeeplinkToMobile",
        Capability::ShowContent => "ShowContent",
        Capability::RefreshStepContent => "RefreshStepContent",
        Capability::CaptureRedirect => "CaptureRedirect",
        Capability::PollResult => "PollResult",
        Capability::PollAfterRedirect => "PollAfterRedirect",
    }
}

/// The capability generation B calls `name`.
pub fn capability(name: &str) -> Option<Capability> {
    Capability::ALL
        .into_iter()
        .find(|c| capability_name(*c) == name)
}

/// Generation B's name of how a step is launched (`IntegrationLaunchMethod`).
pub fn launch_method_name(m: LaunchMethod) -> &'static str {
    match m {
        LaunchMethod::LaunchBrowser => "LaunchBrowser",
        LaunchMethod::None => "None",
        LaunchMethod::DeeplinkToMobile => "DeeplinkToMobile",
        LaunchMethod::ShowContent => "ShowContent",
    }
}

/// Generation B's name of how results are collected (`ResultCollectionMethod`).
pub fn collection_name(c: Collection) -> &'static str {
    match c {
        Collection::PollResult => "PollResult",
        Collection::CaptureRedirect => "CaptureRedirect",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sessiond_core::verification::model::DISCLOSABLE_FIELDS;

    fn every_state() -> Vec<State> {
        let mut all = vec![
            State::Created,
            State::Initiated,
            State::Authenticating,
            State::InProgress,
            State::Success,
            State::Cancelled,
            State::Expired,
        ];
        all.extend(FailReason::ALL.into_iter().map(State::Failed));
        all
    }

    #[test]
    fn generation_a_spellings() {
        use State::*;
        let a = |s: State| {
            let c = connect(s);
            (c.state, c.fail_code, c.verification_fail_code)
        };
        assert_eq!(
            a(Created),
            ("IdvCreated", "SessionFailNone", "VerificationFailNone")
        );
        assert_eq!(a(Initiated).0, "IdvInitiated");
        assert_eq!(a(Authenticating).0, "IdvAuthenticating");
        assert_eq!(a(InProgress).0, "IdvInProgress");
        assert_eq!(a(Success).0, "IdvSuccess");
        assert_eq!(
            a(Cancelled),
            ("IdvFailed", "SessionFailRpCanceled", "VerificationFailNone")
        );
        assert_eq!(a(Expired).1, "SessionFailExpired");
        assert_eq!(
            a(Failed(FailReason::NoMatch)),
            (
                "IdvFailed",
                "SessionFailVerificationFailed",
                "VerificationFailInauthentic"
            )
        );
        assert_eq!(
            a(Failed(FailReason::UserCanceled)).1,
            "SessionFailUserCanceled"
        );
        assert_eq!(
            a(Failed(FailReason::UserAbandoned)).2,
            "VerificationFailUserAbandoned"
        );
    }

    #[test]
    fn generation_b_spellings() {
        use State::*;
        let b = |s: State| {
            let x = api(s);
            (x.done, x.success, x.error_code)
        };
        for s in [Created, Initiated, Authenticating, InProgress] {
            assert_eq!(b(s), (false, false, None));
        }
        assert_eq!(b(Success), (true, true, None));
        assert_eq!(b(Cancelled), (true, false, Some("Canceled")));
        assert_eq!(b(Expired), (true, false, Some("Expired")));
        assert_eq!(b(Failed(FailReason::NoMatch)), (true, false, Some("Other")));
        assert_eq!(
            b(Failed(FailReason::InvalidImage)),
            (true, false, Some("InvalidImage"))
        );
        assert_eq!(
            b(Failed(FailReason::UserTimedOut)),
            (true, false, Some("UserTimedOut"))
        );
    }

    /// Every state maps to members of the generations' published enums, consistently.
    #[test]
    fn every_state_maps_into_the_published_enums() {
        const A_STATES: [&str; 6] = [
            "IdvCreated",
            "IdvInitiated",
            "IdvAuthenticating",
            "IdvInProgress",
            "IdvSuccess",
            "IdvFailed",
        ];
        const A_FAIL: [&str; 7] = [
            "SessionFailNone",
            "SessionFailInternal",
            "SessionFailVerificationFailed",
            "SessionFailAuthentication",
            "SessionFailExpired",
            "SessionFailUserCanceled",
            "SessionFailRpCanceled",
        ];
        const A_VFAIL: [&str; 6] = [
            "VerificationFailNone",
            "VerificationFailInternal",
            "VerificationFailInvalidImage",
            "VerificationFailInauthentic",
            "VerificationFailUnsupportedDocument",
            "VerificationFailUserAbandoned",
        ];
        const B_ERRORS: [&str; 10] = [
            "Internal",
            "Other",
            "Canceled",
            "UserAbandoned",
            "UserTimedOut",
            "Expired",
            "InvalidImage",
            "Inauthentic",
            "UnsupportedDocument",
            "AssuranceLevelNotMet",
        ];
        for s in every_state() {
            let a = connect(s);
            assert!(A_STATES.contains(&a.state), "{s:?}");
            assert!(A_FAIL.contains(&a.fail_code), "{s:?}");
            assert!(A_VFAIL.contains(&a.verification_fail_code), "{s:?}");
            assert_eq!(a.state == "IdvFailed", a.fail_code != "SessionFailNone");
            let b = api(s);
            assert_eq!(b.done, s.is_terminal());
            assert_eq!(b.success, s == State::Success);
            assert_eq!(b.error_code.is_some(), b.done && !b.success);
            if let Some(c) = b.error_code {
                assert!(B_ERRORS.contains(&c), "{s:?}");
            }
        }
    }

    #[test]
    fn capability_names_round_trip() {
        for c in Capability::ALL {
            assert_eq!(capability(capability_name(c)), Some(c));
        }
        assert_eq!(capability("launchbrowser"), None, "names are exact");
    }

    #[test]
    fn disclosed_field_names_follow_cores_order() {
        for (wire, core) in DISCLOSED_FIELDS.iter().zip(DISCLOSABLE_FIELDS) {
            let snake: String = wire
                .chars()
                .flat_map(|c| {
                    if c.is_ascii_uppercase() {
                        vec!['_', c.to_ascii_lowercase()]
                    } else {
                        vec![c]
                    }
                })
                .collect();
            assert_eq!(snake, core);
        }
        assert_eq!(DISCLOSED_FIELDS.len(), DISCLOSABLE_FIELDS.len());
    }
}
