//! The Rust conformance driver (test/conformance/PROTOCOL.md): reads the
//! harness's commands as JSON lines on stdin, performs each through this
//! crate's wrapper, and writes the replies and the wrapper's events as JSON
//! lines on stdout.
//!
//! `cargo build --example conformance_driver`, then run
//! `target/debug/examples/conformance_driver`.
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::time::Duration;

use metaparticle_sync::{
    Campaign, CampaignEvent, CampaignHandle, CampaignOptions, Client, DEFAULT_CALL_TIMEOUT, Error, LeasedLock,
    LeasedPermit, LeasedRwHold, Lock, LockOptions, LostSignal, Mode, Permit, PermitHolder, ReadConsistency, RwHold,
    TryLockOptions,
};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_stream::StreamExt;

/// A command's failure: what the wrapper said, or a command this driver
/// cannot perform.
enum Failure {
    Wrapper(Error),
    Unimplemented(String),
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure::Wrapper(error)
    }
}

type Reply = Result<Map<String, Value>, Failure>;

enum Held {
    Lock(Lock),
    Lease(LeasedLock),
    Permit(Permit),
    PermitLease(LeasedPermit),
    Rw(RwHold),
    RwLease(LeasedRwHold),
}

/// A leased permit or read-write hold as the client's calls by hold id name
/// it: how the driver asks the sidecar about it again once its release
/// consumed the guard.
struct HoldById {
    client: Client,
    name: String,
    hold_id: String,
    rwlock: bool,
}

impl HoldById {
    async fn renew(&self, timeout: Duration, lease_duration: Option<Duration>) -> Result<Duration, Error> {
        let client = self.client.with_timeout(timeout);
        if self.rwlock {
            client.renew_rwlock(&self.name, &self.hold_id, lease_duration).await
        } else {
            client.renew_permit(&self.name, &self.hold_id, lease_duration).await
        }
    }

    async fn release(&self, timeout: Duration) -> Result<(), Error> {
        let client = self.client.with_timeout(timeout);
        if self.rwlock {
            client.release_rwlock(&self.name, &self.hold_id).await
        } else {
            client.release_permit(&self.name, &self.hold_id).await
        }
    }
}

#[derive(Default)]
struct Driver {
    clients: HashMap<String, Client>,
    locks: HashMap<String, Held>,
    /// Leased holds by handle, and which of them were released.
    by_id: HashMap<String, HoldById>,
    released: HashSet<String>,
    campaigns: HashMap<String, (CampaignHandle, JoinHandle<()>)>,
    observations: HashMap<String, (oneshot::Sender<()>, JoinHandle<()>)>,
}

/// Writes one line whole and flushes it; tasks write events concurrently.
fn write(message: Value) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{message}");
    let _ = stdout.flush();
}

fn text(args: &Value, key: &str) -> Option<String> {
    args.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn millis(args: &Value, key: &str) -> Option<Duration> {
    args.get(key).and_then(Value::as_u64).map(Duration::from_millis)
}

fn consistency(args: &Value) -> ReadConsistency {
    match args.get("fresh").and_then(Value::as_bool) {
        Some(true) => ReadConsistency::Fresh,
        _ => ReadConsistency::Cached,
    }
}

fn fields(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// The canonical upper-snake name of a gRPC status code.
fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

fn error_json(error: &Error) -> Value {
    json!({
        "code": code_name(error.code()), "field": error.field(), "kind": kind(error), "message": error.to_string(),
    })
}

/// The protocol's name for the error's variant, for the variants it names.
fn kind(error: &Error) -> Option<&'static str> {
    match error {
        Error::PermitsMismatch { .. } => Some("permits-mismatch"),
        Error::NotHeld { .. } => Some("not-held"),
        Error::WaitTimeout { .. } => Some("wait-timeout"),
        _ => None,
    }
}

fn holders_json(holders: &[PermitHolder]) -> Value {
    holders
        .iter()
        .map(|h| json!({ "holder": h.holder, "token": h.fencing_token }))
        .collect()
}

/// N as the command gives it; out of u32's range it is u32::MAX, which the
/// sidecar refuses as it refuses 0 or 33.
fn permits(args: &Value) -> u32 {
    args.get("permits")
        .and_then(Value::as_u64)
        .map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX))
}

/// The command's `mode`, `"shared"` or `"exclusive"`.
fn mode(args: &Value) -> Result<Mode, Failure> {
    match args.get("mode").and_then(Value::as_str) {
        Some("shared") => Ok(Mode::Shared),
        Some("exclusive") => Ok(Mode::Exclusive),
        other => Err(Failure::Unimplemented(format!("no such mode: {other:?}"))),
    }
}

/// A read-write lock's mode as the protocol names it; `""` when not held.
fn mode_name(mode: Option<Mode>) -> &'static str {
    mode.map_or("", Mode::as_str)
}

/// Reports the lock's loss when its signal fires; a normal release fires
/// nothing.
fn watch_loss(handle: String, signal: LostSignal) {
    tokio::spawn(async move {
        if let Some(loss) = signal.lost().await {
            write(
                json!({ "event": "lost", "handle": handle, "reason": loss.reason.as_str(), "message": loss.message }),
            );
        }
    });
}

/// Forwards the campaign's events until its stream ends.
fn forward_campaign(handle: String, mut campaign: Campaign) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut failure = None;
        while let Some(event) = campaign.next().await {
            let message = match event {
                Ok(CampaignEvent::Elected(leadership)) => {
                    json!({ "event": "elected", "handle": handle, "term": leadership.term })
                }
                Ok(CampaignEvent::Deposed { term, loss }) => {
                    let (reason, message) = match loss {
                        Some(loss) => (loss.reason.as_str(), loss.message),
                        None => ("resigned", "this candidate resigned or left".to_owned()),
                    };
                    json!({ "event": "deposed", "handle": handle, "term": term, "reason": reason, "message": message })
                }
                Ok(CampaignEvent::LeaderChanged(leader)) => json!({
                    "event": "leader-changed", "handle": handle,
                    "leader": leader.leader, "value": leader.value, "term": leader.term,
                }),
                Err(error) => {
                    failure = Some(error_json(&error));
                    continue;
                }
            };
            write(message);
        }
        let mut ended = json!({ "event": "campaign-ended", "handle": handle });
        if let Some(error) = failure {
            ended["error"] = error;
        }
        write(ended);
    })
}

/// The command's deadline (`timeoutMs`), if it gave one.
fn timeout(args: &Value) -> Option<Duration> {
    millis(args, "timeoutMs")
}

impl Driver {
    /// The named client, with the command's deadline if it gave one.
    fn client(&self, args: &Value) -> Result<Client, Failure> {
        let name = text(args, "client").unwrap_or_default();
        let client = self
            .clients
            .get(&name)
            .ok_or_else(|| Failure::Unimplemented(format!("no client {name}")))?;
        Ok(match timeout(args) {
            Some(timeout) => client.with_timeout(timeout),
            None => client.clone(),
        })
    }

    fn handle(args: &Value) -> String {
        text(args, "handle").unwrap_or_default()
    }

    fn unknown(op: &str, handle: &str) -> Failure {
        Failure::Unimplemented(format!("no such handle for {op}: {handle}"))
    }

    async fn perform(&mut self, op: &str, args: &Value) -> Reply {
        let name = text(args, "name").unwrap_or_default();
        let handle_as = text(args, "as").unwrap_or_default();
        match op {
            "connect" => {
                let client = Client::with_address(&text(args, "address").unwrap_or_default())?;
                self.clients.insert(handle_as, client);
                Ok(Map::new())
            }
            "lock" => {
                let options = LockOptions {
                    holder: text(args, "holder"),
                    lease_duration: millis(args, "leaseDurationMs"),
                    wait_timeout: millis(args, "waitTimeoutMs"),
                    fair: args.get("fair").and_then(Value::as_bool),
                };
                let lock = self.client(args)?.lock_with(&name, options).await?;
                watch_loss(handle_as.clone(), lock.signal());
                let reply = fields(json!({ "token": lock.token(), "holder": lock.holder() }));
                self.locks.insert(handle_as, Held::Lock(lock));
                Ok(reply)
            }
            "tryLock" => {
                let options = TryLockOptions {
                    holder: text(args, "holder"),
                    lease_duration: millis(args, "leaseDurationMs"),
                };
                match self.client(args)?.try_lock_with(&name, options).await {
                    Ok(lease) => {
                        watch_loss(handle_as.clone(), lease.signal());
                        let reply = fields(json!({
                            "acquired": true, "token": lease.token(),
                            "validForMs": lease.valid_for().as_millis() as u64,
                        }));
                        self.locks.insert(handle_as, Held::Lease(lease));
                        Ok(reply)
                    }
                    Err(Error::NotFree { .. }) => Ok(fields(json!({ "acquired": false }))),
                    Err(error) => Err(error.into()),
                }
            }
            "acquirePermit" => {
                let options = LockOptions {
                    holder: text(args, "holder"),
                    lease_duration: millis(args, "leaseDurationMs"),
                    wait_timeout: millis(args, "waitTimeoutMs"),
                    fair: None,
                };
                let permit = self
                    .client(args)?
                    .acquire_permit_with(&name, permits(args), options)
                    .await?;
                watch_loss(handle_as.clone(), permit.signal());
                let reply = fields(json!({
                    "token": permit.token(), "holder": permit.holder(),
                    "permits": permit.permits(), "holdId": permit.hold_id(),
                }));
                self.locks.insert(handle_as, Held::Permit(permit));
                Ok(reply)
            }
            "tryAcquirePermit" => {
                let options = TryLockOptions {
                    holder: text(args, "holder"),
                    lease_duration: millis(args, "leaseDurationMs"),
                };
                let client = self.client(args)?;
                match client.try_acquire_permit_with(&name, permits(args), options).await {
                    Ok(permit) => {
                        let hold_id = permit.hold_id().to_owned();
                        let by_id = HoldById {
                            client,
                            name,
                            hold_id,
                            rwlock: false,
                        };
                        self.by_id.insert(handle_as.clone(), by_id);
                        watch_loss(handle_as.clone(), permit.signal());
                        let reply = fields(json!({
                            "acquired": true, "token": permit.token(), "holder": permit.holder(),
                            "permits": permit.permits(), "holdId": permit.hold_id(),
                            "validForMs": permit.valid_for().as_millis() as u64,
                        }));
                        self.locks.insert(handle_as, Held::PermitLease(permit));
                        Ok(reply)
                    }
                    Err(Error::NoPermitFree { holders, .. }) => {
                        Ok(fields(json!({ "acquired": false, "holders": holders_json(&holders) })))
                    }
                    Err(error) => Err(error.into()),
                }
            }
            "getSemaphore" => {
                let info = self.client(args)?.get_semaphore(&name, consistency(args)).await?;
                Ok(fields(json!({
                    "permits": info.permits, "token": info.fencing_token, "holders": holders_json(&info.holders),
                })))
            }
            "acquireRW" => {
                let options = LockOptions {
                    holder: text(args, "holder"),
                    lease_duration: millis(args, "leaseDurationMs"),
                    wait_timeout: millis(args, "waitTimeoutMs"),
                    fair: None,
                };
                let hold = self
                    .client(args)?
                    .acquire_rwlock_with(&name, mode(args)?, options)
                    .await?;
                watch_loss(handle_as.clone(), hold.signal());
                let reply = fields(json!({
                    "token": hold.token(), "holder": hold.holder(), "mode": hold.mode().as_str(), "holdId": hold.hold_id(),
                }));
                self.locks.insert(handle_as, Held::Rw(hold));
                Ok(reply)
            }
            "tryAcquireRW" => {
                let options = TryLockOptions {
                    holder: text(args, "holder"),
                    lease_duration: millis(args, "leaseDurationMs"),
                };
                let client = self.client(args)?;
                match client.try_acquire_rwlock_with(&name, mode(args)?, options).await {
                    Ok(hold) => {
                        let hold_id = hold.hold_id().to_owned();
                        let by_id = HoldById {
                            client,
                            name,
                            hold_id,
                            rwlock: true,
                        };
                        self.by_id.insert(handle_as.clone(), by_id);
                        watch_loss(handle_as.clone(), hold.signal());
                        let reply = fields(json!({
                            "acquired": true, "token": hold.token(), "holder": hold.holder(),
                            "mode": hold.mode().as_str(), "holdId": hold.hold_id(),
                            "validForMs": hold.valid_for().as_millis() as u64,
                        }));
                        self.locks.insert(handle_as, Held::RwLease(hold));
                        Ok(reply)
                    }
                    Err(Error::RwLockNotFree { state, .. }) => {
                        Ok(fields(json!({ "acquired": false, "mode": mode_name(state.mode) })))
                    }
                    Err(error) => Err(error.into()),
                }
            }
            "getRWLock" => {
                let info = self.client(args)?.get_rwlock(&name, consistency(args)).await?;
                Ok(fields(json!({
                    "mode": mode_name(info.mode), "holder": info.holder,
                    "token": info.fencing_token, "readers": info.reader_count(),
                })))
            }
            "renew" => {
                let handle = Self::handle(args);
                if let Some(hold) = self.by_id.get(&handle).filter(|_| self.released.contains(&handle)) {
                    // Released, the guard is gone: renew by its hold id.
                    let deadline = timeout(args).unwrap_or(DEFAULT_CALL_TIMEOUT);
                    let valid_for = hold.renew(deadline, millis(args, "leaseDurationMs")).await?;
                    return Ok(fields(json!({ "validForMs": valid_for.as_millis() as u64 })));
                }
                match self.locks.remove(&handle) {
                    Some(Held::PermitLease(permit)) => {
                        let permit = permit.with_timeout(timeout(args).unwrap_or(DEFAULT_CALL_TIMEOUT));
                        let renewed = permit.renew(millis(args, "leaseDurationMs")).await;
                        self.locks.insert(handle, Held::PermitLease(permit));
                        let valid_for = renewed?;
                        Ok(fields(json!({ "validForMs": valid_for.as_millis() as u64 })))
                    }
                    Some(Held::Lease(lease)) => {
                        // This command's deadline, else the wrapper's default.
                        let lease = lease.with_timeout(timeout(args).unwrap_or(DEFAULT_CALL_TIMEOUT));
                        let renewed = lease.renew(millis(args, "leaseDurationMs")).await;
                        self.locks.insert(handle, Held::Lease(lease));
                        let valid_for = renewed?;
                        Ok(fields(json!({ "validForMs": valid_for.as_millis() as u64 })))
                    }
                    Some(Held::RwLease(hold)) => {
                        let hold = hold.with_timeout(timeout(args).unwrap_or(DEFAULT_CALL_TIMEOUT));
                        let renewed = hold.renew(millis(args, "leaseDurationMs")).await;
                        self.locks.insert(handle, Held::RwLease(hold));
                        let valid_for = renewed?;
                        Ok(fields(json!({ "validForMs": valid_for.as_millis() as u64 })))
                    }
                    Some(held) => {
                        self.locks.insert(handle.clone(), held);
                        Err(Self::unknown(op, &handle))
                    }
                    None => Err(Self::unknown(op, &handle)),
                }
            }
            "release" => self.release(op, &Self::handle(args), timeout(args)).await,
            "getLock" => {
                let info = self.client(args)?.get_lock(&name, consistency(args)).await?;
                Ok(fields(
                    json!({ "held": info.held, "holder": info.holder, "token": info.fencing_token }),
                ))
            }
            "campaign" => {
                let options = CampaignOptions {
                    candidate: text(args, "candidate"),
                    value: text(args, "value").unwrap_or_default(),
                    lease_duration: millis(args, "leaseDurationMs"),
                };
                let campaign = self.client(args)?.campaign_with(&name, options);
                let control = campaign.handle();
                let forwarding = forward_campaign(handle_as.clone(), campaign);
                self.campaigns.insert(handle_as, (control, forwarding));
                Ok(Map::new())
            }
            "proclaim" | "resign" => {
                let handle = Self::handle(args);
                let Some((campaign, _)) = self.campaigns.get(&handle) else {
                    return Err(Self::unknown(op, &handle));
                };
                // This command's deadline, else the wrapper's default.
                let campaign = campaign.with_timeout(timeout(args).unwrap_or(DEFAULT_CALL_TIMEOUT));
                if op == "proclaim" {
                    campaign.proclaim(&text(args, "value").unwrap_or_default()).await?;
                } else {
                    campaign.resign().await?;
                }
                Ok(Map::new())
            }
            "getLeader" => {
                let leader = self.client(args)?.get_leader(&name, consistency(args)).await?;
                Ok(fields(
                    json!({ "leader": leader.leader, "value": leader.value, "term": leader.term }),
                ))
            }
            "observe" => {
                let mut observation = self.client(args)?.observe(&name);
                let (stop, mut stopped) = oneshot::channel::<()>();
                let handle = handle_as.clone();
                let following = tokio::spawn(async move {
                    let mut ended = json!({ "event": "observe-ended", "handle": handle });
                    loop {
                        let leader = tokio::select! {
                            leader = observation.next() => leader,
                            _ = &mut stopped => break,
                        };
                        match leader {
                            Some(Ok(leader)) => write(json!({
                                "event": "leader", "handle": handle,
                                "leader": leader.leader, "value": leader.value, "term": leader.term,
                            })),
                            Some(Err(error)) => ended["error"] = error_json(&error),
                            None => break,
                        }
                    }
                    // Dropping the observation cancels the call.
                    drop(observation);
                    write(ended);
                });
                self.observations.insert(handle_as, (stop, following));
                Ok(Map::new())
            }
            "close" => {
                let handle = Self::handle(args);
                if self.locks.contains_key(&handle) || self.released.contains(&handle) {
                    self.release(op, &handle, timeout(args)).await
                } else if let Some((campaign, forwarding)) = self.campaigns.remove(&handle) {
                    campaign.close();
                    // The forwarder reports the last events and the end.
                    let _ = forwarding.await;
                    Ok(Map::new())
                } else if let Some((stop, following)) = self.observations.remove(&handle) {
                    let _ = stop.send(());
                    let _ = following.await;
                    Ok(Map::new())
                } else if self.clients.remove(&handle).is_some() {
                    Ok(Map::new())
                } else {
                    Err(Self::unknown(op, &handle))
                }
            }
            _ => Err(Failure::Unimplemented(format!("unknown op {op}"))),
        }
    }

    /// The wrapper's acknowledged release: it returns once the sidecar has
    /// released the lock (or the lock's promise ran out).
    async fn release(&mut self, op: &str, handle: &str, timeout: Option<Duration>) -> Reply {
        // This command's deadline, else the wrapper's default (not the one
        // the lock was taken with).
        let timeout = timeout.unwrap_or(DEFAULT_CALL_TIMEOUT);
        if let Some(hold) = self.by_id.get(handle).filter(|_| self.released.contains(handle)) {
            // Released before, the guard is gone: release by its hold id.
            hold.release(timeout).await?;
            return Ok(Map::new());
        }
        match self.locks.remove(handle) {
            Some(Held::Lock(lock)) => lock.with_timeout(timeout).release().await?,
            Some(Held::Lease(lease)) => lease.with_timeout(timeout).release().await?,
            Some(Held::Permit(permit)) => permit.with_timeout(timeout).release().await?,
            Some(Held::Rw(hold)) => hold.with_timeout(timeout).release().await?,
            // Each guard is consumed whatever the answer: from now on the hold is named by its hold id.
            Some(Held::PermitLease(permit)) => {
                self.released.insert(handle.to_owned());
                permit.with_timeout(timeout).release().await?
            }
            Some(Held::RwLease(hold)) => {
                self.released.insert(handle.to_owned());
                hold.with_timeout(timeout).release().await?
            }
            None => return Err(Self::unknown(op, handle)),
        }
        Ok(Map::new())
    }

    /// stdin ended: give back everything, then leave, within the 10 s the
    /// protocol allows even if a sidecar does not answer.
    async fn close_all(&mut self) {
        let quick = Duration::from_secs(3);
        let releases: Vec<_> = self
            .locks
            .drain()
            .map(|(_, held)| {
                tokio::spawn(async move {
                    let _ = match held {
                        Held::Lock(lock) => lock.with_timeout(quick).release().await,
                        Held::Lease(lease) => lease.with_timeout(quick).release().await,
                        Held::Permit(permit) => permit.with_timeout(quick).release().await,
                        Held::PermitLease(permit) => permit.with_timeout(quick).release().await,
                        Held::Rw(hold) => hold.with_timeout(quick).release().await,
                        Held::RwLease(hold) => hold.with_timeout(quick).release().await,
                    };
                })
            })
            .collect();
        for release in releases {
            let _ = release.await;
        }
        for (_, (campaign, forwarding)) in self.campaigns.drain() {
            campaign.close();
            let _ = forwarding.await;
        }
        for (_, (stop, following)) in self.observations.drain() {
            let _ = stop.send(());
            let _ = following.await;
        }
        self.clients.clear();
    }
}

#[tokio::main]
async fn main() {
    write(json!({ "event": "ready", "language": "rust", "client": "metaparticle_sync::Client" }));
    let mut driver = Driver::default();
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if line.trim().is_empty() {
            continue;
        }
        let args: Value = match serde_json::from_str(&line) {
            Ok(args) => args,
            Err(err) => {
                eprintln!("conformance driver: not JSON: {err}: {line}");
                continue;
            }
        };
        let id = args.get("id").cloned().unwrap_or(Value::Null);
        let op = text(&args, "op").unwrap_or_default();
        let mut reply = Map::new();
        reply.insert("id".into(), id);
        match driver.perform(&op, &args).await {
            Ok(fields) => {
                reply.insert("ok".into(), Value::Bool(true));
                reply.extend(fields);
            }
            Err(Failure::Wrapper(error)) => {
                reply.insert("ok".into(), Value::Bool(false));
                reply.insert("error".into(), error_json(&error));
            }
            Err(Failure::Unimplemented(message)) => {
                reply.insert("ok".into(), Value::Bool(false));
                reply.insert(
                    "error".into(),
                    json!({ "code": "UNIMPLEMENTED", "field": null, "message": message }),
                );
            }
        }
        write(Value::Object(reply));
    }
    driver.close_all().await;
}
