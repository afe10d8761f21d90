//! The time an action may take. Every wait in every agent is bounded by one of these.

use std::time::{Duration, Instant};

/// A point in time by which the current action must have returned.
#[derive(Clone, Copy, Debug)]
pub struct Deadline {
    end: Instant,
}

impl Deadline {
    /// Head room kept before Pacemaker's own timeout fires (which SIGKILLs the process group):
    /// a tenth of the budget, at most 2 s.
    pub fn margin(total: Duration) -> Duration {
        (total / 10).min(Duration::from_secs(2))
    }

    /// A deadline for an action with `total` budget, minus [`Deadline::margin`].
    pub fn for_budget(total: Duration) -> Self {
        Deadline {
            end: Instant::now() + total - Self::margin(total),
        }
    }

    /// From `OCF_RESKEY_CRM_meta_timeout` (ms) when set, else the action's advertised timeout.
    pub fn from_timeout_ms(timeout_ms: Option<u64>, advertised: Duration) -> Self {
        Self::for_budget(timeout_ms.map(Duration::from_millis).unwrap_or(advertised))
    }

    /// Exactly `d` from now (no margin): for helpers and tests.
    pub fn after(d: Duration) -> Self {
        Deadline {
            end: Instant::now() + d,
        }
    }

    pub fn remaining(&self) -> Duration {
        self.end.saturating_duration_since(Instant::now())
    }

    pub fn expired(&self) -> bool {
        self.remaining().is_zero()
    }

    /// A sub-deadline: `num/den` of what is left now (e.g. 2/3 for a graceful stop).
    pub fn portion(&self, num: u32, den: u32) -> Deadline {
        Deadline::after(self.remaining() * num / den.max(1))
    }

    /// The earlier of this deadline and `d` from now.
    pub fn cap(&self, d: Duration) -> Deadline {
        Deadline::after(self.remaining().min(d))
    }

    /// Call `f` until it yields `Some`, or the deadline passes (then `None`).
    /// Waits between tries start at 5 ms and double up to `max_step`; never past the deadline.
    pub fn poll<T>(&self, max_step: Duration, f: impl FnMut() -> Option<T>) -> Option<T> {
        self.poll_from(Duration::from_millis(5), max_step, f)
    }

    /// As [`Deadline::poll`], with the first wait `first` (e.g. a remote API whose
    /// answer cannot change within 5 ms, and that must not be asked that often).
    pub fn poll_from<T>(
        &self,
        first: Duration,
        max_step: Duration,
        mut f: impl FnMut() -> Option<T>,
    ) -> Option<T> {
        let mut step = first.min(max_step);
        loop {
            if let Some(v) = f() {
                return Some(v);
            }
            let left = self.remaining();
            if left.is_zero() {
                return None;
            }
            std::thread::sleep(step.min(left));
            step = (step * 2).min(max_step);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_from_waits_its_first_step_then_doubles_to_the_cap() {
        let d = Deadline::after(Duration::from_secs(5));
        let mut at = Vec::new();
        let t0 = std::time::Instant::now();
        let got = d.poll_from(Duration::from_millis(40), Duration::from_millis(60), || {
            at.push(t0.elapsed());
            (at.len() == 4).then_some(at.len())
        });
        assert_eq!(got, Some(4));
        // Tries at 0, >= 40, >= 40 + 60, >= 40 + 60 + 60 ms.
        assert!(at[1] >= Duration::from_millis(40), "{at:?}");
        assert!(at[2] - at[1] >= Duration::from_millis(60), "{at:?}");
        assert!(at[3] - at[2] >= Duration::from_millis(60), "{at:?}");
        // A deadline that passes first: None, and never a wait past it.
        let short = Deadline::after(Duration::from_millis(30));
        let t0 = std::time::Instant::now();
        let none: Option<()> =
            short.poll_from(Duration::from_secs(1), Duration::from_secs(1), || None);
        assert!(none.is_none());
        assert!(t0.elapsed() < Duration::from_millis(500));
    }

    #[test]
    fn margin_is_a_tenth_capped_at_two_seconds() {
        assert_eq!(
            Deadline::margin(Duration::from_secs(20)),
            Duration::from_secs(2)
        );
        assert_eq!(
            Deadline::margin(Duration::from_secs(5)),
            Duration::from_millis(500)
        );
        assert_eq!(
            Deadline::margin(Duration::from_secs(120)),
            Duration::from_secs(2)
        );
    }

    #[test]
    fn from_timeout_prefers_pacemaker_value() {
        let d = Deadline::from_timeout_ms(Some(3000), Duration::from_secs(100));
        let r = d.remaining();
        assert!(
            r <= Duration::from_millis(2700) && r > Duration::from_millis(2000),
            "{r:?}"
        );
        let d = Deadline::from_timeout_ms(None, Duration::from_secs(20));
        let r = d.remaining();
        assert!(
            r <= Duration::from_secs(18) && r > Duration::from_secs(17),
            "{r:?}"
        );
    }

    #[test]
    fn portion_and_cap() {
        let d = Deadline::after(Duration::from_secs(3));
        let p = d.portion(2, 3).remaining();
        assert!(
            p <= Duration::from_secs(2) && p > Duration::from_millis(1900),
            "{p:?}"
        );
        assert!(d.cap(Duration::from_millis(10)).remaining() <= Duration::from_millis(10));
        assert!(d.portion(1, 0).remaining() <= Duration::from_secs(3));
    }

    #[test]
    fn poll_gives_up_at_the_deadline() {
        let d = Deadline::after(Duration::from_millis(60));
        let mut calls = 0;
        let t = Instant::now();
        let r: Option<()> = d.poll(Duration::from_millis(20), || {
            calls += 1;
            None
        });
        assert!(r.is_none());
        assert!(t.elapsed() >= Duration::from_millis(60));
        assert!(t.elapsed() < Duration::from_millis(500));
        assert!(calls >= 3, "polled {calls} times");
    }

    #[test]
    fn poll_returns_the_first_value() {
        let d = Deadline::after(Duration::from_secs(5));
        let mut n = 0;
        assert_eq!(
            d.poll(Duration::from_millis(10), || {
                n += 1;
                (n == 3).then_some(n)
            }),
            Some(3)
        );
        assert!(Deadline::after(Duration::ZERO).expired());
    }
}
