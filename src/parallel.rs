//! A bounded parallel map over a slice, on scoped threads (no async runtime: every unit of work
//! is a blocking child process).

use std::sync::atomic::{AtomicUsize, Ordering};

/// Applies `f` to every item with at most `parallelism` calls running at once, keeping order.
pub fn map<T: Sync, R: Send>(
    items: &[T],
    parallelism: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let lanes = parallelism.max(1).min(items.len());
    if lanes <= 1 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    // Each lane keeps what it computed with the item's index; every index is taken exactly
    // once, so sorting the pairs by index gives one result per item, in order.
    let mut done: Vec<(usize, R)> = std::thread::scope(|s| {
        let lanes: Vec<_> = (0..lanes)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break };
                        mine.push((i, f(item)));
                    }
                    mine
                })
            })
            .collect();
        lanes
            .into_iter()
            .flat_map(|lane| match lane.join() {
                Ok(mine) => mine,
                // A panic in `f` is a bug: it goes on up, as it would without threads.
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    });
    done.sort_unstable_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_bounds_concurrency() {
        let running = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        let items: Vec<usize> = (0..50).collect();
        let out = map(&items, 4, |i| {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(2));
            running.fetch_sub(1, Ordering::SeqCst);
            i * 2
        });
        assert_eq!(out, items.iter().map(|i| i * 2).collect::<Vec<_>>());
        assert!(peak.load(Ordering::SeqCst) <= 4);
        assert!(peak.load(Ordering::SeqCst) >= 2);
    }
}
