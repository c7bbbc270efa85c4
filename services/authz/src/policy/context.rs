//! The request context: condition keys and their values as a request presents them.
//!
//! Key names are case-insensitive (stored lowercase); values are kept as given. A key is
//! either missing, or present with a set of values (one for ordinary keys, any number,
//! possibly none, for multi-valued keys such as `kms:EncryptionContextKeys`).

use std::collections::HashMap;

#[derive(Debug, Clone, Default)]
pub struct Context {
    keys: HashMap<String, Vec<String>>,
}

impl Context {
    pub fn new() -> Self {
        Self::default()
    }

    /// Set a single-valued key (replacing any earlier value).
    pub fn insert(&mut self, key: &str, value: impl Into<String>) {
        self.keys
            .insert(key.to_ascii_lowercase(), vec![value.into()]);
    }

    /// Set a multi-valued key; an empty `values` makes the key present with an empty set.
    pub fn insert_multi<I, S>(&mut self, key: &str, values: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.keys.insert(
            key.to_ascii_lowercase(),
            values.into_iter().map(Into::into).collect(),
        );
    }

    pub fn remove(&mut self, key: &str) {
        self.keys.remove(&key.to_ascii_lowercase());
    }

    /// The values of `key`; `key` must already be lowercase (policy keys are lowered when
    /// parsed); use [`Context::lookup`] for arbitrary spelling.
    pub fn get(&self, key: &str) -> Option<&[String]> {
        self.keys.get(key).map(Vec::as_slice)
    }

    /// [`Context::get`] with any spelling of the key.
    pub fn lookup(&self, key: &str) -> Option<&[String]> {
        self.get(&key.to_ascii_lowercase())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.keys.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }
}
