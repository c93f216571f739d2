//! Tokens of drbd.conf: words (`[A-Za-z0-9/._-]+`), double-quoted strings
//! (backslash quotes the next character, no newlines), the punctuation
//! `{ } ; [ ] :`, and `#` comments to the end of the line.

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tok {
    Word(String),
    /// A double-quoted string, unescaped.
    Str(String),
    Punct(char),
    /// Any other character (only meaningful inside IPv6 addresses: `%`).
    Other(char),
    Eof,
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Word(w) => write!(f, "{w}"),
            Tok::Str(s) => write!(f, "\"{s}\""),
            Tok::Punct(c) | Tok::Other(c) => write!(f, "{c}"),
            Tok::Eof => write!(f, "end of file"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    pub tok: Tok,
    pub line: u32,
}

/// A lexical error: line and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LexError {
    pub line: u32,
    pub msg: String,
}

pub fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-')
}

/// Splits a whole file into tokens; the last one is `Eof`.
pub fn tokenize(text: &str) -> Result<Vec<Token>, LexError> {
    let mut out = Vec::new();
    let mut line = 1u32;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' => line += 1,
            ' ' | '\t' | '\r' => {}
            '#' => {
                while let Some(&n) = chars.peek() {
                    if n == '\n' {
                        break;
                    }
                    chars.next();
                }
            }
            '{' | '}' | ';' | '[' | ']' | ':' => out.push(Token {
                tok: Tok::Punct(c),
                line,
            }),
            '"' => {
                let mut s = String::new();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some('\n') | None => {
                                return Err(LexError {
                                    line,
                                    msg: "unterminated double quoted string".into(),
                                })
                            }
                            Some(e) => s.push(e),
                        },
                        Some('\n') | None => {
                            return Err(LexError {
                                line,
                                msg: "unterminated double quoted string".into(),
                            })
                        }
                        Some(o) => s.push(o),
                    }
                }
                out.push(Token {
                    tok: Tok::Str(s),
                    line,
                });
            }
            c if is_word_char(c) => {
                let mut w = String::from(c);
                while let Some(&n) = chars.peek() {
                    if !is_word_char(n) {
                        break;
                    }
                    w.push(n);
                    chars.next();
                }
                out.push(Token {
                    tok: Tok::Word(w),
                    line,
                });
            }
            other => out.push(Token {
                tok: Tok::Other(other),
                line,
            }),
        }
    }
    out.push(Token {
        tok: Tok::Eof,
        line,
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        tokenize(s).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn words_strings_punct() {
        assert_eq!(
            toks("on alpha { address 10.0.0.1:7789; } # x\n\"a \\\"b\\\"\""),
            vec![
                Tok::Word("on".into()),
                Tok::Word("alpha".into()),
                Tok::Punct('{'),
                Tok::Word("address".into()),
                Tok::Word("10.0.0.1".into()),
                Tok::Punct(':'),
                Tok::Word("7789".into()),
                Tok::Punct(';'),
                Tok::Punct('}'),
                Tok::Str("a \"b\"".into()),
                Tok::Eof,
            ]
        );
    }

    #[test]
    fn lines_are_counted() {
        let t = tokenize("a\n\nb # c\nd").unwrap();
        assert_eq!(t.iter().map(|t| t.line).collect::<Vec<_>>(), [1, 3, 4, 4]);
    }

    #[test]
    fn unterminated_string() {
        let e = tokenize("x\n\"abc\n\"").unwrap_err();
        assert_eq!(e.line, 2);
    }
}
