package io.metaparticle.sync.client;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A real sidecar with the memory backend on a free loopback port: {@code $MSYNC_NODE
 * $MSYNC_DAEMON_MAIN} (set by {@code npm test}), or the repository's own node and
 * dist/daemon/main.js. Closing it stops the daemon and then the clients made with {@link
 * #client()}.
 */
final class DaemonProcess implements AutoCloseable {
  private static final Pattern ADDRESS = Pattern.compile("\"address\":\"([^\"]+)\"");

  private final Process process;
  private final List<String> log = new ArrayList<>();
  private final List<SyncClient> clients = new ArrayList<>();
  private final CountDownLatch ready = new CountDownLatch(1);
  private final Thread killOnExit;
  private volatile String address;
  private boolean frozen;

  DaemonProcess(String... flags) throws IOException, InterruptedException {
    Path root = Path.of("../..").toAbsolutePath().normalize();
    List<String> command = new ArrayList<>();
    // Under util-linux setpriv, when present, the kernel kills the daemon if this JVM dies even
    // outright; setpriv execs the daemon, so the pid stays the daemon's.
    Path setpriv = Path.of("/usr/bin/setpriv");
    if (Files.isExecutable(setpriv)) {
      command.addAll(List.of(setpriv.toString(), "--pdeathsig", "SIGKILL", "--"));
    }
    command.add(envOr("MSYNC_NODE", root.resolve("node_modules/.bin/node").toString()));
    command.add(envOr("MSYNC_DAEMON_MAIN", root.resolve("dist/daemon/main.js").toString()));
    command.add("--listen=127.0.0.1:0");
    command.add("--backend=memory");
    command.add("--shutdown-timeout=1s");
    command.addAll(List.of(flags));
    process =
        new ProcessBuilder(command)
            .redirectInput(ProcessBuilder.Redirect.PIPE)
            .redirectOutput(ProcessBuilder.Redirect.DISCARD)
            .start();
    // Without setpriv, a shutdown hook covers every exit of the JVM but SIGKILL.
    killOnExit = new Thread(process::destroyForcibly);
    Runtime.getRuntime().addShutdownHook(killOnExit);
    Thread reader = new Thread(this::readLog, "daemon-log");
    reader.setDaemon(true);
    reader.start();
    if (!ready.await(30, TimeUnit.SECONDS) || address == null) {
      close();
      throw new IllegalStateException("the daemon did not get ready within 30 s; its log:\n" + String.join("\n", log()));
    }
  }

  private void readLog() {
    try (BufferedReader lines =
        new BufferedReader(new InputStreamReader(process.getErrorStream(), StandardCharsets.UTF_8))) {
      for (String line = lines.readLine(); line != null; line = lines.readLine()) {
        synchronized (log) {
          log.add(line);
        }
        if (line.contains("\"msg\":\"gRPC server listening\"")) {
          Matcher match = ADDRESS.matcher(line);
          if (match.find()) {
            address = match.group(1);
          }
        } else if (line.contains("\"msg\":\"ready")) {
          ready.countDown();
        }
      }
    } catch (IOException e) {
      // The daemon is gone; whoever waits for it reports that.
    }
    ready.countDown();
  }

  private List<String> log() {
    synchronized (log) {
      return List.copyOf(log);
    }
  }

  String address() {
    return address;
  }

  SyncClient client() {
    SyncClient client = SyncClient.create(address);
    clients.add(client);
    return client;
  }

  void freeze() throws IOException, InterruptedException {
    signal("STOP");
    frozen = true;
  }

  void thaw() throws IOException, InterruptedException {
    if (frozen) {
      signal("CONT");
      frozen = false;
    }
  }

  /**
   * Freezes the daemon (SIGSTOP) until {@code lost} completes, at most 5 s, and thaws it; returns
   * the loss, and fails unless it came within {@code bound} of the freeze. A stopped daemon sends
   * neither heartbeats nor `lost`: only the client's own deadline can tell the holder to stop.
   */
  Loss freezeUntilLost(CompletableFuture<Loss> lost, Duration bound) throws Exception {
    freeze();
    long stopped = System.nanoTime();
    Loss loss;
    try {
      loss = lost.get(5, TimeUnit.SECONDS);
    } finally {
      thaw();
    }
    Duration waited = Duration.ofNanos(System.nanoTime() - stopped);
    if (waited.compareTo(bound) > 0) {
      throw new AssertionError("lost after " + waited + ", later than " + bound);
    }
    return loss;
  }

  /** SIGTERM, without waiting: the daemon shuts down gracefully, telling holders and leaders. */
  void terminate() {
    process.destroy();
  }

  /** Whether the daemon has exited within {@code timeout}. */
  boolean exitsWithin(Duration timeout) throws InterruptedException {
    return process.waitFor(timeout.toNanos(), TimeUnit.NANOSECONDS);
  }

  private void signal(String name) throws IOException, InterruptedException {
    Process kill = new ProcessBuilder("kill", "-" + name, Long.toString(process.pid())).inheritIO().start();
    if (kill.waitFor() != 0) {
      throw new IllegalStateException("kill -" + name + " failed");
    }
  }

  /**
   * SIGTERM, then SIGKILL after 10 s; the clients close after the daemon is gone, as a SIGTERM
   * that arrives just as a client stream or connection closes can make the daemon wait for its
   * full --shutdown-timeout (1 s here).
   */
  @Override
  public void close() throws IOException, InterruptedException {
    thaw();
    process.destroy();
    if (!process.waitFor(10, TimeUnit.SECONDS)) {
      System.err.println("the daemon did not exit within 10 s of SIGTERM; killing it. Its log:\n" + String.join("\n", log()));
      process.destroyForcibly().waitFor();
    }
    Runtime.getRuntime().removeShutdownHook(killOnExit);
    clients.forEach(SyncClient::close);
  }

  private static String envOr(String variable, String fallback) {
    String value = System.getenv(variable);
    return value == null || value.isEmpty() ? fallback : value;
  }
}
