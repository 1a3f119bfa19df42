package io.metaparticle.sync.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.Status;
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
          assertEquals(Status.Code.FAILED_PRECONDITION, refused.code());
        }
      }
    }
  }
}
