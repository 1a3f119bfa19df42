//! Elections against a real sidecar.
mod common;

use std::time::Duration;

use common::{Daemon, within};
use metaparticle_sync::{Campaign, CampaignEvent, CampaignOptions, Error, Leader, LossReason, ReadConsistency};
use tokio_stream::StreamExt;

async fn next(campaign: &mut Campaign) -> CampaignEvent {
    within(15, "the next campaign event", campaign.next())
        .await
        .expect("the campaign ended")
        .expect("the campaign failed")
}

/// The next term of this candidate; the sidecar may first say who leads (or
/// that nobody does).
async fn elected(campaign: &mut Campaign) -> metaparticle_sync::Leadership {
    loop {
        match next(campaign).await {
            CampaignEvent::Elected(leadership) => return leadership,
            CampaignEvent::LeaderChanged(_) => continue,
            other => panic!("expected Elected, got {other:?}"),
        }
    }
}

/// The next news of `leader` leading, skipping news of others (or nobody).
async fn leads(campaign: &mut Campaign, leader: &str) -> Leader {
    loop {
        match next(campaign).await {
            CampaignEvent::LeaderChanged(news) if news.leader == leader => return news,
            CampaignEvent::LeaderChanged(_) => continue,
            other => panic!("expected news of {leader} leading, got {other:?}"),
        }
    }
}

fn candidate(name: &str, value: &str) -> CampaignOptions {
    CampaignOptions::default().candidate(name).value(value)
}

#[tokio::test]
async fn campaign_proclaim_observe_and_resign_hand_over() {
    let daemon = Daemon::start();
    let client = daemon.client();
    let mut alice = client.campaign_with("scheduler", candidate("alice", "10.0.0.1"));
    let first = elected(&mut alice).await;
    assert!(first.term > 0);
    assert!(alice.is_leading());

    let mut observer = client.observe("scheduler");
    let seen = within(10, "observe", observer.next()).await.unwrap().unwrap();
    assert_eq!(
        seen,
        Leader {
            leader: "alice".into(),
            value: "10.0.0.1".into(),
            term: first.term
        }
    );

    let mut bob = client.campaign_with("scheduler", candidate("bob", "10.0.0.2"));
    match next(&mut bob).await {
        CampaignEvent::LeaderChanged(leader) => {
            assert_eq!((leader.leader.as_str(), leader.term), ("alice", first.term))
        }
        other => panic!("expected LeaderChanged, got {other:?}"),
    }

    alice.proclaim("10.0.0.9").await.unwrap();
    let seen = within(10, "observe the proclaimed value", observer.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((seen.leader.as_str(), seen.value.as_str()), ("alice", "10.0.0.9"));
    let leader = client.get_leader("scheduler", ReadConsistency::Fresh).await.unwrap();
    assert_eq!(
        (leader.leader.as_str(), leader.value.as_str(), leader.term),
        ("alice", "10.0.0.9", first.term)
    );

    alice.resign().await.unwrap();
    match next(&mut alice).await {
        CampaignEvent::Deposed { term, loss } => assert_eq!((term, loss), (first.term, None)),
        other => panic!("expected Deposed, got {other:?}"),
    }
    // A resignation is a normal end of the term, and ends the campaign.
    assert_eq!(first.signal.lost().await, None);
    // Then the campaign ends, perhaps after news of the next leader.
    while let Some(event) = within(10, "the campaign ends", alice.next()).await {
        assert!(matches!(event, Ok(CampaignEvent::LeaderChanged(_))), "{event:?}");
    }

    let second = elected(&mut bob).await;
    assert!(second.term > first.term);
    let seen = within(10, "observe the new leader", observer.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (seen.leader.as_str(), seen.value.as_str(), seen.term),
        ("bob", "10.0.0.2", second.term)
    );
}

#[tokio::test]
async fn closing_a_campaign_gives_leadership_to_the_next_candidate() {
    let daemon = Daemon::start();
    let client = daemon.client();
    let mut alice = client.campaign_with("closing", candidate("alice", ""));
    let first = elected(&mut alice).await;
    let mut bob = client.campaign_with("closing", candidate("bob", ""));
    leads(&mut bob, "alice").await;

    drop(alice);
    assert_eq!(within(5, "the term ends", first.signal.lost()).await, None);
    let second = elected(&mut bob).await;
    assert!(second.term > first.term);
}

#[tokio::test]
async fn proclaim_and_resign_need_leadership() {
    let daemon = Daemon::start();
    let client = daemon.client();
    let mut alice = client.campaign_with("lead", candidate("alice", ""));
    let term = elected(&mut alice).await.term;
    let mut bob = client.campaign_with("lead", candidate("bob", ""));
    leads(&mut bob, "alice").await;
    for err in [bob.proclaim("x").await.unwrap_err(), bob.resign().await.unwrap_err()] {
        assert!(matches!(err, Error::NotHeld { .. }), "{err:?}");
    }
    // A stale term is refused by the sidecar itself.
    for err in [
        client.proclaim("lead", term + 1, "x").await.unwrap_err(),
        client.resign("lead", term + 1).await.unwrap_err(),
    ] {
        assert!(matches!(err, Error::NotHeld { .. }), "{err:?}");
    }
    assert!(alice.is_leading());
}

#[tokio::test]
async fn bad_input_names_the_field() {
    let daemon = Daemon::start();
    let client = daemon.client();

    let mut campaign = client.campaign("Bad Name");
    let err = within(10, "refused", campaign.next()).await.unwrap().unwrap_err();
    assert_eq!(
        (err.code(), err.field()),
        (tonic::Code::InvalidArgument, Some("name")),
        "{err}"
    );
    assert!(within(10, "the campaign ends", campaign.next()).await.is_none());

    let mut campaign = client.campaign_with(
        "ok",
        CampaignOptions::default().lease_duration(Duration::from_secs(7200)),
    );
    let err = within(10, "refused", campaign.next()).await.unwrap().unwrap_err();
    assert_eq!(err.field(), Some("lease_duration"), "{err}");

    let mut campaign = client.campaign_with("ok", CampaignOptions::default().candidate(""));
    let err = within(10, "refused", campaign.next()).await.unwrap().unwrap_err();
    assert_eq!(err.field(), Some("candidate"), "{err}");

    let mut observation = client.observe("-bad-");
    let err = within(10, "refused", observation.next()).await.unwrap().unwrap_err();
    assert_eq!(err.field(), Some("name"), "{err}");

    let err = client.proclaim("ok", 1, &"x".repeat(5000)).await.unwrap_err();
    assert_eq!(err.field(), Some("value"), "{err}");
    let err = client.resign("ok", 0).await.unwrap_err();
    assert_eq!(err.field(), Some("term"), "{err}");
}

/// The sidecar froze past the lease: the leader is deposed on the client's
/// own deadline, and once the sidecar runs again the stale term is given up,
/// so another candidate is elected.
#[tokio::test]
async fn leader_is_deposed_on_its_own_deadline_when_the_sidecar_freezes() {
    let daemon = Daemon::start_short_lease();
    let client = daemon.client();
    let mut alice = client.campaign_with("frozen", candidate("alice", ""));
    let first = elected(&mut alice).await;
    let mut bob = client.campaign_with("frozen", candidate("bob", ""));
    leads(&mut bob, "alice").await;

    daemon.freeze();
    match next(&mut alice).await {
        CampaignEvent::Deposed { term, loss } => {
            assert_eq!(term, first.term);
            assert_eq!(loss.expect("a loss").reason, LossReason::HeartbeatTimeout);
        }
        other => panic!("expected Deposed, got {other:?}"),
    }
    assert!(first.signal.is_lost());
    daemon.thaw();

    let second = elected(&mut bob).await;
    assert!(second.term > first.term);
}

/// This process paused past the leader's deadline while the sidecar kept
/// renewing: the client deposes itself and rejoins on a new stream, so the
/// sidecar gives the term up and the next candidate leads, instead of a
/// leadership nobody acts on.
#[tokio::test(flavor = "current_thread")]
async fn leader_gives_leadership_back_when_this_process_pauses_past_its_deadline() {
    let daemon = Daemon::start_short_lease();
    let client = daemon.client();
    let mut alice = client.campaign_with("paused", candidate("alice", ""));
    let first = elected(&mut alice).await;
    let mut bob = client.campaign_with("paused", candidate("bob", ""));
    leads(&mut bob, "alice").await;

    // Blocks this runtime's only thread: no task runs, as in a long GC pause.
    std::thread::sleep(Duration::from_millis(3500));

    match next(&mut alice).await {
        CampaignEvent::Deposed { term, loss } => {
            assert_eq!(term, first.term);
            assert_eq!(loss.expect("a loss").reason, LossReason::HeartbeatTimeout);
        }
        other => panic!("expected Deposed, got {other:?}"),
    }
    let second = elected(&mut bob).await;
    assert!(second.term > first.term);
    // Alice is still a candidate, and hears of the new leader.
    assert_eq!(leads(&mut alice, "bob").await.term, second.term);
}

#[tokio::test]
async fn a_handle_controls_the_campaign_while_another_task_reads_its_events() {
    let daemon = Daemon::start();
    let client = daemon.client();
    let mut campaign = client.campaign_with("handle", candidate("alice", "v1"));
    let handle = campaign.handle();
    let (elected_sender, elected_term) = tokio::sync::oneshot::channel();
    let reader = tokio::spawn(async move {
        let mut elected_sender = Some(elected_sender);
        let mut deposed = Vec::new();
        while let Some(event) = campaign.next().await {
            match event.unwrap() {
                CampaignEvent::Elected(leadership) => {
                    let _ = elected_sender.take().map(|sender| sender.send(leadership.term));
                }
                CampaignEvent::Deposed { term, loss } => deposed.push((term, loss)),
                CampaignEvent::LeaderChanged(_) => {}
            }
        }
        deposed
    });

    let term = within(10, "elected", elected_term).await.unwrap();
    assert_eq!(handle.leadership().map(|leadership| leadership.term), Some(term));
    handle.proclaim("v2").await.unwrap();
    let leader = client.get_leader("handle", ReadConsistency::Fresh).await.unwrap();
    assert_eq!((leader.leader.as_str(), leader.value.as_str()), ("alice", "v2"));
    handle.resign().await.unwrap();
    // The reader sees the normal end of the term, then the end of the campaign.
    assert_eq!(
        within(10, "the campaign ends", reader).await.unwrap(),
        vec![(term, None)]
    );
}

#[tokio::test]
async fn dropping_an_observation_stops_it_and_others_go_on() {
    let daemon = Daemon::start();
    let client = daemon.client();
    let first = client.observe("watched");
    let mut second = client.observe("watched");
    assert_eq!(
        within(10, "the current leader", second.next())
            .await
            .unwrap()
            .unwrap()
            .leader,
        ""
    );
    drop(first);
    let mut alice = client.campaign_with("watched", candidate("alice", "x"));
    elected(&mut alice).await;
    let seen = within(10, "the new leader", second.next()).await.unwrap().unwrap();
    assert_eq!((seen.leader.as_str(), seen.value.as_str()), ("alice", "x"));
}

/// No ghost leadership: resign on a frozen sidecar, thaw, and the candidate
/// is never reported elected again; its term ends once, as a resignation,
/// and then the campaign ends. `timeout` is resign's deadline: shorter than
/// the freeze, or long enough that the sidecar answers once thawed.
async fn resign_on_a_frozen_sidecar(election: &str, timeout: Duration) -> Result<(), Error> {
    let daemon = Daemon::start_short_lease();
    let client = daemon.client();
    let mut alice = client.campaign_with(election, candidate("alice", ""));
    let first = elected(&mut alice).await;
    daemon.freeze();
    let handle = alice.handle().with_timeout(timeout);
    let resigning = tokio::spawn(async move { handle.resign().await });
    // Past the lease: the sidecar's own lease runs out while it is frozen.
    tokio::time::sleep(Duration::from_secs(3)).await;
    daemon.thaw();
    let resigned = within(15, "resign returns", resigning).await.unwrap();

    let mut events = Vec::new();
    let ended = tokio::time::timeout(Duration::from_secs(8), async {
        while let Some(event) = alice.next().await {
            events.push(event);
        }
    })
    .await;
    let elected_again: Vec<_> = events
        .iter()
        .filter(|event| matches!(event, Ok(CampaignEvent::Elected(_))))
        .collect();
    assert!(elected_again.is_empty(), "elected after resign: {events:?}");
    assert!(ended.is_ok(), "the campaign did not end after resign: {events:?}");
    let ends: Vec<_> = events
        .iter()
        .filter_map(|event| match event {
            Ok(CampaignEvent::Deposed { term, loss }) => Some((*term, loss.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(ends, vec![(first.term, None)], "{events:?}");
    assert_eq!(first.signal.lost().await, None);
    resigned
}

#[tokio::test]
async fn no_election_is_reported_after_resign_on_a_frozen_sidecar() {
    // The sidecar answers after the thaw (the term is likely gone by then).
    let _ = resign_on_a_frozen_sidecar("ghost", Duration::from_secs(10)).await;
}

#[tokio::test]
async fn no_election_is_reported_after_a_resign_that_ran_out_of_time() {
    let err = resign_on_a_frozen_sidecar("ghost-deadline", Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::DeadlineExceeded { .. }), "{err:?}");
}

#[tokio::test]
async fn resign_while_not_leading_ends_the_campaign() {
    let daemon = Daemon::start();
    let client = daemon.client();
    let mut alice = client.campaign_with("not-leading", candidate("alice", ""));
    elected(&mut alice).await;
    let mut bob = client.campaign_with("not-leading", candidate("bob", ""));
    leads(&mut bob, "alice").await;
    let err = bob.resign().await.unwrap_err();
    assert!(matches!(err, Error::NotHeld { .. }), "{err:?}");
    // Bob left: he is never elected, even once alice resigns.
    alice.resign().await.unwrap();
    while let Some(event) = within(10, "bob's campaign ends", bob.next()).await {
        assert!(!matches!(event, Ok(CampaignEvent::Elected(_))), "{event:?}");
    }
}
