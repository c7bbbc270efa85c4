//! Aliases: CreateAlias, UpdateAlias, DeleteAlias, ListAliases. An alias lives in one
//! account and region and points at one key of that account and region.
//!
//! Alias operations need permission on the alias (identity policies only: an alias
//! has no key policy) and on the key (its key policy); UpdateAlias on the old and the
//! new key.

use super::{KeyService, Page, decode_marker, page_limit, paginate, require_not_pending_deletion};
use crate::authz::Question;
use crate::error::{Error, Result};
use crate::model::{AliasRecord, Caller, alias_arn, now_ms};
use crate::store::Store;

const MAX_ALIAS_NAME_LEN: usize = 256;

impl<S: Store> KeyService<S> {
    pub async fn create_alias(
        &self,
        caller: &Caller,
        alias_name: &str,
        target_key_id: &str,
    ) -> Result<()> {
        validate_alias_name(alias_name)?;
        reject_alias_target(target_key_id)?;
        let _writes = self.writes.lock().await;
        if let Some(existing) = self.alias(&caller.account_id, &caller.region, alias_name) {
            return Err(Error::AlreadyExists(format!(
                "An alias with the name {} already exists",
                existing.arn()
            )));
        }
        let key = self.resolve(caller, target_key_id, "targetKeyId", false)?;
        self.authorize_alias(caller, "CreateAlias", alias_name)
            .await?;
        let question = self.key_question(caller, "CreateAlias", &key, None);
        self.authorize_key(caller, &key, question).await?;
        require_not_pending_deletion(&key)?;
        let now = now_ms();
        let alias = AliasRecord {
            account_id: caller.account_id.clone(),
            region: caller.region.clone(),
            alias_name: alias_name.to_owned(),
            target_key_id: key.record.id.clone(),
            creation_date_ms: now,
            last_updated_ms: now,
        };
        self.store.insert_alias(&alias).await?;
        tracing::info!(alias = %alias_name, key_id = %alias.target_key_id, "alias created");
        self.put_alias(alias);
        Ok(())
    }

    pub async fn update_alias(
        &self,
        caller: &Caller,
        alias_name: &str,
        target_key_id: &str,
    ) -> Result<()> {
        validate_alias_name(alias_name)?;
        reject_alias_target(target_key_id)?;
        let _writes = self.writes.lock().await;
        let mut alias = self.existing_alias(caller, alias_name)?;
        let key = self.resolve(caller, target_key_id, "targetKeyId", false)?;
        self.authorize_alias(caller, "UpdateAlias", alias_name)
            .await?;
        if let Some(old) = self.key_in_region(&alias.target_key_id, &alias.region) {
            let question = self.key_question(caller, "UpdateAlias", &old, None);
            self.authorize_key(caller, &old, question).await?;
        }
        let question = self.key_question(caller, "UpdateAlias", &key, None);
        self.authorize_key(caller, &key, question).await?;
        // The current target may be in any state; the new one must not be pending
        // deletion.
        require_not_pending_deletion(&key)?;
        alias.target_key_id = key.record.id.clone();
        alias.last_updated_ms = now_ms();
        self.store.update_alias(&alias).await?;
        tracing::info!(alias = %alias_name, key_id = %alias.target_key_id, "alias updated");
        self.put_alias(alias);
        Ok(())
    }

    pub async fn delete_alias(&self, caller: &Caller, alias_name: &str) -> Result<()> {
        validate_alias_name(alias_name)?;
        let _writes = self.writes.lock().await;
        let alias = self.existing_alias(caller, alias_name)?;
        self.authorize_alias(caller, "DeleteAlias", alias_name)
            .await?;
        if let Some(key) = self.key_in_region(&alias.target_key_id, &alias.region) {
            let question = self.key_question(caller, "DeleteAlias", &key, None);
            self.authorize_key(caller, &key, question).await?;
        }
        self.store
            .delete_alias(&alias.account_id, &alias.region, &alias.alias_name)
            .await?;
        tracing::info!(alias = %alias_name, "alias deleted");
        self.drop_alias(&alias);
        Ok(())
    }

    /// The caller's aliases, optionally only those of one key.
    pub async fn list_aliases(
        &self,
        caller: &Caller,
        key_id: Option<&str>,
        limit: Option<i32>,
        marker: Option<&str>,
    ) -> Result<Page<AliasRecord>> {
        let limit = page_limit(limit, 50, 100)?;
        let after = decode_marker(marker)?;
        let target = match key_id {
            Some(k) => Some(
                self.resolve_authorized(caller, k, "keyId", "ListAliases", false)
                    .await?,
            ),
            None => {
                self.authorize_account(caller, "ListAliases", Question::default())
                    .await?;
                None
            }
        };
        let rows = self
            .store
            .list_aliases(
                &caller.account_id,
                &caller.region,
                target.as_ref().map(|k| k.record.id.as_str()),
                after.as_deref(),
                limit + 1,
            )
            .await?;
        Ok(paginate(rows, limit, |a| &a.alias_name))
    }

    /// Permission on the alias itself (the caller's account and region): identity
    /// policies decide, there is no key policy.
    async fn authorize_alias(&self, caller: &Caller, op: &str, alias_name: &str) -> Result<()> {
        let arn = alias_arn(&caller.region, &caller.account_id, alias_name);
        let question = Question::new(op, &arn, &caller.account_id)
            .key("kms:CallerAccount", caller.account_id.as_str());
        self.authorize(caller, question).await
    }

    fn existing_alias(&self, caller: &Caller, alias_name: &str) -> Result<AliasRecord> {
        self.alias(&caller.account_id, &caller.region, alias_name)
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "Alias {} is not found.",
                    alias_arn(&caller.region, &caller.account_id, alias_name)
                ))
            })
    }
}

/// AliasName rules: `alias/` prefix, 1-256 characters of the model's pattern, only
/// alphanumerics, `/`, `_` and `-` after the prefix, and never under the
/// `alias/aws/` prefix that AWS reserves for AWS managed keys.
fn validate_alias_name(name: &str) -> Result<()> {
    if !name.starts_with("alias/") {
        return Err(Error::Validation(
            "Alias must start with the prefix \"alias/\". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html"
                .into(),
        ));
    }
    if name.len() > MAX_ALIAS_NAME_LEN {
        return Err(Error::Validation(format!(
            "1 validation error detected: Value '{name}' at 'aliasName' failed to satisfy constraint: Member must have length less than or equal to 256"
        )));
    }
    let in_pattern = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b':' | b'/' | b'_' | b'-');
    if !name.bytes().all(in_pattern) {
        return Err(Error::Validation(format!(
            "1 validation error detected: Value '{name}' at 'aliasName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$"
        )));
    }
    if name.starts_with("alias/aws/") {
        return Err(Error::NotAuthorized(String::new()));
    }
    if name.len() == "alias/".len() || name.contains(':') {
        return Err(Error::Validation(format!(
            "{name} contains invalid characters for an alias"
        )));
    }
    Ok(())
}

fn reject_alias_target(target_key_id: &str) -> Result<()> {
    if target_key_id.starts_with("alias/") || target_key_id.contains(":alias/") {
        return Err(Error::Validation(
            "Aliases must refer to keys. Not aliases".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_names_follow_kms_rules() {
        assert!(validate_alias_name("alias/my-key_1/prod").is_ok());
        assert!(matches!(
            validate_alias_name("my-key"),
            Err(Error::Validation(_))
        ));
        assert!(matches!(
            validate_alias_name("alias/aws/ebs"),
            Err(Error::NotAuthorized(_))
        ));
        assert!(matches!(
            validate_alias_name("alias/a:b"),
            Err(Error::Validation(_))
        ));
        assert!(matches!(
            validate_alias_name("alias/a b"),
            Err(Error::Validation(_))
        ));
        assert!(matches!(
            validate_alias_name("alias/"),
            Err(Error::Validation(_))
        ));
        let long = format!("alias/{}", "a".repeat(251));
        assert!(matches!(
            validate_alias_name(&long),
            Err(Error::Validation(_))
        ));
        assert!(validate_alias_name(&long[..256]).is_ok());
    }
}
