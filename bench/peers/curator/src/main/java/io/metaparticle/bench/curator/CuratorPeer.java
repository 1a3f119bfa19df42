package io.metaparticle.bench.curator;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.retry.ExponentialBackoffRetry;

/**
 * curator-peer drives Apache Curator's recipes against a ZooKeeper server (see {@link
 * ZooKeeperLauncher}), so the benchmark can put them beside metaparticle-sync and etcd's
 * concurrency recipes. It mirrors bench/peers/cmd/etcd-peer:
 *
 * <ul>
 *   <li>{@code --mode=election}: one {@code LeaderLatch} ({@link Election}).
 *   <li>{@code --mode=mutex --sessions=8 --duration=20s}: {@code InterProcessMutex} lock/unlock
 *       loops ({@link LockLoop}).
 *   <li>{@code --mode=semaphore --permits=3 --sessions=8 --duration=20s}: {@code
 *       InterProcessSemaphoreV2} acquire/return loops ({@link LockLoop}).
 *   <li>{@code --mode=rwlock --exclusive-every=10 --sessions=8 --duration=20s}: {@code
 *       InterProcessReadWriteLock} loops, one acquisition in ten on the write lock, the others on
 *       the read lock ({@link LockLoop}).
 * </ul>
 *
 * <p>Both loops take {@code --hold=0ms} (how long each holder keeps its permit) and {@code --go}
 * (start at once instead of on a {@code go} line).
 *
 * <p>Common flags: {@code --connect=127.0.0.1:2181}, {@code --name=bench} (the znode path is
 * /bench/MODE/NAME), {@code --identity} (default host name and pid), {@code
 * --session-timeout=15s} (the ZooKeeper session: a crashed holder's nodes go when it runs out, as
 * etcd-peer's --ttl=15). Events are JSON lines on stdout ({@link Events}).
 */
public final class CuratorPeer {
  private CuratorPeer() {}

  public static void main(String[] args) throws Exception {
    // Curator and ZooKeeper log through SLF4J (slf4j-simple, to stderr): warnings and worse,
    // unless -Dlog=info.
    System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", System.getProperty("log", "warn"));
    Flags flags = new Flags("curator-peer", args);
    String connect = flags.string("connect", "127.0.0.1:2181");
    String mode = flags.string("mode", "election");
    String name = flags.string("name", "bench");
    String identity = flags.string("identity", "");
    if (identity.isEmpty()) {
      String host = java.net.InetAddress.getLocalHost().getHostName();
      identity = host + "_" + ProcessHandle.current().pid();
    }
    int sessionTimeoutMs = (int) flags.durationMs("session-timeout", 15_000);
    String path = "/bench/" + mode + "/" + name;
    Connector connector = new Connector(connect, sessionTimeoutMs);
    switch (mode) {
      case "election" -> new Election(connector, path, identity).run();
      case "mutex", "semaphore", "rwlock" -> {
        int permits = mode.equals("mutex") ? 1 : flags.integer("permits", 3);
        int sessions = flags.integer("sessions", 8);
        long durationMs = flags.durationMs("duration", 20_000);
        if (sessions < 1 || permits < 1 || durationMs <= 0) {
          throw flags.fail("--sessions, --permits and --duration must be positive");
        }
        long holdMs = flags.durationMs("hold", 0);
        int exclusiveEvery = flags.integer("exclusive-every", 10);
        if (exclusiveEvery < 1) throw flags.fail("--exclusive-every must be positive");
        boolean startNow = flags.bool("go");
        new LockLoop(
                connector,
                mode,
                path,
                identity,
                permits,
                sessions,
                durationMs,
                holdMs,
                exclusiveEvery,
                startNow)
            .run();
      }
      default -> throw flags.fail("unknown --mode " + mode + " (election, mutex, semaphore or rwlock)");
    }
  }

  /** Opens started, connected Curator clients, each with its own ZooKeeper session. */
  static final class Connector {
    private final String connect;
    private final int sessionTimeoutMs;

    Connector(String connect, int sessionTimeoutMs) {
      this.connect = connect;
      this.sessionTimeoutMs = sessionTimeoutMs;
    }

    CuratorFramework open() throws InterruptedException {
      CuratorFramework client =
          CuratorFrameworkFactory.builder()
              .connectString(connect)
              .sessionTimeoutMs(sessionTimeoutMs)
              .connectionTimeoutMs(15_000)
              .retryPolicy(new ExponentialBackoffRetry(100, 3))
              .build();
      client.start();
      if (!client.blockUntilConnected(30, TimeUnit.SECONDS)) {
        System.err.println("curator-peer: no ZooKeeper connection to " + connect + " within 30 s");
        System.exit(1);
      }
      return client;
    }
  }

  /** Lines from stdin; end of input reads as "exit". */
  static BlockingQueue<String> commands() {
    BlockingQueue<String> lines = new LinkedBlockingQueue<>();
    Thread reader =
        new Thread(
            () -> {
              try (BufferedReader in =
                  new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
                for (String line; (line = in.readLine()) != null; ) lines.add(line.trim());
              } catch (java.io.IOException e) {
                // stdin gone: same as its end
              }
              lines.add("exit");
            },
            "stdin");
    reader.setDaemon(true);
    reader.start();
    return lines;
  }

  static void fail(String message, Throwable cause) {
    System.err.println("curator-peer: " + message + ": " + cause);
    cause.printStackTrace();
    System.exit(1);
  }

  /** Closes every client, ignoring failures: used on the way out. */
  static void closeAll(List<CuratorFramework> clients) {
    for (CuratorFramework c : new ArrayList<>(clients)) {
      try {
        c.close();
      } catch (RuntimeException e) {
        // exiting anyway
      }
    }
  }
}
