// Locks held for a lease: `Client::try_lock` makes one attempt and returns a
// lock that you renew and release yourself; and what anyone may read about a
// lock.
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tokio::time::sleep_until;

use crate::client::{bounded, default_name, from_proto_duration, from_proto_time, optional_duration, request};
use crate::proto;
use crate::signal::{Deadline, Ending};
use crate::{Client, Error, Loss, LossReason, LostSignal, ReadConsistency};

/// Options of [`Client::try_lock_with`].
#[derive(Debug, Clone, Default)]
pub struct TryLockOptions {
    /// Your name for the holder, shown to others. Default: `$MSYNC_HOLDER`,
    /// else host/pid.
    pub holder: Option<String>,
    /// How long the lock stays held unless renewed, in whole seconds from
    /// 1 s to 3600 s. Default: the sidecar's (15 s).
    pub lease_duration: Option<Duration>,
}

impl TryLockOptions {
    pub fn holder(mut self, holder: impl Into<String>) -> Self {
        self.holder = Some(holder.into());
        self
    }

    pub fn lease_duration(mut self, lease_duration: Duration) -> Self {
        self.lease_duration = Some(lease_duration);
        self
    }
}

/// A lock taken with [`Client::try_lock`]: held for its lease unless you
/// renew it, and given back with [`LeasedLock::release`]. Its lost signal
/// fires when the last `valid_for` runs out without a renewal, by this
/// process's monotonic clock, or when a renewal is refused.
///
/// Dropping it without releasing releases it in the background (best
/// effort); release it explicitly to know that it happened. Its calls have
/// the deadline of the client it came from, or of [`LeasedLock::with_timeout`].
#[derive(Debug)]
#[must_use = "dropping a leased lock releases it"]
pub struct LeasedLock {
    client: Client,
    name: String,
    token: i64,
    holder: String,
    lease_duration: Duration,
    ending: Ending,
    signal: LostSignal,
    deadline: Deadline,
    /// Wakes the watchdog when the deadline moves; dropping it stops the
    /// watchdog.
    moved: watch::Sender<()>,
    released: bool,
}

/// A lock as the sidecar sees it, from [`Client::get_lock`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockInfo {
    /// True while some holder has the lock and its lease has not expired.
    pub held: bool,
    /// The current or last holder's name.
    pub holder: String,
    /// The current holder's token, or the last one granted; zero if the lock
    /// was never acquired.
    pub fencing_token: i64,
    /// When the current holder acquired it, by the writing sidecar's clock.
    pub acquire_time: Option<SystemTime>,
    pub lease_duration: Duration,
    /// How long until the lease expires unless renewed.
    pub remaining: Duration,
    /// The sidecar process that holds it, as written in the Lease.
    pub holder_identity: String,
}

impl Client {
    /// Makes one attempt to take the lock, without waiting. A lock held by
    /// someone else is [`Error::NotFree`], naming the holder. Bounded by
    /// [`Client::timeout`], like every call below.
    pub async fn try_lock(&self, name: &str) -> Result<LeasedLock, Error> {
        self.try_lock_with(name, TryLockOptions::default()).await
    }

    /// [`Client::try_lock`] with options.
    pub async fn try_lock_with(&self, name: &str, options: TryLockOptions) -> Result<LeasedLock, Error> {
        let message = proto::TryAcquireRequest {
            name: name.to_owned(),
            holder: options.holder.unwrap_or_else(|| default_name(&["MSYNC_HOLDER"])),
            lease_duration: optional_duration(options.lease_duration, "lease_duration")?,
        };
        let timeout = self.timeout();
        let response = bounded(
            timeout,
            || format!("try-lock {name}"),
            self.locks.clone().try_acquire(request(message, timeout)),
        )
        .await?;
        if !response.acquired {
            return Err(Error::NotFree {
                name: name.to_owned(),
                holder: response.holder,
                fencing_token: response.fencing_token,
            });
        }

        let deadline = Deadline::after(from_proto_duration(response.valid_for));
        let (ending, signal) = Ending::new();
        let (moved, deadline_moved) = watch::channel(());
        tokio::spawn(watchdog(
            ending.clone(),
            deadline.clone(),
            deadline_moved,
            format!("lock {name} (token {})", response.fencing_token),
        ));
        Ok(LeasedLock {
            client: self.clone(),
            name: name.to_owned(),
            token: response.fencing_token,
            holder: response.holder,
            lease_duration: from_proto_duration(response.lease_duration),
            ending,
            signal,
            deadline,
            moved,
            released: false,
        })
    }

    /// Extends a lease-held lock by another lease (optionally a new one),
    /// counted from now, and returns how long the holder may act. A token
    /// that is not the current one is [`Error::NotHeld`].
    pub async fn renew(&self, name: &str, token: i64, lease_duration: Option<Duration>) -> Result<Duration, Error> {
        let message = proto::RenewRequest {
            name: name.to_owned(),
            fencing_token: token,
            lease_duration: optional_duration(lease_duration, "lease_duration")?,
        };
        let timeout = self.timeout();
        let response = bounded(
            timeout,
            || format!("renew lock {name} (token {token})"),
            self.locks.clone().renew(request(message, timeout)),
        )
        .await?;
        Ok(from_proto_duration(response.valid_for))
    }

    /// Gives back a lock by its token, and returns once the sidecar has
    /// released it; the next waiter gets it at once. A token that is not the
    /// current one (also one released before) is [`Error::NotHeld`]. For a
    /// lock held with [`Client::lock`], use [`crate::Lock::release`].
    pub async fn release(&self, name: &str, token: i64) -> Result<(), Error> {
        let message = proto::ReleaseRequest {
            name: name.to_owned(),
            fencing_token: token,
        };
        let timeout = self.timeout();
        bounded(
            timeout,
            || format!("release lock {name} (token {token})"),
            self.locks.clone().release(request(message, timeout)),
        )
        .await?;
        Ok(())
    }

    /// Who holds the lock. An unheld lock is not an error: `held` is false.
    pub async fn get_lock(&self, name: &str, consistency: ReadConsistency) -> Result<LockInfo, Error> {
        let message = proto::GetLockRequest {
            name: name.to_owned(),
            consistency: consistency.to_proto(),
        };
        let timeout = self.timeout();
        let response = bounded(
            timeout,
            || format!("get lock {name}"),
            self.locks.clone().get_lock(request(message, timeout)),
        )
        .await?;
        Ok(LockInfo {
            held: response.held,
            holder: response.holder,
            fencing_token: response.fencing_token,
            acquire_time: from_proto_time(response.acquire_time),
            lease_duration: from_proto_duration(response.lease_duration),
            remaining: from_proto_duration(response.remaining),
            holder_identity: response.holder_identity,
        })
    }
}

impl LeasedLock {
    /// This lock with `timeout` as the deadline of its later calls (renew,
    /// release) instead of its client's:
    /// `lease.with_timeout(Duration::from_secs(2)).release().await`.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.client = self.client.with_timeout(timeout);
        self
    }

    /// The deadline of each of its calls.
    pub fn timeout(&self) -> Duration {
        self.client.timeout()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The fencing token: strictly greater than every earlier token of this
    /// lock.
    pub fn token(&self) -> i64 {
        self.token
    }

    pub fn holder(&self) -> &str {
        &self.holder
    }

    pub fn lease_duration(&self) -> Duration {
        self.lease_duration
    }

    /// The lost signal: fires when the lease runs out without a renewal, or
    /// a renewal is refused; a release is a normal end.
    pub fn signal(&self) -> LostSignal {
        self.signal.clone()
    }

    pub fn is_lost(&self) -> bool {
        self.signal.is_lost()
    }

    /// How much longer the holder may act without renewing.
    pub fn valid_for(&self) -> Duration {
        if self.signal.is_over() {
            Duration::ZERO
        } else {
            self.deadline.remaining()
        }
    }

    /// Extends the lease by another lease duration (or `lease_duration`, which
    /// then applies to later renewals too) and returns how long the holder may
    /// act. A refusal ([`Error::NotHeld`]) means the lock is lost.
    pub async fn renew(&self, lease_duration: Option<Duration>) -> Result<Duration, Error> {
        match self.client.renew(&self.name, self.token, lease_duration).await {
            Ok(valid_for) => {
                if tokio::time::Instant::now() >= self.deadline.at() {
                    // Too late: the lease had run out here first, and a renewal
                    // does not revive it.
                    self.ending.lose(Loss::new(
                        LossReason::HeartbeatTimeout,
                        format!("the lease of lock {} ran out before it was renewed", self.name),
                    ));
                } else if !self.ending.is_over() {
                    self.deadline.extend(valid_for);
                    self.moved.send_replace(());
                }
                Ok(valid_for)
            }
            Err(err @ Error::NotHeld { .. }) => {
                self.ending.lose(Loss::new(LossReason::RenewRefused, err.to_string()));
                Err(err)
            }
            Err(err) => Err(err),
        }
    }

    /// Gives the lock back and returns once the sidecar has released it; the
    /// next waiter gets it at once. From the call on, its signal ends
    /// normally (a loss that follows is not reported): stop acting before you
    /// call it. A lock lost meanwhile is [`Error::NotHeld`].
    pub async fn release(mut self) -> Result<(), Error> {
        self.released = true;
        self.ending.end();
        self.client.release(&self.name, self.token).await
    }
}

impl Drop for LeasedLock {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        self.ending.end();
        let (client, name, token) = (self.client.clone(), self.name.clone(), self.token);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                // Best effort: a refusal means it was no longer ours anyway.
                let _ = client.release(&name, token).await;
            });
        }
    }
}

/// Reports the lock lost when its deadline passes; ends when the lock does.
async fn watchdog(ending: Ending, deadline: Deadline, mut moved: watch::Receiver<()>, what: String) {
    loop {
        tokio::select! {
            _ = sleep_until(deadline.at()) => {
                if tokio::time::Instant::now() >= deadline.at() {
                    ending.lose(Loss::new(
                        LossReason::HeartbeatTimeout,
                        format!("the lease of {what} ran out without a renewal"),
                    ));
                    return;
                }
            }
            changed = moved.changed() => if changed.is_err() { return },
        }
    }
}
