//! Base64 (standard alphabet, padded) for the blob fields of the KMS JSON
//! protocol, used through `#[serde(with = ...)]` on the generated keystore types.
//!
//! base64-simd encodes and decodes with the CPU's vector instructions: a 4 KiB
//! plaintext or ciphertext took the base64 crate about 2 µs each way, a tenth of
//! the reference server's whole Encrypt. It accepts and rejects exactly what the
//! base64 crate's `STANDARD` engine does (padding required, canonical trailing
//! bits; the tests compare the two).

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The engine: standard alphabet, padded.
const STANDARD: base64_simd::Base64 = base64_simd::STANDARD;

/// The bytes as a base64 JSON string. Base64 never needs escaping, so the text
/// goes out as a raw JSON value: serde_json writes it as is instead of checking
/// every character for escapes (a 4 KiB ciphertext is 5.5 KB of text).
pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    let mut text = String::with_capacity(STANDARD.encoded_length(bytes.len()) + 2);
    text.push('"');
    STANDARD.encode_append(bytes, &mut text);
    text.push('"');
    serde_json::value::RawValue::from_string(text)
        .map_err(serde::ser::Error::custom)?
        .serialize(s)
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
    STANDARD
        .decode_to_vec(s.as_bytes())
        .map_err(|_| serde::de::Error::custom("invalid base64"))
}

/// The length of the bytes `text` encodes, or `None` when it is not valid base64
/// (as decoding would find), without decoding it.
pub fn decoded_len(text: &str) -> Option<usize> {
    STANDARD.check(text.as_bytes()).ok()?;
    STANDARD.decoded_length(text.as_bytes()).ok()
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
            let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &bytes);
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

    /// base64-simd accepts exactly the texts the base64 crate's STANDARD engine
    /// accepts, decodes them to the same bytes, and `decoded_len` agrees: every text of
    /// up to 3 characters over the alphabet, padding and a few strangers, and random
    /// longer ones.
    #[test]
    fn decoding_agrees_with_the_base64_crate() {
        use base64::Engine;
        let reference = base64::engine::general_purpose::STANDARD;
        let chars: Vec<u8> = (b'A'..=b'Z')
            .chain(b'a'..=b'z')
            .chain(b'0'..=b'9')
            .chain(*b"+/=-_ .\n")
            .collect();
        let check = |text: &[u8]| {
            let expected = reference.decode(text).ok();
            let text = std::str::from_utf8(text).unwrap();
            let got = serde_json::from_value::<Blob>(serde_json::json!({ "b": text }))
                .ok()
                .map(|b| b.b);
            assert_eq!(got, expected, "{text:?}");
            assert_eq!(
                super::decoded_len(text),
                expected.map(|b| b.len()),
                "{text:?}"
            );
        };
        let mut texts: Vec<Vec<u8>> = vec![vec![]];
        for _ in 0..3 {
            texts = texts
                .iter()
                .flat_map(|t| {
                    chars.iter().map(move |c| {
                        let mut t = t.clone();
                        t.push(*c);
                        t
                    })
                })
                .collect();
            texts.iter().for_each(|t| check(t));
        }
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..50_000 {
            let len = 5 + (next() % 20) as usize;
            // Mostly the alphabet, sometimes padding or another character.
            let text: Vec<u8> = (0..len)
                .map(|_| {
                    let r = next();
                    let pick = if r % 10 < 8 { 64 } else { chars.len() as u64 };
                    chars[((r >> 8) % pick) as usize]
                })
                .collect();
            check(&text);
        }
        for len in [0, 1, 2, 3, 4095, 4096, 4097] {
            let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let text = serde_json::to_string(&Blob { b: bytes.clone() }).unwrap();
            assert_eq!(text, format!("{{\"b\":\"{}\"}}", reference.encode(&bytes)));
        }
    }
}
