package io.metaparticle.bench.curator;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.Writer;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.stream.Stream;
import org.apache.zookeeper.server.ServerConfig;
import org.apache.zookeeper.server.ZooKeeperServerMain;

/**
 * zookeeper-server: one standalone ZooKeeper server (ZooKeeper's own {@link ZooKeeperServerMain},
 * the class zkServer.sh runs) in this process, for the Curator peers to use. It listens on
 * 127.0.0.1 only and prints {@code serving} once the server answers the {@code srvr} command,
 * i.e. once it takes client sessions.
 *
 * <p>Flags: {@code --port} (0, the default: a free port chosen here), {@code --data-dir} (default:
 * a temporary folder removed at exit), {@code --tick-time=2000} (ms; sessions may last 2 to 20
 * ticks), {@code --fsync} (sync the transaction log on every write, ZooKeeper's own default; off
 * unless given, like the control plane's etcd, which runs with --unsafe-no-fsync). The admin
 * HTTP server is off; the four-letter commands {@code srvr} and {@code mntr} are on, for the
 * readiness check and for the harness to count requests. SIGTERM stops the process.
 */
public final class ZooKeeperLauncher {
  private ZooKeeperLauncher() {}

  public static void main(String[] args) throws Exception {
    // The server logs through SLF4J (slf4j-simple, to stderr): warnings and worse unless -Dlog=info.
    System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", System.getProperty("log", "warn"));
    Flags flags = new Flags("zookeeper-server", args);
    int port = flags.integer("port", 0);
    if (port == 0) port = freePort();
    String given = flags.string("data-dir", "");
    Path dataDir = given.isEmpty() ? Files.createTempDirectory("bench-zookeeper-") : Path.of(given);
    Files.createDirectories(dataDir);
    if (given.isEmpty()) Runtime.getRuntime().addShutdownHook(new Thread(() -> removeTree(dataDir)));
    int tickMs = flags.integer("tick-time", 2000);

    // Read by ZooKeeper when the server classes load: set before anything of it runs.
    System.setProperty("zookeeper.admin.enableServer", "false");
    System.setProperty("zookeeper.4lw.commands.whitelist", "srvr,mntr");
    System.setProperty("zookeeper.forceSync", flags.bool("fsync") ? "yes" : "no");

    Path cfg = dataDir.resolve("zoo.cfg");
    try (Writer w = Files.newBufferedWriter(cfg)) {
      w.write("tickTime=" + tickMs + "\n");
      w.write("dataDir=" + dataDir.toAbsolutePath() + "\n");
      w.write("clientPortAddress=127.0.0.1\n");
      w.write("clientPort=" + port + "\n");
      w.write("maxClientCnxns=0\n"); // no per-address limit: every session of the benchmark comes from 127.0.0.1
    }
    ServerConfig config = new ServerConfig();
    config.parse(cfg.toString());

    Thread server =
        new Thread(
            () -> {
              try {
                new ZooKeeperServerMain().runFromConfig(config);
                Events.line("exit").with("reason", "server stopped").emit();
                System.exit(0);
              } catch (Throwable e) {
                System.err.println("zookeeper-server: " + e);
                e.printStackTrace();
                System.exit(1);
              }
            },
            "zookeeper-server");
    server.setDaemon(true);
    server.start();

    long deadline = System.nanoTime() + 60_000_000_000L;
    String status;
    while ((status = srvr(port)) == null) {
      if (System.nanoTime() > deadline) {
        System.err.println("zookeeper-server: no answer to srvr on 127.0.0.1:" + port + " within 60 s");
        System.exit(1);
      }
      Thread.sleep(50);
    }
    Events.line("serving")
        .with("port", port)
        .with("address", "127.0.0.1:" + port)
        .with("pid", ProcessHandle.current().pid())
        .with("data_dir", dataDir.toAbsolutePath().toString())
        .with("version", status.lines().findFirst().orElse("").replaceFirst("^Zookeeper version: ", ""))
        .emit();
    server.join();
  }

  /** The answer to the srvr command when the server is serving requests, else null. */
  private static String srvr(int port) {
    try (Socket s = new Socket()) {
      s.connect(new InetSocketAddress("127.0.0.1", port), 1000);
      s.setSoTimeout(2000);
      OutputStream out = s.getOutputStream();
      out.write("srvr".getBytes(StandardCharsets.US_ASCII));
      out.flush();
      InputStream in = s.getInputStream();
      String answer = new String(in.readAllBytes(), StandardCharsets.UTF_8);
      return answer.startsWith("Zookeeper version:") ? answer : null;
    } catch (IOException e) {
      return null;
    }
  }

  private static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket()) {
      s.bind(new InetSocketAddress("127.0.0.1", 0));
      return s.getLocalPort();
    }
  }

  private static void removeTree(Path root) {
    try (Stream<Path> paths = Files.walk(root)) {
      paths.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
    } catch (IOException e) {
      // best effort, at exit
    }
  }
}
