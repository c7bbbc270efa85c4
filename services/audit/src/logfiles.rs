//! The CloudTrail file formats: log file and digest file keys, the digest document and
//! the string its signature covers, gzip, and writing files durably.
//!
//! The log dir stands for the S3 bucket: the file of key `K` is `<log_dir>/K`. S3 keeps a
//! digest's signature in object metadata (`x-amz-meta-signature`, `x-amz-meta-signature-algorithm`);
//! here it is the sidecar `<digest>.json.gz.meta`, a JSON object with exactly those two
//! metadata entries: `{"signature": "<hex>", "signature-algorithm": "SHA256withRSA"}`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::macros::format_description;

pub const SIGNATURE_ALGORITHM: &str = "SHA256withRSA";
pub const HASH_ALGORITHM: &str = "SHA-256";
/// Suffix of a digest's metadata sidecar.
pub const META_SUFFIX: &str = ".meta";

fn datetime(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// `2015-08-17T14:01:31Z`, as digest files write times.
pub fn iso_time(ms: i64) -> String {
    datetime(ms)
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
        ))
        .unwrap_or_default()
}

fn ymd(ms: i64) -> String {
    datetime(ms)
        .format(format_description!("[year]/[month]/[day]"))
        .unwrap_or_default()
}

/// Key of a log file: `AWSLogs/<acct>/CloudTrail/<region>/YYYY/MM/DD/<acct>_CloudTrail_<region>_YYYYMMDDTHHmmZ_<unique>.json.gz`.
pub fn log_file_key(account: &str, region: &str, delivered_ms: i64, unique: &str) -> String {
    let stamp = datetime(delivered_ms)
        .format(format_description!("[year][month][day]T[hour][minute]Z"))
        .unwrap_or_default();
    format!(
        "AWSLogs/{account}/CloudTrail/{region}/{}/{account}_CloudTrail_{region}_{stamp}_{unique}.json.gz",
        ymd(delivered_ms)
    )
}

/// Key of a digest file:
/// `AWSLogs/<acct>/CloudTrail-Digest/<region>/YYYY/MM/DD/<acct>_CloudTrail-Digest_<region>_<trail>_<region>_YYYYMMDDTHHmmssZ.json.gz`.
pub fn digest_key(account: &str, region: &str, trail: &str, end_ms: i64) -> String {
    let stamp = datetime(end_ms)
        .format(format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .unwrap_or_default();
    format!(
        "AWSLogs/{account}/CloudTrail-Digest/{region}/{}/{account}_CloudTrail-Digest_{region}_{trail}_{region}_{stamp}.json.gz",
        ymd(end_ms)
    )
}

/// Folder of an account's digests of a region.
pub fn digest_dir(log_dir: &Path, account: &str, region: &str) -> PathBuf {
    log_dir
        .join("AWSLogs")
        .join(account)
        .join("CloudTrail-Digest")
        .join(region)
}

/// One entry of a digest's `logFiles`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DigestLogFile {
    pub s3_bucket: String,
    pub s3_object: String,
    pub hash_value: String,
    pub hash_algorithm: String,
    pub newest_event_time: String,
    pub oldest_event_time: String,
}

/// A digest file, fields in CloudTrail's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Digest {
    pub aws_account_id: String,
    pub digest_start_time: String,
    pub digest_end_time: String,
    #[serde(rename = "digestS3Bucket")]
    pub digest_s3_bucket: String,
    #[serde(rename = "digestS3Object")]
    pub digest_s3_object: String,
    pub digest_public_key_fingerprint: String,
    pub digest_signature_algorithm: String,
    pub newest_event_time: Option<String>,
    pub oldest_event_time: Option<String>,
    #[serde(rename = "previousDigestS3Bucket")]
    pub previous_digest_s3_bucket: Option<String>,
    #[serde(rename = "previousDigestS3Object")]
    pub previous_digest_s3_object: Option<String>,
    pub previous_digest_hash_value: Option<String>,
    pub previous_digest_hash_algorithm: Option<String>,
    pub previous_digest_signature: Option<String>,
    pub log_files: Vec<DigestLogFile>,
}

/// The sidecar standing for the S3 object metadata of a digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestMeta {
    pub signature: String,
    #[serde(rename = "signature-algorithm")]
    pub signature_algorithm: String,
}

/// What the digest signature covers (the aws CLI's `Sha256RSADigestValidator`):
/// `digestEndTime \n digestS3Bucket/digestS3Object \n hex(SHA-256(uncompressed digest)) \n previousDigestSignature`,
/// the last being `null` for the first digest of a chain.
pub fn string_to_sign(
    digest_end_time: &str,
    bucket: &str,
    object: &str,
    content: &[u8],
    previous_signature: Option<&str>,
) -> String {
    format!(
        "{digest_end_time}\n{bucket}/{object}\n{}\n{}",
        sha256_hex(content),
        previous_signature.unwrap_or("null")
    )
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data))
}

/// gzip at the fastest level: delivery compresses every event once, so the level is CPU
/// per call (miniz_oxide, 4.4 MB of Encrypt records: level 6 7.1 µs per event and 4.3 %
/// of the size; level 1 1.2 µs and 5.8 %). Any level is a valid gzip file for readers.
fn gzip_encoder() -> flate2::write::GzEncoder<Vec<u8>> {
    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast())
}

pub fn gzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut enc = gzip_encoder();
    enc.write_all(data)?;
    enc.finish()
}

/// What is written through it is hashed (SHA-256) and gzip-compressed in one pass, so a
/// log file's text is never held whole in memory.
pub(crate) struct HashingGzip {
    hash: aws_lc_rs::digest::Context,
    /// Buffered: flate2 zero-fills its 32 KiB output buffer on every write it gets, which
    /// for the two writes per event of a log file cost more than compressing the event.
    gz: std::io::BufWriter<flate2::write::GzEncoder<Vec<u8>>>,
}

impl HashingGzip {
    pub fn new() -> Self {
        HashingGzip {
            hash: aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256),
            gz: std::io::BufWriter::with_capacity(1 << 17, gzip_encoder()),
        }
    }

    /// The hex SHA-256 of everything written, and the gzip file of it.
    pub fn finish(self) -> std::io::Result<(String, Vec<u8>)> {
        let gz = self.gz.into_inner().map_err(|e| e.into_error())?;
        Ok((hex::encode(self.hash.finish()), gz.finish()?))
    }
}

impl Write for HashingGzip {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.gz.write_all(buf)?;
        self.hash.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.gz.flush()
    }
}

pub fn gunzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(data).read_to_end(&mut out)?;
    Ok(out)
}

/// Write `data` to `path` durably: a temporary file, fsync, rename, fsync of the folder.
pub fn write_durably(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| std::io::Error::other("file without a folder"))?;
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_cloudtrail_names() {
        // 2015-08-17T15:01:31Z
        let t = 1_439_823_691_000;
        assert_eq!(
            digest_key("111122223333", "us-east-2", "trail", t),
            "AWSLogs/111122223333/CloudTrail-Digest/us-east-2/2015/08/17/111122223333_CloudTrail-Digest_us-east-2_trail_us-east-2_20150817T150131Z.json.gz"
        );
        assert_eq!(
            log_file_key("111122223333", "us-east-2", t, "9nYN7gp2eWAJHIfT"),
            "AWSLogs/111122223333/CloudTrail/us-east-2/2015/08/17/111122223333_CloudTrail_us-east-2_20150817T1501Z_9nYN7gp2eWAJHIfT.json.gz"
        );
        assert_eq!(iso_time(t), "2015-08-17T15:01:31Z");
        // The CLI reads the digest's time as key[-24:-8].
        let k = digest_key("111122223333", "us-east-2", "trail", t);
        assert_eq!(&k[k.len() - 24..k.len() - 8], "20150817T150131Z");
    }

    #[test]
    fn digest_fields_in_cloudtrail_order_and_nulls() {
        let d = Digest {
            aws_account_id: "111122223333".into(),
            digest_start_time: "a".into(),
            digest_end_time: "b".into(),
            digest_s3_bucket: "bk".into(),
            digest_s3_object: "o".into(),
            digest_public_key_fingerprint: "f".into(),
            digest_signature_algorithm: SIGNATURE_ALGORITHM.into(),
            newest_event_time: None,
            oldest_event_time: None,
            previous_digest_s3_bucket: None,
            previous_digest_s3_object: None,
            previous_digest_hash_value: None,
            previous_digest_hash_algorithm: None,
            previous_digest_signature: None,
            log_files: vec![],
        };
        let s = serde_json::to_string(&d).unwrap();
        assert_eq!(
            s,
            r#"{"awsAccountId":"111122223333","digestStartTime":"a","digestEndTime":"b","digestS3Bucket":"bk","digestS3Object":"o","digestPublicKeyFingerprint":"f","digestSignatureAlgorithm":"SHA256withRSA","newestEventTime":null,"oldestEventTime":null,"previousDigestS3Bucket":null,"previousDigestS3Object":null,"previousDigestHashValue":null,"previousDigestHashAlgorithm":null,"previousDigestSignature":null,"logFiles":[]}"#
        );
        assert_eq!(
            string_to_sign("b", "bk", "o", b"x", None),
            format!("b\nbk/o\n{}\nnull", sha256_hex(b"x"))
        );
    }

    #[test]
    fn gzip_round_trip() {
        let z = gzip(b"{\"Records\":[]}").unwrap();
        assert_eq!(gunzip(&z).unwrap(), b"{\"Records\":[]}");
    }
}
