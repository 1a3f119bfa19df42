package io.metaparticle.sync.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(60)
class ElectionTest {
  /** Records a candidate's events for the test to wait on. */
  private static final class Recorder implements ElectionListener {
    final BlockingQueue<Leadership> elected = new LinkedBlockingQueue<>();
    final BlockingQueue<Loss> deposed = new LinkedBlockingQueue<>();
    final BlockingQueue<Leader> others = new LinkedBlockingQueue<>();
    final CompletableFuture<SyncException> ended = new CompletableFuture<>();

    @Override
    public void elected(Leadership leadership) {
      elected.add(leadership);
    }

    @Override
    public void deposed(long term, Loss loss) {
      deposed.add(loss);
    }

    @Override
    public void leaderChanged(Leader leader) {
      others.add(leader);
    }

    @Override
    public void ended(SyncException error) {
      ended.complete(error);
    }
  }

  private static <T> T await(BlockingQueue<T> queue, Predicate<T> want) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (System.nanoTime() < deadline) {
      T item = queue.poll(deadline - System.nanoTime(), TimeUnit.NANOSECONDS);
      if (item != null && want.test(item)) {
        return item;
      }
    }
    throw new AssertionError("nothing as expected within 10 s");
  }

  @Test
  void aSlowEndedCallbackDoesNotDelayALocksLostSignal() throws Exception {
    try (DaemonProcess daemon = new DaemonProcess("--lease-duration=2s", "--renew-deadline=1s")) {
      SyncClient client = daemon.client();
      Recorder events = new Recorder();
      client.campaign("scheduler", CampaignOptions.defaults().withCandidate("slow"), events);
      Leadership leadership = events.elected.poll(10, TimeUnit.SECONDS);
      // A longer lease: this lock's deadline runs out after the leadership's.
      Lock lock = client.lock("other", LockOptions.defaults().withLeaseDuration(Duration.ofSeconds(4)));
      CountDownLatch release = new CountDownLatch(1);
      leadership
          .ended()
          .thenRun(
              () -> {
                try {
                  release.await(30, TimeUnit.SECONDS); // a user callback that takes its time
                } catch (InterruptedException e) {
                  Thread.currentThread().interrupt();
                }
              });
      daemon.freeze();
      try {
        assertEquals(Loss.HEARTBEAT_TIMEOUT, lock.lost().get(10, TimeUnit.SECONDS).reason());
      } finally {
        release.countDown();
        daemon.thaw();
      }
    }
  }

  @Test
  void campaignResignAndObserve() throws Exception {
    try (DaemonProcess daemon = new DaemonProcess()) {
      SyncClient client = daemon.client();
      BlockingQueue<Leader> observed = new LinkedBlockingQueue<>();
      try (Observation observation = client.observe("scheduler", observed::add)) {
        assertEquals("", await(observed, leader -> true).leader(), "nobody campaigned yet");

        Recorder alphaEvents = new Recorder();
        Campaign alpha =
            client.campaign(
                "scheduler", CampaignOptions.defaults().withCandidate("alpha").withValue("alpha:1"), alphaEvents);
        Leadership first = await(alphaEvents.elected, leadership -> true);
        await(observed, leader -> leader.equals(new Leader("alpha", "alpha:1", first.term())));

        Recorder betaEvents = new Recorder();
        try (Campaign beta =
            client.campaign(
                "scheduler", CampaignOptions.defaults().withCandidate("beta").withValue("beta:1"), betaEvents)) {
          await(betaEvents.others, leader -> leader.leader().equals("alpha"));

          alpha.proclaim("alpha:2");
          await(observed, leader -> leader.value().equals("alpha:2"));

          alpha.resign();
          assertEquals(Loss.RELEASED, first.ended().get(10, TimeUnit.SECONDS).reason());
          assertEquals(Loss.RELEASED, await(alphaEvents.deposed, loss -> true).reason());
          Leadership next = await(betaEvents.elected, leadership -> true);
          assertTrue(next.term() > first.term(), "terms must grow");
          await(observed, leader -> leader.leader().equals("beta") && leader.term() == next.term());

          assertNull(alphaEvents.ended.get(10, TimeUnit.SECONDS), "a resigned campaign ends without error");
          SyncException refused = assertThrows(SyncException.class, () -> alpha.proclaim("late"));
          assertEquals(SyncException.Code.FAILED_PRECONDITION, refused.code());
        }
      }
    }
  }

  /**
   * Resigns on another thread (on a frozen sidecar the call may take until its deadline), lets the
   * sidecar's term run out, thaws it, and checks that the candidate is never said to be elected
   * again: after the thaw the sidecar may well elect it again, on the old stream or a new one.
   */
  private static void assertNoElectedAfterResign(DaemonProcess daemon, Campaign campaign, Recorder events)
      throws Exception {
    CompletableFuture<Void> resigned =
        CompletableFuture.runAsync(
            () -> {
              try {
                campaign.resign();
              } catch (SyncException e) {
                // Whatever resign says (a deadline, a term already over), the campaign is over.
              }
            });
    Thread.sleep(3000); // past the 2 s lease
    daemon.thaw();
    resigned.get(15, TimeUnit.SECONDS);
    Thread.sleep(4000); // time for a new term to be won and reported
    assertTrue(events.elected.isEmpty(), "elected after resign, term " + events.elected.peek());
    events.ended.get(10, TimeUnit.SECONDS);
  }

  @Test
  void noElectedAfterResignWhileTheSidecarIsFrozen() throws Exception {
    try (DaemonProcess daemon = new DaemonProcess("--lease-duration=2s", "--renew-deadline=1s")) {
      Recorder events = new Recorder();
      Campaign campaign =
          daemon.client().campaign("ghost", CampaignOptions.defaults().withCandidate("ghost"), events);
      assertNotNull(events.elected.poll(10, TimeUnit.SECONDS), "never elected");
      daemon.freeze();
      assertNoElectedAfterResign(daemon, campaign, events);
      assertEquals(1, events.deposed.size(), "the term's end is told once: " + events.deposed);
    }
  }

  @Test
  void noElectedAfterResignOnceTheTermRanOutOnAFrozenSidecar() throws Exception {
    try (DaemonProcess daemon = new DaemonProcess("--lease-duration=2s", "--renew-deadline=1s")) {
      Recorder events = new Recorder();
      Campaign campaign =
          daemon.client().campaign("ghost", CampaignOptions.defaults().withCandidate("ghost"), events);
      assertNotNull(events.elected.poll(10, TimeUnit.SECONDS), "never elected");
      daemon.freeze();
      assertEquals(Loss.HEARTBEAT_TIMEOUT, events.deposed.poll(10, TimeUnit.SECONDS).reason());
      // Not leading any more, but still a candidate: resign leaves the campaign all the same.
      assertNoElectedAfterResign(daemon, campaign, events);
    }
  }

  @Test
  void awaitAndHasLeadershipAsLeaderLatch() throws Exception {
    try (DaemonProcess daemon = new DaemonProcess()) {
      SyncClient client = daemon.client();
      Campaign first = client.campaign("latch", CampaignOptions.defaults().withCandidate("first"), new Recorder());
      assertEquals(first.await().term(), first.leadership().term());
      assertTrue(first.hasLeadership());
      Campaign second = client.campaign("latch", CampaignOptions.defaults().withCandidate("second"), new Recorder());
      assertFalse(second.await(Duration.ofMillis(300)), "two leaders");
      assertFalse(second.hasLeadership());
      first.resign();
      assertFalse(first.hasLeadership());
      assertFalse(first.await(1, TimeUnit.SECONDS), "a resigned campaign is over");
      assertEquals(
          SyncException.Code.FAILED_PRECONDITION, assertThrows(SyncException.class, first::await).code());
      assertTrue(second.await(10, TimeUnit.SECONDS));
      assertTrue(second.hasLeadership());
      second.close();
      assertFalse(second.hasLeadership());
      second.close(); // again: nothing happens
    }
  }

  @Test
  void toldOfShutdownALeaderAndAHolderLetGoAtOnce() throws Exception {
    // A long shutdown timeout and long leases: the daemon exits early only if the client closes
    // its streams when told, since it keeps each lease until its stream closes (docs/design.md 3.7).
    try (DaemonProcess daemon = new DaemonProcess("--shutdown-timeout=20s")) {
      SyncClient client = daemon.client();
      Recorder events = new Recorder();
      Duration longLease = Duration.ofSeconds(60);
      client.campaign("shutdown", CampaignOptions.defaults().withLeaseDuration(longLease), events);
      assertNotNull(events.elected.poll(10, TimeUnit.SECONDS), "never elected");
      Lock lock = client.lock("shutdown", LockOptions.defaults().withLeaseDuration(longLease));
      daemon.terminate();
      assertEquals(Loss.SHUTDOWN, events.deposed.poll(10, TimeUnit.SECONDS).reason());
      assertEquals(Loss.SHUTDOWN, lock.lost().get(10, TimeUnit.SECONDS).reason());
      events.ended.get(5, TimeUnit.SECONDS);
      assertTrue(daemon.exitsWithin(Duration.ofSeconds(5)), "the daemon still waits for a stream to close");
    }
  }
}
