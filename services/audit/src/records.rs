//! Audit records and the per-account copies that are stored.
//!
//! A record names the accounts that receive it (the caller's and, for cross-account use,
//! the key owner's). Each gets its own copy whose CloudTrail JSON carries
//! `"recipientAccountId": "<that account>"`, as CloudTrail delivers it.

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

use crate::error::Error;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resource {
    #[serde(rename = "type")]
    pub resource_type: String,
    #[serde(rename = "name")]
    pub resource_name: String,
}

/// One audit record as another service sent it, validated.
#[derive(Debug, Clone)]
pub struct Record {
    pub event_id: String,
    pub event_time_ms: i64,
    pub event_name: String,
    pub event_source: String,
    pub read_only: bool,
    pub username: String,
    pub access_key_id: String,
    pub resources: Vec<Resource>,
    pub recipient_account_ids: Vec<String>,
    /// The CloudTrail event JSON object, without recipientAccountId.
    pub cloudtrail_event: String,
    pub request_id: String,
}

/// The stored copy of a record for one recipient account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventCopy {
    pub account_id: String,
    pub event_id: String,
    pub event_time_ms: i64,
    pub event_name: String,
    pub event_source: String,
    pub read_only: bool,
    pub username: String,
    pub access_key_id: String,
    /// The resources as the JSON array the store keeps, serialized by the caller's
    /// thread: on the group-commit writer, whose work every call waits for, it was
    /// about a tenth of that thread's time.
    pub resources_json: String,
    pub request_id: String,
    /// The CloudTrail event with this copy's recipientAccountId.
    pub cloudtrail_event: String,
}

pub fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

impl Record {
    pub fn validate(&self) -> Result<(), Error> {
        if self.event_id.is_empty() {
            return Err(Error::Validation("audit record without event id".into()));
        }
        if self.recipient_account_ids.is_empty() {
            return Err(Error::Validation(format!(
                "audit record {} has no recipient account",
                self.event_id
            )));
        }
        if let Some(bad) = self
            .recipient_account_ids
            .iter()
            .find(|a| !is_account_id(a))
        {
            return Err(Error::Validation(format!(
                "audit record {} has an invalid recipient account id {bad:?}",
                self.event_id
            )));
        }
        Ok(())
    }

    /// One copy per distinct recipient account.
    pub fn into_copies(self) -> Result<Vec<EventCopy>, Error> {
        self.copies(false)
    }

    /// As [`Self::into_copies`], for a record whose event its sender in this process
    /// serialized from typed structs (`kms_proto::audit::SerializedEvents`): a JSON
    /// object without `recipientAccountId`, so it is not parsed again.
    pub fn into_copies_of_serialized(self) -> Result<Vec<EventCopy>, Error> {
        self.copies(true)
    }

    fn copies(self, serialized: bool) -> Result<Vec<EventCopy>, Error> {
        self.validate()?;
        let event = if serialized {
            EventJson::serialized(&self.cloudtrail_event, &self.event_id)?
        } else {
            EventJson::parse(&self.cloudtrail_event, &self.event_id)?
        };
        let resources_json = serde_json::to_string(&self.resources)
            .map_err(|e| Error::Validation(format!("resources of event {}: {e}", self.event_id)))?;
        let mut recipients = self.recipient_account_ids;
        recipients.sort_unstable();
        recipients.dedup();
        let mut copies = Vec::with_capacity(recipients.len());
        let mut recipients = recipients.into_iter().peekable();
        while let Some(account_id) = recipients.next() {
            let cloudtrail_event = event.with_recipient(&account_id);
            if recipients.peek().is_some() {
                copies.push(EventCopy {
                    cloudtrail_event,
                    account_id,
                    event_id: self.event_id.clone(),
                    event_time_ms: self.event_time_ms,
                    event_name: self.event_name.clone(),
                    event_source: self.event_source.clone(),
                    read_only: self.read_only,
                    username: self.username.clone(),
                    access_key_id: self.access_key_id.clone(),
                    resources_json: resources_json.clone(),
                    request_id: self.request_id.clone(),
                });
            } else {
                // The last (usually the only) copy takes the record's fields.
                copies.push(EventCopy {
                    cloudtrail_event,
                    account_id,
                    event_id: self.event_id,
                    event_time_ms: self.event_time_ms,
                    event_name: self.event_name,
                    event_source: self.event_source,
                    read_only: self.read_only,
                    username: self.username,
                    access_key_id: self.access_key_id,
                    resources_json,
                    request_id: self.request_id,
                });
                break;
            }
        }
        Ok(copies)
    }
}

/// A CloudTrail event object, checked once, into which each copy's recipient is spliced.
/// Splicing keeps the sender's field order (serde_json's map would sort the keys).
struct EventJson<'a> {
    /// The object text up to, not including, its closing brace.
    head: std::borrow::Cow<'a, str>,
    empty: bool,
}

/// The top-level keys of a JSON object: how many, and whether `recipientAccountId` is one
/// (values are checked and skipped, keys not copied unless they hold escapes).
struct TopLevelKeys {
    count: usize,
    has_recipient: bool,
}

impl<'de> serde::Deserialize<'de> for TopLevelKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = TopLevelKeys;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<TopLevelKeys, A::Error> {
                let mut keys = TopLevelKeys {
                    count: 0,
                    has_recipient: false,
                };
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    map.next_value::<IgnoredAny>()?;
                    keys.count += 1;
                    keys.has_recipient |= key == "recipientAccountId";
                }
                Ok(keys)
            }
        }
        d.deserialize_map(Visitor)
    }
}

impl<'a> EventJson<'a> {
    fn parse(text: &'a str, event_id: &str) -> Result<Self, Error> {
        let not_object = || {
            Error::Validation(format!(
                "audit record {event_id}: cloudtrail_event is not a JSON object"
            ))
        };
        // Validates the whole text and that it is an object, without building a tree.
        let keys: TopLevelKeys = serde_json::from_str(text).map_err(|_| not_object())?;
        let head = if keys.has_recipient {
            // The sender should not set it; drop theirs so each copy has exactly one.
            let mut value: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(text).map_err(|_| not_object())?;
            value.remove("recipientAccountId");
            let text = serde_json::to_string(&value).map_err(|_| not_object())?;
            std::borrow::Cow::Owned(text.strip_suffix('}').ok_or_else(not_object)?.to_owned())
        } else {
            std::borrow::Cow::Borrowed(text.trim().strip_suffix('}').ok_or_else(not_object)?)
        };
        Ok(Self {
            head,
            empty: keys.count == usize::from(keys.has_recipient),
        })
    }

    /// An object serialized by the sender itself: only its braces are checked.
    fn serialized(text: &'a str, event_id: &str) -> Result<Self, Error> {
        let head = text
            .strip_suffix('}')
            .filter(|head| head.starts_with('{'))
            .ok_or_else(|| {
                Error::Validation(format!(
                    "audit record {event_id}: cloudtrail_event is not a JSON object"
                ))
            })?;
        Ok(Self {
            head: std::borrow::Cow::Borrowed(head),
            empty: head == "{",
        })
    }

    fn with_recipient(&self, account_id: &str) -> String {
        const FIELD: &str = "\"recipientAccountId\":\"";
        let mut out = String::with_capacity(self.head.len() + FIELD.len() + account_id.len() + 4);
        out.push_str(&self.head);
        if !self.empty {
            out.push(',');
        }
        // Account ids are validated digits; no escaping needed.
        out.push_str(FIELD);
        out.push_str(account_id);
        out.push_str("\"}");
        out
    }
}

#[cfg(test)]
impl EventCopy {
    /// Event copy number `i` of one account, for tests.
    pub(crate) fn numbered(i: usize) -> Self {
        Self {
            account_id: "111122223333".into(),
            event_id: format!("event-{i:08}"),
            event_time_ms: i as i64,
            event_name: "Encrypt".into(),
            event_source: "kms.amazonaws.com".into(),
            read_only: false,
            username: String::new(),
            access_key_id: String::new(),
            resources_json: "[]".into(),
            request_id: format!("request-{i:08}"),
            cloudtrail_event: "{}".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(event: &str, recipients: &[&str]) -> Record {
        Record {
            event_id: "e1".into(),
            event_time_ms: 1,
            event_name: "Encrypt".into(),
            event_source: "kms.amazonaws.com".into(),
            read_only: false,
            username: String::new(),
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            resources: vec![],
            recipient_account_ids: recipients.iter().map(|s| s.to_string()).collect(),
            cloudtrail_event: event.into(),
            request_id: "r1".into(),
        }
    }

    #[test]
    fn each_recipient_gets_its_own_copy_in_original_field_order() {
        let copies = record(
            r#"{"eventVersion":"1.08","eventName":"Encrypt","eventID":"e1"}"#,
            &["444455556666", "111122223333", "444455556666"],
        )
        .into_copies()
        .unwrap();
        assert_eq!(copies.len(), 2);
        assert_eq!(copies[0].account_id, "111122223333");
        assert_eq!(
            copies[0].cloudtrail_event,
            r#"{"eventVersion":"1.08","eventName":"Encrypt","eventID":"e1","recipientAccountId":"111122223333"}"#
        );
        assert_eq!(copies[1].account_id, "444455556666");
        let v: serde_json::Value = serde_json::from_str(&copies[1].cloudtrail_event).unwrap();
        assert_eq!(v["recipientAccountId"], "444455556666");
    }

    #[test]
    fn empty_object_and_existing_recipient() {
        let c = record(" {} ", &["111122223333"]).into_copies().unwrap();
        assert_eq!(
            c[0].cloudtrail_event,
            r#"{"recipientAccountId":"111122223333"}"#
        );
        let c = record(
            r#"{"recipientAccountId":"999999999999","a":1}"#,
            &["111122223333"],
        )
        .into_copies()
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&c[0].cloudtrail_event).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"a": 1, "recipientAccountId": "111122223333"})
        );
        let c = record(
            r#"{"recipientAccountId":"999999999999"}"#,
            &["111122223333"],
        )
        .into_copies()
        .unwrap();
        assert_eq!(
            c[0].cloudtrail_event,
            r#"{"recipientAccountId":"111122223333"}"#
        );
    }

    #[test]
    fn a_serialized_event_gets_the_same_copies_without_a_parse() {
        for event in [
            r#"{"eventVersion":"1.08","eventName":"Encrypt","eventID":"e1"}"#,
            "{}",
        ] {
            let recipients = ["444455556666", "111122223333", "444455556666"];
            let parsed = record(event, &recipients).into_copies().unwrap();
            let serialized = record(event, &recipients)
                .into_copies_of_serialized()
                .unwrap();
            let texts = |c: &[EventCopy]| {
                c.iter()
                    .map(|c| (c.account_id.clone(), c.cloudtrail_event.clone()))
                    .collect::<Vec<_>>()
            };
            assert_eq!(texts(&serialized), texts(&parsed));
        }
        // The record's own checks still apply, and text that is not an object's.
        for (event, recipients) in [
            ("[1,2]", &["111122223333"][..]),
            ("", &["111122223333"]),
            ("}", &["111122223333"]),
            ("{}", &[]),
            ("{}", &["1111"]),
        ] {
            assert!(
                record(event, recipients)
                    .into_copies_of_serialized()
                    .is_err(),
                "{event:?} {recipients:?}"
            );
        }
    }

    #[test]
    fn invalid_records_are_refused() {
        assert!(record("[1,2]", &["111122223333"]).into_copies().is_err());
        assert!(record("{\"a\":", &["111122223333"]).into_copies().is_err());
        assert!(record("", &["111122223333"]).into_copies().is_err());
        assert!(record("{}", &[]).into_copies().is_err());
        assert!(record("{}", &["1111"]).into_copies().is_err());
        let mut r = record("{}", &["111122223333"]);
        r.event_id.clear();
        assert!(r.into_copies().is_err());
    }
}
