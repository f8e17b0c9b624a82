use proptest::prelude::*;

use super::model::*;

const NON_TERMINAL: [State; 4] = [
    State::Created,
    State::Initiated,
    State::Authenticating,
    State::InProgress,
];

fn terminal() -> Vec<State> {
    let mut v = vec![State::Success, State::Cancelled, State::Expired];
    v.extend(FailReason::ALL.into_iter().map(State::Failed));
    v
}

#[test]
fn transition_table() {
    use State::*;
    let fail = Event::Fail(FailReason::NoMatch);
    // (from, event, expected to-state or None for an error)
    let table: &[(State, Event, Option<State>)] = &[
        (Created, Event::Launch, Some(Initiated)),
        (Initiated, Event::Launch, Some(Initiated)),
        (InProgress, Event::Launch, Some(InProgress)),
        (Authenticating, Event::Launch, Some(Authenticating)),
        (Created, Event::Authenticate, Some(Authenticating)),
        (Initiated, Event::Authenticate, Some(Authenticating)),
        (InProgress, Event::Authenticate, None),
        (Created, Event::Begin, Some(InProgress)),
        (Initiated, Event::Begin, Some(InProgress)),
        (Authenticating, Event::Begin, Some(InProgress)),
        (InProgress, Event::Begin, Some(InProgress)),
        (InProgress, Event::Succeed, Some(Success)),
        (Created, Event::Succeed, None),
        (Initiated, Event::Succeed, None),
        (Created, fail, Some(Failed(FailReason::NoMatch))),
        (InProgress, fail, Some(Failed(FailReason::NoMatch))),
        (Created, Event::Cancel, Some(Cancelled)),
        (InProgress, Event::Cancel, Some(Cancelled)),
        (Initiated, Event::Expire, Some(Expired)),
        (Success, Event::Cancel, None),
        (Cancelled, Event::Cancel, None),
        (Expired, Event::Launch, None),
        (Failed(FailReason::Internal), Event::Succeed, None),
    ];
    for (from, event, want) in table {
        let got = transition(*from, *event).ok();
        assert_eq!(got, *want, "{from:?} --{event:?}-->");
    }
}

fn any_state() -> impl Strategy<Value = State> {
    let mut all: Vec<State> = NON_TERMINAL.to_vec();
    all.extend(terminal());
    proptest::sample::select(all)
}

fn any_event() -> impl Strategy<Value = Event> {
    let mut all = vec![
        Event::Launch,
        Event::Authenticate,
        Event::Begin,
        Event::Succeed,
        Event::Cancel,
        Event::Expire,
    ];
    all.extend(FailReason::ALL.into_iter().map(Event::Fail));
    proptest::sample::select(all)
}

proptest! {
    /// Terminal states are final; stored names round-trip. (How each dialect spells a state is
    /// tested in the dialect.)
    #[test]
    fn invariants(s in any_state(), events in proptest::collection::vec(any_event(), 0..12)) {
        let mut cur = s;
        for e in events {
            match transition(cur, e) {
                Ok(next) => {
                    prop_assert!(!cur.is_terminal());
                    // Nothing leaves a terminal state, and success needs verification first.
                    if next == State::Success { prop_assert_eq!(cur, State::InProgress); }
                    cur = next;
                }
                Err(_) => prop_assert!(cur.is_terminal() || matches!(e, Event::Succeed | Event::Authenticate)),
            }
            prop_assert_eq!(State::parse(cur.as_str(), cur.fail_reason().map(FailReason::as_str)), Some(cur));
        }
    }
}

#[test]
fn effective_state_expires_unfinished_sessions_only() {
    use crate::clock::Timestamp;
    let mut v = Verification {
        id: VerificationId::new(),
        application_id: crate::application::AppId::new(),
        flow: Flow::Widget,
        state: State::Initiated,
        provider: None,
        sub_provider: None,
        options: Options::default(),
        step: Step::Start,
        results_key_hash: [0; 32],
        results_public_key: [0; 32],
        input_sealed: Some(vec![1]),
        results_sealed: None,
        browser_binding: None,
        created_at: Timestamp(0),
        updated_at: Timestamp(0),
        expires_at: Timestamp(1000),
        finished_at: None,
        redacted_at: None,
        version: 1,
    };
    assert_eq!(v.effective_state(Timestamp(999)), State::Initiated);
    assert_eq!(v.effective_state(Timestamp(1000)), State::Expired);
    assert!(v.apply(Event::Begin, Timestamp(1000)).is_err());
    v.apply(Event::Begin, Timestamp(10)).unwrap();
    v.apply(Event::Succeed, Timestamp(20)).unwrap();
    assert_eq!(v.effective_state(Timestamp(5000)), State::Success);
    assert_eq!(v.finished_at, Some(Timestamp(20)));
    assert_eq!(v.input_sealed, None, "input is dropped once finished");
}

#[test]
fn ids_are_lowercase_uuids() {
    let id = VerificationId::new();
    assert!(VerificationId::parse(id.as_str()).is_some());
    assert_eq!(
        VerificationId::parse(&id.as_str().to_ascii_uppercase()),
        Some(id.clone())
    );
    assert!(VerificationId::parse("list").is_none());
    assert_eq!(id.as_str().len(), 36);
    assert_eq!(&id.as_str()[14..15], "4");
}
