//! Policy strings that may hold policy variables (`${aws:username}`, `${*}`, ...).
//!
//! Variables exist only in version 2012-10-17 documents; in 2008-10-17 (or without a
//! Version) `${aws:username}` is just text. A substituted value is always literal text, even
//! when it contains `*` or `?`; `${*}`, `${?}` and `${$}` stand for the literal characters
//! `*`, `?` and `$`. A variable whose key is absent from the request (and has no
//! `${key, 'default'}` default) makes the string unusable: it matches nothing.

use std::borrow::Cow;

use super::context::Context;
use super::wildcard::{self, Tok};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    /// Policy text: `*` and `?` are wildcards where the element allows them.
    Text(String),
    /// A literal character from `${*}`, `${?}` or `${$}`.
    Escaped(char),
    /// `${key}` or `${key, 'default'}`; key stored lowercase.
    Var {
        key: String,
        default: Option<String>,
    },
}

/// A policy string, pre-compiled for the common case without variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
    /// The text as one literal string when there is no variable.
    plain: Option<String>,
    /// The wildcard pattern when there is no variable.
    pattern: Option<Vec<Tok>>,
}

impl Template {
    /// Parse `s`; with `variables` false the string is taken as is.
    pub fn parse(s: &str, variables: bool) -> Self {
        let parts = if variables {
            split(s)
        } else {
            vec![Part::Text(s.to_owned())]
        };
        let has_var = parts.iter().any(|p| matches!(p, Part::Var { .. }));
        let (plain, pattern) = if has_var {
            (None, None)
        } else {
            let mut plain = String::new();
            let mut pattern = Vec::new();
            for p in &parts {
                match p {
                    Part::Text(t) => {
                        plain.push_str(t);
                        wildcard::push_wild(&mut pattern, t);
                    }
                    Part::Escaped(c) => {
                        plain.push(*c);
                        pattern.push(Tok::Char(*c));
                    }
                    Part::Var { .. } => unreachable!("checked above"),
                }
            }
            (Some(plain), Some(pattern))
        };
        Self {
            parts,
            plain,
            pattern,
        }
    }

    /// The string with variables substituted (for exact comparisons); `None` when a variable
    /// cannot be resolved.
    pub fn resolve<'a>(&'a self, ctx: &Context) -> Option<Cow<'a, str>> {
        if let Some(p) = &self.plain {
            return Some(Cow::Borrowed(p));
        }
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Escaped(c) => out.push(*c),
                Part::Var { key, default } => out.push_str(lookup(ctx, key, default)?),
            }
        }
        Some(Cow::Owned(out))
    }

    /// The wildcard pattern with variables substituted as literal text.
    pub fn pattern<'a>(&'a self, ctx: &Context) -> Option<Cow<'a, [Tok]>> {
        if let Some(p) = &self.pattern {
            return Some(Cow::Borrowed(p));
        }
        let mut out = Vec::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => wildcard::push_wild(&mut out, t),
                Part::Escaped(c) => out.push(Tok::Char(*c)),
                Part::Var { key, default } => {
                    wildcard::push_literal(&mut out, lookup(ctx, key, default)?)
                }
            }
        }
        Some(Cow::Owned(out))
    }

    /// Whether the template matches `text` with `*`/`?` wildcards.
    pub fn matches_wild(&self, ctx: &Context, text: &str) -> bool {
        self.pattern(ctx)
            .is_some_and(|p| wildcard::matches(&p, text))
    }
}

/// A variable resolves only to a single-valued key (IAM does not expand sets).
fn lookup<'a>(ctx: &'a Context, key: &str, default: &'a Option<String>) -> Option<&'a str> {
    match ctx.get(key) {
        Some([v]) => Some(v.as_str()),
        _ => default.as_deref(),
    }
}

fn split(s: &str) -> Vec<Part> {
    let mut parts = Vec::new();
    let mut text = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else { break };
        let inner = &after[..end];
        let part = match inner {
            "*" => Some(Part::Escaped('*')),
            "?" => Some(Part::Escaped('?')),
            "$" => Some(Part::Escaped('$')),
            _ => parse_var(inner),
        };
        text.push_str(&rest[..start]);
        match part {
            Some(p) => {
                if !text.is_empty() {
                    parts.push(Part::Text(std::mem::take(&mut text)));
                }
                parts.push(p);
            }
            // Not a variable after all: keep the characters as text.
            None => text.push_str(&rest[start..start + 3 + end]),
        }
        rest = &after[end + 1..];
    }
    text.push_str(rest);
    if !text.is_empty() || parts.is_empty() {
        parts.push(Part::Text(text));
    }
    parts
}

/// `aws:username` or `aws:username, 'default'` (spaces around the comma allowed).
fn parse_var(inner: &str) -> Option<Part> {
    let (key, default) = match inner.split_once(',') {
        Some((k, d)) => {
            let d = d.trim();
            let d = d.strip_prefix('\'')?.strip_suffix('\'')?;
            (k.trim(), Some(d.to_owned()))
        }
        None => (inner.trim(), None),
    };
    let valid = !key.is_empty()
        && key.contains(':')
        && !key
            .chars()
            .any(|c| c.is_whitespace() || c == '$' || c == '{');
    valid.then(|| Part::Var {
        key: key.to_ascii_lowercase(),
        default,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context {
        let mut c = Context::new();
        c.insert("aws:username", "Alice");
        c.insert("aws:PrincipalTag/team", "blue*");
        c.insert_multi("kms:EncryptionContextKeys", ["a", "b"]);
        c
    }

    #[test]
    fn variables_only_in_2012_10_17() {
        let c = ctx();
        let t = Template::parse("home/${aws:username}/*", true);
        assert_eq!(t.resolve(&c).as_deref(), Some("home/Alice/*"));
        assert!(t.matches_wild(&c, "home/Alice/x"));
        assert!(!t.matches_wild(&c, "home/Bob/x"));
        let old = Template::parse("home/${aws:username}/*", false);
        assert_eq!(old.resolve(&c).as_deref(), Some("home/${aws:username}/*"));
        assert!(old.matches_wild(&c, "home/${aws:username}/x"));
        assert!(!old.matches_wild(&c, "home/Alice/x"));
    }

    #[test]
    fn variable_names_are_case_insensitive() {
        let t = Template::parse("${AWS:UserName}", true);
        assert_eq!(t.resolve(&ctx()).as_deref(), Some("Alice"));
    }

    #[test]
    fn escapes_are_literal() {
        let c = ctx();
        let t = Template::parse("a${*}b${?}c${$}", true);
        assert_eq!(t.resolve(&c).as_deref(), Some("a*b?c$"));
        assert!(t.matches_wild(&c, "a*b?c$"));
        assert!(!t.matches_wild(&c, "aXXbYc$"));
    }

    #[test]
    fn substituted_values_are_literal_even_with_wildcards() {
        let c = ctx();
        let t = Template::parse("${aws:PrincipalTag/team}", true);
        assert!(t.matches_wild(&c, "blue*"));
        assert!(!t.matches_wild(&c, "blueberry"));
    }

    #[test]
    fn missing_or_multi_valued_variable_matches_nothing_unless_defaulted() {
        let c = ctx();
        assert_eq!(Template::parse("${aws:userid}", true).resolve(&c), None);
        assert!(!Template::parse("*${aws:userid}*", true).matches_wild(&c, "anything"));
        assert_eq!(
            Template::parse("${kms:EncryptionContextKeys}", true).resolve(&c),
            None
        );
        let d = Template::parse("x-${aws:userid, 'nobody'}", true);
        assert_eq!(d.resolve(&c).as_deref(), Some("x-nobody"));
    }

    #[test]
    fn non_variables_stay_text() {
        let c = ctx();
        for s in ["${}", "${nocolon}", "${unterminated", "$x{y}", "${a b:c}"] {
            assert_eq!(
                Template::parse(s, true).resolve(&c).as_deref(),
                Some(s),
                "{s}"
            );
        }
    }
}
