//! AWS Signature Version 4 verification (the "Create a signed AWS API request" steps 4–6 of
//! the AWS IAM user guide): the gateway sends the string to sign it built from the request;
//! authz checks the date, finds the secret, derives the signing key and compares HMACs.
//!
//! Checks run in the order AWS's front end runs them: request date format and clock skew,
//! credential scope date, access key, signature, then the security token.
//!
//! Two in-memory caches keep the hot path free of database reads and key derivations:
//! access keys by id, and per access key the derived signing keys by (date, region, service).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use aws_lc_rs::hmac;
use time::OffsetDateTime;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use zeroize::Zeroizing;

use crate::accounts::{AccessKey, KeyStatus};
use crate::clock::Clock;
use crate::error::{Error, SIGNATURE_MISMATCH};
use crate::store::Store;

const AMZ_DATE: &[BorrowedFormatItem<'static>] =
    format_description!("[year][month][day]T[hour][minute][second]Z");

/// Signing keys kept per access key before the map is reset (dates roll over daily).
const MAX_SIGNING_KEYS_PER_ACCESS_KEY: usize = 64;

/// What the gateway extracted from a signed request.
#[derive(Debug, Clone)]
pub struct SignedRequest {
    pub access_key_id: String,
    pub scope_date: String,
    pub scope_region: String,
    pub scope_service: String,
    pub amz_date: String,
    pub string_to_sign: String,
    /// Hex, as in the Authorization header. Not a secret, but never logged either.
    pub signature: String,
    pub security_token: String,
}

/// The raw SigV4 signing key: HMAC chain "AWS4"+secret, date, region, service, "aws4_request".
pub fn signing_key_bytes(
    secret: &str,
    date: &str,
    region: &str,
    service: &str,
) -> Zeroizing<[u8; 32]> {
    let mut seed = Zeroizing::new(Vec::with_capacity(4 + secret.len()));
    seed.extend_from_slice(b"AWS4");
    seed.extend_from_slice(secret.as_bytes());
    let mut k = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &seed), date.as_bytes());
    for part in [region.as_bytes(), service.as_bytes(), b"aws4_request"] {
        k = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, k.as_ref()), part);
    }
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(k.as_ref());
    out
}

pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> hmac::Key {
    hmac::Key::new(
        hmac::HMAC_SHA256,
        &signing_key_bytes(secret, date, region, service)[..],
    )
}

/// Parse `yyyymmddThhmmssZ`.
pub fn parse_amz_date(s: &str) -> Result<OffsetDateTime, Error> {
    let bad = || {
        Error::IncompleteSignature(format!(
            "Date must be in ISO-8601 'basic format'. Got '{s}'. See http://en.wikipedia.org/wiki/ISO_8601"
        ))
    };
    if s.len() != 16 || !s.is_ascii() {
        return Err(bad());
    }
    time::PrimitiveDateTime::parse(s, AMZ_DATE)
        .map(|t| t.assume_utc())
        .map_err(|_| bad())
}

fn fmt_amz(t: OffsetDateTime) -> String {
    t.format(AMZ_DATE)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

fn fmt_skew(skew: Duration) -> String {
    let secs = skew.as_secs();
    if secs.is_multiple_of(60) {
        format!("{} min.", secs / 60)
    } else {
        format!("{secs} sec.")
    }
}

/// AWS refuses a request whose date is more than `skew` away from its clock.
pub fn check_clock(
    request: OffsetDateTime,
    amz_date: &str,
    now: OffsetDateTime,
    skew: Duration,
) -> Result<(), Error> {
    let earliest = now - skew;
    let latest = now + skew;
    if request < earliest {
        return Err(Error::InvalidSignature(format!(
            "Signature expired: {amz_date} is now earlier than {} ({} - {})",
            fmt_amz(earliest),
            fmt_amz(now),
            fmt_skew(skew)
        )));
    }
    if request > latest {
        return Err(Error::InvalidSignature(format!(
            "Signature not yet current: {amz_date} is still later than {} ({} + {})",
            fmt_amz(latest),
            fmt_amz(now),
            fmt_skew(skew)
        )));
    }
    Ok(())
}

struct Scope {
    date: String,
    region: String,
    service: String,
}

impl Scope {
    fn is(&self, req: &SignedRequest) -> bool {
        self.date == req.scope_date
            && self.region == req.scope_region
            && self.service == req.scope_service
    }
}

/// A cached access key and the signing keys derived from its secret.
struct CachedKey {
    key: AccessKey,
    /// Searched in order: a key signs with one or two scopes a day (the date rolls over),
    /// so a short scan by borrowed strings beats building an owned map key per request.
    signing_keys: Mutex<Vec<(Scope, hmac::Key)>>,
}

impl CachedKey {
    fn new(key: AccessKey) -> Self {
        Self {
            key,
            signing_keys: Mutex::new(Vec::new()),
        }
    }

    fn signing_key(&self, req: &SignedRequest) -> hmac::Key {
        let mut keys = self.signing_keys.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, k)) = keys.iter().find(|(scope, _)| scope.is(req)) {
            return k.clone();
        }
        let k = signing_key(
            self.key.secret.expose(),
            &req.scope_date,
            &req.scope_region,
            &req.scope_service,
        );
        if keys.len() >= MAX_SIGNING_KEYS_PER_ACCESS_KEY {
            keys.clear();
        }
        let scope = Scope {
            date: req.scope_date.clone(),
            region: req.scope_region.clone(),
            service: req.scope_service.clone(),
        };
        keys.push((scope, k.clone()));
        k
    }
}

/// Verifies SigV4 signatures against the stored access keys.
pub struct Authenticator<S> {
    store: Arc<S>,
    clock: Arc<dyn Clock>,
    max_skew: Duration,
    keys: RwLock<HashMap<String, Arc<CachedKey>>>,
}

impl<S: Store> Authenticator<S> {
    pub fn new(store: Arc<S>, clock: Arc<dyn Clock>, max_skew: Duration) -> Self {
        Self {
            store,
            clock,
            max_skew,
            keys: RwLock::new(HashMap::new()),
        }
    }

    /// Put (or replace) a key in the cache, e.g. right after creating it.
    pub fn remember(&self, key: AccessKey) {
        let id = key.access_key_id.clone();
        let cached = Arc::new(CachedKey::new(key));
        self.keys
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, cached);
    }

    /// Drop a key from the cache (deleted keys).
    pub fn forget(&self, access_key_id: &str) {
        self.keys
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(access_key_id);
    }

    async fn lookup(&self, access_key_id: &str) -> Result<Option<Arc<CachedKey>>, Error> {
        if let Some(k) = self
            .keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(access_key_id)
        {
            return Ok(Some(k.clone()));
        }
        // Unknown ids are not cached: a key created by another authz instance sharing the
        // database becomes usable at once, at the cost of one read per unknown-id request.
        let Some(key) = self.store.access_key(access_key_id).await? else {
            return Ok(None);
        };
        let cached = Arc::new(CachedKey::new(key));
        Ok(Some(
            self.keys
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .entry(access_key_id.to_owned())
                .or_insert(cached)
                .clone(),
        ))
    }

    /// Check a signed request; on success, (a copy of) the access key that signed it.
    pub async fn authenticate(&self, req: &SignedRequest) -> Result<AccessKey, Error> {
        Ok(self.verify(req).await?.key().clone())
    }

    /// [`Authenticator::authenticate`] without copying the key out of the cache (the
    /// `Authenticate` RPC reads a few of its fields).
    pub async fn verify(&self, req: &SignedRequest) -> Result<Verified, Error> {
        let request_time = parse_amz_date(&req.amz_date)?;
        check_clock(request_time, &req.amz_date, self.clock.now(), self.max_skew)?;
        if req.scope_date != req.amz_date[..8] {
            return Err(Error::InvalidSignature(format!(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}', from '{}'.",
                req.scope_date,
                &req.amz_date[..8],
                req.amz_date
            )));
        }
        let Some(cached) = self.lookup(&req.access_key_id).await? else {
            return Err(Error::UnrecognizedClient);
        };
        if cached.key.status != KeyStatus::Active {
            return Err(Error::UnrecognizedClient);
        }
        let signing_key = cached.signing_key(req);
        // A SHA-256 HMAC is 32 bytes: anything else (or non-hex) cannot match either.
        let mut provided = [0u8; 32];
        hex::decode_to_slice(&req.signature, &mut provided)
            .map_err(|_| Error::InvalidSignature(SIGNATURE_MISMATCH.into()))?;
        // Constant-time comparison of the expected and provided tags.
        hmac::verify(&signing_key, req.string_to_sign.as_bytes(), &provided)
            .map_err(|_| Error::InvalidSignature(SIGNATURE_MISMATCH.into()))?;
        match &cached.key.session {
            // Long-term keys take no session token.
            None if !req.security_token.is_empty() => return Err(Error::UnrecognizedClient),
            None => {}
            Some(session) => {
                if !crate::iam::token_matches(session, &req.security_token) {
                    return Err(Error::UnrecognizedClient);
                }
                let now_ms = (self.clock.now().unix_timestamp_nanos() / 1_000_000) as i64;
                if now_ms >= session.expires_ms {
                    return Err(Error::ExpiredToken);
                }
            }
        }
        Ok(Verified(cached))
    }
}

/// The access key of a verified request, shared with the cache.
pub struct Verified(Arc<CachedKey>);

impl Verified {
    pub fn key(&self) -> &AccessKey {
        &self.0.key
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::{NewAccount, Secret};
    use crate::clock::FixedClock;
    use crate::store::Store;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use time::macros::datetime;

    // The GET iam ListUsers example of the AWS SigV4 documentation. The expected values
    // were derived independently with Python's standard library:
    //   canonical = "GET\n/\nAction=ListUsers&Version=2010-05-08\n"
    //     "content-type:application/x-www-form-urlencoded; charset=utf-8\n"
    //     "host:iam.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
    //     "content-type;host;x-amz-date\n" + sha256(b"").hexdigest()
    //   sha256(canonical) = f536975d...1a59 (as in the docs)
    //   h = lambda k, m: hmac.new(k, m.encode(), hashlib.sha256).digest()
    //   key = h(h(h(h(b"AWS4" + secret, "20150830"), "us-east-1"), "iam"), "aws4_request")
    //   key.hex()                                  -> c4afb1cc...a4b9
    //   hmac.new(key, sts, sha256).hexdigest()     -> 5d672d79...b5d7
    const DOC_SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const DOC_STRING_TO_SIGN: &str = "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/iam/aws4_request\nf536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59";
    const DOC_SIGNING_KEY: &str =
        "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9";
    const DOC_SIGNATURE: &str = "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";

    #[test]
    fn aws_documentation_vector() {
        let key = signing_key_bytes(DOC_SECRET, "20150830", "us-east-1", "iam");
        assert_eq!(hex::encode(&key[..]), DOC_SIGNING_KEY);
        let sig = hmac::sign(
            &signing_key(DOC_SECRET, "20150830", "us-east-1", "iam"),
            DOC_STRING_TO_SIGN.as_bytes(),
        );
        assert_eq!(hex::encode(sig.as_ref()), DOC_SIGNATURE);
    }

    /// A store with one key that counts its reads.
    struct OneKey {
        key: AccessKey,
        reads: AtomicUsize,
    }

    impl Store for OneKey {
        async fn access_key(&self, id: &str) -> Result<Option<AccessKey>, Error> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            Ok((id == self.key.access_key_id).then(|| self.key.clone()))
        }
        async fn create_account(&self, _: &NewAccount) -> Result<(), Error> {
            Ok(())
        }
        async fn list_accounts(&self) -> Result<Vec<crate::accounts::AccountSummary>, Error> {
            Ok(vec![])
        }
        async fn bootstrap(&self, _: &[NewAccount]) -> Result<bool, Error> {
            Ok(false)
        }
    }

    fn doc_setup(now: OffsetDateTime) -> (Authenticator<OneKey>, Arc<OneKey>, Arc<FixedClock>) {
        let store = Arc::new(OneKey {
            key: AccessKey::root(
                "111122223333",
                "AKIDEXAMPLE00000000".into(),
                Secret::new(DOC_SECRET.into()),
                0,
            ),
            reads: AtomicUsize::new(0),
        });
        let clock = Arc::new(FixedClock::new(now));
        let auth = Authenticator::new(store.clone(), clock.clone(), Duration::from_secs(300));
        (auth, store, clock)
    }

    fn doc_request() -> SignedRequest {
        SignedRequest {
            access_key_id: "AKIDEXAMPLE00000000".into(),
            scope_date: "20150830".into(),
            scope_region: "us-east-1".into(),
            scope_service: "iam".into(),
            amz_date: "20150830T123600Z".into(),
            string_to_sign: DOC_STRING_TO_SIGN.into(),
            signature: DOC_SIGNATURE.into(),
            security_token: String::new(),
        }
    }

    fn invalid_signature_message(r: Result<AccessKey, Error>) -> String {
        match r {
            Err(Error::InvalidSignature(m)) => m,
            other => panic!("expected InvalidSignature, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn verifies_the_documentation_request_and_caches_the_key() {
        let (auth, store, _) = doc_setup(datetime!(2015-08-30 12:36:00 UTC));
        for _ in 0..3 {
            let key = auth.authenticate(&doc_request()).await.unwrap();
            assert_eq!(key.account_id, "111122223333");
        }
        assert_eq!(
            store.reads.load(Ordering::SeqCst),
            1,
            "hot path must not read the store"
        );
    }

    #[tokio::test]
    async fn wrong_signature_is_refused() {
        let (auth, _, _) = doc_setup(datetime!(2015-08-30 12:36:00 UTC));
        let mut req = doc_request();
        req.signature = "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d8".into();
        assert_eq!(
            invalid_signature_message(auth.authenticate(&req).await),
            SIGNATURE_MISMATCH
        );
        req.signature = "not hex".into();
        assert_eq!(
            invalid_signature_message(auth.authenticate(&req).await),
            SIGNATURE_MISMATCH
        );
        let mut req = doc_request();
        req.string_to_sign.push('x');
        assert_eq!(
            invalid_signature_message(auth.authenticate(&req).await),
            SIGNATURE_MISMATCH
        );
        // A signature of the wrong length, however it starts, does not match.
        for signature in [&DOC_SIGNATURE[..62], &format!("{DOC_SIGNATURE}00")[..], ""] {
            let mut req = doc_request();
            req.signature = signature.into();
            assert_eq!(
                invalid_signature_message(auth.authenticate(&req).await),
                SIGNATURE_MISMATCH,
                "{signature:?}"
            );
        }
        // Hex digits in either case, as before.
        let mut req = doc_request();
        req.signature = DOC_SIGNATURE.to_uppercase();
        auth.authenticate(&req).await.unwrap();
    }

    #[tokio::test]
    async fn each_scope_gets_its_own_signing_key() {
        let (auth, _, _) = doc_setup(datetime!(2015-08-30 12:36:00 UTC));
        auth.authenticate(&doc_request()).await.unwrap();
        // The same string to sign with the documentation signature under another scope
        // must not verify (it would with the first scope's cached key).
        for (region, service) in [("us-west-2", "iam"), ("us-east-1", "kms")] {
            let mut req = doc_request();
            req.scope_region = region.into();
            req.scope_service = service.into();
            assert_eq!(
                invalid_signature_message(auth.authenticate(&req).await),
                SIGNATURE_MISMATCH,
                "{region} {service}"
            );
            // Signed with that scope's key, it verifies.
            let key = signing_key(DOC_SECRET, "20150830", region, service);
            req.signature = hex::encode(hmac::sign(&key, req.string_to_sign.as_bytes()));
            auth.authenticate(&req).await.unwrap();
        }
        // And the first scope still verifies.
        auth.authenticate(&doc_request()).await.unwrap();
    }

    #[tokio::test]
    async fn clock_window_is_299_in_301_out() {
        let signed = datetime!(2015-08-30 12:36:00 UTC);
        let (auth, _, clock) = doc_setup(signed);
        clock.set(signed + Duration::from_secs(299));
        auth.authenticate(&doc_request()).await.unwrap();
        clock.set(signed - Duration::from_secs(299));
        auth.authenticate(&doc_request()).await.unwrap();

        clock.set(signed + Duration::from_secs(301));
        assert_eq!(
            invalid_signature_message(auth.authenticate(&doc_request()).await),
            "Signature expired: 20150830T123600Z is now earlier than 20150830T123601Z (20150830T124101Z - 5 min.)"
        );
        clock.set(signed - Duration::from_secs(301));
        assert_eq!(
            invalid_signature_message(auth.authenticate(&doc_request()).await),
            "Signature not yet current: 20150830T123600Z is still later than 20150830T123559Z (20150830T123059Z + 5 min.)"
        );
    }

    #[tokio::test]
    async fn scope_date_must_match_amz_date() {
        let (auth, _, _) = doc_setup(datetime!(2015-08-30 12:36:00 UTC));
        let mut req = doc_request();
        req.scope_date = "20150829".into();
        assert_eq!(
            invalid_signature_message(auth.authenticate(&req).await),
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20150829' != '20150830', from '20150830T123600Z'."
        );
    }

    #[tokio::test]
    async fn unknown_key_malformed_date_and_tokens() {
        let (auth, _, _) = doc_setup(datetime!(2015-08-30 12:36:00 UTC));
        let mut req = doc_request();
        req.access_key_id = "AKIAUNKNOWN000000000".into();
        assert!(matches!(
            auth.authenticate(&req).await,
            Err(Error::UnrecognizedClient)
        ));

        let mut req = doc_request();
        req.amz_date = "2015-08-30".into();
        assert!(matches!(
            auth.authenticate(&req).await,
            Err(Error::IncompleteSignature(_))
        ));

        let mut req = doc_request();
        req.security_token = "FQoGZXIvYXdzEXAMPLE".into();
        assert!(matches!(
            auth.authenticate(&req).await,
            Err(Error::UnrecognizedClient)
        ));
    }

    #[test]
    fn skew_formatting() {
        assert_eq!(fmt_skew(Duration::from_secs(900)), "15 min.");
        assert_eq!(fmt_skew(Duration::from_secs(90)), "90 sec.");
    }
}
