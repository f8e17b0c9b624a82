//! The delivery loop's passes over a real store, with time driven by hand: while no endpoint
//! is enabled a pass is skipped after one look a second, and an endpoint enabled on this node
//! (or, within that second, elsewhere) is delivered to.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use sessiond_core::Timestamp;
use sessiond_core::application::Application;
use sessiond_core::events::{Event, EventSignal, Position};
use sessiond_core::user::NewUser;
use sessiond_core::webhooks::{
    DispatchSettings, Dispatcher, EndpointInput, PayloadRenderer, Transport, TransportOutcome,
    WebhookService,
};
use sessiond_store_conformance::Kind;
use sessiond_store_conformance::services::Services;

const T0: Timestamp = Timestamp(1_767_225_600_000);

/// Answers every delivery 204 and keeps the event ids it was sent.
#[derive(Default)]
struct Receiver(Mutex<Vec<String>>);

#[async_trait]
impl Transport for Receiver {
    async fn post(
        &self,
        _url: &str,
        _headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
    ) -> TransportOutcome {
        if let Ok(mut got) = self.0.lock() {
            got.push(String::from_utf8_lossy(&body).into_owned());
        }
        TransportOutcome {
            status: Some(204),
            ..TransportOutcome::default()
        }
    }
}

impl Receiver {
    fn got(&self) -> Vec<String> {
        self.0.lock().map(|g| g.clone()).unwrap_or_default()
    }
}

/// A delivery's body is its event's id.
struct Ids;

#[async_trait]
impl PayloadRenderer for Ids {
    async fn render(&self, e: &Event) -> sessiond_core::error::Result<Vec<u8>> {
        Ok(e.event.id.clone().into_bytes())
    }
}

fn hook(url: &str, enabled: bool) -> EndpointInput {
    EndpointInput {
        url: Some(url.to_owned()),
        enabled: Some(enabled),
        ..EndpointInput::default()
    }
}

/// Writes a user (one `user.created` event) and waits until the event can be read: on
/// PostgreSQL an event is visible once every older transaction has ended.
async fn one_event(s: &Services, app: &Application, at: Timestamp) {
    let before = s
        .store
        .events_after(&app.id, Position::START, &[], 1000)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .len();
    s.login
        .create_user(app, NewUser::default(), at)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while s
        .store
        .events_after(&app.id, Position::START, &[], 1000)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .len()
        == before
    {
        assert!(std::time::Instant::now() < deadline, "the event is visible");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

async fn passes_wait_for_an_enabled_endpoint(kind: Kind) {
    let Some(s) = Services::new(kind).await else {
        return;
    };
    let (app, _) = s.app("hooks", T0, |_| {}).await;
    let changes = Arc::new(EventSignal::default());
    let here = Arc::new(
        WebhookService::new(s.store.clone(), s.vault.clone()).with_change_signal(changes.clone()),
    );
    // Another node, or the CLI: its writes raise nothing here.
    let elsewhere = WebhookService::new(s.store.clone(), s.vault.clone());
    let receiver = Arc::new(Receiver::default());
    let dispatcher = Arc::new(
        Dispatcher::new(
            s.store.clone(),
            here.clone(),
            Arc::new(Ids),
            receiver.clone(),
            DispatchSettings::default(),
            "n1".into(),
        )
        .with_endpoint_changes(changes.clone()),
    );
    let at = |ms: i64| Timestamp(T0.0 + ms);
    let pass = |now: Timestamp| {
        let d = dispatcher.clone();
        async move { d.run_once(now).await.unwrap_or_else(|e| panic!("{e}")) }
    };

    assert_eq!(pass(at(0)).await.queued, 0, "no endpoint: nothing to do");
    let (_, _) = elsewhere
        .create(&app, hook("https://example.com/a", true), at(1))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    one_event(&s, &app, at(2)).await;
    assert_eq!(
        pass(at(999)).await.queued,
        0,
        "within the second of a look that found no endpoint, a pass is skipped"
    );
    assert!(receiver.got().is_empty());
    assert_eq!(
        pass(at(1000)).await.queued,
        1,
        "a second later the endpoint enabled elsewhere gets the event"
    );
    assert_eq!(receiver.got().len(), 1);

    // Disabled through this node: once the look has aged out, a pass finds none.
    let endpoints = here.list(&app).await.unwrap_or_else(|e| panic!("{e}"));
    let mut told = changes.subscribe();
    here.update(
        &app,
        &endpoints[0].id,
        EndpointInput {
            enabled: Some(false),
            ..EndpointInput::default()
        },
        at(1001),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        told.has_changed().unwrap_or(false),
        "an endpoint write is signalled"
    );
    told.mark_unchanged();
    one_event(&s, &app, at(1002)).await;
    assert_eq!(
        pass(at(2000)).await.queued,
        0,
        "a disabled endpoint gets nothing"
    );

    // Enabled on this node: the dispatcher is told, so the next pass looks again at once instead of
    // trusting the look that found none a moment ago.
    here.create(&app, hook("https://example.com/b", true), at(2001))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(told.has_changed().unwrap_or(false));
    one_event(&s, &app, at(2002)).await;
    assert_eq!(
        pass(at(2003)).await.queued,
        1,
        "an endpoint created on this node is delivered to at once"
    );
    assert_eq!(receiver.got().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_wait_for_an_enabled_endpoint_sqlite() {
    passes_wait_for_an_enabled_endpoint(Kind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_wait_for_an_enabled_endpoint_postgres() {
    passes_wait_for_an_enabled_endpoint(Kind::Postgres).await;
}
