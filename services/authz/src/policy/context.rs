//! The request context: condition keys and their values as a request presents them.
//!
//! Key names are case-insensitive (stored lowercase); values are kept as given. A key is
//! either missing, or present with a set of values (one for ordinary keys, any number,
//! possibly none, for multi-valued keys such as `kms:EncryptionContextKeys`).

use std::borrow::Cow;
use std::collections::HashMap;

#[derive(Debug, Clone, Default)]
pub struct Context {
    /// The request path's global keys are static lowercase names (no allocation per key).
    /// foldhash: a dozen keys are set and looked up per request, where SipHash cost about
    /// 1 % of the stack's CPU; it is seeded per process, so encryption context keys (chosen
    /// by callers) cannot be picked to collide.
    keys: HashMap<Cow<'static, str>, Values, foldhash::fast::RandomState>,
}

/// A key's values: most keys have one, which then needs no `Vec` of its own.
#[derive(Debug, Clone)]
enum Values {
    One(String),
    Many(Vec<String>),
}

impl Values {
    fn as_slice(&self) -> &[String] {
        match self {
            Values::One(v) => std::slice::from_ref(v),
            Values::Many(v) => v,
        }
    }
}

impl Context {
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty context with room for `n` keys (the request path knows how many it sets;
    /// growing the map key by key rehashed it three or four times per request).
    pub fn with_capacity(n: usize) -> Self {
        Self {
            keys: HashMap::with_capacity_and_hasher(n, Default::default()),
        }
    }

    /// Set a single-valued key (replacing any earlier value).
    pub fn insert(&mut self, key: &str, value: impl Into<String>) {
        self.keys.insert(
            Cow::Owned(key.to_ascii_lowercase()),
            Values::One(value.into()),
        );
    }

    /// [`Context::insert`] for a key spelled in lowercase already, as the request path's
    /// global keys are (`aws:sourceip`): the name is not copied.
    pub fn insert_lowercase(&mut self, key: &'static str, value: impl Into<String>) {
        debug_assert!(!key.bytes().any(|b| b.is_ascii_uppercase()), "{key}");
        self.keys
            .insert(Cow::Borrowed(key), Values::One(value.into()));
    }

    /// Set a multi-valued key; an empty `values` makes the key present with an empty set.
    pub fn insert_multi<I, S>(&mut self, key: &str, values: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.keys.insert(
            Cow::Owned(key.to_ascii_lowercase()),
            Values::Many(values.into_iter().map(Into::into).collect()),
        );
    }

    pub fn remove(&mut self, key: &str) {
        self.keys.remove(lowered(key).as_ref());
    }

    /// The values of `key`; `key` must already be lowercase (policy keys are lowered when
    /// parsed); use [`Context::lookup`] for arbitrary spelling.
    pub fn get(&self, key: &str) -> Option<&[String]> {
        self.keys.get(key).map(Values::as_slice)
    }

    /// [`Context::get`] with any spelling of the key.
    pub fn lookup(&self, key: &str) -> Option<&[String]> {
        self.get(lowered(key).as_ref())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.keys.iter().map(|(k, v)| (k.as_ref(), v.as_slice()))
    }
}

/// `key` in lowercase, borrowed when it already is (no allocation on the request path,
/// whose keys are mostly spelled in lowercase already).
fn lowered(key: &str) -> Cow<'_, str> {
    if key.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(key.to_ascii_lowercase())
    } else {
        Cow::Borrowed(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_in_any_case_whatever_the_spelling_of_the_lookup() {
        let mut c = Context::with_capacity(2);
        c.insert("aws:SourceIp", "10.0.0.1");
        c.insert_multi("kms:EncryptionContextKeys", ["a", "b"]);
        assert_eq!(c.lookup("AWS:SOURCEIP"), Some(&["10.0.0.1".to_owned()][..]));
        assert_eq!(c.lookup("aws:sourceip"), Some(&["10.0.0.1".to_owned()][..]));
        assert_eq!(c.get("aws:sourceip"), Some(&["10.0.0.1".to_owned()][..]));
        assert_eq!(c.get("aws:SourceIp"), None, "get wants the lowercase key");
        c.remove("aws:sourceip");
        assert!(c.lookup("aws:SourceIp").is_none());
        c.remove("KMS:EncryptionContextKeys");
        assert!(c.lookup("kms:encryptioncontextkeys").is_none());
        // A static lowercase key replaces (and is replaced by) any spelling of the same key.
        c.insert("AWS:PrincipalAccount", "forged");
        c.insert_lowercase("aws:principalaccount", "111122223333");
        assert_eq!(
            c.lookup("aws:PrincipalAccount"),
            Some(&["111122223333".to_owned()][..])
        );
        assert_eq!(
            c.iter()
                .filter(|(k, _)| *k == "aws:principalaccount")
                .count(),
            1
        );
        c.insert_multi("kms:EncryptionContextKeys", Vec::<String>::new());
        assert_eq!(c.lookup("kms:EncryptionContextKeys"), Some(&[][..]));
        c.insert_multi("kms:ResourceAliases", ["alias/a"]);
        assert_eq!(
            c.get("kms:resourcealiases"),
            Some(&["alias/a".to_owned()][..])
        );
    }
}
