//! [`Signal`]: named, in-process events that invalidate [`Region`](crate::Region)s.
//!
//! A signal is a list of receivers kept in this process:
//! [`Region::invalidate_on`](crate::Region::invalidate_on) connects a region, and
//! [`Signal::send`] calls every receiver. Signals do not travel between processes; an
//! invalidation does, since it deletes the data in Redis for everyone.
//!
//! # Example
//!
//! ```no_run
//! use redis_caches::{Region, Signal};
//!
//! let profiles = Region::new("profiles");
//! let avatars = Region::new("avatars");
//! let user_updated = Signal::named("user-updated");
//! profiles.invalidate_on(&user_updated);
//! avatars.invalidate_on(&user_updated);
//!
//! // Later, wherever a user is saved:
//! let invalidated = user_updated.send()?;
//! assert_eq!(invalidated, 2);
//! # Ok::<(), redis_caches::Error>(())
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use once_cell::sync::Lazy;

use crate::error::Result;

type Receiver = Arc<dyn Fn() -> Result<()> + Send + Sync>;

/// A named event with receivers in this process. Cheap to clone; clones, and every
/// [`Signal::named`] call with the same name, share the receivers.
///
/// `Debug` shows the name and the number of receivers.
///
/// # Example
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
/// use redis_caches::Signal;
///
/// let calls = Arc::new(AtomicUsize::new(0));
/// let seen = calls.clone();
/// let saved = Signal::named("doc-example-saved");
/// let subscription = saved.connect(move || { seen.fetch_add(1, Ordering::SeqCst); Ok(()) });
/// assert_eq!(Signal::named("doc-example-saved").send()?, 1);
/// assert!(saved.disconnect(subscription));
/// assert_eq!(saved.send()?, 0);
/// assert_eq!(calls.load(Ordering::SeqCst), 1);
/// # Ok::<(), redis_caches::Error>(())
/// ```
#[derive(Clone)]
pub struct Signal {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    next_id: AtomicU64,
    receivers: Mutex<Vec<(u64, Receiver)>>,
}

/// Identifies one receiver of a [`Signal`], to [disconnect](Signal::disconnect) it.
///
/// ```
/// let s = redis_caches::Signal::anonymous("s");
/// let subscription: redis_caches::signal::Subscription = s.connect(|| Ok(()));
/// assert!(s.disconnect(subscription));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Subscription(u64);

static NAMED: Lazy<Mutex<HashMap<String, Signal>>> = Lazy::new(|| Mutex::new(HashMap::new()));

impl fmt::Debug for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signal")
            .field("name", &self.inner.name)
            .field("receivers", &self.receiver_count())
            .finish()
    }
}

impl Signal {
    /// The process-wide signal with this name, created on first use: every call with the same
    /// name returns the same signal.
    ///
    /// ```
    /// use redis_caches::Signal;
    /// let a = Signal::named("order-placed");
    /// let b = Signal::named("order-placed");
    /// a.connect(|| Ok(()));
    /// assert_eq!(b.receiver_count(), a.receiver_count());
    /// ```
    pub fn named(name: &str) -> Signal {
        let mut named = lock(&NAMED);
        named
            .entry(name.to_string())
            .or_insert_with(|| Signal::anonymous(name))
            .clone()
    }

    /// A new signal that [`Signal::named`] does not know: only its clones share its
    /// receivers. The name is for `Debug` only.
    ///
    /// ```
    /// use redis_caches::Signal;
    /// let local = Signal::anonymous("cache-reset");
    /// assert_eq!(Signal::named("cache-reset").receiver_count(), 0);
    /// # let _ = local;
    /// ```
    pub fn anonymous(name: &str) -> Signal {
        Signal {
            inner: Arc::new(Inner {
                name: name.to_string(),
                next_id: AtomicU64::new(0),
                receivers: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The signal's name.
    ///
    /// ```
    /// assert_eq!(redis_caches::Signal::named("x").name(), "x");
    /// ```
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Adds a receiver, called on every [`send`](Signal::send) until it is disconnected.
    ///
    /// ```
    /// let s = redis_caches::Signal::anonymous("s");
    /// let sub = s.connect(|| Ok(()));
    /// assert!(s.disconnect(sub));
    /// ```
    pub fn connect(
        &self,
        receiver: impl Fn() -> Result<()> + Send + Sync + 'static,
    ) -> Subscription {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        lock(&self.inner.receivers).push((id, Arc::new(receiver)));
        Subscription(id)
    }

    /// Removes a receiver; `false` when it was not connected (to this signal).
    ///
    /// ```
    /// let s = redis_caches::Signal::anonymous("s");
    /// let sub = s.connect(|| Ok(()));
    /// assert!(s.disconnect(sub));
    /// assert!(!s.disconnect(sub));
    /// ```
    pub fn disconnect(&self, subscription: Subscription) -> bool {
        let mut receivers = lock(&self.inner.receivers);
        let before = receivers.len();
        receivers.retain(|(id, _)| *id != subscription.0);
        receivers.len() != before
    }

    /// How many receivers are connected.
    ///
    /// ```
    /// assert_eq!(redis_caches::Signal::anonymous("s").receiver_count(), 0);
    /// ```
    pub fn receiver_count(&self) -> usize {
        lock(&self.inner.receivers).len()
    }

    /// Calls every receiver (for regions: invalidates each, one round trip each), in the
    /// order they were connected, and returns how many succeeded. Receivers run on the
    /// calling thread, without any lock held, so they may connect or disconnect receivers.
    ///
    /// # Errors
    ///
    /// When receivers fail, every other receiver is still called, and the first error is
    /// returned (for a region, it names the region's key).
    ///
    /// ```no_run
    /// let n = redis_caches::Signal::named("user-updated").send()?;
    /// # Ok::<(), redis_caches::Error>(())
    /// ```
    pub fn send(&self) -> Result<usize> {
        let receivers: Vec<Receiver> = lock(&self.inner.receivers)
            .iter()
            .map(|(_, r)| r.clone())
            .collect();
        let mut first_error = None;
        let mut succeeded = 0;
        for receiver in receivers {
            match receiver() {
                Ok(()) => succeeded += 1,
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(succeeded),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
