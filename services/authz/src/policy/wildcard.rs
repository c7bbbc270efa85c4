//! `*` / `?` wildcard matching, as IAM applies it to actions, resources and `...Like` values.
//!
//! `*` matches any sequence of characters (including none and including `:` and `/`), `?`
//! exactly one character. There is no escape syntax in IAM: a literal `*` or `?` can only come
//! from the policy variables `${*}` and `${?}`, which is why a pattern is a token list rather
//! than a string.

/// One token of a compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    /// A character that must appear as is.
    Char(char),
    /// `*`: any run of characters.
    Star,
    /// `?`: exactly one character.
    One,
}

/// Compile `pattern`, where `*` and `?` are wildcards, into tokens.
pub fn compile(pattern: &str) -> Vec<Tok> {
    let mut out = Vec::with_capacity(pattern.len());
    push_wild(&mut out, pattern);
    out
}

/// Append `s` with `*` and `?` as wildcards.
pub(crate) fn push_wild(out: &mut Vec<Tok>, s: &str) {
    for c in s.chars() {
        out.push(match c {
            '*' => Tok::Star,
            '?' => Tok::One,
            c => Tok::Char(c),
        });
    }
}

/// Append `s` literally (`*` and `?` are ordinary characters).
pub(crate) fn push_literal(out: &mut Vec<Tok>, s: &str) {
    out.extend(s.chars().map(Tok::Char));
}

/// Whether the compiled `pattern` matches all of `text`.
///
/// Linear-space greedy matcher with backtracking to the last `*` only, which is complete for
/// patterns made of `*`, `?` and literals (a later `*` subsumes any earlier choice).
pub fn matches(pattern: &[Tok], text: &str) -> bool {
    let (mut pi, mut ti) = (0usize, 0usize);
    // (pattern index after the last star, text index that star is to resume from)
    let mut resume: Option<(usize, usize)> = None;
    loop {
        if let Some(c) = text[ti..].chars().next() {
            match pattern.get(pi) {
                Some(Tok::Star) => {
                    pi += 1;
                    resume = Some((pi, ti));
                    continue;
                }
                Some(Tok::One) => {
                    pi += 1;
                    ti += c.len_utf8();
                    continue;
                }
                Some(Tok::Char(p)) if *p == c => {
                    pi += 1;
                    ti += c.len_utf8();
                    continue;
                }
                _ => {}
            }
            match resume {
                Some((sp, st)) => {
                    // Let the last star swallow one more character and retry after it.
                    let skipped = text[st..].chars().next().map_or(1, char::len_utf8);
                    resume = Some((sp, st + skipped));
                    pi = sp;
                    ti = st + skipped;
                }
                None => return false,
            }
        } else {
            return pattern[pi..].iter().all(|t| *t == Tok::Star);
        }
    }
}

/// Convenience: match `text` against the wildcard string `pattern`.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    matches(&compile(pattern), text)
}

/// Case-insensitive [`wildcard_match`] (IAM action names).
pub fn wildcard_match_ignore_case(pattern: &str, text: &str) -> bool {
    matches(&compile(&pattern.to_lowercase()), &text.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Obviously-correct exponential reference matcher for the property tests.
    fn reference(p: &[Tok], t: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some((Tok::Star, rest)) => (0..=t.len()).any(|i| reference(rest, &t[i..])),
            Some((Tok::One, rest)) => !t.is_empty() && reference(rest, &t[1..]),
            Some((Tok::Char(c), rest)) => t.first() == Some(c) && reference(rest, &t[1..]),
        }
    }

    /// xorshift64*: a tiny deterministic generator, enough for property tests.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn string(&mut self, alphabet: &[char], max: usize) -> String {
            let n = self.below(max + 1);
            (0..n)
                .map(|_| alphabet[self.below(alphabet.len())])
                .collect()
        }
    }

    const TEXT: &[char] = &['a', 'b', ':', '/', 'é'];
    const PATTERN: &[char] = &['a', 'b', ':', '/', 'é', '*', '?'];

    #[test]
    fn examples() {
        let cases = [
            ("*", "", true),
            ("*", "anything:at/all", true),
            ("?", "", false),
            ("?", "é", true),
            ("kms:Create*", "kms:CreateKey", true),
            ("kms:Create*", "kms:Create", true),
            ("kms:Create*", "kms:Encrypt", false),
            ("kms:*", "kms:Encrypt", true),
            ("kms:*", "iam:GetUser", false),
            ("kms:ReEncrypt", "kms:ReEncryptFrom", false),
            ("kms:ReEncrypt*", "kms:ReEncryptFrom", true),
            (
                "kms:GenerateDataKey*",
                "kms:GenerateDataKeyWithoutPlaintext",
                true,
            ),
            ("kms:?ecrypt", "kms:Decrypt", true),
            ("kms:?ecrypt", "kms:ecrypt", false),
            ("a*b*c", "abc", true),
            ("a*b*c", "aXbYbZc", true),
            ("a*b*c", "aXbYc Z", false),
            (
                "arn:aws:kms:*:111122223333:key/*",
                "arn:aws:kms:us-east-1:111122223333:key/1234",
                true,
            ),
            (
                "arn:aws:kms:*:111122223333:key/*",
                "arn:aws:kms:us-east-1:444455556666:key/1234",
                false,
            ),
            ("**", "x", true),
            ("*?", "", false),
            ("", "", true),
            ("", "a", false),
        ];
        for (p, t, want) in cases {
            assert_eq!(wildcard_match(p, t), want, "{p:?} vs {t:?}");
        }
    }

    #[test]
    fn case_rules() {
        assert!(!wildcard_match("kms:encrypt", "kms:Encrypt"));
        assert!(wildcard_match_ignore_case("KMS:encrypt", "kms:Encrypt"));
        assert!(wildcard_match_ignore_case("kms:create*", "kms:CreateAlias"));
    }

    #[test]
    fn literal_tokens_are_not_wildcards() {
        let mut p = Vec::new();
        push_literal(&mut p, "a*?");
        assert!(matches(&p, "a*?"));
        assert!(!matches(&p, "abc"));
        push_wild(&mut p, "*");
        assert!(matches(&p, "a*?xyz"));
    }

    #[test]
    fn property_agrees_with_reference_matcher() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for _ in 0..20_000 {
            let p = compile(&rng.string(PATTERN, 8));
            let t: Vec<char> = rng.string(TEXT, 10).chars().collect();
            let s: String = t.iter().collect();
            assert_eq!(matches(&p, &s), reference(&p, &t), "{p:?} vs {s:?}");
        }
    }

    #[test]
    fn property_text_matches_itself_and_star_patterns_built_from_it() {
        let mut rng = Rng(42);
        for _ in 0..5_000 {
            let t = rng.string(TEXT, 12);
            let mut lit = Vec::new();
            push_literal(&mut lit, &t);
            assert!(matches(&lit, &t));
            // Replace a random slice by `*` and random chars by `?`: still a match.
            let chars: Vec<char> = t.chars().collect();
            let (i, j) = {
                let a = rng.below(chars.len() + 1);
                let b = rng.below(chars.len() + 1);
                (a.min(b), a.max(b))
            };
            let mut p: Vec<Tok> = chars[..i].iter().map(|c| Tok::Char(*c)).collect();
            p.push(Tok::Star);
            p.extend(chars[j..].iter().map(|c| {
                if rng.below(3) == 0 {
                    Tok::One
                } else {
                    Tok::Char(*c)
                }
            }));
            assert!(matches(&p, &t), "{p:?} vs {t:?}");
            // Appending one more literal character to the text never keeps a literal match.
            assert!(!matches(&lit, &format!("{t}a")));
        }
    }
}
