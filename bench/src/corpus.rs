//! The synthetic corpus: a seeded generator and a vocabulary of topics whose words make
//! documents, queries and vectors that cluster the way real ones do.

/// A deterministic pseudo-random stream (xorshift), so runs compare.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub(crate) fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    }
}

/// A vocabulary of pseudo-words drawn with a Zipf-like skew, so full-text queries meet the
/// mix of common and rare terms real text has (a tiny uniform vocabulary would make every
/// query term match every chunk).
pub(crate) struct Vocabulary(Vec<String>);

impl Vocabulary {
    pub(crate) fn new(size: usize) -> Vocabulary {
        const SYLLABLES: &[&str] = &[
            "ba", "co", "di", "fe", "ga", "hi", "jo", "ku", "la", "me", "ni", "po", "qu", "ra",
            "se", "ti", "vo", "wa", "xe", "yo", "zu", "bri", "cla", "dro", "fle", "gru", "pla",
            "str", "tre", "vin",
        ];
        let mut rng = Rng(3);
        let words = (0..size)
            .map(|_| {
                let n = 2 + (rng.next() % 3) as usize;
                (0..n)
                    .map(|_| SYLLABLES[(rng.next() % SYLLABLES.len() as u64) as usize])
                    .collect()
            })
            .collect();
        Vocabulary(words)
    }

    pub(crate) fn word(&self, rng: &mut Rng) -> &str {
        let u = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
        &self.0[((u * u * u) * self.0.len() as f64) as usize]
    }

    pub(crate) fn sentence(&self, rng: &mut Rng, words: usize) -> String {
        let mut s = String::new();
        for i in 0..words {
            if i > 0 {
                s.push(' ');
            }
            s.push_str(self.word(rng));
        }
        s.push('.');
        s
    }
}
