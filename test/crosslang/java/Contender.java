// The Java contender of the cross-language test (see ../crosslang.test.ts),
// run as a single source file on the client's class path: prints "ready",
// waits for a line on stdin, then takes the lock ROUNDS times and prints one
// JSON line per hold with its fencing token and the hold's start and end on
// CLOCK_MONOTONIC (System.nanoTime on Linux), which every process on the
// machine shares.
//
//   java -cp CLASSPATH Contender.java ADDRESS LOCK ROUNDS
import io.metaparticle.sync.client.Lock;
import io.metaparticle.sync.client.LockOptions;
import io.metaparticle.sync.client.SyncClient;
import java.io.BufferedReader;
import java.io.InputStreamReader;

public class Contender {
  public static void main(String[] args) throws Exception {
    String address = args[0];
    String name = args[1];
    int rounds = Integer.parseInt(args[2]);
    try (SyncClient client = SyncClient.create(address)) {
      System.out.println("ready");
      System.out.flush();
      new BufferedReader(new InputStreamReader(System.in)).readLine();
      for (int round = 0; round < rounds; round++) {
        long token;
        long start;
        long end;
        try (Lock lock = client.lock(name, LockOptions.defaults().withHolder("java"))) {
          start = System.nanoTime();
          Thread.sleep(2);
          end = System.nanoTime();
          if (lock.isLost()) {
            throw new IllegalStateException("token " + lock.token() + " was lost while held: " + lock.lost().get());
          }
          token = lock.token();
        }
        System.out.printf("{\"client\":\"java\",\"token\":%d,\"start\":\"%d\",\"end\":\"%d\"}%n", token, start, end);
        System.out.flush();
      }
    }
  }
}
