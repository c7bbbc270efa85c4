//! Tags of keys: TagResource, UntagResource, ListResourceTags.

use super::{KeyService, Page, decode_marker, page_limit, paginate};
use crate::error::{Error, Result};
use crate::model::{Caller, Tag};
use crate::service::keys::too_many_tags;
use crate::store::Store;

/// KMS's quota of tags per key.
pub const MAX_TAGS_PER_KEY: u32 = 50;
const MAX_TAG_KEY_LEN: usize = 128;
const MAX_TAG_VALUE_LEN: usize = 256;

impl<S: Store> KeyService<S> {
    /// Adds tags, replacing the values of existing tag keys.
    pub async fn tag_resource(&self, caller: &Caller, key_id: &str, tags: &[Tag]) -> Result<()> {
        validate_tags(tags)?;
        let _writes = self.writes.lock().await;
        let key = self
            .resolve_for_change(caller, key_id, "keyId", "TagResource")
            .await?;
        if !self
            .store
            .put_tags(&key.record.row_id(), tags, MAX_TAGS_PER_KEY)
            .await?
        {
            return Err(too_many_tags());
        }
        Ok(())
    }

    /// Removes tags; tag keys the key does not have are ignored, as in AWS.
    pub async fn untag_resource(
        &self,
        caller: &Caller,
        key_id: &str,
        tag_keys: &[String],
    ) -> Result<()> {
        for (i, k) in tag_keys.iter().enumerate() {
            validate_tag_key(&format!("tagKeys.{}.member", i + 1), k)?;
        }
        let _writes = self.writes.lock().await;
        let key = self
            .resolve_for_change(caller, key_id, "keyId", "UntagResource")
            .await?;
        self.store
            .delete_tags(&key.record.row_id(), tag_keys)
            .await?;
        Ok(())
    }

    pub async fn list_resource_tags(
        &self,
        caller: &Caller,
        key_id: &str,
        limit: Option<i32>,
        marker: Option<&str>,
    ) -> Result<Page<Tag>> {
        let limit = page_limit(limit, 50, 50)?;
        let after = decode_marker(marker)?;
        let key = self
            .resolve_authorized(caller, key_id, "keyId", "ListResourceTags", false)
            .await?;
        let tags = self
            .store
            .list_tags(&key.record.row_id(), after.as_deref(), limit + 1)
            .await?;
        Ok(paginate(tags, limit, |t| &t.key))
    }
}

/// Tag keys 1-128 characters, values 0-256, and no `aws:` prefix (reserved by AWS).
pub fn validate_tags(tags: &[Tag]) -> Result<()> {
    for (i, tag) in tags.iter().enumerate() {
        let at = format!("tags.{}.member", i + 1);
        validate_tag_key(&format!("{at}.tagKey"), &tag.key)?;
        if tag.value.chars().count() > MAX_TAG_VALUE_LEN {
            return Err(Error::Validation(format!(
                "1 validation error detected: Value '{}' at '{at}.tagValue' failed to satisfy constraint: Member must have length less than or equal to 256",
                tag.value
            )));
        }
    }
    Ok(())
}

fn validate_tag_key(at: &str, key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(Error::Validation(format!(
            "1 validation error detected: Value '' at '{at}' failed to satisfy constraint: Member must have length greater than or equal to 1"
        )));
    }
    if key.chars().count() > MAX_TAG_KEY_LEN {
        return Err(Error::Validation(format!(
            "1 validation error detected: Value '{key}' at '{at}' failed to satisfy constraint: Member must have length less than or equal to 128"
        )));
    }
    if key.len() >= 4 && key.as_bytes()[..4].eq_ignore_ascii_case(b"aws:") {
        return Err(Error::Tag("Tags beginning with aws: are reserved".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(k: &str, v: &str) -> Tag {
        Tag {
            key: k.into(),
            value: v.into(),
        }
    }

    #[test]
    fn tags_are_validated() {
        assert!(validate_tags(&[tag("Project", ""), tag("k", "v")]).is_ok());
        assert!(matches!(
            validate_tags(&[tag("", "v")]),
            Err(Error::Validation(_))
        ));
        assert!(matches!(
            validate_tags(&[tag("aws:x", "v")]),
            Err(Error::Tag(_))
        ));
        assert!(matches!(
            validate_tags(&[tag("AWS:x", "v")]),
            Err(Error::Tag(_))
        ));
        assert!(matches!(
            validate_tags(&[tag(&"k".repeat(129), "v")]),
            Err(Error::Validation(_))
        ));
        assert!(matches!(
            validate_tags(&[tag("k", &"v".repeat(257))]),
            Err(Error::Validation(_))
        ));
        // Multi-byte keys are measured in characters.
        assert!(validate_tags(&[tag(&"é".repeat(128), "v")]).is_ok());
        assert!(validate_tags(&[tag("abcé", "v")]).is_ok());
    }
}
