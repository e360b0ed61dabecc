//! hyper's timer. hyper starts a header-read timer for every request on a
//! kept-alive connection; one async-io timer each would cost a reactor
//! wake-up (an eventfd write and read) and a timer re-arm per request.
//! Instead every sleep goes into one deadline table, and ONE async-io timer
//! is armed for the earliest deadline: a sleep that ends later than it (a
//! fixed timeout started later always does) or one dropped before its
//! deadline (a request that came in time) never touches the reactor.

use std::{
    collections::BTreeMap,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex, MutexGuard, OnceLock},
    task::{Context, Poll, Wake, Waker},
    time::{Duration, Instant},
};

/// The deadlines of every pending sleep and the one reactor timer.
struct Table {
    sleeps: BTreeMap<(Instant, u64), Waker>,
    next_id: u64,
    /// The reactor timer, armed for `armed` (None: not armed).
    timer: async_io::Timer,
    armed: Option<Instant>,
    /// The timer's waker: [`Fire`], the same one every time (async-io
    /// re-registers a timer whose waker changed).
    fire: Waker,
}

fn table() -> MutexGuard<'static, Table> {
    static TABLE: OnceLock<Mutex<Table>> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        Mutex::new(Table {
            sleeps: BTreeMap::new(),
            next_id: 0,
            timer: async_io::Timer::never(),
            armed: None,
            fire: Waker::from(Arc::new(Fire)),
        })
    });
    // A panic while the table was locked leaves it consistent (every
    // change is one map operation), so a poisoned lock is still usable.
    lune_utils::lock(table)
}

/// Wakes the sleeps that are due when the reactor timer fires.
struct Fire;

impl Wake for Fire {
    fn wake(self: Arc<Self>) {
        fire();
    }
}

/// Wakes every sleep that is due and arms the reactor timer for the rest.
fn fire() {
    loop {
        let (due, again) = {
            let mut table = table();
            table.armed = None;
            let now = Instant::now();
            let mut due = Vec::new();
            while let Some(entry) = table.sleeps.first_entry() {
                if entry.key().0 > now {
                    break;
                }
                due.push(entry.remove());
            }
            (due, table.arm_for_first())
        };
        for waker in due {
            waker.wake();
        }
        if !again {
            return;
        }
    }
}

impl Table {
    /// Arms the reactor timer for the earliest deadline unless it already
    /// fires no later than that. True when that deadline has passed: the
    /// caller runs [`fire`] once it has let go of the table.
    #[must_use]
    fn arm_for_first(&mut self) -> bool {
        let Some(&(first, _)) = self.sleeps.keys().next() else {
            return false;
        };
        if self.armed.is_some_and(|armed| armed <= first) {
            return false;
        }
        self.armed = Some(first);
        self.timer.set_at(first);
        // Polling registers the timer with the reactor; one that is already
        // due is ready at once.
        let fire = self.fire.clone();
        let due = Pin::new(&mut self.timer)
            .poll(&mut Context::from_waker(&fire))
            .is_ready();
        if due {
            self.armed = None;
        }
        due
    }
}

/// One sleep; see the module docs.
struct Sleep {
    deadline: Instant,
    /// Its key in the table while it waits there.
    key: Option<(Instant, u64)>,
}

impl Sleep {
    fn new(deadline: Instant) -> Self {
        Self {
            deadline,
            key: None,
        }
    }

    fn unregister(&mut self) {
        if let Some(key) = self.key.take() {
            table().sleeps.remove(&key);
        }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.deadline {
            self.unregister();
            return Poll::Ready(());
        }
        let mut table = table();
        if let Some(key) = self.key {
            if let Some(waker) = table.sleeps.get_mut(&key) {
                if !waker.will_wake(cx.waker()) {
                    waker.clone_from(cx.waker());
                }
                return Poll::Pending;
            }
        }
        // Not in the table (new, or taken out because it was due: then the
        // clock said so above, unless it moved back).
        table.next_id += 1;
        let key = (self.deadline, table.next_id);
        table.sleeps.insert(key, cx.waker().clone());
        let due = table.arm_for_first();
        drop(table);
        self.key = Some(key);
        if due {
            fire();
        }
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.unregister();
    }
}

impl hyper::rt::Sleep for Sleep {}

/// hyper's `Timer`: sleeps in the shared deadline table.
#[derive(Clone, Copy, Default)]
pub(crate) struct HyperTimer;

impl HyperTimer {
    pub(crate) fn new() -> Self {
        Self
    }
}

impl hyper::rt::Timer for HyperTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        // A duration too long to add never ends.
        let deadline = Instant::now()
            .checked_add(duration)
            .unwrap_or_else(far_future);
        Box::pin(Sleep::new(deadline))
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(Sleep::new(deadline))
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn hyper::rt::Sleep>>, deadline: Instant) {
        match sleep.as_mut().downcast_mut_pin::<Sleep>() {
            Some(mut ours) => {
                ours.unregister();
                ours.deadline = deadline;
            }
            None => *sleep = Box::pin(Sleep::new(deadline)),
        }
    }
}

/// About thirty years from now: "never" for a deadline.
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365 * 30)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use hyper::rt::Timer;

    use super::HyperTimer;

    #[test]
    fn sleeps_end_in_deadline_order_and_dropped_ones_never_fire() {
        async_io::block_on(async {
            let timer = HyperTimer::new();
            let start = Instant::now();
            // A long sleep armed first, then a shorter one: the shorter one
            // must re-arm the reactor timer earlier.
            let long = timer.sleep(Duration::from_millis(300));
            let short = timer.sleep(Duration::from_millis(50));
            let dropped = timer.sleep(Duration::from_millis(20));
            let long = std::pin::pin!(long);
            let mut short = std::pin::pin!(short);
            let mut dropped = Box::pin(dropped);
            assert!(
                futures_lite::future::poll_once(&mut dropped)
                    .await
                    .is_none(),
                "a sleep is pending before its deadline"
            );
            drop(dropped);
            short.as_mut().await;
            let after_short = start.elapsed();
            assert!(
                after_short >= Duration::from_millis(50)
                    && after_short < Duration::from_millis(250),
                "the short sleep ended on time, not with the long one: {after_short:?}"
            );
            long.await;
            assert!(
                start.elapsed() >= Duration::from_millis(300),
                "the long sleep ran its whole time"
            );
        });
    }

    #[test]
    fn reset_moves_a_sleep() {
        async_io::block_on(async {
            let timer = HyperTimer::new();
            let start = Instant::now();
            let mut sleep = timer.sleep(Duration::from_secs(3600));
            assert!(
                futures_lite::future::poll_once(sleep.as_mut())
                    .await
                    .is_none(),
                "pending before its deadline"
            );
            timer.reset(&mut sleep, Instant::now() + Duration::from_millis(30));
            sleep.await;
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "the reset deadline applied"
            );
        });
    }
}
