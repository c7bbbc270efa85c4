//! EC2 describe filters: `Filter.N.Name` / `Filter.N.Value.M`. The values of
//! one filter are ORed, filters are ANDed, values may use `*` and `?`
//! wildcards, and a name the resource does not know is an error.

use crate::error::RegistryError;

/// One filter of a describe request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Filter {
    pub name: String,
    pub values: Vec<String>,
}

/// Keep the items matching every filter. `field(item, name)` gives the
/// item's values for a filter name in `known`.
pub(crate) fn apply<T>(
    items: Vec<T>,
    filters: &[Filter],
    known: &[&str],
    field: impl Fn(&T, &str) -> Vec<String>,
) -> Result<Vec<T>, RegistryError> {
    if let Some(bad) = filters.iter().find(|f| !known.contains(&f.name.as_str())) {
        return Err(RegistryError::InvalidFilter(bad.name.clone()));
    }
    Ok(items
        .into_iter()
        .filter(|item| {
            filters.iter().all(|f| {
                let have = field(item, &f.name);
                f.values
                    .iter()
                    .any(|pattern| have.iter().any(|v| glob(pattern, v)))
            })
        })
        .collect())
}

/// EC2's filter wildcards: `*` any run of characters, `?` exactly one.
fn glob(pattern: &str, value: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let v: Vec<char> = value.chars().collect();
    let (mut pi, mut vi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while vi < v.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == v[vi]) {
            pi += 1;
            vi += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, vi));
            pi += 1;
        } else if let Some((sp, sv)) = star {
            pi = sp + 1;
            vi = sv + 1;
            star = Some((sp, sv + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_as_ec2_does() {
        assert!(glob("vpc-1234", "vpc-1234"));
        assert!(!glob("vpc-1234", "vpc-12345"));
        assert!(glob("vpc-*", "vpc-12345"));
        assert!(glob("*", ""));
        assert!(glob("com.amazonaws.*.kms", "com.amazonaws.us-east-1.kms"));
        assert!(!glob(
            "com.amazonaws.*.kms",
            "com.amazonaws.us-east-1.kms-fips"
        ));
        assert!(glob("us-east-1?", "us-east-1a"));
        assert!(!glob("us-east-1?", "us-east-1"));
    }

    #[test]
    fn values_or_filters_and_unknown_names_fail() {
        let items = vec![("a", "x"), ("b", "x"), ("c", "y")];
        let field = |i: &(&str, &str), n: &str| match n {
            "id" => vec![i.0.to_string()],
            _ => vec![i.1.to_string()],
        };
        let f = |name: &str, values: &[&str]| Filter {
            name: name.into(),
            values: values.iter().map(|s| s.to_string()).collect(),
        };
        let got = apply(
            items.clone(),
            &[f("id", &["a", "c"]), f("kind", &["x"])],
            &["id", "kind"],
            field,
        )
        .unwrap();
        assert_eq!(got, vec![("a", "x")]);
        let e = apply(items, &[f("nope", &["a"])], &["id", "kind"], field).unwrap_err();
        assert_eq!(e.code(), "InvalidParameterValue");
        assert_eq!(e.to_string(), "The filter 'nope' is invalid");
    }
}
