//! Subgraph replies, parsed once into a flat tape instead of a tree of maps.
//!
//! A [`Doc`] keeps the reply's bytes as they came and, per JSON value, one small node that says
//! what it is and where it is: a string or number by its span of the bytes, an object or array
//! by its count and the node after its end. Reading a field compares keys as bytes; writing a
//! value copies the subgraph's own text (strings stay escaped as they came, numbers as
//! written); dropping a reply frees two buffers. The tape takes 12 bytes per value or key,
//! about 1.3 times the JSON it indexes.
//! Where an object repeats a key, reads find the first (RFC 8259 leaves that open).

use std::borrow::Cow;

use apollo_compiler::response::{JsonMap, JsonValue};
use bytes::Bytes;

/// How deep arrays and objects may nest in a reply.
const MAX_DEPTH: usize = 512;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Null,
    True,
    False,
    /// `a..b`: the number's text.
    Number,
    /// `a..b`: the string's text between the quotes, which is the string (no escapes).
    Str,
    /// `a..b`: the string's text between the quotes, with escapes.
    Escaped,
    /// `a..b`: an object key that had escapes, unescaped, in [`Doc::keys`].
    KeyUnescaped,
    /// `a` members (key node, value node, …), `b` the node after its end.
    Object,
    /// `a` items, `b` the node after its end.
    Array,
}

#[derive(Clone, Copy, Debug)]
struct Node {
    kind: Kind,
    a: u32,
    b: u32,
}

/// A parsed JSON document.
pub struct Doc {
    text: Bytes,
    nodes: Vec<Node>,
    /// Object keys that had escapes, unescaped.
    keys: String,
}

impl std::fmt::Debug for Doc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Doc({} bytes)", self.text.len())
    }
}

/// Why a text is not JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub message: &'static str,
    /// Byte offset where it was found.
    pub at: usize,
}

impl std::fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at byte {}", self.message, self.at)
    }
}

impl Doc {
    /// Parses `text` as one JSON value (RFC 8259), surrounded by nothing but whitespace.
    pub fn parse(text: Bytes) -> Result<Self, SyntaxError> {
        if u32::try_from(text.len()).is_err() {
            return Err(SyntaxError {
                message: "document larger than 4 GiB",
                at: 0,
            });
        }
        if let Err(error) = std::str::from_utf8(&text) {
            return Err(SyntaxError {
                message: "invalid UTF-8",
                at: error.valid_up_to(),
            });
        }
        let mut parser = Parser {
            text: &text,
            at: 0,
            // Replies run about 9.5 bytes per value or key.
            nodes: Vec::with_capacity(text.len() / 8 + 16),
            keys: String::new(),
            open: Vec::new(),
        };
        parser.document()?;
        let Parser { nodes, keys, .. } = parser;
        Ok(Self { text, nodes, keys })
    }

    /// The text it was parsed from.
    pub fn text(&self) -> &Bytes {
        &self.text
    }

    /// The document's value.
    pub fn root(&self) -> DocValue<'_> {
        DocValue { doc: self, at: 0 }
    }

    /// A JSON document holding `value`.
    pub fn of(value: &JsonValue) -> Self {
        let text = serde_json::to_vec(value).expect("JSON values serialize");
        Self::parse(Bytes::from(text)).expect("serde_json writes JSON")
    }

    fn span(&self, node: Node) -> &[u8] {
        &self.text[node.a as usize..node.b as usize]
    }

    /// The node after the value at `at` and everything in it.
    fn after(&self, at: u32) -> u32 {
        let node = self.nodes[at as usize];
        match node.kind {
            Kind::Object | Kind::Array => node.b,
            _ => at + 1,
        }
    }

    /// A key's bytes, unescaped.
    fn key(&self, at: u32) -> &[u8] {
        let node = self.nodes[at as usize];
        match node.kind {
            Kind::KeyUnescaped => &self.keys.as_bytes()[node.a as usize..node.b as usize],
            _ => self.span(node),
        }
    }
}

/// A value in a [`Doc`].
#[derive(Clone, Copy)]
pub struct DocValue<'r> {
    doc: &'r Doc,
    at: u32,
}

impl std::fmt::Debug for DocValue<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut text = Vec::new();
        self.write(&mut text);
        f.write_str(&String::from_utf8_lossy(&text))
    }
}

impl<'r> DocValue<'r> {
    fn node(self) -> Node {
        self.doc.nodes[self.at as usize]
    }

    pub fn is_null(self) -> bool {
        self.node().kind == Kind::Null
    }

    pub fn is_object(self) -> bool {
        self.node().kind == Kind::Object
    }

    pub fn is_array(self) -> bool {
        self.node().kind == Kind::Array
    }

    /// The number of an object's members or an array's items; `None` for other values.
    pub fn count(self) -> Option<usize> {
        let node = self.node();
        matches!(node.kind, Kind::Object | Kind::Array).then_some(node.a as usize)
    }

    /// The string this is, unescaped.
    pub fn as_str(self) -> Option<Cow<'r, str>> {
        let node = self.node();
        match node.kind {
            Kind::Str => std::str::from_utf8(self.doc.span(node))
                .ok()
                .map(Cow::Borrowed),
            Kind::Escaped => Some(Cow::Owned(unescape(self.doc.span(node)))),
            _ => None,
        }
    }

    /// An object's members, keys unescaped; none for other values.
    pub fn fields(self) -> Fields<'r> {
        let node = self.node();
        let (next, end) = match node.kind {
            Kind::Object => (self.at + 1, node.b),
            _ => (0, 0),
        };
        Fields {
            doc: self.doc,
            next,
            end,
        }
    }

    /// An array's items; none for other values.
    pub fn items(self) -> DocItems<'r> {
        let node = self.node();
        let (next, left) = match node.kind {
            Kind::Array => (self.at + 1, node.a),
            _ => (0, 0),
        };
        DocItems {
            doc: self.doc,
            next,
            left,
        }
    }

    /// The member `key` of this object.
    pub fn get(self, key: &str) -> Option<DocValue<'r>> {
        self.fields()
            .find(|(name, _)| *name == key.as_bytes())
            .map(|(_, value)| value)
    }

    /// The member `key` of this object, looked for first where `hint` points: a hint this
    /// object returned for the member before (`0` for none), as replies list members in the
    /// order they were asked. Also returns the hint for the next member. A hint names its
    /// object, so one from another object is never taken.
    pub fn get_near(self, key: &str, hint: u64) -> Option<(DocValue<'r>, u64)> {
        let node = self.node();
        if node.kind != Kind::Object {
            return None;
        }
        let tag = u64::from(self.at + 1) << 32;
        let found = |at: u32| {
            let value = at + 1;
            (
                DocValue {
                    doc: self.doc,
                    at: value,
                },
                tag | u64::from(self.doc.after(value)),
            )
        };
        // The low half of a hint of this object's is the node after a member: its next key,
        // or the object's end.
        let next = (hint & 0xffff_ffff) as u32;
        if hint & !0xffff_ffff == tag && next < node.b && self.doc.key(next) == key.as_bytes() {
            return Some(found(next));
        }
        let mut at = self.at + 1;
        while at < node.b {
            if self.doc.key(at) == key.as_bytes() {
                return Some(found(at));
            }
            at = self.doc.after(at + 1);
        }
        None
    }

    /// Writes this value as JSON: strings and numbers as the document has them.
    pub fn write(self, out: &mut Vec<u8>) {
        let node = self.node();
        match node.kind {
            Kind::Null => out.extend_from_slice(b"null"),
            Kind::True => out.extend_from_slice(b"true"),
            Kind::False => out.extend_from_slice(b"false"),
            Kind::Number => out.extend_from_slice(self.doc.span(node)),
            // A string's span is between its quotes, which the text has around it.
            Kind::Str | Kind::Escaped => {
                out.extend_from_slice(&self.doc.text[(node.a as usize - 1)..=(node.b as usize)]);
            }
            Kind::KeyUnescaped => write_bytes(out, self.doc.key(self.at)),
            Kind::Object => {
                out.push(b'{');
                let mut at = self.at + 1;
                while at < node.b {
                    if at > self.at + 1 {
                        out.push(b',');
                    }
                    DocValue { doc: self.doc, at }.write(out);
                    out.push(b':');
                    DocValue {
                        doc: self.doc,
                        at: at + 1,
                    }
                    .write(out);
                    at = self.doc.after(at + 1);
                }
                out.push(b'}');
            }
            Kind::Array => {
                out.push(b'[');
                for (index, item) in self.items().enumerate() {
                    if index > 0 {
                        out.push(b',');
                    }
                    item.write(out);
                }
                out.push(b']');
            }
        }
    }

    /// This value as a `JsonValue`, for the few places that want one (errors).
    pub fn to_value(self) -> JsonValue {
        let node = self.node();
        match node.kind {
            Kind::Null => JsonValue::Null,
            Kind::True => JsonValue::Bool(true),
            Kind::False => JsonValue::Bool(false),
            Kind::Number => serde_json::from_slice(self.doc.span(node)).unwrap_or(JsonValue::Null),
            Kind::Str | Kind::Escaped | Kind::KeyUnescaped => {
                JsonValue::from(self.as_str().unwrap_or_default().as_ref())
            }
            Kind::Object => {
                let mut map = JsonMap::new();
                for (key, value) in self.fields() {
                    map.insert(String::from_utf8_lossy(key).as_ref(), value.to_value());
                }
                JsonValue::Object(map)
            }
            Kind::Array => JsonValue::Array(self.items().map(DocValue::to_value).collect()),
        }
    }
}

/// An object's members.
pub struct Fields<'r> {
    doc: &'r Doc,
    next: u32,
    end: u32,
}

impl<'r> Iterator for Fields<'r> {
    type Item = (&'r [u8], DocValue<'r>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.end {
            return None;
        }
        let key = self.doc.key(self.next);
        let value = DocValue {
            doc: self.doc,
            at: self.next + 1,
        };
        self.next = self.doc.after(self.next + 1);
        Some((key, value))
    }
}

/// An array's items.
pub struct DocItems<'r> {
    doc: &'r Doc,
    next: u32,
    left: u32,
}

impl<'r> Iterator for DocItems<'r> {
    type Item = DocValue<'r>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let item = DocValue {
            doc: self.doc,
            at: self.next,
        };
        self.next = self.doc.after(self.next);
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left as usize, Some(self.left as usize))
    }
}

impl ExactSizeIterator for DocItems<'_> {}

struct Parser<'t> {
    text: &'t [u8],
    at: usize,
    nodes: Vec<Node>,
    keys: String,
    /// The arrays and objects being read: node, whether an object.
    open: Vec<(usize, bool)>,
}

impl Parser<'_> {
    fn error<T>(&self, message: &'static str) -> Result<T, SyntaxError> {
        Err(SyntaxError {
            message,
            at: self.at,
        })
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.text.get(self.at) {
            self.at += 1;
        }
    }

    fn offset(&self) -> u32 {
        // The document's size was checked to fit.
        u32::try_from(self.at).unwrap_or(u32::MAX)
    }

    fn push(&mut self, kind: Kind, a: u32, b: u32) {
        self.nodes.push(Node { kind, a, b });
    }

    fn document(&mut self) -> Result<(), SyntaxError> {
        loop {
            // A value is due.
            self.skip_whitespace();
            if self.value()? {
                // An array or object began: it may end at once.
                self.skip_whitespace();
                let &(_, object) = self.open.last().expect("just opened");
                let close = if object { b'}' } else { b']' };
                if self.text.get(self.at) == Some(&close) {
                    self.at += 1;
                    self.close();
                } else {
                    if object {
                        self.key()?;
                    }
                    continue;
                }
            }
            // A value ended: what comes after it.
            loop {
                self.skip_whitespace();
                let Some(&(_, object)) = self.open.last() else {
                    if self.at == self.text.len() {
                        return Ok(());
                    }
                    return self.error("trailing characters");
                };
                match (self.text.get(self.at), object) {
                    (Some(b','), _) => {
                        self.at += 1;
                        if object {
                            self.skip_whitespace();
                            self.key()?;
                        }
                        break;
                    }
                    (Some(b'}'), true) | (Some(b']'), false) => {
                        self.at += 1;
                        self.close();
                    }
                    (None, _) => return self.error("unexpected end"),
                    _ => return self.error("expected ',' or the end of the array or object"),
                }
            }
        }
    }

    fn close(&mut self) {
        let (node, _) = self.open.pop().expect("an open array or object");
        let end = u32::try_from(self.nodes.len()).unwrap_or(u32::MAX);
        self.nodes[node].b = end;
    }

    /// Reads a value; `true` when it is an array or object, opened.
    fn value(&mut self) -> Result<bool, SyntaxError> {
        if let Some(&(node, _)) = self.open.last() {
            self.nodes[node].a += 1;
        }
        let Some(&byte) = self.text.get(self.at) else {
            return self.error("unexpected end");
        };
        match byte {
            b'{' | b'[' => {
                if self.open.len() == MAX_DEPTH {
                    return self.error("nested too deeply");
                }
                self.at += 1;
                self.open.push((self.nodes.len(), byte == b'{'));
                let kind = if byte == b'{' {
                    Kind::Object
                } else {
                    Kind::Array
                };
                self.push(kind, 0, 0);
                return Ok(true);
            }
            b'"' => {
                let (start, end, escaped) = self.string()?;
                self.push(if escaped { Kind::Escaped } else { Kind::Str }, start, end);
            }
            b't' => self.literal(b"true", Kind::True)?,
            b'f' => self.literal(b"false", Kind::False)?,
            b'n' => self.literal(b"null", Kind::Null)?,
            b'-' | b'0'..=b'9' => self.number()?,
            _ => return self.error("expected a value"),
        }
        Ok(false)
    }

    /// Reads `"key":`, leaving the position at the value.
    fn key(&mut self) -> Result<(), SyntaxError> {
        if self.text.get(self.at) != Some(&b'"') {
            return self.error("expected a key");
        }
        let (start, end, escaped) = self.string()?;
        if escaped {
            let from = u32::try_from(self.keys.len()).unwrap_or(u32::MAX);
            self.keys
                .push_str(&unescape(&self.text[start as usize..end as usize]));
            let to = u32::try_from(self.keys.len()).unwrap_or(u32::MAX);
            self.push(Kind::KeyUnescaped, from, to);
        } else {
            self.push(Kind::Str, start, end);
        }
        self.skip_whitespace();
        if self.text.get(self.at) != Some(&b':') {
            return self.error("expected ':'");
        }
        self.at += 1;
        self.skip_whitespace();
        Ok(())
    }

    fn literal(&mut self, word: &[u8], kind: Kind) -> Result<(), SyntaxError> {
        if self.text[self.at..].starts_with(word) {
            self.at += word.len();
            self.push(kind, 0, 0);
            Ok(())
        } else {
            self.error("expected a value")
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.at;
        while self.text.get(self.at).is_some_and(u8::is_ascii_digit) {
            self.at += 1;
        }
        self.at - start
    }

    /// Reads `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
    fn number(&mut self) -> Result<(), SyntaxError> {
        let start = self.offset();
        if self.text[self.at] == b'-' {
            self.at += 1;
        }
        match self.text.get(self.at) {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return self.error("expected a digit"),
        }
        if self.text.get(self.at) == Some(&b'.') {
            self.at += 1;
            if self.digits() == 0 {
                return self.error("expected a digit");
            }
        }
        if let Some(b'e' | b'E') = self.text.get(self.at) {
            self.at += 1;
            if let Some(b'+' | b'-') = self.text.get(self.at) {
                self.at += 1;
            }
            if self.digits() == 0 {
                return self.error("expected a digit");
            }
        }
        let end = self.offset();
        self.push(Kind::Number, start, end);
        Ok(())
    }

    /// Reads a string from its opening quote: the span between the quotes, and whether it
    /// has escapes (each checked to be one JSON allows).
    fn string(&mut self) -> Result<(u32, u32, bool), SyntaxError> {
        self.at += 1;
        let start = self.offset();
        let mut escaped = false;
        loop {
            self.at += first_special(&self.text[self.at..]);
            match self.text.get(self.at) {
                Some(b'"') => {
                    let end = self.offset();
                    self.at += 1;
                    return Ok((start, end, escaped));
                }
                Some(b'\\') => {
                    escaped = true;
                    match self.text.get(self.at + 1) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                            self.at += 2;
                        }
                        Some(b'u') => match unit_at(self.text, self.at + 2) {
                            // A surrogate must come in a pair, high then low, as serde_json and
                            // other strict readers require: one alone would be passed on into
                            // a response they refuse.
                            Some(0xD800..=0xDBFF)
                                if self.text.get(self.at + 6..self.at + 8) == Some(b"\\u")
                                    && matches!(
                                        unit_at(self.text, self.at + 8),
                                        Some(0xDC00..=0xDFFF)
                                    ) =>
                            {
                                self.at += 12;
                            }
                            Some(0xD800..=0xDFFF) => return self.error("unpaired surrogate"),
                            Some(_) => self.at += 6,
                            None => return self.error("invalid escape"),
                        },
                        _ => return self.error("invalid escape"),
                    }
                }
                Some(_) => return self.error("control character in a string"),
                None => return self.error("unterminated string"),
            }
        }
    }
}

/// The UTF-16 unit of the four hex digits at `at`, if they are there.
fn unit_at(text: &[u8], at: usize) -> Option<u32> {
    let digits = text.get(at..at + 4)?;
    if !digits.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    u32::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
}

/// The position of the first quote, backslash or control character in `bytes`, or its length:
/// eight bytes at a time.
fn first_special(bytes: &[u8]) -> usize {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);
    // A byte of `word` below `n` (n <= 0x80): its high bit in the result. Borrows only run
    // towards later bytes, so the first bit set is a true one.
    let below = |word: u64, n: u8| word.wrapping_sub(ONES * u64::from(n)) & !word & HIGHS;
    let mut chunks = bytes.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        let quote = word ^ (ONES * u64::from(b'"'));
        let backslash = word ^ (ONES * u64::from(b'\\'));
        let found = below(word, 0x20) | below(quote, 1) | below(backslash, 1);
        if found != 0 {
            return offset + (found.trailing_zeros() / 8) as usize;
        }
        offset += 8;
    }
    offset
        + chunks
            .remainder()
            .iter()
            .position(|&byte| byte < 0x20 || byte == b'"' || byte == b'\\')
            .unwrap_or(chunks.remainder().len())
}

/// Whether `bytes` hold a quote, a backslash or a control character.
pub fn needs_escaping(bytes: &[u8]) -> bool {
    first_special(bytes) < bytes.len()
}

/// Writes `bytes` (UTF-8) as a JSON string, escaped as `serde_json` escapes.
pub fn write_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut rest = bytes;
    loop {
        let plain = first_special(rest);
        out.extend_from_slice(&rest[..plain]);
        let Some(&byte) = rest.get(plain) else {
            break;
        };
        match byte {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(byte >> 4)]);
                out.push(HEX[usize::from(byte & 0xf)]);
            }
        }
        rest = &rest[plain + 1..];
    }
    out.push(b'"');
}

/// The string a JSON string's text (between the quotes, escapes checked) stands for; an
/// unpaired surrogate becomes U+FFFD.
fn unescape(text: &[u8]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let hex = |digits: &[u8]| {
        std::str::from_utf8(digits)
            .ok()
            .and_then(|digits| u32::from_str_radix(digits, 16).ok())
            .unwrap_or(0xfffd)
    };
    while let Some(slash) = rest.iter().position(|&byte| byte == b'\\') {
        out.push_str(&String::from_utf8_lossy(&rest[..slash]));
        let escape = &rest[slash + 1..];
        let (ch, used) = match escape.first() {
            Some(b'b') => ('\u{8}', 1),
            Some(b'f') => ('\u{c}', 1),
            Some(b'n') => ('\n', 1),
            Some(b'r') => ('\r', 1),
            Some(b't') => ('\t', 1),
            Some(b'u') if escape.len() >= 5 => {
                let unit = hex(&escape[1..5]);
                let low = (escape.len() >= 11 && escape[5] == b'\\' && escape[6] == b'u')
                    .then(|| hex(&escape[7..11]))
                    .filter(|low| (0xdc00..0xe000).contains(low));
                match (unit, low) {
                    (0xd800..0xdc00, Some(low)) => (
                        char::from_u32(0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00))
                            .unwrap_or('\u{fffd}'),
                        11,
                    ),
                    _ => (char::from_u32(unit).unwrap_or('\u{fffd}'), 5),
                }
            }
            Some(&other) => (char::from(other), 1),
            None => ('\u{fffd}', 0),
        };
        out.push(ch);
        rest = &escape[used..];
    }
    out.push_str(&String::from_utf8_lossy(rest));
    out
}

#[cfg(test)]
mod tests {
    use super::{Doc, first_special, unescape};
    use bytes::Bytes;

    fn doc(text: &str) -> Doc {
        Doc::parse(Bytes::from(text.to_owned())).unwrap()
    }

    fn written(doc: &Doc) -> String {
        let mut out = Vec::new();
        doc.root().write(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn documents_are_read_and_written_as_they_came() {
        let text =
            r#"{"a":[1,-2.5e3,0,{"b":null}],"c":{},"d":[],"e":"x\"y\u00e9","f":true,"g":false}"#;
        let parsed = doc(&format!(" \n{text}\t"));
        assert_eq!(written(&parsed), text);
        let root = parsed.root();
        assert!(root.is_object());
        assert_eq!(root.count(), Some(6));
        let a = root.get("a").unwrap();
        assert_eq!(a.count(), Some(4));
        assert!(a.items().nth(3).unwrap().get("b").unwrap().is_null());
        assert_eq!(root.get("e").unwrap().as_str().unwrap(), "x\"yé");
        assert!(root.get("c").unwrap().is_object());
        assert_eq!(root.get("d").unwrap().items().count(), 0);
        assert!(root.get("z").is_none());
        assert_eq!(
            serde_json::to_value(root.to_value()).unwrap(),
            serde_json::from_str::<serde_json::Value>(text).unwrap()
        );
    }

    #[test]
    fn members_are_found_at_the_hint_or_by_search() {
        let parsed = doc(r#"{"a":{"x":[1,2]},"b":2,"c":3}"#);
        let root = parsed.root();
        let (a, hint) = root.get_near("a", 0).unwrap();
        assert!(a.is_object());
        let (b, hint) = root.get_near("b", hint).unwrap();
        assert_eq!(b.to_value(), serde_json_bytes::json!(2));
        let (c, _) = root.get_near("c", hint).unwrap();
        assert_eq!(c.to_value(), serde_json_bytes::json!(3));
        // A hint that points elsewhere, or nowhere, still finds the member.
        assert!(root.get_near("a", hint).is_some());
        assert!(root.get_near("b", 1_000).is_some());
        assert!(root.get_near("zz", 2).is_none());
        assert!(a.get_near("b", 0).is_none());
        // Another object's hint is not taken, even where it points at a string equal to the key.
        let tricky = doc(r#"{"a":"b","b":1,"c":{"a":"b","b":2}}"#);
        let inner = tricky.root().get("c").unwrap();
        let (_, inner_hint) = inner.get_near("a", 0).unwrap();
        let (b, _) = tricky.root().get_near("b", inner_hint).unwrap();
        assert_eq!(b.to_value(), serde_json_bytes::json!(1));
        let (_, outer_hint) = tricky.root().get_near("a", 0).unwrap();
        let (b, _) = inner.get_near("b", outer_hint).unwrap();
        assert_eq!(b.to_value(), serde_json_bytes::json!(2));
    }

    #[test]
    fn escaped_keys_are_compared_unescaped() {
        let parsed = doc(r#"{"\u0061b":1,"q\"":2}"#);
        assert!(parsed.root().get("ab").is_some());
        assert!(parsed.root().get("q\"").is_some());
        assert_eq!(written(&parsed), r#"{"ab":1,"q\"":2}"#);
    }

    #[test]
    fn what_is_not_json_is_refused() {
        for bad in [
            "",
            "{",
            "[1,]",
            "{\"a\" 1}",
            "{\"a\":1,}",
            "01",
            "1.",
            "-",
            "1e",
            "\"a\nb\"",
            "\"\\x\"",
            "\"\\u12\"",
            // Surrogates alone (a reply with one would make the response unreadable to strict
            // clients: found by the merge fuzz target).
            "\"\\udfdf\"",
            "\"\\ud83dx\"",
            "\"\\ud83d\\u0041\"",
            "tru",
            "nul",
            "[1] 2",
            "{1:2}",
            "[}",
            "\"unterminated",
        ] {
            assert!(Doc::parse(Bytes::from(bad)).is_err(), "{bad:?}");
        }
        assert!(Doc::parse(Bytes::from(vec![b'"', 0xff, b'"'])).is_err());
        let deep = "[".repeat(600) + &"]".repeat(600);
        assert!(Doc::parse(Bytes::from(deep)).is_err());
        let fine = "[".repeat(500) + &"]".repeat(500);
        assert!(Doc::parse(Bytes::from(fine)).is_ok());
    }

    #[test]
    fn special_bytes_are_found_first() {
        let plain = "abcdefghijklmnopqrstuvwxyz café ✓ ~\u{7f}";
        assert_eq!(first_special(plain.as_bytes()), plain.len());
        for special in ['"', '\\', '\n', '\u{0}', '\u{1f}'] {
            for at in (0..plain.len()).filter(|&at| plain.is_char_boundary(at)) {
                let mut text = plain.to_owned();
                text.insert(at, special);
                text.push('"');
                assert_eq!(first_special(text.as_bytes()), at, "{text:?}");
                let mut out = Vec::new();
                super::write_bytes(&mut out, text.as_bytes());
                assert_eq!(out, serde_json::to_vec(&text).unwrap());
            }
        }
    }

    #[test]
    fn escapes_are_undone() {
        assert_eq!(
            unescape(br#"a\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00\ud800x"#),
            "a\"\\/\u{8}\u{c}\n\r\té😀\u{fffd}x"
        );
    }
}
