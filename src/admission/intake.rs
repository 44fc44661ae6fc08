//! How the webhook reads a review: whole, within a body limit, a deadline and a memory budget.
//! A review it cannot read whole (too large, cut short, malformed, or no memory to spare now)
//! is refused with an answer carrying its uid, so even `failurePolicy: Ignore` cannot turn it
//! into an allow; only a body without a readable uid gets a bare HTTP error.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use kube::api::DynamicObject;
use kube::core::admission::{AdmissionResponse, AdmissionReview};
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::serving::Limits;

/// The largest review read whole. The API server takes request bodies of up to 3 MiB, and a
/// review of an update carries the object as sent and the stored oldObject (at most as large
/// again), plus a small envelope: 2 × 3 MiB + 1 MiB.
pub const BODY_LIMIT: usize = 7 * 1024 * 1024;

/// What is kept of a body over [`BODY_LIMIT`]: the API server writes `request.uid` first.
const PREFIX: usize = 16 * 1024;

/// Reviews up to this size (nearly all: a Deployment is a few KiB) are read without drawing on
/// the [`Budget`], so a flood of large ones never delays them.
const SMALL: usize = 64 * 1024;

/// Body bytes of large reviews being read or judged at once (raw bytes; parsed, a review of
/// many labels takes about 2.4 times its size more). Beyond it a large review is refused at
/// once, with its uid, rather than queued. Room for the largest the API server sends, and
/// small enough that a flood of them parses on few threads (bench/README.md).
pub const BUDGET_BYTES: usize = 8 * 1024 * 1024;

/// Large reviews parsed at once.
static LARGE_PARSER: Semaphore = Semaphore::const_new(1);

/// The webhook's server limits. The API server gives a webhook at most 30 s (the chart: 5 s);
/// a review that takes longer is answered too late to count.
pub const LIMITS: Limits = Limits {
    headers: Duration::from_secs(5),
    body: Duration::from_secs(5),
    request: Duration::from_secs(10),
    concurrent: 64,
    body_bytes: BODY_LIMIT,
};

/// Memory for large reviews, in KiB permits.
#[derive(Clone)]
pub struct Budget(Arc<Semaphore>);

impl Default for Budget {
    fn default() -> Self {
        Self::of(BUDGET_BYTES)
    }
}

impl Budget {
    /// A budget of `bytes` for large reviews.
    pub fn of(bytes: usize) -> Self {
        Self(Arc::new(Semaphore::new(bytes / 1024)))
    }
}

/// A review read whole, and the part of the budget it holds until answered.
pub struct Read {
    pub review: AdmissionReview<DynamicObject>,
    _permit: Option<OwnedSemaphorePermit>,
}

/// Why a review was refused unread (the metrics' `result` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unread {
    TooLarge,
    Busy,
    Malformed,
}

impl Unread {
    pub fn label(self) -> &'static str {
        match self {
            Self::TooLarge => "refused_too_large",
            Self::Busy => "refused_busy",
            Self::Malformed => "refused_unreadable",
        }
    }
}

pub struct Refused {
    pub why: Unread,
    pub response: Response,
}

/// Reads a review from `body`, or the answer refusing it.
pub async fn read(budget: &Budget, headers: &HeaderMap, body: Body) -> Result<Read, Refused> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if let Some(size) = declared.filter(|s| *s > BODY_LIMIT) {
        let (prefix, _) = collect(body, PREFIX).await;
        return Err(refuse(
            Unread::TooLarge,
            uid_of(&prefix),
            format!(
                "the AdmissionReview is {size} bytes, over the webhook's limit of {BODY_LIMIT}; \
                 refused, since slo-warden cannot read it whole"
            ),
        ));
    }
    // A body of unknown length may be as large as the limit.
    let size = declared.unwrap_or(BODY_LIMIT);
    let permit = if size > SMALL {
        let kib = u32::try_from(size.div_ceil(1024)).unwrap_or(u32::MAX);
        match budget.0.clone().try_acquire_many_owned(kib) {
            Ok(p) => Some(p),
            Err(_) => {
                let (prefix, _) = collect(body, PREFIX).await;
                return Err(refuse(
                    Unread::Busy,
                    uid_of(&prefix),
                    format!(
                        "slo-warden is busy reading other large reviews and cannot check this one \
                         ({size} bytes) now; refused, try again"
                    ),
                ));
            }
        }
    } else {
        None
    };
    let (bytes, complete) = collect(body, BODY_LIMIT).await;
    match complete {
        Ok(()) => {}
        Err(Cut::TooLarge) => {
            return Err(refuse(
                Unread::TooLarge,
                uid_of(&bytes),
                format!(
                    "the AdmissionReview is over the webhook's limit of {BODY_LIMIT} bytes; \
                     refused, since slo-warden cannot read it whole"
                ),
            ));
        }
        Err(Cut::Failed(e)) => {
            return Err(refuse(
                Unread::Malformed,
                uid_of(&bytes),
                format!("the AdmissionReview could not be read whole ({}); refused", quote(&e)),
            ));
        }
    }
    let parse = |bytes: Vec<u8>| {
        let parsed = serde_json::from_slice::<AdmissionReview<DynamicObject>>(&bytes);
        (bytes, parsed)
    };
    // A large review takes milliseconds of CPU to parse: off the async workers, so the small
    // ones on them are not kept waiting.
    let (bytes, parsed) = if permit.is_some() {
        // One at a time: the other core stays with the small reviews.
        let Ok(_parser) = LARGE_PARSER.acquire().await else {
            return Err(refuse(
                Unread::Busy,
                uid_of(&bytes),
                "slo-warden is shutting down; refused".into(),
            ));
        };
        match tokio::task::spawn_blocking(move || parse(bytes)).await {
            Ok(done) => done,
            Err(e) => {
                return Err(refuse(
                    Unread::Malformed,
                    None,
                    format!("the AdmissionReview could not be parsed ({e}); refused"),
                ));
            }
        }
    } else {
        parse(bytes)
    };
    match parsed {
        Ok(review) => Ok(Read {
            review,
            _permit: permit,
        }),
        Err(e) => Err(refuse(
            Unread::Malformed,
            uid_of(&bytes),
            format!("the AdmissionReview cannot be read: {}; refused", quote(&e.to_string())),
        )),
    }
}

enum Cut {
    TooLarge,
    Failed(String),
}

/// The body up to `limit` bytes; what is over it is not read.
async fn collect(body: Body, limit: usize) -> (Vec<u8>, Result<(), Cut>) {
    let mut bytes = Vec::new();
    let mut chunks = body.into_data_stream();
    while let Some(chunk) = chunks.next().await {
        let data = match chunk {
            Ok(d) => d,
            Err(e) => return (bytes, Err(Cut::Failed(e.to_string()))),
        };
        if bytes.len() + data.len() > limit {
            let room = limit - bytes.len();
            bytes.extend_from_slice(&data[..room]);
            return (bytes, Err(Cut::TooLarge));
        }
        bytes.extend_from_slice(&data);
    }
    (bytes, Ok(()))
}

/// At most about 100 characters of a message that may quote the request.
fn quote(s: &str) -> String {
    crate::api::bounds::cut(s, crate::api::bounds::QUOTE_LEN)
}

fn refuse(why: Unread, uid: Option<String>, message: String) -> Refused {
    tracing::warn!(
        uid = uid.as_deref().unwrap_or_default(),
        reason = why.label(),
        "{message}"
    );
    let response = match uid {
        Some(uid) => {
            let mut answer = AdmissionResponse::invalid(message);
            answer.uid = uid;
            Json(answer.into_review()).into_response()
        }
        None => {
            let status = match why {
                Unread::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
                Unread::Busy => StatusCode::SERVICE_UNAVAILABLE,
                Unread::Malformed => StatusCode::BAD_REQUEST,
            };
            (status, message).into_response()
        }
    };
    Refused { why, response }
}

/// `request.uid` of a review's body, read from its start, so a prefix or a malformed body will
/// do as long as the uid comes before what is wrong.
pub fn uid_of(body: &[u8]) -> Option<String> {
    let mut uid = None;
    let mut de = serde_json::Deserializer::from_slice(body);
    // The parse stops (with an error) right after the uid.
    let _ = Field {
        path: &["request", "uid"],
        out: &mut uid,
    }
    .deserialize(&mut de);
    uid.filter(|u: &String| !u.is_empty() && u.len() <= 128)
}

/// Walks objects along `path`, keeping the string at its end.
struct Field<'a> {
    path: &'a [&'a str],
    out: &'a mut Option<String>,
}

impl<'de> DeserializeSeed<'de> for Field<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        if self.path.is_empty() {
            *self.out = Some(<String as serde::Deserialize>::deserialize(d)?);
            Ok(())
        } else {
            d.deserialize_map(self)
        }
    }
}

impl<'de> Visitor<'de> for Field<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let (first, rest) = (self.path[0], &self.path[1..]);
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key == first {
                return map.next_value_seed(Field {
                    path: rest,
                    out: self.out,
                });
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use axum::body::Bytes;
    use serde_json::json;

    /// A review as the API server writes it: `request.uid` first.
    fn review(uid: &str, padding: usize) -> Vec<u8> {
        let object = json!({"apiVersion": "apps/v1", "kind": "Deployment",
                            "metadata": {"name": "web", "labels": {"pad": "x".repeat(padding)}}});
        format!(
            r#"{{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{{"uid":"{uid}","kind":{{"group":"apps","version":"v1","kind":"Deployment"}},"resource":{{"group":"apps","version":"v1","resource":"deployments"}},"name":"web","namespace":"shop","operation":"UPDATE","userInfo":{{"username":"mallory"}},"object":{object},"oldObject":null}}}}"#
        )
        .into_bytes()
    }

    fn headers(len: usize) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_LENGTH, len.to_string().parse().unwrap());
        h
    }

    async fn answer(r: Response) -> (StatusCode, serde_json::Value) {
        let status = r.status();
        let bytes = axum::body::to_bytes(r.into_body(), usize::MAX).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or(json!(null)))
    }

    #[test]
    fn the_uid_is_read_from_a_prefix_or_a_malformed_body() {
        let body = review("7c1f", 100);
        assert_eq!(uid_of(&body).as_deref(), Some("7c1f"));
        assert_eq!(uid_of(&body[..120]).as_deref(), Some("7c1f"), "cut short");
        assert_eq!(
            uid_of(br#"{"request": {"uid": "a1", "object": {"#).as_deref(),
            Some("a1")
        );
        assert_eq!(uid_of(br#"{"kind": "x", "request": {"uid": "#), None);
        assert_eq!(uid_of(b"not json"), None);
        assert_eq!(
            uid_of(format!(r#"{{"request": {{"uid": "{}"}}}}"#, "u".repeat(1000)).as_bytes()),
            None
        );
    }

    #[tokio::test]
    async fn a_review_is_read_whole() {
        let body = review("7c1f", 100_000);
        let read = read(&Budget::default(), &headers(body.len()), Body::from(body))
            .await
            .ok()
            .unwrap();
        let req = read.review.request.unwrap();
        assert_eq!(req.uid, "7c1f");
        assert_eq!(req.object.unwrap().metadata.labels.unwrap()["pad"].len(), 100_000);
    }

    #[tokio::test]
    async fn a_review_over_the_limit_is_refused_with_its_uid() {
        let body = review("7c1f", BODY_LIMIT);
        let Err(refused) = read(&Budget::default(), &headers(body.len()), Body::from(body)).await else {
            panic!("read")
        };
        assert_eq!(refused.why, Unread::TooLarge);
        let (status, answered) = answer(refused.response).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(answered["response"]["uid"], "7c1f");
        assert_eq!(answered["response"]["allowed"], false);
        let message = answered["response"]["status"]["message"].as_str().unwrap();
        assert!(message.contains("over the webhook's limit of 7340032"), "{message}");
        // Sent without a length (chunked), it is cut while read.
        let body = review("7c1g", BODY_LIMIT);
        let chunks: Vec<Result<Bytes, std::io::Error>> =
            body.chunks(64 * 1024).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
        let Err(refused) = read(
            &Budget::default(),
            &HeaderMap::new(),
            Body::from_stream(futures::stream::iter(chunks)),
        )
        .await
        else {
            panic!("read")
        };
        assert_eq!(refused.why, Unread::TooLarge);
        assert_eq!(answer(refused.response).await.1["response"]["uid"], "7c1g");
    }

    #[tokio::test]
    async fn large_reviews_beyond_the_budget_are_refused_small_ones_read() {
        let budget = Budget::default();
        let large = review("big", 2 * 1024 * 1024);
        let mut held = Vec::new();
        for _ in 0..BUDGET_BYTES / large.len() {
            let read = read(&budget, &headers(large.len()), Body::from(large.clone()))
                .await
                .ok()
                .unwrap();
            held.push(read);
        }
        let Err(refused) = read(&budget, &headers(large.len()), Body::from(large.clone())).await else {
            panic!("over the budget")
        };
        assert_eq!(refused.why, Unread::Busy);
        let (_, answer) = answer(refused.response).await;
        assert_eq!(answer["response"]["uid"], "big");
        assert_eq!(answer["response"]["allowed"], false);
        let small = review("small", 1000);
        assert!(read(&budget, &headers(small.len()), Body::from(small)).await.is_ok());
        held.clear();
        assert!(
            read(&budget, &headers(large.len()), Body::from(large)).await.is_ok(),
            "given back"
        );
    }

    #[tokio::test]
    async fn a_malformed_review_is_refused() {
        let mut body = review("7c1f", 10);
        body.truncate(body.len() - 3);
        let Err(refused) = read(&Budget::default(), &headers(body.len()), Body::from(body)).await else {
            panic!("read")
        };
        assert_eq!(refused.why, Unread::Malformed);
        assert_eq!(answer(refused.response).await.1["response"]["uid"], "7c1f");
        let Err(refused) = read(&Budget::default(), &headers(3), Body::from("{}x")).await else {
            panic!("read")
        };
        assert_eq!(refused.response.status(), StatusCode::BAD_REQUEST);
    }
}
