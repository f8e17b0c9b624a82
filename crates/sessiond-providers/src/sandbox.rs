//! Sandbox providers that follow Trinsic's sandbox contract, for test-mode applications:
//!
//! - `trinsic-test-database-lookup`: input `givenName`, `familyName`, `identityCode` (6 digits;
//!   exactly `123456` matches, anything else fails the session), optional `selfieBase64`.
//! - `trinsic-test-sub-providers`: `subProviderId` `sub-provider-a` or `sub-provider-b`, or the
//!   user picks one.
//! - `sessiond-test-wallet`: a wallet reached by a deep link that expires every 30 seconds and is
//!   refreshed; the link lands on the test wallet page (`/verify/callback/…`), which presents or
//!   declines.

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::{Map, Value};

use sessiond_core::verification::identity::{
    Address, AttachmentSlot, Claims, Document, DocumentType, NewAttachment, Person, Sex,
};
use sessiond_core::verification::model::FailReason;
use sessiond_core::verification::provider::{
    Choice, Collection, Ctx, Deeplink, FormField, InputError, LaunchMethod, Next, Outcome,
    Provider, ProviderInfo, SubProvider,
};

pub const TEST_SELFIE_PNG: &[u8] = include_bytes!("assets/test-selfie.png");
pub const TEST_DOCUMENT_PNG: &[u8] = include_bytes!("assets/test-document.png");
/// The identity code the database-lookup provider matches.
pub const MATCHING_CODE: &str = "123456";
/// Largest selfie accepted (decoded bytes).
pub const MAX_SELFIE_BYTES: usize = 512 * 1024;
const MAX_NAME: usize = 100;
/// Lifetime of a test wallet deep link, like the shortest-lived real wallet links.
pub const WALLET_LINK_TTL_SECS: u64 = 30;

fn str_input<'a>(
    input: Option<&'a Map<String, Value>>,
    key: &str,
) -> Result<Option<&'a str>, InputError> {
    match input.and_then(|m| m.get(key)) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(InputError {
            field: key.to_owned(),
            reason: "must be a string".into(),
        }),
    }
}

fn only_keys(input: Option<&Map<String, Value>>, allowed: &[&str]) -> Result<(), InputError> {
    if let Some(k) = input.and_then(|m| m.keys().find(|k| !allowed.contains(&k.as_str()))) {
        return Err(InputError {
            field: k.clone(),
            reason: "is not an input of this provider".into(),
        });
    }
    Ok(())
}

fn sniff_image(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") {
        Some("image/webp")
    } else {
        None
    }
}

/// Decodes and checks a base64 selfie: standard or URL-safe alphabet, an optional data-URL
/// prefix, a PNG/JPEG/WebP image of at most [`MAX_SELFIE_BYTES`].
pub fn decode_selfie(text: &str) -> Result<NewAttachment, String> {
    let body = text
        .split_once("base64,")
        .map_or(text, |(_, b)| b)
        .trim()
        .trim_end_matches('=');
    if body.len() > MAX_SELFIE_BYTES * 4 / 3 + 4 {
        return Err(format!("must be at most {MAX_SELFIE_BYTES} bytes"));
    }
    let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(body)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(body))
        .map_err(|_| "must be base64".to_owned())?;
    let content_type = sniff_image(&bytes).ok_or("must be a PNG, JPEG or WebP image")?;
    Ok(NewAttachment {
        slot: AttachmentSlot::Selfie,
        content_type: content_type.to_owned(),
        content: bytes,
    })
}

fn test_person(given: &str, family: &str) -> Person {
    Person {
        given_name: Some(given.to_owned()),
        family_name: Some(family.to_owned()),
        full_name: Some(format!("{given} {family}")),
        date_of_birth: Some("1990-01-01".into()),
        sex: Some(Sex::Unknown),
        nationality: Some("US".into()),
        address: Some(Address {
            line1: Some("1 Test Street".into()),
            city: Some("Testville".into()),
            subdivision: Some("CA".into()),
            postal_code: Some("90001".into()),
            country: Some("US".into()),
            full_address: Some("1 Test Street, Testville, CA 90001, US".into()),
            ..Address::default()
        }),
        ..Person::default()
    }
}

/// `trinsic-test-database-lookup`.
pub struct DatabaseLookup {
    info: ProviderInfo,
}

impl DatabaseLookup {
    pub const ID: &'static str = "trinsic-test-database-lookup";
    pub fn new() -> Self {
        DatabaseLookup {
            info: ProviderInfo {
                id: Self::ID,
                name: "Test Database Lookup",
                subtext: "Test mode only",
                description: "Checks a name and identity code against a test database. The code 123456 matches; any other code fails.",
                logo: "provider-database.svg",
                test_only: true,
                input_key: Some("trinsicTestDatabaseLookup"),
                requires_input: true,
                launch_method: LaunchMethod::None,
                collection: Collection::PollResult,
                results_delayed_after_redirect: false,
                refreshable: false,
                has_interface: true,
                supports_advanced: true,
                geography: &["US"],
                sub_providers: Vec::new(),
                fields: &[
                    ("givenName", "Always"),
                    ("familyName", "Always"),
                    ("fullName", "Always"),
                    ("dateOfBirth", "Always"),
                    ("address", "Always"),
                    ("idNumber", "Always"),
                    ("selfie", "Always"),
                    ("documentFront", "Always"),
                ],
            },
        }
    }

    fn fields() -> Vec<FormField> {
        vec![
            FormField {
                name: "givenName",
                label: "Given name",
                hint: None,
                required: true,
                kind: "text",
                autocomplete: Some("given-name"),
            },
            FormField {
                name: "familyName",
                label: "Family name",
                hint: None,
                required: true,
                kind: "text",
                autocomplete: Some("family-name"),
            },
            FormField {
                name: "identityCode",
                label: "Identity code",
                hint: Some("6 digits. In test mode, 123456 matches and any other code fails."),
                required: true,
                kind: "numeric",
                autocomplete: Some("off"),
            },
        ]
    }

    fn evaluate(given: &str, family: &str, code: &str, selfie: Option<NewAttachment>) -> Next {
        if code != MATCHING_CODE {
            return Next::Done(Outcome::Failure(FailReason::NoMatch));
        }
        let mut attachments = vec![
            selfie.unwrap_or_else(|| NewAttachment {
                slot: AttachmentSlot::Selfie,
                content_type: "image/png".into(),
                content: TEST_SELFIE_PNG.to_vec(),
            }),
            NewAttachment {
                slot: AttachmentSlot::DocumentFront,
                content_type: "image/png".into(),
                content: TEST_DOCUMENT_PNG.to_vec(),
            },
        ];
        attachments.sort_by_key(|a| a.slot);
        Next::Done(Outcome::Success(Box::new(Claims {
            person: Some(test_person(given, family)),
            document: Some(Document {
                kind: Some(DocumentType::NationalId),
                number: Some(code.to_owned()),
                issue_date: Some("2020-01-01".into()),
                expiration_date: Some("2030-01-01".into()),
                issuing_country: Some("US".into()),
                issuing_authority: Some("Test Authority".into()),
            }),
            sub_provider: None,
            attachments,
        })))
    }

    fn check_name(v: &str) -> Option<String> {
        if v.trim().is_empty() {
            Some("is required".into())
        } else if v.chars().count() > MAX_NAME || v.chars().any(char::is_control) {
            Some(format!(
                "must be at most {MAX_NAME} characters, without control characters"
            ))
        } else {
            None
        }
    }

    fn check_code(v: &str) -> Option<String> {
        (v.len() != 6 || !v.bytes().all(|b| b.is_ascii_digit()))
            .then(|| "must be exactly 6 digits".to_owned())
    }
}

impl Default for DatabaseLookup {
    fn default() -> Self {
        Self::new()
    }
}

impl Provider for DatabaseLookup {
    fn info(&self) -> &ProviderInfo {
        &self.info
    }

    fn begin(&self, _: &Ctx<'_>, input: Option<&Map<String, Value>>) -> Result<Next, InputError> {
        only_keys(
            input,
            &["givenName", "familyName", "identityCode", "selfieBase64"],
        )?;
        let given = str_input(input, "givenName")?.unwrap_or("");
        let family = str_input(input, "familyName")?.unwrap_or("");
        let code = str_input(input, "identityCode")?.unwrap_or("");
        let selfie = str_input(input, "selfieBase64")?
            .map(decode_selfie)
            .transpose()
            .map_err(|reason| InputError {
                field: "selfieBase64".into(),
                reason,
            })?;
        for (field, v) in [("givenName", given), ("familyName", family)] {
            if !v.is_empty()
                && let Some(reason) = Self::check_name(v)
            {
                return Err(InputError {
                    field: field.into(),
                    reason,
                });
            }
        }
        if given.trim().is_empty() || family.trim().is_empty() || code.is_empty() {
            // Incomplete input: the hosted form collects the rest, prefilled with what was given.
            let values = [
                ("givenName", given),
                ("familyName", family),
                ("identityCode", code),
            ]
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
            return Ok(Next::Form {
                fields: Self::fields(),
                values,
                errors: BTreeMap::new(),
            });
        }
        Ok(Self::evaluate(given, family, code, selfie))
    }

    fn submit(&self, _: &Ctx<'_>, fields: &BTreeMap<String, String>) -> Next {
        let value = |k: &str| {
            fields
                .get(k)
                .map(|s| s.trim().to_owned())
                .unwrap_or_default()
        };
        let (given, family, code) = (
            value("givenName"),
            value("familyName"),
            value("identityCode"),
        );
        let mut errors = BTreeMap::new();
        for (k, v) in [("givenName", &given), ("familyName", &family)] {
            if let Some(e) = Self::check_name(v) {
                errors.insert(k.to_owned(), e);
            }
        }
        if let Some(e) = Self::check_code(&code) {
            errors.insert("identityCode".to_owned(), e);
        }
        if !errors.is_empty() {
            let values = [
                ("givenName", given),
                ("familyName", family),
                ("identityCode", code),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
            return Next::Form {
                fields: Self::fields(),
                values,
                errors,
            };
        }
        Self::evaluate(&given, &family, &code, None)
    }
}

/// `trinsic-test-sub-providers`.
pub struct SubProviders {
    info: ProviderInfo,
}

impl SubProviders {
    pub const ID: &'static str = "trinsic-test-sub-providers";
    pub fn new() -> Self {
        SubProviders {
            info: ProviderInfo {
                id: Self::ID,
                name: "Test Sub-Providers",
                subtext: "Test mode only",
                description: "A provider with two sub-providers (like banks under one scheme). Either one succeeds.",
                logo: "provider-subproviders.svg",
                test_only: true,
                input_key: Some("trinsicTestSubProviders"),
                requires_input: false,
                launch_method: LaunchMethod::LaunchBrowser,
                collection: Collection::CaptureRedirect,
                results_delayed_after_redirect: false,
                refreshable: false,
                has_interface: true,
                supports_advanced: true,
                geography: &["US"],
                sub_providers: vec![
                    SubProvider {
                        id: "sub-provider-a",
                        name: "Sub-provider A",
                        description: "The first test sub-provider.",
                    },
                    SubProvider {
                        id: "sub-provider-b",
                        name: "Sub-provider B",
                        description: "The second test sub-provider.",
                    },
                ],
                fields: &[
                    ("givenName", "Always"),
                    ("familyName", "Always"),
                    ("fullName", "Always"),
                    ("dateOfBirth", "Always"),
                ],
            },
        }
    }

    fn finish(sub: &str) -> Next {
        let (given, family) = match sub {
            "sub-provider-a" => ("Alex", "Alpha"),
            _ => ("Blair", "Bravo"),
        };
        Next::Done(Outcome::Success(Box::new(Claims {
            person: Some(test_person(given, family)),
            document: None,
            sub_provider: Some(sub.to_owned()),
            attachments: Vec::new(),
        })))
    }

    fn choices(&self) -> Vec<Choice> {
        self.info
            .sub_providers
            .iter()
            .map(|s| Choice {
                id: s.id.to_owned(),
                label: s.name.to_owned(),
                description: s.description.to_owned(),
            })
            .collect()
    }
}

impl Default for SubProviders {
    fn default() -> Self {
        Self::new()
    }
}

impl Provider for SubProviders {
    fn info(&self) -> &ProviderInfo {
        &self.info
    }

    fn begin(&self, _: &Ctx<'_>, input: Option<&Map<String, Value>>) -> Result<Next, InputError> {
        only_keys(input, &["subProviderId"])?;
        match str_input(input, "subProviderId")? {
            None | Some("") => Ok(Next::Choose(self.choices())),
            Some(s) if self.info.sub_providers.iter().any(|p| p.id == s) => Ok(Self::finish(s)),
            Some(_) => Err(InputError {
                field: "subProviderId".into(),
                reason: "must be `sub-provider-a` or `sub-provider-b`".into(),
            }),
        }
    }

    fn submit(&self, _: &Ctx<'_>, fields: &BTreeMap<String, String>) -> Next {
        match fields.get("choice").map(String::as_str) {
            Some(s) if self.info.sub_providers.iter().any(|p| p.id == s) => Self::finish(s),
            _ => Next::Choose(self.choices()),
        }
    }
}

/// `sessiond-test-wallet`.
pub struct Wallet {
    info: ProviderInfo,
}

impl Wallet {
    pub const ID: &'static str = "sessiond-test-wallet";
    pub fn new() -> Self {
        Wallet {
            info: ProviderInfo {
                id: Self::ID,
                name: "Test Wallet",
                subtext: "Test mode only",
                description: "A mobile wallet reached by a deep link that expires every 30 seconds. Present or decline on the test wallet page.",
                logo: "provider-wallet.svg",
                test_only: true,
                input_key: None,
                requires_input: false,
                launch_method: LaunchMethod::DeeplinkToMobile,
                collection: Collection::PollResult,
                results_delayed_after_redirect: true,
                refreshable: true,
                has_interface: true,
                supports_advanced: true,
                geography: &["US"],
                sub_providers: Vec::new(),
                fields: &[
                    ("givenName", "Always"),
                    ("familyName", "Always"),
                    ("fullName", "Always"),
                    ("dateOfBirth", "Always"),
                    ("idNumber", "Always"),
                ],
            },
        }
    }

    fn link(ctx: &Ctx<'_>) -> Deeplink {
        let code = sessiond_crypto::ids::base62_bytes(&sessiond_crypto::random_bytes::<16>());
        Deeplink {
            content: format!("{}?code={code}", ctx.callback_url),
            code,
            ttl_secs: WALLET_LINK_TTL_SECS,
        }
    }
}

impl Default for Wallet {
    fn default() -> Self {
        Self::new()
    }
}

impl Provider for Wallet {
    fn info(&self) -> &ProviderInfo {
        &self.info
    }

    fn begin(&self, ctx: &Ctx<'_>, input: Option<&Map<String, Value>>) -> Result<Next, InputError> {
        only_keys(input, &[])?;
        Ok(Next::Deeplink(Self::link(ctx)))
    }

    fn submit(&self, ctx: &Ctx<'_>, _: &BTreeMap<String, String>) -> Next {
        Next::Deeplink(Self::link(ctx))
    }

    fn refresh(&self, ctx: &Ctx<'_>) -> Option<Deeplink> {
        Some(Self::link(ctx))
    }

    fn complete(&self, _: &Ctx<'_>, params: &BTreeMap<String, String>) -> Option<Next> {
        Some(match params.get("decision").map(String::as_str) {
            Some("present") => Next::Done(Outcome::Success(Box::new(Claims {
                person: Some(test_person("Wanda", "Wallet")),
                document: Some(Document {
                    kind: Some(DocumentType::DriversLicense),
                    number: Some("W1234567".into()),
                    issue_date: Some("2021-06-01".into()),
                    expiration_date: Some("2031-06-01".into()),
                    issuing_country: Some("US".into()),
                    issuing_authority: Some("Test DMV".into()),
                }),
                sub_provider: None,
                attachments: vec![NewAttachment {
                    slot: AttachmentSlot::DocumentPortrait,
                    content_type: "image/png".into(),
                    content: TEST_SELFIE_PNG.to_vec(),
                }],
            }))),
            Some("decline") => Next::Done(Outcome::Failure(FailReason::UserCanceled)),
            _ => return None,
        })
    }
}
