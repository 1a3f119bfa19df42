// ElectionService through a real gRPC server and the TypeScript client.
import test from "ava";
import { setTimeout as sleep } from "node:timers/promises";
import { type Campaign, type CampaignEvent, type Leader, LostError, SyncClient, SyncClientError, status } from "metaparticle-sync-client";
import { MemoryStore } from "../../daemon/store/memory/memory-store.js";
import { StoreError } from "../../daemon/store/lease-store.js";
import { callError } from "../support/calls.js";
import { startTestDaemon } from "../support/test-daemon.js";
import { spawnDaemon } from "../support/daemon-process.js";

/** Reads events from a campaign until one matches. */
async function next(events: AsyncIterator<CampaignEvent>, type: CampaignEvent["type"]): Promise<CampaignEvent> {
  for (;;) {
    const { value, done } = await events.next();
    if (done) throw new Error(`campaign ended before a ${type} event`);
    if (value.type === type) return value;
  }
}

async function until(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const start = performance.now();
  while (!condition()) {
    if (performance.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

test("one leader among N candidates", async (t) => {
  const d = await startTestDaemon();
  t.teardown(() => d.stop());
  const campaigns: Campaign[] = Array.from({ length: 8 }, (_, i) => d.newClient().campaign("primary", { candidate: `pod-${i}` }));
  t.teardown(() => campaigns.forEach((c) => c.close()));
  await until(() => campaigns.some((c) => c.leading), "a leader");
  await sleep(200);
  t.is(campaigns.filter((c) => c.leading).length, 1);
  const leader = campaigns.find((c) => c.leading)!;
  t.like(await d.client.getLeader("primary"), { leader: leader.candidate, term: leader.leadership!.term });
  // Resign one leader after another: there is never more than one.
  for (let round = 0; round < 5; round++) {
    const current = campaigns.find((c) => c.leading)!;
    await current.resign();
    await until(() => campaigns.some((c) => c.leading), "the next leader");
    t.is(campaigns.filter((c) => c.leading).length, 1, `after resignation ${round + 1}`);
  }
});

test("Deposed then re-elected: a leader that cannot renew is deposed, stays a candidate and is elected again", async (t) => {
  const store = new MemoryStore();
  const d = await startTestDaemon(["--lease-duration=2s", "--renew-deadline=1s"], store);
  t.teardown(() => d.stop());
  const campaign = d.client.campaign("flaky", { candidate: "solo" });
  t.teardown(() => campaign.close());
  const events = campaign[Symbol.asyncIterator]();
  const elected = await next(events, "elected");
  store.interceptor = (operation) => {
    if (operation !== "get") throw new StoreError("unavailable", "the test cut the store off");
  };
  const deposed = await next(events, "deposed");
  t.like(deposed, { term: elected.type === "elected" ? elected.term : -1 });
  // The sidecar's Deposed and the client's own heartbeat deadline race; either tells the leader in time.
  t.true(deposed.type === "deposed" && ["renew-deadline-exceeded", "heartbeat-timeout"].includes(deposed.reason), JSON.stringify(deposed));
  t.true(elected.type === "elected" && elected.signal.aborted, "the term's signal fired");
  store.interceptor = undefined;
  const again = await next(events, "elected");
  t.true(again.type === "elected" && elected.type === "elected" && again.term > elected.term, "a new, higher term");
  t.true(campaign.leading);
});

test("Resign hands over at once to the next candidate", async (t) => {
  const d = await startTestDaemon();
  t.teardown(() => d.stop());
  const first = d.client.campaign("handover", { candidate: "first" });
  await until(() => first.leading, "first to lead");
  const second = d.newClient().campaign("handover", { candidate: "second" });
  t.teardown(() => second.close());
  await sleep(50);
  const term = first.leadership!.term;
  await first.resign();
  await first.done;
  await until(() => second.leading, "second to lead", 1_000);
  t.is(second.leadership!.term, term + 1);
  const stale = await callError((cb) => d.client.elections.resign({ name: "handover", term }, cb));
  t.is(stale.code, status.FAILED_PRECONDITION, "resigning an old term is refused");
  t.true(second.leading);
});

test("Proclaim reaches observers", async (t) => {
  const d = await startTestDaemon();
  t.teardown(() => d.stop());
  const leader = d.client.campaign("service", { candidate: "pod-a", value: "10.0.0.1:8080" });
  t.teardown(() => leader.close());
  await until(() => leader.leading, "pod-a to lead");
  const seen: Leader[] = [];
  const controller = new AbortController();
  t.teardown(() => controller.abort());
  const observer = (async () => {
    for await (const state of d.newClient().observe("service", { signal: controller.signal })) {
      seen.push(state);
      if (state.value === "10.0.0.1:9090") return;
    }
  })();
  await until(() => seen.length > 0, "the first observation");
  await leader.proclaim("10.0.0.1:9090");
  await observer;
  t.like(seen.at(-1), { leader: "pod-a", value: "10.0.0.1:9090" });
  t.like(await d.client.getLeader("service", { fresh: true }), { leader: "pod-a", value: "10.0.0.1:9090" });
});

test("Observe starts with the current leader, then follows changes", async (t) => {
  const d = await startTestDaemon();
  t.teardown(() => d.stop());
  const first = d.client.campaign("watched", { candidate: "pod-a", value: "a" });
  await until(() => first.leading, "pod-a to lead");
  const observe = d.newClient().observe("watched");
  t.like((await observe.next()).value, { leader: "pod-a", value: "a" }, "the current leader at once");
  const second = d.newClient().campaign("watched", { candidate: "pod-b", value: "b" });
  t.teardown(() => second.close());
  await sleep(50);
  first.close();
  const states: Leader[] = [];
  for await (const state of observe) {
    states.push(state);
    if (state.leader === "pod-b") break;
  }
  t.like(states.at(-1), { leader: "pod-b", value: "b" });
});

test("candidates hear LeaderChanged, the leader hears heartbeats, and the leadership signal is the client's own deadline", async (t) => {
  const d = await startTestDaemon(["--lease-duration=3s", "--renew-deadline=2s"]);
  t.teardown(() => d.stop());
  const changes: Leader[] = [];
  const leader = d.client.campaign("events", { candidate: "leader" });
  t.teardown(() => leader.close());
  await until(() => leader.leading, "the leader");
  const follower = d.newClient().campaign("events", { candidate: "follower", onLeaderChanged: (l) => changes.push(l) });
  t.teardown(() => follower.close());
  await until(() => changes.length > 0, "a leader change");
  t.like(changes[0], { leader: "leader" });
  await sleep(2_500); // longer than the renew deadline: only heartbeats keep leadership valid
  t.false(leader.leadership!.signal.aborted, "heartbeats kept the leadership valid");
  t.false(follower.leading);
  const reason = await new Promise((resolve) => {
    leader.leadership!.signal.addEventListener("abort", () => resolve(leader.leadership?.signal.reason ?? "closed"));
    leader.close();
  });
  t.true(reason instanceof LostError || reason === "closed");
  await until(() => follower.leading, "the follower to take over");
});

test("Proclaim by a candidate that does not lead is refused", async (t) => {
  const d = await startTestDaemon();
  t.teardown(() => d.stop());
  const leader = d.client.campaign("strict", { candidate: "leader" });
  t.teardown(() => leader.close());
  await until(() => leader.leading, "the leader");
  const term = leader.leadership!.term;
  const err = await callError((cb) => d.client.elections.proclaim({ name: "strict", term: term + 1, value: "x" }, cb));
  t.is(err.code, status.FAILED_PRECONDITION);
  t.regex(err.message, new RegExp(`term ${term + 1}`));
  t.true(leader.leading, "the real leader is untouched");
  t.true(SyncClientError.from(err) === err);
});

test("a leader whose sidecar froze is deposed by its own deadline, stays a candidate, and is elected again after the sidecar resumes", async (t) => {
  const daemon = await spawnDaemon(["--backend=memory", "--lease-duration=2s", "--renew-deadline=1s"]);
  t.teardown(() => daemon.stop());
  const client = new SyncClient({ address: daemon.address });
  t.teardown(() => client.close());
  const campaign = client.campaign("frozen", { candidate: "solo" });
  t.teardown(() => campaign.close());
  const events = campaign[Symbol.asyncIterator]();
  const first = await next(events, "elected");
  daemon.signal("SIGSTOP");
  const deposed = await next(events, "deposed");
  t.like(deposed, { reason: "heartbeat-timeout" });
  daemon.signal("SIGCONT");
  const again = await next(events, "elected");
  t.true(again.type === "elected" && first.type === "elected" && again.term > first.term, "re-elected with a new term");
  t.true(campaign.leading);
});
