//! Typed ids of tenant-owned objects. Each wraps a prefixed random id from `sessiond_crypto::ids`.

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;
            pub fn new() -> Self {
                $name(sessiond_crypto::ids::new_id($prefix))
            }
            /// A fresh id that sorts by `now`: 48 bits of time, then 80 random bits (still
            /// unguessable). For rows written at a high rate: consecutive inserts extend the same
            /// index page instead of each dirtying a random one.
            pub fn new_ordered(now: crate::clock::Timestamp) -> Self {
                let millis = u64::try_from(now.as_millis()).unwrap_or(0);
                $name(sessiond_crypto::ids::new_time_ordered_id($prefix, millis))
            }
            /// Accepts only strings shaped like ids this server issues.
            pub fn parse(s: &str) -> Option<Self> {
                sessiond_crypto::ids::is_id(s, $prefix).then(|| $name(s.to_owned()))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

typed_id!(
    /// A login session (`sess_…`).
    SessionId, "sess"
);
typed_id!(
    /// A user of an application's directory (`user_…`).
    UserId, "user"
);
typed_id!(
    /// A client (device/browser) that holds sessions (`client_…`).
    ClientId, "client"
);
typed_id!(
    /// An email address or phone number record of a user (`idn_…`).
    IdentificationId, "idn"
);
typed_id!(
    /// A JWT template (`jtmp_…`).
    TemplateId, "jtmp"
);
typed_id!(
    /// A signing key; also its JWK `kid` (`ins_…`, the shape token verifiers expect of
    /// instance keys).
    SigningKeyId, "ins"
);
typed_id!(
    /// A webhook endpoint (`ep_…`).
    EndpointId, "ep"
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Timestamp;

    #[test]
    fn ordered_ids_sort_by_time_and_stay_unguessable() {
        let t = Timestamp(1_767_225_600_000);
        let earlier = SessionId::new_ordered(t);
        let later = SessionId::new_ordered(Timestamp(t.0 + 1));
        assert!(earlier < later, "{earlier} < {later}");
        assert!(
            SessionId::parse(earlier.as_str()).is_some(),
            "same shape as random ids"
        );
        // Same millisecond: the 80 random bits still tell them apart.
        let same: std::collections::HashSet<_> =
            (0..1000).map(|_| SessionId::new_ordered(t)).collect();
        assert_eq!(same.len(), 1000);
        assert_eq!(earlier.as_str().len(), SessionId::new().as_str().len());
    }
}
