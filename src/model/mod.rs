//! The shapes that flow through partnerwatch: API records (kept as the API returned them,
//! plus typed views where the code needs to understand a field), and [`Event`]s.

pub mod action;
pub mod dataset;
pub mod delivery;
pub mod doc;
pub mod event;
pub mod event_data;
pub mod license;
pub mod referral;

pub use action::{ActionRecord, ActionState};
pub use dataset::Dataset;
pub use delivery::{Amount, Body, Button, Delivery, DeliveryStatus, Format, InlineImage, Message};
pub use doc::Doc;
pub use event::{Change, Event, EventKind};

/// A field of a JSON record by name, whatever its casing (the APIs are not consistent:
/// `tenantId`/`tenantID`, `adoptionStatus`/`AdoptionStatus`).
pub fn field<'a>(r: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
    let obj = r.as_object()?;
    obj.get(name).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

/// Declares an API enum that keeps values the docs do not list (`Other`) and reads any casing.
macro_rules! api_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($variant,)+
            /// A value the API documentation does not list, kept as sent.
            Other(String),
        }

        impl $name {
            pub const KNOWN: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => stringify!($variant),)+
                    $name::Other(s) => s,
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::convert::Infallible;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $(if s.eq_ignore_ascii_case(stringify!($variant)) {
                    return Ok($name::$variant);
                })+
                Ok($name::Other(s.to_string()))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Ok(s.parse().unwrap_or_else(|never: std::convert::Infallible| match never {}))
            }
        }
    };
}
pub(crate) use api_enum;
