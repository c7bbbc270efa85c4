//! Request quotas: AWS KMS's per-account, per-Region requests-per-second
//! quotas, enforced before a KMS call reaches the keystore.
//!
//! Source: "Request quotas" in the AWS KMS Developer Guide
//! (<https://docs.aws.amazon.com/kms/latest/developerguide/requests-per-second.html>).
//! Cryptographic operations share one quota per key type (symmetric, RSA,
//! ECC, ML-DSA); GenerateDataKeyPair has one per key pair spec; every
//! management operation has its own. Each quota is a token bucket per
//! (caller account, Region, quota) refilled at the quota's rate, holding at
//! most one second's worth (at least one request). A request over its quota
//! gets `ThrottlingException` and nothing else happens: no keystore call, no
//! CloudTrail record.
//!
//! The key type of a cryptographic request is read from the request itself
//! (`EncryptionAlgorithm`, `SigningAlgorithm`, `KeyPairSpec`): the gateway does
//! not know the key, and asking the keystore would add a hop to every call. An
//! asymmetric key needs its algorithm named (KMS requires it), so the request
//! tells the key type as well as the key would.
//!
//! Buckets are per account, not per endpoint: requests through the public
//! endpoint and through every VPC endpoint draw from the same buckets, as
//! AWS's quotas are per account and Region whatever the endpoint.

use kms_proto::error::AwsError;
use serde::Deserialize;
use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// AWS's message for a throttled KMS request ("Throttling AWS KMS requests").
pub const THROTTLED_MESSAGE: &str =
    "You have exceeded the rate at which you may call KMS. Reduce the frequency of your calls.";

/// Where a quota's default comes from.
#[derive(Debug, Clone, Copy)]
enum Default {
    /// The same in every Region (requests per second).
    Fixed(f64),
    /// Cryptographic operations (symmetric): depends on the Region.
    SymmetricByRegion,
}

/// Every quota: its name (the `--quota` class) and AWS's default. Management
/// operations are named after the operation.
const QUOTAS: &[(&str, Default)] = &[
    ("symmetric", Default::SymmetricByRegion),
    ("rsa", Default::Fixed(1000.0)),
    ("ecc", Default::Fixed(1000.0)),
    ("ml-dsa", Default::Fixed(1000.0)),
    ("GenerateDataKeyPair/ECC_NIST_P256", Default::Fixed(100.0)),
    ("GenerateDataKeyPair/ECC_NIST_P384", Default::Fixed(100.0)),
    ("GenerateDataKeyPair/ECC_NIST_P521", Default::Fixed(100.0)),
    ("GenerateDataKeyPair/ECC_SECG_P256K1", Default::Fixed(100.0)),
    (
        "GenerateDataKeyPair/ECC_NIST_EDWARDS25519",
        Default::Fixed(100.0),
    ),
    ("GenerateDataKeyPair/RSA_2048", Default::Fixed(20.0)),
    ("GenerateDataKeyPair/RSA_3072", Default::Fixed(4.0)),
    ("GenerateDataKeyPair/RSA_4096", Default::Fixed(1.0)),
    ("GenerateDataKeyPair/SM2", Default::Fixed(25.0)),
    ("CancelKeyDeletion", Default::Fixed(5.0)),
    ("ConnectCustomKeyStore", Default::Fixed(5.0)),
    ("CreateAlias", Default::Fixed(5.0)),
    ("CreateCustomKeyStore", Default::Fixed(5.0)),
    ("CreateGrant", Default::Fixed(50.0)),
    ("CreateKey", Default::Fixed(5.0)),
    ("DeleteAlias", Default::Fixed(15.0)),
    ("DeleteCustomKeyStore", Default::Fixed(5.0)),
    ("DeleteImportedKeyMaterial", Default::Fixed(15.0)),
    ("DescribeCustomKeyStores", Default::Fixed(5.0)),
    ("DescribeKey", Default::Fixed(2000.0)),
    ("DisableKey", Default::Fixed(5.0)),
    ("DisableKeyRotation", Default::Fixed(5.0)),
    ("DisconnectCustomKeyStore", Default::Fixed(5.0)),
    ("EnableKey", Default::Fixed(5.0)),
    ("EnableKeyRotation", Default::Fixed(15.0)),
    ("GetKeyLastUsage", Default::Fixed(5.0)),
    ("GetKeyPolicy", Default::Fixed(1000.0)),
    ("GetKeyRotationStatus", Default::Fixed(1000.0)),
    ("GetParametersForImport", Default::Fixed(1.0)),
    ("GetPublicKey", Default::Fixed(2000.0)),
    ("ImportKeyMaterial", Default::Fixed(15.0)),
    ("ListAliases", Default::Fixed(500.0)),
    ("ListGrants", Default::Fixed(100.0)),
    ("ListKeyPolicies", Default::Fixed(100.0)),
    ("ListKeys", Default::Fixed(500.0)),
    ("ListKeyRotations", Default::Fixed(100.0)),
    ("ListResourceTags", Default::Fixed(2000.0)),
    ("ListRetirableGrants", Default::Fixed(100.0)),
    ("PutKeyPolicy", Default::Fixed(15.0)),
    ("ReplicateKey", Default::Fixed(5.0)),
    ("RetireGrant", Default::Fixed(50.0)),
    ("RevokeGrant", Default::Fixed(50.0)),
    ("RotateKeyOnDemand", Default::Fixed(5.0)),
    ("ScheduleKeyDeletion", Default::Fixed(15.0)),
    ("TagResource", Default::Fixed(10.0)),
    ("UntagResource", Default::Fixed(5.0)),
    ("UpdateAlias", Default::Fixed(5.0)),
    ("UpdateCustomKeyStore", Default::Fixed(5.0)),
    ("UpdateKeyDescription", Default::Fixed(5.0)),
    ("UpdatePrimaryRegion", Default::Fixed(5.0)),
];

const SYMMETRIC: usize = 0;
const RSA: usize = 1;
const ECC: usize = 2;
const ML_DSA: usize = 3;

/// Cryptographic operations (symmetric) request rate in a Region.
fn symmetric_default(region: &str) -> f64 {
    match region {
        "us-east-1" | "us-west-2" | "eu-west-1" => 100_000.0,
        "us-east-2" | "ap-southeast-1" | "ap-southeast-2" | "ap-northeast-1" | "eu-central-1"
        | "eu-west-2" => 20_000.0,
        _ => 10_000.0,
    }
}

fn quota_index(name: &str) -> Option<usize> {
    QUOTAS
        .iter()
        .position(|(n, _)| n.eq_ignore_ascii_case(name))
}

/// One `--quota <class>=<requests per second>` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct QuotaOverride {
    /// The class's canonical name (see [`class_names`]).
    pub class: String,
    /// Requests per second; 0 lifts the quota.
    pub per_second: f64,
}

/// Every class a `--quota` entry may name.
pub fn class_names() -> impl Iterator<Item = &'static str> {
    QUOTAS.iter().map(|(n, _)| *n)
}

/// Parse `<class>=<requests per second>` (class names are case-insensitive).
pub fn parse_override(s: &str) -> Result<QuotaOverride, String> {
    let (class, n) = s
        .split_once('=')
        .ok_or_else(|| format!("expected <class>=<requests per second>, got '{s}'"))?;
    let i = quota_index(class.trim()).ok_or_else(|| {
        format!(
            "unknown quota class '{}' (one of: {})",
            class.trim(),
            class_names().collect::<Vec<_>>().join(", ")
        )
    })?;
    let per_second: f64 = n
        .trim()
        .parse()
        .map_err(|_| format!("'{}' is not a number of requests per second", n.trim()))?;
    if !per_second.is_finite() || per_second < 0.0 {
        return Err(format!(
            "a quota must be a finite number >= 0, got {per_second}"
        ));
    }
    Ok(QuotaOverride {
        class: QUOTAS[i].0.to_string(),
        per_second,
    })
}

/// The fields of a KMS request that tell its key type.
#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct Hints<'a> {
    #[serde(borrow)]
    encryption_algorithm: Option<Cow<'a, str>>,
    #[serde(borrow)]
    source_encryption_algorithm: Option<Cow<'a, str>>,
    #[serde(borrow)]
    destination_encryption_algorithm: Option<Cow<'a, str>>,
    #[serde(borrow)]
    signing_algorithm: Option<Cow<'a, str>>,
    #[serde(borrow)]
    key_pair_spec: Option<Cow<'a, str>>,
}

fn hints(body: &[u8]) -> Hints<'_> {
    serde_json::from_slice(body).unwrap_or_default()
}

fn encryption_class(algorithm: Option<&str>) -> usize {
    match algorithm {
        Some(a) if a.starts_with("RSAES_") => RSA,
        Some("SM2PKE") => ECC,
        _ => SYMMETRIC,
    }
}

fn signing_class(algorithm: Option<&str>) -> usize {
    match algorithm {
        Some(a) if a.starts_with("ECDSA_") || a.starts_with("ED25519") || a == "SM2DSA" => ECC,
        Some(a) if a.starts_with("ML_DSA") => ML_DSA,
        _ => RSA,
    }
}

/// The quotas a request draws one token from: one, or two for a ReEncrypt
/// between key types; `None` for a name no quota covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Charge([Option<usize>; 2]);

impl Charge {
    fn one(i: usize) -> Self {
        Charge([Some(i), None])
    }

    fn classes(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().flatten().copied()
    }

    /// The quota names charged (tests, logs).
    pub fn names(&self) -> Vec<&'static str> {
        self.classes().map(|i| QUOTAS[i].0).collect()
    }
}

/// Which quotas a KMS operation with this body draws from. Unknown names
/// (they answer UnknownOperationException) draw from none.
pub fn classify(op: &str, body: &[u8]) -> Option<Charge> {
    let charge = match op {
        "GenerateDataKey"
        | "GenerateDataKeyWithoutPlaintext"
        | "GenerateRandom"
        | "GenerateMac"
        | "VerifyMac" => Charge::one(SYMMETRIC),
        "Encrypt" | "Decrypt" => Charge::one(encryption_class(
            hints(body).encryption_algorithm.as_deref(),
        )),
        "ReEncrypt" => {
            let h = hints(body);
            let source = encryption_class(h.source_encryption_algorithm.as_deref());
            let destination = encryption_class(h.destination_encryption_algorithm.as_deref());
            Charge([Some(source), (destination != source).then_some(destination)])
        }
        "Sign" | "Verify" => Charge::one(signing_class(hints(body).signing_algorithm.as_deref())),
        "DeriveSharedSecret" => Charge::one(ECC),
        "GenerateDataKeyPair" | "GenerateDataKeyPairWithoutPlaintext" => {
            let h = hints(body);
            let spec = h.key_pair_spec.as_deref().unwrap_or_default();
            // An invalid spec fails validation next; it draws from nothing.
            return quota_index(&format!("GenerateDataKeyPair/{spec}")).map(Charge::one);
        }
        other => return quota_index(other).map(Charge::one),
    };
    Some(charge)
}

/// A token bucket; `rate == None`: no quota.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    rate: Option<f64>,
    tokens: f64,
    /// When `tokens` was last brought up to date (the throttle's clock).
    at: Duration,
}

impl Bucket {
    fn new(rate: Option<f64>, now: Duration) -> Self {
        Bucket {
            rate,
            tokens: rate.map_or(0.0, burst),
            at: now,
        }
    }

    /// Refill up to `now`; true when a token is available.
    fn refill(&mut self, now: Duration) -> bool {
        let Some(rate) = self.rate else {
            return true;
        };
        let elapsed = now.saturating_sub(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(burst(rate));
        self.at = self.at.max(now);
        self.tokens >= 1.0
    }

    fn take(&mut self) {
        if self.rate.is_some() {
            self.tokens -= 1.0;
        }
    }
}

/// One second's quota, and at least one request (quotas below 1/s, such as
/// "1 in each 4-second interval", still let one request through).
fn burst(rate: f64) -> f64 {
    rate.max(1.0)
}

/// An account's buckets, by Region, one per quota (index of `QUOTAS`).
type AccountBuckets = HashMap<String, Box<[Bucket]>>;

const SHARDS: usize = 16;

/// The quotas and every account's buckets. Cheap on the hot path: one shard
/// lock (by account), two map lookups by `&str`, no allocation once an
/// account's buckets exist in that Region.
pub struct Throttle {
    /// Per quota: `Some(rate)` fixed, `None` when the quota is lifted;
    /// symmetric's default depends on the Region (`symmetric_scale`).
    rates: Vec<Option<f64>>,
    /// `Some(scale)` when the symmetric quota is AWS's regional default scaled.
    symmetric_scale: Option<f64>,
    enabled: bool,
    shards: Box<[Mutex<HashMap<String, AccountBuckets>>]>,
    hasher: RandomState,
    epoch: Instant,
}

impl std::fmt::Debug for Throttle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Throttle")
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

impl Throttle {
    /// AWS's default quotas times `scale` (0: no default quota), with
    /// `overrides` (absolute requests per second; 0 lifts a quota) on top.
    pub fn new(scale: f64, overrides: &[QuotaOverride]) -> Result<Self, String> {
        if !scale.is_finite() || scale < 0.0 {
            return Err(format!(
                "--quota-scale must be a finite number >= 0, got {scale}"
            ));
        }
        let scaled = |rate: f64| (scale > 0.0).then_some(rate * scale);
        let mut rates: Vec<Option<f64>> = QUOTAS
            .iter()
            .map(|(_, d)| match d {
                Default::Fixed(rate) => scaled(*rate),
                Default::SymmetricByRegion => None,
            })
            .collect();
        let mut symmetric_scale = (scale > 0.0).then_some(scale);
        for o in overrides {
            let i = quota_index(&o.class).ok_or_else(|| format!("unknown quota {}", o.class))?;
            if !o.per_second.is_finite() || o.per_second < 0.0 {
                return Err(format!("invalid quota {}={}", o.class, o.per_second));
            }
            rates[i] = (o.per_second > 0.0).then_some(o.per_second);
            if i == SYMMETRIC {
                symmetric_scale = None;
            }
        }
        let enabled = symmetric_scale.is_some() || rates.iter().any(Option::is_some);
        Ok(Throttle {
            rates,
            symmetric_scale,
            enabled,
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
            epoch: Instant::now(),
        })
    }

    /// No quota at all (throttling off).
    pub fn disabled() -> Self {
        Self::new(0.0, &[]).expect("scale 0 is valid")
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// The rate of quota `i` in `region` (`None`: no quota).
    fn rate(&self, i: usize, region: &str) -> Option<f64> {
        match (i, self.symmetric_scale) {
            (SYMMETRIC, Some(scale)) => Some(symmetric_default(region) * scale),
            _ => self.rates[i],
        }
    }

    /// Admit or throttle one KMS request of `account` in `region`.
    pub fn check(
        &self,
        account: &str,
        region: &str,
        op: &str,
        body: &[u8],
    ) -> Result<(), AwsError> {
        if !self.enabled {
            return Ok(());
        }
        let Some(charge) = classify(op, body) else {
            return Ok(());
        };
        if self.admit_at(account, region, charge, self.epoch.elapsed()) {
            Ok(())
        } else {
            tracing::debug!(account, region, op, "request throttled");
            Err(AwsError::new("ThrottlingException", THROTTLED_MESSAGE))
        }
    }

    /// Take one token from every bucket of `charge` at time `now`, or from
    /// none when any of them is empty.
    fn admit_at(&self, account: &str, region: &str, charge: Charge, now: Duration) -> bool {
        let shard = &self.shards[(self.hasher.hash_one(account) as usize) % SHARDS];
        let mut accounts = shard.lock().unwrap_or_else(|e| e.into_inner());
        let regions = match accounts.get_mut(account) {
            Some(r) => r,
            None => accounts.entry(account.to_string()).or_default(),
        };
        let buckets = match regions.get_mut(region) {
            Some(b) => b,
            None => regions.entry(region.to_string()).or_insert_with(|| {
                (0..QUOTAS.len())
                    .map(|i| Bucket::new(self.rate(i, region), now))
                    .collect()
            }),
        };
        let mut admitted = true;
        for i in charge.classes() {
            admitted &= buckets[i].refill(now);
        }
        if admitted {
            for i in charge.classes() {
                buckets[i].take();
            }
        }
        admitted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "111122223333";
    const B: &str = "444455556666";

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn only(class: &str, n: f64) -> Throttle {
        Throttle::new(0.0, &[parse_override(&format!("{class}={n}")).unwrap()]).unwrap()
    }

    fn sym() -> Charge {
        classify("Encrypt", b"{}").unwrap()
    }

    /// How many of `n` requests at time `now` are admitted.
    fn admitted(t: &Throttle, account: &str, charge: Charge, n: usize, now: Duration) -> usize {
        (0..n)
            .filter(|_| t.admit_at(account, "us-east-1", charge, now))
            .count()
    }

    #[test]
    fn burst_is_one_seconds_quota_then_refills_at_the_rate() {
        let t = only("symmetric", 20.0);
        assert_eq!(admitted(&t, A, sym(), 60, ms(0)), 20);
        // 100 ms later: 2 tokens.
        assert_eq!(admitted(&t, A, sym(), 10, ms(100)), 2);
        // 50 ms: 1 token.
        assert_eq!(admitted(&t, A, sym(), 10, ms(150)), 1);
        // A long pause refills to the burst, not beyond.
        assert_eq!(admitted(&t, A, sym(), 100, ms(10_150)), 20);
    }

    #[test]
    fn fractional_refill_accumulates() {
        let t = only("symmetric", 10.0);
        assert_eq!(admitted(&t, A, sym(), 10, ms(0)), 10);
        // 10/s: a token every 100 ms; 40 ms steps add up.
        let mut got = 0;
        for step in 1..=10 {
            got += admitted(&t, A, sym(), 1, ms(40 * step));
        }
        assert_eq!(got, 4, "400 ms at 10/s is 4 tokens");
    }

    #[test]
    fn sub_one_rates_admit_one_request_per_interval() {
        // GetParametersForImport at 0.25/s: 1 in each 4-second interval.
        let t = only("GetParametersForImport", 0.25);
        let c = classify("GetParametersForImport", b"{}").unwrap();
        assert_eq!(admitted(&t, A, c, 5, ms(0)), 1);
        assert_eq!(admitted(&t, A, c, 5, ms(3_900)), 0);
        assert_eq!(admitted(&t, A, c, 5, ms(4_000)), 1);
    }

    #[test]
    fn a_clock_going_backwards_does_not_mint_tokens() {
        let t = only("symmetric", 5.0);
        assert_eq!(admitted(&t, A, sym(), 10, ms(1_000)), 5);
        assert_eq!(admitted(&t, A, sym(), 10, ms(500)), 0);
        assert_eq!(admitted(&t, A, sym(), 10, ms(1_200)), 1);
    }

    #[test]
    fn accounts_regions_and_quotas_are_independent() {
        let t = Throttle::new(
            0.0,
            &[
                parse_override("symmetric=3").unwrap(),
                parse_override("CreateKey=2").unwrap(),
            ],
        )
        .unwrap();
        let create = classify("CreateKey", b"{}").unwrap();
        assert_eq!(admitted(&t, A, sym(), 10, ms(0)), 3);
        assert_eq!(admitted(&t, B, sym(), 10, ms(0)), 3, "another account");
        assert_eq!(admitted(&t, A, create, 10, ms(0)), 2, "another quota");
        assert!(t.admit_at(A, "eu-west-1", sym(), ms(0)), "another Region");
        // A quota not configured is unlimited with scale 0.
        let describe = classify("DescribeKey", b"{}").unwrap();
        assert_eq!(admitted(&t, A, describe, 1000, ms(0)), 1000);
    }

    #[test]
    fn re_encrypt_between_key_types_needs_both_and_takes_both_or_neither() {
        let t = Throttle::new(
            0.0,
            &[
                parse_override("symmetric=1").unwrap(),
                parse_override("rsa=2").unwrap(),
            ],
        )
        .unwrap();
        let both = classify(
            "ReEncrypt",
            br#"{"SourceEncryptionAlgorithm":"RSAES_OAEP_SHA_256"}"#,
        )
        .unwrap();
        assert_eq!(both.names(), ["rsa", "symmetric"]);
        assert!(t.admit_at(A, "us-east-1", both, ms(0)));
        // symmetric is empty now: the next one takes nothing from rsa.
        assert!(!t.admit_at(A, "us-east-1", both, ms(0)));
        let rsa = classify("Decrypt", br#"{"EncryptionAlgorithm":"RSAES_OAEP_SHA_1"}"#).unwrap();
        assert!(t.admit_at(A, "us-east-1", rsa, ms(0)), "rsa kept its token");
        assert!(!t.admit_at(A, "us-east-1", rsa, ms(0)));
    }

    #[test]
    fn classification_follows_the_request() {
        let names = |op: &str, body: &str| classify(op, body.as_bytes()).unwrap().names();
        // (operation, body, the one quota class it counts against)
        let cases = [
            (
                "Encrypt",
                r#"{"KeyId":"k","Plaintext":"eA=="}"#,
                "symmetric",
            ),
            (
                "Encrypt",
                r#"{"EncryptionAlgorithm":"SYMMETRIC_DEFAULT"}"#,
                "symmetric",
            ),
            (
                "Encrypt",
                r#"{"EncryptionAlgorithm":"RSAES_OAEP_SHA_256"}"#,
                "rsa",
            ),
            ("Decrypt", r#"{"EncryptionAlgorithm":"SM2PKE"}"#, "ecc"),
            (
                "ReEncrypt",
                r#"{"DestinationEncryptionAlgorithm":"SYMMETRIC_DEFAULT"}"#,
                "symmetric",
            ),
            (
                "Sign",
                r#"{"SigningAlgorithm":"RSASSA_PSS_SHA_256"}"#,
                "rsa",
            ),
            ("Verify", r#"{"SigningAlgorithm":"ECDSA_SHA_384"}"#, "ecc"),
            (
                "Sign",
                r#"{"SigningAlgorithm":"ML_DSA_SHAKE_256"}"#,
                "ml-dsa",
            ),
            ("DeriveSharedSecret", "{}", "ecc"),
            ("GenerateDataKey", "{}", "symmetric"),
            ("GenerateRandom", "{}", "symmetric"),
            ("GenerateMac", "{}", "symmetric"),
            ("VerifyMac", "{}", "symmetric"),
            (
                "GenerateDataKeyPair",
                r#"{"KeyPairSpec":"RSA_4096"}"#,
                "GenerateDataKeyPair/RSA_4096",
            ),
            (
                "GenerateDataKeyPairWithoutPlaintext",
                r#"{"KeyPairSpec":"ECC_NIST_P256"}"#,
                "GenerateDataKeyPair/ECC_NIST_P256",
            ),
            ("CreateKey", "{}", "CreateKey"),
            // Bodies that are not JSON objects still classify (validation rejects them later).
            ("Encrypt", "not json", "symmetric"),
            // Escaped strings are read as their value.
            (
                "Encrypt",
                r#"{"EncryptionAlgorithm":"RSAES\u005fOAEP_SHA_1"}"#,
                "rsa",
            ),
        ];
        for (op, body, class) in cases {
            assert_eq!(names(op, body), [class], "{op} {body}");
        }
        assert_eq!(classify("NoSuchOperation", b"{}"), None);
        assert_eq!(
            classify("GenerateDataKeyPair", br#"{"KeyPairSpec":"nope"}"#),
            None
        );
    }

    #[test]
    fn every_operation_of_the_model_has_a_quota() {
        // AWS's table names every operation of the model; a new one fails here.
        let model: serde_json::Value =
            serde_json::from_str(include_str!("../models/kms.json")).unwrap();
        let missing: Vec<_> = model["operations"]
            .as_object()
            .unwrap()
            .keys()
            .filter(|op| {
                let body = br#"{"KeyPairSpec":"RSA_2048"}"#;
                classify(op, body).is_none()
            })
            .collect();
        assert!(
            missing.is_empty(),
            "operations without a quota: {missing:?}"
        );
    }

    #[test]
    fn defaults_are_aws_defaults_scaled() {
        let t = Throttle::new(1.0, &[]).unwrap();
        assert!(t.is_enabled());
        assert_eq!(t.rate(SYMMETRIC, "us-east-1"), Some(100_000.0));
        assert_eq!(t.rate(SYMMETRIC, "eu-west-2"), Some(20_000.0));
        assert_eq!(t.rate(SYMMETRIC, "ca-central-1"), Some(10_000.0));
        let create = quota_index("CreateKey").unwrap();
        assert_eq!(t.rate(create, "us-east-1"), Some(5.0));
        let half = Throttle::new(0.5, &[parse_override("createkey=50").unwrap()]).unwrap();
        assert_eq!(half.rate(SYMMETRIC, "us-east-1"), Some(50_000.0));
        assert_eq!(
            half.rate(create, "us-east-1"),
            Some(50.0),
            "overrides are absolute"
        );
        let lifted = Throttle::new(1.0, &[parse_override("CreateKey=0").unwrap()]).unwrap();
        assert_eq!(lifted.rate(create, "us-east-1"), None);
        assert!(!Throttle::new(0.0, &[]).unwrap().is_enabled());
        assert!(!Throttle::disabled().is_enabled());
        assert!(Throttle::new(-1.0, &[]).is_err());
        assert!(Throttle::new(f64::NAN, &[]).is_err());
    }

    #[test]
    fn overrides_parse() {
        assert_eq!(
            parse_override("Symmetric = 20").unwrap(),
            QuotaOverride {
                class: "symmetric".into(),
                per_second: 20.0
            }
        );
        assert_eq!(
            parse_override("generatedatakeypair/rsa_2048=0.5")
                .unwrap()
                .class,
            "GenerateDataKeyPair/RSA_2048"
        );
        assert!(parse_override("symmetric").is_err());
        assert!(parse_override("bogus=1").is_err());
        assert!(parse_override("symmetric=-1").is_err());
        assert!(parse_override("symmetric=inf").is_err());
        assert!(parse_override("symmetric=x").is_err());
    }

    #[test]
    fn the_hot_path_admits_and_throttles_with_aws_error() {
        let t = only("symmetric", 2.0);
        let body = br#"{"KeyId":"alias/x","Plaintext":"eA=="}"#;
        assert!(t.check(A, "us-east-1", "Encrypt", body).is_ok());
        assert!(t.check(A, "us-east-1", "Encrypt", body).is_ok());
        let e = t.check(A, "us-east-1", "Encrypt", body).unwrap_err();
        assert_eq!(e.code, "ThrottlingException");
        assert_eq!(e.message, THROTTLED_MESSAGE);
        assert_eq!(
            crate::http::status_for(&e.code),
            http::StatusCode::BAD_REQUEST
        );
        assert!(t.check(B, "us-east-1", "Encrypt", body).is_ok());
        assert!(t.check(A, "us-east-1", "NoSuchOperation", body).is_ok());
    }
}
