//! A mapping's transform: a CEL expression (`"value * 2.0"`), or a redaction
//! (`{"redact": "scramble"}`, `{"redact": "partial", "keep": 4}`) that hashes or masks the value
//! before it reaches the destination.

use crate::redact::{RedactKind, Redaction};
use serde::{Deserialize, Serialize};

/// How a mapping computes its destination value from the source value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Transform {
    /// A CEL expression: `value` is the source value, and the record's fields are variables
    /// too. Its result is stored as the destination field's type.
    Expression(String),
    /// The source value redacted, as text (`scr_…` for `scramble`, `••••1234` for
    /// `partial`, `••••` for `mask`, null for `hide`); a `cast` converts that text.
    Redact {
        /// How the value is redacted.
        redact: RedactKind,
        /// `partial` only: the characters kept at the end (1 to 64; default 4).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        keep: Option<u32>,
    },
}

impl Transform {
    /// The redaction, for a redact transform.
    pub fn redaction(&self) -> Option<Redaction> {
        match self {
            Transform::Expression(_) => None,
            Transform::Redact { redact, keep } => Some(Redaction {
                kind: *redact,
                keep: *keep,
            }),
        }
    }

    /// The CEL expression, for an expression transform.
    pub fn expression(&self) -> Option<&str> {
        match self {
            Transform::Expression(e) => Some(e),
            Transform::Redact { .. } => None,
        }
    }
}

impl From<String> for Transform {
    fn from(expression: String) -> Transform {
        Transform::Expression(expression)
    }
}

impl From<&str> for Transform {
    fn from(expression: &str) -> Transform {
        Transform::Expression(expression.to_owned())
    }
}

impl From<Redaction> for Transform {
    fn from(r: Redaction) -> Transform {
        Transform::Redact {
            redact: r.kind,
            keep: r.keep,
        }
    }
}

/// The object form, with its unknown fields refused (an untagged enum would only say that
/// nothing matched).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RedactObject {
    redact: RedactKind,
    #[serde(default)]
    keep: Option<u32>,
}

impl<'de> Deserialize<'de> for Transform {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Transform, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Transform;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(
                    "a CEL expression, or a redaction such as {\"redact\": \"scramble\"} or \
                     {\"redact\": \"partial\", \"keep\": 4}",
                )
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Transform, E> {
                Ok(Transform::Expression(v.to_owned()))
            }

            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Transform, E> {
                Ok(Transform::Expression(v))
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Transform, A::Error> {
                let o =
                    RedactObject::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(Transform::Redact {
                    redact: o.redact,
                    keep: o.keep,
                })
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}
