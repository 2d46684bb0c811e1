//! The tower layer's cost per request (issue "HTTP services"): a trivial
//! service called and its response dropped, with no network, bare, behind
//! `Shutdown::layer()` (unnamed and named), behind two floors (a layer that
//! wraps the future and the body and counts nothing, and the same layer
//! counting requests with one raw atomic RMW to admit and one to release),
//! and behind the layer people write by hand with tokio-util (a
//! `TaskTracker` token per request, kept in the response body, and a
//! `CancellationToken` checked for refusal). One thread, and every core at
//! once on one shared latch.
#![allow(clippy::disallowed_types)] // benches use std types directly

use std::convert::Infallible;
use std::future::{ready, Future, Ready};
use std::hint::black_box;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
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
/// must, and holds a [`Count`] per request from `call` until the body is
/// dropped: with [`NoCount`] (`wrap_only`), the floor of any layer that
/// holds something until the body ends; with [`RawCount`] (`wrap_raw_atomic`),
/// the floor of any layer that counts requests, one raw atomic RMW to admit
/// (the closed flag in the same word) and one to release.
#[derive(Clone)]
struct WrapOnly<S, C> {
    inner: S,
    count: C,
}

/// What [`WrapOnly`] holds per request.
trait Count: Clone {
    /// Held by the response future, then the body.
    type Held;
    /// `None`: refused.
    fn admit(&self) -> Option<Self::Held>;
}

/// Nothing counted: a refusal branch on a flag that is never set.
#[derive(Clone)]
struct NoCount;

impl Count for NoCount {
    type Held = ();

    fn admit(&self) -> Option<()> {
        (!black_box(false)).then_some(())
    }
}

/// One count of a raw atomic word (bit 0: closed; the count in steps of 2).
#[derive(Clone)]
struct RawCount(&'static AtomicUsize);

/// [`RawCount`]'s count, given back on drop.
struct RawHeld(&'static AtomicUsize);

impl Drop for RawHeld {
    fn drop(&mut self) {
        self.0.fetch_sub(2, Ordering::Release);
    }
}

impl Count for RawCount {
    type Held = RawHeld;

    fn admit(&self) -> Option<RawHeld> {
        if self.0.fetch_add(2, Ordering::Acquire) & 1 != 0 {
            self.0.fetch_sub(2, Ordering::Release);
            return None;
        }
        Some(RawHeld(self.0))
    }
}

/// [`WrapOnly`]'s body: the inner body (`None` when refused) and the count.
struct PlainBody<B, H>(Option<B>, Option<H>);

impl<B: Body + Unpin, H: Unpin> Body for PlainBody<B, H> {
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

/// [`WrapOnly`]'s future: the inner one (`None` when refused) and the count.
struct PlainFuture<F, H>(Option<F>, Option<H>);

impl<F, B, H: Unpin> Future for PlainFuture<F, H>
where
    F: Future<Output = Result<http::Response<B>, Infallible>> + Unpin,
{
    type Output = Result<http::Response<PlainBody<B, H>>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(inner) = self.0.as_mut() else {
            let mut refused = http::Response::new(PlainBody(None, None));
            *refused.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
            return Poll::Ready(Ok(refused));
        };
        let Poll::Ready(response) = Pin::new(inner).poll(cx) else {
            return Poll::Pending;
        };
        let held = self.1.take();
        Poll::Ready(response.map(|response| response.map(|body| PlainBody(Some(body), held))))
    }
}

impl<S, B, C> Service<http::Request<()>> for WrapOnly<S, C>
where
    S: Service<http::Request<()>, Response = http::Response<B>, Error = Infallible>,
    S::Future: Unpin,
    C: Count,
    C::Held: Unpin,
{
    type Response = http::Response<PlainBody<B, C::Held>>;
    type Error = Infallible;
    type Future = PlainFuture<S::Future, C::Held>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<()>) -> Self::Future {
        match self.count.admit() {
            Some(held) => PlainFuture(Some(self.inner.call(request)), Some(held)),
            None => PlainFuture(None, None),
        }
    }
}

/// The word of the `wrap_raw_atomic` rows (shared by every thread, as the
/// latch is).
static RAW: AtomicUsize = AtomicUsize::new(0);

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
                count: NoCount
            }
        );
        variant!(
            "wrap_raw_atomic",
            WrapOnly {
                inner: Hello,
                count: RawCount(&RAW)
            }
        );
        variant!("quiescent_unnamed", shutdown.layer().layer(Hello));
        variant!("quiescent_named", shutdown.layer().named().layer(Hello));
        variant!("tokio_util_tracker", tracked());
        variant!("tokio_util_tracker_eager", TrackedEager(tracked()));
        g.finish();
    }
    // The same request with a two-word body (one thread): a response the
    // size of a real one.
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
            count: NoCount
        }
    );
    text_variant!(
        "wrap_raw_atomic",
        WrapOnly {
            inner: HelloText,
            count: RawCount(&RAW)
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
