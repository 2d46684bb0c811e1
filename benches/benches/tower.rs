//! The tower layer's cost per request (issue "HTTP services"): a trivial
//! service called and its response dropped, with no network, bare, behind
//! `Shutdown::layer()` (unnamed and named), behind a layer that wraps the
//! future and the body and counts nothing (the floor of any layer that holds
//! a count until the body ends), and behind the layer people
//! write by hand with tokio-util (a `TaskTracker` token per request, kept in
//! the response body, and a `CancellationToken` checked for refusal). One
//! thread, and every core at once on one shared latch.
#![allow(clippy::disallowed_types)] // benches use std types directly

use std::convert::Infallible;
use std::future::{ready, Future, Ready};
use std::hint::black_box;
use std::pin::Pin;
use std::sync::Barrier;
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use http_body::{Body, Frame};
use tower_layer::Layer;
use tower_service::Service;

/// An empty body.
struct Empty;

impl Body for Empty {
    type Data = &'static [u8];
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<&'static [u8]>, Infallible>>> {
        Poll::Ready(None)
    }
}

/// A body of one static text frame: the size of a real body (two words),
/// for the group that shows what a body of any size does to the moves.
struct Text(Option<&'static str>);

impl Body for Text {
    type Data = &'static [u8];
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<&'static [u8]>, Infallible>>> {
        Poll::Ready(self.0.take().map(|text| Ok(Frame::data(text.as_bytes()))))
    }
}

/// The trivial service with a text body: a 200 at once.
#[derive(Clone)]
struct HelloText;

impl Service<http::Request<()>> for HelloText {
    type Response = http::Response<Text>;
    type Error = Infallible;
    type Future = Ready<Result<http::Response<Text>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Request<()>) -> Self::Future {
        ready(Ok(http::Response::new(Text(Some("hello")))))
    }
}

/// The trivial service: an empty 200 at once.
#[derive(Clone)]
struct Hello;

impl Service<http::Request<()>> for Hello {
    type Response = http::Response<Empty>;
    type Error = Infallible;
    type Future = Ready<Result<http::Response<Empty>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Request<()>) -> Self::Future {
        ready(Ok(http::Response::new(Empty)))
    }
}

/// The hand-written tokio-util layer: refuse when cancelled, else hold a
/// tracker token in the response until it is dropped.
/// A TaskTracker layer built the usual way: a `CancellationToken` checked
/// for refusal, a tracker token per request, held by the response future
/// and then by the response body until the body ends, as any layer must for
/// a service whose future is not ready at once (the same work quiescent's
/// layer does).
#[derive(Clone)]
struct Tracked<S> {
    inner: S,
    tracker: tokio_util::task::TaskTracker,
    cancel: tokio_util::sync::CancellationToken,
}

type TrackerToken = tokio_util::task::task_tracker::TaskTrackerToken;

/// The response body: the inner body and the request's tracker token.
struct TrackedBody<B> {
    inner: Option<B>,
    _token: Option<TrackerToken>,
}

impl<B: Body + Unpin> Body for TrackedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        match self.inner.as_mut() {
            Some(inner) => Pin::new(inner).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }
}

/// The response future: the inner one and the token (`None`: refused).
struct TrackedFuture<F> {
    inner: Option<F>,
    token: Option<TrackerToken>,
}

impl<F, B> Future for TrackedFuture<F>
where
    F: Future<Output = Result<http::Response<B>, Infallible>> + Unpin,
{
    type Output = Result<http::Response<TrackedBody<B>>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(inner) = self.inner.as_mut() else {
            let mut refused = http::Response::new(TrackedBody {
                inner: None,
                _token: None,
            });
            *refused.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
            return Poll::Ready(Ok(refused));
        };
        let Poll::Ready(response) = Pin::new(inner).poll(cx) else {
            return Poll::Pending;
        };
        let token = self.token.take();
        Poll::Ready(response.map(|response| {
            response.map(|body| TrackedBody {
                inner: Some(body),
                _token: token,
            })
        }))
    }
}

impl<S, B> Service<http::Request<()>> for Tracked<S>
where
    S: Service<http::Request<()>, Response = http::Response<B>, Error = Infallible>,
    S::Future: Unpin,
{
    type Response = http::Response<TrackedBody<B>>;
    type Error = Infallible;
    type Future = TrackedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<()>) -> Self::Future {
        if self.cancel.is_cancelled() {
            return TrackedFuture {
                inner: None,
                token: None,
            };
        }
        TrackedFuture {
            token: Some(self.tracker.token()),
            inner: Some(self.inner.call(request)),
        }
    }
}

/// The same tracker, cut short: the token is taken and the inner future
/// polled inside `call`, so no future or body is wrapped. Only possible for
/// a service ready at once (like the trivial one here); shown for
/// comparison with earlier runs, which measured this shape.
#[derive(Clone)]
struct TrackedEager<S>(Tracked<S>);

impl<S> Service<http::Request<()>> for TrackedEager<S>
where
    S: Service<http::Request<()>, Response = http::Response<Empty>, Error = Infallible>,
    S::Future: Unpin,
{
    type Response = http::Response<(Empty, Option<TrackerToken>)>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.0.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<()>) -> Self::Future {
        if self.0.cancel.is_cancelled() {
            let mut refused = http::Response::new((Empty, None));
            *refused.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
            return ready(Ok(refused));
        }
        let token = self.0.tracker.token();
        let mut future = self.0.inner.call(request);
        let Poll::Ready(Ok(response)) =
            Pin::new(&mut future).poll(&mut Context::from_waker(Waker::noop()))
        else {
            unreachable!("the trivial service is ready at once")
        };
        ready(Ok(response.map(|body| (body, Some(token)))))
    }
}

/// A layer that wraps the response future and the body as a counting layer
/// must, with a refusal branch on a plain flag, and counts nothing: the
/// floor of any layer that holds something until the body ends. A counting
/// layer's cost over it is its counting's.
#[derive(Clone)]
struct WrapOnly<S> {
    inner: S,
    refuse: bool,
}

/// [`WrapOnly`]'s body: the inner body, `None` when refused.
struct PlainBody<B>(Option<B>);

impl<B: Body + Unpin> Body for PlainBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        match self.0.as_mut() {
            Some(inner) => Pin::new(inner).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }
}

/// [`WrapOnly`]'s future: the inner one, `None` when refused.
struct PlainFuture<F>(Option<F>);

impl<F, B> Future for PlainFuture<F>
where
    F: Future<Output = Result<http::Response<B>, Infallible>> + Unpin,
{
    type Output = Result<http::Response<PlainBody<B>>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(inner) = self.0.as_mut() else {
            let mut refused = http::Response::new(PlainBody(None));
            *refused.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
            return Poll::Ready(Ok(refused));
        };
        let Poll::Ready(response) = Pin::new(inner).poll(cx) else {
            return Poll::Pending;
        };
        Poll::Ready(response.map(|response| response.map(|body| PlainBody(Some(body)))))
    }
}

impl<S, B> Service<http::Request<()>> for WrapOnly<S>
where
    S: Service<http::Request<()>, Response = http::Response<B>, Error = Infallible>,
    S::Future: Unpin,
{
    type Response = http::Response<PlainBody<B>>;
    type Error = Infallible;
    type Future = PlainFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<()>) -> Self::Future {
        if black_box(self.refuse) {
            return PlainFuture(None);
        }
        PlainFuture(Some(self.inner.call(request)))
    }
}

/// One request: ready, call, poll the response future once, drop the
/// response (and with it the body and its guard).
fn request<S>(service: &mut S)
where
    S: Service<http::Request<()>>,
    S::Future: Unpin,
{
    let mut cx = Context::from_waker(Waker::noop());
    let _ = service.poll_ready(&mut cx);
    let mut future = service.call(http::Request::new(()));
    drop(black_box(Pin::new(&mut future).poll(&mut cx)));
}

/// Runs `f(iters)` on every core at once; the time per iteration of one
/// thread.
fn on_every_core(iters: u64, f: impl Fn(u64) + Sync) -> Duration {
    let n = thread::available_parallelism().map_or(2, |n| n.get());
    let barrier = Barrier::new(n + 1);
    let mut start = Instant::now();
    thread::scope(|s| {
        for _ in 0..n {
            s.spawn(|| {
                barrier.wait();
                f(iters);
            });
        }
        barrier.wait();
        start = Instant::now();
    });
    start.elapsed()
}

fn tower_layer(c: &mut Criterion) {
    let shutdown = quiescent::Shutdown::new();
    let tracked = || Tracked {
        inner: Hello,
        tracker: tokio_util::task::TaskTracker::new(),
        cancel: tokio_util::sync::CancellationToken::new(),
    };
    for threads in ["one_thread", "every_core"] {
        let mut g = c.benchmark_group(format!("tower_layer_{threads}"));
        macro_rules! variant {
            ($name:literal, $service:expr) => {
                let service = $service;
                if threads == "one_thread" {
                    g.bench_function($name, |b| {
                        let mut service = service.clone();
                        b.iter(|| request(&mut service))
                    });
                } else {
                    g.bench_function($name, |b| {
                        b.iter_custom(|iters| {
                            on_every_core(iters, |n| {
                                let mut service = service.clone();
                                for _ in 0..n {
                                    request(&mut service);
                                }
                            })
                        })
                    });
                }
            };
        }
        variant!("bare", Hello);
        variant!(
            "wrap_only",
            WrapOnly {
                inner: Hello,
                refuse: false
            }
        );
        variant!("quiescent_unnamed", shutdown.layer().layer(Hello));
        variant!("quiescent_named", shutdown.layer().named().layer(Hello));
        variant!("tokio_util_tracker", tracked());
        variant!("tokio_util_tracker_eager", TrackedEager(tracked()));
        g.finish();
    }
    // The same request with a two-word body (one thread): every response is
    // then over 128 bytes, with the tracker's token as with quiescent's guard,
    // so both move it with a `memcpy` call (the empty body's group does not
    // show that: there only quiescent's, whose guard is two words, does).
    let mut g = c.benchmark_group("tower_layer_text_body");
    macro_rules! text_variant {
        ($name:literal, $service:expr) => {
            let mut service = $service;
            g.bench_function($name, |b| b.iter(|| request(&mut service)));
        };
    }
    text_variant!("bare", HelloText);
    text_variant!(
        "wrap_only",
        WrapOnly {
            inner: HelloText,
            refuse: false
        }
    );
    text_variant!("quiescent_unnamed", shutdown.layer().layer(HelloText));
    text_variant!(
        "tokio_util_tracker",
        Tracked {
            inner: HelloText,
            tracker: tokio_util::task::TaskTracker::new(),
            cancel: tokio_util::sync::CancellationToken::new(),
        }
    );
    g.finish();
}

criterion_group!(benches, tower_layer);
criterion_main!(benches);
