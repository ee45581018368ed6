//! A one-pass reader of an AdmissionReview's JSON into [`ReviewView`]: what the webhook runs
//! on every review the apiserver sends. It does what serde_json does for these views, without
//! a visitor per token: keys are matched as bytes, strings are borrowed, and the values the
//! decision never reads are validated and skipped in a tight loop.
//!
//! It reads a subset, exactly: whatever it reads, serde_json reads to the same views
//! (`webhook/tests/json_reader.rs` holds it to that over mutated and generated reviews).
//! Whatever it is not sure of — an escape in a string it returns, a negative or non-integer
//! number where an integer is read, a struct written as an array, a repeated field, nesting
//! deeper than [`MAX_SKIP_DEPTH`] — it gives up on (`None`), and serde_json reads the body.
//! What it skips it validates as serde_json does (strings and their escapes, numbers,
//! literals, brackets, trailing bytes): a body serde_json refuses is never answered from here.

use kube::core::admission::Operation;
use serde::de::IgnoredAny;

use crate::annotations::PREFIX;
use crate::job_view::{
    ContainerView, EnvView, JobSpecView, JobView, MetaView, MountView, NamedView, OurAnnotations,
    PodView, TemplateView, Text, VolumeView,
};
use crate::json_strings::find_special;
use crate::review_view::{KindView, RequestView, ReviewView};

/// Nesting the reader skips through before it leaves a value to serde_json (which skips any
/// depth). Real objects nest a dozen levels.
pub const MAX_SKIP_DEPTH: u32 = 64;

/// The views of `text`, or `None` when this reader leaves the body to serde_json.
pub fn review(text: &str) -> Option<ReviewView<'_>> {
    let mut reader = Reader { text, at: 0 };
    let review = reader.review()?;
    reader.whitespace();
    (reader.at == text.len()).then_some(review)
}

/// Sets a field read once: a field read twice is an error to serde's derived structs, so the
/// reader gives up on it.
fn once<T>(slot: &mut Option<T>, value: T) -> Option<()> {
    match slot {
        Some(_) => None,
        None => {
            *slot = Some(value);
            Some(())
        }
    }
}

struct Reader<'a> {
    text: &'a str,
    /// The next byte to read.
    at: usize,
}

impl<'a> Reader<'a> {
    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    /// Skips JSON whitespace, as serde_json defines it. Compact JSON (what the apiserver
    /// sends) has none, so one comparison decides. Pretty-printed JSON indents, so after a
    /// whitespace byte a run of spaces goes eight at a time.
    /// (Counting the spaces of a word with one `trailing_zeros` instead measured 4 % slower on
    /// `create-job.json` on a quiet CPU: it puts a load and a bit count on the position's
    /// dependency chain, where a predicted branch does not. A branch-free test of eight bytes
    /// of any whitespace measured slower still: 5.2 µs against 4.4.)
    #[inline]
    fn whitespace(&mut self) {
        const SPACES: u64 = u64::from_le_bytes([b' '; 8]);
        let bytes = self.bytes();
        let mut at = self.at;
        while let Some(&byte) = bytes.get(at) {
            // Not whitespace: any byte above the space, or a control byte but \n, \t, \r.
            if byte > b' ' || !matches!(byte, b' ' | b'\n' | b'\t' | b'\r') {
                break;
            }
            at += 1;
            while let Some(word) = bytes.get(at..at + 8)
                && u64::from_le_bytes(word.try_into().unwrap_or_default()) == SPACES
            {
                at += 8;
            }
        }
        self.at = at;
    }

    /// The next byte after whitespace, not consumed.
    #[inline]
    fn peek(&mut self) -> Option<u8> {
        self.whitespace();
        self.bytes().get(self.at).copied()
    }

    /// Consumes `byte` (after whitespace), or gives up.
    #[inline]
    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    /// Consumes `word` exactly (a literal), or gives up.
    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let found = self.bytes().get(self.at..self.at + word.len())?;
        (found == word).then(|| self.at += word.len())
    }

    /// Reads `null` as `None`, anything else with `read`: serde's `Option`.
    fn nullable<T>(&mut self, read: impl FnOnce(&mut Self) -> Option<T>) -> Option<Option<T>> {
        if self.peek()? == b'n' {
            self.literal(b"null")?;
            Some(None)
        } else {
            read(self).map(Some)
        }
    }

    /// A string without escapes, borrowed.
    #[inline]
    fn str(&mut self) -> Option<&'a str> {
        if self.peek()? != b'"' {
            return None;
        }
        let start = self.at + 1;
        let end = start + find_special(self.bytes().get(start..)?)?;
        // An escape (to decode) or a control character (an error): serde_json's to read.
        if *self.bytes().get(end)? != b'"' {
            return None;
        }
        self.at = end + 1;
        self.text.get(start..end)
    }

    fn text(&mut self) -> Option<Text<'a>> {
        self.str().map(Text::from)
    }

    /// Skips a string, escapes and all. `decoded`: serde would decode it (it reads it as a
    /// `str`), which refuses the UTF-16 surrogate escapes that do not pair up; the reader gives
    /// up on any surrogate escape there. Skipped unread, any four hex digits pass.
    fn skip_str(&mut self, decoded: bool) -> Option<()> {
        self.eat(b'"')?;
        let bytes = self.bytes();
        loop {
            self.at += find_special(bytes.get(self.at..)?)?;
            match *bytes.get(self.at)? {
                b'"' => {
                    self.at += 1;
                    return Some(());
                }
                b'\\' => match *bytes.get(self.at + 1)? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.at += 2,
                    b'u' => {
                        let hex = self.text.get(self.at + 2..self.at + 6)?;
                        let unit = u16::from_str_radix(hex, 16).ok()?;
                        // from_str_radix also takes a sign: only four hex digits are an escape.
                        if !hex.bytes().all(|b| b.is_ascii_hexdigit())
                            || (decoded && (0xD800..=0xDFFF).contains(&unit))
                        {
                            return None;
                        }
                        self.at += 6;
                    }
                    _ => return None,
                },
                // A control character: serde_json refuses it.
                _ => return None,
            }
        }
    }

    /// Skips any value, validating it as serde_json's `IgnoredAny` does.
    fn skip(&mut self) -> Option<()> {
        self.skip_nested(0)
    }

    fn skip_nested(&mut self, depth: u32) -> Option<()> {
        match self.peek()? {
            b'"' => self.skip_str(false),
            b'{' => {
                if depth >= MAX_SKIP_DEPTH {
                    return None;
                }
                self.members(b'{', b'}', |r| {
                    r.skip_str(false)?;
                    r.eat(b':')?;
                    r.skip_nested(depth + 1)
                })
            }
            b'[' => {
                if depth >= MAX_SKIP_DEPTH {
                    return None;
                }
                self.members(b'[', b']', |r| r.skip_nested(depth + 1))
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.skip_number(),
            _ => None,
        }
    }

    /// Skips a number: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
    fn skip_number(&mut self) -> Option<()> {
        let bytes = self.bytes();
        let digits = |at: usize| bytes.get(at..).map_or(0, count_digits);
        let mut at = self.at;
        if bytes.get(at) == Some(&b'-') {
            at += 1;
        }
        match digits(at) {
            0 => return None,
            // There can be only one leading '0'.
            n if n > 1 && bytes.get(at) == Some(&b'0') => return None,
            n => at += n,
        }
        if bytes.get(at) == Some(&b'.') {
            match digits(at + 1) {
                0 => return None,
                n => at += 1 + n,
            }
        }
        if let Some(b'e' | b'E') = bytes.get(at) {
            at += 1;
            if let Some(b'+' | b'-') = bytes.get(at) {
                at += 1;
            }
            match digits(at) {
                0 => return None,
                n => at += n,
            }
        }
        self.at = at;
        Some(())
    }

    /// A non-negative integer in range for `T`, written as one (no fraction, no exponent, no
    /// leading zero). Anything else serde_json refuses or converts: the reader gives up.
    fn int<T: TryFrom<u64>>(&mut self) -> Option<T> {
        self.whitespace();
        let rest = self.bytes().get(self.at..)?;
        let n = count_digits(rest);
        if n == 0 || (n > 1 && rest.first() == Some(&b'0')) {
            return None;
        }
        if let Some(b'.' | b'e' | b'E') = rest.get(n) {
            return None;
        }
        // Past u64, serde_json reads a float: refused for an integer field.
        let value: u64 = self.text.get(self.at..self.at + n)?.parse().ok()?;
        self.at += n;
        T::try_from(value).ok()
    }

    fn bool(&mut self) -> Option<bool> {
        match self.peek()? {
            b't' => self.literal(b"true").map(|()| true),
            b'f' => self.literal(b"false").map(|()| false),
            _ => None,
        }
    }

    /// The members of an object or array opened by `open` and closed by `close`: `member`
    /// reads each one. No trailing comma, as in serde_json.
    fn members(
        &mut self,
        open: u8,
        close: u8,
        mut member: impl FnMut(&mut Self) -> Option<()>,
    ) -> Option<()> {
        self.eat(open)?;
        if self.peek()? == close {
            self.at += 1;
            return Some(());
        }
        loop {
            member(self)?;
            match self.peek()? {
                b',' => self.at += 1,
                b if b == close => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// An object whose keys are read as borrowed strings: `field` reads each value.
    fn object(&mut self, mut field: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
        self.members(b'{', b'}', |r| {
            let key = r.str()?;
            r.eat(b':')?;
            field(r, key)
        })
    }

    fn list<T>(&mut self, mut item: impl FnMut(&mut Self) -> Option<T>) -> Option<Vec<T>> {
        let mut items = Vec::new();
        self.members(b'[', b']', |r| {
            items.push(item(r)?);
            Some(())
        })?;
        Some(items)
    }

    /// A string field that reads `null` (and absence) as empty, as k8s-openapi's required
    /// strings do.
    fn text_or_empty(&mut self) -> Option<Text<'a>> {
        Some(self.nullable(Self::text)?.unwrap_or_default())
    }

    fn review(&mut self) -> Option<ReviewView<'a>> {
        let (mut api_version, mut kind, mut request) = (None, None, None);
        self.object(|r, key| match key {
            "apiVersion" => once(&mut api_version, r.text()?),
            "kind" => once(&mut kind, r.text()?),
            "request" => once(&mut request, r.nullable(Self::request)?),
            _ => r.skip(),
        })?;
        Some(ReviewView {
            api_version: api_version?,
            kind: kind?,
            request: request.flatten(),
        })
    }

    fn request(&mut self) -> Option<RequestView<'a>> {
        let (mut uid, mut kind, mut resource, mut sub_resource) = (None, None, None, None);
        let (mut namespace, mut operation, mut user_info, mut object) = (None, None, None, None);
        self.object(|r, key| match key {
            "uid" => once(&mut uid, r.text()?),
            "kind" => once(&mut kind, r.kind()?),
            "resource" => once(&mut resource, r.skip().map(|()| IgnoredAny)?),
            "subResource" => once(&mut sub_resource, r.nullable(Self::text)?),
            "namespace" => once(&mut namespace, r.nullable(Self::text)?),
            "operation" => once(&mut operation, r.operation()?),
            "userInfo" => once(&mut user_info, r.skip().map(|()| IgnoredAny)?),
            "object" => once(&mut object, r.nullable(Self::job)?),
            _ => r.skip(),
        })?;
        Some(RequestView {
            uid: uid?,
            kind: kind?,
            resource: resource?,
            sub_resource: sub_resource.flatten(),
            namespace: namespace.flatten(),
            operation: operation?,
            user_info: user_info?,
            object: object.flatten(),
        })
    }

    fn kind(&mut self) -> Option<KindView<'a>> {
        let (mut group, mut version, mut kind) = (None, None, None);
        self.object(|r, key| match key {
            "group" => once(&mut group, r.text()?),
            "version" => once(&mut version, r.text()?),
            "kind" => once(&mut kind, r.text()?),
            _ => r.skip(),
        })?;
        Some(KindView {
            group: group?,
            version: version?,
            kind: kind?,
        })
    }

    fn operation(&mut self) -> Option<Operation> {
        Some(match self.str()? {
            "CREATE" => Operation::Create,
            "UPDATE" => Operation::Update,
            "DELETE" => Operation::Delete,
            "CONNECT" => Operation::Connect,
            _ => return None,
        })
    }

    fn job(&mut self) -> Option<JobView<'a>> {
        let (mut metadata, mut spec) = (None, None);
        self.object(|r, key| match key {
            "metadata" => once(&mut metadata, r.nullable(Self::meta)?),
            "spec" => once(&mut spec, r.nullable(Self::job_spec)?),
            _ => r.skip(),
        })?;
        Some(JobView {
            metadata: metadata.flatten(),
            spec: spec.flatten(),
        })
    }

    fn meta(&mut self) -> Option<MetaView<'a>> {
        let (mut namespace, mut annotations) = (None, None);
        self.object(|r, key| match key {
            "namespace" => once(&mut namespace, r.nullable(Self::text)?),
            "annotations" => once(&mut annotations, r.nullable(Self::annotations)?),
            _ => r.skip(),
        })?;
        Some(MetaView {
            namespace: namespace.flatten(),
            annotations: annotations.flatten(),
        })
    }

    /// The annotations under our prefix. Every value must be a string; the others are only
    /// checked as serde would read them, so a `kubectl apply` record full of escapes does not
    /// send the review to serde_json.
    fn annotations(&mut self) -> Option<OurAnnotations<'a>> {
        let mut ours = Vec::new();
        self.object(|r, key| {
            if key.starts_with(PREFIX) {
                ours.push((Text::from(key), r.text()?));
                Some(())
            } else {
                r.skip_str(true)
            }
        })?;
        Some(OurAnnotations::new(ours))
    }

    fn job_spec(&mut self) -> Option<JobSpecView<'a>> {
        let (mut deadline, mut completions, mut parallelism) = (None, None, None);
        let (mut completion_mode, mut template) = (None, None);
        self.object(|r, key| match key {
            "activeDeadlineSeconds" => once(&mut deadline, r.nullable(Self::int::<i64>)?),
            "completions" => once(&mut completions, r.nullable(Self::int::<i32>)?),
            "parallelism" => once(&mut parallelism, r.nullable(Self::int::<i32>)?),
            "completionMode" => once(&mut completion_mode, r.nullable(Self::text)?),
            "template" => once(&mut template, r.nullable(Self::template)?),
            _ => r.skip(),
        })?;
        Some(JobSpecView {
            active_deadline_seconds: deadline.flatten(),
            completions: completions.flatten(),
            parallelism: parallelism.flatten(),
            completion_mode: completion_mode.flatten(),
            template: template.flatten().unwrap_or_default(),
        })
    }

    fn template(&mut self) -> Option<TemplateView<'a>> {
        let (mut metadata, mut spec) = (None, None);
        self.object(|r, key| match key {
            "metadata" => once(&mut metadata, r.nullable(Self::meta)?),
            "spec" => once(&mut spec, r.nullable(Self::pod)?),
            _ => r.skip(),
        })?;
        Some(TemplateView {
            metadata: metadata.flatten(),
            spec: spec.flatten(),
        })
    }

    fn pod(&mut self) -> Option<PodView<'a>> {
        let (mut containers, mut init_containers, mut volumes) = (None, None, None);
        let (mut automount, mut restart_policy) = (None, None);
        self.object(|r, key| match key {
            "containers" => once(&mut containers, r.nullable(|r| r.list(Self::container))?),
            "initContainers" => once(&mut init_containers, r.nullable(|r| r.list(Self::named))?),
            "volumes" => once(&mut volumes, r.nullable(|r| r.list(Self::volume))?),
            "automountServiceAccountToken" => once(&mut automount, r.nullable(Self::bool)?),
            "restartPolicy" => once(&mut restart_policy, r.nullable(Self::text)?),
            _ => r.skip(),
        })?;
        Some(PodView {
            containers: containers.flatten().unwrap_or_default(),
            init_containers: init_containers.flatten(),
            volumes: volumes.flatten(),
            automount_service_account_token: automount.flatten(),
            restart_policy: restart_policy.flatten(),
        })
    }

    fn named(&mut self) -> Option<NamedView<'a>> {
        let mut name = None;
        self.object(|r, key| match key {
            "name" => once(&mut name, r.text_or_empty()?),
            _ => r.skip(),
        })?;
        Some(NamedView {
            name: name.unwrap_or_default(),
        })
    }

    fn container(&mut self) -> Option<ContainerView<'a>> {
        let (mut name, mut env, mut volume_mounts) = (None, None, None);
        self.object(|r, key| match key {
            "name" => once(&mut name, r.text_or_empty()?),
            "env" => once(&mut env, r.nullable(|r| r.list(Self::env))?),
            "volumeMounts" => once(&mut volume_mounts, r.nullable(|r| r.list(Self::mount))?),
            _ => r.skip(),
        })?;
        Some(ContainerView {
            name: name.unwrap_or_default(),
            env: env.flatten(),
            volume_mounts: volume_mounts.flatten(),
        })
    }

    fn env(&mut self) -> Option<EnvView<'a>> {
        let (mut name, mut value) = (None, None);
        self.object(|r, key| match key {
            "name" => once(&mut name, r.text_or_empty()?),
            "value" => once(&mut value, r.nullable(Self::text)?),
            _ => r.skip(),
        })?;
        Some(EnvView {
            name: name.unwrap_or_default(),
            value: value.flatten(),
        })
    }

    fn mount(&mut self) -> Option<MountView<'a>> {
        let (mut name, mut mount_path, mut sub_path) = (None, None, None);
        self.object(|r, key| match key {
            "name" => once(&mut name, r.text_or_empty()?),
            "mountPath" => once(&mut mount_path, r.text_or_empty()?),
            "subPath" => once(&mut sub_path, r.nullable(Self::text)?),
            _ => r.skip(),
        })?;
        Some(MountView {
            name: name.unwrap_or_default(),
            mount_path: mount_path.unwrap_or_default(),
            sub_path: sub_path.flatten(),
        })
    }

    /// A volume, read as [`VolumeView`]'s own `Deserialize` reads it (a repeated field is not
    /// an error there: the last one counts).
    fn volume(&mut self) -> Option<VolumeView<'a>> {
        let mut volume = VolumeView::default();
        self.object(|r, key| {
            if key == "name" {
                volume.name = r.text_or_empty()?;
            } else if VolumeView::is_source(key) {
                let set = r.nullable(Self::skip)?.is_some();
                volume.source_read(Text::from(key), set);
            } else {
                r.skip()?;
            }
            Some(())
        })?;
        Some(volume)
    }
}

fn count_digits(bytes: &[u8]) -> usize {
    bytes.iter().take_while(|b| b.is_ascii_digit()).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both(text: &str) -> (Option<ReviewView<'_>>, Option<ReviewView<'_>>) {
        (review(text), serde_json::from_str(text).ok())
    }

    const MINIMAL: &str = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"group":"batch","version":"v1","kind":"Job"},"resource":{},"operation":"CREATE","userInfo":{},"object":{"metadata":{"annotations":{"status-reporter.hyperfleet.io/inject":"true","x":"a\"b"}},"spec":{"completions":3,"template":{"spec":{"containers":[{"name":"a","env":[{"name":"E","value":"v"}],"volumeMounts":[{"name":"m","mountPath":"/r"}]}],"volumes":[{"name":"m","emptyDir":{}}]}}}}}}"#;

    #[test]
    fn reads_what_serde_json_reads() {
        let (fast, serde) = both(MINIMAL);
        assert!(fast.is_some(), "the reader takes a plain review");
        assert_eq!(fast, serde);
    }

    #[test]
    fn gives_up_where_serde_json_would_decode_or_convert() {
        for (from, to) in [
            // An escape in a string the decision reads.
            (r#""uid":"u""#, r#""uid":"\u0075""#),
            // A negative or fractional integer.
            (r#""completions":3"#, r#""completions":-3"#),
            (r#""completions":3"#, r#""completions":3.0"#),
            // A struct written as an array.
            (
                r#""kind":{"group":"batch","version":"v1","kind":"Job"}"#,
                r#""kind":["batch","v1","Job"]"#,
            ),
            // A repeated field.
            (r#""uid":"u""#, r#""uid":"u","uid":"v""#),
            // A surrogate escape in a value serde decodes.
            (r#""x":"a\"b""#, r#""x":"\ud800""#),
        ] {
            let text = MINIMAL.replacen(from, to, 1);
            assert_ne!(text, MINIMAL);
            assert_eq!(review(&text), None, "{text}");
        }
    }

    #[test]
    fn refuses_what_serde_json_refuses() {
        for (from, to) in [
            (r#""resource":{}"#, r#""resource":{"a":01}"#),
            (r#""resource":{}"#, r#""resource":{"a":1.}"#),
            (r#""resource":{}"#, r#""resource":{"a":1e}"#),
            (r#""resource":{}"#, r#""resource":{"a":-}"#),
            (r#""resource":{}"#, r#""resource":{"a":"\x"}"#),
            (r#""resource":{}"#, r#""resource":{"a":"\u12g4"}"#),
            (r#""resource":{}"#, r#""resource":{"a":"\u+123"}"#),
            (r#""resource":{}"#, r#""resource":{"a":"tab	here"}"#),
            (r#""resource":{}"#, r#""resource":[1,]"#),
            (r#""resource":{}"#, r#""resource":{"a":1,}"#),
            (r#""resource":{}"#, r#""resource":{"a" 1}"#),
            (r#""resource":{}"#, r#""resource":tru"#),
            (r#""resource":{}"#, r#""resource":nulll"#),
            (r#""resource":{}"#, r#""resource":{1:2}"#),
            (r#""userInfo":{}"#, r#""userInfo":{}}"#),
            (r#""uid":"u","#, ""),
        ] {
            let text = MINIMAL.replacen(from, to, 1);
            assert_ne!(text, MINIMAL);
            let (fast, serde) = both(&text);
            assert_eq!((fast, serde.is_some()), (None, false), "{text}");
        }
        assert_eq!(review(&format!("{MINIMAL} x")), None);
        assert!(review(&format!(" \n{MINIMAL}\t\r\n")).is_some());
    }

    #[test]
    fn skipped_values_keep_serde_json_s_leniency() {
        // Unpaired surrogates in a value nobody decodes, deep nesting, every number form.
        let skipped = r#"{"a":"\ud800","b":[[[[{"c":[-0.5e+3,0,1E9,true,false,null]}]]]]}"#;
        let text = MINIMAL.replacen(r#""resource":{}"#, &format!(r#""resource":{skipped}"#), 1);
        let (fast, serde) = both(&text);
        assert!(fast.is_some());
        assert_eq!(fast, serde);
        // Exactly MAX_SKIP_DEPTH brackets are skipped here, objects and arrays alike.
        let depth = MAX_SKIP_DEPTH as usize;
        let deepest = format!(
            "{}1{}",
            r#"{"a":["#.repeat(depth / 2),
            "]}".repeat(depth / 2)
        );
        let text = MINIMAL.replacen(r#""resource":{}"#, &format!(r#""resource":{deepest}"#), 1);
        let (fast, serde) = both(&text);
        assert!(fast.is_some(), "{MAX_SKIP_DEPTH} brackets deep");
        assert_eq!(fast, serde);
        let deep = format!("{}{}", "[".repeat(depth + 1), "]".repeat(depth + 1));
        let text = MINIMAL.replacen(r#""resource":{}"#, &format!(r#""resource":{deep}"#), 1);
        assert_eq!(review(&text), None, "one bracket past MAX_SKIP_DEPTH");
        let deep = format!("{}{}", "[".repeat(70), "]".repeat(70));
        let text = MINIMAL.replacen(r#""resource":{}"#, &format!(r#""resource":{deep}"#), 1);
        let (fast, serde) = both(&text);
        assert_eq!(
            (fast, serde.is_some()),
            (None, true),
            "past MAX_SKIP_DEPTH serde_json reads it"
        );
    }
}
