//! JSON shapes of both generations. Generation A omits absent optional fields (its schemas are
//! not nullable); generation B sends explicit `null`s (its schemas are, and Go 2.0.0 requires
//! some keys such as `refresh` to be present).

use super::states::{self, DISCLOSED_FIELDS};
use serde_json::{Map, Value, json};
use sessiond_core::Timestamp;
use sessiond_core::verification::Verification;
use sessiond_core::verification::identity::{Address, AttachmentSlot, IdentityData, Person};
use sessiond_core::verification::provider::Provider;
use sessiond_core::verification::service::{IntegrationStep, StepRefresh};

fn secs(t: Timestamp) -> i64 {
    t.as_secs()
}

/// RFC 3339 in UTC with `Z`, whole seconds.
pub fn rfc3339(t: Timestamp) -> String {
    time::OffsetDateTime::from_unix_timestamp(t.as_secs())
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned())
}

// ---- generation A ----

fn disclosed(v: &Verification) -> Vec<bool> {
    v.options
        .disclosed_fields
        .clone()
        .unwrap_or_else(|| vec![true; DISCLOSED_FIELDS.len()])
}

pub fn session_a(v: &Verification) -> Value {
    let c = states::connect(v.state);
    let mut verification = Map::new();
    if let Some(p) = &v.provider {
        verification.insert("provider".into(), Value::String(p.clone()));
    }
    verification.insert(
        "failCode".into(),
        Value::String(c.verification_fail_code.into()),
    );
    let fields: Map<String, Value> = DISCLOSED_FIELDS
        .iter()
        .zip(disclosed(v))
        .map(|(k, b)| ((*k).to_owned(), Value::Bool(b)))
        .collect();
    json!({
        "id": v.id.as_str(),
        "state": c.state,
        "failCode": c.fail_code,
        "verification": verification,
        "disclosedFields": fields,
        "created": secs(v.created_at),
        "updated": secs(v.updated_at),
    })
}

fn put(m: &mut Map<String, Value>, k: &str, v: Option<&String>) {
    if let Some(v) = v {
        m.insert(k.to_owned(), Value::String(v.clone()));
    }
}

fn address_a(a: &Address) -> Value {
    let mut m = Map::new();
    put(&mut m, "line1", a.line1.as_ref());
    put(&mut m, "line2", a.line2.as_ref());
    put(&mut m, "line3", a.line3.as_ref());
    put(&mut m, "city", a.city.as_ref());
    put(&mut m, "state", a.subdivision.as_ref());
    put(&mut m, "postalCode", a.postal_code.as_ref());
    put(&mut m, "country", a.country.as_ref());
    put(&mut m, "fullAddress", a.full_address.as_ref());
    Value::Object(m)
}

/// Generation A identity data, limited to the fields the session asked to disclose. `legacy`
/// renders the 0.2.3–1.0 shape (attachment keys under `attachments`, no issuing authority) for
/// the older exchange paths.
pub fn identity_a(v: &Verification, d: &IdentityData, legacy: bool) -> Value {
    let flags = disclosed(v);
    let on = |name: &str| {
        DISCLOSED_FIELDS
            .iter()
            .position(|f| *f == name)
            .and_then(|i| flags.get(i).copied())
            .unwrap_or(false)
    };
    let mut out = Map::new();
    put(
        &mut out,
        "originatingProviderId",
        d.originating_provider_id.as_ref(),
    );
    if let Some(p) = &d.person {
        let mut m = Map::new();
        if on("givenName") {
            put(&mut m, "givenName", p.given_name.as_ref());
            put(&mut m, "middleName", p.middle_name.as_ref());
        }
        if on("familyName") {
            put(&mut m, "familyName", p.family_name.as_ref());
        }
        if on("givenName") && on("familyName") {
            put(&mut m, "fullName", p.full_name.as_ref());
        }
        if on("country") {
            put(&mut m, "nationality", p.nationality.as_ref());
        }
        if let Some(s) = p.sex {
            m.insert("gender".into(), Value::String(s.as_str().into()));
        }
        put(&mut m, "phoneNumber", p.phone_number.as_ref());
        if on("address")
            && let Some(a) = &p.address
        {
            m.insert("address".into(), address_a(a));
        }
        if on("dateOfBirth") {
            put(&mut m, "dateOfBirth", p.date_of_birth.as_ref());
        }
        out.insert("person".into(), Value::Object(m));
    }
    if let Some(doc) = &d.document {
        let mut m = Map::new();
        if let Some(k) = doc.kind {
            m.insert("type".into(), Value::String(k.as_str().into()));
        }
        if on("idNumber") {
            put(&mut m, "number", doc.number.as_ref());
        }
        if on("issueDate") {
            put(&mut m, "issueDate", doc.issue_date.as_ref());
        }
        if on("expirationDate") {
            put(&mut m, "expirationDate", doc.expiration_date.as_ref());
        }
        if on("country") {
            put(&mut m, "issuingCountry", doc.issuing_country.as_ref());
        }
        if !legacy {
            put(&mut m, "issuingAuthority", doc.issuing_authority.as_ref());
        }
        out.insert("document".into(), Value::Object(m));
    }
    let mut keys = Map::new();
    for (slot, name) in [
        (AttachmentSlot::Selfie, "selfie"),
        (AttachmentSlot::DocumentFront, "documentFront"),
        (AttachmentSlot::DocumentBack, "documentBack"),
        (AttachmentSlot::DocumentPortrait, "documentPortrait"),
    ] {
        if on(name)
            && let Some(k) = d.attachment_key(slot)
        {
            keys.insert(name.into(), Value::String(k.to_owned()));
        }
    }
    let name = if legacy {
        "attachments"
    } else {
        "attachmentAccessKeys"
    };
    out.insert(name.into(), Value::Object(keys));
    Value::Object(out)
}

// ---- generation B ----

pub fn session_b(v: &Verification) -> Value {
    let s = states::api(v.state);
    json!({
        "id": v.id.as_str(),
        "done": s.done,
        "success": s.success,
        "errorCode": s.error_code,
        "created": secs(v.created_at),
        "updated": secs(v.updated_at),
    })
}

fn address_b(a: &Address) -> Value {
    json!({
        "line1": a.line1, "line2": a.line2, "line3": a.line3, "city": a.city,
        "subdivision": a.subdivision, "postalCode": a.postal_code, "country": a.country,
        "fullAddress": a.full_address,
    })
}

fn person_b(p: &Person) -> Value {
    json!({
        "givenName": p.given_name, "familyName": p.family_name, "middleName": p.middle_name,
        "fullName": p.full_name, "suffix": p.suffix, "nationality": p.nationality,
        "sex": p.sex.map(|s| s.as_str()), "phoneNumber": p.phone_number,
        "address": p.address.as_ref().map(address_b), "dateOfBirth": p.date_of_birth,
    })
}

pub fn identity_b(d: &IdentityData) -> Value {
    let key = |s| d.attachment_key(s);
    json!({
        "originatingProviderId": d.originating_provider_id,
        "originatingSubProviderId": d.originating_sub_provider_id,
        "person": d.person.as_ref().map(person_b),
        "document": d.document.as_ref().map(|doc| json!({
            "type": doc.kind.map(|k| k.as_str()),
            "number": doc.number,
            "issueDate": doc.issue_date,
            "expirationDate": doc.expiration_date,
            "issuingCountry": doc.issuing_country,
            "issuingAuthority": doc.issuing_authority,
        })),
        "attachmentAccessKeys": {
            "selfie": key(AttachmentSlot::Selfie),
            "documentFront": key(AttachmentSlot::DocumentFront),
            "documentBack": key(AttachmentSlot::DocumentBack),
            "documentPortrait": key(AttachmentSlot::DocumentPortrait),
            "provider": {},
        },
    })
}

fn refresh(r: &StepRefresh) -> Value {
    json!({
        "expiresAt": rfc3339(r.expires_at),
        "refreshAfter": rfc3339(r.refresh_after),
        "timeToLiveSeconds": r.ttl_secs,
    })
}

pub fn step(s: &IntegrationStep) -> Value {
    json!({
        "method": states::launch_method_name(s.method),
        "content": s.content,
        "refresh": s.refresh.as_ref().map(refresh),
    })
}

// ---- providers ----

pub fn logo_url(public_url: &str, p: &dyn Provider) -> String {
    format!("{public_url}/verify/assets/{}", p.info().logo)
}

pub fn provider_a(public_url: &str, p: &dyn Provider) -> Value {
    let i = p.info();
    json!({ "id": i.id, "name": i.name, "logoUrl": logo_url(public_url, p) })
}

fn sub_providers(public_url: &str, p: &dyn Provider) -> Value {
    let i = p.info();
    if i.sub_providers.is_empty() {
        return Value::Null;
    }
    Value::Array(
        i.sub_providers
            .iter()
            .map(|s| {
                json!({
                    "id": s.id, "name": s.name, "subtext": i.name,
                    "description": s.description, "logoUrl": logo_url(public_url, p),
                })
            })
            .collect(),
    )
}

pub fn provider_b(public_url: &str, p: &dyn Provider) -> Value {
    let i = p.info();
    json!({
        "id": i.id, "name": i.name, "logoUrl": logo_url(public_url, p),
        "subtext": i.subtext, "description": i.description, "health": "online",
        "subProviders": sub_providers(public_url, p),
    })
}

pub fn recommendation_a(public_url: &str, p: &dyn Provider) -> Value {
    let i = p.info();
    json!({
        "providerId": i.id, "providerDisplayName": i.name,
        "providerLogo": logo_url(public_url, p),
    })
}

pub fn recommendation_b(public_url: &str, p: &dyn Provider) -> Value {
    let i = p.info();
    let logo = logo_url(public_url, p);
    json!({
        "id": i.id, "name": i.name, "logoUrl": logo, "subtext": i.subtext,
        "providerId": i.id, "providerDisplayName": i.name, "providerLogo": logo,
        "health": "online", "subProviders": sub_providers(public_url, p),
    })
}

pub fn contract(public_url: &str, p: &dyn Provider) -> Value {
    let i = p.info();
    json!({
        "id": i.id, "name": i.name, "subtext": i.subtext, "description": i.description,
        "logoUrl": logo_url(public_url, p), "available": true,
        "geography": i.geography,
        "regions": i.geography.iter().map(|g| match *g { "US" => "United States", other => other }).collect::<Vec<_>>(),
        "launchMethod": states::launch_method_name(i.launch_method),
        "collectionMethod": states::collection_name(i.collection),
        "resultsMayBeDelayedAfterRedirect": i.results_delayed_after_redirect,
        "hasRefreshableContent": i.refreshable,
        "requiresInput": i.requires_input,
        "hasTrinsicInterface": i.has_interface,
        "supportsAdvancedProviderSessions": i.supports_advanced,
        "availableFields": i.fields.iter().map(|(n, o)| json!({"name": n, "outputted": o})).collect::<Vec<_>>(),
        "subProviders": sub_providers(public_url, p),
        "health": "Online",
    })
}
