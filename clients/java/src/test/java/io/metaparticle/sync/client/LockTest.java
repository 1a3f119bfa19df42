package io.metaparticle.sync.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.Status;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(60)
class LockTest {
  @Test
  void lockIsExclusiveAndCloseHandsItOver() throws Exception {
    try (DaemonProcess daemon = new DaemonProcess()) {
      SyncClient client = daemon.client();
      Lock first = client.lock("job", LockOptions.defaults().withHolder("first"));
      assertTrue(first.token() > 0);
      assertEquals("first", first.holder());
      assertTrue(first.validFor().compareTo(Duration.ZERO) > 0);

      SyncException refused =
          assertThrows(
              SyncException.class, () -> client.lock("job", LockOptions.defaults().withWaitTimeout(Duration.ZERO)));
      assertEquals(Status.Code.DEADLINE_EXCEEDED, refused.code());

      CompletableFuture<Lock> waiter =
          CompletableFuture.supplyAsync(
              () -> {
                try {
                  return client.lock("job", LockOptions.defaults().withHolder("second"));
                } catch (InterruptedException e) {
                  throw new IllegalStateException(e);
                }
              });
      assertThrows(TimeoutException.class, () -> waiter.get(200, TimeUnit.MILLISECONDS), "the waiter got a held lock");

      first.close();
      // A normal close is not a loss: lost() is for stopping work that is still running.
      assertFalse(first.lost().isDone(), "lost() completed on a normal close");
      assertFalse(first.isHeld());
      try (Lock second = waiter.get(10, TimeUnit.SECONDS)) {
        assertTrue(second.token() > first.token(), "fencing tokens must grow");
        assertFalse(second.isLost());
      }
    }
  }

  @Test
  void lockLostWhenTheSidecarFreezes() throws Exception {
    try (DaemonProcess daemon = new DaemonProcess("--lease-duration=2s", "--renew-deadline=1s");
        Lock lock = daemon.client().lock("frozen")) {
      // A stopped daemon sends neither heartbeats nor `lost`: only the client's
      // own deadline can tell the holder to stop.
      daemon.freeze();
      long stopped = System.nanoTime();
      Loss loss;
      try {
        loss = lock.lost().get(5, TimeUnit.SECONDS);
      } finally {
        daemon.thaw();
      }
      Duration waited = Duration.ofNanos(System.nanoTime() - stopped);
      assertEquals(Loss.HEARTBEAT_TIMEOUT, loss.reason());
      assertTrue(waited.compareTo(Duration.ofSeconds(2)) <= 0, "lost after " + waited + ", later than the 2 s lease");
      assertEquals(Duration.ZERO, lock.validFor());
    }
  }

  @Test
  void aSlowLostCallbackDoesNotDelayAnotherLocksLostSignal() throws Exception {
    try (DaemonProcess daemon = new DaemonProcess("--lease-duration=2s", "--renew-deadline=1s")) {
      SyncClient client = daemon.client();
      Lock slow = client.lock("slow");
      Lock other = client.lock("other", LockOptions.defaults().withLeaseDuration(Duration.ofSeconds(4)));
      CountDownLatch release = new CountDownLatch(1);
      slow.lost()
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
        // Both deadlines run out about a second after the freeze; the second lock must hear
        // of it then, not once the first lock's callback returns.
        assertEquals(Loss.HEARTBEAT_TIMEOUT, other.lost().get(10, TimeUnit.SECONDS).reason());
        assertEquals(Loss.HEARTBEAT_TIMEOUT, slow.lost().getNow(null).reason());
      } finally {
        release.countDown();
        daemon.thaw();
      }
    }
  }

  @Test
  void badInputGetsInvalidArgumentNamingTheField() throws Exception {
    try (DaemonProcess daemon = new DaemonProcess()) {
      SyncException refused = assertThrows(SyncException.class, () -> daemon.client().lock("Not_A_DNS_Name"));
      assertEquals(Status.Code.INVALID_ARGUMENT, refused.code());
      assertEquals("name", refused.field());
    }
  }

  @Test
  void campaignWithBadInputEndsWithInvalidArgument() throws Exception {
    try (DaemonProcess daemon = new DaemonProcess()) {
      CompletableFuture<SyncException> ended = new CompletableFuture<>();
      daemon
          .client()
          .campaign(
              "scheduler",
              CampaignOptions.defaults().withCandidate(""),
              new ElectionListener() {
                @Override
                public void ended(SyncException error) {
                  ended.complete(error);
                }
              });
      SyncException refused = ended.get(10, TimeUnit.SECONDS);
      assertEquals(Status.Code.INVALID_ARGUMENT, refused.code());
      assertEquals("candidate", refused.field());
    }
  }
}
