//! Locks and leases against a real sidecar.
mod common;

use std::time::Duration;

use common::{Daemon, fails_at_its_deadline, within};
use metaparticle_sync::{Error, LockOptions, LossReason, ReadConsistency, TryLockOptions};

#[tokio::test]
async fn lock_is_granted_with_a_token_and_released() {
    let daemon = Daemon::start();
    let client = daemon.client();
    let lock = within(
        10,
        "lock",
        client.lock_with("db", LockOptions::default().holder("alice")),
    )
    .await
    .unwrap();
    assert!(lock.token() > 0);
    assert_eq!(lock.holder(), "alice");
    assert!(!lock.is_lost());
    assert!(lock.valid_for() > Duration::ZERO);

    let info = client.get_lock("db", ReadConsistency::Fresh).await.unwrap();
    assert!(info.held);
    assert_eq!((info.holder.as_str(), info.fencing_token), ("alice", lock.token()));

    let signal = lock.signal();
    within(10, "release", lock.release()).await.unwrap();
    // A release is a normal end, not a loss.
    assert_eq!(within(5, "signal after release", signal.lost()).await, None);
    assert!(!signal.is_lost());
    let info = client.get_lock("db", ReadConsistency::Cached).await.unwrap();
    assert!(!info.held, "release() returned before the sidecar released: {info:?}");
}

#[tokio::test]
async fn a_waiter_is_granted_on_release_and_on_drop_with_increasing_tokens() {
    let daemon = Daemon::start();
    let client = daemon.client();
    let first = client.lock("queue").await.unwrap();

    let waiter = |holder: &'static str| {
        let client = client.clone();
        tokio::spawn(async move { client.lock_with("queue", LockOptions::default().holder(holder)).await })
    };
    let second = waiter("second");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!second.is_finished(), "granted while held");
    let first_token = first.token();
    first.release().await.unwrap();
    let second = within(10, "second granted", second).await.unwrap().unwrap();
    assert!(second.token() > first_token);

    let third = waiter("third");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!third.is_finished(), "granted while the second holds");
    // Dropping the guard releases too.
    let second_token = second.token();
    drop(second);
    let third = within(10, "third granted", third).await.unwrap().unwrap();
    assert!(third.token() > second_token);
    assert_eq!(third.holder(), "third");
}

#[tokio::test]
async fn wait_timeout_zero_fails_at_once_when_held() {
    let daemon = Daemon::start();
    let client = daemon.client();
    let _held = client.lock("busy").await.unwrap();
    let err = within(
        10,
        "refused",
        client.lock_with("busy", LockOptions::default().wait_timeout(Duration::ZERO)),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::WaitTimeout { .. }), "{err:?}");
}

#[tokio::test]
async fn try_lock_is_refused_while_held_naming_the_holder() {
    let daemon = Daemon::start();
    let client = daemon.client();
    let held = client
        .lock_with("report", LockOptions::default().holder("cron"))
        .await
        .unwrap();
    let err = client.try_lock("report").await.unwrap_err();
    match err {
        Error::NotFree {
            name,
            holder,
            fencing_token,
        } => {
            assert_eq!(
                (name.as_str(), holder.as_str(), fencing_token),
                ("report", "cron", held.token())
            );
        }
        other => panic!("expected NotFree, got {other:?}"),
    }
}

#[tokio::test]
async fn leased_lock_renews_and_releases() {
    let daemon = Daemon::start();
    let client = daemon.client();
    let lease = client
        .try_lock_with(
            "lease",
            TryLockOptions::default()
                .holder("job")
                .lease_duration(Duration::from_secs(5)),
        )
        .await
        .unwrap();
    assert_eq!(lease.lease_duration(), Duration::from_secs(5));
    let valid_for = lease.renew(Some(Duration::from_secs(30))).await.unwrap();
    assert!(valid_for > Duration::from_secs(5), "{valid_for:?}");
    assert!(lease.valid_for() > Duration::from_secs(5));

    let token = lease.token();
    let signal = lease.signal();
    lease.release().await.unwrap();
    assert_eq!(signal.lost().await, None);
    let next = client.try_lock("lease").await.unwrap();
    assert!(next.token() > token);
}

#[tokio::test]
async fn stale_tokens_are_refused_with_failed_precondition() {
    let daemon = Daemon::start();
    let client = daemon.client();
    let lease = client.try_lock("stale").await.unwrap();
    let old = lease.token();
    lease.release().await.unwrap();

    for err in [
        client.renew("stale", old, None).await.unwrap_err(),
        client.release("stale", old).await.unwrap_err(),
    ] {
        assert!(matches!(err, Error::NotHeld { .. }), "{err:?}");
        assert_eq!(err.code(), tonic::Code::FailedPrecondition);
    }

    // A newer holder's lock is untouched by the old token.
    let current = client.try_lock("stale").await.unwrap();
    assert!(client.release("stale", old).await.is_err());
    let info = client.get_lock("stale", ReadConsistency::Fresh).await.unwrap();
    assert!(info.held && info.fencing_token == current.token());
}

#[tokio::test]
async fn a_refused_renewal_fires_the_lost_signal() {
    let daemon = Daemon::start();
    let client = daemon.client();
    let lease = client.try_lock("taken").await.unwrap();
    // Someone releases it with the token (as a second process holding it could).
    client.release("taken", lease.token()).await.unwrap();
    let err = lease.renew(None).await.unwrap_err();
    assert!(matches!(err, Error::NotHeld { .. }));
    let loss = lease.signal().loss().expect("lost");
    assert_eq!(loss.reason, LossReason::RenewRefused);
}

#[tokio::test]
async fn bad_input_names_the_field() {
    let daemon = Daemon::start();
    let client = daemon.client();

    let err = client.lock("Not_A_DNS_Name").await.unwrap_err();
    assert_eq!(
        (err.code(), err.field()),
        (tonic::Code::InvalidArgument, Some("name")),
        "{err}"
    );

    let half = LockOptions::default().lease_duration(Duration::from_millis(1500));
    let err = client.lock_with("ok", half).await.unwrap_err();
    assert_eq!(err.field(), Some("lease_duration"), "{err}");

    let err = client
        .try_lock_with("ok", TryLockOptions::default().holder(""))
        .await
        .unwrap_err();
    assert_eq!(err.field(), Some("holder"), "{err}");

    let err = client.renew("ok", 0, None).await.unwrap_err();
    assert_eq!(err.field(), Some("fencing_token"), "{err}");

    let err = client.get_lock("", ReadConsistency::Cached).await.unwrap_err();
    assert!(
        matches!(err, Error::InvalidArgument { ref field, .. } if field.as_deref() == Some("name")),
        "{err:?}"
    );

    let err = metaparticle_sync::Client::with_address("no port here/").unwrap_err();
    assert_eq!(err.field(), Some("address"));
}

#[tokio::test]
async fn an_unreachable_sidecar_is_unavailable() {
    // A port that was free a moment ago: nothing listens there now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = metaparticle_sync::Client::with_address(&format!("127.0.0.1:{port}")).unwrap();
    let err = within(10, "refused", client.try_lock("x")).await.unwrap_err();
    assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
}

/// The sidecar froze (SIGSTOP) past the lease: the client stops on its own
/// deadline, without a word from the sidecar.
#[tokio::test]
async fn lock_is_lost_on_the_clients_own_deadline_when_the_sidecar_freezes() {
    let daemon = Daemon::start_short_lease();
    let client = daemon.client();
    let lock = client.lock("frozen").await.unwrap();
    let valid_for = lock.valid_for();
    assert!(valid_for <= Duration::from_secs(2), "{valid_for:?}");
    daemon.freeze();
    let loss = within(10, "lost", lock.lost()).await;
    assert_eq!(loss.reason, LossReason::HeartbeatTimeout, "{loss}");
    assert!(lock.is_lost() && lock.valid_for() == Duration::ZERO);
    daemon.thaw();
}

/// This process paused (blocked) past its deadline while the sidecar kept
/// renewing: the client must not believe the heartbeats that queued up
/// meanwhile; it reports the loss and gives the lock back.
#[tokio::test(flavor = "current_thread")]
async fn lock_is_given_back_when_this_process_pauses_past_its_deadline() {
    let daemon = Daemon::start_short_lease();
    let client = daemon.client();
    let lock = client.lock("paused").await.unwrap();
    let waiter_client = daemon.client();
    let waiter = tokio::spawn(async move { waiter_client.lock("paused").await });
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Blocks this runtime's only thread: no task runs, as in a long GC pause.
    std::thread::sleep(lock.valid_for() + Duration::from_millis(1500));

    let loss = within(10, "lost", lock.lost()).await;
    assert_eq!(loss.reason, LossReason::HeartbeatTimeout, "{loss}");
    let next = within(10, "the waiter is granted", waiter).await.unwrap().unwrap();
    assert!(next.token() > lock.token());
}

#[tokio::test]
async fn a_lease_left_unrenewed_is_lost_on_the_clients_own_deadline() {
    let daemon = Daemon::start();
    let client = daemon.client();
    let lease = client
        .try_lock_with(
            "unrenewed",
            TryLockOptions::default().lease_duration(Duration::from_secs(1)),
        )
        .await
        .unwrap();
    let loss = within(10, "lost", lease.signal().lost())
        .await
        .expect("a loss, not a normal end");
    assert_eq!(loss.reason, LossReason::HeartbeatTimeout, "{loss}");
    assert_eq!(lease.valid_for(), Duration::ZERO);
    // The sidecar agrees: the next try gets it, with a greater token.
    let next = within(10, "expired at the sidecar", async {
        loop {
            match client.try_lock("unrenewed").await {
                Ok(next) => return next,
                Err(Error::NotFree { .. }) => tokio::time::sleep(Duration::from_millis(100)).await,
                Err(other) => panic!("{other:?}"),
            }
        }
    })
    .await;
    assert!(next.token() > lease.token());
}

/// A unary call to a frozen sidecar fails at the default call deadline
/// (10 s) with DEADLINE_EXCEEDED, which is not a lock's wait timeout.
#[tokio::test]
async fn a_call_to_a_frozen_sidecar_fails_at_the_default_deadline() {
    let daemon = Daemon::start();
    let client = daemon.client();
    client.get_lock("warm-up", ReadConsistency::Cached).await.unwrap();
    daemon.freeze();
    let started = std::time::Instant::now();
    let err = within(15, "try_lock on a frozen sidecar", client.try_lock("frozen-call"))
        .await
        .unwrap_err();
    let took = started.elapsed();
    eprintln!("returned after {took:?}: {err}");
    assert_eq!(err.code(), tonic::Code::DeadlineExceeded, "{err:?}");
    assert!(!matches!(err, Error::WaitTimeout { .. }), "{err:?}");
    assert!(
        took >= Duration::from_millis(9500) && took < Duration::from_secs(12),
        "{took:?}"
    );
}

/// The lock's wait timeout holds on this client's own clock: a frozen
/// sidecar that never answers still fails the wait at the wait timeout plus
/// one second's grace.
#[tokio::test]
async fn a_lock_wait_on_a_frozen_sidecar_fails_at_the_wait_timeout_on_the_clients_clock() {
    let daemon = Daemon::start();
    let client = daemon.client();
    client.get_lock("warm-up", ReadConsistency::Cached).await.unwrap();
    daemon.freeze();
    let started = std::time::Instant::now();
    let err = within(
        10,
        "lock on a frozen sidecar",
        client.lock_with(
            "frozen-wait",
            LockOptions::default().wait_timeout(Duration::from_secs(1)),
        ),
    )
    .await
    .unwrap_err();
    let took = started.elapsed();
    eprintln!("returned after {took:?}: {err}");
    assert!(matches!(err, Error::WaitTimeout { .. }), "{err:?}");
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(3),
        "{took:?}"
    );
}

/// Releasing a held lock waits for the sidecar's answer, but not past the
/// call's deadline while the lock's promise still runs: then it fails with
/// DEADLINE_EXCEEDED.
#[tokio::test]
async fn releasing_a_lock_on_a_frozen_sidecar_fails_at_the_call_deadline() {
    let daemon = Daemon::start_with(&["--lease-duration=40s", "--renew-deadline=30s"]);
    let client = daemon.client();
    let lock = client.lock("frozen-release").await.unwrap();
    let signal = lock.signal();
    daemon.freeze();
    let started = std::time::Instant::now();
    let err = within(
        5,
        "release on a frozen sidecar",
        lock.with_timeout(Duration::from_secs(1)).release(),
    )
    .await
    .unwrap_err();
    let took = started.elapsed();
    eprintln!("returned after {took:?}: {err}");
    assert!(matches!(err, Error::DeadlineExceeded { .. }), "{err:?}");
    assert!(
        took >= Duration::from_millis(950) && took < Duration::from_secs(2),
        "{took:?}"
    );
    // The holder asked to stop: a normal end, not a loss.
    assert_eq!(signal.lost().await, None);
}

/// Every call has its deadline: the one given with `with_timeout`, on the
/// client or on what it made, and it holds against a sidecar that never
/// answers.
#[tokio::test]
async fn every_call_to_a_frozen_sidecar_fails_at_its_own_deadline() {
    use metaparticle_sync::CampaignEvent;
    use tokio_stream::StreamExt;

    let daemon = Daemon::start_with(&["--lease-duration=40s", "--renew-deadline=30s"]);
    let client = daemon.client();
    let lease = client.try_lock("frozen-lease").await.unwrap();
    let token = lease.token();
    let mut campaign = client.campaign("frozen-election");
    let term = loop {
        match within(10, "elected", campaign.next()).await.unwrap().unwrap() {
            CampaignEvent::Elected(leadership) => break leadership.term,
            _ => continue,
        }
    };
    daemon.freeze();

    let timeout = Duration::from_millis(500);
    let quick = client.with_timeout(timeout);
    fails_at_its_deadline("try_lock", timeout, quick.try_lock("frozen-other")).await;
    fails_at_its_deadline("renew", timeout, quick.renew("frozen-lease", token, None)).await;
    fails_at_its_deadline("release", timeout, quick.release("frozen-lease", token)).await;
    fails_at_its_deadline(
        "get_lock",
        timeout,
        quick.get_lock("frozen-lease", ReadConsistency::Cached),
    )
    .await;
    fails_at_its_deadline(
        "get_leader",
        timeout,
        quick.get_leader("frozen-election", ReadConsistency::Fresh),
    )
    .await;
    fails_at_its_deadline("proclaim", timeout, quick.proclaim("frozen-election", term, "v")).await;
    fails_at_its_deadline("resign", timeout, quick.resign("frozen-election", term)).await;
    // The caller's deadline bounds a lock's wait too, before its wait timeout.
    let waiting = LockOptions::default().wait_timeout(Duration::from_secs(60));
    fails_at_its_deadline("lock", timeout, quick.lock_with("frozen-other", waiting)).await;
    let lease = lease.with_timeout(timeout);
    fails_at_its_deadline("lease.renew", timeout, lease.renew(None)).await;
    let handle = campaign.handle().with_timeout(timeout);
    fails_at_its_deadline("campaign.proclaim", timeout, handle.proclaim("v")).await;
    fails_at_its_deadline("lease.release", timeout, lease.release()).await;
    fails_at_its_deadline("campaign.resign", timeout, handle.resign()).await;
    daemon.thaw();
}

/// A release whose promise runs out before the sidecar answers returns
/// normally: the hold is over anyway.
#[tokio::test]
async fn releasing_a_lock_on_a_frozen_sidecar_returns_when_its_promise_ends() {
    let daemon = Daemon::start_short_lease();
    let client = daemon.client();
    let lock = client.lock("frozen-promise").await.unwrap();
    daemon.freeze();
    let started = std::time::Instant::now();
    within(10, "release on a frozen sidecar", lock.release()).await.unwrap();
    assert!(
        started.elapsed() <= Duration::from_millis(2500),
        "{:?}",
        started.elapsed()
    );
}
