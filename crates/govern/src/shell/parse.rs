//! A POSIX shell tokenizer and parser, sized for judging command lines rather than running them.
//!
//! It turns a command line into [`Script`]s of [`Pipeline`]s of [`Command`]s, understanding
//! quoting (`'…'`, `"…"`, `\`, `$'…'`), the operators `|`, `|&`, `||`, `&&`, `;`, `;;`, `&`
//! and newlines, `( )` subshells, `{ …; }` groups, function definitions, redirections (`>`,
//! `>>`, `<`, `2>`, `&>`, `>|`, `<>`, `>&`, here-documents and here-strings), comments, and the
//! substitutions whose contents are themselves command lines: `$(…)`, backticks, `<(…)` and
//! `>(…)`, parsed recursively into the [`Word`] that holds them. `if`/`while`/`for`/`case`
//! are read leniently: their keywords separate commands, their bodies are ordinary commands.
//!
//! What it does not do is expand anything: `$VAR` stays `$VAR` in a word's text, a
//! substitution's place in the text reads `$(…)`, globs stay globs. The analysis decides what
//! an unexpanded word could mean.
//!
//! Input is bounded ([`MAX_INPUT`] bytes) and so is nesting ([`MAX_DEPTH`] levels of
//! substitutions, subshells and groups); beyond either, parsing fails and the caller treats the
//! command line as unparsable.

/// Largest command line parsed.
pub const MAX_INPUT: usize = 64 * 1024;
/// Deepest nesting of substitutions, subshells, groups and `sh -c` strings.
pub const MAX_DEPTH: usize = 12;

/// Why a command line could not be parsed. Messages name the construct, never the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ParseError {
    TooLarge,
    TooDeep,
    Syntax(&'static str),
}

/// A sequence of pipelines (`a; b && c & d`); `&&`/`||` structure is flattened, since every
/// command may run.
#[derive(Clone, Debug, Default)]
pub(crate) struct Script {
    pub(crate) items: Vec<Pipeline>,
}

/// `a | b | c`, possibly backgrounded with `&`.
#[derive(Clone, Debug, Default)]
pub(crate) struct Pipeline {
    pub(crate) cmds: Vec<Command>,
    pub(crate) background: bool,
}

/// One stage of a pipeline.
#[derive(Clone, Debug)]
pub(crate) enum Command {
    /// Words (assignments, program, arguments) and redirections. `keyword` marks the pseudo
    /// commands of `for x in …` and `case … in`, whose words are not a program run.
    Simple {
        words: Vec<Word>,
        redirs: Vec<Redir>,
        keyword: bool,
    },
    /// `( … )` or `{ …; }` (and `case` bodies), with redirections.
    Compound(Script, Vec<Redir>),
    /// `name() body` / `function name body`.
    Function(String, Script),
}

/// One shell word after quote removal.
#[derive(Clone, Debug, Default)]
pub(crate) struct Word {
    /// The text with quotes removed; `$NAME`/`${…}` kept as written; substitutions as `$(…)`.
    pub(crate) text: String,
    /// Byte offset in `text` where the first quoted or escaped character is (`usize::MAX` if
    /// none): an assignment's `NAME=` must come before it.
    pub(crate) first_quote: usize,
    /// Whether any part was quoted or escaped.
    pub(crate) quoted: bool,
    /// Whether the word contains an expansion or substitution (its value is unknown).
    pub(crate) dynamic: bool,
    /// Command and process substitutions inside the word, parsed.
    pub(crate) subs: Vec<Script>,
}

impl Word {
    /// A literal argv entry (from a JSON array): no quoting, no expansion.
    pub(crate) fn literal(s: &str) -> Word {
        Word {
            text: s.to_owned(),
            first_quote: 0,
            quoted: true,
            dynamic: false,
            subs: Vec::new(),
        }
    }

    fn mark_quote(&mut self) {
        self.quoted = true;
        if self.first_quote == usize::MAX {
            self.first_quote = self.text.len();
        }
    }

    /// An unquoted, unexpanded word equal to `kw` (reserved words only count like that).
    pub(crate) fn is_keyword(&self, kw: &str) -> bool {
        !self.quoted && !self.dynamic && self.text == kw
    }
}

/// What a redirection does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RedirKind {
    /// `>`, `>|`, `&>`, `>&file`
    Out,
    /// `>>`, `&>>`
    Append,
    /// `<`
    In,
    /// `<>`
    ReadWrite,
    /// `>&N`, `<&N`, `>&-`: duplicates or closes a descriptor, no file.
    Dup,
    /// `<<DELIM` (body in [`Redir::body`])
    HereDoc,
    /// `<<<word`
    HereString,
}

/// One redirection.
#[derive(Clone, Debug)]
pub(crate) struct Redir {
    pub(crate) kind: RedirKind,
    /// The target file, here-string word, or here-document delimiter.
    pub(crate) target: Word,
    /// A here-document's body.
    pub(crate) body: Option<String>,
}

impl Redir {
    /// Whether the redirection writes to its target.
    pub(crate) fn writes(&self) -> bool {
        matches!(
            self.kind,
            RedirKind::Out | RedirKind::Append | RedirKind::ReadWrite
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Pipe,
    PipeAmp,
    AndIf,
    OrIf,
    Semi,
    DSemi,
    Amp,
    LParen,
    RParen,
    Newline,
}

#[derive(Clone, Debug)]
enum Tok {
    Word(Word),
    Op(Op),
    Redir(Redir),
    Eof,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Stop {
    Eof,
    RParen,
    Brace,
    CaseItem,
}

/// Parses a command line (depth 0).
#[cfg(test)]
pub(crate) fn parse(src: &str) -> Result<Script, ParseError> {
    parse_at(src, 0)
}

/// Parses a command line found inside another at nesting `depth` (`sh -c`, `eval`).
pub(crate) fn parse_at(src: &str, depth: usize) -> Result<Script, ParseError> {
    if src.len() > MAX_INPUT {
        return Err(ParseError::TooLarge);
    }
    if depth > MAX_DEPTH {
        return Err(ParseError::TooDeep);
    }
    let mut p = Parser::new(src.as_bytes(), 0, depth);
    let script = p.script(Stop::Eof)?;
    match p.next()? {
        Tok::Eof => Ok(script),
        _ => Err(ParseError::Syntax("unexpected `)`")),
    }
}

struct Parser<'s> {
    src: &'s [u8],
    pos: usize,
    depth: usize,
    peeked: Option<Tok>,
    /// A here-document body is being read past the end of this line: (newline position, where
    /// the line after the last body starts).
    heredoc_skip: Option<(usize, usize)>,
}

fn is_meta(b: u8) -> bool {
    matches!(
        b,
        b' ' | b'\t' | b'\n' | b'|' | b'&' | b';' | b'(' | b')' | b'<' | b'>'
    )
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

impl<'s> Parser<'s> {
    fn new(src: &'s [u8], pos: usize, depth: usize) -> Parser<'s> {
        Parser {
            src,
            pos,
            depth,
            peeked: None,
            heredoc_skip: None,
        }
    }

    fn at(&self, i: usize) -> Option<u8> {
        self.src.get(i).copied()
    }

    fn starts(&self, s: &str) -> bool {
        self.src[self.pos..].starts_with(s.as_bytes())
    }

    fn nested(&self, pos: usize) -> Result<Parser<'s>, ParseError> {
        if self.depth + 1 > MAX_DEPTH {
            return Err(ParseError::TooDeep);
        }
        Ok(Parser::new(self.src, pos, self.depth + 1))
    }

    // ---- tokens ----------------------------------------------------------------------------

    fn peek(&mut self) -> Result<&Tok, ParseError> {
        if self.peeked.is_none() {
            let t = self.lex()?;
            self.peeked = Some(t);
        }
        Ok(self.peeked.as_ref().expect("just filled"))
    }

    fn next(&mut self) -> Result<Tok, ParseError> {
        match self.peeked.take() {
            Some(t) => Ok(t),
            None => self.lex(),
        }
    }

    fn skip_blanks(&mut self) {
        loop {
            match self.at(self.pos) {
                Some(b' ' | b'\t' | b'\r') => self.pos += 1,
                Some(b'\\') if self.at(self.pos + 1) == Some(b'\n') => self.pos += 2,
                Some(b'#') => {
                    while let Some(b) = self.at(self.pos) {
                        if b == b'\n' {
                            break;
                        }
                        self.pos += 1;
                    }
                }
                _ => return,
            }
        }
    }

    fn lex(&mut self) -> Result<Tok, ParseError> {
        self.skip_blanks();
        let Some(b) = self.at(self.pos) else {
            return Ok(Tok::Eof);
        };
        let two = |p: &Parser, s: &str| p.starts(s);
        let op = |p: &mut Parser, n: usize, op: Op| {
            p.pos += n;
            Ok(Tok::Op(op))
        };
        match b {
            b'\n' => {
                let nl = self.pos;
                self.pos += 1;
                if let Some((at, resume)) = self.heredoc_skip
                    && at == nl
                {
                    self.pos = resume;
                    self.heredoc_skip = None;
                }
                Ok(Tok::Op(Op::Newline))
            }
            b'|' if two(self, "||") => op(self, 2, Op::OrIf),
            b'|' if two(self, "|&") => op(self, 2, Op::PipeAmp),
            b'|' => op(self, 1, Op::Pipe),
            b'&' if two(self, "&&") => op(self, 2, Op::AndIf),
            b'&' if two(self, "&>>") => {
                self.pos += 3;
                self.redir_target(RedirKind::Append)
            }
            b'&' if two(self, "&>") => {
                self.pos += 2;
                self.redir_target(RedirKind::Out)
            }
            b'&' => op(self, 1, Op::Amp),
            b';' if two(self, ";;&") => op(self, 3, Op::DSemi),
            b';' if two(self, ";;") || two(self, ";&") => op(self, 2, Op::DSemi),
            b';' => op(self, 1, Op::Semi),
            b'(' if two(self, "((") => match self.arithmetic(self.pos + 2)? {
                Some(end) => {
                    self.pos = end;
                    Ok(Tok::Word(Word {
                        text: "((…))".into(),
                        first_quote: usize::MAX,
                        quoted: false,
                        dynamic: true,
                        subs: Vec::new(),
                    }))
                }
                None => op(self, 1, Op::LParen),
            },
            b'(' => op(self, 1, Op::LParen),
            b')' => op(self, 1, Op::RParen),
            b'<' | b'>' if self.at(self.pos + 1) == Some(b'(') => {
                // Process substitution: a word naming a pipe to the inner command.
                let mut w = Word {
                    text: "/dev/fd/63".into(),
                    first_quote: usize::MAX,
                    dynamic: true,
                    ..Word::default()
                };
                let script = self.substitution(self.pos + 2)?;
                w.subs.push(script);
                self.word_rest(w)
            }
            b'<' | b'>' => self.redirection(),
            _ => self.word(),
        }
    }

    /// If `((` at `start - 2` opens an arithmetic command, the position after its `))`.
    fn arithmetic(&self, start: usize) -> Result<Option<usize>, ParseError> {
        let mut depth = 0usize;
        let mut i = start;
        while let Some(b) = self.at(i) {
            match b {
                b'(' => depth += 1,
                b')' if depth == 0 => {
                    return Ok((self.at(i + 1) == Some(b')')).then_some(i + 2));
                }
                b')' => depth -= 1,
                b'\n' | b';' | b'|' | b'&' if depth == 0 => return Ok(None),
                _ => {}
            }
            i += 1;
        }
        Ok(None)
    }

    fn redirection(&mut self) -> Result<Tok, ParseError> {
        let (n, kind) = if self.starts("<<<") {
            (3, RedirKind::HereString)
        } else if self.starts("<<-") {
            (3, RedirKind::HereDoc)
        } else if self.starts("<<") {
            (2, RedirKind::HereDoc)
        } else if self.starts("<>") {
            (2, RedirKind::ReadWrite)
        } else if self.starts("<&") || self.starts(">&") {
            (2, RedirKind::Dup)
        } else if self.starts(">>") {
            (2, RedirKind::Append)
        } else if self.starts(">|") {
            (2, RedirKind::Out)
        } else if self.starts("<") {
            (1, RedirKind::In)
        } else {
            (1, RedirKind::Out)
        };
        let strip_tabs = self.starts("<<-");
        self.pos += n;
        if kind == RedirKind::HereDoc {
            return self.heredoc(strip_tabs);
        }
        let tok = self.redir_target(kind)?;
        // `>&file` (not a descriptor number or `-`) writes both streams to the file.
        if let Tok::Redir(mut r) = tok {
            if r.kind == RedirKind::Dup {
                let t = &r.target.text;
                let descriptor =
                    t == "-" || (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()));
                if !descriptor && !r.target.dynamic {
                    r.kind = RedirKind::Out;
                }
            }
            return Ok(Tok::Redir(r));
        }
        Ok(tok)
    }

    fn redir_target(&mut self, kind: RedirKind) -> Result<Tok, ParseError> {
        self.skip_blanks();
        match self.at(self.pos) {
            Some(b) if !is_meta(b) => {}
            Some(b'<' | b'>') if self.at(self.pos + 1) == Some(b'(') => {}
            _ => return Err(ParseError::Syntax("redirection without a target")),
        }
        let Tok::Word(target) = self.lex()? else {
            return Err(ParseError::Syntax("redirection without a target"));
        };
        Ok(Tok::Redir(Redir {
            kind,
            target,
            body: None,
        }))
    }

    fn heredoc(&mut self, strip_tabs: bool) -> Result<Tok, ParseError> {
        let Tok::Redir(mut r) = self.redir_target(RedirKind::HereDoc)? else {
            unreachable!("redir_target returns a redirection")
        };
        let delim = r.target.text.clone();
        let (nl, start) = match self.heredoc_skip {
            Some((nl, resume)) => (nl, resume),
            None => {
                let nl = self.src[self.pos..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map(|k| self.pos + k);
                match nl {
                    Some(nl) => (nl, nl + 1),
                    // `cat <<EOF` with no body at all: an empty document.
                    None => {
                        r.body = Some(String::new());
                        return Ok(Tok::Redir(r));
                    }
                }
            }
        };
        let mut i = start;
        let mut body = String::new();
        let mut end = self.src.len();
        while i < self.src.len() {
            let line_end = self.src[i..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(self.src.len(), |k| i + k);
            let line = String::from_utf8_lossy(&self.src[i..line_end]);
            let line = if strip_tabs {
                line.trim_start_matches('\t')
            } else {
                &line
            };
            if line == delim {
                end = (line_end + 1).min(self.src.len());
                break;
            }
            body.push_str(line);
            body.push('\n');
            i = line_end + 1;
        }
        // An unquoted delimiter means the body is expanded: its substitutions run.
        if !r.target.quoted {
            let subs = subs_in_text(&body, self.depth)?;
            r.target.subs.extend(subs);
        }
        r.body = Some(body);
        self.heredoc_skip = Some((nl, end));
        Ok(Tok::Redir(r))
    }

    /// Lexes a word; a word of digits directly before `<`/`>` is a descriptor number.
    fn word(&mut self) -> Result<Tok, ParseError> {
        let start = self.pos;
        let w = Word {
            first_quote: usize::MAX,
            ..Word::default()
        };
        let tok = self.word_rest(w)?;
        if let Tok::Word(w) = &tok
            && !w.quoted
            && !w.text.is_empty()
            && w.text.bytes().all(|b| b.is_ascii_digit())
            && self.pos == start + w.text.len()
            && matches!(self.at(self.pos), Some(b'<' | b'>'))
            && self.at(self.pos + 1) != Some(b'(')
        {
            return self.redirection();
        }
        Ok(tok)
    }

    fn word_rest(&mut self, mut w: Word) -> Result<Tok, ParseError> {
        while let Some(b) = self.at(self.pos) {
            if is_meta(b) {
                break;
            }
            match b {
                b'\\' => {
                    self.pos += 1;
                    match self.at(self.pos) {
                        Some(b'\n') => self.pos += 1,
                        Some(_) => {
                            w.mark_quote();
                            self.push_char(&mut w);
                        }
                        None => {}
                    }
                }
                b'\'' => {
                    w.mark_quote();
                    let close = self.src[self.pos + 1..]
                        .iter()
                        .position(|&c| c == b'\'')
                        .ok_or(ParseError::Syntax("unterminated single quote"))?;
                    let s = &self.src[self.pos + 1..self.pos + 1 + close];
                    w.text.push_str(&String::from_utf8_lossy(s));
                    self.pos += close + 2;
                }
                b'"' => {
                    w.mark_quote();
                    self.pos += 1;
                    self.double_quoted(&mut w, true)?;
                }
                b'$' if self.at(self.pos + 1) == Some(b'\'') => {
                    w.mark_quote();
                    self.pos += 2;
                    self.ansi_c(&mut w)?;
                }
                b'$' => self.dollar(&mut w)?,
                b'`' => self.backtick(&mut w)?,
                _ => self.push_char(&mut w),
            }
        }
        Ok(Tok::Word(w))
    }

    /// Appends the (UTF-8) character at `pos`.
    fn push_char(&mut self, w: &mut Word) {
        let rest = &self.src[self.pos..];
        let len = match rest[0] {
            b if b < 0x80 => 1,
            b if b >= 0xf0 => 4,
            b if b >= 0xe0 => 3,
            _ => 2,
        }
        .min(rest.len());
        w.text.push_str(&String::from_utf8_lossy(&rest[..len]));
        self.pos += len;
    }

    /// Inside `"…"` (after the opening quote). With `closing`, stops after the closing quote;
    /// without, reads to the end (a here-document body).
    fn double_quoted(&mut self, w: &mut Word, closing: bool) -> Result<(), ParseError> {
        loop {
            match self.at(self.pos) {
                None if closing => return Err(ParseError::Syntax("unterminated double quote")),
                None => return Ok(()),
                Some(b'"') if closing => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(b'\\') => match self.at(self.pos + 1) {
                    Some(b'$' | b'`' | b'"' | b'\\') => {
                        self.pos += 1;
                        self.push_char(w);
                    }
                    Some(b'\n') => self.pos += 2,
                    _ => self.push_char(w),
                },
                Some(b'$') => self.dollar(w)?,
                Some(b'`') => self.backtick(w)?,
                Some(_) => self.push_char(w),
            }
        }
    }

    fn ansi_c(&mut self, w: &mut Word) -> Result<(), ParseError> {
        loop {
            match self.at(self.pos) {
                None => return Err(ParseError::Syntax("unterminated $'…' quote")),
                Some(b'\'') => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let c = self
                        .at(self.pos)
                        .ok_or(ParseError::Syntax("unterminated $'…' quote"))?;
                    self.pos += 1;
                    match c {
                        b'n' => w.text.push('\n'),
                        b't' => w.text.push('\t'),
                        b'x' => {
                            let hex: String = self.src[self.pos..]
                                .iter()
                                .take(2)
                                .take_while(|b| b.is_ascii_hexdigit())
                                .map(|&b| b as char)
                                .collect();
                            self.pos += hex.len();
                            if let Ok(v) = u8::from_str_radix(&hex, 16) {
                                w.text.push(v as char);
                            }
                        }
                        other => w.text.push(other as char),
                    }
                }
                Some(_) => self.push_char(w),
            }
        }
    }

    /// `$…` at `pos`: a parameter, `${…}`, `$(…)` or `$((…))`.
    fn dollar(&mut self, w: &mut Word) -> Result<(), ParseError> {
        let next = self.at(self.pos + 1);
        match next {
            Some(b'(') if self.at(self.pos + 2) == Some(b'(') => {
                if let Some(end) = self.arithmetic(self.pos + 3)? {
                    w.text.push_str("$((…))");
                    w.dynamic = true;
                    self.pos = end;
                    return Ok(());
                }
                self.command_sub(w)
            }
            Some(b'(') => self.command_sub(w),
            Some(b'{') => {
                let mut depth = 0usize;
                let mut i = self.pos + 1;
                loop {
                    match self.at(i) {
                        None => return Err(ParseError::Syntax("unterminated ${…}")),
                        Some(b'{') => depth += 1,
                        Some(b'}') => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        Some(b'\\') => i += 1,
                        _ => {}
                    }
                    i += 1;
                }
                let inner = String::from_utf8_lossy(&self.src[self.pos + 2..i]).into_owned();
                // `${x:-$(cmd)}` runs `cmd`.
                if inner.contains('$') || inner.contains('`') {
                    w.subs.extend(subs_in_text(&inner, self.depth)?);
                }
                w.text.push_str("${");
                w.text.push_str(&inner);
                w.text.push('}');
                w.dynamic = true;
                self.pos = i + 1;
                Ok(())
            }
            Some(c) if is_name_byte(c) => {
                let start = self.pos + 1;
                let mut i = start;
                if c.is_ascii_digit() {
                    i += 1;
                } else {
                    while self.at(i).is_some_and(is_name_byte) {
                        i += 1;
                    }
                }
                w.text.push('$');
                w.text
                    .push_str(&String::from_utf8_lossy(&self.src[start..i]));
                w.dynamic = true;
                self.pos = i;
                Ok(())
            }
            Some(b'@' | b'*' | b'#' | b'?' | b'-' | b'$' | b'!') => {
                w.text.push('$');
                w.text.push(next.unwrap_or(b'$') as char);
                w.dynamic = true;
                self.pos += 2;
                Ok(())
            }
            _ => {
                w.text.push('$');
                self.pos += 1;
                Ok(())
            }
        }
    }

    fn command_sub(&mut self, w: &mut Word) -> Result<(), ParseError> {
        let script = self.substitution(self.pos + 2)?;
        w.subs.push(script);
        w.text.push_str("$(…)");
        w.dynamic = true;
        Ok(())
    }

    /// Parses the command list starting at `start` up to its closing `)`; moves past it.
    fn substitution(&mut self, start: usize) -> Result<Script, ParseError> {
        let mut inner = self.nested(start)?;
        let script = inner.script(Stop::RParen)?;
        match inner.next()? {
            Tok::Op(Op::RParen) => {}
            _ => return Err(ParseError::Syntax("unterminated substitution")),
        }
        self.pos = inner.pos;
        Ok(script)
    }

    fn backtick(&mut self, w: &mut Word) -> Result<(), ParseError> {
        let mut i = self.pos + 1;
        let mut inner = Vec::new();
        loop {
            match self.at(i) {
                None => return Err(ParseError::Syntax("unterminated backquote")),
                Some(b'`') => break,
                Some(b'\\') if matches!(self.at(i + 1), Some(b'`' | b'\\' | b'$')) => {
                    inner.push(self.src[i + 1]);
                    i += 2;
                }
                Some(b) => {
                    inner.push(b);
                    i += 1;
                }
            }
        }
        let text = String::from_utf8_lossy(&inner).into_owned();
        if self.depth + 1 > MAX_DEPTH {
            return Err(ParseError::TooDeep);
        }
        w.subs.push(parse_at(&text, self.depth + 1)?);
        w.text.push_str("$(…)");
        w.dynamic = true;
        self.pos = i + 1;
        Ok(())
    }

    // ---- grammar ---------------------------------------------------------------------------

    fn script(&mut self, stop: Stop) -> Result<Script, ParseError> {
        let mut script = Script::default();
        loop {
            let stopped = match self.peek()? {
                Tok::Eof => {
                    if stop != Stop::Eof {
                        return Err(ParseError::Syntax("unterminated group or substitution"));
                    }
                    true
                }
                Tok::Op(Op::RParen) => {
                    if stop != Stop::RParen {
                        return Err(ParseError::Syntax("unexpected `)`"));
                    }
                    true
                }
                Tok::Op(Op::DSemi) => {
                    if stop != Stop::CaseItem {
                        return Err(ParseError::Syntax("unexpected `;;`"));
                    }
                    true
                }
                Tok::Op(Op::Newline | Op::Semi) => {
                    self.next()?;
                    continue;
                }
                Tok::Word(w) if w.is_keyword("}") && stop == Stop::Brace => true,
                Tok::Word(w) if w.is_keyword("esac") && stop == Stop::CaseItem => true,
                Tok::Word(w)
                    if [
                        "if", "then", "elif", "else", "fi", "while", "until", "do", "done",
                    ]
                    .iter()
                    .any(|k| w.is_keyword(k)) =>
                {
                    // Compound-command keywords only separate the commands that matter.
                    self.next()?;
                    continue;
                }
                _ => false,
            };
            if stopped {
                return Ok(script);
            }
            self.and_or(&mut script)?;
            match self.peek()? {
                Tok::Op(Op::Amp) => {
                    if let Some(last) = script.items.last_mut() {
                        last.background = true;
                    }
                    self.next()?;
                }
                Tok::Op(Op::Semi | Op::Newline) => {
                    self.next()?;
                }
                _ => {}
            }
        }
    }

    fn and_or(&mut self, script: &mut Script) -> Result<(), ParseError> {
        loop {
            let p = self.pipeline()?;
            script.items.push(p);
            match self.peek()? {
                Tok::Op(Op::AndIf | Op::OrIf) => {
                    self.next()?;
                    while matches!(self.peek()?, Tok::Op(Op::Newline)) {
                        self.next()?;
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    fn pipeline(&mut self) -> Result<Pipeline, ParseError> {
        let mut p = Pipeline::default();
        if let Tok::Word(w) = self.peek()?
            && w.is_keyword("!")
        {
            self.next()?;
        }
        loop {
            p.cmds.push(self.command()?);
            match self.peek()? {
                Tok::Op(Op::Pipe | Op::PipeAmp) => {
                    self.next()?;
                    while matches!(self.peek()?, Tok::Op(Op::Newline)) {
                        self.next()?;
                    }
                }
                _ => return Ok(p),
            }
        }
    }

    fn trailing_redirs(&mut self) -> Result<Vec<Redir>, ParseError> {
        let mut redirs = Vec::new();
        while matches!(self.peek()?, Tok::Redir(_)) {
            if let Tok::Redir(r) = self.next()? {
                redirs.push(r);
            }
        }
        Ok(redirs)
    }

    fn group(&mut self, stop: Stop) -> Result<Script, ParseError> {
        if self.depth + 1 > MAX_DEPTH {
            return Err(ParseError::TooDeep);
        }
        self.depth += 1;
        let s = self.script(stop);
        self.depth -= 1;
        let s = s?;
        match (stop, self.next()?) {
            (Stop::RParen, Tok::Op(Op::RParen)) => Ok(s),
            (Stop::Brace, Tok::Word(w)) if w.is_keyword("}") => Ok(s),
            _ => Err(ParseError::Syntax("unterminated group")),
        }
    }

    /// After a word at command position: is it followed by `()` (a function definition)?
    fn function_parens(&mut self) -> bool {
        let mut i = self.pos;
        while matches!(self.at(i), Some(b' ' | b'\t')) {
            i += 1;
        }
        if self.at(i) != Some(b'(') {
            return false;
        }
        i += 1;
        while matches!(self.at(i), Some(b' ' | b'\t')) {
            i += 1;
        }
        if self.at(i) == Some(b')') {
            self.pos = i + 1;
            return true;
        }
        false
    }

    fn function_body(&mut self, name: String) -> Result<Command, ParseError> {
        while matches!(self.peek()?, Tok::Op(Op::Newline)) {
            self.next()?;
        }
        let body = self.command()?;
        Ok(Command::Function(
            name,
            Script {
                items: vec![Pipeline {
                    cmds: vec![body],
                    background: false,
                }],
            },
        ))
    }

    fn command(&mut self) -> Result<Command, ParseError> {
        match self.peek()? {
            Tok::Op(Op::LParen) => {
                self.next()?;
                let s = self.group(Stop::RParen)?;
                let r = self.trailing_redirs()?;
                return Ok(Command::Compound(s, r));
            }
            Tok::Word(w) if w.is_keyword("{") => {
                self.next()?;
                let s = self.group(Stop::Brace)?;
                let r = self.trailing_redirs()?;
                return Ok(Command::Compound(s, r));
            }
            Tok::Word(w) if w.is_keyword("case") => return self.case(),
            Tok::Word(w) if w.is_keyword("for") || w.is_keyword("select") => {
                let mut words = Vec::new();
                while let Tok::Word(_) = self.peek()? {
                    if let Tok::Word(w) = self.next()? {
                        words.push(w);
                    }
                }
                return Ok(Command::Simple {
                    words,
                    redirs: Vec::new(),
                    keyword: true,
                });
            }
            Tok::Word(w) if w.is_keyword("function") => {
                self.next()?;
                let Tok::Word(name) = self.next()? else {
                    return Err(ParseError::Syntax("function without a name"));
                };
                self.function_parens();
                return self.function_body(name.text);
            }
            Tok::Word(_) | Tok::Redir(_) => {}
            Tok::Op(_) | Tok::Eof => return Err(ParseError::Syntax("missing command")),
        }
        let mut words: Vec<Word> = Vec::new();
        let mut redirs = Vec::new();
        loop {
            match self.peek()? {
                Tok::Word(_) => {
                    let Tok::Word(w) = self.next()? else {
                        unreachable!()
                    };
                    if words.is_empty()
                        && redirs.is_empty()
                        && !w.quoted
                        && !w.dynamic
                        && self.peeked.is_none()
                        && self.function_parens()
                    {
                        return self.function_body(w.text);
                    }
                    words.push(w);
                }
                Tok::Redir(_) => {
                    if let Tok::Redir(r) = self.next()? {
                        redirs.push(r);
                    }
                }
                Tok::Op(Op::LParen) => return Err(ParseError::Syntax("unexpected `(`")),
                _ => break,
            }
        }
        Ok(Command::Simple {
            words,
            redirs,
            keyword: false,
        })
    }

    fn case(&mut self) -> Result<Command, ParseError> {
        let mut head = vec![];
        if let Tok::Word(w) = self.next()? {
            head.push(w);
        }
        // The subject, then `in`.
        loop {
            match self.next()? {
                Tok::Word(w) if w.is_keyword("in") => break,
                Tok::Word(w) => head.push(w),
                Tok::Op(Op::Newline) => {}
                _ => return Err(ParseError::Syntax("`case` without `in`")),
            }
        }
        let mut body = Script::default();
        body.items.push(Pipeline {
            cmds: vec![Command::Simple {
                words: head,
                redirs: Vec::new(),
                keyword: true,
            }],
            background: false,
        });
        loop {
            match self.next()? {
                Tok::Op(Op::Newline | Op::Semi) => continue,
                Tok::Word(w) if w.is_keyword("esac") => break,
                Tok::Eof => return Err(ParseError::Syntax("`case` without `esac`")),
                first => {
                    // Patterns up to `)`; their words may hold substitutions.
                    let mut pats = Vec::new();
                    if let Tok::Word(w) = first {
                        pats.push(w);
                    }
                    loop {
                        match self.next()? {
                            Tok::Op(Op::RParen) => break,
                            Tok::Word(w) => pats.push(w),
                            Tok::Op(Op::Pipe) => {}
                            _ => return Err(ParseError::Syntax("bad `case` pattern")),
                        }
                    }
                    body.items.push(Pipeline {
                        cmds: vec![Command::Simple {
                            words: pats,
                            redirs: Vec::new(),
                            keyword: true,
                        }],
                        background: false,
                    });
                    let item = self.group_case()?;
                    body.items.extend(item.items);
                    if let Tok::Op(Op::DSemi) = self.peek()? {
                        self.next()?;
                    }
                }
            }
        }
        let redirs = self.trailing_redirs()?;
        Ok(Command::Compound(body, redirs))
    }

    fn group_case(&mut self) -> Result<Script, ParseError> {
        if self.depth + 1 > MAX_DEPTH {
            return Err(ParseError::TooDeep);
        }
        self.depth += 1;
        let s = self.script(Stop::CaseItem);
        self.depth -= 1;
        s
    }
}

/// Substitutions in text that is expanded like a double-quoted string (an unquoted
/// here-document body, the inside of `${…}`).
fn subs_in_text(text: &str, depth: usize) -> Result<Vec<Script>, ParseError> {
    if depth + 1 > MAX_DEPTH {
        return Err(ParseError::TooDeep);
    }
    let mut p = Parser::new(text.as_bytes(), 0, depth + 1);
    let mut w = Word::default();
    p.double_quoted(&mut w, false)?;
    Ok(w.subs)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Renders a script compactly: simple commands as `[w1 w2 >t]`, pipes as `|`, subs
    /// as `{…}`.
    fn show(s: &Script) -> String {
        s.items
            .iter()
            .map(|p| {
                let cmds: Vec<String> = p.cmds.iter().map(show_cmd).collect();
                format!(
                    "{}{}",
                    cmds.join(" | "),
                    if p.background { " &" } else { "" }
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn show_word(w: &Word) -> String {
        let mut s = w.text.clone();
        for sub in &w.subs {
            s.push_str(&format!("{{{}}}", show(sub)));
        }
        s
    }

    fn show_cmd(c: &Command) -> String {
        match c {
            Command::Simple {
                words,
                redirs,
                keyword,
            } => {
                let mut parts: Vec<String> = words.iter().map(show_word).collect();
                for r in redirs {
                    let op = match r.kind {
                        RedirKind::Out => ">",
                        RedirKind::Append => ">>",
                        RedirKind::In => "<",
                        RedirKind::ReadWrite => "<>",
                        RedirKind::Dup => ">&",
                        RedirKind::HereDoc => "<<",
                        RedirKind::HereString => "<<<",
                    };
                    parts.push(format!("{op}{}", show_word(&r.target)));
                    if let Some(b) = &r.body {
                        parts.push(format!("«{}»", b.trim_end()));
                    }
                }
                format!("{}[{}]", if *keyword { "kw" } else { "" }, parts.join(" "))
            }
            Command::Compound(s, _) => format!("({})", show(s)),
            Command::Function(n, s) => format!("fn {n}({})", show(s)),
        }
    }

    #[test]
    fn parses_real_command_lines() {
        let cases = [
            ("ls -la", "[ls -la]"),
            ("git status && git diff", "[git status]; [git diff]"),
            ("cat README.md | grep foo", "[cat README.md] | [grep foo]"),
            ("echo \"rm -rf /\"", "[echo rm -rf /]"),
            ("echo 'a b'\\ c", "[echo a b c]"),
            ("FOO=1 BAR=\"x y\" cmd arg", "[FOO=1 BAR=x y cmd arg]"),
            ("echo x > /etc/hosts", "[echo x >/etc/hosts]"),
            ("cmd 2>/dev/null >>log &>all", "[cmd >/dev/null >>log >all]"),
            ("cmd 2>&1 >&out", "[cmd >&1 >out]"),
            ("echo $(sudo id)", "[echo $(…){[sudo id]}]"),
            ("echo `whoami`", "[echo $(…){[whoami]}]"),
            ("echo \"$(cat \"a b\")\"", "[echo $(…){[cat a b]}]"),
            ("bash <(curl -s x)", "[bash /dev/fd/63{[curl -s x]}]"),
            (
                "(cd /tmp && rm -rf x) ; { ls; }",
                "([cd /tmp]; [rm -rf x]); ([ls])",
            ),
            (":(){ :|:& };:", "fn :(([:] | [:] &)); [:]"),
            (
                "bomb() {\n bomb | bomb &\n}\nbomb",
                "fn bomb(([bomb] | [bomb] &)); [bomb]",
            ),
            ("if true; then rm -rf /; fi", "[true]; [rm -rf /]"),
            (
                "for f in $(ls); do rm $f; done",
                "kw[for f in $(…){[ls]}]; [rm $f]",
            ),
            (
                "while read l; do echo $l; done < f",
                "[read l]; [echo $l]; [<f]",
            ),
            (
                "case $x in a|b) rm -rf /;; *) ls;; esac",
                "(kw[case $x]; kw[a b]; [rm -rf /]; kw[*]; [ls])",
            ),
            ("x=$((1+2)); echo $x # comment", "[x=$((…))]; [echo $x]"),
            (
                "cat <<EOF\nhello $(id)\nEOF\necho done",
                "[cat <<EOF{[id]} «hello $(id)»]; [echo done]",
            ),
            ("bash <<'EOF'\nrm -rf /\nEOF", "[bash <<EOF «rm -rf /»]"),
            ("bash <<< 'sudo ls'", "[bash <<<sudo ls]"),
            ("echo $'a\\x41'", "[echo aA]"),
            ("echo ${x:-$(id)}", "[echo ${x:-$(id)}{[id]}]"),
            ("a |\n b", "[a] | [b]"),
            ("sleep 1 & echo", "[sleep 1] &; [echo]"),
        ];
        for (src, want) in cases {
            let s = parse(src).unwrap_or_else(|e| panic!("{src}: {e:?}"));
            assert_eq!(show(&s), want, "{src}");
        }
    }

    #[test]
    fn refuses_broken_or_oversized_input() {
        for bad in [
            "echo 'x",
            "echo \"x",
            "echo $(ls",
            "(ls",
            "ls )",
            "echo `x",
            "> ",
            "{ ls",
            "a && | b",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse(&"a".repeat(MAX_INPUT + 1)).unwrap_err(),
            ParseError::TooLarge
        );
        let deep = format!(
            "{}ls{}",
            "$(".repeat(MAX_DEPTH + 2),
            ")".repeat(MAX_DEPTH + 2)
        );
        assert_eq!(parse(&deep).unwrap_err(), ParseError::TooDeep);
        let subshells = format!("{}ls{}", "( ".repeat(40), " )".repeat(40));
        assert_eq!(parse(&subshells).unwrap_err(), ParseError::TooDeep);
    }
}
