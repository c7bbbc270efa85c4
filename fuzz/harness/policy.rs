//! Policy documents in authz (`kms_authz::policy`): parsing as each kind of policy, then
//! evaluating what parsed against a few requests (wildcards, conditions, policy variables).
//!
//! Input: the document text. `Ok` when it parses as a key policy; `Err("<Code>: ...")` with
//! the exception PutKeyPolicy / CreateKey would answer otherwise.

use kms_authz::policy::{Context, Policies, Policy, PolicyKind, Principal, Request, evaluate};

pub fn check(data: &[u8]) -> Result<(), String> {
    // Documents arrive as JSON strings: always UTF-8.
    let text = std::str::from_utf8(data)
        .map_err(|_| "MalformedPolicyDocumentException: not UTF-8".to_string())?;
    let any = Policy::parse(text);
    let key = Policy::parse_as(text, PolicyKind::KeyPolicy);
    let identity = Policy::parse_as(text, PolicyKind::Identity);
    let endpoint = Policy::parse_as(text, PolicyKind::EndpointPolicy);
    // A document valid for a kind is a valid document.
    for p in [&key, &identity, &endpoint].into_iter().flatten() {
        assert_eq!(Some(p), any.as_ref().ok(), "kind-specific parse differs");
    }
    if let Err(e) = &key {
        assert!(!e.message.is_empty());
    }

    if any.is_ok() {
        let principals = [
            Principal::root("111122223333"),
            Principal::user("111122223333", "Alice"),
            Principal::session("444455556666", "Admin", "s1"),
        ];
        let mut context = Context::new();
        context.insert("aws:SourceVpce", "vpce-0123456789abcdef0");
        context.insert("kms:EncryptionContext:Department", "IT");
        context.insert("aws:SecureTransport", "true");
        context.insert("aws:SourceIp", "127.0.0.1");
        context.insert_multi("aws:PrincipalTag/team", ["blue", "red"]);
        for principal in &principals {
            for action in ["kms:Encrypt", "kms:PutKeyPolicy", "KMS:decrypt"] {
                let req = Request {
                    principal,
                    action,
                    resource: "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
                    resource_account: Some("111122223333"),
                    context: &context,
                };
                // Each document only where production would put it: parsed as that kind.
                let identity: Vec<&Policy> = identity.iter().collect();
                let sets = [
                    Policies {
                        key_policy: key.as_ref().ok(),
                        ..Default::default()
                    },
                    Policies {
                        identity: &identity,
                        endpoint: endpoint.as_ref().ok(),
                        ..Default::default()
                    },
                ];
                for policies in &sets {
                    let d = evaluate(&req, policies);
                    assert_eq!(d, evaluate(&req, policies), "evaluation is deterministic");
                }
            }
        }
    }
    key.map(drop)
        .map_err(|e| format!("{}: {}", e.aws_code(), e.message))
}
