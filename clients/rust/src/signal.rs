// The signal a holder or leader watches to know when it must stop acting, and
// the side of it that the client's tasks set.
use std::fmt;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;
use tokio::time::Instant;

use crate::proto;

/// Why a lock or a term of leadership was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LossReason {
    /// The sidecar could not renew the lease in time, for example because
    /// the API server was unreachable.
    RenewDeadlineExceeded,
    /// The lease shows another holder.
    TakenOver,
    /// The sidecar is shutting down and released the lease.
    Shutdown,
    /// Someone deleted the Lease object.
    Deleted,
    /// No heartbeat arrived from the sidecar before the last one ran out, by
    /// this process's monotonic clock: the sidecar may be frozen or gone.
    HeartbeatTimeout,
    /// The sidecar ended the stream without saying why.
    StreamEnded,
    /// The sidecar refused to renew a lease-held lock: its token is no longer
    /// current.
    RenewRefused,
    /// A reason this client version does not know.
    Unknown,
}

impl LossReason {
    /// A short name, the same in every client of this project.
    pub fn as_str(self) -> &'static str {
        match self {
            LossReason::RenewDeadlineExceeded => "renew-deadline-exceeded",
            LossReason::TakenOver => "taken-over",
            LossReason::Shutdown => "shutdown",
            LossReason::Deleted => "deleted",
            LossReason::HeartbeatTimeout => "heartbeat-timeout",
            LossReason::StreamEnded => "stream-ended",
            LossReason::RenewRefused => "renew-refused",
            LossReason::Unknown => "unknown",
        }
    }

    pub(crate) fn from_proto(reason: i32) -> Self {
        match proto::LossReason::try_from(reason) {
            Ok(proto::LossReason::RenewDeadlineExceeded) => LossReason::RenewDeadlineExceeded,
            Ok(proto::LossReason::TakenOver) => LossReason::TakenOver,
            Ok(proto::LossReason::Shutdown) => LossReason::Shutdown,
            Ok(proto::LossReason::Deleted) => LossReason::Deleted,
            _ => LossReason::Unknown,
        }
    }
}

impl fmt::Display for LossReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a holder or leader must stop acting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("lost ({reason}): {message}")]
pub struct Loss {
    pub reason: LossReason,
    /// The cause, for people.
    pub message: String,
}

impl Loss {
    /// The `lost` event of a hold's stream.
    pub(crate) fn from_proto(lost: proto::Lost) -> Self {
        Loss::new(LossReason::from_proto(lost.reason), lost.message)
    }

    pub(crate) fn new(reason: LossReason, message: impl Into<String>) -> Self {
        Loss {
            reason,
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone)]
enum State {
    Held,
    Lost(Loss),
    /// Released, resigned or closed by its owner: a normal end, not a loss.
    Ended,
}

/// Tells whether a lock or a term of leadership was lost. Clone it into the
/// tasks that act on the lock's behalf.
///
/// It fires only on a loss: the sidecar said so, its stream ended, or no
/// heartbeat arrived before the last one ran out. A normal end (a release, a
/// resignation) is not a loss: [`LostSignal::lost`] then returns `None`, so a
/// task waiting on it can finish without mistaking the end for a failure.
#[derive(Debug, Clone)]
pub struct LostSignal {
    state: watch::Receiver<State>,
}

impl LostSignal {
    /// Waits until the lock or leadership ends: `Some(loss)` if it was lost,
    /// `None` if its owner released it (or resigned).
    pub async fn lost(&self) -> Option<Loss> {
        let mut state = self.state.clone();
        let ended = state.wait_for(|state| !matches!(state, State::Held)).await;
        match ended.as_deref() {
            Ok(State::Lost(loss)) => Some(loss.clone()),
            Ok(_) => None,
            // The task that kept the deadline is gone (its runtime shut down):
            // nothing keeps this lock's deadline any more.
            Err(_) => Some(Loss::new(
                LossReason::StreamEnded,
                "the client stopped following the sidecar",
            )),
        }
    }

    /// The loss, if the lock or leadership was lost by now.
    pub fn loss(&self) -> Option<Loss> {
        let orphaned = self.state.has_changed().is_err();
        match &*self.state.borrow() {
            State::Lost(loss) => Some(loss.clone()),
            State::Held if orphaned => Some(Loss::new(
                LossReason::StreamEnded,
                "the client stopped following the sidecar",
            )),
            _ => None,
        }
    }

    /// True once the lock or leadership was lost: stop acting.
    pub fn is_lost(&self) -> bool {
        self.loss().is_some()
    }

    /// True once it ended in any way, lost or released.
    pub fn is_over(&self) -> bool {
        let orphaned = self.state.has_changed().is_err();
        orphaned || !matches!(&*self.state.borrow(), State::Held)
    }
}

/// The side of a [`LostSignal`] that the client sets; only the first end counts.
#[derive(Debug, Clone)]
pub(crate) struct Ending {
    state: Arc<watch::Sender<State>>,
}

impl Ending {
    pub(crate) fn new() -> (Ending, LostSignal) {
        let (sender, receiver) = watch::channel(State::Held);
        (
            Ending {
                state: Arc::new(sender),
            },
            LostSignal { state: receiver },
        )
    }

    /// Records a loss; false if it had already ended.
    pub(crate) fn lose(&self, loss: Loss) -> bool {
        self.settle(State::Lost(loss))
    }

    /// Records a normal end; false if it had already ended.
    pub(crate) fn end(&self) -> bool {
        self.settle(State::Ended)
    }

    pub(crate) fn is_over(&self) -> bool {
        !matches!(&*self.state.borrow(), State::Held)
    }

    fn settle(&self, end: State) -> bool {
        self.state.send_if_modified(|state| {
            if matches!(state, State::Held) {
                *state = end;
                true
            } else {
                false
            }
        })
    }
}

/// The instant, on this process's monotonic clock, until which the holder
/// may act without another heartbeat.
#[derive(Debug, Clone)]
pub(crate) struct Deadline(Arc<Mutex<Instant>>);

impl Deadline {
    pub(crate) fn after(valid_for: std::time::Duration) -> Self {
        Deadline(Arc::new(Mutex::new(Instant::now() + valid_for)))
    }

    pub(crate) fn extend(&self, valid_for: std::time::Duration) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now() + valid_for;
    }

    pub(crate) fn at(&self) -> Instant {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn remaining(&self) -> std::time::Duration {
        self.at().saturating_duration_since(Instant::now())
    }
}
