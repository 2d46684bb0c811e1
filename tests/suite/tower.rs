//! The tower layer: a guard per request held until the response body ends
//! or drops, released by a cancelled request or an error, 503 with
//! `connection: close` after the trigger (the inner service not called),
//! and named requests in the stragglers. A plain tower service, polled by
//! hand; the HTTP demo's end-to-end test covers a real server.
#![cfg(feature = "tower")]
#![allow(clippy::disallowed_types)] // tests use std sync types directly

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use http_body::{Body, Frame};
use quiescent::Shutdown;
use tower_layer::Layer;
use tower_service::Service;

/// A body of `frames` frames, then the end (or an error instead of the end).
struct Frames {
    left: usize,
    fail: bool,
}

impl Body for Frames {
    type Data = &'static [u8];
    type Error = &'static str;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<&'static [u8]>, &'static str>>> {
        if self.left == 0 {
            return Poll::Ready(if self.fail { Some(Err("reset")) } else { None });
        }
        self.left -= 1;
        Poll::Ready(Some(Ok(Frame::data(&b"chunk"[..]))))
    }
}

/// What the test service does with a request.
#[derive(Clone, Copy)]
enum Answer {
    Frames(usize, bool),
    Pending,
    Error,
}

/// A tower service that answers as told and counts its calls.
#[derive(Clone)]
struct Test {
    answer: Answer,
    calls: Arc<AtomicUsize>,
}

impl Test {
    fn new(answer: Answer) -> Self {
        Self {
            answer,
            calls: Arc::default(),
        }
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl Service<http::Request<()>> for Test {
    type Response = http::Response<Frames>;
    type Error = &'static str;
    type Future = BoxFuture<Result<http::Response<Frames>, &'static str>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), &'static str>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Request<()>) -> Self::Future {
        self.calls.fetch_add(1, Ordering::SeqCst);
        match self.answer {
            Answer::Frames(left, fail) => {
                Box::pin(std::future::ready(Ok(http::Response::new(Frames {
                    left,
                    fail,
                }))))
            }
            Answer::Pending => Box::pin(std::future::pending()),
            Answer::Error => Box::pin(std::future::ready(Err("inner error"))),
        }
    }
}

fn get(uri: &str) -> http::Request<()> {
    http::Request::get(uri).body(()).unwrap()
}

#[allow(clippy::incompatible_msrv)] // a test helper: tests run on the current toolchain
fn poll_once<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
    Pin::new(future).poll(&mut Context::from_waker(Waker::noop()))
}

/// What a body's `poll_frame` returns.
type Polled<B> = Poll<Option<Result<Frame<<B as Body>::Data>, <B as Body>::Error>>>;

#[allow(clippy::incompatible_msrv)] // a test helper: tests run on the current toolchain
fn frame<B: Body + Unpin>(body: &mut B) -> Polled<B> {
    Pin::new(body).poll_frame(&mut Context::from_waker(Waker::noop()))
}

#[test]
fn the_guard_is_held_until_the_body_ends() {
    let shutdown = Shutdown::new();
    let mut service = shutdown.layer().layer(Test::new(Answer::Frames(2, false)));
    let mut future = service.call(get("/download"));
    assert_eq!(shutdown.count(), 1, "admitted at the call");
    let Poll::Ready(Ok(response)) = poll_once(&mut future) else {
        panic!("ready")
    };
    drop(future);
    assert_eq!(shutdown.count(), 1, "the body holds the guard");
    let mut body = response.into_body();
    assert!(matches!(frame(&mut body), Poll::Ready(Some(Ok(_)))));
    assert!(matches!(frame(&mut body), Poll::Ready(Some(Ok(_)))));
    assert_eq!(shutdown.count(), 1, "still streaming");
    assert!(matches!(frame(&mut body), Poll::Ready(None)));
    assert_eq!(shutdown.count(), 0, "released at the end of the body");
    drop(body);
    assert_eq!(shutdown.count(), 0);
}

#[test]
fn a_dropped_body_a_cancelled_request_and_errors_release_the_guard() {
    let shutdown = Shutdown::new();
    // The body dropped half way (a client gone mid-download).
    let mut service = shutdown.layer().layer(Test::new(Answer::Frames(5, false)));
    let response = futures_executor::block_on(service.call(get("/"))).unwrap();
    assert_eq!(shutdown.count(), 1);
    drop(response);
    assert_eq!(shutdown.count(), 0);
    // A cancelled request: the future dropped before the response.
    let mut service = shutdown.layer().layer(Test::new(Answer::Pending));
    let mut future = service.call(get("/"));
    assert!(poll_once(&mut future).is_pending());
    assert_eq!(shutdown.count(), 1);
    drop(future);
    assert_eq!(
        shutdown.count(),
        0,
        "a cancelled request releases its guard"
    );
    // The inner service fails.
    let mut service = shutdown.layer().layer(Test::new(Answer::Error));
    assert!(futures_executor::block_on(service.call(get("/"))).is_err());
    assert_eq!(shutdown.count(), 0);
    // The body fails mid-stream.
    let mut service = shutdown.layer().layer(Test::new(Answer::Frames(1, true)));
    let mut body = futures_executor::block_on(service.call(get("/")))
        .unwrap()
        .into_body();
    assert!(matches!(frame(&mut body), Poll::Ready(Some(Ok(_)))));
    assert!(matches!(frame(&mut body), Poll::Ready(Some(Err("reset")))));
    assert_eq!(shutdown.count(), 0, "an error ends the response");
}

#[test]
fn after_the_trigger_requests_get_503_and_the_service_is_not_called() {
    let shutdown = Shutdown::new();
    let inner = Test::new(Answer::Frames(1, false));
    let calls = inner.calls.clone();
    let mut service = shutdown.layer().named().layer(inner);
    let in_flight = futures_executor::block_on(service.call(get("/slow"))).unwrap();
    shutdown.trigger();
    let refused = futures_executor::block_on(service.call(get("/late"))).unwrap();
    assert_eq!(refused.status(), http::StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.headers()["connection"], "close");
    assert!(refused.body().is_end_stream());
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "the refused request never reached it"
    );
    assert_eq!(shutdown.count(), 1, "the request in flight still counts");
    drop(in_flight);
    assert!(shutdown.wait_drained_timeout(Duration::ZERO).is_ok());
}

#[test]
fn named_requests_are_named_in_the_stragglers() {
    let shutdown = Shutdown::new();
    let mut service = shutdown
        .layer()
        .named()
        .layer(Test::new(Answer::Frames(1, false)));
    let stuck = futures_executor::block_on(service.call(get("/stuck?who=me#x"))).unwrap();
    let _upload =
        futures_executor::block_on(service.call(http::Request::post("/upload").body(()).unwrap()))
            .unwrap();
    let stragglers = shutdown.shutdown_timeout(Duration::ZERO).unwrap_err();
    assert_eq!(stragglers.names, ["GET /stuck", "POST /upload"]);
    assert!(
        stragglers.to_string().contains("\"GET /stuck\" ("),
        "{stragglers}"
    );
    drop(stuck);
    // Unnamed: counted, not named.
    let shutdown = Shutdown::new();
    let mut service = shutdown.layer().layer(Test::new(Answer::Frames(1, false)));
    let _held = futures_executor::block_on(service.call(get("/"))).unwrap();
    assert_eq!(shutdown.holders().count, 1);
    assert!(shutdown.holders().named.is_empty());
}

/// Requests racing the trigger on two threads: each is admitted (and
/// counted by the drain until its body goes) or refused with a 503, never
/// both, and none after the trigger returned.
#[test]
fn admission_races_the_trigger() {
    crate::common::bounded(30, || {
        for _ in 0..200 {
            let shutdown = Shutdown::new();
            let service = shutdown.layer().layer(Test::new(Answer::Frames(0, false)));
            let workers: Vec<_> = (0..2)
                .map(|_| {
                    let mut service = service.clone();
                    std::thread::spawn(move || {
                        let mut statuses = Vec::new();
                        for _ in 0..20 {
                            let response =
                                futures_executor::block_on(service.call(get("/"))).unwrap();
                            statuses.push(response.status().as_u16());
                        }
                        statuses
                    })
                })
                .collect();
            shutdown.trigger();
            let mut late = service.clone();
            let after = futures_executor::block_on(late.call(get("/"))).unwrap();
            assert_eq!(after.status(), 503, "admitted after the trigger returned");
            for worker in workers {
                let statuses = worker.join().unwrap();
                // Once refused, refused ever after.
                let first_refused = statuses.iter().position(|s| *s == 503);
                if let Some(at) = first_refused {
                    assert!(statuses[at..].iter().all(|s| *s == 503), "{statuses:?}");
                }
            }
            assert!(shutdown
                .wait_drained_timeout(Duration::from_secs(5))
                .is_ok());
        }
    });
}
