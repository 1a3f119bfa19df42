// Locks held for as long as you keep them: `Client::lock` waits for the lock
// and returns a guard; the sidecar renews it until the guard is released or
// dropped.
use std::time::{Duration, SystemTime};

use crate::client::{
    DEFAULT_WAIT_TIMEOUT, default_name, from_proto_duration, from_proto_time, optional_duration, to_proto_duration,
};
use crate::hold::{Hold, StreamHold, await_grant, stream_hold_api};
use crate::proto;
use crate::{Client, Error};

/// Options of [`Client::lock_with`].
#[derive(Debug, Clone, Default)]
pub struct LockOptions {
    /// Your name for the holder, shown to others. Default: `$MSYNC_HOLDER`,
    /// else host/pid.
    pub holder: Option<String>,
    /// How long the lock outlives a sidecar that stopped renewing it, in
    /// whole seconds from 1 s to 3600 s. Default: the sidecar's (15 s).
    pub lease_duration: Option<Duration>,
    /// How long to wait for the lock before failing with
    /// [`Error::WaitTimeout`]; zero fails at once if it is held. Sent to the
    /// sidecar, and kept on this client's clock too (plus
    /// [`crate::WAIT_TIMEOUT_GRACE`]), so it holds even if the sidecar never
    /// answers. At most 24 hours. Default: [`crate::DEFAULT_WAIT_TIMEOUT`]
    /// (5 minutes).
    pub wait_timeout: Option<Duration>,
    /// Whether waiters of every sidecar get the lock first come, first
    /// served. Default: `true`. With `false`, when a client of this
    /// waiter's sidecar releases the lock, the sidecar may hand it straight
    /// to this waiter (one Lease write) ahead of other sidecars' waiters, up
    /// to 16 grants in a row: more handoffs per second on a hot lock, at the
    /// cost of order. Only [`Client::lock_with`] reads it: a semaphore's and
    /// a read-write lock's acquisition have no such choice.
    pub fair: Option<bool>,
}

impl LockOptions {
    pub fn holder(mut self, holder: impl Into<String>) -> Self {
        self.holder = Some(holder.into());
        self
    }

    pub fn lease_duration(mut self, lease_duration: Duration) -> Self {
        self.lease_duration = Some(lease_duration);
        self
    }

    pub fn wait_timeout(mut self, wait_timeout: Duration) -> Self {
        self.wait_timeout = Some(wait_timeout);
        self
    }

    pub fn fair(mut self, fair: bool) -> Self {
        self.fair = Some(fair);
        self
    }

    /// The wait to send and keep: the one given, else [`DEFAULT_WAIT_TIMEOUT`].
    pub(crate) fn wait_or_default(&self) -> Duration {
        self.wait_timeout.unwrap_or(DEFAULT_WAIT_TIMEOUT)
    }
}

/// A held lock. The sidecar renews it until you call [`Lock::release`] or
/// drop the guard; either releases it and the next waiter gets it at once.
///
/// Act only while it is not lost, and pass [`Lock::token`] to every resource
/// you write to. [`Lock::lost`] resolves the moment you must stop: the
/// sidecar reported the lock lost, its stream ended, or no heartbeat arrived
/// before the last one ran out (this client's own deadline, on the monotonic
/// clock, which holds even if the sidecar froze).
#[derive(Debug)]
#[must_use = "dropping the guard releases the lock at once"]
pub struct Lock {
    name: String,
    token: i64,
    holder: String,
    acquire_time: Option<SystemTime>,
    lease_duration: Duration,
    /// The stream and what follows it; dropping it releases the lock.
    hold: StreamHold,
}

/// Fairness as the proto carries it: non-fair only when asked, else unset
/// (which the sidecar takes as fair), so that a default request is the same
/// as before the choice existed.
fn fairness_to_proto(fair: Option<bool>) -> i32 {
    match fair {
        Some(false) => proto::Fairness::NonFair as i32,
        Some(true) | None => proto::Fairness::Unspecified as i32,
    }
}

impl Client {
    /// Waits for the named lock and holds it until the guard is released or
    /// dropped:
    ///
    /// ```no_run
    /// # async fn run(client: metaparticle_sync::Client) -> Result<(), metaparticle_sync::Error> {
    /// let lock = client.lock("db-migration").await?;
    /// println!("fencing token {}", lock.token());
    /// lock.release().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// It waits at most the wait timeout ([`crate::DEFAULT_WAIT_TIMEOUT`],
    /// 5 minutes, unless [`LockOptions::wait_timeout`] says otherwise), then
    /// fails with [`Error::WaitTimeout`]; a deadline given with
    /// [`Client::with_timeout`] bounds the wait too, and running out of that
    /// is [`Error::DeadlineExceeded`]. Dropping the future stops waiting.
    pub async fn lock(&self, name: &str) -> Result<Lock, Error> {
        self.lock_with(name, LockOptions::default()).await
    }

    /// [`Client::lock`] with options.
    pub async fn lock_with(&self, name: &str, options: LockOptions) -> Result<Lock, Error> {
        let wait = options.wait_or_default();
        let message = proto::AcquireRequest {
            name: name.to_owned(),
            holder: options.holder.unwrap_or_else(|| default_name(&["MSYNC_HOLDER"])),
            lease_duration: optional_duration(options.lease_duration, "lease_duration")?,
            wait_timeout: Some(to_proto_duration(wait, "wait_timeout")?),
            fairness: fairness_to_proto(options.fair),
        };
        let mut locks = self.locks.clone();
        let (stream, acquired) = await_grant(self, &format!("lock {name}"), wait, locks.acquire(message)).await?;
        let hold = Hold::Lock {
            name: name.to_owned(),
            token: acquired.fencing_token,
        };
        Ok(Lock {
            name: name.to_owned(),
            token: acquired.fencing_token,
            holder: acquired.holder,
            acquire_time: from_proto_time(acquired.acquire_time),
            lease_duration: from_proto_duration(acquired.lease_duration),
            hold: StreamHold::follow(self, hold, stream, from_proto_duration(acquired.valid_for)),
        })
    }
}

impl Lock {
    stream_hold_api!("lock", "strictly greater than every earlier token of this lock");

    /// Releases the lock and returns once the sidecar has released it, so
    /// the next holder may be granted it.
    ///
    /// From the call on, the lock's signal ends normally (a loss that
    /// follows is not reported): stop acting before you call it. It waits
    /// for the sidecar's answer until its deadline ([`Lock::timeout`]) or the
    /// end of the lock's last promise ([`Lock::valid_for`]), whichever comes
    /// first. Past the promise the hold is over anyway, so that is a normal
    /// return; past the deadline with the promise still running it fails
    /// with [`Error::DeadlineExceeded`], and the sidecar releases the lock
    /// when it can. A lock already lost has nothing to release. Dropping the
    /// guard instead closes its stream, which makes the sidecar release the
    /// lock, without saying when it has.
    pub async fn release(mut self) -> Result<(), Error> {
        self.hold.release().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_non_fair_lock_sends_a_fairness() {
        let unset = proto::Fairness::Unspecified as i32;
        assert_eq!(fairness_to_proto(LockOptions::default().fair), unset);
        assert_eq!(fairness_to_proto(LockOptions::default().fair(true).fair), unset);
        assert_eq!(
            fairness_to_proto(LockOptions::default().fair(false).fair),
            proto::Fairness::NonFair as i32
        );
    }
}
