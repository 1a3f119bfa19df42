//! Counting semaphores against a real sidecar.
mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{Daemon, fails_at_its_deadline, within};
use metaparticle_sync::{Error, LockOptions, LossReason, PermitHolder, ReadConsistency, TryLockOptions};

fn names(holders: &[PermitHolder]) -> BTreeSet<&str> {
    holders.iter().map(|h| h.holder.as_str()).collect()
}

#[tokio::test]
async fn two_permits_are_held_by_two_holders_and_a_third_waits_for_a_release() {
    let daemon = Daemon::start();
    let client = daemon.client();
    let holder = |name: &str| LockOptions::default().holder(name);
    let first = within(10, "first", client.acquire_permit_with("export", 2, holder("first")))
        .await
        .unwrap();
    let second = within(10, "second", client.acquire_permit_with("export", 2, holder("second")))
        .await
        .unwrap();
    assert_eq!((first.holder(), second.holder()), ("first", "second"));
    assert_eq!((first.permits(), second.permits()), (2, 2));
    assert_eq!(first.name(), "export");
    assert!(first.token() > 0 && second.token() > first.token(), "tokens must grow");
    assert_ne!(first.hold_id(), second.hold_id());
    assert!(!first.is_lost() && first.valid_for() > Duration::ZERO);

    let info = client.get_semaphore("export", ReadConsistency::Fresh).await.unwrap();
    assert_eq!(info.permits, 2);
    assert_eq!(names(&info.holders), BTreeSet::from(["first", "second"]));
    let tokens: BTreeSet<i64> = info.holders.iter().map(|h| h.fencing_token).collect();
    assert_eq!(tokens, BTreeSet::from([first.token(), second.token()]));
    assert_eq!(info.fencing_token, second.token());

    // Both permits are taken: a wait of zero fails at once.
    let err = within(
        10,
        "refused",
        client.acquire_permit_with("export", 2, LockOptions::default().wait_timeout(Duration::ZERO)),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::WaitTimeout { .. }), "{err:?}");

    let waiter = client.clone();
    let third = tokio::spawn(async move {
        waiter
            .acquire_permit_with("export", 2, LockOptions::default().holder("third"))
            .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!third.is_finished(), "a third holder got a permit");

    let first_signal = first.signal();
    within(10, "release", first.release()).await.unwrap();
    // A release is a normal end, not a loss.
    assert_eq!(within(5, "signal after release", first_signal.lost()).await, None);
    let third = within(10, "third granted", third).await.unwrap().unwrap();
    assert_eq!(third.holder(), "third");
    assert!(third.token() > second.token(), "fencing tokens must grow");
    assert!(!second.is_lost());
    let info = client.get_semaphore("export", ReadConsistency::Fresh).await.unwrap();
    assert_eq!(names(&info.holders), BTreeSet::from(["second", "third"]));

    // Dropping the guard gives the permit back too.
    drop(second);
    let fourth = within(
        10,
        "fourth granted after a drop",
        client.acquire_permit_with("export", 2, holder("fourth")),
    )
    .await
    .unwrap();
    assert!(fourth.token() > third.token());
}

#[tokio::test]
async fn try_acquire_when_full_lists_the_holders() {
    let daemon = Daemon::start();
    let client = daemon.client();
    let lease = |name: &str| {
        TryLockOptions::default()
            .holder(name)
            .lease_duration(Duration::from_secs(30))
    };
    let a = client.try_acquire_permit_with("report", 2, lease("a")).await.unwrap();
    let b = client.try_acquire_permit_with("report", 2, lease("b")).await.unwrap();
    assert_eq!(a.lease_duration(), Duration::from_secs(30));
    assert_eq!((a.permits(), a.holder()), (2, "a"));
    assert!(b.token() > a.token());

    let err = client
        .try_acquire_permit_with("report", 2, lease("c"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
    let Error::NoPermitFree { name, holders } = err else {
        panic!("expected NoPermitFree, got {err:?}");
    };
    assert_eq!(name, "report");
    assert_eq!(names(&holders), BTreeSet::from(["a", "b"]));
    for holder in &holders {
        let expected = if holder.holder == "a" { a.token() } else { b.token() };
        assert_eq!(
            holder.fencing_token, expected,
            "a hold of this sidecar reports its token"
        );
        assert_eq!(holder.lease_duration, Duration::from_secs(30));
        assert!(!holder.holder_identity.is_empty());
    }

    let a_token = a.token();
    a.release().await.unwrap();
    let c = client.try_acquire_permit_with("report", 2, lease("c")).await.unwrap();
    assert!(c.token() > b.token() && c.token() > a_token);
}

#[tokio::test]
async fn renew_and_release_go_by_hold_id() {
    let daemon = Daemon::start();
    let client = daemon.client();
    let leased = client
        .try_acquire_permit_with(
            "batch",
            2,
            TryLockOptions::default().lease_duration(Duration::from_secs(5)),
        )
        .await
        .unwrap();
    let valid_for = leased.renew(Some(Duration::from_secs(30))).await.unwrap();
    assert!(valid_for > Duration::from_secs(5), "{valid_for:?}");
    assert!(leased.valid_for() > Duration::from_secs(5));
    // By hold id, as another part of the program that knows only the id would.
    let hold_id = leased.hold_id().to_owned();
    let valid_for = client.renew_permit("batch", &hold_id, None).await.unwrap();
    assert!(valid_for > Duration::from_secs(5), "{valid_for:?}");

    client.release_permit("batch", &hold_id).await.unwrap();
    let info = client.get_semaphore("batch", ReadConsistency::Fresh).await.unwrap();
    assert!(info.holders.is_empty(), "{info:?}");
    for err in [
        client.renew_permit("batch", &hold_id, None).await.unwrap_err(),
        client.release_permit("batch", &hold_id).await.unwrap_err(),
    ] {
        assert!(matches!(err, Error::NotHeld { .. }), "{err:?}");
        assert_eq!(err.code(), tonic::Code::FailedPrecondition);
    }
    // The guard learns it when it renews: its signal fires.
    let err = leased.renew(None).await.unwrap_err();
    assert!(matches!(err, Error::NotHeld { .. }), "{err:?}");
    assert_eq!(leased.signal().loss().expect("lost").reason, LossReason::RenewRefused);

    // A stream's hold released by its id: the sidecar ends the stream, and
    // the holder is told to stop.
    let permit = within(10, "permit", client.acquire_permit("batch", 2)).await.unwrap();
    client.release_permit("batch", permit.hold_id()).await.unwrap();
    let loss = within(10, "lost", permit.lost()).await;
    assert_eq!(loss.reason, LossReason::StreamEnded, "{loss}");
    let info = client.get_semaphore("batch", ReadConsistency::Fresh).await.unwrap();
    assert!(info.holders.is_empty(), "{info:?}");
    // Already over: the release has nothing left to give back.
    within(10, "release after the loss", permit.release()).await.unwrap();
}

#[tokio::test]
async fn another_number_of_permits_is_permits_mismatch_and_holds_nothing() {
    let daemon = Daemon::start();
    let client = daemon.client();
    let unused = client
        .get_semaphore("never-used", ReadConsistency::Cached)
        .await
        .unwrap();
    assert_eq!((unused.permits, unused.holders.len(), unused.fencing_token), (0, 0, 0));

    let held = client.try_acquire_permit("export", 3).await.unwrap();
    let five = LockOptions::default().wait_timeout(Duration::from_secs(5));
    for err in [
        within(10, "acquire", client.acquire_permit_with("export", 5, five))
            .await
            .unwrap_err(),
        client.try_acquire_permit("export", 5).await.unwrap_err(),
    ] {
        assert!(matches!(err, Error::PermitsMismatch { .. }), "{err:?}");
        assert_eq!(
            (err.code(), err.field()),
            (tonic::Code::FailedPrecondition, Some("permits"))
        );
        assert!(err.to_string().contains("has 3 permits"), "{err}");
    }
    let info = client.get_semaphore("export", ReadConsistency::Fresh).await.unwrap();
    assert_eq!(info.permits, 3);
    let tokens: Vec<i64> = info.holders.iter().map(|h| h.fencing_token).collect();
    assert_eq!(tokens, vec![held.token()], "the refused requests hold nothing");

    for permits in [0, 33] {
        let err = client.try_acquire_permit("bad-n", permits).await.unwrap_err();
        assert_eq!(
            (err.code(), err.field()),
            (tonic::Code::InvalidArgument, Some("permits")),
            "{err:?}"
        );
    }
}

/// The sidecar froze (SIGSTOP) past the lease: the holder of a permit stops
/// on its own deadline, without a word from the sidecar, as a lock's does.
#[tokio::test]
async fn permit_is_lost_on_the_clients_own_deadline_when_the_sidecar_freezes() {
    let daemon = Daemon::start_short_lease();
    let client = daemon.client();
    let permit = client.acquire_permit("frozen", 2).await.unwrap();
    let valid_for = permit.valid_for();
    assert!(valid_for <= Duration::from_secs(2), "{valid_for:?}");
    daemon.freeze();
    let started = std::time::Instant::now();
    let loss = within(10, "lost", permit.lost()).await;
    assert_eq!(loss.reason, LossReason::HeartbeatTimeout, "{loss}");
    assert!(
        started.elapsed() <= Duration::from_secs(2),
        "lost {:?} after the freeze, later than the 2 s lease",
        started.elapsed()
    );
    assert!(permit.is_lost() && permit.valid_for() == Duration::ZERO);
    daemon.thaw();
}

/// Every semaphore call has its deadline, the one given with `with_timeout`
/// on the client or on what it made, and a permit's wait its wait timeout on
/// this client's own clock, against a sidecar that never answers.
#[tokio::test]
async fn every_semaphore_call_to_a_frozen_sidecar_fails_at_its_own_deadline() {
    let daemon = Daemon::start_with(&["--lease-duration=40s", "--renew-deadline=30s"]);
    let client = daemon.client();
    let leased = client.try_acquire_permit("frozen", 3).await.unwrap();
    let hold_id = leased.hold_id().to_owned();
    let permit = client.acquire_permit("frozen", 3).await.unwrap();
    let signal = permit.signal();
    daemon.freeze();

    let timeout = Duration::from_millis(500);
    let quick = client.with_timeout(timeout);
    fails_at_its_deadline("try_acquire_permit", timeout, quick.try_acquire_permit("frozen", 3)).await;
    fails_at_its_deadline("renew_permit", timeout, quick.renew_permit("frozen", &hold_id, None)).await;
    fails_at_its_deadline("release_permit", timeout, quick.release_permit("frozen", &hold_id)).await;
    fails_at_its_deadline(
        "get_semaphore",
        timeout,
        quick.get_semaphore("frozen", ReadConsistency::Fresh),
    )
    .await;
    // The caller's deadline bounds a permit's wait too, before its wait timeout.
    let waiting = LockOptions::default().wait_timeout(Duration::from_secs(60));
    fails_at_its_deadline(
        "acquire_permit",
        timeout,
        quick.acquire_permit_with("frozen", 3, waiting),
    )
    .await;
    let leased = leased.with_timeout(timeout);
    fails_at_its_deadline("leased.renew", timeout, leased.renew(None)).await;
    fails_at_its_deadline("leased.release", timeout, leased.release()).await;
    fails_at_its_deadline("permit.release", timeout, permit.with_timeout(timeout).release()).await;
    // The holder asked to stop: a normal end, not a loss.
    assert_eq!(signal.lost().await, None);

    // Without a call deadline, the wait ends at the wait timeout plus one
    // second's grace on this client's clock.
    let started = std::time::Instant::now();
    let wait = LockOptions::default().wait_timeout(Duration::from_secs(1));
    let err = within(10, "acquire_permit", client.acquire_permit_with("frozen", 3, wait))
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, Error::WaitTimeout { .. }), "{err:?}");
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(3),
        "{took:?}"
    );
    daemon.thaw();
}
