package io.metaparticle.sync.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.Status;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
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
      assertEquals(Loss.RELEASED, first.lost().get(1, TimeUnit.SECONDS).reason());
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
