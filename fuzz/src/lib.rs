//! What the fuzz targets share: how an input becomes a framer bound, a chunking and pause
//! points, and a naive byte-at-a-time model of the line framer to check the real one against.

/// One fuzz input, decoded: the framer's bound, the stream, and where it is cut.
pub struct Case<'a> {
    /// `max_pending` for the framer (1..=64, small so over-long lines are common).
    pub max: usize,
    /// The byte stream the peer sends.
    pub data: &'a [u8],
    /// Each push: how many bytes, and whether the peer pauses after it (a flush).
    pub pushes: Vec<(usize, bool)>,
}

impl<'a> Case<'a> {
    /// `input[0]` picks the bound, `input[1]` seeds the chunking, the rest is the stream.
    pub fn decode(input: &'a [u8]) -> Option<Self> {
        let (&bound, rest) = input.split_first()?;
        let (&seed, data) = rest.split_first()?;
        let max = usize::from(bound % 64) + 1;
        let mut state = u32::from(seed).wrapping_mul(2_654_435_761) | 1;
        let mut pushes = Vec::new();
        let mut left = data.len();
        while left > 0 {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let len = (1 + state as usize % (2 * max + 8)).min(left);
            pushes.push((len, state & 0x100 != 0));
            left -= len;
        }
        Some(Case { max, data, pushes })
    }
}

/// The framer's contract, one byte at a time: a line is one piece when it has at most `max`
/// bytes before its `\n`; a longer one is cut into pieces of `max` bytes; a pause hands on
/// whatever is pending.
#[derive(Debug, Default)]
pub struct Model {
    pending: Vec<u8>,
    /// Every piece handed on so far.
    pub pieces: Vec<Vec<u8>>,
}

impl Model {
    /// Feeds bytes.
    pub fn push(&mut self, data: &[u8], max: usize) {
        for &b in data {
            if self.pending.len() == max && b != b'\n' {
                // Full and the line goes on: it goes as a piece of its own. (A `\n` here ends
                // a line of exactly `max` bytes, which is whole.)
                self.pieces.push(std::mem::take(&mut self.pending));
            }
            self.pending.push(b);
            if b == b'\n' {
                self.pieces.push(std::mem::take(&mut self.pending));
            }
        }
    }

    /// A pause.
    pub fn flush(&mut self) {
        if !self.pending.is_empty() {
            self.pieces.push(std::mem::take(&mut self.pending));
        }
    }
}
