// gRPC handlers of ElectionService: check the request, call the engine, convert.
import type {
  CampaignRequest,
  CampaignResponse,
  ElectionServiceServer,
  ObserveRequest,
  ObserveResponse,
} from "metaparticle-sync-client/gen/metaparticle/sync/v1/election_service";
import { type Engine, type LeaderState, checkHolder, checkLeaseMs, checkName, checkToken, checkValue } from "../engine/index.js";
import type { Logger } from "../log.js";
import { type StreamRegistry, unary } from "./calls.js";
import { durationMs, toDuration, toLossReason, wantsFresh } from "./convert.js";

const leader = (state: LeaderState) => ({ leader: state.leader, value: state.value, term: state.term });

export function electionService(engine: Engine, streams: StreamRegistry, log: Logger): ElectionServiceServer {
  const elections = engine.elections;
  const leaseName = (name: string) => checkName(name, elections.prefix(), "name");

  return {
    campaign(call) {
      const stream = streams.track<CampaignRequest, CampaignResponse>(call);
      try {
        const request = call.request;
        const name = leaseName(request.name);
        const candidate = checkHolder(request.candidate, "candidate");
        const value = checkValue(request.value, "value");
        const leaseMs = durationMs(request.leaseDuration, "lease_duration");
        elections.campaign(
          {
            leaseName: name,
            candidate,
            value,
            leaseMs: leaseMs === undefined ? engine.leaseDurationMs : checkLeaseMs(leaseMs, "lease_duration"),
          },
          {
            elected: (term, validForMs, lease) =>
              stream.send({
                event: { $case: "elected", value: { term, validFor: toDuration(validForMs), leaseDuration: toDuration(lease) } },
              }),
            renewed: (validForMs) => stream.send({ event: { $case: "renewed", value: { validFor: toDuration(validForMs) } } }),
            leaderChanged: (state) => stream.send({ event: { $case: "leaderChanged", value: leader(state) } }),
            deposed: (term, reason, message) => {
              log.warn({ election: request.name, candidate, term, reason, message }, "leader deposed");
              stream.send({ event: { $case: "deposed", value: { term, reason: toLossReason(reason), message } } });
            },
            ended: (error) => stream.end(error),
          },
          stream.signal,
        );
      } catch (err) {
        stream.end(err);
      }
    },

    resign: unary(log, async (request) => {
      await elections.resign(leaseName(request.name), checkToken(request.term, "term"));
      return {};
    }),

    proclaim: unary(log, async (request, signal) => {
      const name = leaseName(request.name);
      const term = checkToken(request.term, "term");
      await elections.proclaim(name, term, checkValue(request.value, "value"), signal);
      return {};
    }),

    getLeader: unary(log, async (request) => {
      const name = leaseName(request.name);
      const state = await elections.getLeader(name, wantsFresh(request.consistency, "consistency"));
      return { ...leader(state), remaining: toDuration(state.remainingMs) };
    }),

    observe(call) {
      const stream = streams.track<ObserveRequest, ObserveResponse>(call);
      try {
        elections.observe(leaseName(call.request.name), (state) => stream.send(leader(state)), stream.signal);
      } catch (err) {
        stream.end(err);
      }
    },
  };
}
