package io.metaparticle.bench.curator;

import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.api.CuratorEventType;
import org.apache.curator.framework.recipes.leader.LeaderLatch;

/**
 * One candidate: a {@code LeaderLatch} on the peer's path. It prints {@code started}, then
 * {@code campaigning} when its latch starts and {@code elected} when {@code await()} returns.
 * While leading it reads stdin: {@code resign} prints {@code releasing}, closes the latch (which
 * deletes its node in the background) and joins again with a new latch, at the back of the
 * queue; {@code released} follows when ZooKeeper has confirmed the delete. {@code exit}, the end
 * of stdin, or SIGTERM closes the latch and the client (ending the session) and prints {@code
 * exit}. A lost connection prints {@code lost}.
 */
final class Election {
  private final CuratorPeer.Connector connector;
  private final String path;
  private final String identity;
  /** The node of the latch being closed, whose delete prints "released". */
  private final AtomicReference<String> releasing = new AtomicReference<>();

  private volatile LeaderLatch latch;
  private volatile boolean leading;

  Election(CuratorPeer.Connector connector, String path, String identity) {
    this.connector = connector;
    this.path = path;
    this.identity = identity;
  }

  void run() throws Exception {
    CuratorFramework client = connector.open();
    // LeaderLatch.close() deletes its node in the background with no callback of its own:
    // Curator then hands the result to the client's listeners.
    client
        .getCuratorListenable()
        .addListener(
            (c, event) -> {
              boolean ours =
                  event.getType() == CuratorEventType.DELETE
                      && event.getPath() != null
                      && releasing.compareAndSet(event.getPath(), null);
              if (ours) {
                Events.line("released").with("id", identity).with("rc", event.getResultCode()).emit();
              }
            });
    client
        .getConnectionStateListenable()
        .addListener(
            (c, state) -> {
              if (!state.isConnected()) {
                Events.line("lost").with("id", identity).with("reason", "connection " + state).emit();
              }
            });
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  if (leading) Events.line("releasing").with("id", identity).emit();
                  closeLatch(true);
                  CuratorPeer.closeAll(List.of(client));
                  Events.line("exit").with("id", identity).emit();
                }));
    BlockingQueue<String> commands = CuratorPeer.commands();
    Events.line("started")
        .with("id", identity)
        .with("pid", ProcessHandle.current().pid())
        .with("path", path)
        .emit();
    while (true) {
      LeaderLatch next = new LeaderLatch(client, path, identity);
      latch = next;
      Events.line("campaigning").with("id", identity).emit();
      next.start();
      next.await();
      leading = true;
      Events.line("elected")
          .with("id", identity)
          .with("node", String.valueOf(next.getOurPath()))
          .emit();
      String command;
      do command = commands.take();
      while (!command.equals("resign") && !command.equals("exit"));
      if (command.equals("exit")) System.exit(0); // the shutdown hook releases and prints "exit"
      Events.line("releasing").with("id", identity).emit();
      releasing.set(next.getOurPath());
      leading = false;
      closeLatch(false);
    }
  }

  /**
   * Closes the current latch. When {@code exiting}, a failure is ignored: System.exit from a
   * shutdown hook would hang.
   */
  private synchronized void closeLatch(boolean exiting) {
    LeaderLatch l = latch;
    latch = null;
    if (l == null) return;
    try {
      l.close();
    } catch (Exception e) {
      if (!exiting) CuratorPeer.fail("close latch", e);
    }
  }
}
