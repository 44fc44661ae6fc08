//! A Prometheus API answer read as it arrives. Each series of its result is cut out of the
//! bytes as soon as its last byte is in, parsed (borrowing its labels from those bytes) and
//! handed over, then dropped: an answer is never held whole (at 10,000 SLOs the largest is
//! 25 MiB of JSON). The rest of the answer, its status, result type, warnings or error, is kept
//! and read at the end, with any series that could not be cut out (the answer is then read as
//! a whole, only held longer).

use serde::Deserialize;

use super::queries::{Group, Series, Split};

/// Reads a whole answer at once into `split`: the series of a record query (`group`) or of the
/// firing-alerts query (`None`). Returns Prometheus' warnings, or why the answer is unusable.
pub fn take(
    split: &mut Split,
    group: Option<Group>,
    status: reqwest::StatusCode,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Vec<String>, String> {
    let mut reading = Reading::new(status, content_type)?;
    reading.push(body, &mut into(split, group))?;
    reading.finish(&mut into(split, group))
}

/// What reads a series of an answer into `split`: a record (of `group`) or a firing alert.
pub fn into(split: &mut Split, group: Option<Group>) -> impl FnMut(&Series) + '_ {
    move |s| match group {
        Some(g) => split.record(s, g),
        None => split.alert(s),
    }
}

/// At most this much of an answer is held at once: the series being read and the envelope.
const HELD_AT_MOST: usize = 64 << 20;

/// An error answer is read this far for its own words (Prometheus' are a line long).
const ERROR_BODY_READ: usize = 64 * 1024;

/// One answer being read, chunk by chunk.
pub struct Reading {
    status: reqwest::StatusCode,
    content_type: Option<String>,
    /// The bytes received and not yet cut out, kept or skipped.
    pending: Vec<u8>,
    /// The answer without the series cut out of it, read at the end.
    envelope: Vec<u8>,
    scan: Scan,
}

/// Where the scan of an answer is: just enough of JSON's grammar to find `data.result` and
/// the ends of its elements (strings and their escapes, nesting, and the keys of the two outer
/// objects).
#[derive(Default)]
struct Scan {
    /// The next byte to scan, in `pending`.
    at: usize,
    /// How many objects and arrays are open.
    depth: usize,
    in_string: bool,
    escaped: bool,
    /// Where a key of one of the two outer objects starts, in `pending`, while it is read.
    key_start: Option<usize>,
    /// The root object and the object under it.
    levels: [Level; 2],
    /// Whether the scan is inside `data.result` and cutting its series out.
    in_result: bool,
    /// Where the series being read starts, in `pending`.
    series_start: Option<usize>,
    /// Series cut out so far.
    cut: usize,
    /// Whether the last thing in the result was a series (a comma or the end comes next).
    after_series: bool,
    /// From where the bytes scanned belong to the envelope, in `pending` (`None` inside the
    /// result, whose series are cut out and separators dropped).
    keep_from: Option<usize>,
}

#[derive(Clone, Copy, Default)]
struct Level {
    object: bool,
    /// Whether the next string is a key (after `{` or `,`).
    expect_key: bool,
    /// The key whose value is being read.
    key: Key,
}

#[derive(Clone, Copy, Default, PartialEq, Eq)]
enum Key {
    #[default]
    Other,
    Data,
    Result,
}

fn is_json(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|c| c.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

/// Why an answer that is not the Prometheus API's is refused (a web UI, a proxy's page).
fn not_the_api(content_type: Option<&str>) -> String {
    format!(
        "the answer is not the Prometheus API's (Content-Type {}); does the URL have the API's path \
         prefix, e.g. /prometheus?",
        content_type.unwrap_or("none")
    )
}

fn cannot(e: &serde_json::Error) -> String {
    format!("cannot read the answer: {e}")
}

impl Reading {
    /// Starts reading an answer with `status` and `content_type`; refuses one that is not the
    /// Prometheus API's at all.
    pub fn new(status: reqwest::StatusCode, content_type: Option<&str>) -> Result<Self, String> {
        if status.is_success() && !is_json(content_type) {
            return Err(not_the_api(content_type));
        }
        Ok(Self {
            status,
            content_type: content_type.map(str::to_string),
            pending: Vec::new(),
            envelope: Vec::new(),
            scan: Scan {
                keep_from: Some(0),
                ..Scan::default()
            },
        })
    }

    /// Reads the next bytes of the answer, handing each series completed by them to `each`.
    /// An error answer's start is kept for its words; past that it refuses at once.
    pub fn push(&mut self, chunk: &[u8], each: &mut impl FnMut(&Series)) -> Result<(), String> {
        if !self.status.is_success() {
            let room = ERROR_BODY_READ.saturating_sub(self.pending.len());
            self.pending.extend_from_slice(&chunk[..room.min(chunk.len())]);
            return if self.pending.len() >= ERROR_BODY_READ {
                Err(refusal(
                    self.status,
                    is_json(self.content_type.as_deref()),
                    &self.pending,
                ))
            } else {
                Ok(())
            };
        }
        self.pending.extend_from_slice(chunk);
        self.scan(each)?;
        // Keep what is still needed: the series being read, or a key being read.
        let s = &mut self.scan;
        if let Some(from) = s.keep_from {
            self.envelope.extend_from_slice(&self.pending[from..s.at]);
            s.keep_from = Some(s.at);
        }
        let keep = [s.series_start, s.key_start, s.keep_from]
            .into_iter()
            .flatten()
            .fold(s.at, usize::min);
        self.pending.drain(..keep);
        s.at -= keep;
        for index in [&mut s.series_start, &mut s.key_start, &mut s.keep_from]
            .into_iter()
            .flatten()
        {
            *index -= keep;
        }
        // A series of our records is a few hundred bytes and the envelope a few more: this
        // much held at once is not an answer to our queries (or not one worth holding).
        if self.pending.len().saturating_add(self.envelope.len()) > HELD_AT_MOST {
            return Err(format!(
                "cannot read the answer: more than {} MiB of it would be held at once (a series or \
                 the answer's envelope that large is not one of slo-warden's records)",
                HELD_AT_MOST >> 20
            ));
        }
        Ok(())
    }

    /// Scans the pending bytes, cutting out each series that ends in them.
    fn scan(&mut self, each: &mut impl FnMut(&Series)) -> Result<(), String> {
        let s = &mut self.scan;
        while s.at < self.pending.len() {
            let i = s.at;
            let b = self.pending[i];
            s.at += 1;
            if s.in_string {
                if s.escaped {
                    s.escaped = false;
                } else if b == b'\\' {
                    s.escaped = true;
                } else if b == b'"' {
                    s.in_string = false;
                    if let Some(start) = s.key_start.take() {
                        let level = &mut s.levels[s.depth - 1];
                        level.expect_key = false;
                        level.key = match (s.depth, &self.pending[start..i]) {
                            (1, b"data") => Key::Data,
                            (2, b"result") => Key::Result,
                            _ => Key::Other,
                        };
                    }
                } else {
                    // Skip to the string's next quote or backslash.
                    let rest = &self.pending[s.at..];
                    s.at += rest
                        .iter()
                        .position(|c| *c == b'"' || *c == b'\\')
                        .unwrap_or(rest.len());
                }
                continue;
            }
            if s.in_result && s.depth == 3 && s.series_start.is_none() {
                // Between the series: whitespace, and one comma after each but the last.
                match b {
                    b' ' | b'\t' | b'\n' | b'\r' => {}
                    b',' if s.after_series => s.after_series = false,
                    b']' if s.after_series || s.cut == 0 => {}
                    b'{' if !s.after_series => s.series_start = Some(i),
                    _ if s.cut == 0 => {
                        // Not a list of series: kept whole, for the envelope to say what it is.
                        s.in_result = false;
                        s.keep_from = Some(i);
                    }
                    _ => return Err("cannot read the answer: its result is not a list of series".to_string()),
                }
            }
            match b {
                b'"' => {
                    s.in_string = true;
                    if (1..=2).contains(&s.depth) {
                        let level = s.levels[s.depth - 1];
                        if level.object && level.expect_key {
                            s.key_start = Some(s.at);
                        }
                    }
                }
                b'{' | b'[' => {
                    if b == b'['
                        && s.depth == 2
                        && s.levels[0].object
                        && s.levels[0].key == Key::Data
                        && s.levels[1].object
                        && s.levels[1].key == Key::Result
                        && !s.levels[1].expect_key
                    {
                        // The result: what came before it (and its bracket) is the envelope's.
                        if let Some(from) = s.keep_from.take() {
                            self.envelope.extend_from_slice(&self.pending[from..=i]);
                        }
                        s.in_result = true;
                    }
                    s.depth += 1;
                    if s.depth <= 2 {
                        s.levels[s.depth - 1] = Level {
                            object: b == b'{',
                            expect_key: b == b'{',
                            key: Key::Other,
                        };
                    }
                }
                b'}' | b']' => {
                    // Unbalanced brackets are left for the envelope's parse to refuse.
                    s.depth = s.depth.saturating_sub(1);
                    if s.in_result
                        && s.depth == 3
                        && b == b'}'
                        && let Some(start) = s.series_start.take()
                    {
                        series(&self.pending[start..=i], each)?;
                        s.cut += 1;
                        s.after_series = true;
                    } else if s.in_result && s.depth == 2 {
                        s.in_result = false;
                        s.keep_from = Some(i);
                    }
                }
                b',' if (1..=2).contains(&s.depth) && s.levels[s.depth - 1].object => {
                    s.levels[s.depth - 1].expect_key = true;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Reads the rest of the answer (any series not cut out go to `each`), and returns its
    /// warnings, or why it is unusable.
    pub fn finish(self, each: &mut impl FnMut(&Series)) -> Result<Vec<String>, String> {
        let status = self.status;
        if !status.is_success() {
            return Err(refusal(status, is_json(self.content_type.as_deref()), &self.pending));
        }
        let mut envelope = Envelope::default();
        let mut rest = self.envelope;
        if let Some(from) = self.scan.keep_from {
            rest.extend_from_slice(&self.pending[from..]);
        } else {
            // Cut off inside the result: the parse below says where.
            rest.extend_from_slice(&self.pending[self.scan.series_start.unwrap_or(self.scan.at)..]);
        }
        let mut reader = serde_json::Deserializer::from_slice(&rest);
        serde::de::DeserializeSeed::deserialize(
            EnvelopeSeed {
                each,
                out: &mut envelope,
            },
            &mut reader,
        )
        .map_err(|e| cannot(&e))?;
        reader.end().map_err(|e| cannot(&e))?;
        if let Some(error) = envelope.error {
            return Err(format!(
                "HTTP {status}: {}: {error}",
                envelope.error_type.as_deref().unwrap_or("error")
            ));
        }
        if envelope.status.as_deref() != Some("success") || !envelope.data {
            return Err(not_the_api(self.content_type.as_deref()));
        }
        match envelope.result_type.as_deref() {
            Some("matrix") if envelope.result_read => Ok(envelope.warnings),
            Some("matrix") => Err("cannot read the answer: missing field `result`".to_string()),
            Some(other) => Err(format!(
                "unexpected answer: {}",
                match other {
                    "vector" => "an instant vector",
                    "scalar" => "a scalar",
                    "string" => "a string",
                    other => other,
                }
            )),
            None => Err("cannot read the answer: missing field `resultType`".to_string()),
        }
    }
}

/// Parses one series cut out of an answer and hands it over.
fn series(bytes: &[u8], each: &mut impl FnMut(&Series)) -> Result<(), String> {
    let mut reader = serde_json::Deserializer::from_slice(bytes);
    let series = Series::deserialize(&mut reader).map_err(|e| cannot(&e))?;
    reader.end().map_err(|e| cannot(&e))?;
    each(&series);
    Ok(())
}

/// What the Prometheus API's envelope said, besides the series.
#[derive(Default)]
struct Envelope {
    status: Option<String>,
    /// Whether `data` was there and not null.
    data: bool,
    result_type: Option<String>,
    /// Whether the result was read as a list of series.
    result_read: bool,
    error_type: Option<String>,
    error: Option<String>,
    warnings: Vec<String>,
}

/// Why an answer with an error status is refused, in its own words where it has some.
fn refusal(status: reqwest::StatusCode, is_json: bool, start: &[u8]) -> String {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct ApiError {
        error_type: Option<String>,
        error: Option<String>,
    }
    let said = is_json
        .then(|| serde_json::from_slice::<ApiError>(start).ok())
        .flatten();
    match said {
        Some(ApiError {
            error_type,
            error: Some(error),
        }) => format!("HTTP {status}: {}: {error}", error_type.as_deref().unwrap_or("error")),
        _ if status == reqwest::StatusCode::NOT_FOUND => format!(
            "HTTP {status}{}; does the URL have the API's path prefix, if any (e.g. /prometheus)?",
            snippet(start)
        ),
        _ => format!("HTTP {status}{}", snippet(start)),
    }
}

/// The API's envelope, read key by key so that the series are handed over as they are parsed.
struct EnvelopeSeed<'e, F> {
    each: &'e mut F,
    out: &'e mut Envelope,
}

impl<'de, F: FnMut(&Series)> serde::de::DeserializeSeed<'de> for EnvelopeSeed<'_, F> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, F: FnMut(&Series)> serde::de::Visitor<'de> for EnvelopeSeed<'_, F> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("the Prometheus API's answer")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "status" => self.out.status = map.next_value()?,
                "data" => map.next_value_seed(DataSeed {
                    each: &mut *self.each,
                    out: &mut *self.out,
                })?,
                "errorType" => self.out.error_type = map.next_value()?,
                "error" => self.out.error = map.next_value()?,
                "warnings" => self.out.warnings = map.next_value::<Option<Vec<String>>>()?.unwrap_or_default(),
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// The answer's `data`: its result type, then (Prometheus writes them in this order) its
/// series, each handed over as it is parsed; a result of another type is skipped.
struct DataSeed<'e, F> {
    each: &'e mut F,
    out: &'e mut Envelope,
}

impl<'de, F: FnMut(&Series)> serde::de::DeserializeSeed<'de> for DataSeed<'_, F> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de, F: FnMut(&Series)> serde::de::Visitor<'de> for DataSeed<'_, F> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("the answer's data")
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.out.data = true;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "resultType" => self.out.result_type = Some(map.next_value()?),
                "result" if self.out.result_type.as_deref().is_none_or(|t| t == "matrix") => {
                    map.next_value_seed(EachSeries(&mut *self.each))?;
                    self.out.result_read = true;
                }
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// A list of series, each handed over as it is parsed.
struct EachSeries<F>(F);

impl<'de, F: FnMut(&Series)> serde::de::DeserializeSeed<'de> for EachSeries<F> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, F: FnMut(&Series)> serde::de::Visitor<'de> for EachSeries<F> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of series")
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        while let Some(series) = seq.next_element::<Series<'de>>()? {
            (self.0)(&series);
        }
        Ok(())
    }
}

/// The start of an error body, e.g. Mimir's `no org id`, on one line.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.is_empty() {
        return String::new();
    }
    let short: String = line.chars().take(200).collect();
    let more = if short.len() < line.len() { "..." } else { "" };
    format!(": {short}{more}")
}

/// A range query's answer of one series (or none: an empty list), as (Unix seconds, value)
/// points; values that are not numbers (`NaN`, `+Inf`) are left out. An error answer gives
/// Prometheus' own words; more than one series is refused, naming how many.
pub fn range(status: reqwest::StatusCode, body: &[u8]) -> Result<Vec<(i64, f64)>, String> {
    #[derive(serde::Deserialize)]
    struct Answer {
        status: Option<String>,
        error: Option<String>,
        data: Option<Data>,
    }
    #[derive(serde::Deserialize)]
    struct Data {
        result: Vec<Series>,
    }
    #[derive(serde::Deserialize)]
    struct Series {
        values: Vec<(f64, String)>,
    }
    let answer: Answer = serde_json::from_slice(body).map_err(|e| {
        if status.is_success() {
            format!("the answer is not the Prometheus API's: {e}")
        } else {
            format!("HTTP {status}")
        }
    })?;
    if answer.status.as_deref() != Some("success") || !status.is_success() {
        return Err(format!(
            "HTTP {status}: {}",
            answer.error.as_deref().unwrap_or("no error given")
        ));
    }
    let mut result = answer.data.map(|d| d.result).unwrap_or_default();
    match result.len() {
        0 => Ok(Vec::new()),
        1 => Ok(result
            .remove(0)
            .values
            .into_iter()
            .filter_map(|(t, v)| Some((t as i64, v.parse::<f64>().ok().filter(|v| v.is_finite())?)))
            .collect()),
        n => Err(format!("{n} series answer where one was expected")),
    }
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;
    use proptest::prelude::*;

    use super::*;

    const OK: reqwest::StatusCode = reqwest::StatusCode::OK;
    const JSON: Option<&str> = Some("application/json; charset=utf-8");

    /// Reads `body` in chunks of the given sizes (cycled; the whole body at once when empty):
    /// every series handed over (described), what the answer came to, and how many series
    /// were cut out as they arrived.
    fn read(body: &[u8], sizes: &[usize]) -> (Vec<String>, Result<Vec<String>, String>, usize) {
        let mut seen = Vec::new();
        let mut each = |s: &Series| seen.push(format!("{s:?}"));
        let mut reading = Reading::new(OK, JSON).unwrap();
        let mut rest = body;
        let mut sizes = sizes.iter().copied().cycle();
        let outcome = loop {
            if rest.is_empty() {
                let cut = reading.scan.cut;
                break (reading.finish(&mut each), cut);
            }
            let n = sizes.next().unwrap_or(rest.len()).clamp(1, rest.len());
            if let Err(e) = reading.push(&rest[..n], &mut each) {
                break (Err(e), reading.scan.cut);
            }
            // Nothing is held but what a series or key being read needs.
            assert!(reading.pending.len() <= 400, "{} bytes pending", reading.pending.len());
            rest = &rest[n..];
        };
        (
            seen.into_iter().map(|s| s.replace("Borrowed", "Owned")).collect(),
            outcome.0,
            outcome.1,
        )
    }

    fn series(i: usize, value: &str) -> String {
        format!(
            r#"{{"metric":{{"__name__":"slo:sli_error:ratio_rate5m","namespace":"ns","slo":"s{i}","slo_warden":"ns/s{i}"}},"values":[[1700000000,"0.1"],[1700000060,"{value}"]]}}"#
        )
    }

    #[test]
    fn series_are_cut_out_as_they_arrive_and_the_envelope_is_read_at_the_end() {
        let all: Vec<String> = (0..50).map(|i| series(i, "0.002")).collect();
        let body = format!(
            r#"{{"status":"success","data":{{"resultType":"matrix","result":[{}]}},"warnings":["w1"]}}"#,
            all.join(",")
        );
        let (whole, outcome, _) = read(body.as_bytes(), &[]);
        assert_eq!(whole.len(), 50);
        assert_eq!(outcome, Ok(vec!["w1".to_string()]));
        for sizes in [&[1][..], &[7, 3, 100], &[4096]] {
            let (seen, chunked, cut) = read(body.as_bytes(), sizes);
            assert_eq!((seen, chunked, cut), (whole.clone(), outcome.clone(), 50), "{sizes:?}");
        }
    }

    #[test]
    fn envelopes_in_any_order_and_odd_spellings_read_alike() {
        let two = format!("{},{}", series(1, "1"), series(2, "2"));
        for (body, want, cut) in [
            // Status and warnings after the data, whitespace, a stats object before the result.
            (
                format!(
                    r#"{{ "data" : {{ "stats" : {{"result": [1]}}, "resultType" : "matrix" , "result" : [ {two} ] }} , "status":"success", "warnings":[] }}"#
                ),
                Ok(vec![]),
                2,
            ),
            // The result before its type.
            (
                format!(r#"{{"status":"success","data":{{"result":[{two}],"resultType":"matrix"}}}}"#),
                Ok(vec![]),
                2,
            ),
            // An escaped key is not recognised: the answer is read whole, to the same effect.
            (
                format!(r#"{{"status":"success","data":{{"resultType":"matrix","res\u0075lt":[{two}]}}}}"#),
                Ok(vec![]),
                0,
            ),
            // Brackets, quotes and escapes inside label values.
            (
                r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"slo":"a}]\"{[","namespace":"x\\"},"values":[[1,"1"]]}]}}"#.to_string(),
                Ok(vec![]),
                1,
            ),
            // A key named result, but not data's.
            (
                r#"{"status":"success","result":[{"a":1}],"data":{"resultType":"matrix","result":[]}}"#.to_string(),
                Ok(vec![]),
                0,
            ),
            (
                r#"{"status":"success","data":{"resultType":"scalar","result":[1700000000,"1"]}}"#.to_string(),
                Err("unexpected answer: a scalar".to_string()),
                0,
            ),
            (
                r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{}},1]}}"#.to_string(),
                Err("cannot read the answer: its result is not a list of series".to_string()),
                1,
            ),
            // Separators are checked as a whole parse would: a missing comma, a trailing one.
            (
                format!(r#"{{"status":"success","data":{{"resultType":"matrix","result":[{} {}]}}}}"#, series(1, "1"), series(2, "2")),
                Err("cannot read the answer: its result is not a list of series".to_string()),
                1,
            ),
            (
                format!(r#"{{"status":"success","data":{{"resultType":"matrix","result":[{},]}}}}"#, series(1, "1")),
                Err("cannot read the answer: its result is not a list of series".to_string()),
                1,
            ),
            (
                r#"{"status":"error","errorType":"bad_data","error":"parse error"}"#.to_string(),
                Err("HTTP 200 OK: bad_data: parse error".to_string()),
                0,
            ),
            (
                r#"{"status":"success","data":null}"#.to_string(),
                Err("the answer is not the Prometheus API's (Content-Type application/json; charset=utf-8); does the URL have the API's path prefix, e.g. /prometheus?".to_string()),
                0,
            ),
        ] {
            let (whole, outcome, _) = read(body.as_bytes(), &[]);
            assert_eq!(outcome, want, "{body}");
            let (seen, chunked, cut_chunked) = read(body.as_bytes(), &[1]);
            assert_eq!((&seen, &chunked, cut_chunked), (&whole, &want, cut), "{body}");
        }
    }

    #[test]
    fn answers_cut_short_or_broken_are_refused() {
        let body = format!(
            r#"{{"status":"success","data":{{"resultType":"matrix","result":[{},{}]}}}}"#,
            series(1, "1"),
            series(2, "2")
        );
        for end in [10, 60, body.len() - 40, body.len() - 2] {
            let (_, outcome, _) = read(&body.as_bytes()[..end], &[5]);
            let e = outcome.unwrap_err();
            assert!(e.starts_with("cannot read the answer: EOF while parsing"), "{end}: {e}");
        }
        let bad = body.replace(r#""2"]"#, r#""fast"]"#);
        let (seen, outcome, _) = read(bad.as_bytes(), &[9]);
        assert_eq!(seen.len(), 1);
        assert!(
            outcome
                .unwrap_err()
                .starts_with("cannot read the answer: \"fast\" is not a sample value"),
        );
    }

    #[test]
    fn an_answer_that_would_be_held_whole_past_the_bound_is_refused() {
        // One endless series: nothing can be cut out of it, and it is not held past the bound.
        let mut reading = Reading::new(OK, JSON).unwrap();
        let start = br#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"slo":""#;
        reading.push(start, &mut |_: &Series| {}).unwrap();
        let chunk = vec![b'x'; 1 << 20];
        let mut pushed = 0;
        let e = loop {
            match reading.push(&chunk, &mut |_: &Series| {}) {
                Ok(()) => pushed += 1,
                Err(e) => break e,
            }
            assert!(pushed <= 64, "still reading after {pushed} MiB");
        };
        assert!(e.starts_with("cannot read the answer: more than 64 MiB"), "{e}");
    }

    #[test]
    fn error_answers_keep_their_words_and_stop_early() {
        let status = reqwest::StatusCode::SERVICE_UNAVAILABLE;
        let mut reading = Reading::new(status, Some("text/plain")).unwrap();
        reading.push(b"too many ", &mut |_: &Series| {}).unwrap();
        reading.push(b"queries\n", &mut |_: &Series| {}).unwrap();
        assert_eq!(
            reading.finish(&mut |_: &Series| {}).unwrap_err(),
            "HTTP 503 Service Unavailable: too many queries"
        );
        // A long one is not read to its end.
        let mut reading = Reading::new(status, Some("text/plain")).unwrap();
        let big = vec![b'x'; ERROR_BODY_READ];
        let e = reading.push(&big, &mut |_: &Series| {}).unwrap_err();
        assert!(
            e.starts_with("HTTP 503 Service Unavailable: xxx") && e.ends_with("..."),
            "{e}"
        );
        assert_eq!(reading.pending.len(), ERROR_BODY_READ);
        // A successful answer that is not JSON is refused before its body is read.
        let e = Reading::new(OK, Some("text/html")).err().unwrap();
        assert!(e.contains("not the Prometheus API's (Content-Type text/html)"), "{e}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Whatever the chunks, and whatever the label values hold, an answer reads as it does
        /// whole, and every series is cut out as it arrives.
        #[test]
        fn any_chunking_reads_as_the_whole(
            values in proptest::collection::vec("[ -~\u{e9}\u{1F600}]{0,12}", 0..8),
            sizes in proptest::collection::vec(1usize..40, 1..6),
        ) {
            let all: Vec<String> = values
                .iter()
                .enumerate()
                .map(|(i, v)| format!(
                    r#"{{"metric":{{"slo":{},"k{i}":"v"}},"values":[[1,"{i}"]]}}"#,
                    serde_json::to_string(v).unwrap()
                ))
                .collect();
            let body = format!(
                r#"{{"status":"success","data":{{"resultType":"matrix","result":[{}]}},"warnings":[{}]}}"#,
                all.join(","),
                serde_json::to_string(&values.concat()).unwrap()
            );
            let (whole, outcome, _) = read(body.as_bytes(), &[]);
            prop_assert_eq!(whole.len(), values.len());
            prop_assert_eq!(&outcome, &Ok(vec![values.concat()]));
            let (seen, chunked, cut) = read(body.as_bytes(), &sizes);
            prop_assert_eq!((seen, chunked, cut), (whole, outcome, values.len()));
        }
    }

    #[test]
    fn a_range_answer_gives_one_series_points_and_refuses_more() {
        let ok = reqwest::StatusCode::OK;
        let one = br#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"slo":"a"},"values":[[1700000000,"0.5"],[1700000060,"NaN"],[1700000120.5,"0.25"]]}]}}"#;
        assert_eq!(range(ok, one).unwrap(), [(1_700_000_000, 0.5), (1_700_000_120, 0.25)]);
        let none = br#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
        assert_eq!(range(ok, none).unwrap(), []);
        let two = br#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[]},{"metric":{},"values":[]}]}}"#;
        assert_eq!(range(ok, two).unwrap_err(), "2 series answer where one was expected");
        let error = br#"{"status":"error","errorType":"bad_data","error":"parse error at char 3"}"#;
        assert_eq!(
            range(reqwest::StatusCode::BAD_REQUEST, error).unwrap_err(),
            "HTTP 400 Bad Request: parse error at char 3"
        );
        assert_eq!(
            range(reqwest::StatusCode::BAD_GATEWAY, b"<html>").unwrap_err(),
            "HTTP 502 Bad Gateway"
        );
        assert!(
            range(ok, b"<html>")
                .unwrap_err()
                .starts_with("the answer is not the Prometheus API's")
        );
    }
}
