//! The verification-session aggregate and its pure state machine.

use serde::{Deserialize, Serialize};

use crate::application::AppId;
use crate::clock::Timestamp;

/// Id of a verification session: a random UUID (the shape verification clients expect).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct VerificationId(pub String);

impl VerificationId {
    pub fn new() -> Self {
        VerificationId(sessiond_crypto::ids::new_uuid())
    }
    /// Accepts any UUID casing and normalises to lowercase; anything else is not an id.
    pub fn parse(s: &str) -> Option<Self> {
        let lower = s.to_ascii_lowercase();
        sessiond_crypto::ids::is_uuid(&lower).then_some(VerificationId(lower))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for VerificationId {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Display for VerificationId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// How the session was created, which decides what the hosted pages show first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flow {
    /// Generation A create: the widget, or one provider when launched directly.
    Connect,
    /// Generation B widget: the user picks a provider in the hosted pages.
    Widget,
    /// Generation B hosted provider: one provider, hosted pages where it needs them.
    Hosted,
    /// Generation B advanced: the relying party drives the steps (hosted pages only on fallback).
    Advanced,
}

impl Flow {
    pub fn as_str(self) -> &'static str {
        match self {
            Flow::Connect => "connect",
            Flow::Widget => "widget",
            Flow::Hosted => "hosted",
            Flow::Advanced => "advanced",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [Flow::Connect, Flow::Widget, Flow::Hosted, Flow::Advanced]
            .into_iter()
            .find(|f| f.as_str() == s)
    }
}

/// Why a verification did not succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailReason {
    /// A fault in sessiond or the provider.
    Internal,
    /// The provider could not match the person to an authoritative record.
    NoMatch,
    InvalidImage,
    Inauthentic,
    UnsupportedDocument,
    AssuranceLevelNotMet,
    /// Too many failed sign-in attempts before verification.
    Authentication,
    /// The user cancelled in the hosted pages or in their wallet.
    UserCanceled,
    /// The user left a provider flow unfinished.
    UserAbandoned,
    /// The user took too long inside a provider flow.
    UserTimedOut,
}

impl FailReason {
    pub const ALL: [FailReason; 10] = [
        FailReason::Internal,
        FailReason::NoMatch,
        FailReason::InvalidImage,
        FailReason::Inauthentic,
        FailReason::UnsupportedDocument,
        FailReason::AssuranceLevelNotMet,
        FailReason::Authentication,
        FailReason::UserCanceled,
        FailReason::UserAbandoned,
        FailReason::UserTimedOut,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            FailReason::Internal => "internal",
            FailReason::NoMatch => "no_match",
            FailReason::InvalidImage => "invalid_image",
            FailReason::Inauthentic => "inauthentic",
            FailReason::UnsupportedDocument => "unsupported_document",
            FailReason::AssuranceLevelNotMet => "assurance_level_not_met",
            FailReason::Authentication => "authentication",
            FailReason::UserCanceled => "user_canceled",
            FailReason::UserAbandoned => "user_abandoned",
            FailReason::UserTimedOut => "user_timed_out",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// State of a verification session. `Success`, `Failed`, `Cancelled` and `Expired` are terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Created; nobody has opened the launch link yet.
    Created,
    /// The launch link was opened (or the relying party started an advanced flow).
    Initiated,
    /// The user is signing in before verification (phone sign-in; no built-in flow uses it).
    Authenticating,
    /// A provider is verifying the user.
    InProgress,
    Success,
    Failed(FailReason),
    /// Cancelled by the relying party.
    Cancelled,
    /// Not finished within the application's verification session lifetime.
    Expired,
}

impl State {
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            State::Success | State::Failed(_) | State::Cancelled | State::Expired
        )
    }
    /// Stored name of the state (the fail reason is stored beside it).
    pub fn as_str(self) -> &'static str {
        match self {
            State::Created => "created",
            State::Initiated => "initiated",
            State::Authenticating => "authenticating",
            State::InProgress => "in_progress",
            State::Success => "success",
            State::Failed(_) => "failed",
            State::Cancelled => "cancelled",
            State::Expired => "expired",
        }
    }
    pub fn fail_reason(self) -> Option<FailReason> {
        match self {
            State::Failed(r) => Some(r),
            _ => None,
        }
    }
    pub fn parse(state: &str, reason: Option<&str>) -> Option<Self> {
        Some(match state {
            "created" => State::Created,
            "initiated" => State::Initiated,
            "authenticating" => State::Authenticating,
            "in_progress" => State::InProgress,
            "success" => State::Success,
            "failed" => State::Failed(FailReason::parse(reason?)?),
            "cancelled" => State::Cancelled,
            "expired" => State::Expired,
            _ => return None,
        })
    }
    /// Rank used when listing by state: the lifecycle order.
    pub fn rank(self) -> u8 {
        match self {
            State::Created => 0,
            State::Initiated => 1,
            State::Authenticating => 2,
            State::InProgress => 3,
            State::Success => 4,
            State::Failed(_) => 5,
            State::Cancelled => 6,
            State::Expired => 7,
        }
    }
}

/// What happened to a verification session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The user opened the launch link, or the relying party started an advanced flow.
    Launch,
    /// The user began signing in before verification.
    Authenticate,
    /// A provider started verifying (chosen, input submitted, deep link shown).
    Begin,
    Succeed,
    Fail(FailReason),
    /// The relying party cancelled.
    Cancel,
    /// The session lifetime passed unfinished.
    Expire,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("the verification session already finished ({})", .0.as_str())]
    Finished(State),
    #[error("the verification session cannot go from {} to {}", .from.as_str(), .to)]
    Invalid { from: State, to: &'static str },
}

/// The pure transition function. Terminal states accept nothing; moving "backwards" (e.g. a
/// second launch of a session already in progress) keeps the later state, so that reloading a
/// page never rewinds a session.
pub fn transition(from: State, event: Event) -> Result<State, TransitionError> {
    use State::*;
    if from.is_terminal() {
        return Err(TransitionError::Finished(from));
    }
    Ok(match (from, event) {
        (Created, Event::Launch) => Initiated,
        (Initiated | Authenticating | InProgress, Event::Launch) => from,
        (Created | Initiated, Event::Authenticate) => Authenticating,
        (Authenticating, Event::Authenticate) => Authenticating,
        (InProgress, Event::Authenticate) => {
            return Err(TransitionError::Invalid {
                from,
                to: "authenticating",
            });
        }
        (_, Event::Begin) => InProgress,
        (InProgress, Event::Succeed) => Success,
        (_, Event::Succeed) => {
            return Err(TransitionError::Invalid {
                from,
                to: "success",
            });
        }
        (_, Event::Fail(r)) => Failed(r),
        (_, Event::Cancel) => Cancelled,
        (_, Event::Expire) => Expired,
        // Every (state, event) pair is covered above; the compiler checks the enums, the table
        // test checks the outcomes.
        #[allow(unreachable_patterns)]
        _ => return Err(TransitionError::Invalid { from, to: "?" }),
    })
}

/// The twelve fields a relying party may ask to be disclosed (generation A), in the order of
/// `Options::disclosed_fields`.
pub const DISCLOSABLE_FIELDS: [&str; 12] = [
    "id_number",
    "given_name",
    "family_name",
    "address",
    "date_of_birth",
    "country",
    "issue_date",
    "expiration_date",
    "document_front",
    "document_back",
    "document_portrait",
    "selfie",
];

/// Options fixed at creation. None of these is personal data; what is goes into the sealed input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Options {
    /// Providers the user may choose from; empty means every enabled provider.
    pub providers: Vec<String>,
    /// Where the hosted pages send the browser at the end (validated against the application's
    /// allowed redirect origins).
    pub redirect_url: Option<String>,
    /// Generation A: which fields to disclose (all when `None`), in [`DISCLOSABLE_FIELDS`] order.
    pub disclosed_fields: Option<Vec<bool>>,
    /// Generation A: skip provider choice (exactly one provider).
    pub launch_directly: bool,
    /// Generation A: offer phone sign-in and credential reuse. Accepted and recorded; sessiond has
    /// no reusable-credential wallet, so it changes nothing in the flow.
    pub remember_me: bool,
    /// Advanced sessions: what the relying party's integration can do.
    pub capabilities: Vec<super::negotiate::Capability>,
    /// Generation B advanced: fall back to the hosted pages on a capability or input gap.
    pub fallback_to_hosted: bool,
    /// Generation B advanced: whether this session fell back to the hosted pages.
    pub fell_back: bool,
    /// How the browser opened the launch link: `redirect`, `popup` or `iframe` (from the launch
    /// URL's `launchMode` / `embed`), which decides how the result is delivered.
    pub launch_mode: Option<String>,
}

/// Where the user is in the hosted or provider steps. Never holds personal data.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Step {
    /// Nothing shown yet.
    #[default]
    Start,
    /// The user picks a provider (widget).
    ChooseProvider,
    /// The provider's input form.
    Form,
    /// The user picks a sub-provider.
    ChooseSubProvider,
    /// A deep link to a wallet, valid until `expires_at`; only a keyed hash of its one-time code
    /// is kept.
    Deeplink {
        code_hash: String,
        /// The link itself, sealed under the master key, so the hosted page can show it again.
        content_sealed: String,
        issued_at: Timestamp,
        expires_at: Timestamp,
    },
    /// Nothing left to do.
    Finished,
}

/// A verification session as the core sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub id: VerificationId,
    pub application_id: AppId,
    pub flow: Flow,
    /// The stored state; see [`Verification::effective_state`].
    pub state: State,
    pub provider: Option<String>,
    pub sub_provider: Option<String>,
    pub options: Options,
    pub step: Step,
    /// Keyed hash of the results access key; the key itself is never stored.
    pub results_key_hash: [u8; 32],
    /// Public X25519 key derived from the results access key; results are sealed to it.
    pub results_public_key: [u8; 32],
    /// The relying party's provider input and known identity data, sealed to the results key.
    pub input_sealed: Option<Vec<u8>>,
    /// Identity data, sealed to the results key.
    pub results_sealed: Option<Vec<u8>>,
    /// Hash of the browser that opened the launch link first; the link works in no other.
    pub browser_binding: Option<[u8; 32]>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// When an unfinished session expires.
    pub expires_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    pub redacted_at: Option<Timestamp>,
    pub version: i64,
}

impl Verification {
    /// The state as of `now`: an unfinished session past `expires_at` reads as expired at once.
    pub fn effective_state(&self, now: Timestamp) -> State {
        if !self.state.is_terminal() && now >= self.expires_at {
            State::Expired
        } else {
            self.state
        }
    }

    /// Applies `event` at `now`, updating timestamps. The caller writes the result with the
    /// version it read.
    pub fn apply(&mut self, event: Event, now: Timestamp) -> Result<(), TransitionError> {
        let from = self.effective_state(now);
        let to = transition(from, event)?;
        if to != self.state {
            self.state = to;
            self.updated_at = now;
            if to.is_terminal() {
                self.finished_at = Some(now);
                self.step = Step::Finished;
                // The relying party's input is only needed while the session can still run.
                self.input_sealed = None;
            }
        }
        Ok(())
    }
}
