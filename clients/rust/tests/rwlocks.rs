//! Read-write locks against a real sidecar.
mod common;

use std::time::{Duration, Instant};

use common::{Daemon, fails_at_its_deadline, within};
use metaparticle_sync::{Client, Error, LockOptions, LossReason, Mode, ReadConsistency, RwLockInfo, TryLockOptions};

const NAME: &str = "catalog";

fn as_holder(holder: &str) -> LockOptions {
    LockOptions::default().holder(holder)
}

async fn fresh(client: &Client, name: &str) -> RwLockInfo {
    client.get_rwlock(name, ReadConsistency::Fresh).await.unwrap()
}

/// The state a refused try-acquire reports; fails the test on anything else.
fn refused(result: Result<metaparticle_sync::LeasedRwHold, Error>) -> RwLockInfo {
    match result {
        Err(Error::RwLockNotFree { name, state }) => {
            assert_eq!(name, NAME);
            *state
        }
        other => panic!("expected RwLockNotFree, got {other:?}"),
    }
}

#[tokio::test]
async fn readers_share_the_lock_and_a_writer_waits_for_all_of_them_then_holds_alone() {
    let daemon = Daemon::start();
    let client = daemon.client();
    let never_used = client.get_rwlock(NAME, ReadConsistency::Cached).await.unwrap();
    assert_eq!(
        (never_used.held, never_used.mode, never_used.fencing_token),
        (false, None, 0)
    );

    let first = within(
        10,
        "first reader",
        client.acquire_rwlock_with(NAME, Mode::Shared, as_holder("r1")),
    )
    .await
    .unwrap();
    let second = within(
        10,
        "second reader",
        client.acquire_rwlock_with(NAME, Mode::Shared, as_holder("r2")),
    )
    .await
    .unwrap();
    assert_eq!((first.mode(), second.mode()), (Mode::Shared, Mode::Shared));
    assert_eq!((first.holder(), first.name()), ("r1", NAME));
    // No writer yet: a reader's token is 0, and only the hold id tells them apart.
    assert_eq!((first.token(), second.token()), (0, 0));
    assert_ne!(first.hold_id(), second.hold_id());
    assert!(first.valid_for() > Duration::ZERO && !first.is_lost());

    let info = fresh(&client, NAME).await;
    assert_eq!(
        (info.held, info.mode, info.reader_count()),
        (true, Some(Mode::Shared), 2)
    );
    assert_eq!((info.holder.as_str(), info.fencing_token), ("", 0));

    let writer_client = client.clone();
    let writer = tokio::spawn(async move {
        writer_client
            .acquire_rwlock_with(NAME, Mode::Exclusive, as_holder("w"))
            .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!writer.is_finished(), "a writer was granted while two readers held");

    let first_signal = first.signal();
    within(10, "release", first.release()).await.unwrap();
    assert_eq!(within(5, "signal after release", first_signal.lost()).await, None);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!writer.is_finished(), "a writer was granted while a reader held");
    // Dropping the guard gives the hold back too.
    drop(second);
    let writer = within(10, "writer granted", writer).await.unwrap().unwrap();
    assert_eq!((writer.mode(), writer.holder()), (Mode::Exclusive, "w"));
    assert!(writer.token() > 0, "an exclusive token is above every earlier one");

    let info = fresh(&client, NAME).await;
    assert_eq!(info.mode, Some(Mode::Exclusive));
    assert_eq!((info.holder.as_str(), info.fencing_token), ("w", writer.token()));
    assert_eq!(info.reader_count(), 0);
    let state = refused(client.try_acquire_rwlock(NAME, Mode::Shared).await);
    assert_eq!(
        (state.mode, state.fencing_token),
        (Some(Mode::Exclusive), writer.token())
    );

    let reader_client = client.clone();
    let late = tokio::spawn(async move { reader_client.acquire_rwlock(NAME, Mode::Shared).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!late.is_finished(), "a reader was granted while a writer held");
    let writer_token = writer.token();
    within(10, "writer release", writer.release()).await.unwrap();
    let late = within(10, "late reader granted", late).await.unwrap().unwrap();
    assert_eq!(late.token(), writer_token, "a reader reports the last writer's token");

    drop(late);
    let next = within(10, "next writer", client.acquire_rwlock(NAME, Mode::Exclusive))
        .await
        .unwrap();
    assert!(next.token() > writer_token, "exclusive tokens must grow");
}

#[tokio::test]
async fn leased_holds_are_renewed_and_released_each_by_its_own_hold_id() {
    let daemon = Daemon::start();
    let client = daemon.client();
    let lease = TryLockOptions::default()
        .holder("b")
        .lease_duration(Duration::from_secs(5));
    let writer = client.try_acquire_rwlock(NAME, Mode::Exclusive).await.unwrap();
    assert_eq!(writer.mode(), Mode::Exclusive);
    let token = writer.token();
    writer.release().await.unwrap();

    let one = client
        .try_acquire_rwlock_with(NAME, Mode::Shared, lease.clone())
        .await
        .unwrap();
    let two = client.try_acquire_rwlock_with(NAME, Mode::Shared, lease).await.unwrap();
    assert_eq!((one.token(), two.token()), (token, token));
    assert_eq!((one.holder(), one.lease_duration()), ("b", Duration::from_secs(5)));
    assert_ne!(one.hold_id(), two.hold_id());
    let state = refused(client.try_acquire_rwlock(NAME, Mode::Exclusive).await);
    assert_eq!((state.mode, state.reader_count()), (Some(Mode::Shared), 2));
    assert!(state.readers.iter().all(|seat| !seat.holder_identity.is_empty()));

    let valid_for = one.renew(Some(Duration::from_secs(30))).await.unwrap();
    assert!(valid_for > Duration::from_secs(5), "{valid_for:?}");
    let one_id = one.hold_id().to_owned();
    client.release_rwlock(NAME, &one_id).await.unwrap();
    assert_eq!(fresh(&client, NAME).await.reader_count(), 1);
    for err in [
        client.renew_rwlock(NAME, &one_id, None).await.unwrap_err(),
        client.release_rwlock(NAME, &one_id).await.unwrap_err(),
    ] {
        assert!(matches!(err, Error::NotHeld { .. }), "{err:?}");
        assert_eq!(err.code(), tonic::Code::FailedPrecondition);
    }
    // The guard learns it when it renews: its signal fires.
    assert!(matches!(one.renew(None).await, Err(Error::NotHeld { .. })));
    assert_eq!(one.signal().loss().expect("lost").reason, LossReason::RenewRefused);
    // The other hold of the same holder and token is untouched.
    assert!(client.renew_rwlock(NAME, two.hold_id(), None).await.is_ok());
    assert!(!two.is_lost());
    two.release().await.unwrap();
    assert!(!fresh(&client, NAME).await.held);

    // A hold kept by a stream, released by its id elsewhere: its holder is told.
    let streamed = within(10, "stream hold", client.acquire_rwlock(NAME, Mode::Shared))
        .await
        .unwrap();
    client.release_rwlock(NAME, streamed.hold_id()).await.unwrap();
    let loss = within(10, "lost", streamed.lost()).await;
    assert_eq!(loss.reason, LossReason::StreamEnded, "{loss}");
    within(10, "release after the loss", streamed.release()).await.unwrap();
}

#[tokio::test]
async fn a_leased_hold_not_renewed_is_lost_when_its_lease_runs_out() {
    let daemon = Daemon::start();
    let client = daemon.client();
    let lease = TryLockOptions::default().lease_duration(Duration::from_secs(1));
    let hold = client.try_acquire_rwlock_with(NAME, Mode::Shared, lease).await.unwrap();
    assert!(hold.valid_for() <= Duration::from_secs(1));
    let started = Instant::now();
    let loss = within(5, "lost", hold.signal().lost())
        .await
        .expect("a loss, not a normal end");
    assert_eq!(loss.reason, LossReason::HeartbeatTimeout, "{loss}");
    assert!(
        started.elapsed() <= Duration::from_millis(1600),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(hold.valid_for(), Duration::ZERO);
}

#[tokio::test]
async fn bad_input_is_invalid_argument_naming_the_field() {
    let daemon = Daemon::start();
    let client = daemon.client();
    let err = client.try_acquire_rwlock("Not A Name", Mode::Shared).await.unwrap_err();
    assert_eq!(
        (err.code(), err.field()),
        (tonic::Code::InvalidArgument, Some("name")),
        "{err:?}"
    );
    let err = within(10, "acquire", client.acquire_rwlock("Not A Name", Mode::Exclusive))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.field()),
        (tonic::Code::InvalidArgument, Some("name")),
        "{err:?}"
    );
    let half = Duration::from_millis(1500);
    let err = within(
        10,
        "acquire",
        client.acquire_rwlock_with(NAME, Mode::Shared, LockOptions::default().lease_duration(half)),
    )
    .await
    .unwrap_err();
    assert_eq!(err.field(), Some("lease_duration"), "{err:?}");
    let lease = TryLockOptions::default().lease_duration(half);
    let err = client
        .try_acquire_rwlock_with(NAME, Mode::Exclusive, lease)
        .await
        .unwrap_err();
    assert_eq!(err.field(), Some("lease_duration"), "{err:?}");
    // A hold id is the sidecar's own: one it never gave is not even well formed.
    let err = client.renew_rwlock(NAME, "no-such-hold", None).await.unwrap_err();
    assert_eq!(
        (err.code(), err.field()),
        (tonic::Code::InvalidArgument, Some("hold_id")),
        "{err:?}"
    );
    assert!(!fresh(&client, NAME).await.held, "a refused request holds nothing");
}

/// The sidecar froze (SIGSTOP) past the lease: a reader stops on its own
/// deadline, without a word from the sidecar.
#[tokio::test]
async fn a_reader_is_lost_on_the_clients_own_deadline_when_the_sidecar_freezes() {
    let daemon = Daemon::start_short_lease();
    let client = daemon.client();
    let reader = client.acquire_rwlock(NAME, Mode::Shared).await.unwrap();
    assert!(reader.valid_for() <= Duration::from_secs(2));
    daemon.freeze();
    let started = Instant::now();
    let loss = within(10, "lost", reader.lost()).await;
    assert_eq!(loss.reason, LossReason::HeartbeatTimeout, "{loss}");
    assert!(started.elapsed() <= Duration::from_secs(2), "{:?}", started.elapsed());
    assert!(reader.is_lost() && reader.valid_for() == Duration::ZERO);
    daemon.thaw();
}

/// Against a sidecar that never answers, every read-write call ends at the
/// deadline given with `with_timeout` (on the client or on the hold), and a
/// wait at its wait timeout on this client's clock.
#[tokio::test]
async fn every_rwlock_call_to_a_frozen_sidecar_fails_at_its_own_deadline() {
    let daemon = Daemon::start_with(&["--lease-duration=40s", "--renew-deadline=30s"]);
    let client = daemon.client();
    let leased = client.try_acquire_rwlock(NAME, Mode::Shared).await.unwrap();
    let leased_id = leased.hold_id().to_owned();
    let streamed = client.acquire_rwlock(NAME, Mode::Shared).await.unwrap();
    let streamed_signal = streamed.signal();
    daemon.freeze();

    let timeout = Duration::from_millis(500);
    let quick = client.with_timeout(timeout);
    let long_wait = LockOptions::default().wait_timeout(Duration::from_secs(60));
    fails_at_its_deadline(
        "acquire_rwlock",
        timeout,
        quick.acquire_rwlock_with(NAME, Mode::Exclusive, long_wait),
    )
    .await;
    fails_at_its_deadline(
        "try_acquire_rwlock",
        timeout,
        quick.try_acquire_rwlock(NAME, Mode::Shared),
    )
    .await;
    fails_at_its_deadline("get_rwlock", timeout, quick.get_rwlock(NAME, ReadConsistency::Cached)).await;
    fails_at_its_deadline("renew_rwlock", timeout, quick.renew_rwlock(NAME, &leased_id, None)).await;
    fails_at_its_deadline("release_rwlock", timeout, quick.release_rwlock(NAME, &leased_id)).await;
    let leased = leased.with_timeout(timeout);
    fails_at_its_deadline("leased.renew", timeout, leased.renew(None)).await;
    fails_at_its_deadline("leased.release", timeout, leased.release()).await;
    fails_at_its_deadline("streamed.release", timeout, streamed.with_timeout(timeout).release()).await;
    assert_eq!(streamed_signal.lost().await, None, "a release is a normal end");

    let started = Instant::now();
    let short_wait = LockOptions::default().wait_timeout(Duration::from_secs(1));
    let err = within(
        10,
        "acquire_rwlock",
        client.acquire_rwlock_with(NAME, Mode::Exclusive, short_wait),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::WaitTimeout { .. }), "{err:?}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(3),
        "{took:?}"
    );
    daemon.thaw();
}
