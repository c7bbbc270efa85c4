//! The EC2 / IAM / STS Query protocol parser (`kms_gateway::query::Params`) and the XML
//! writer its responses go through.
//!
//! Input: an optional first line `?<URI query string>`, then the form body. `Ok` when the
//! request names an `Action` and a `Version` and its `DryRun` flag (if any) is a boolean;
//! `Err("<Code>: ...")` with EC2's error code otherwise.

use kms_gateway::query::{self, Params, Xml};

pub fn check(data: &[u8]) -> Result<(), String> {
    let (query_string, body) = match data.strip_prefix(b"?") {
        Some(rest) => {
            let nl = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
            let q = String::from_utf8_lossy(&rest[..nl]).into_owned();
            (Some(q), rest.get(nl + 1..).unwrap_or_default())
        }
        None => (None, data),
    };
    let (params, action) = Params::from_request(query_string.as_deref(), body);
    assert_eq!(action, params.get("Action").unwrap_or_default());
    // Parsing is a function of the text: the same input gives the same parameters.
    assert_eq!(
        params,
        Params::from_request(query_string.as_deref(), body).0
    );

    // Every accessor the EC2, IAM and STS handlers use.
    let ids = params.list("SubnetId");
    let structs = params.structs("Tag");
    let filters = params.filters();
    for (name, values) in &filters {
        assert!(
            params.iter().any(|(_, v)| v == name),
            "filter name comes from a value"
        );
        assert!(values.len() <= params.iter().count());
    }
    let _ = params.list("Filter.1.Value");

    // Whatever came in, the XML out is well-formed text: no raw markup from a value.
    let mut xml = Xml::response("DescribeVpcEndpoints", "req-1");
    xml.strings("subnetIdSet", ids.iter());
    xml.items("tagSet", structs.iter(), |x, s| {
        for (k, v) in s {
            x.text("key", k).text("value", v);
        }
    });
    for (k, v) in params.iter() {
        let escaped = query::escape(v);
        assert!(!escaped.contains(['<', '>']), "escaped {escaped:?}");
        assert!(!query::escape(k).contains(['<', '>']));
        xml.text("value", v);
    }
    let doc = xml.finish();
    assert!(doc.ends_with("</DescribeVpcEndpointsResponse>"));
    let _ = query::error_body("InvalidParameterValue", &action, "req-1");

    let code = |e: kms_proto::error::AwsError| format!("{}: {}", e.code, e.message);
    params.required("Action").map_err(code)?;
    params.required("Version").map_err(code)?;
    params.bool("DryRun").map_err(code)?;
    Ok(())
}
