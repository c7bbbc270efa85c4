//! A small deterministic mutator for the stable smoke tests (the real fuzzing is
//! libFuzzer's, see `fuzz/README.md`): bit flips, interesting bytes, insertions, deletions,
//! duplications, splices with other seeds and dictionary tokens, driven by SplitMix64.

use std::path::{Path, PathBuf};

pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const INTERESTING: &[u8] = &[
    0, 1, 0x7f, 0x80, 0xff, b'"', b'\\', b'{', b'}', b'[', b']', b',', b':', b'\n', b'=', b'&',
    b'%', b'/', b' ', b'.',
];

/// Mutate `input` in place with 1 to 4 random edits.
pub fn mutate(rng: &mut Rng, input: &mut Vec<u8>, others: &[Vec<u8>], tokens: &[&[u8]]) {
    for _ in 0..=rng.below(4) {
        let len = input.len();
        match rng.below(8) {
            0 if len > 0 => {
                let i = rng.below(len);
                input[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                input[i] = INTERESTING[rng.below(INTERESTING.len())];
            }
            2 => {
                let i = rng.below(len + 1);
                input.insert(i, rng.next() as u8);
            }
            3 if len > 0 => {
                let start = rng.below(len);
                let end = (start + 1 + rng.below(16)).min(len);
                input.drain(start..end);
            }
            4 if len > 0 => {
                let start = rng.below(len);
                let end = (start + 1 + rng.below(32)).min(len);
                let chunk = input[start..end].to_vec();
                let at = rng.below(input.len() + 1);
                input.splice(at..at, chunk);
            }
            5 if !others.is_empty() => {
                let other = &others[rng.below(others.len())];
                let cut = rng.below(len + 1);
                let from = rng.below(other.len() + 1);
                input.truncate(cut);
                input.extend_from_slice(&other[from..]);
            }
            6 if !tokens.is_empty() => {
                let t = tokens[rng.below(tokens.len())];
                let at = rng.below(len + 1);
                input.splice(at..at, t.iter().copied());
            }
            7 if len > 0 => input.truncate(rng.below(len)),
            _ => input.push(rng.next() as u8),
        }
    }
}

/// The seed files of `fuzz/corpus/<target>/`, sorted by name.
pub fn corpus(repo_root: &Path, target: &str) -> Vec<(String, Vec<u8>)> {
    let dir: PathBuf = repo_root.join("fuzz/corpus").join(target);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_file())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).expect("seed"),
            )
        })
        .collect();
    out.sort();
    out
}

/// What a seed's name promises: `ok-*` is accepted, `bad-<Code>-*` refused with that code.
pub enum Expect {
    Ok,
    Err(String),
}

pub fn expectation(name: &str) -> Expect {
    if name.starts_with("ok-") {
        Expect::Ok
    } else if let Some(rest) = name.strip_prefix("bad-") {
        Expect::Err(rest.split('-').next().unwrap_or_default().to_owned())
    } else {
        panic!("seed {name}: name it ok-* or bad-<Code>-*")
    }
}

/// Run `check` over the seeds (asserting their promise) and `rounds` mutations of them,
/// catching panics to report the input. Returns (accepted, refused) counts of mutations.
pub fn run<T>(
    seeds: &[(String, Vec<u8>)],
    tokens: &[&[u8]],
    rounds: usize,
    seed: u64,
    check: impl Fn(&[u8]) -> Result<T, String>,
) -> (usize, usize) {
    assert!(seeds.len() >= 3, "a handful of seeds");
    for (name, data) in seeds {
        match (expectation(name), check(data)) {
            (Expect::Ok, Ok(_)) => {}
            (Expect::Ok, Err(e)) => panic!("seed {name} refused: {e}"),
            (Expect::Err(code), Err(e)) => {
                assert!(e.starts_with(&format!("{code}:")), "seed {name}: {e}")
            }
            (Expect::Err(code), Ok(_)) => panic!("seed {name} accepted, expected {code}"),
        }
    }
    let pool: Vec<Vec<u8>> = seeds.iter().map(|(_, d)| d.clone()).collect();
    let mut rng = Rng::new(seed);
    let (mut ok, mut refused) = (0, 0);
    for round in 0..rounds {
        let mut input = pool[rng.below(pool.len())].clone();
        mutate(&mut rng, &mut input, &pool, tokens);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&input)));
        match outcome {
            Ok(Ok(_)) => ok += 1,
            Ok(Err(_)) => refused += 1,
            Err(_) => panic!(
                "round {round} panicked on input {:?}",
                String::from_utf8_lossy(&input)
            ),
        }
    }
    (ok, refused)
}
