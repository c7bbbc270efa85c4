//! CloudTrail `LookupEvents` semantics: one account's events, newest first, at most one
//! lookup attribute, an inclusive time range and opaque pagination tokens.
//!
//! A token is a keyset cursor (event time and sequence number of the last event returned)
//! bound to the query's parameters, so it cannot be replayed against a different query.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::Error;
use crate::records::{Resource, is_account_id};

pub const DEFAULT_MAX_RESULTS: u32 = 50;
pub const MAX_MAX_RESULTS: u32 = 50;

/// The one attribute a lookup may filter on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attribute {
    EventId(String),
    EventName(String),
    ReadOnly(bool),
    Username(String),
    ResourceType(String),
    ResourceName(String),
    EventSource(String),
    AccessKeyId(String),
}

impl Attribute {
    pub fn parse(key: &str, value: &str) -> Result<Option<Self>, Error> {
        if key.is_empty() {
            return Ok(None);
        }
        let value_owned = || value.to_owned();
        let attr = match key {
            "EventId" => Self::EventId(value_owned()),
            "EventName" => Self::EventName(value_owned()),
            "ReadOnly" => match value.to_ascii_lowercase().as_str() {
                "true" => Self::ReadOnly(true),
                "false" => Self::ReadOnly(false),
                _ => {
                    return Err(Error::InvalidLookupAttributes(format!(
                        "The value '{value}' is not valid for lookup attribute ReadOnly. Valid values: true, false."
                    )));
                }
            },
            "Username" => Self::Username(value_owned()),
            "ResourceType" => Self::ResourceType(value_owned()),
            "ResourceName" => Self::ResourceName(value_owned()),
            "EventSource" => Self::EventSource(value_owned()),
            "AccessKeyId" => Self::AccessKeyId(value_owned()),
            _ => {
                return Err(Error::InvalidLookupAttributes(format!(
                    "The lookup attribute key '{key}' is not valid. Valid keys: EventId, EventName, ReadOnly, \
                     Username, ResourceType, ResourceName, EventSource, AccessKeyId."
                )));
            }
        };
        if value.is_empty() {
            return Err(Error::InvalidLookupAttributes(format!(
                "The lookup attribute {key} needs a value of 1 to 2000 characters."
            )));
        }
        if value.chars().count() > 2000 {
            return Err(Error::InvalidLookupAttributes(format!(
                "The lookup attribute {key} needs a value of 1 to 2000 characters."
            )));
        }
        Ok(Some(attr))
    }

    fn fingerprint_parts(&self) -> (&'static str, String) {
        match self {
            Self::EventId(v) => ("EventId", v.clone()),
            Self::EventName(v) => ("EventName", v.clone()),
            Self::ReadOnly(v) => ("ReadOnly", v.to_string()),
            Self::Username(v) => ("Username", v.clone()),
            Self::ResourceType(v) => ("ResourceType", v.clone()),
            Self::ResourceName(v) => ("ResourceName", v.clone()),
            Self::EventSource(v) => ("EventSource", v.clone()),
            Self::AccessKeyId(v) => ("AccessKeyId", v.clone()),
        }
    }
}

/// Position after the last event of a page (pages run newest to oldest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub event_time_ms: i64,
    pub seq: i64,
}

/// A validated lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    pub account_id: String,
    pub filter: Option<Attribute>,
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    pub max_results: u32,
    pub after: Option<Cursor>,
}

/// The raw request fields, before validation.
#[derive(Debug, Clone, Default)]
pub struct LookupRequest {
    pub account_id: String,
    pub attribute_key: String,
    pub attribute_value: String,
    pub start_time_ms: Option<i64>,
    pub end_time_ms: Option<i64>,
    pub max_results: i32,
    pub next_token: String,
}

impl TryFrom<LookupRequest> for Lookup {
    type Error = Error;

    fn try_from(r: LookupRequest) -> Result<Self, Error> {
        if !is_account_id(&r.account_id) {
            return Err(Error::Validation(format!(
                "invalid account id {:?}",
                r.account_id
            )));
        }
        let filter = Attribute::parse(&r.attribute_key, &r.attribute_value)?;
        if let (Some(s), Some(e)) = (r.start_time_ms, r.end_time_ms)
            && s > e
        {
            return Err(Error::InvalidTimeRange(
                "The start time must not be after the end time.".into(),
            ));
        }
        let max_results = match r.max_results {
            0 => DEFAULT_MAX_RESULTS,
            n if n >= 1 && n as u32 <= MAX_MAX_RESULTS => n as u32,
            n => {
                return Err(Error::InvalidMaxResults(format!(
                    "MaxResults {n} is not valid. It must be between 1 and {MAX_MAX_RESULTS}."
                )));
            }
        };
        let mut lookup = Lookup {
            account_id: r.account_id,
            filter,
            start_ms: r.start_time_ms,
            end_ms: r.end_time_ms,
            max_results,
            after: None,
        };
        if !r.next_token.is_empty() {
            lookup.after = Some(lookup.decode_token(&r.next_token)?);
        }
        Ok(lookup)
    }
}

/// FNV-1a, 64 bit: binds a token to its query (not a security boundary: the account
/// scope is enforced by the query itself).
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in part.iter().chain(std::iter::once(&0xffu8)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

impl Lookup {
    fn fingerprint(&self) -> u64 {
        let (key, value) = self
            .filter
            .as_ref()
            .map(Attribute::fingerprint_parts)
            .unwrap_or(("", String::new()));
        let start = self.start_ms.map(|v| v.to_string()).unwrap_or_default();
        let end = self.end_ms.map(|v| v.to_string()).unwrap_or_default();
        fnv1a(&[
            self.account_id.as_bytes(),
            key.as_bytes(),
            value.as_bytes(),
            start.as_bytes(),
            end.as_bytes(),
        ])
    }

    pub fn encode_token(&self, cursor: Cursor) -> String {
        let raw = format!(
            "1.{}.{}.{:016x}",
            cursor.event_time_ms,
            cursor.seq,
            self.fingerprint()
        );
        URL_SAFE_NO_PAD.encode(raw)
    }

    fn decode_token(&self, token: &str) -> Result<Cursor, Error> {
        let raw = URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| Error::InvalidNextToken)?;
        let raw = String::from_utf8(raw).map_err(|_| Error::InvalidNextToken)?;
        let mut parts = raw.split('.');
        let (Some("1"), Some(t), Some(s), Some(f), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(Error::InvalidNextToken);
        };
        let cursor = Cursor {
            event_time_ms: t.parse().map_err(|_| Error::InvalidNextToken)?,
            seq: s.parse().map_err(|_| Error::InvalidNextToken)?,
        };
        let fingerprint = u64::from_str_radix(f, 16).map_err(|_| Error::InvalidNextToken)?;
        if fingerprint != self.fingerprint() {
            return Err(Error::InvalidNextToken);
        }
        Ok(cursor)
    }
}

/// An event as stored, for LookupEvents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub seq: i64,
    pub event_id: String,
    pub event_time_ms: i64,
    pub event_name: String,
    pub event_source: String,
    pub read_only: bool,
    pub username: String,
    pub access_key_id: String,
    pub resources: Vec<Resource>,
    pub cloudtrail_event: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> LookupRequest {
        LookupRequest {
            account_id: "111122223333".into(),
            ..Default::default()
        }
    }

    #[test]
    fn defaults_and_limits() {
        let l = Lookup::try_from(req()).unwrap();
        assert_eq!(l.max_results, 50);
        assert_eq!(l.filter, None);
        for bad in [-1, 51] {
            let r = LookupRequest {
                max_results: bad,
                ..req()
            };
            assert!(matches!(
                Lookup::try_from(r),
                Err(Error::InvalidMaxResults(_))
            ));
        }
    }

    #[test]
    fn attributes() {
        let r = LookupRequest {
            attribute_key: "ReadOnly".into(),
            attribute_value: "TRUE".into(),
            ..req()
        };
        assert_eq!(
            Lookup::try_from(r).unwrap().filter,
            Some(Attribute::ReadOnly(true))
        );
        for (k, v) in [("ReadOnly", "yes"), ("Region", "x"), ("EventName", "")] {
            let r = LookupRequest {
                attribute_key: k.into(),
                attribute_value: v.into(),
                ..req()
            };
            assert!(
                matches!(Lookup::try_from(r), Err(Error::InvalidLookupAttributes(_))),
                "{k}={v}"
            );
        }
    }

    #[test]
    fn token_round_trip_and_binding() {
        let l = Lookup::try_from(req()).unwrap();
        let c = Cursor {
            event_time_ms: 1_700_000_000_000,
            seq: 42,
        };
        let token = l.encode_token(c);
        let again = Lookup::try_from(LookupRequest {
            next_token: token.clone(),
            ..req()
        })
        .unwrap();
        assert_eq!(again.after, Some(c));
        let other = LookupRequest {
            next_token: token,
            attribute_key: "EventName".into(),
            attribute_value: "Encrypt".into(),
            ..req()
        };
        assert!(matches!(
            Lookup::try_from(other),
            Err(Error::InvalidNextToken)
        ));
        // "MS4yLjM" is "1.2.3": well-formed base64, too few parts.
        for junk in ["!!!", "MS4yLjM"] {
            let r = LookupRequest {
                next_token: junk.into(),
                ..req()
            };
            assert!(
                matches!(Lookup::try_from(r), Err(Error::InvalidNextToken)),
                "{junk}"
            );
        }
    }

    #[test]
    fn time_range() {
        let r = LookupRequest {
            start_time_ms: Some(2),
            end_time_ms: Some(1),
            ..req()
        };
        assert!(matches!(
            Lookup::try_from(r),
            Err(Error::InvalidTimeRange(_))
        ));
        let r = LookupRequest {
            start_time_ms: Some(1),
            end_time_ms: Some(1),
            ..req()
        };
        assert!(Lookup::try_from(r).is_ok());
    }
}
