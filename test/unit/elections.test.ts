// Engine election semantics on the memory store with a fake clock.
import test from "ava";
import { SimCluster, type CampaignHandle } from "../support/sim.js";

const LEASE = 15_000;

function leaders(handles: CampaignHandle[]): CampaignHandle[] {
  return handles.filter((h) => h.leading);
}

test("one leader among N candidates on three daemons", async (t) => {
  const sim = new SimCluster();
  const daemons = [await sim.daemon("a"), await sim.daemon("b"), await sim.daemon("c")];
  const candidates = Array.from({ length: 9 }, (_, i) => daemons[i % 3]!.campaign("primary", `candidate-${i}`));
  for (let step = 0; step < 20; step++) {
    await sim.advance(3_000);
    t.is(leaders(candidates).length, 1, `step ${step}: exactly one leader`);
  }
  const leader = leaders(candidates)[0]!;
  const others = candidates.filter((c) => c !== leader);
  const name = `candidate-${candidates.indexOf(leader)}`;
  for (const other of others) {
    const last = other.of("leader").at(-1);
    t.is(last?.state.leader, name, "every other candidate heard who leads");
  }
  t.true(leader.of("renewed").length >= 10, "the leader gets heartbeats");
});

test("deposed then re-elected: a leader that cannot renew is deposed, stays a candidate, and is elected again", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const leader = a.campaign("ha", "solo");
  await sim.advance(10);
  t.is(leader.term, 1);
  a.conn.partition();
  await sim.advance(LEASE);
  const deposed = leader.of("deposed");
  t.is(deposed.length, 1);
  t.is(deposed[0]!.reason, "renew-deadline-exceeded");
  t.is(deposed[0]!.term, 1);
  t.false(leader.leading);
  a.conn.heal();
  await sim.advance(5_000);
  t.true(leader.leading, "elected again once the store is back");
  t.is(leader.term, 2, "with a new, higher term");
  t.is(leader.of("ended").length, 0, "the campaign went on throughout");
});

test("a leader is deposed at its renew deadline even while a Proclaim of its daemon hangs past it", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const leader = a.campaign("hung", "solo");
  await sim.advance(10);
  t.is(leader.term, 1);
  const deadline = leader.of("elected")[0]!.at + a.engine.renewDeadlineMs;
  // Every write of a to the Lease hangs from now on: the Proclaim, sent first,
  // holds the contender's one call in flight until its own deadline, after
  // the leader's renew deadline.
  sim.store.interceptor = (operation, name) => {
    if (operation === "update" && name === a.electionName("hung")) return new Promise<void>(() => {});
  };
  const proclaimed = a.engine.elections.proclaim(a.electionName("hung"), 1, "new value").catch((error: unknown) => error);
  await sim.advance(deadline - sim.clock.now() - 1);
  t.is(leader.of("deposed").length, 0, "still leading just before the renew deadline");
  await sim.advance(2);
  const deposed = leader.of("deposed");
  t.is(deposed[0]?.reason, "renew-deadline-exceeded", "deposed at the renew deadline, not when the Proclaim gives up");
  t.true(deposed[0]!.at <= deadline);
  sim.store.interceptor = undefined;
  t.truthy(await proclaimed, "the Proclaim fails");
});

test("Resign hands over at once to a candidate on another daemon", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const b = await sim.daemon("b");
  const first = a.campaign("handover", "first");
  await sim.advance(10);
  const second = b.campaign("handover", "second");
  await sim.advance(10);
  t.true(first.leading);
  const resignedAt = sim.clock.now();
  await a.engine.elections.resign(a.electionName("handover"), first.term!);
  await sim.advance(1);
  t.true(second.leading, "elected within one watch event plus one write");
  t.true(second.of("elected")[0]!.at - resignedAt < 100);
  t.is(second.term, 2);
  t.is(first.of("ended").length, 1, "the resigned campaign ended");
  t.is(first.of("ended")[0]!.error, undefined, "without an error");
});

test("Resign by a non-leader or with a stale term is rejected and changes nothing", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const leader = a.campaign("strict", "leader");
  await sim.advance(10);
  const before = sim.store.peek(a.electionName("strict"));
  await t.throwsAsync(a.engine.elections.resign(a.electionName("strict"), 7), {
    message: /term 7 .* not led by a candidate on this daemon: the current term is 1/,
  });
  await t.throwsAsync(a.engine.elections.proclaim(a.electionName("strict"), 2, "x"), { message: /term 2/ });
  t.deepEqual(sim.store.peek(a.electionName("strict")), before);
  t.true(leader.leading);
});

test("Proclaim reaches observers and candidates on other daemons", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const b = await sim.daemon("b");
  const leader = a.campaign("service", "pod-a", { value: "10.0.0.1:8080" });
  await sim.advance(10);
  const follower = b.campaign("service", "pod-b");
  const seen = b.observe("service");
  await sim.advance(10);
  t.like(seen.at(-1), { leader: "pod-a", value: "10.0.0.1:8080", term: 1 });
  await a.engine.elections.proclaim(a.electionName("service"), leader.term!, "10.0.0.1:9090");
  await sim.advance(10);
  t.like(seen.at(-1), { leader: "pod-a", value: "10.0.0.1:9090", term: 1 });
  t.like(follower.of("leader").at(-1)?.state, { leader: "pod-a", value: "10.0.0.1:9090" });
});

test("Observe starts with the current leader, then reports every change including nobody", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const b = await sim.daemon("b");
  const leader = a.campaign("watched", "pod-a", { value: "v1" });
  await sim.advance(10);
  const seen = b.observe("watched");
  t.is(seen.length, 0, "nothing before b's watch covers the election: an empty cache is not 'nobody leads'");
  await sim.advance(1);
  t.is(seen.length, 1, "the current leader as soon as b's watch covers it");
  t.like(seen[0], { leader: "pod-a", value: "v1", term: 1 });
  leader.close();
  await sim.advance(10);
  t.like(seen.at(-1), { leader: "", term: 1 }, "nobody leads after the only candidate left");
  const next = a.campaign("watched", "pod-c", { value: "v2" });
  await sim.advance(10);
  t.true(next.leading);
  t.like(seen.at(-1), { leader: "pod-c", value: "v2", term: 2 });
});

test("a crashed leader is replaced once its lease expires, and observers follow", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const b = await sim.daemon("b");
  const c = await sim.daemon("c");
  a.campaign("failover", "pod-a");
  await sim.advance(10);
  const standby = b.campaign("failover", "pod-b");
  const seen = c.observe("failover");
  await sim.advance(10);
  a.kill();
  const killedAt = sim.clock.now();
  await sim.advance(2 * LEASE);
  t.true(standby.leading);
  const electedAt = standby.of("elected")[0]!.at;
  t.true(electedAt - killedAt >= LEASE - 5_000 && electedAt - killedAt <= LEASE + 100);
  // "Nobody" shows in between unless the takeover lands in the same instant as the observed expiry.
  t.deepEqual(
    seen.map((s) => s.leader).filter((leader) => leader !== ""),
    ["pod-a", "pod-b"],
  );
  t.like(seen.at(-1), { leader: "pod-b", term: 2 });
});

test("graceful shutdown deposes the leader with reason shutdown and ends its campaign; another is elected at once", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const b = await sim.daemon("b");
  const leader = a.campaign("drain", "pod-a");
  await sim.advance(10);
  const standby = b.campaign("drain", "pod-b");
  await sim.advance(10);
  const done = a.engine.shutdown(5_000);
  await sim.advance(1);
  t.is(leader.of("deposed")[0]?.reason, "shutdown");
  t.false(standby.leading, "not before the deposed leader has stopped");
  // The candidate reads Deposed(shutdown): its campaign is over, it closes the stream.
  leader.close();
  await sim.advance(10);
  await done;
  t.is(leader.of("ended").length, 1, "the campaign ended");
  t.true(standby.leading);
});

test("graceful shutdown keeps a leader's lease until its valid_for has passed when it does not close its stream, then ends its campaign", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const b = await sim.daemon("b");
  const leader = a.campaign("unread", "paused");
  await sim.advance(10);
  const standby = b.campaign("unread", "standby");
  await sim.advance(9_000);
  const done = a.engine.shutdown(10_000);
  await sim.advance(1);
  t.is(leader.of("deposed")[0]?.reason, "shutdown");
  t.is(leader.of("ended").length, 0, "the stream stays open while its lease is kept");
  // Renewed at 5 s: its promise runs until 15 s.
  await sim.advance(15_010 - sim.clock.now() - 1);
  t.false(standby.leading, "nobody else leads while the deposed leader may still act");
  await sim.advance(10_000);
  await done;
  t.is(leader.of("ended")[0]?.error?.code, "shutting-down");
  t.true(standby.leading, "elected once the lease was given back");
  t.true(standby.of("elected")[0]!.at < 5_010 + LEASE, "given back, not left to expire");
});

test("a candidate that closes its stream while leading gives leadership up at once", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const first = a.campaign("close", "first");
  const second = a.campaign("close", "second");
  await sim.advance(10);
  t.true(first.leading);
  t.false(second.leading);
  first.close();
  await sim.advance(1);
  t.true(second.leading);
  t.is(second.term, 2);
});

test("a candidate deposed by a takeover hears leader_changed even when an Observe on its daemon came first", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const b = await sim.daemon("b");
  a.observe("takeover");
  const first = a.campaign("takeover", "first");
  await sim.advance(10);
  t.truthy(first.term, "first is elected");
  a.clock.freeze();
  const second = b.campaign("takeover", "second");
  await sim.advance(20_000);
  t.truthy(second.term, "second takes over once first's lease has run out");
  a.clock.thaw();
  await sim.advance(10);
  t.truthy(first.of("deposed").length > 0, "first is deposed");
  const heard = first.of("leader").map((e) => e.state.leader);
  t.is(heard.at(-1), "second", `first heard of leaders ${JSON.stringify(heard)}`);
});

test("a deposed candidate hears the new leader even when that leader's term repeats one of its own", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const b = await sim.daemon("b");
  const first = a.campaign("repeat", "first");
  await sim.advance(10);
  t.is(first.term, 1);
  // The Lease is deleted while a cannot reach the store; b, which never saw
  // it, creates it again: its count starts at 1 (docs/design.md 3.2).
  a.conn.partition();
  sim.store.delete(a.electionName("repeat"));
  const second = b.campaign("repeat", "second");
  await sim.advance(10);
  t.is(second.term, 1, "b's candidate leads with term 1, a number first held too");
  await sim.advance(11_000);
  t.is(first.of("deposed").at(-1)?.reason, "renew-deadline-exceeded");
  a.conn.heal();
  await sim.advance(10);
  t.false(first.leading);
  const heard = first.of("leader").map((e) => `${e.state.leader || "(nobody)"} term ${e.state.term}`);
  t.is(heard.at(-1), "second term 1", `first heard ${JSON.stringify(heard)}`);
});

test("Resign naming a term the campaign held before it was re-elected still ends the campaign", async (t) => {
  const sim = new SimCluster();
  const a = await sim.daemon("a");
  const campaign = a.campaign("again", "candidate");
  await sim.advance(10);
  const first = campaign.term!;
  // Frozen past its renew deadline: on thaw the daemon deposes term 1 and
  // elects the same campaign again before it serves the Resign sent meanwhile.
  a.clock.freeze();
  await sim.advance(11_000);
  a.clock.thaw();
  await sim.advance(10);
  t.true(campaign.term! > first, "the campaign was elected again");
  await t.notThrowsAsync(a.engine.elections.resign(a.electionName("again"), first));
  await sim.advance(10);
  t.truthy(campaign.of("ended").length, "the campaign ended");
  t.false(campaign.leading);
  t.is(sim.store.peek(a.electionName("again"))?.holderIdentity, "", "and gave up its leadership");
});
