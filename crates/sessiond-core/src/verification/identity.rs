//! Identity data a provider produces. Neutral of any dialect; dialects render it in their shape.
//! This is the plaintext of the sealed results: it exists only in memory.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Address {
    pub line1: Option<String>,
    pub line2: Option<String>,
    pub line3: Option<String>,
    pub city: Option<String>,
    /// State, province or other first-level subdivision.
    pub subdivision: Option<String>,
    pub postal_code: Option<String>,
    /// ISO 3166-1 alpha-2.
    pub country: Option<String>,
    pub full_address: Option<String>,
}

/// Sex as documents record it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Sex {
    Unknown,
    NotApplicable,
    Male,
    Female,
}

impl Sex {
    pub fn as_str(self) -> &'static str {
        match self {
            Sex::Unknown => "Unknown",
            Sex::NotApplicable => "NotApplicable",
            Sex::Male => "Male",
            Sex::Female => "Female",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Person {
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub middle_name: Option<String>,
    pub full_name: Option<String>,
    pub suffix: Option<String>,
    pub nationality: Option<String>,
    pub sex: Option<Sex>,
    pub phone_number: Option<String>,
    pub address: Option<Address>,
    /// `YYYY-MM-DD`.
    pub date_of_birth: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DocumentType {
    Passport,
    DriversLicense,
    NationalId,
    IdCard,
    Other,
}

impl DocumentType {
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentType::Passport => "Passport",
            DocumentType::DriversLicense => "DriversLicense",
            DocumentType::NationalId => "NationalId",
            DocumentType::IdCard => "IdCard",
            DocumentType::Other => "Other",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Document {
    pub kind: Option<DocumentType>,
    pub number: Option<String>,
    /// `YYYY-MM-DD`.
    pub issue_date: Option<String>,
    /// `YYYY-MM-DD`.
    pub expiration_date: Option<String>,
    pub issuing_country: Option<String>,
    pub issuing_authority: Option<String>,
}

/// Which image an attachment is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttachmentSlot {
    Selfie,
    DocumentFront,
    DocumentBack,
    DocumentPortrait,
}

/// An attachment as a provider hands it over (plaintext, in memory only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAttachment {
    pub slot: AttachmentSlot,
    pub content_type: String,
    pub content: Vec<u8>,
}

/// What a successful provider returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claims {
    pub person: Option<Person>,
    pub document: Option<Document>,
    pub sub_provider: Option<String>,
    pub attachments: Vec<NewAttachment>,
}

/// The results of a finished session, as sealed to the results key. Attachments appear only as
/// their access keys; their bytes are sealed separately, each to its own key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct IdentityData {
    pub originating_provider_id: Option<String>,
    pub originating_sub_provider_id: Option<String>,
    pub person: Option<Person>,
    pub document: Option<Document>,
    /// Access key per attachment slot.
    pub attachments: Vec<(AttachmentSlot, String)>,
}

impl IdentityData {
    pub fn attachment_key(&self, slot: AttachmentSlot) -> Option<&str> {
        self.attachments
            .iter()
            .find(|(s, _)| *s == slot)
            .map(|(_, k)| k.as_str())
    }
}

/// An attachment's bytes as sealed to its access key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentContent {
    pub content_type: String,
    #[serde(with = "b64")]
    pub content: Vec<u8>,
}

mod b64 {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(v))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        STANDARD.decode(s).map_err(serde::de::Error::custom)
    }
}
