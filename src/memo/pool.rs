//! [`RefreshPool`]: the bounded set of threads that run background refreshes.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};

use once_cell::sync::{Lazy, OnceCell};

type Job = Box<dyn FnOnce() + Send + 'static>;

/// A fixed number of threads with a bounded queue that run background refreshes
/// (stale-while-revalidate, and computations behind a [default value](super::MemoBuilder::default_value)).
///
/// A refresh submitted while the queue is full is dropped, counted in
/// [`MemoStats::dropped`](super::MemoStats::dropped), and its lock released, so a later call
/// tries again: a burst of stale keys can never start an unbounded number of threads.
/// Threads start at the first submission (building a pool does nothing) and stop when the
/// last handle to the pool, and every memoized function using it, is dropped. A refresh that
/// panics is counted as a failure; the thread survives.
///
/// Memoized functions share [`RefreshPool::global`] unless given their own with
/// [`MemoBuilder::refresh_pool`](super::MemoBuilder::refresh_pool).
///
/// # Example
///
/// ```
/// use redis_caches::memo::{Memo, RefreshPool};
///
/// let reports = RefreshPool::new(2, 16);
/// let summary = Memo::builder("summary", |day: u32| day * 2).refresh_pool(&reports).build();
/// # let _ = summary;
/// ```
#[derive(Clone)]
pub struct RefreshPool {
    inner: Arc<Inner>,
}

struct Inner {
    threads: usize,
    queue: usize,
    sender: OnceCell<Option<SyncSender<Job>>>,
}

static GLOBAL: Lazy<RefreshPool> = Lazy::new(|| RefreshPool::new(4, 256));

impl RefreshPool {
    /// A pool of `threads` threads (at least 1) and a queue of `queue` waiting refreshes (0:
    /// a refresh runs only if a thread is idle at that moment). No thread starts yet.
    ///
    /// ```
    /// let pool = redis_caches::memo::RefreshPool::new(1, 8);
    /// assert_eq!(pool.threads(), 1);
    /// ```
    pub fn new(threads: usize, queue: usize) -> RefreshPool {
        RefreshPool {
            inner: Arc::new(Inner {
                threads: threads.max(1),
                queue,
                sender: OnceCell::new(),
            }),
        }
    }

    /// The process-wide pool: 4 threads, 256 queued refreshes.
    ///
    /// ```
    /// assert_eq!(redis_caches::memo::RefreshPool::global().threads(), 4);
    /// ```
    pub fn global() -> RefreshPool {
        GLOBAL.clone()
    }

    /// The number of threads.
    ///
    /// ```
    /// assert_eq!(redis_caches::memo::RefreshPool::new(0, 0).threads(), 1);
    /// ```
    pub fn threads(&self) -> usize {
        self.inner.threads
    }

    /// The queue's capacity.
    ///
    /// ```
    /// assert_eq!(redis_caches::memo::RefreshPool::new(2, 5).queue(), 5);
    /// ```
    pub fn queue(&self) -> usize {
        self.inner.queue
    }

    /// Queues `job`; gives it back when the queue is full (or no thread could be started).
    pub(crate) fn submit(&self, job: Job) -> Result<(), Job> {
        let sender = self.inner.sender.get_or_init(|| self.start());
        match sender {
            Some(tx) => tx.try_send(job).map_err(|e| match e {
                TrySendError::Full(job) | TrySendError::Disconnected(job) => job,
            }),
            None => Err(job),
        }
    }

    fn start(&self) -> Option<SyncSender<Job>> {
        let (tx, rx) = sync_channel::<Job>(self.inner.queue);
        let rx = Arc::new(Mutex::new(rx));
        let mut started = 0;
        for i in 0..self.inner.threads {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("redis-caches-refresh-{i}"))
                .spawn(move || work(&rx));
            if spawned.is_ok() {
                started += 1;
            }
        }
        (started > 0).then_some(tx)
    }
}

fn work(rx: &Mutex<Receiver<Job>>) {
    loop {
        let job = {
            let rx = rx.lock().unwrap_or_else(PoisonError::into_inner);
            rx.recv()
        };
        match job {
            // A panicking refresh leaves its lock to expire; the thread carries on.
            Ok(job) => {
                let _ = catch_unwind(AssertUnwindSafe(job));
            }
            Err(_) => return,
        }
    }
}

impl fmt::Debug for RefreshPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshPool")
            .field("threads", &self.inner.threads)
            .field("queue", &self.inner.queue)
            .finish()
    }
}
