//! The one door between sealdb and an object store.
//!
//! Every request sealdb makes to an object store (the cold tier, backups) goes through
//! `Bucket`, so that errors are mapped once (an [`Error::Io`] naming the object), every request
//! has a deadline, and faults can be injected beneath it with [`FaultStore`].
//!
//! The `object_store` crate is asynchronous; sealdb is not. Requests run on one small runtime
//! owned by sealdb (two worker threads, started on first use) and the calling thread waits for
//! the answer on a channel, so a sealdb call made from inside an application's own async runtime
//! blocks that thread but never panics.
//!
//! Only sealed bytes pass through here: the names of objects carry a database id and file
//! numbers, never a key or a value.

mod fault;

use std::ops::Range;
use std::sync::{mpsc, Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use futures_util::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

pub use fault::{FaultStore, StoreFault, StoreOp};

use crate::error::{Error, Result};

/// How long one request may take before it fails with `TimedOut` (uploads of large files
/// included: a 256 MiB segment at 10 MB/s takes under 30 s).
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// sealdb's handle on an object store and a prefix in it.
#[derive(Clone, Debug)]
pub(crate) struct Bucket {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    timeout: Duration,
}

impl Bucket {
    /// Objects of this bucket live under `prefix` (no leading or trailing `/` needed).
    pub(crate) fn new(store: Arc<dyn ObjectStore>, prefix: &str) -> Bucket {
        Bucket { store, prefix: prefix.trim_matches('/').to_owned(), timeout: DEFAULT_TIMEOUT }
    }

    /// The same bucket with another per-request deadline.
    #[must_use]
    pub(crate) fn with_timeout(mut self, timeout: Duration) -> Bucket {
        self.timeout = timeout;
        self
    }

    /// The full path of object `name` (relative to the prefix), as error messages show it.
    pub(crate) fn path(&self, name: &str) -> ObjectPath {
        if self.prefix.is_empty() {
            ObjectPath::from(name)
        } else {
            ObjectPath::from(format!("{}/{name}", self.prefix))
        }
    }

    /// The store and prefix, for messages: `store/prefix`.
    pub(crate) fn describe(&self) -> String {
        format!("{}/{}", self.store, self.prefix)
    }

    /// Writes object `name` only if no object of that name exists: an existing one is an
    /// `Io` error of kind `AlreadyExists`, and is left as it was.
    pub(crate) fn put_new(&self, name: &str, bytes: Bytes) -> Result<()> {
        let path = self.path(name);
        let store = Arc::clone(&self.store);
        let at = path.clone();
        self.run("put", &path, async move {
            let opts = PutOptions { mode: PutMode::Create, ..PutOptions::default() };
            store.put_opts(&at, PutPayload::from(bytes), opts).await.map(|_| ())
        })
    }

    /// Copies object `from` to the new name `to` inside the store, create-if-absent (an
    /// existing `to` is an `Io` error of kind `AlreadyExists`, left as it was). A store that
    /// cannot copy conditionally (S3 without a configured mechanism) answers `Unsupported`;
    /// a missing `from` is `NotFound`. Errors name `from`.
    pub(crate) fn copy_new(&self, from: &str, to: &str) -> Result<()> {
        let path = self.path(from);
        let store = Arc::clone(&self.store);
        let (src, dst) = (path.clone(), self.path(to));
        self.run("copy", &path, async move { store.copy_if_not_exists(&src, &dst).await })
    }

    /// The whole of object `name`.
    pub(crate) fn get(&self, name: &str) -> Result<Bytes> {
        let path = self.path(name);
        let store = Arc::clone(&self.store);
        let at = path.clone();
        self.run("get", &path, async move { store.get(&at).await?.bytes().await })
    }

    /// Bytes `range` of object `name`: one ranged GET. The answer may be shorter than asked
    /// when the object is (the caller compares with the size it pinned).
    pub(crate) fn get_range(&self, name: &str, range: Range<u64>) -> Result<Bytes> {
        let path = self.path(name);
        let store = Arc::clone(&self.store);
        let at = path.clone();
        self.run("get_range", &path, async move { store.get_range(&at, range).await })
    }

    /// The size of object `name`, or `None` when there is no such object.
    pub(crate) fn size(&self, name: &str) -> Result<Option<u64>> {
        let path = self.path(name);
        let store = Arc::clone(&self.store);
        let at = path.clone();
        self.run("head", &path, async move {
            match store.head(&at).await {
                Ok(meta) => Ok(Some(meta.size)),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        })
    }

    /// Deletes object `name`; deleting an object that is not there succeeds.
    pub(crate) fn delete(&self, name: &str) -> Result<()> {
        let path = self.path(name);
        let store = Arc::clone(&self.store);
        let at = path.clone();
        self.run("delete", &path, async move {
            match store.delete(&at).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(e),
            }
        })
    }

    /// Every object under `sub` (a path relative to the prefix; `""` for all), as names
    /// relative to the prefix with their sizes, sorted by name.
    pub(crate) fn list(&self, sub: &str) -> Result<Vec<(String, u64)>> {
        let path = self.path(sub.trim_matches('/'));
        let store = Arc::clone(&self.store);
        let at = path.clone();
        let mut found: Vec<(String, u64)> = self.run("list", &path, async move {
            let prefix = if at.as_ref().is_empty() { None } else { Some(&at) };
            store
                .list(prefix)
                .map_ok(|meta| (meta.location.to_string(), meta.size))
                .try_collect()
                .await
        })?;
        let strip = if self.prefix.is_empty() { 0 } else { self.prefix.len() + 1 };
        for entry in &mut found {
            entry.0 = entry.0.get(strip..).unwrap_or_default().to_owned();
        }
        found.sort_unstable();
        Ok(found)
    }

    /// Runs one request on sealdb's runtime with this bucket's deadline and maps its error.
    fn run<T, F>(&self, op: &str, path: &ObjectPath, request: F) -> Result<T>
    where
        T: Send + 'static,
        F: std::future::Future<Output = object_store::Result<T>> + Send + 'static,
    {
        let timeout = self.timeout;
        let answer = block_on(async move { tokio::time::timeout(timeout, request).await });
        match answer {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(store_error(op, &self.store, path, &e)),
            Err(_) => Err(Error::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("object store {}: {op} {path}: no answer within {timeout:?}", self.store),
            ))),
        }
    }
}

/// Maps an `object_store` error to an `Error::Io` naming the store, the request and the object.
fn store_error(
    op: &str,
    store: &Arc<dyn ObjectStore>,
    path: &ObjectPath,
    e: &object_store::Error,
) -> Error {
    use std::io::ErrorKind;
    let kind =
        match e {
            object_store::Error::NotFound { .. } => ErrorKind::NotFound,
            object_store::Error::AlreadyExists { .. }
            | object_store::Error::Precondition { .. } => ErrorKind::AlreadyExists,
            object_store::Error::NotSupported { .. }
            | object_store::Error::NotImplemented { .. } => ErrorKind::Unsupported,
            _ => ErrorKind::Other,
        };
    Error::Io(std::io::Error::new(kind, format!("object store {store}: {op} {path}: {e}")))
}

/// sealdb's own runtime for object-store requests, started on first use and never stopped.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("sealdb-objstore")
            .enable_all()
            .build()
            .expect("sealdb: cannot start the object-store runtime (out of threads?)")
    })
}

/// Runs `future` on sealdb's runtime and waits for it on this thread.
fn block_on<T, F>(future: F) -> T
where
    T: Send + 'static,
    F: std::future::Future<Output = T> + Send + 'static,
{
    let (tx, rx) = mpsc::sync_channel(1);
    runtime().spawn(async move {
        let _ = tx.send(future.await);
    });
    rx.recv().expect("sealdb: an object-store request task panicked")
}

/// An S3 (or S3-compatible) store for `bucket`, configured from the standard `AWS_*`
/// environment variables (`AWS_ENDPOINT` and `AWS_ALLOW_HTTP=true` for a local server).
pub(crate) fn s3_from_env(bucket: &str) -> Result<Arc<dyn ObjectStore>> {
    // TLS through rustls on ring, the cipher library sealdb already uses; installing the
    // process default fails harmlessly when the application installed one first.
    #[expect(
        deprecated,
        reason = "ring has no post-quantum key exchange; sealdb keeps one crypto library rather than adding aws-lc-rs"
    )]
    let provider = rustls::crypto::ring::default_provider();
    let _ = provider.install_default();
    let store = object_store::aws::AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .build()
        .map_err(|e| Error::InvalidArgument(format!("S3 bucket {bucket}: {e}")))?;
    Ok(Arc::new(store))
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;

    fn bucket() -> Bucket {
        Bucket::new(Arc::new(InMemory::new()), "db/x")
    }

    #[test]
    fn put_new_refuses_an_existing_name_and_keeps_it() {
        let b = bucket();
        b.put_new("a/1", Bytes::from_static(b"first")).unwrap();
        let err = b.put_new("a/1", Bytes::from_static(b"other")).unwrap_err();
        match err {
            Error::Io(e) => {
                assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
                assert!(e.to_string().contains("db/x/a/1"), "{e}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(&b.get("a/1").unwrap()[..], b"first");
    }

    #[test]
    fn ranges_sizes_lists_and_deletes() {
        let b = bucket();
        b.put_new("t/2", Bytes::from_static(b"0123456789")).unwrap();
        b.put_new("t/1", Bytes::from_static(b"abc")).unwrap();
        assert_eq!(&b.get_range("t/2", 3..6).unwrap()[..], b"345");
        assert_eq!(b.size("t/2").unwrap(), Some(10));
        assert_eq!(b.size("t/3").unwrap(), None);
        assert_eq!(b.list("t").unwrap(), vec![("t/1".to_owned(), 3), ("t/2".to_owned(), 10)]);
        b.delete("t/1").unwrap();
        b.delete("t/1").unwrap();
        assert_eq!(b.list("").unwrap(), vec![("t/2".to_owned(), 10)]);
        let missing = b.get("t/1").unwrap_err();
        assert!(matches!(&missing, Error::Io(e) if e.kind() == std::io::ErrorKind::NotFound));
    }

    #[test]
    fn copies_are_create_if_absent() {
        let b = bucket();
        b.put_new("a/1", Bytes::from_static(b"first")).unwrap();
        b.put_new("a/2", Bytes::from_static(b"other")).unwrap();
        b.copy_new("a/1", "b/1").unwrap();
        assert_eq!(&b.get("b/1").unwrap()[..], b"first");
        let err = b.copy_new("a/2", "b/1").unwrap_err();
        assert!(matches!(&err, Error::Io(e) if e.kind() == std::io::ErrorKind::AlreadyExists));
        assert_eq!(&b.get("b/1").unwrap()[..], b"first");
        let missing = b.copy_new("a/3", "b/3").unwrap_err();
        assert!(matches!(&missing, Error::Io(e) if e.kind() == std::io::ErrorKind::NotFound));
        assert!(missing.to_string().contains("db/x/a/3"), "{missing}");
    }

    #[test]
    fn a_slow_store_times_out_with_the_object_named() {
        let slow = FaultStore::new(Arc::new(InMemory::new()));
        slow.set_latency(Duration::from_millis(300));
        let b = Bucket::new(Arc::new(slow), "p").with_timeout(Duration::from_millis(50));
        let err = b.put_new("obj", Bytes::from_static(b"x")).unwrap_err();
        assert!(matches!(&err, Error::Io(e) if e.kind() == std::io::ErrorKind::TimedOut), "{err}");
        assert!(err.to_string().contains("p/obj"), "{err}");
    }
}
