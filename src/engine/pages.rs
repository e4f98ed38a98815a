//! Paged reads for the iterators: one page read ahead, where the next page starts, and one
//! rule for errors (yielded once, then the iteration ends).

use redis::FromRedisValue;

use super::Engine;
use crate::codec::Codec;
use crate::connection::Retry;
use crate::error::Result;

/// What an iterator has read ahead: the rest of the current page, and the position (a `SCAN`
/// cursor, a rank) of the next page, `None` once the last page was read or a read failed.
/// Memory is bounded by one page.
pub(crate) struct Pages<P, I> {
    next: Option<P>,
    page: std::vec::IntoIter<I>,
}

impl<P: Copy, I> Pages<P, I> {
    /// Pages from `start` on; nothing is read yet.
    pub(crate) fn new(start: P) -> Self {
        Pages {
            next: Some(start),
            page: Vec::new().into_iter(),
        }
    }

    /// The next item. When the current page is used up, reads the next one with `read`
    /// (given its position, it returns the page's items and the position of the page after
    /// it, `None` for the last), skipping empty pages. An error from `read` is returned once
    /// and ends the pages.
    pub(crate) fn next(
        &mut self,
        mut read: impl FnMut(P) -> Result<(Vec<I>, Option<P>)>,
    ) -> Option<Result<I>> {
        loop {
            if let Some(item) = self.page.next() {
                return Some(Ok(item));
            }
            match read(self.next?) {
                Ok((items, next)) => {
                    self.next = next;
                    self.page = items.into_iter();
                }
                Err(e) => {
                    self.next = None;
                    return Some(Err(e));
                }
            }
        }
    }

    /// Where the next page starts; `None` once the last one was read (or a read failed).
    pub(crate) fn next_position(&self) -> Option<P> {
        self.next
    }

    /// How many items of the current page are left.
    pub(crate) fn buffered(&self) -> usize {
        self.page.len()
    }
}

/// Reads one page of a SCAN-family command (`HSCAN`, `SSCAN`, `ZSCAN`) over the collection's
/// key: `command key cursor COUNT count`, one round trip with its own deadline. Returns the
/// items and the next cursor, `None` when the scan is complete; fits [`Pages::next`].
pub(crate) fn scan_page<C: Codec, I: FromRedisValue>(
    engine: &Engine<C>,
    command: &str,
    cursor: u64,
    count: usize,
) -> Result<(Vec<I>, Option<u64>)> {
    scan_page_of(engine, &engine.resolved()?.key, command, cursor, count)
}

/// [`scan_page`] of another key than the engine's own, in the same slot (a region's link
/// set).
pub(crate) fn scan_page_of<C: Codec, I: FromRedisValue>(
    engine: &Engine<C>,
    key: &str,
    command: &str,
    cursor: u64,
    count: usize,
) -> Result<(Vec<I>, Option<u64>)> {
    let mut cmd = redis::cmd(command);
    cmd.arg(key).arg(cursor).arg("COUNT").arg(count);
    let (next, items): (u64, Vec<I>) = engine.query(&cmd, Retry::Idempotent)?;
    Ok((items, (next != 0).then_some(next)))
}
