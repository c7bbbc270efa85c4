//! Base64 (standard alphabet, padded) for the blob fields of the KMS JSON
//! protocol, used through `#[serde(with = ...)]` on the generated keystore types.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The bytes as a base64 JSON string. Base64 never needs escaping, so the text
/// goes out as a raw JSON value: serde_json writes it as is instead of checking
/// every character for escapes (a 4 KiB ciphertext is 5.5 KB of text).
pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    let mut text = String::with_capacity(bytes.len().div_ceil(3) * 4 + 2);
    text.push('"');
    STANDARD.encode_string(bytes, &mut text);
    text.push('"');
    serde_json::value::RawValue::from_string(text)
        .map_err(serde::ser::Error::custom)?
        .serialize(s)
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
    STANDARD
        .decode(s.as_bytes())
        .map_err(|_| serde::de::Error::custom("invalid base64"))
}

pub mod opt {
    use super::*;

    pub fn serialize<S: Serializer>(bytes: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match bytes {
            Some(b) => super::serialize(b, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        super::deserialize(d).map(Some)
    }
}

#[cfg(test)]
mod tests {
    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Blob {
        #[serde(with = "super")]
        b: Vec<u8>,
    }

    /// The same text and the same tree as a plain base64 string, both ways.
    #[test]
    fn blobs_are_base64_strings_in_text_and_in_trees() {
        for bytes in [
            vec![],
            vec![0xff],
            vec![1, 2],
            (0..=255).collect::<Vec<u8>>(),
        ] {
            let b64 = base64::Engine::encode(&super::STANDARD, &bytes);
            let blob = Blob { b: bytes };
            let text = serde_json::to_string(&blob).unwrap();
            assert_eq!(text, format!("{{\"b\":\"{b64}\"}}"));
            assert_eq!(
                serde_json::to_value(&blob).unwrap(),
                serde_json::json!({ "b": b64 })
            );
            assert_eq!(serde_json::from_str::<Blob>(&text).unwrap(), blob);
        }
    }
}
