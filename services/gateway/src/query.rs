//! The AWS Query protocol as EC2 speaks it: `application/x-www-form-urlencoded`
//! parameters in (`Action`, `Version`, flattened lists such as `SubnetId.1`,
//! `Filter.1.Name` / `Filter.1.Value.1`), XML out in the
//! `http://ec2.amazonaws.com/doc/2016-11-15/` namespace, and EC2's error
//! document (`<Response><Errors><Error>...`).
//!
//! The botocore model `ec2/2016-11-15` is the contract: query names are the
//! members' `locationName` capitalized (botocore's EC2 serializer), list
//! members are numbered from 1, and response elements use the members'
//! `locationName` (`vpcEndpointSet`, `item`, `subnetIdSet`...).

use std::collections::BTreeMap;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;
use kms_proto::error::AwsError;

/// The namespace of every EC2 response.
pub const EC2_XMLNS: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";

/// The parameters of one Query request (body and URI query string merged).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    map: BTreeMap<String, String>,
}

fn decode(s: &str) -> String {
    let s = s.replace('+', " ");
    percent_encoding::percent_decode_str(&s)
        .decode_utf8_lossy()
        .into_owned()
}

impl Params {
    /// The parameters of a Query request: the form body, then the URI's query
    /// string, and the `Action` they name (empty when none).
    pub fn from_request(query: Option<&str>, body: &[u8]) -> (Self, String) {
        let mut params = Self::parse(&String::from_utf8_lossy(body));
        if let Some(q) = query {
            params.extend(q);
        }
        let action = params.get("Action").unwrap_or_default().to_owned();
        (params, action)
    }

    /// Parse `a=1&b=x%20y` (form encoding: `+` is a space). A later value of
    /// a repeated name wins.
    pub fn parse(input: &str) -> Self {
        let mut p = Self::default();
        p.extend(input);
        p
    }

    /// Add the parameters of another encoded string (e.g. the URI query).
    pub fn extend(&mut self, input: &str) {
        for pair in input.split('&').filter(|s| !s.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            self.map.insert(decode(k), decode(v));
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.map.get(name).map(String::as_str)
    }

    /// A parameter EC2 requires.
    pub fn required(&self, name: &str) -> Result<&str, AwsError> {
        match self.get(name) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(AwsError::new(
                "MissingParameter",
                format!("The request must contain the parameter {name}"),
            )),
        }
    }

    /// A boolean parameter (`true` / `false`, any case).
    pub fn bool(&self, name: &str) -> Result<Option<bool>, AwsError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(v) => Err(AwsError::new(
                "InvalidParameterValue",
                format!(
                    "Value ({v}) for parameter {name} is invalid. Expected: 'true' or 'false'."
                ),
            )),
        }
    }

    /// The members of a flattened list: `prefix.1`, `prefix.2`... in index order.
    pub fn list(&self, prefix: &str) -> Vec<String> {
        let mut items: Vec<(u32, String)> = self
            .map
            .iter()
            .filter_map(|(k, v)| {
                let n = k.strip_prefix(prefix)?.strip_prefix('.')?;
                Some((n.parse().ok()?, v.clone()))
            })
            .collect();
        items.sort_by_key(|(n, _)| *n);
        items.into_iter().map(|(_, v)| v).collect()
    }

    /// The members of a flattened list of structures: `prefix.N.Member`, in
    /// index order, each as a map of its members.
    pub fn structs(&self, prefix: &str) -> Vec<BTreeMap<String, String>> {
        let mut items: BTreeMap<u32, BTreeMap<String, String>> = BTreeMap::new();
        for (k, v) in &self.map {
            let Some(rest) = k.strip_prefix(prefix).and_then(|r| r.strip_prefix('.')) else {
                continue;
            };
            let Some((n, member)) = rest.split_once('.') else {
                continue;
            };
            let Ok(n) = n.parse::<u32>() else { continue };
            items
                .entry(n)
                .or_default()
                .insert(member.to_owned(), v.clone());
        }
        items.into_values().collect()
    }

    /// `Filter.N.Name` with its `Filter.N.Value.M` values.
    pub fn filters(&self) -> Vec<(String, Vec<String>)> {
        let mut out = Vec::new();
        for s in self.structs("Filter") {
            let Some(name) = s.get("Name") else { continue };
            let mut values: Vec<(u32, String)> = s
                .iter()
                .filter_map(|(k, v)| Some((k.strip_prefix("Value.")?.parse().ok()?, v.clone())))
                .collect();
            values.sort_by_key(|(n, _)| *n);
            out.push((name.clone(), values.into_iter().map(|(_, v)| v).collect()));
        }
        out
    }

    /// Every parameter but `Action` and `Version` (for the audit record).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.map
            .iter()
            .filter(|(k, _)| k.as_str() != "Action" && k.as_str() != "Version")
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// Escape text for XML element content.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// An EC2 response document under construction.
#[derive(Debug)]
pub struct Xml {
    buf: String,
    root: String,
}

impl Xml {
    /// `<{action}Response xmlns="..."><requestId>..</requestId>`.
    pub fn response(action: &str, request_id: &str) -> Self {
        let root = format!("{action}Response");
        let mut buf = String::with_capacity(1024);
        buf.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        buf.push_str(&format!("<{root} xmlns=\"{EC2_XMLNS}\">"));
        let mut xml = Self { buf, root };
        xml.text("requestId", request_id);
        xml
    }

    pub fn open(&mut self, tag: &str) -> &mut Self {
        self.buf.push('<');
        self.buf.push_str(tag);
        self.buf.push('>');
        self
    }

    pub fn close(&mut self, tag: &str) -> &mut Self {
        self.buf.push_str("</");
        self.buf.push_str(tag);
        self.buf.push('>');
        self
    }

    /// `<tag>escaped text</tag>`.
    pub fn text(&mut self, tag: &str, value: &str) -> &mut Self {
        self.open(tag);
        self.buf.push_str(&escape(value));
        self.close(tag)
    }

    pub fn bool(&mut self, tag: &str, value: bool) -> &mut Self {
        self.text(tag, if value { "true" } else { "false" })
    }

    /// `<tag><item>a</item><item>b</item></tag>` (a list of strings).
    pub fn strings<'a>(
        &mut self,
        tag: &str,
        values: impl IntoIterator<Item = &'a String>,
    ) -> &mut Self {
        self.open(tag);
        for v in values {
            self.text("item", v);
        }
        self.close(tag)
    }

    /// `<tag><item>..</item>...</tag>`, each item written by `f`.
    pub fn items<T>(
        &mut self,
        tag: &str,
        items: impl IntoIterator<Item = T>,
        mut f: impl FnMut(&mut Self, T),
    ) -> &mut Self {
        self.open(tag);
        for item in items {
            self.open("item");
            f(self, item);
            self.close("item");
        }
        self.close(tag)
    }

    /// Close the root element and return the document.
    pub fn finish(mut self) -> String {
        let root = std::mem::take(&mut self.root);
        self.close(&root);
        self.buf
    }
}

/// The HTTP status EC2 answers an error code with.
pub fn status_for(code: &str) -> StatusCode {
    match code {
        "InternalError" => StatusCode::INTERNAL_SERVER_ERROR,
        "Unavailable" | "ServiceUnavailable" => StatusCode::SERVICE_UNAVAILABLE,
        "DryRunOperation" => StatusCode::PRECONDITION_FAILED,
        "RequestEntityTooLargeException" => StatusCode::PAYLOAD_TOO_LARGE,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// EC2's error document.
pub fn error_body(code: &str, message: &str, request_id: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{}</Code><Message>{}</Message></Error></Errors><RequestID>{}</RequestID></Response>",
        escape(code),
        escape(message),
        escape(request_id)
    )
}

fn xml(body: String, status: StatusCode) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/xml;charset=UTF-8"),
    );
    resp
}

/// A successful EC2 response.
pub fn xml_response(body: String) -> Response<Full<Bytes>> {
    xml(body, StatusCode::OK)
}

/// An EC2 error response with EC2's status for the code.
pub fn error_response(e: &AwsError, request_id: &str) -> Response<Full<Bytes>> {
    xml(
        error_body(&e.code, &e.message, request_id),
        status_for(&e.code),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_flattened_lists_and_filters() {
        let p = Params::parse(
            "Action=DescribeVpcEndpoints&Version=2016-11-15&VpcEndpointId.2=vpce-b&VpcEndpointId.1=vpce-a\
             &Filter.1.Name=vpc-id&Filter.1.Value.1=vpc-1&Filter.1.Value.2=vpc-2\
             &Filter.2.Name=service-name&Filter.2.Value.1=com.amazonaws.us-east-1.kms\
             &PolicyDocument=%7B%22a%22%3A+1%7D&VpcEndpointId.10=vpce-j",
        );
        assert_eq!(p.get("Action"), Some("DescribeVpcEndpoints"));
        assert_eq!(p.list("VpcEndpointId"), ["vpce-a", "vpce-b", "vpce-j"]);
        assert_eq!(
            p.filters(),
            vec![
                (
                    "vpc-id".to_owned(),
                    vec!["vpc-1".to_owned(), "vpc-2".to_owned()]
                ),
                (
                    "service-name".to_owned(),
                    vec!["com.amazonaws.us-east-1.kms".to_owned()]
                ),
            ]
        );
        assert_eq!(p.get("PolicyDocument"), Some("{\"a\": 1}"));
        assert!(p.list("SubnetId").is_empty());
        assert_eq!(p.iter().count(), 9);
    }

    #[test]
    fn structs_and_booleans() {
        let p = Params::parse(
            "SubnetConfiguration.1.SubnetId=subnet-1&SubnetConfiguration.1.Ipv4=127.10.1.9&PrivateDnsEnabled=false&X=maybe",
        );
        let s = p.structs("SubnetConfiguration");
        assert_eq!(s.len(), 1);
        assert_eq!(s[0]["SubnetId"], "subnet-1");
        assert_eq!(s[0]["Ipv4"], "127.10.1.9");
        assert_eq!(p.bool("PrivateDnsEnabled").unwrap(), Some(false));
        assert_eq!(p.bool("Missing").unwrap(), None);
        assert_eq!(p.bool("X").unwrap_err().code, "InvalidParameterValue");
        assert_eq!(p.required("Nope").unwrap_err().code, "MissingParameter");
    }

    #[test]
    fn renders_escaped_ec2_xml() {
        let mut x = Xml::response("DescribeVpcEndpoints", "req-1");
        x.items("vpcEndpointSet", ["a<b"], |x, v| {
            x.text("policyDocument", v).bool("privateDnsEnabled", true);
        });
        x.strings("subnetIdSet", &["subnet-1".to_owned()]);
        let doc = x.finish();
        assert!(doc.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DescribeVpcEndpointsResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>req-1</requestId>"));
        assert!(doc.contains("<vpcEndpointSet><item><policyDocument>a&lt;b</policyDocument><privateDnsEnabled>true</privateDnsEnabled></item></vpcEndpointSet>"));
        assert!(doc.contains("<subnetIdSet><item>subnet-1</item></subnetIdSet>"));
        assert!(doc.ends_with("</DescribeVpcEndpointsResponse>"));
    }

    #[test]
    fn errors_are_ec2_documents() {
        let body = error_body(
            "InvalidVpcID.NotFound",
            "The vpc ID 'x&y' does not exist",
            "r",
        );
        assert_eq!(
            body,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>InvalidVpcID.NotFound</Code><Message>The vpc ID &apos;x&amp;y&apos; does not exist</Message></Error></Errors><RequestID>r</RequestID></Response>"
        );
        assert_eq!(status_for("DependencyViolation"), StatusCode::BAD_REQUEST);
        assert_eq!(
            status_for("InternalError"),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(
            status_for("DryRunOperation"),
            StatusCode::PRECONDITION_FAILED
        );
    }
}
