//! Audit records and the per-account copies that are stored.
//!
//! A record names the accounts that receive it (the caller's and, for cross-account use,
//! the key owner's). Each gets its own copy whose CloudTrail JSON carries
//! `"recipientAccountId": "<that account>"`, as CloudTrail delivers it.

use std::collections::BTreeMap;

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
    pub resources: Vec<Resource>,
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
        self.validate()?;
        let event = EventJson::parse(&self.cloudtrail_event, &self.event_id)?;
        let mut recipients = self.recipient_account_ids.clone();
        recipients.sort_unstable();
        recipients.dedup();
        Ok(recipients
            .into_iter()
            .map(|account_id| EventCopy {
                cloudtrail_event: event.with_recipient(&account_id),
                account_id,
                event_id: self.event_id.clone(),
                event_time_ms: self.event_time_ms,
                event_name: self.event_name.clone(),
                event_source: self.event_source.clone(),
                read_only: self.read_only,
                username: self.username.clone(),
                access_key_id: self.access_key_id.clone(),
                resources: self.resources.clone(),
                request_id: self.request_id.clone(),
            })
            .collect())
    }
}

/// A CloudTrail event object, checked once, into which each copy's recipient is spliced.
/// Splicing keeps the sender's field order (serde_json's map would sort the keys).
struct EventJson {
    /// The object text up to, not including, its closing brace.
    head: String,
    empty: bool,
}

impl EventJson {
    fn parse(text: &str, event_id: &str) -> Result<Self, Error> {
        let not_object = || {
            Error::Validation(format!(
                "audit record {event_id}: cloudtrail_event is not a JSON object"
            ))
        };
        // Validates the whole text and that it is an object, without building a tree.
        let keys: BTreeMap<String, IgnoredAny> =
            serde_json::from_str(text).map_err(|_| not_object())?;
        let text = if keys.contains_key("recipientAccountId") {
            // The sender should not set it; drop theirs so each copy has exactly one.
            let mut value: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(text).map_err(|_| not_object())?;
            value.remove("recipientAccountId");
            serde_json::to_string(&value).map_err(|_| not_object())?
        } else {
            text.trim().to_owned()
        };
        let head = text.strip_suffix('}').ok_or_else(not_object)?.to_owned();
        Ok(Self {
            head,
            empty: keys.len() == usize::from(keys.contains_key("recipientAccountId")),
        })
    }

    fn with_recipient(&self, account_id: &str) -> String {
        let sep = if self.empty { "" } else { "," };
        // Account ids are validated digits; no escaping needed.
        format!(
            "{}{sep}\"recipientAccountId\":\"{account_id}\"}}",
            self.head
        )
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
