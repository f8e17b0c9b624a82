//! Webhooks: endpoints an application registers, and at-least-once delivery of its events to
//! them, signed the Standard Webhooks way.
//!
//! - [`model`]: endpoints, deliveries and attempts, and the checks on what an operator sends.
//! - [`service`]: what the native API and the CLI call (create, rotate, list, replay…).
//! - [`dispatch`]: the delivery loop's logic: queue, claim under a lease, send, record, retry.
//!
//! Delivery is decoupled from the request path: a change writes only its event (the outbox);
//! the dispatcher turns events into deliveries per endpoint afterwards. Rendering the payload
//! and sending it are ports ([`PayloadRenderer`], [`Transport`]) the adapters implement.

pub mod dispatch;
pub mod model;
pub mod service;

pub use dispatch::{DispatchSettings, Dispatcher, PayloadRenderer, Transport, TransportOutcome};
pub use model::*;
pub use service::WebhookService;
