// Resign ends the campaign (proto: "Resign makes the leader of the given term
// step down and ends its campaign stream"; client: "Steps down now and ends
// the campaign"): a candidate that resigned is never elected again in that
// campaign, and the campaign's `done` settles. Found by the daemon-sigstop
// scenario of the full matrix.
//
// What goes wrong: the client's Campaign rejoins the election on a new stream
// when its heartbeat deadline passes (Campaign.heartbeatTimeout), even while
// a resign() is in flight. If the daemon freezes right after the leader calls
// resign(), the heartbeat runs out first: the wrapper deposes the leader and
// opens a NEW Campaign stream. When the daemon resumes, resign() succeeds for
// the old term, and the new stream is elected for a new term: the candidate
// that resigned leads again, and `done` never settles. A workload client that
// trusted resign() held the election for the rest of the run (90 s), so no
// one else could lead it.
import test from "ava";
import { setTimeout as sleep } from "node:timers/promises";
import { SyncClient } from "metaparticle-sync-client";
import { spawnDaemon } from "../support/daemon-process.js";

test("a leader that resigns while its daemon is frozen is not elected again, and its campaign ends", async (t) => {
  // Lease 3 s: the wrapper's heartbeat deadline (2 s renew deadline) passes while the daemon is frozen.
  const daemon = await spawnDaemon(["--backend=memory", "--lease-duration=3s", "--renew-deadline=2s"]);
  const client = new SyncClient({ address: daemon.address });
  t.teardown(async () => {
    client.close();
    await daemon.stop();
  });
  const elected: number[] = [];
  const campaign = client.campaign("frozen", { candidate: "a", onElected: (l) => elected.push(l.term) });
  while (!campaign.leading) await sleep(5);
  const term = campaign.leadership!.term;

  daemon.signal("SIGSTOP");
  const resigned = campaign.resign().then(
    () => "resolved",
    (err: Error) => `rejected: ${err.message}`,
  );
  await sleep(3_500); // past the heartbeat deadline, with the Resign call in flight
  daemon.signal("SIGCONT");
  const outcome = await resigned;
  t.log(`resign() ${outcome}`);
  const ended = await Promise.race([
    campaign.done.then(
      () => "ended",
      () => "ended with an error",
    ),
    sleep(3_000).then(() => "still open"),
  ]);
  t.deepEqual(elected, [term], `elected after resigning: terms ${elected.join(", ")}`);
  t.is(ended, "ended", "the campaign ended after resign()");
  t.false(campaign.leading, "the candidate does not lead");
  t.not((await client.getLeader("frozen")).leader, "a", "the daemon does not keep the candidate that resigned as leader");
  campaign.close();
});
