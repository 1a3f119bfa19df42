// Leader election through the sidecar: `Client::campaign` joins as a
// candidate and is a Stream of what happens to it; `Client::observe` follows
// the leader without campaigning.
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, sleep_until};
use tonic::transport::Channel;

use crate::client::{bounded, default_name, from_proto_duration, optional_duration, request};
use crate::proto::election_service_client::ElectionServiceClient;
use crate::proto::{self, campaign_response};
use crate::signal::Ending;
use crate::{Client, Error, Loss, LossReason, LostSignal, ReadConsistency};

/// Options of [`Client::campaign_with`].
#[derive(Debug, Clone, Default)]
pub struct CampaignOptions {
    /// This candidate's name, what others see as the leader. Default:
    /// `$MSYNC_CANDIDATE`, else `$POD_NAME`, else host/pid.
    pub candidate: Option<String>,
    /// Proclaimed when this candidate is elected, for example its address.
    pub value: String,
    /// How long leadership outlives a sidecar that stopped renewing it, in
    /// whole seconds from 1 s to 3600 s. Default: the sidecar's (15 s).
    pub lease_duration: Option<Duration>,
}

impl CampaignOptions {
    pub fn candidate(mut self, candidate: impl Into<String>) -> Self {
        self.candidate = Some(candidate.into());
        self
    }

    pub fn value(mut self, value: impl Into<String>) -> Self {
        self.value = value.into();
        self
    }

    pub fn lease_duration(mut self, lease_duration: Duration) -> Self {
        self.lease_duration = Some(lease_duration);
        self
    }
}

/// The leader of an election as the sidecar observed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leader {
    /// The leading candidate, or empty when nobody leads.
    pub leader: String,
    /// The leader's proclaimed value.
    pub value: String,
    /// The leader's term, or the last term when nobody leads.
    pub term: i64,
}

/// The leader and how long its lease lasts, from [`Client::get_leader`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderInfo {
    /// The leading candidate, or empty when nobody leads.
    pub leader: String,
    pub value: String,
    /// The leader's term, the last term when nobody leads, zero if nobody
    /// was ever elected.
    pub term: i64,
    /// How long until leadership expires unless renewed.
    pub remaining: Duration,
}

/// One term of this candidate's leadership.
#[derive(Debug, Clone)]
pub struct Leadership {
    /// Strictly greater than every earlier term of this election: a fencing
    /// token.
    pub term: i64,
    /// Fires when this term is lost; a resignation or closing the campaign
    /// is a normal end.
    pub signal: LostSignal,
}

/// What happened in a campaign.
#[derive(Debug, Clone)]
pub enum CampaignEvent {
    /// This candidate leads, until the leadership's signal ends.
    Elected(Leadership),
    /// This candidate's term ended. It stays a candidate and may be elected
    /// again, unless the sidecar is shutting down ([`LossReason::Shutdown`]):
    /// then the campaign closes its stream at once and ends with
    /// [`Error::ShuttingDown`]. `loss` is `None` when it resigned or the
    /// campaign was closed.
    Deposed { term: i64, loss: Option<Loss> },
    /// Someone else leads, or nobody does (`leader` is empty).
    LeaderChanged(Leader),
}

/// This process's candidacy in an election: a [`Stream`] of
/// [`CampaignEvent`]s, in order. The campaign ends with [`Campaign::resign`],
/// [`Campaign::close`] or by dropping it, and then the stream ends; if the
/// sidecar ends it with an error, that error is the stream's last item.
/// [`Campaign::handle`] gives the controls (proclaim, resign, close) to
/// another task while this one reads the events.
///
/// A campaign has no overall deadline: it lasts until you end it. A sidecar
/// that stops answering fails it with [`Error::Unavailable`] once the
/// channel's keepalive gives up ([`crate::KEEPALIVE_TIME`] +
/// [`crate::KEEPALIVE_TIMEOUT`]); a leader is deposed long before that by its
/// own deadline.
///
/// While leading, the client keeps its own deadline on the monotonic clock:
/// if no heartbeat arrives before the last one runs out (the sidecar froze,
/// or this process was paused), the term is deposed with
/// [`LossReason::HeartbeatTimeout`] and the campaign rejoins on a new stream,
/// so the sidecar gives that term up instead of renewing a leadership that
/// nobody acts on.
#[derive(Debug)]
pub struct Campaign {
    handle: CampaignHandle,
    events: mpsc::UnboundedReceiver<Result<CampaignEvent, Error>>,
}

/// The controls of a [`Campaign`], to share with other tasks. The campaign
/// lasts as long as the [`Campaign`] itself: a handle does not keep it going.
#[derive(Debug, Clone)]
pub struct CampaignHandle {
    name: String,
    candidate: String,
    /// For proclaim and resign, with their deadline.
    client: Client,
    shared: Arc<Mutex<Shared>>,
}

#[derive(Debug)]
struct Shared {
    leading: Option<Term>,
    /// The owner called resign: no election is reported from then on.
    resigning: bool,
    /// The owner closed the campaign: what arrives after is of no interest.
    closed: bool,
    events: mpsc::UnboundedSender<Result<CampaignEvent, Error>>,
    /// Stops the campaign's task; dropping it does too.
    stop: Option<oneshot::Sender<()>>,
}

#[derive(Debug)]
struct Term {
    number: i64,
    ending: Ending,
    signal: LostSignal,
    deadline: Instant,
}

impl Shared {
    /// Ends the current term on this side, if any: first its signal, then the
    /// event.
    fn depose(&mut self, loss: Option<Loss>) {
        let Some(term) = self.leading.take() else {
            return;
        };
        match &loss {
            Some(loss) => term.ending.lose(loss.clone()),
            None => term.ending.end(),
        };
        self.emit(CampaignEvent::Deposed {
            term: term.number,
            loss,
        });
    }

    fn emit(&self, event: CampaignEvent) {
        // The receiver is gone only once the campaign was dropped.
        let _ = self.events.send(Ok(event));
    }
}

impl Client {
    /// Joins the named election as a candidate; the campaign starts at once:
    ///
    /// ```no_run
    /// # async fn run(client: metaparticle_sync::Client) -> Result<(), metaparticle_sync::Error> {
    /// use metaparticle_sync::{CampaignEvent, CampaignOptions};
    /// use tokio_stream::StreamExt;
    /// let mut campaign = client.campaign_with("scheduler", CampaignOptions::default().value("10.0.3.7:8080"));
    /// while let Some(event) = campaign.next().await {
    ///     if let CampaignEvent::Elected(leadership) = event? {
    ///         println!("leading in term {}", leadership.term);
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// Call it inside a Tokio runtime: the campaign runs on it.
    pub fn campaign(&self, name: &str) -> Campaign {
        self.campaign_with(name, CampaignOptions::default())
    }

    /// [`Client::campaign`] with options.
    pub fn campaign_with(&self, name: &str, options: CampaignOptions) -> Campaign {
        let candidate = options
            .candidate
            .unwrap_or_else(|| default_name(&["MSYNC_CANDIDATE", "POD_NAME"]));
        let (sender, events) = mpsc::unbounded_channel();
        let (stop, stopped) = oneshot::channel();
        let shared = Arc::new(Mutex::new(Shared {
            leading: None,
            resigning: false,
            closed: false,
            events: sender,
            stop: Some(stop),
        }));
        match optional_duration(options.lease_duration, "lease_duration") {
            Ok(lease_duration) => {
                let request = proto::CampaignRequest {
                    name: name.to_owned(),
                    candidate: candidate.clone(),
                    value: options.value,
                    lease_duration,
                };
                tokio::spawn(run(self.elections.clone(), request, shared.clone(), stopped));
            }
            // Said on the stream, like the sidecar's own refusals.
            Err(err) => finish(&shared, Some(err)),
        }
        Campaign {
            handle: CampaignHandle {
                name: name.to_owned(),
                candidate,
                client: self.clone(),
                shared,
            },
            events,
        }
    }

    /// Makes the leader of `term` step down and ends its campaign, and
    /// returns once the sidecar has given the leadership up; another
    /// candidate is elected at once. A term that is not the current one is
    /// [`Error::NotHeld`]. Bounded by [`Client::timeout`], like the calls
    /// below.
    pub async fn resign(&self, name: &str, term: i64) -> Result<(), Error> {
        let message = proto::ResignRequest {
            name: name.to_owned(),
            term,
        };
        let timeout = self.timeout();
        bounded(
            timeout,
            || format!("resign election {name} (term {term})"),
            self.elections.clone().resign(request(message, timeout)),
        )
        .await?;
        Ok(())
    }

    /// Publishes a new value for the leader of `term`. A term that is not the
    /// current one is [`Error::NotHeld`].
    pub async fn proclaim(&self, name: &str, term: i64, value: &str) -> Result<(), Error> {
        let message = proto::ProclaimRequest {
            name: name.to_owned(),
            term,
            value: value.to_owned(),
        };
        let timeout = self.timeout();
        bounded(
            timeout,
            || format!("proclaim in election {name} (term {term})"),
            self.elections.clone().proclaim(request(message, timeout)),
        )
        .await?;
        Ok(())
    }

    /// The current leader. No leader is not an error: `leader` is empty.
    pub async fn get_leader(&self, name: &str, consistency: ReadConsistency) -> Result<LeaderInfo, Error> {
        let message = proto::GetLeaderRequest {
            name: name.to_owned(),
            consistency: consistency.to_proto(),
        };
        let timeout = self.timeout();
        let response = bounded(
            timeout,
            || format!("get the leader of election {name}"),
            self.elections.clone().get_leader(request(message, timeout)),
        )
        .await?;
        Ok(LeaderInfo {
            leader: response.leader,
            value: response.value,
            term: response.term,
            remaining: from_proto_duration(response.remaining),
        })
    }

    /// Follows the named election without joining it: a [`Stream`] of the
    /// current leader at once and then every change of leader, term or
    /// value. A failure is its last item. Dropping it stops following. It
    /// has no overall deadline; a sidecar that stops answering fails it with
    /// [`Error::Unavailable`] once the channel's keepalive gives up.
    ///
    /// Call it inside a Tokio runtime: the stream is read on it.
    pub fn observe(&self, name: &str) -> Observation {
        let (sender, leaders) = mpsc::channel(16);
        let mut elections = self.elections.clone();
        let request = proto::ObserveRequest { name: name.to_owned() };
        tokio::spawn(async move {
            let observe = async {
                let mut stream = elections.observe(request).await?.into_inner();
                while let Some(message) = stream.message().await? {
                    let leader = Leader {
                        leader: message.leader,
                        value: message.value,
                        term: message.term,
                    };
                    if sender.send(Ok(leader)).await.is_err() {
                        break;
                    }
                }
                Ok::<(), Error>(())
            };
            tokio::select! {
                result = observe => if let Err(err) = result {
                    let _ = sender.send(Err(err)).await;
                },
                // Dropping the Observation drops the call, which cancels it.
                _ = sender.closed() => {}
            }
        });
        Observation { leaders }
    }
}

impl Campaign {
    /// The controls, to share with other tasks.
    pub fn handle(&self) -> CampaignHandle {
        self.handle.clone()
    }

    /// This campaign with `timeout` as the deadline of its proclaim and
    /// resign calls instead of its client's.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.handle = self.handle.with_timeout(timeout);
        self
    }

    pub fn name(&self) -> &str {
        &self.handle.name
    }

    pub fn candidate(&self) -> &str {
        &self.handle.candidate
    }

    /// The current term of leadership, if this candidate leads.
    pub fn leadership(&self) -> Option<Leadership> {
        self.handle.leadership()
    }

    pub fn is_leading(&self) -> bool {
        self.handle.is_leading()
    }

    /// Publishes a new value to observers; only while leading, else
    /// [`Error::NotHeld`].
    pub async fn proclaim(&self, value: &str) -> Result<(), Error> {
        self.handle.proclaim(value).await
    }

    /// Steps down and ends the campaign; see [`CampaignHandle::resign`].
    pub async fn resign(&self) -> Result<(), Error> {
        self.handle.resign().await
    }

    /// Leaves the campaign, giving up leadership at once if leading. The
    /// events queued so far can still be read; then the stream ends.
    pub fn close(&self) {
        self.handle.close()
    }
}

impl CampaignHandle {
    /// These controls with `timeout` as the deadline of their proclaim and
    /// resign calls instead of the client's:
    /// `campaign.handle().with_timeout(Duration::from_secs(2)).resign().await`.
    pub fn with_timeout(&self, timeout: Duration) -> CampaignHandle {
        CampaignHandle {
            client: self.client.with_timeout(timeout),
            ..self.clone()
        }
    }

    /// The deadline of each of their calls.
    pub fn timeout(&self) -> Duration {
        self.client.timeout()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn candidate(&self) -> &str {
        &self.candidate
    }

    /// The current term of leadership, if this candidate leads.
    pub fn leadership(&self) -> Option<Leadership> {
        lock(&self.shared).leading.as_ref().map(|term| Leadership {
            term: term.number,
            signal: term.signal.clone(),
        })
    }

    pub fn is_leading(&self) -> bool {
        lock(&self.shared).leading.is_some()
    }

    /// Publishes a new value to observers; only while leading, else
    /// [`Error::NotHeld`].
    pub async fn proclaim(&self, value: &str) -> Result<(), Error> {
        let term = self.current_term("proclaim")?;
        self.client.proclaim(&self.name, term, value).await
    }

    /// Steps down and ends the campaign, and returns once the sidecar has
    /// given the leadership up; another candidate is elected at once.
    ///
    /// From the call on, whatever its outcome, this campaign never reports
    /// [`CampaignEvent::Elected`] again: the current term ends at once as a
    /// resignation ([`CampaignEvent::Deposed`] with no loss), and then the
    /// campaign's stream ends. The call is bounded by [`CampaignHandle::timeout`]
    /// ([`Error::DeadlineExceeded`]; the campaign ends all the same, and the
    /// sidecar gives the term up when its stream closes). Called while not
    /// leading, it ends the campaign and returns [`Error::NotHeld`].
    pub async fn resign(&self) -> Result<(), Error> {
        let term = {
            let mut shared = lock(&self.shared);
            shared.resigning = true;
            let term = shared.leading.as_ref().map(|term| term.number);
            shared.depose(None);
            term
        };
        let resigned = match term {
            Some(term) => self.client.resign(&self.name, term).await,
            None => Err(self.not_leading("resign")),
        };
        // Whatever the sidecar said, or if it said nothing: the campaign ends.
        self.stop();
        resigned
    }

    /// Leaves the campaign, giving up leadership at once if leading.
    pub fn close(&self) {
        let mut shared = lock(&self.shared);
        shared.closed = true;
        shared.depose(None);
        if let Some(stop) = shared.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Ends the campaign's task, which closes its stream and then the events.
    fn stop(&self) {
        if let Some(stop) = lock(&self.shared).stop.take() {
            let _ = stop.send(());
        }
    }

    fn current_term(&self, action: &str) -> Result<i64, Error> {
        match &lock(&self.shared).leading {
            Some(term) => Ok(term.number),
            None => Err(self.not_leading(action)),
        }
    }

    fn not_leading(&self, action: &str) -> Error {
        Error::NotHeld {
            message: format!(
                "cannot {action} election {}: this candidate is not the leader",
                self.name
            ),
        }
    }
}

impl Stream for Campaign {
    type Item = Result<CampaignEvent, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.events.poll_recv(cx)
    }
}

impl Drop for Campaign {
    fn drop(&mut self) {
        self.handle.close();
    }
}

/// Runs the campaign: reads its stream, keeps the leader's deadline, and
/// rejoins on a new stream when that deadline passes.
async fn run(
    mut elections: ElectionServiceClient<Channel>,
    request: proto::CampaignRequest,
    shared: Arc<Mutex<Shared>>,
    mut stopped: oneshot::Receiver<()>,
) {
    let end = loop {
        let joined = tokio::select! {
            _ = &mut stopped => break None,
            joined = elections.campaign(request.clone()) => joined,
        };
        let mut stream = match joined {
            Ok(response) => response.into_inner(),
            Err(status) => break Some(Error::from(status)),
        };
        let ended = loop {
            let deadline = lock(&shared).leading.as_ref().map(|term| term.deadline);
            tokio::select! {
                biased;
                _ = &mut stopped => break Some(None),
                _ = sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                    if heartbeat_timeout(&shared) {
                        // Rejoin: dropping this stream cancels it, and the
                        // sidecar gives the stale term up.
                        break None;
                    }
                }
                message = stream.message() => match message {
                    // A message that arrives after the deadline (this process was
                    // paused, say) cannot revive the term: depose it first.
                    Ok(Some(_)) if heartbeat_timeout(&shared) => break None,
                    Ok(Some(message)) => if let Some(error) = on_message(&shared, message) {
                        // Deposed at the sidecar's shutdown: the campaign is
                        // over. Dropping the stream closes it, which is the
                        // acknowledgement the sidecar waits for before it
                        // gives the leadership up (docs/design.md 3.7).
                        break Some(Some(error));
                    },
                    Ok(None) => break Some(None),
                    Err(status) => break Some(Some(Error::from(status))),
                },
            }
        };
        if let Some(error) = ended {
            break error;
        }
    };
    finish(&shared, end);
}

/// Deposes the leader whose deadline passed; true if the campaign should
/// rejoin on a new stream.
fn heartbeat_timeout(shared: &Mutex<Shared>) -> bool {
    let mut shared = lock(shared);
    let expired = matches!(&shared.leading, Some(term) if Instant::now() >= term.deadline);
    if !expired {
        return false;
    }
    shared.depose(Some(Loss::new(
        LossReason::HeartbeatTimeout,
        "no heartbeat from the sidecar before leadership stopped being valid",
    )));
    // A candidate that is resigning is leaving, not campaigning again.
    !shared.resigning
}

/// Handles one message of the stream; the error to end the campaign with
/// when the sidecar deposed this candidate because it is shutting down.
fn on_message(shared: &Mutex<Shared>, message: proto::CampaignResponse) -> Option<Error> {
    let mut shared = lock(shared);
    if shared.closed {
        return None;
    }
    match message.event {
        Some(campaign_response::Event::Deposed(deposed))
            if LossReason::from_proto(deposed.reason) == LossReason::Shutdown =>
        {
            if shared.leading.as_ref().map(|term| term.number) == Some(deposed.term) {
                shared.depose(Some(Loss::new(LossReason::Shutdown, deposed.message.clone())));
            }
            let message = if deposed.message.is_empty() {
                "the sidecar is shutting down".to_owned()
            } else {
                deposed.message
            };
            return Some(Error::ShuttingDown { message });
        }
        // No ghost leadership: once resign was called, no term is reported,
        // whatever the sidecar says meanwhile.
        Some(campaign_response::Event::Elected(_)) if shared.resigning => {}
        Some(campaign_response::Event::Elected(elected)) => {
            shared.depose(Some(Loss::new(LossReason::TakenOver, "elected again with a new term")));
            let (ending, signal) = Ending::new();
            shared.leading = Some(Term {
                number: elected.term,
                ending,
                signal: signal.clone(),
                deadline: Instant::now() + from_proto_duration(elected.valid_for),
            });
            shared.emit(CampaignEvent::Elected(Leadership {
                term: elected.term,
                signal,
            }));
        }
        Some(campaign_response::Event::Renewed(renewed)) => {
            if let Some(term) = shared.leading.as_mut() {
                term.deadline = Instant::now() + from_proto_duration(renewed.valid_for);
            }
        }
        Some(campaign_response::Event::Deposed(deposed))
            if shared.leading.as_ref().map(|term| term.number) == Some(deposed.term) =>
        {
            shared.depose(Some(Loss::new(LossReason::from_proto(deposed.reason), deposed.message)));
        }
        Some(campaign_response::Event::LeaderChanged(changed)) => {
            // The sidecar tells a candidate only of others' terms, so ours is
            // over; say so first, in order.
            let loss = (!shared.resigning).then(|| Loss::new(LossReason::TakenOver, "another term began"));
            shared.depose(loss);
            shared.emit(CampaignEvent::LeaderChanged(Leader {
                leader: changed.leader,
                value: changed.value,
                term: changed.term,
            }));
        }
        Some(campaign_response::Event::Deposed(_)) | None => {}
    }
    None
}

/// Ends the campaign: the current term, then the events (with the error, if
/// the sidecar ended it with one).
fn finish(shared: &Mutex<Shared>, error: Option<Error>) {
    let mut shared = lock(shared);
    let loss = match (&error, shared.resigning || shared.closed) {
        (_, true) => None,
        (Some(error), false) => Some(Loss::new(LossReason::StreamEnded, error.to_string())),
        (None, false) => Some(Loss::new(LossReason::StreamEnded, "the sidecar ended the campaign")),
    };
    shared.depose(loss);
    if let Some(error) = error {
        let _ = shared.events.send(Err(error));
    }
    // Replacing the sender closes the channel: the stream ends after what
    // was queued.
    shared.events = mpsc::unbounded_channel().0;
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The leader of an election and every change, from [`Client::observe`].
#[derive(Debug)]
pub struct Observation {
    leaders: mpsc::Receiver<Result<Leader, Error>>,
}

impl Stream for Observation {
    type Item = Result<Leader, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.leaders.poll_recv(cx)
    }
}
