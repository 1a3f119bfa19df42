// Locks held for as long as you keep them: `Client::lock` waits for the lock
// and returns a guard; the sidecar renews it until the guard is released or
// dropped.
use std::future::Future;
use std::time::{Duration, SystemTime};

use tokio::sync::oneshot;
use tokio::time::{Instant, sleep, sleep_until};
use tonic::Streaming;
use tonic::transport::Channel;

use crate::client::{default_name, from_proto_duration, from_proto_time, optional_duration};
use crate::proto::lock_service_client::LockServiceClient;
use crate::proto::{self, acquire_response};
use crate::signal::{Deadline, Ending};
use crate::{Client, Error, Loss, LossReason, LostSignal, ReadConsistency};

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
    /// [`Error::WaitTimeout`]; zero fails at once if it is held. Default: wait
    /// until the future is dropped.
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
    signal: LostSignal,
    deadline: Deadline,
    locks: LockServiceClient<Channel>,
    /// Asks the task that follows the stream to end it; dropping it does too.
    end_stream: Option<oneshot::Sender<oneshot::Sender<()>>>,
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
    /// Dropping the future stops waiting (wrap it in `tokio::time::timeout`
    /// for a client-side bound).
    pub async fn lock(&self, name: &str) -> Result<Lock, Error> {
        self.lock_with(name, LockOptions::default()).await
    }

    /// [`Client::lock`] with options.
    pub async fn lock_with(&self, name: &str, options: LockOptions) -> Result<Lock, Error> {
        let request = proto::AcquireRequest {
            name: name.to_owned(),
            holder: options.holder.unwrap_or_else(|| default_name(&["MSYNC_HOLDER"])),
            lease_duration: optional_duration(options.lease_duration, "lease_duration")?,
            wait_timeout: optional_duration(options.wait_timeout, "wait_timeout")?,
        };
        let mut locks = self.locks.clone();
        let mut stream = locks.acquire(request).await?.into_inner();
        let acquired = match stream.message().await? {
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
            ending,
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
            signal,
            deadline,
            locks,
            end_stream: Some(end_stream),
        })
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

    /// Releases the lock and returns once the sidecar has let it go, so the
    /// next holder can be granted it. If the lock was already lost, there
    /// is nothing to wait for.
    pub async fn release(mut self) -> Result<(), Error> {
        let Some(end_stream) = self.end_stream.take() else {
            return Ok(());
        };
        let (stream_ended, ended) = oneshot::channel();
        // If the follower is gone, the lock was lost and its stream ended.
        if end_stream.send(stream_ended).is_err() || ended.await.is_err() || self.signal.is_lost() {
            return Ok(());
        }
        self.released_by_sidecar().await
    }

    /// Closing the stream makes the sidecar release the lock; this waits
    /// until its view shows the lock free or someone else's (its cache
    /// follows the store, so that is committed), for at most the lease: a
    /// sidecar that cannot answer by then cannot hold the lock either.
    async fn released_by_sidecar(&mut self) -> Result<(), Error> {
        let give_up = Instant::now() + self.lease_duration.max(Duration::from_secs(1));
        let released = async {
            let mut pause = Duration::from_millis(2);
            loop {
                let state = self
                    .locks
                    .get_lock(proto::GetLockRequest {
                        name: self.name.clone(),
                        consistency: ReadConsistency::Cached.to_proto(),
                    })
                    .await?
                    .into_inner();
                if !state.held || state.fencing_token != self.token {
                    return Ok(());
                }
                sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(50));
            }
        };
        tokio::time::timeout_at(give_up, released).await.unwrap_or(Ok(()))
    }
}

/// Dropping the guard cancels the stream, which releases the lock; use
/// [`Lock::release`] to know when the sidecar has done so.
impl Drop for Lock {
    fn drop(&mut self) {
        // Dropping the sender wakes the follower, which ends the stream.
        self.end_stream.take();
    }
}

/// Follows the Acquire stream until the lock ends: moves the deadline on each
/// heartbeat and records the loss; the stream is dropped (cancelled, which
/// releases the lock) when this returns.
async fn follow(
    mut stream: Streaming<proto::AcquireResponse>,
    ending: Ending,
    deadline: Deadline,
    mut end_requested: oneshot::Receiver<oneshot::Sender<()>>,
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
            request = &mut end_requested => {
                ending.end();
                drop(stream);
                if let Ok(stream_ended) = request {
                    let _ = stream_ended.send(());
                }
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
