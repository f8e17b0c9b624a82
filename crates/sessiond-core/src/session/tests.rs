use proptest::prelude::*;

use super::*;
use crate::application::AppSettings;

const T0: Timestamp = Timestamp(1_767_225_600_000);

fn settings(idle: Option<u64>) -> AppSettings {
    AppSettings {
        session_max_lifetime_secs: 7 * 86_400,
        inactivity_timeout_secs: idle,
        abandon_period_secs: 30 * 86_400,
        ..AppSettings::default()
    }
}

fn session(status: SessionStatus, idle: Option<u64>) -> Session {
    let mut s = Session::new(
        &AppId::new(),
        &settings(idle),
        UserId::new(),
        ClientId::new(),
        false,
        T0,
    );
    s.status = status;
    s
}

fn events() -> Vec<Event> {
    vec![
        Event::Activate,
        Event::Touch(None),
        Event::Revoke,
        Event::End,
        Event::Remove,
        Event::Replace,
    ]
}

/// Every (stored status, event) pair, at a time before any deadline.
#[test]
fn transition_table() {
    use SessionStatus::*;
    let now = T0.plus_secs(100);
    for status in SessionStatus::ALL {
        for ev in events() {
            let s = session(status, None);
            let got = transition(&s, ev.clone(), &settings(None), now).map(|n| n.status);
            let want = match (status, &ev) {
                (Pending | Active, Event::Activate) => Ok(Active),
                (Pending, Event::Touch(_)) => Ok(Pending),
                (Active, Event::Touch(_)) => Ok(Active),
                (Pending | Active, Event::Revoke) => Ok(Revoked),
                (Pending | Active, Event::End) => Ok(Ended),
                (Pending | Active, Event::Remove) => Ok(Removed),
                (Pending | Active, Event::Replace) => Ok(Replaced),
                (t, Event::Activate | Event::Touch(_)) => Err(TransitionError::NotUsable(t)),
                (t, _) => Ok(t),
            };
            assert_eq!(got, want, "{status:?} + {ev:?}");
        }
    }
}

#[test]
fn deadlines_read_as_terminal_at_once() {
    let s = session(SessionStatus::Active, Some(3600));
    assert_eq!(s.effective_status(T0), SessionStatus::Active);
    assert_eq!(
        s.effective_status(T0.plus_secs(3599)),
        SessionStatus::Active
    );
    assert_eq!(
        s.effective_status(T0.plus_secs(3600)),
        SessionStatus::Suspended,
        "idle deadline is inclusive"
    );
    assert_eq!(s.effective_status(s.expire_at), SessionStatus::Expired);
    let no_idle = session(SessionStatus::Active, None);
    assert_eq!(
        no_idle.effective_status(T0.plus_secs(6 * 86_400)),
        SessionStatus::Active
    );
    let mut old = no_idle.clone();
    old.abandon_at = T0.plus_secs(10);
    assert_eq!(
        old.effective_status(T0.plus_secs(10)),
        SessionStatus::Abandoned
    );
    let revoked = session(SessionStatus::Revoked, None);
    assert_eq!(
        revoked.effective_status(revoked.expire_at),
        SessionStatus::Revoked,
        "stored terminal wins"
    );
}

#[test]
fn touch_slides_idle_and_abandon_but_never_expire() {
    let st = settings(Some(3600));
    let s = session(SessionStatus::Active, Some(3600));
    let later = T0.plus_secs(1800);
    let t = transition(&s, Event::Touch(None), &st, later).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(t.expire_at, s.expire_at);
    assert_eq!(t.idle_deadline, Some(later.plus_secs(3600)));
    assert_eq!(t.abandon_at, later.plus_secs(30 * 86_400));
    assert_eq!(t.last_active_at, later);
    let gone = transition(&s, Event::Touch(None), &st, T0.plus_secs(3600));
    assert_eq!(
        gone.err(),
        Some(TransitionError::NotUsable(SessionStatus::Suspended))
    );
    let expired = transition(&s, Event::Revoke, &st, s.expire_at).map(|x| x.status);
    assert_eq!(
        expired,
        Ok(SessionStatus::Expired),
        "ending an expired session keeps it expired"
    );
}

#[test]
fn touches_are_coalesced() {
    let s = session(SessionStatus::Active, None);
    assert!(!s.touch_is_due(&settings(None), T0.plus_secs(59)));
    assert!(s.touch_is_due(&settings(None), T0.plus_secs(60)));
    assert!(!s.touch_is_due(&settings(Some(300)), T0.plus_secs(29)));
    assert!(
        s.touch_is_due(&settings(Some(300)), T0.plus_secs(30)),
        "a tenth of a short idle timeout"
    );
}

fn event_strategy() -> impl Strategy<Value = (Event, u64)> {
    (0usize..6, 0u64..200_000).prop_map(|(i, dt)| (events()[i].clone(), dt))
}

proptest! {
    /// Random event sequences at increasing times keep the invariants.
    #[test]
    fn invariants_hold_over_random_sequences(
        start_pending: bool,
        idle in proptest::option::of(60u64..100_000),
        seq in proptest::collection::vec(event_strategy(), 1..40),
    ) {
        let st = settings(idle);
        let mut s = Session::new(&AppId::new(), &st, UserId::new(), ClientId::new(), start_pending, T0);
        let mut now = T0;
        let mut was_revoked = false;
        for (ev, dt) in seq {
            now = now.plus_secs(dt);
            let before = s.clone();
            let before_status = before.effective_status(now);
            match transition(&s, ev, &st, now) {
                Ok(next) => {
                    prop_assert_eq!(next.expire_at, before.expire_at, "expire_at never moves");
                    prop_assert!(next.abandon_at >= before.abandon_at, "abandon_at never moves back");
                    prop_assert!(next.last_active_at >= before.last_active_at);
                    if let (Some(a), Some(b)) = (before.idle_deadline, next.idle_deadline) {
                        prop_assert!(b >= a, "idle deadline never moves back");
                    }
                    if before_status.is_terminal() {
                        prop_assert_eq!(next.effective_status(now), before_status, "terminal states absorb");
                    }
                    s = next;
                }
                Err(TransitionError::NotUsable(st)) => prop_assert!(st.is_terminal()),
            }
            if s.effective_status(now) == SessionStatus::Revoked {
                was_revoked = true;
            }
            if was_revoked {
                prop_assert_eq!(s.effective_status(now), SessionStatus::Revoked, "revoked never becomes active");
            }
        }
    }
}

#[test]
fn impersonation_swaps_user_and_actor_and_reverts() {
    let s = session(SessionStatus::Active, None);
    let target = UserId::new();
    let i = impersonate(&s, &target, T0).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(i.user_id, target);
    assert_eq!(i.actor_user(), Some(s.user_id.clone()));
    assert_eq!(
        impersonate(&i, &UserId::new(), T0).err(),
        Some(ImpersonationError::AlreadyImpersonated)
    );
    let r = revert_identity(&i, T0).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (r.user_id.clone(), r.actor.clone()),
        (s.user_id.clone(), None)
    );
    assert_eq!(
        revert_identity(&r, T0).err(),
        Some(ImpersonationError::NotImpersonated)
    );
    let pending = session(SessionStatus::Pending, None);
    assert_eq!(
        impersonate(&pending, &target, T0).err(),
        Some(ImpersonationError::NotUsable(SessionStatus::Pending))
    );
}
