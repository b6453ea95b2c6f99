//! An object store that fails on request, for tests of what sealdb does when its store
//! misbehaves: errors, partial uploads, hangs, latency, and a store that is gone entirely.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::stream::{BoxStream, StreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    ObjectStoreExt, PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use parking_lot::Mutex;

/// The kinds of request a [`FaultStore`] counts and can fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreOp {
    /// Uploads, single or multipart.
    Put,
    /// Downloads, whole or ranged.
    Get,
    /// Size and metadata queries.
    Head,
    /// Deletions.
    Delete,
    /// Listings.
    List,
}

impl StoreOp {
    const ALL: [StoreOp; 5] =
        [StoreOp::Put, StoreOp::Get, StoreOp::Head, StoreOp::Delete, StoreOp::List];

    fn index(self) -> usize {
        self as usize
    }
}

/// What an armed fault does to the request it hits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreFault {
    /// The request fails with a generic store error and has no effect.
    Error,
    /// An upload stores only the first half of its bytes, then reports an error.
    PartialPut,
    /// The request never answers (the caller's deadline fires).
    Hang,
}

#[derive(Debug, Default)]
struct Armed {
    op: Option<StoreOp>,
    skip: u64,
    fault: Option<StoreFault>,
    sticky: bool,
    offline: bool,
    latency: Duration,
    no_copies: bool,
}

#[derive(Debug, Default)]
struct Shared {
    armed: Mutex<Armed>,
    requests: [AtomicU64; 5],
    injected: AtomicU64,
}

impl Shared {
    /// Counts one request of kind `op` and says which fault, if any, it meets.
    fn meet(&self, op: StoreOp) -> (Option<StoreFault>, Duration) {
        self.requests[op.index()].fetch_add(1, Ordering::Relaxed);
        let mut armed = self.armed.lock();
        let latency = armed.latency;
        if armed.offline {
            self.injected.fetch_add(1, Ordering::Relaxed);
            return (Some(StoreFault::Error), latency);
        }
        if armed.op != Some(op) || armed.fault.is_none() {
            return (None, latency);
        }
        if armed.skip > 0 {
            armed.skip -= 1;
            return (None, latency);
        }
        let fault = armed.fault;
        if !armed.sticky {
            armed.fault = None;
        }
        self.injected.fetch_add(1, Ordering::Relaxed);
        (fault, latency)
    }
}

/// Wraps an object store and injects faults into the requests that pass through it.
///
/// Clones share their state, so a test keeps one clone to arm faults and hands another to
/// sealdb.
#[derive(Clone)]
pub struct FaultStore {
    inner: Arc<dyn ObjectStore>,
    shared: Arc<Shared>,
}

impl FaultStore {
    /// A store that passes every request to `inner` until a fault is armed.
    pub fn new(inner: Arc<dyn ObjectStore>) -> FaultStore {
        FaultStore { inner, shared: Arc::new(Shared::default()) }
    }

    /// Arms `fault` for requests of kind `op`: the first `skip` of them pass, the next one
    /// fails, and with `sticky` every one after it too.
    pub fn fail_after(&self, op: StoreOp, skip: u64, fault: StoreFault, sticky: bool) {
        let mut armed = self.shared.armed.lock();
        armed.op = Some(op);
        armed.skip = skip;
        armed.fault = Some(fault);
        armed.sticky = sticky;
    }

    /// With `true`, every request fails as if the store were unreachable.
    pub fn set_offline(&self, offline: bool) {
        self.shared.armed.lock().offline = offline;
    }

    /// Delays every request by `latency` (as a distant store would).
    pub fn set_latency(&self, latency: Duration) {
        self.shared.armed.lock().latency = latency;
    }

    /// With `true`, conditional copies (create-if-absent) answer "not supported", as S3's do
    /// unless a copy-if-not-exists mechanism is configured.
    pub fn refuse_copies(&self, refuse: bool) {
        self.shared.armed.lock().no_copies = refuse;
    }

    /// Disarms every fault, brings the store back online and removes the latency.
    pub fn clear(&self) {
        *self.shared.armed.lock() = Armed::default();
    }

    /// How many requests of kind `op` reached this store (failed ones included).
    pub fn requests(&self, op: StoreOp) -> u64 {
        self.shared.requests[op.index()].load(Ordering::Relaxed)
    }

    /// How many requests of every kind reached this store.
    pub fn total_requests(&self) -> u64 {
        StoreOp::ALL.iter().map(|op| self.requests(*op)).sum()
    }

    /// How many faults were injected so far.
    pub fn injected(&self) -> u64 {
        self.shared.injected.load(Ordering::Relaxed)
    }

    /// Waits out the latency and applies the fault `op` meets, if any.
    async fn gate(
        &self,
        op: StoreOp,
        path: &ObjectPath,
    ) -> object_store::Result<Option<StoreFault>> {
        gate(&self.shared, op, path).await
    }
}

async fn gate(
    shared: &Shared,
    op: StoreOp,
    path: &ObjectPath,
) -> object_store::Result<Option<StoreFault>> {
    let (fault, latency) = shared.meet(op);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match fault {
        None => Ok(None),
        Some(StoreFault::Hang) => std::future::pending().await,
        Some(StoreFault::PartialPut) if op == StoreOp::Put => Ok(Some(StoreFault::PartialPut)),
        Some(StoreFault::Error | StoreFault::PartialPut) => Err(injected(op, path)),
    }
}

fn injected(op: StoreOp, path: &ObjectPath) -> object_store::Error {
    object_store::Error::Generic {
        store: "FaultStore",
        source: format!("injected fault on {op:?} {path}").into(),
    }
}

impl fmt::Debug for FaultStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultStore").field("inner", &self.inner).finish_non_exhaustive()
    }
}

impl fmt::Display for FaultStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultStore({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for FaultStore {
    async fn put_opts(
        &self,
        location: &ObjectPath,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        if self.gate(StoreOp::Put, location).await? == Some(StoreFault::PartialPut) {
            let bytes = Bytes::from(payload);
            let half = bytes.slice(..bytes.len() / 2);
            self.inner.put_opts(location, PutPayload::from(half), opts).await?;
            return Err(injected(StoreOp::Put, location));
        }
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &ObjectPath,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        if self.gate(StoreOp::Put, location).await?.is_some() {
            return Err(injected(StoreOp::Put, location));
        }
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &ObjectPath,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        let op = if options.head { StoreOp::Head } else { StoreOp::Get };
        self.gate(op, location).await?;
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<ObjectPath>>,
    ) -> BoxStream<'static, object_store::Result<ObjectPath>> {
        let inner = Arc::clone(&self.inner);
        let shared = Arc::clone(&self.shared);
        locations
            .then(move |location| {
                let inner = Arc::clone(&inner);
                let shared = Arc::clone(&shared);
                async move {
                    let location = location?;
                    gate(&shared, StoreOp::Delete, &location).await?;
                    inner.delete(&location).await?;
                    Ok(location)
                }
            })
            .boxed()
    }

    fn list(
        &self,
        prefix: Option<&ObjectPath>,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let at = prefix.cloned().unwrap_or_default();
        let inner = Arc::clone(&self.inner);
        let shared = Arc::clone(&self.shared);
        futures_util::stream::once(async move {
            gate(&shared, StoreOp::List, &at).await?;
            let prefix = if at.as_ref().is_empty() { None } else { Some(at) };
            Ok(inner.list(prefix.as_ref()))
        })
        .map(|listing: object_store::Result<_>| match listing {
            Ok(stream) => stream,
            Err(e) => futures_util::stream::once(std::future::ready(Err(e))).boxed(),
        })
        .flatten()
        .boxed()
    }

    async fn list_with_delimiter(
        &self,
        prefix: Option<&ObjectPath>,
    ) -> object_store::Result<ListResult> {
        let at = prefix.cloned().unwrap_or_default();
        self.gate(StoreOp::List, &at).await?;
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &ObjectPath,
        to: &ObjectPath,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.gate(StoreOp::Put, to).await?;
        if matches!(options.mode, object_store::CopyMode::Create)
            && self.shared.armed.lock().no_copies
        {
            return Err(object_store::Error::NotSupported {
                source: "FaultStore: copy-if-not-exists refused".into(),
            });
        }
        self.inner.copy_opts(from, to, options).await
    }
}
