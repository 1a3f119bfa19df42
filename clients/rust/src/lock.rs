// Locks held for as long as you keep them: `Client::lock` waits for the lock
// and returns a guard; the sidecar renews it until the guard is released or
// dropped.
use std::future::Future;
use std::time::{Duration, SystemTime};

use tokio::sync::oneshot;
use tokio::time::{Instant, sleep_until, timeout_at};
use tonic::{Status, Streaming};

use crate::client::{
    DEFAULT_WAIT_TIMEOUT, WAIT_TIMEOUT_GRACE, call_error, default_name, from_proto_duration, from_proto_time,
    optional_duration, request, to_proto_duration,
};
use crate::proto::{self, acquire_response};
use crate::signal::{Deadline, Ending};
use crate::{Client, Error, Loss, LossReason, LostSignal};

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
    ending: Ending,
    signal: LostSignal,
    deadline: Deadline,
    /// For the release, with its deadline.
    client: Client,
    /// Makes the task that follows the stream end it, when sent or dropped.
    end_stream: Option<oneshot::Sender<()>>,
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
        let wait = options.wait_timeout.unwrap_or(DEFAULT_WAIT_TIMEOUT);
        let message = proto::AcquireRequest {
            name: name.to_owned(),
            holder: options.holder.unwrap_or_else(|| default_name(&["MSYNC_HOLDER"])),
            lease_duration: optional_duration(options.lease_duration, "lease_duration")?,
            wait_timeout: Some(to_proto_duration(wait, "wait_timeout")?),
        };
        // The sidecar ends the wait; this client's own clock ends it a little
        // later if the sidecar cannot, and the caller's deadline may end it
        // sooner.
        let started = Instant::now();
        let wait_ends = started + wait.saturating_add(WAIT_TIMEOUT_GRACE);
        let call_ends = self.explicit_timeout().map(|timeout| started + timeout);
        let mut locks = self.locks.clone();
        let waiting = async {
            // No grpc-timeout: the stream lasts as long as the lock is held.
            let mut stream = locks.acquire(message).await?.into_inner();
            let first = stream.message().await?;
            Ok::<_, Status>((stream, first))
        };
        let (stream, first) = match timeout_at(call_ends.map_or(wait_ends, |at| at.min(wait_ends)), waiting).await {
            Ok(Ok(granted)) => granted,
            Ok(Err(status)) => return Err(wait_error(status)),
            Err(_) if call_ends.is_some_and(|at| at < wait_ends) => {
                let timeout = self.timeout();
                return Err(Error::deadline_exceeded(format!("lock {name}"), timeout));
            }
            Err(_) => {
                return Err(Error::WaitTimeout {
                    message: format!(
                        "lock {name} was not granted within its wait timeout of {wait:?}, and the sidecar did not say so"
                    ),
                });
            }
        };
        let acquired = match first {
            Some(proto::AcquireResponse {
                event: Some(acquire_response::Event::Acquired(acquired)),
            }) => acquired,
            Some(_) => {
                return Err(Error::Other {
                    code: tonic::Code::Internal,
                    message: format!("the sidecar's first message for lock {name} was not `acquired`"),
                });
            }
            None => {
                return Err(Error::Unavailable {
                    message: format!("the sidecar ended the stream before lock {name} was acquired"),
                });
            }
        };

        let deadline = Deadline::after(from_proto_duration(acquired.valid_for));
        let (ending, signal) = Ending::new();
        let (end_stream, end_requested) = oneshot::channel();
        tokio::spawn(follow(
            stream,
            ending.clone(),
            deadline.clone(),
            end_requested,
            format!("lock {name} (token {})", acquired.fencing_token),
        ));
        Ok(Lock {
            name: name.to_owned(),
            token: acquired.fencing_token,
            holder: acquired.holder,
            acquire_time: from_proto_time(acquired.acquire_time),
            lease_duration: from_proto_duration(acquired.lease_duration),
            ending,
            signal,
            deadline,
            client: self.clone(),
            end_stream: Some(end_stream),
        })
    }
}

/// Why an Acquire stream failed before the lock was granted. It carries no
/// call deadline, so a DEADLINE_EXCEEDED there is the wait timeout even from a
/// sidecar that does not name the reason.
fn wait_error(status: Status) -> Error {
    match Error::from(status) {
        Error::DeadlineExceeded { message } => Error::WaitTimeout { message },
        other => other,
    }
}

impl Lock {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The fencing token: strictly greater than every earlier token of this
    /// lock. Pass it to the resources you write to.
    pub fn token(&self) -> i64 {
        self.token
    }

    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// When the sidecar wrote the acquisition, by its wall clock; for display.
    pub fn acquire_time(&self) -> Option<SystemTime> {
        self.acquire_time
    }

    pub fn lease_duration(&self) -> Duration {
        self.lease_duration
    }

    /// Resolves when the lock is lost, with why. It never resolves while the
    /// lock is held.
    pub fn lost(&self) -> impl Future<Output = Loss> + Send + 'static {
        let signal = self.signal.clone();
        async move {
            match signal.lost().await {
                Some(loss) => loss,
                // Not reachable while this guard exists: only release and
                // drop end a lock normally, and both consume it.
                None => std::future::pending().await,
            }
        }
    }

    /// The lost signal, to hand to tasks that act on this lock's behalf.
    pub fn signal(&self) -> LostSignal {
        self.signal.clone()
    }

    /// True once the lock is lost: stop acting.
    pub fn is_lost(&self) -> bool {
        self.signal.is_lost()
    }

    /// How much longer the holder may act without another heartbeat.
    pub fn valid_for(&self) -> Duration {
        if self.signal.is_lost() {
            Duration::ZERO
        } else {
            self.deadline.remaining()
        }
    }

    /// This guard with `timeout` as the deadline of its release instead of
    /// its client's: `lock.with_timeout(Duration::from_secs(2)).release().await`.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.client = self.client.with_timeout(timeout);
        self
    }

    /// The deadline of its release.
    pub fn timeout(&self) -> Duration {
        self.client.timeout()
    }

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
    /// when it can. A lock already lost has nothing to release.
    pub async fn release(mut self) -> Result<(), Error> {
        let Some(end_stream) = self.end_stream.take() else {
            return Ok(());
        };
        if !self.ending.end() {
            // Lost already: its stream is closed, which releases it.
            return Ok(());
        }
        let timeout = self.client.timeout();
        let call_ends = Instant::now() + timeout;
        let message = proto::ReleaseRequest {
            name: self.name.clone(),
            fencing_token: self.token,
        };
        let mut locks = self.client.locks.clone();
        let released = locks.release(request(message, timeout));
        tokio::pin!(released);
        let answer = loop {
            // Heartbeats that arrive meanwhile move the promise on.
            let promise_ends = self.deadline.at();
            match timeout_at(call_ends.min(promise_ends), &mut released).await {
                Ok(answer) => break Some(answer),
                Err(_) if Instant::now() >= self.deadline.at() => break None,
                Err(_) if Instant::now() >= call_ends => {
                    drop(end_stream);
                    let what = format!("release lock {} (token {})", self.name, self.token);
                    return Err(Error::deadline_exceeded(what, timeout));
                }
                Err(_) => continue,
            }
        };
        // Ends the stream (the sidecar ends it too, after a release).
        drop(end_stream);
        let what = || format!("release lock {} (token {})", self.name, self.token);
        match answer.map(|answer| answer.map_err(|status| call_error(status, call_ends, timeout, what))) {
            // The promise ran out: nobody holds the lock for us any more.
            None => Ok(()),
            Some(Ok(_)) => Ok(()),
            // Lost or expired before the sidecar took the release: already gone.
            Some(Err(Error::NotHeld { .. })) => Ok(()),
            Some(Err(err)) => Err(err),
        }
    }
}

/// Dropping the guard closes its stream, which makes the sidecar release the
/// lock; use [`Lock::release`] to know when it has done so.
impl Drop for Lock {
    fn drop(&mut self) {
        // Dropping the sender wakes the follower, which ends the stream.
        self.end_stream.take();
    }
}

/// Follows the Acquire stream until the lock ends: moves the deadline on each
/// heartbeat and records the loss; the stream is dropped (cancelled, which
/// releases the lock if the sidecar still holds it) when this returns.
async fn follow(
    mut stream: Streaming<proto::AcquireResponse>,
    ending: Ending,
    deadline: Deadline,
    mut end_requested: oneshot::Receiver<()>,
    what: String,
) {
    let too_late = || {
        Loss::new(
            LossReason::HeartbeatTimeout,
            format!("no heartbeat from the sidecar before {what} stopped being valid"),
        )
    };
    loop {
        tokio::select! {
            // The guard's own end first, then the deadline, then the news:
            // a heartbeat that arrives after the deadline is too late.
            biased;
            _ = &mut end_requested => {
                ending.end();
                return;
            }
            _ = sleep_until(deadline.at()) => {
                if Instant::now() >= deadline.at() {
                    ending.lose(too_late());
                    return;
                }
            }
            message = stream.message() => match message {
                // A heartbeat that arrives after the deadline (this process was
                // paused, say) is too late to revive the lock.
                Ok(Some(_)) if Instant::now() >= deadline.at() => {
                    ending.lose(too_late());
                    return;
                }
                Ok(Some(proto::AcquireResponse { event: Some(acquire_response::Event::Renewed(renewed)) })) => {
                    deadline.extend(from_proto_duration(renewed.valid_for));
                }
                Ok(Some(proto::AcquireResponse { event: Some(acquire_response::Event::Lost(lost)) })) => {
                    ending.lose(Loss::new(LossReason::from_proto(lost.reason), lost.message));
                    return;
                }
                Ok(Some(_)) => {}
                Ok(None) => {
                    ending.lose(Loss::new(LossReason::StreamEnded, format!("the sidecar ended the stream of {what}")));
                    return;
                }
                Err(status) => {
                    ending.lose(Loss::new(
                        LossReason::StreamEnded,
                        format!("the stream of {what} failed: {}", Error::from(status)),
                    ));
                    return;
                }
            }
        }
    }
}
