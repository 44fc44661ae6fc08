//! What every HTTP server of the operator bounds for its clients: how long headers and a whole
//! request may take, how many requests are served at once (the rest are refused at once, not
//! queued), and how large a body may be. A slow, huge or numerous client then costs a bounded
//! amount of time and memory.

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tower::ServiceBuilder;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::{RequestBodyDeadlineLayer, TimeoutLayer};

#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// To send a request's headers (a client trickling them holds a connection, nothing else).
    pub headers: Duration,
    /// To send a request's body.
    pub body: Duration,
    /// For a whole request, answer included.
    pub request: Duration,
    /// Requests served at once; more are answered 503 at once.
    pub concurrent: usize,
    /// Largest body; a larger one is answered 413 (or, where the server reads bodies itself,
    /// as it says).
    pub body_bytes: usize,
}

/// `/metrics`, `/healthz`, `/readyz`: GETs from a scraper and the kubelet.
pub const PROBES: Limits = Limits {
    headers: Duration::from_secs(5),
    body: Duration::from_secs(5),
    request: Duration::from_secs(10),
    concurrent: 16,
    body_bytes: 16 * 1024,
};

/// Applies `limits` to `router`, every route. A body limit of `None` leaves the body to the
/// handlers (the webhook reads its reviews itself, to refuse an oversized one with an answer).
pub fn limit(router: Router, limits: &Limits, body_limit: Option<usize>) -> Router {
    // Routes made into services once, so that all requests share one concurrency limit (a
    // handler still waiting for its state would get the layers anew for each request).
    let router = router.with_state(());
    let router = match body_limit {
        Some(bytes) => router
            .layer(DefaultBodyLimit::disable())
            .layer(RequestBodyLimitLayer::new(bytes)),
        None => router.layer(DefaultBodyLimit::disable()),
    };
    router
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(overloaded))
                .load_shed()
                .concurrency_limit(limits.concurrent),
        )
        .layer(RequestBodyDeadlineLayer::new(limits.body))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            limits.request,
        ))
}

async fn overloaded(_: tower::BoxError) -> Result<Response, Infallible> {
    Ok((StatusCode::SERVICE_UNAVAILABLE, "too many requests at once; try again").into_response())
}

/// The connection-level bounds (headers, idle connections, HTTP/2 streams) of an axum-server.
pub fn server<A, Acc>(mut server: axum_server::Server<A, Acc>, limits: &Limits) -> axum_server::Server<A, Acc>
where
    A: axum_server::Address,
{
    let builder = server.http_builder();
    // hyper buffers up to 400 KiB per connection by default; a body is read as it comes.
    builder
        .http1()
        .header_read_timeout(limits.headers)
        .max_buf_size(64 * 1024)
        .keep_alive(true);
    builder
        .http2()
        .max_concurrent_streams(u32::try_from(limits.concurrent).unwrap_or(u32::MAX))
        .keep_alive_interval(limits.request)
        .keep_alive_timeout(limits.headers);
    // A connection that never completes a first request is closed.
    server.first_request_timeout(limits.request)
}

#[cfg(test)]
mod tests {
    use super::*;

    use axum::body::Body;
    use axum::routing::post;
    use http::Request;
    use tower::ServiceExt;

    fn app(limits: Limits) -> Router {
        let slow = post(|body: axum::body::Bytes| async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            body.len().to_string()
        });
        limit(Router::new().route("/", slow), &limits, Some(limits.body_bytes))
    }

    fn request(bytes: usize) -> Request<Body> {
        Request::post("/").body(Body::from(vec![b'x'; bytes])).unwrap()
    }

    const TEST: Limits = Limits {
        headers: Duration::from_secs(1),
        body: Duration::from_millis(100),
        request: Duration::from_secs(1),
        concurrent: 2,
        body_bytes: 1024,
    };

    #[tokio::test]
    async fn a_body_over_the_limit_is_refused() {
        let r = app(TEST).oneshot(request(1025)).await.unwrap();
        assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let r = app(TEST).oneshot(request(1024)).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn requests_over_the_concurrency_limit_are_refused_at_once() {
        let app = app(TEST);
        let started = std::time::Instant::now();
        let answers = futures::future::join_all((0..4).map(|_| app.clone().oneshot(request(10)))).await;
        let codes: Vec<StatusCode> = answers.into_iter().map(|r| r.unwrap().status()).collect();
        assert_eq!(codes.iter().filter(|c| **c == StatusCode::OK).count(), 2, "{codes:?}");
        assert_eq!(
            codes.iter().filter(|c| **c == StatusCode::SERVICE_UNAVAILABLE).count(),
            2,
            "{codes:?}"
        );
        assert!(started.elapsed() < Duration::from_millis(400), "nothing queued");
    }

    #[tokio::test]
    async fn a_slow_request_is_cut_at_the_limit() {
        let limits = Limits {
            request: Duration::from_millis(50),
            ..TEST
        };
        let r = app(limits).oneshot(request(10)).await.unwrap();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    }

    #[tokio::test]
    async fn a_trickled_body_is_cut_at_its_deadline() {
        let (tx, rx) = futures::channel::mpsc::channel::<Result<axum::body::Bytes, std::io::Error>>(1);
        let body = Body::from_stream(rx);
        // Never sends a byte: the deadline, not the request timeout, ends it.
        let started = std::time::Instant::now();
        let r = app(TEST).oneshot(Request::post("/").body(body).unwrap()).await.unwrap();
        drop(tx);
        assert_ne!(r.status(), StatusCode::OK);
        assert!(started.elapsed() < Duration::from_millis(500));
    }
}
