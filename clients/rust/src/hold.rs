// What every hold does, whatever it holds (a lock, a permit of a semaphore, a
// shared or exclusive hold of a read-write lock): how one kept by a stream is
// waited for, followed and released, and how one taken for a lease is
// watched, renewed and given back. `Lock`, `Permit` and `RwHold` are a
// `StreamHold` with their own fields; `LeasedLock`, `LeasedPermit` and
// `LeasedRwHold` a `LeaseHold`. So the guarantees of design 3.11 (the
// client's own deadline on the last `valid_for`, the wait clock, a release
// acknowledged and capped by the promise) are one piece of code for all.
use std::future::Future;
use std::time::Duration;

use futures_core::future::BoxFuture;
use tokio::sync::{oneshot, watch};
use tokio::time::{Instant, sleep_until, timeout_at};
use tonic::{Response, Status, Streaming};

use crate::client::{WAIT_TIMEOUT_GRACE, call_error, from_proto_duration, request};
use crate::proto::{self, acquire_permit_response, acquire_response, acquire_rw_lock_response};
use crate::signal::{Deadline, Ending};
use crate::{Client, Error, Loss, LossReason, LostSignal, Mode};

/// What a hold is, as the sidecar names it in a release or a renewal.
#[derive(Debug, Clone)]
pub(crate) enum Hold {
    /// A lock, by its fencing token.
    Lock { name: String, token: i64 },
    /// A permit of a semaphore, by its hold.
    Permit { name: String, hold_id: String, token: i64 },
    /// A hold of a read-write lock, by its hold: shared holds may share a
    /// token.
    RwLock {
        name: String,
        hold_id: String,
        mode: Mode,
        token: i64,
    },
}

impl Hold {
    /// For messages: `lock db (token 7)`.
    fn describe(&self) -> String {
        match self {
            Hold::Lock { name, token } => format!("lock {name} (token {token})"),
            Hold::Permit { name, token, .. } => format!("a permit of semaphore {name} (token {token})"),
            Hold::RwLock { name, mode, token, .. } => {
                format!("a {mode} hold of read-write lock {name} (token {token})")
            }
        }
    }

    /// The release, with `timeout` sent as its deadline; the caller bounds it.
    fn release_call(&self, client: &Client, timeout: Duration) -> BoxFuture<'static, Result<(), Status>> {
        match self.clone() {
            Hold::Lock { name, token } => {
                let mut locks = client.locks.clone();
                let message = proto::ReleaseRequest {
                    name,
                    fencing_token: token,
                };
                Box::pin(async move { locks.release(request(message, timeout)).await.map(drop) })
            }
            Hold::Permit { name, hold_id, .. } => {
                let mut semaphores = client.semaphores.clone();
                let message = proto::ReleasePermitRequest { name, hold_id };
                Box::pin(async move { semaphores.release_permit(request(message, timeout)).await.map(drop) })
            }
            Hold::RwLock { name, hold_id, .. } => {
                let mut rwlocks = client.rwlocks.clone();
                let message = proto::ReleaseRwLockRequest { name, hold_id };
                Box::pin(async move { rwlocks.release_rw_lock(request(message, timeout)).await.map(drop) })
            }
        }
    }

    /// A renewal of a lease-held hold, within the client's deadline.
    async fn renew(&self, client: &Client, lease_duration: Option<Duration>) -> Result<Duration, Error> {
        match self {
            Hold::Lock { name, token } => client.renew(name, *token, lease_duration).await,
            Hold::Permit { name, hold_id, .. } => client.renew_permit(name, hold_id, lease_duration).await,
            Hold::RwLock { name, hold_id, .. } => client.renew_rwlock(name, hold_id, lease_duration).await,
        }
    }

    /// A release of a lease-held hold, within the client's deadline.
    async fn release(&self, client: &Client) -> Result<(), Error> {
        match self {
            Hold::Lock { name, token } => client.release(name, *token).await,
            Hold::Permit { name, hold_id, .. } => client.release_permit(name, hold_id).await,
            Hold::RwLock { name, hold_id, .. } => client.release_rwlock(name, hold_id).await,
        }
    }
}

/// One message of a stream that keeps a hold (LockService.Acquire,
/// SemaphoreService.AcquirePermit, RWLockService.AcquireRWLock): the grant,
/// then heartbeats, then a loss.
pub(crate) enum Event<A> {
    Acquired(A),
    Renewed(Duration),
    Lost(Loss),
    /// An event this client does not know.
    Other,
}

/// The messages of such a stream.
pub(crate) trait HoldStream: Send + 'static {
    /// What the grant says.
    type Acquired;
    fn into_event(self) -> Event<Self::Acquired>;
}

/// Each such stream's message has a oneof `event` (its module `$events`) of
/// the same three cases; only the grant's message differs.
macro_rules! hold_stream {
    ($($message:ty => $events:ident, $acquired:ty;)*) => {$(
        impl HoldStream for $message {
            type Acquired = $acquired;
            fn into_event(self) -> Event<$acquired> {
                match self.event {
                    Some($events::Event::Acquired(acquired)) => Event::Acquired(acquired),
                    Some($events::Event::Renewed(renewed)) => Event::Renewed(from_proto_duration(renewed.valid_for)),
                    Some($events::Event::Lost(lost)) => Event::Lost(Loss::from_proto(lost)),
                    None => Event::Other,
                }
            }
        }
    )*};
}

hold_stream! {
    proto::AcquireResponse => acquire_response, proto::Acquired;
    proto::AcquirePermitResponse => acquire_permit_response, proto::PermitAcquired;
    proto::AcquireRwLockResponse => acquire_rw_lock_response, proto::RwLockAcquired;
}

/// Opens a hold's stream (`open`) and waits for its grant: at most `wait`
/// on the sidecar (the request carries it as `wait_timeout`), and on this
/// client's own clock until `wait` and [`WAIT_TIMEOUT_GRACE`] if the sidecar
/// cannot say so; a deadline given with [`Client::with_timeout`] may end it
/// sooner. `what` names the hold in errors, for example `lock db`.
pub(crate) async fn await_grant<M: HoldStream>(
    client: &Client,
    what: &str,
    wait: Duration,
    open: impl Future<Output = Result<Response<Streaming<M>>, Status>>,
) -> Result<(Streaming<M>, M::Acquired), Error> {
    let started = Instant::now();
    let wait_ends = started + wait.saturating_add(WAIT_TIMEOUT_GRACE);
    let call_ends = client.explicit_timeout().map(|timeout| started + timeout);
    let waiting = async {
        // No grpc-timeout: the stream lasts as long as the hold.
        let mut stream = open.await?.into_inner();
        let first = stream.message().await?;
        Ok::<_, Status>((stream, first))
    };
    let (stream, first) = match timeout_at(call_ends.map_or(wait_ends, |at| at.min(wait_ends)), waiting).await {
        Ok(Ok(granted)) => granted,
        Ok(Err(status)) => return Err(wait_error(status)),
        Err(_) if call_ends.is_some_and(|at| at < wait_ends) => {
            return Err(Error::deadline_exceeded(what.to_owned(), client.timeout()));
        }
        Err(_) => {
            return Err(Error::WaitTimeout {
                message: format!(
                    "{what} was not granted within its wait timeout of {wait:?}, and the sidecar did not say so"
                ),
            });
        }
    };
    match first.map(HoldStream::into_event) {
        Some(Event::Acquired(acquired)) => Ok((stream, acquired)),
        Some(_) => Err(Error::Other {
            code: tonic::Code::Internal,
            message: format!("the sidecar's first message for {what} was not `acquired`"),
        }),
        None => Err(Error::Unavailable {
            message: format!("the sidecar ended the stream before {what} was acquired"),
        }),
    }
}

/// Why a hold's stream failed before the grant. It carries no call deadline,
/// so a DEADLINE_EXCEEDED there is the wait timeout even from a sidecar that
/// does not name the reason.
fn wait_error(status: Status) -> Error {
    match Error::from(status) {
        Error::DeadlineExceeded { message } => Error::WaitTimeout { message },
        other => other,
    }
}

/// What both kinds of hold keep: what is held, the signal its holder
/// watches, its deadline on this process's clock, and the client that
/// releases it, with its deadline.
#[derive(Debug)]
pub(crate) struct Held {
    hold: Hold,
    client: Client,
    ending: Ending,
    signal: LostSignal,
    deadline: Deadline,
}

impl Held {
    fn new(client: &Client, hold: Hold, valid_for: Duration) -> Held {
        let (ending, signal) = Ending::new();
        Held {
            hold,
            client: client.clone(),
            ending,
            signal,
            deadline: Deadline::after(valid_for),
        }
    }

    pub(crate) fn signal(&self) -> &LostSignal {
        &self.signal
    }

    /// How much longer the holder may act; zero once the hold is over.
    pub(crate) fn valid_for(&self) -> Duration {
        if self.signal.is_over() {
            Duration::ZERO
        } else {
            self.deadline.remaining()
        }
    }

    pub(crate) fn set_timeout(&mut self, timeout: Duration) {
        self.client = self.client.with_timeout(timeout);
    }

    pub(crate) fn timeout(&self) -> Duration {
        self.client.timeout()
    }
}

/// Lets a kind of hold (`StreamHold`, `LeaseHold`, each with a field `held`)
/// be used as the [`Held`] it keeps.
macro_rules! held_inside {
    ($kind:ty) => {
        impl std::ops::Deref for $kind {
            type Target = Held;
            fn deref(&self) -> &Held {
                &self.held
            }
        }

        impl std::ops::DerefMut for $kind {
            fn deref_mut(&mut self) -> &mut Held {
                &mut self.held
            }
        }
    };
}

/// A hold kept by a stream, that the sidecar renews until it is released or
/// dropped. Dropping it closes its stream, which makes the sidecar give the
/// hold back; [`StreamHold::release`] says when it has.
#[derive(Debug)]
pub(crate) struct StreamHold {
    held: Held,
    /// Makes the task that follows the stream end it, when sent or dropped.
    end_stream: Option<oneshot::Sender<()>>,
}

held_inside!(StreamHold);

impl StreamHold {
    /// Follows `stream`, granted with `valid_for`, until the hold ends.
    pub(crate) fn follow<M: HoldStream>(
        client: &Client,
        hold: Hold,
        stream: Streaming<M>,
        valid_for: Duration,
    ) -> StreamHold {
        let held = Held::new(client, hold, valid_for);
        let (end_stream, end_requested) = oneshot::channel();
        tokio::spawn(follow(
            stream,
            held.ending.clone(),
            held.deadline.clone(),
            end_requested,
            held.hold.describe(),
        ));
        StreamHold {
            held,
            end_stream: Some(end_stream),
        }
    }

    pub(crate) fn lost(&self) -> impl Future<Output = Loss> + Send + 'static {
        let signal = self.signal.clone();
        async move {
            match signal.lost().await {
                Some(loss) => loss,
                // Not reachable while the guard exists: only release and
                // drop end a hold normally, and both consume it.
                None => std::future::pending().await,
            }
        }
    }

    /// Releases the hold and returns once the sidecar has (see
    /// [`crate::Lock::release`]).
    pub(crate) async fn release(&mut self) -> Result<(), Error> {
        let Some(end_stream) = self.end_stream.take() else {
            return Ok(());
        };
        if !self.ending.end() {
            // Lost already: its stream is closed, which releases it.
            return Ok(());
        }
        let timeout = self.client.timeout();
        let call_ends = Instant::now() + timeout;
        let released = self.hold.release_call(&self.client, timeout);
        tokio::pin!(released);
        let answer = loop {
            // Heartbeats that arrive meanwhile move the promise on.
            let promise_ends = self.deadline.at();
            match timeout_at(call_ends.min(promise_ends), &mut released).await {
                Ok(answer) => break Some(answer),
                Err(_) if Instant::now() >= self.deadline.at() => break None,
                Err(_) if Instant::now() >= call_ends => {
                    drop(end_stream);
                    let what = format!("release {}", self.hold.describe());
                    return Err(Error::deadline_exceeded(what, timeout));
                }
                Err(_) => continue,
            }
        };
        // Ends the stream (the sidecar ends it too, after a release).
        drop(end_stream);
        let what = || format!("release {}", self.hold.describe());
        match answer.map(|answer| answer.map_err(|status| call_error(status, call_ends, timeout, what))) {
            // The promise ran out: nobody holds it for us any more.
            None => Ok(()),
            Some(Ok(())) => Ok(()),
            // Lost or expired before the sidecar took the release: already gone.
            Some(Err(Error::NotHeld { .. })) => Ok(()),
            Some(Err(err)) => Err(err),
        }
    }
}

/// Follows a hold's stream until the hold ends: moves the deadline on each
/// heartbeat and records the loss; the stream is dropped (cancelled, which
/// releases the hold if the sidecar still has it) when this returns.
async fn follow<M: HoldStream>(
    mut stream: Streaming<M>,
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
                // paused, say) is too late to revive the hold.
                Ok(Some(_)) if Instant::now() >= deadline.at() => {
                    ending.lose(too_late());
                    return;
                }
                Ok(Some(message)) => match message.into_event() {
                    Event::Renewed(valid_for) => deadline.extend(valid_for),
                    Event::Lost(loss) => {
                        ending.lose(loss);
                        return;
                    }
                    Event::Acquired(_) | Event::Other => {}
                },
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

/// A hold taken for a lease: held unless renewed, given back by a release.
/// Its lost signal fires when the last `valid_for` runs out without a
/// renewal, by this process's monotonic clock, or when a renewal is refused.
/// Dropped without a release, it is released in the background (best
/// effort).
#[derive(Debug)]
pub(crate) struct LeaseHold {
    held: Held,
    /// Wakes the watchdog when the deadline moves; dropping it stops the
    /// watchdog.
    moved: watch::Sender<()>,
    released: bool,
}

held_inside!(LeaseHold);

impl LeaseHold {
    /// Watches the lease of `hold`, granted with `valid_for`.
    pub(crate) fn watch(client: &Client, hold: Hold, valid_for: Duration) -> LeaseHold {
        let held = Held::new(client, hold, valid_for);
        let (moved, deadline_moved) = watch::channel(());
        tokio::spawn(watchdog(
            held.ending.clone(),
            held.deadline.clone(),
            deadline_moved,
            held.hold.describe(),
        ));
        LeaseHold {
            held,
            moved,
            released: false,
        }
    }

    /// See [`crate::LeasedLock::renew`].
    pub(crate) async fn renew(&self, lease_duration: Option<Duration>) -> Result<Duration, Error> {
        match self.hold.renew(&self.client, lease_duration).await {
            Ok(valid_for) => {
                if Instant::now() >= self.deadline.at() {
                    // Too late: the lease had run out here first, and a renewal
                    // does not revive it.
                    self.ending.lose(Loss::new(
                        LossReason::HeartbeatTimeout,
                        format!("the lease of {} ran out before it was renewed", self.hold.describe()),
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

    /// See [`crate::LeasedLock::release`].
    pub(crate) async fn release(&mut self) -> Result<(), Error> {
        self.released = true;
        self.ending.end();
        self.hold.release(&self.client).await
    }
}

impl Drop for LeaseHold {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        self.ending.end();
        let (client, hold) = (self.client.clone(), self.hold.clone());
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                // Best effort: a refusal means it was no longer ours anyway.
                let _ = hold.release(&client).await;
            });
        }
    }
}

/// Reports a lease-held hold lost when its deadline passes; ends when the
/// hold does.
async fn watchdog(ending: Ending, deadline: Deadline, mut moved: watch::Receiver<()>, what: String) {
    loop {
        tokio::select! {
            _ = sleep_until(deadline.at()) => {
                if Instant::now() >= deadline.at() {
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

/// The methods every hold has, on a struct with the fields `name`, `token`,
/// `holder`, `lease_duration` and `hold` (a [`StreamHold`] or [`LeaseHold`]).
/// `$what` names the hold, `$token` says what its token promises, and
/// `$renewal` what extends its promise, in the docs.
macro_rules! hold_api {
    ($what:literal, $token:literal, $renewal:literal) => {
        pub fn name(&self) -> &str {
            &self.name
        }

        #[doc = concat!("The fencing token: ", $token, ".")]
        /// Pass it to the resources you write to.
        pub fn token(&self) -> i64 {
            self.token
        }

        pub fn holder(&self) -> &str {
            &self.holder
        }

        pub fn lease_duration(&self) -> std::time::Duration {
            self.lease_duration
        }

        #[doc = concat!("The lost signal, to hand to tasks that act on this ", $what, "'s behalf; a")]
        /// release is a normal end, not a loss.
        pub fn signal(&self) -> crate::LostSignal {
            self.hold.signal().clone()
        }

        #[doc = concat!("True once the ", $what, " is lost: stop acting.")]
        pub fn is_lost(&self) -> bool {
            self.hold.signal().is_lost()
        }

        #[doc = concat!("How much longer the holder may act without ", $renewal, ".")]
        pub fn valid_for(&self) -> std::time::Duration {
            self.hold.valid_for()
        }

        #[doc = concat!("This ", $what, " with `timeout` as the deadline of its later calls instead")]
        /// of its client's: `hold.with_timeout(Duration::from_secs(2)).release().await`.
        pub fn with_timeout(mut self, timeout: std::time::Duration) -> Self {
            self.hold.set_timeout(timeout);
            self
        }

        /// The deadline of each of its calls.
        pub fn timeout(&self) -> std::time::Duration {
            self.hold.timeout()
        }
    };
}

/// The methods every guard of a stream-held hold has (`Lock`, `Permit`, `RwHold`):
/// `hold_api`'s, and `acquire_time` (a field too) and `lost`.
macro_rules! stream_hold_api {
    ($what:literal, $token:literal) => {
        crate::hold::hold_api!($what, $token, "another heartbeat");

        /// When the sidecar wrote the acquisition, by its wall clock; for display.
        pub fn acquire_time(&self) -> Option<std::time::SystemTime> {
            self.acquire_time
        }

        #[doc = concat!("Resolves when the ", $what, " is lost, with why. It never resolves while it is held.")]
        pub fn lost(&self) -> impl std::future::Future<Output = crate::Loss> + Send + 'static {
            self.hold.lost()
        }
    };
}

/// The methods every lease-held hold has (`LeasedLock`, `LeasedPermit`, `LeasedRwHold`):
/// `hold_api`'s, and `renew` and `release`.
macro_rules! lease_hold_api {
    ($what:literal, $token:literal) => {
        crate::hold::hold_api!($what, $token, "renewing");

        /// Extends the lease by another lease duration (or `lease_duration`, which
        /// then applies to later renewals too) and returns how long the holder may
        /// act. A refusal ([`crate::Error::NotHeld`]) means it is lost.
        pub async fn renew(
            &self,
            lease_duration: Option<std::time::Duration>,
        ) -> Result<std::time::Duration, crate::Error> {
            self.hold.renew(lease_duration).await
        }

        #[doc = concat!("Gives the ", $what, " back and returns once the sidecar has released it; the")]
        /// next waiter gets it at once. From the call on, its signal ends
        /// normally (a loss that follows is not reported): stop acting before you
        /// call it. One lost meanwhile is [`crate::Error::NotHeld`].
        pub async fn release(mut self) -> Result<(), crate::Error> {
            self.hold.release().await
        }
    };
}

pub(crate) use {hold_api, lease_hold_api, stream_hold_api};
