//! The `tower` feature: a [`tower_layer::Layer`] that counts every
//! in-flight HTTP request as a guard of a [`Shutdown`] latch, refuses new
//! ones once the latch is triggered, and (named) lets a drain that gives up
//! name the slow requests.
//!
//! ```
//! # futures_executor::block_on(async {
//! use std::convert::Infallible;
//! use std::future::{ready, Ready};
//! use std::task::{Context, Poll};
//! use tower_layer::Layer;
//! use tower_service::Service;
//!
//! /// A service that answers every request with an empty 200.
//! #[derive(Clone)]
//! struct Hello;
//!
//! impl Service<http::Request<()>> for Hello {
//!     type Response = http::Response<String>;
//!     type Error = Infallible;
//!     type Future = Ready<Result<Self::Response, Infallible>>;
//!
//!     fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
//!         Poll::Ready(Ok(()))
//!     }
//!
//!     fn call(&mut self, _: http::Request<()>) -> Self::Future {
//!         ready(Ok(http::Response::new(String::new())))
//!     }
//! }
//!
//! let shutdown = quiescent::Shutdown::new();
//! let mut service = shutdown.layer().named().layer(Hello);
//! let response = service.call(http::Request::get("/slow?ms=5").body(()).unwrap()).await.unwrap();
//! assert_eq!(response.status(), 200);
//! // The guard is held until the response body is done (or dropped).
//! assert_eq!(shutdown.holders().named[0].name, "GET /slow");
//! drop(response);
//! assert_eq!(shutdown.count(), 0);
//!
//! shutdown.trigger();
//! let refused = service.call(http::Request::get("/").body(()).unwrap()).await.unwrap();
//! assert_eq!(refused.status(), 503);
//! assert_eq!(refused.headers()["connection"], "close");
//! # });
//! ```
//!
//! With axum: `Router::new().route(...).layer(shutdown.layer())`; the layer
//! sits outside the routes, so every request, routed or not, counts. With
//! tonic (gRPC on tower), add it with `Server::builder().layer(...)`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::{Guard, Shutdown};

impl Shutdown {
    /// A tower layer that takes a guard of this latch for every request
    /// (see [`GuardLayer`]).
    ///
    /// ```
    /// let shutdown = quiescent::Shutdown::new();
    /// let layer = shutdown.layer().named();
    /// # let _ = layer;
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
    pub fn layer(&self) -> GuardLayer {
        GuardLayer {
            shutdown: self.clone(),
            named: false,
        }
    }
}

/// A [`tower_layer::Layer`] that wraps a service in a [`GuardService`]: a
/// guard of the latch per request, held until the response body is finished
/// or dropped; `503 Service Unavailable` with `connection: close` once the
/// latch is triggered, without calling the service.
///
/// Unnamed (the default), a request costs one guard: one atomic operation to
/// take it and one to drop it. [`named`](Self::named) names each guard
/// `"METHOD /path"` (no query string), so that a drain that gives up names
/// the slow requests and how long they have run, at the cost of a string
/// and a registry lock per request.
///
/// ```
/// use tower_layer::Layer;
///
/// let shutdown = quiescent::Shutdown::new();
/// // Any tower service of `http` requests and responses; `()` stands in.
/// let service = shutdown.layer().layer(());
/// # let _ = service;
/// ```
#[derive(Clone, Debug)]
#[must_use = "a layer does nothing until it wraps a service"]
pub struct GuardLayer {
    shutdown: Shutdown,
    named: bool,
}

impl GuardLayer {
    /// Names each request's guard `"METHOD /path"`.
    ///
    /// ```
    /// let shutdown = quiescent::Shutdown::new();
    /// let layer = shutdown.layer().named();
    /// # let _ = layer;
    /// ```
    pub fn named(mut self) -> Self {
        self.named = true;
        self
    }
}

impl<S> tower_layer::Layer<S> for GuardLayer {
    type Service = GuardService<S>;

    fn layer(&self, inner: S) -> GuardService<S> {
        GuardService {
            inner,
            shutdown: self.shutdown.clone(),
            named: self.named,
        }
    }
}

/// The service of [`GuardLayer`]: `S` with a guard per request.
///
/// ```
/// use tower_layer::Layer;
///
/// let shutdown = quiescent::Shutdown::new();
/// let service: quiescent::tower::GuardService<()> = shutdown.layer().layer(());
/// # let _ = service;
/// ```
#[derive(Clone, Debug)]
pub struct GuardService<S> {
    inner: S,
    shutdown: Shutdown,
    named: bool,
}

impl<S, ReqB, ResB> tower_service::Service<http::Request<ReqB>> for GuardService<S>
where
    S: tower_service::Service<http::Request<ReqB>, Response = http::Response<ResB>>,
{
    type Response = http::Response<GuardBody<ResB>>;
    type Error = S::Error;
    type Future = GuardFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    /// Admits the request under a guard, or refuses it: the decision is the
    /// latch's `guard()`, atomic with the trigger, so a request that arrives
    /// after the trigger (on a kept-alive connection too) is never admitted.
    #[inline]
    fn call(&mut self, request: http::Request<ReqB>) -> Self::Future {
        if self.named {
            return self.call_named(request);
        }
        let guard = self.shutdown.guard();
        self.admit(guard, request)
    }
}

impl<S> GuardService<S> {
    /// The future of a request admitted under `guard`, or refused.
    #[inline]
    fn admit<ReqB>(
        &mut self,
        guard: Result<Guard, crate::ShutdownStarted>,
        request: http::Request<ReqB>,
    ) -> GuardFuture<S::Future>
    where
        S: tower_service::Service<http::Request<ReqB>>,
    {
        match guard {
            Ok(guard) => GuardFuture {
                future: Some(self.inner.call(request)),
                guard: Some(guard),
            },
            Err(_) => GuardFuture {
                future: None,
                guard: None,
            },
        }
    }

    /// [`call`](tower_service::Service::call) of a named layer, out of line:
    /// reading the method and path must not make the unnamed path keep the
    /// request in memory and copy it (it moves it once, like a bare call).
    #[inline(never)]
    fn call_named<ReqB>(&mut self, request: http::Request<ReqB>) -> GuardFuture<S::Future>
    where
        S: tower_service::Service<http::Request<ReqB>>,
    {
        let guard = named_guard(&self.shutdown, request.method(), request.uri());
        self.admit(guard, request)
    }
}

/// A named request's guard, `"METHOD /path"` (no query string). Out of
/// line: the unnamed path stays small enough to move the request once.
#[inline(never)]
fn named_guard(
    shutdown: &Shutdown,
    method: &http::Method,
    uri: &http::Uri,
) -> Result<Guard, crate::ShutdownStarted> {
    shutdown.guard_named(format!("{method} {}", uri.path()))
}

pin_project! {
    /// The response future of [`GuardService`]: the inner service's, holding
    /// the request's guard; or a `503` at once, for a refused request.
    ///
    /// ```
    /// # futures_executor::block_on(async {
    /// use tower_layer::Layer;
    /// use tower_service::Service;
    /// # #[derive(Clone)] struct Ok200;
    /// # impl Service<http::Request<()>> for Ok200 {
    /// #     type Response = http::Response<String>;
    /// #     type Error = std::convert::Infallible;
    /// #     type Future = std::future::Ready<Result<http::Response<String>, std::convert::Infallible>>;
    /// #     fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> { std::task::Poll::Ready(Ok(())) }
    /// #     fn call(&mut self, _: http::Request<()>) -> Self::Future { std::future::ready(Ok(http::Response::new(String::new()))) }
    /// # }
    ///
    /// let shutdown = quiescent::Shutdown::new();
    /// let mut service = shutdown.layer().layer(Ok200);
    /// let future: quiescent::tower::GuardFuture<_> = service.call(http::Request::new(()));
    /// assert_eq!(shutdown.count(), 1); // admitted when called
    /// drop(future); // a cancelled request releases its guard
    /// assert_eq!(shutdown.count(), 0);
    /// # });
    /// ```
    ///
    /// # Cancel safety
    ///
    /// Dropping it (a client gone, a timeout) drops the inner future and
    /// releases the guard: the drain no longer waits for the request.
    #[must_use = "futures do nothing unless polled"]
    pub struct GuardFuture<F> {
        // `None` for a refused request (its guard is `None` too).
        #[pin]
        future: Option<F>,
        guard: Option<Guard>,
    }
}

impl<F, ResB, E> Future for GuardFuture<F>
where
    F: Future<Output = Result<http::Response<ResB>, E>>,
{
    type Output = Result<http::Response<GuardBody<ResB>>, E>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Some(future) = this.future.as_pin_mut() else {
            return Poll::Ready(Ok(refused()));
        };
        let response = std::task::ready!(future.poll(cx));
        // An error releases the guard with the future; a response hands it
        // to its body.
        let guard = this.guard.take();
        Poll::Ready(response.map(|response| {
            response.map(|body| GuardBody {
                inner: Some(body),
                guard,
            })
        }))
    }
}

/// The answer to a request refused after the trigger: `503`, and
/// `Connection: close`, so a kept-alive connection is not reused.
///
/// Inline, so the response is built where the caller returns it: an
/// out-of-line builder returns it through a temporary that the admitted
/// path then shares, and every response pays a copy (a `memcpy` call for
/// one over 128 bytes). The header's insertion, the costly part, stays out
/// of line.
#[inline]
fn refused<B>() -> http::Response<GuardBody<B>> {
    let mut response = http::Response::new(GuardBody {
        inner: None,
        guard: None,
    });
    *response.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
    close_connection(response.headers_mut());
    response
}

/// `Connection: close`, out of line (a refusal is rare).
#[cold]
#[inline(never)]
fn close_connection(headers: &mut http::HeaderMap) {
    headers.insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
    );
}

impl<F> fmt::Debug for GuardFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let admitted = self.future.is_some();
        f.debug_struct("GuardFuture")
            .field("admitted", &admitted)
            .finish_non_exhaustive()
    }
}

pin_project! {
    /// The response body of [`GuardService`]: the inner body, holding the
    /// request's guard until its last frame (or an error) has been read, or
    /// until it is dropped, so a streaming download counts as in flight
    /// while it streams. Empty for a refused request.
    ///
    /// ```
    /// use http_body::Body;
    ///
    /// let shutdown = quiescent::Shutdown::new();
    /// shutdown.trigger();
    /// # futures_executor::block_on(async {
    /// # use tower_service::Service;
    /// # use tower_layer::Layer;
    /// # #[derive(Clone)] struct Never;
    /// # impl Service<http::Request<()>> for Never {
    /// #     type Response = http::Response<String>;
    /// #     type Error = std::convert::Infallible;
    /// #     type Future = std::future::Pending<Result<http::Response<String>, std::convert::Infallible>>;
    /// #     fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> { std::task::Poll::Ready(Ok(())) }
    /// #     fn call(&mut self, _: http::Request<()>) -> Self::Future { std::future::pending() }
    /// # }
    /// let mut service = shutdown.layer().layer(Never);
    /// let refused = service.call(http::Request::new(())).await.unwrap();
    /// let body: &quiescent::tower::GuardBody<String> = refused.body();
    /// assert!(body.is_end_stream());
    /// # });
    /// ```
    pub struct GuardBody<B> {
        #[pin]
        inner: Option<B>,
        guard: Option<Guard>,
    }
}

impl<B: Body> Body for GuardBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = self.project();
        let Some(inner) = this.inner.as_pin_mut() else {
            return Poll::Ready(None);
        };
        let frame = std::task::ready!(inner.poll_frame(cx));
        if !matches!(frame, Some(Ok(_))) {
            // The end, or an error: the response is done with.
            this.guard.take();
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().map_or(true, Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

impl<B> fmt::Debug for GuardBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuardBody")
            .field("guard", &self.guard)
            .finish_non_exhaustive()
    }
}
