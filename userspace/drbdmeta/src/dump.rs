//! The text format of `drbdmeta dump-md` / `restore-md` for v08: the
//! bitmap printer (run-length "N times 0x...;" lines, "# at NkB" marks)
//! and a parser for the whole dump. The format's quirks follow
//! drbd-utils: the bitmap is scanned as 32-bit little-endian words, runs
//! are only recognized at the start of a line of 4 values and when at
//! least 8 values long, and the scan restarts at every 32 MiB read window.

use anyhow::Result;
use std::fmt;
use std::io::Write;

/// drbdmeta's I/O buffer: bitmaps are read and written in windows of it.
pub const WINDOW_BYTES: usize = 32 << 20;

/// Prints the bitmap of `n_words` 32-bit words as "{ ... }" and returns the
/// number of set bits. `read(offset, len)` returns bitmap bytes from
/// `offset`; `window` is the read size (drbdmeta: [`WINDOW_BYTES`]), which
/// influences where runs are split.
pub fn print_bitmap(
    out: &mut impl Write,
    n_words: u64,
    window: usize,
    mut read: impl FnMut(u64, usize) -> Result<Vec<u8>>,
) -> Result<u64> {
    const WORDS_PER_LINE: usize = 8;
    let mut buf: Vec<u32> = Vec::new();
    let mut offset = 0u64; // bytes read so far
    let mut load = |r: u64, offset: &mut u64| -> Result<Vec<u32>> {
        let len = ((n_words - r) * 4).div_ceil(512) * 512;
        let len = len.min(window as u64) as usize;
        let bytes = read(*offset, len)?;
        *offset += len as u64;
        Ok(bytes
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    };
    let (mut i, mut r, mut count) = (0usize, 0u64, 0u64);
    let (mut run_word, mut low_word, mut bits_set) = (0u32, 0u32, 0u64);
    write!(out, "{{")?;
    if r < n_words {
        buf = load(r, &mut offset)?;
    }
    'scan: while r < n_words {
        if i >= buf.len() {
            i -= buf.len();
            buf = load(r, &mut offset)?;
        }
        loop {
            if count == 0 {
                run_word = buf[i];
            }
            if i % WORDS_PER_LINE == 0 {
                if count == 0 {
                    if r & 63 == 0 {
                        write!(out, "\n   # at {}kB\n   ", 128 * r)?;
                    } else {
                        write!(out, "\n   ")?;
                    }
                }
                let same = buf[i..].iter().take_while(|&&w| w == run_word).count();
                let run = same / WORDS_PER_LINE * WORDS_PER_LINE;
                if run > WORDS_PER_LINE {
                    count += run as u64;
                    r += run as u64;
                    i += run;
                    if i >= buf.len() && r < n_words {
                        // The run may go on in the next window.
                        continue 'scan;
                    }
                }
                if count > 0 {
                    write!(out, " {} times 0x{run_word:08X}{run_word:08X};", count / 2)?;
                    bits_set += count * u64::from(run_word.count_ones());
                    count = 0;
                    if r >= n_words {
                        break 'scan;
                    }
                    continue;
                }
            }
            // A literal 64-bit value, printed once both halves are known.
            if i % 2 == 0 {
                low_word = buf[i];
            } else {
                write!(out, " 0x{:08X}{low_word:08X};", buf[i])?;
            }
            bits_set += u64::from(buf[i].count_ones());
            r += 1;
            i += 1;
            break;
        }
    }
    writeln!(out, "\n}}")?;
    Ok(bits_set)
}

/// A parsed v08 dump.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Dump {
    pub uuid: [u64; 4],
    pub flags: u32,
    pub la_size_sect: u64,
    pub bm_bytes_per_bit: u64,
    pub device_uuid: u64,
    pub la_peer_max_bio_size: u64,
    pub al_stripes: u64,
    pub al_stripe_size_4k: u64,
    /// The bitmap as runs of (count, 64-bit value).
    pub bitmap: Vec<(u64, u64)>,
}

impl Dump {
    /// Number of 64-bit words in the bitmap.
    pub fn bitmap_words(&self) -> u64 {
        self.bitmap.iter().map(|&(n, _)| n).sum()
    }

    /// Little-endian bytes of words `first..first + n` (zero past the end).
    pub fn bitmap_bytes(&self, first: u64, n: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity((n * 8) as usize);
        let mut skip = first;
        for &(count, value) in &self.bitmap {
            if out.len() as u64 >= n * 8 {
                break;
            }
            let take = count.saturating_sub(skip).min(n - out.len() as u64 / 8);
            skip = skip.saturating_sub(count);
            for _ in 0..take {
                out.extend_from_slice(&value.to_le_bytes());
            }
        }
        out.resize((n * 8) as usize, 0);
        out
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Op(char),
    Str(String),
    U64(u64),
    U32(u64),
    Num(u64),
    Word(&'static str),
    End,
}

const KEYWORDS: &[&str] = &[
    "gc",
    "bm",
    "uuid",
    "version",
    "la-size-sect",
    "bm-byte-per-bit",
    "device-uuid",
    "times",
    "flags",
    "al-stripes",
    "al-stripe-size-4k",
    "la-peer-max-bio-size",
    "node-id",
    "current-uuid",
    "bitmap",
    "bitmap-uuid",
    "bitmap-dagtag",
    "history-uuids",
    "peer",
    "hash",
    "max-peers",
    "bitmap-index",
];

/// A parse error with its line, like drbdmeta's "Parse error in line N: ...".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Parse error in line {}: {}", self.line, self.message)
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Token::Op(c) => write!(f, "'{c}'"),
            Token::Str(s) => write!(f, "\"{s}\""),
            Token::U64(_) | Token::U32(_) | Token::Num(_) => f.write_str("some number"),
            Token::Word(w) => write!(f, "'{w}'"),
            Token::End => f.write_str("end of file"),
        }
    }
}

/// The lexer of drbdmeta_scanner.fl.
struct Lexer<'a> {
    text: &'a [u8],
    pos: usize,
    line: usize,
}

impl<'a> Lexer<'a> {
    fn err(&self, message: String) -> ParseError {
        ParseError {
            line: self.line,
            message,
        }
    }

    fn next(&mut self) -> Result<Token, ParseError> {
        loop {
            match self.text.get(self.pos) {
                None => return Ok(Token::End),
                Some(b'\n') => {
                    self.line += 1;
                    self.pos += 1;
                }
                Some(b' ' | b'\t' | b'\r') => self.pos += 1,
                Some(b'#') => {
                    while self.text.get(self.pos).is_some_and(|&c| c != b'\n') {
                        self.pos += 1;
                    }
                }
                Some(_) => break,
            }
        }
        let start = self.pos;
        let c = self.text[start];
        if b"{};[]".contains(&c) {
            self.pos += 1;
            return Ok(Token::Op(c as char));
        }
        if c == b'"' {
            let body = self.text[start + 1..]
                .iter()
                .take_while(|&&c| !b"\"\r\n".contains(&c))
                .count();
            let closed = self.text.get(start + 1 + body) == Some(&b'"');
            if !closed || body == 0 || body > 20 {
                return Err(self.err("invalid string".into()));
            }
            self.pos = start + body + 2;
            return Ok(Token::Str(
                String::from_utf8_lossy(&self.text[start + 1..start + 1 + body]).into_owned(),
            ));
        }
        let is_word = |c: &u8| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_';
        let len = self.text[start..].iter().take_while(|c| is_word(c)).count();
        if len == 0 {
            return Err(self.err(format!("got invalid input character '\\x{c:02x}'")));
        }
        self.pos += len;
        let word = std::str::from_utf8(&self.text[start..start + len]).unwrap_or("");
        if let Some(k) = KEYWORDS.iter().find(|&&k| k == word) {
            return Ok(Token::Word(k));
        }
        if let Some(hex) = word.strip_prefix("0x") {
            if hex.bytes().all(|c| c.is_ascii_hexdigit()) {
                let value = u64::from_str_radix(hex, 16).unwrap_or(0);
                return match hex.len() {
                    16 => Ok(Token::U64(value)),
                    8 => Ok(Token::U32(value)),
                    _ => Err(self.err(format!(
                        "invalid hex number (only 8 or 16 hex digits accepted): {word}"
                    ))),
                };
            }
        }
        let digits = word.strip_prefix('-').unwrap_or(word);
        if !digits.is_empty() && digits.bytes().all(|c| c.is_ascii_digit()) {
            if digits.len() > 19 {
                return Err(self.err(format!("number too big: {word}")));
            }
            // strtoull semantics: a negative number wraps around.
            let value: u64 = digits.parse().unwrap_or(0);
            return Ok(Token::Num(if word.starts_with('-') {
                value.wrapping_neg()
            } else {
                value
            }));
        }
        Err(self.err(format!("unknown token: {word}")))
    }
}

struct Parser<'a> {
    lexer: Lexer<'a>,
}

impl Parser<'_> {
    fn expect(
        &mut self,
        want: &str,
        test: impl Fn(&Token) -> Option<u64>,
    ) -> Result<u64, ParseError> {
        let token = self.lexer.next()?;
        test(&token).ok_or_else(|| self.lexer.err(format!("{want} expected, not {token}")))
    }

    fn op(&mut self, c: char) -> Result<(), ParseError> {
        self.expect(&format!("'{c}'"), |t| (*t == Token::Op(c)).then_some(0))
            .map(drop)
    }

    fn keyword(&mut self, k: &'static str) -> Result<(), ParseError> {
        self.expect(&format!("keyword '{k}'"), |t| {
            (*t == Token::Word(k)).then_some(0)
        })
        .map(drop)
    }

    fn num(&mut self) -> Result<u64, ParseError> {
        self.expect("number", |t| {
            if let Token::Num(n) = t {
                Some(*n)
            } else {
                None
            }
        })
    }

    fn u64(&mut self) -> Result<u64, ParseError> {
        self.expect("a 16-digit hex number", |t| {
            if let Token::U64(n) = t {
                Some(*n)
            } else {
                None
            }
        })
    }

    /// `keyword NUM ;`
    fn setting(&mut self, k: &'static str) -> Result<u64, ParseError> {
        self.keyword(k)?;
        let n = self.num()?;
        self.op(';')?;
        Ok(n)
    }
}

/// Parses a v08 dump; `format` is the format the user asked for ("v08").
pub fn parse(text: &[u8], format: &str) -> Result<Dump, ParseError> {
    let mut p = Parser {
        lexer: Lexer {
            text,
            pos: 0,
            line: 1,
        },
    };
    let mut dump = Dump::default();
    p.keyword("version")?;
    match p.lexer.next()? {
        Token::Str(v) if v == format => {}
        Token::Str(v) => {
            return Err(p
                .lexer
                .err(format!("dump is '{v}' you requested '{format}'.")))
        }
        t => {
            return Err(p
                .lexer
                .err(format!("short quoted string expected, not {t}")))
        }
    }
    p.op(';')?;
    p.keyword("uuid")?;
    p.op('{')?;
    for u in dump.uuid.iter_mut() {
        *u = p.u64()?;
        p.op(';')?;
    }
    p.keyword("flags")?;
    dump.flags = p.expect("an 8-digit hex number", |t| {
        if let Token::U32(n) = t {
            Some(*n)
        } else {
            None
        }
    })? as u32;
    p.op(';')?;
    p.op('}')?;
    dump.la_size_sect = p.setting("la-size-sect")?;
    dump.bm_bytes_per_bit = p.setting("bm-byte-per-bit")?;
    p.keyword("device-uuid")?;
    dump.device_uuid = p.u64()?;
    p.op(';')?;
    dump.la_peer_max_bio_size = p.setting("la-peer-max-bio-size")?;
    dump.al_stripes = p.setting("al-stripes")?;
    dump.al_stripe_size_4k = p.setting("al-stripe-size-4k")?;
    p.keyword("bm")?;
    p.op('{')?;
    loop {
        match p.lexer.next()? {
            Token::U64(v) => {
                p.op(';')?;
                dump.bitmap.push((1, v));
            }
            Token::Num(n) => {
                p.keyword("times")?;
                let v = p.u64()?;
                p.op(';')?;
                dump.bitmap.push((n, v));
            }
            Token::Op('}') => break,
            t => {
                return Err(p.lexer.err(format!(
                    "repeat count, 16-digit hex number, or closing brace (}}) expected, not {t}"
                )))
            }
        }
    }
    match p.lexer.next()? {
        Token::End => Ok(dump),
        t => Err(p.lexer.err(format!("end of file expected, not {t}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words_to_bytes(words: &[u64]) -> Vec<u8> {
        words.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    fn render(words: &[u64], window: usize) -> (String, u64) {
        let bytes = words_to_bytes(words);
        let mut out = Vec::new();
        let bits = print_bitmap(&mut out, words.len() as u64 * 2, window, |off, len| {
            let mut chunk = bytes.get(off as usize..).unwrap_or(&[]).to_vec();
            chunk.resize(len, 0);
            Ok(chunk)
        })
        .unwrap();
        (String::from_utf8(out).unwrap(), bits)
    }

    /// The 64 MiB example dumped by drbd-utils 9.22 (see the cross-check
    /// tests): literals, runs, and the "# at" marks every 64 words.
    #[test]
    fn bitmap_text_matches_drbdmeta() {
        let mut words = vec![1, 0xFFFF_FFFF_0000_0000, 0x8000_0000_0000_0000, 0];
        words.extend([u64::MAX; 20]);
        words.extend([0x0123_4567_89AB_CDEF, 0, 0, 0, 0x0000_0000_FFFF_FFFF]);
        words.extend([0xFFFF_FFFF_0000_0000; 10]);
        words.resize(512, 0);
        let (text, bits) = render(&words, WINDOW_BYTES);
        let want = "{
   # at 0kB
    0x0000000000000001; 0xFFFFFFFF00000000; 0x8000000000000000; 0x0000000000000000;
    20 times 0xFFFFFFFFFFFFFFFF;
    0x0123456789ABCDEF; 0x0000000000000000; 0x0000000000000000; 0x0000000000000000;
    0x00000000FFFFFFFF; 0xFFFFFFFF00000000; 0xFFFFFFFF00000000; 0xFFFFFFFF00000000;
   # at 8192kB
    0xFFFFFFFF00000000; 0xFFFFFFFF00000000; 0xFFFFFFFF00000000; 0xFFFFFFFF00000000;
    0xFFFFFFFF00000000; 0xFFFFFFFF00000000; 0xFFFFFFFF00000000; 0x0000000000000000;
    472 times 0x0000000000000000;
}
";
        assert_eq!(text, want);
        assert_eq!(bits, 1698);
        assert_eq!(render(&[], WINDOW_BYTES).0, "{\n}\n");
    }

    #[test]
    fn runs_split_at_window_boundaries_like_drbdmeta() {
        // 512-byte windows hold 128 words; a run of zeros across windows
        // continues, but a tail shorter than 16 words is printed literally.
        let mut words = vec![0u64; 64 + 4];
        words.extend([5u64; 60]);
        let (text, _) = render(&words, 512);
        assert!(
            text.contains(
                " 64 times 0x0000000000000000;\n   # at 16384kB\n    0x0000000000000000;"
            ),
            "{text}"
        );
        let whole = render(&words, WINDOW_BYTES).0;
        assert!(
            whole.contains(" 68 times 0x0000000000000000;\n    0x0000000000000005;"),
            "{whole}"
        );
    }

    #[test]
    fn dump_parses_and_roundtrips_bitmap() {
        let text = b"# comment\nversion \"v08\";\nuuid {\n 0x0000000000000004; 0x0000000000000000; 0x0000000000000001; 0x0000000000000002;\n flags 0x00000080;\n}\n# al-extents 257;\nla-size-sect 130000;\nbm-byte-per-bit 4096;\ndevice-uuid 0x00000000DEADBEEF;\nla-peer-max-bio-size 1048576;\nal-stripes 1;\nal-stripe-size-4k 8;\n# bm-bytes 4096;\nbm {\n   # at 0kB\n 0x0000000000000001; 3 times 0xFFFFFFFFFFFFFFFF;\n}\n# bits-set 1;\n";
        let d = parse(text, "v08").unwrap();
        assert_eq!(d.uuid, [4, 0, 1, 2]);
        assert_eq!(
            (d.flags, d.la_size_sect, d.device_uuid),
            (0x80, 130_000, 0xDEAD_BEEF)
        );
        assert_eq!(d.bitmap, vec![(1, 1), (3, u64::MAX)]);
        assert_eq!(d.bitmap_words(), 4);
        assert_eq!(
            d.bitmap_bytes(0, 5),
            words_to_bytes(&[1, u64::MAX, u64::MAX, u64::MAX, 0])
        );
        assert_eq!(d.bitmap_bytes(2, 2), words_to_bytes(&[u64::MAX, u64::MAX]));
    }

    #[test]
    fn parse_errors_name_the_line() {
        let e = parse(b"version \"v09\";", "v08").unwrap_err();
        assert_eq!(e.message, "dump is 'v09' you requested 'v08'.");
        let e = parse(
            b"version \"v08\";\n\nThis_is_an_unclean_meta_data_dump._Don't_trust_the_bitmap.\n",
            "v08",
        )
        .unwrap_err();
        assert_eq!(e.line, 3);
        let e = parse(b"version \"v08\"; uuid { 0x123;", "v08").unwrap_err();
        assert!(e.message.starts_with("invalid hex number"));
        let e = parse(b"version \"v08\"; uuid { 12345678901234567890", "v08").unwrap_err();
        assert!(e.message.starts_with("number too big"));
        assert!(parse(b"", "v08").is_err());
        assert!(parse(b"version \"\";", "v08").is_err());
    }

    #[test]
    fn random_text_never_panics() {
        let mut x = 0x1234_5678_u64;
        let alphabet = b"{};[]\"#\n x0123456789abcdefABCDEF-_timesbmuuidflags";
        for _ in 0..3000 {
            let len = (x % 200) as usize;
            let text: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    alphabet[(x % alphabet.len() as u64) as usize]
                })
                .collect();
            let mut prefixed = b"version \"v08\"; ".to_vec();
            prefixed.extend_from_slice(&text);
            let _ = parse(&text, "v08");
            let _ = parse(&prefixed, "v08");
        }
    }
}
