// grpc.health.v1.Health (Check, Watch, List), with the messages encoded by
// protobuf-es from the descriptor set the daemon already embeds for
// reflection. It answers as the grpc-health-check package does; that package
// parses health.proto with protobufjs when it is imported, which cost the
// daemon about 10 MiB and 70 ms at every start (see bench/README.md, "Start-up
// and idle footprint"), and reads the file from its own folder, which a
// bundled daemon does not have.
import { type DescMessage, type FileRegistry, create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { type Server, type ServerWritableStream, type ServiceDefinition, type sendUnaryData, status } from "@grpc/grpc-js";

export type ServingStatus = "SERVING" | "NOT_SERVING";

/** The most services List reports, as in grpc-health-check; beyond it List fails RESOURCE_EXHAUSTED. */
const LIST_LIMIT = 100;

const WIRE_STATUS = { UNKNOWN: 0, SERVING: 1, NOT_SERVING: 2, SERVICE_UNKNOWN: 3 } as const;

interface CheckRequest {
  service: string;
}

export class HealthService {
  private readonly statuses = new Map<string, ServingStatus>();
  private readonly watchers = new Map<string, Set<(status: ServingStatus) => void>>();
  private readonly definition: ServiceDefinition;

  /** `registry` must hold grpc.health.v1 (the daemon's embedded descriptor set does). */
  constructor(registry: FileRegistry, initial: Record<string, ServingStatus>) {
    for (const [service, value] of Object.entries(initial)) this.statuses.set(service, value);
    const message = (name: string): DescMessage => {
      const desc = registry.getMessage(`grpc.health.v1.${name}`);
      if (desc === undefined) throw new Error(`the embedded descriptor set lacks grpc.health.v1.${name}; run npm run generate`);
      return desc;
    };
    const request = message("HealthCheckRequest");
    const response = message("HealthCheckResponse");
    const listRequest = message("HealthListRequest");
    const listResponse = message("HealthListResponse");
    const method = (name: string, input: DescMessage, output: DescMessage, responseStream: boolean) => ({
      path: `/grpc.health.v1.Health/${name}`,
      requestStream: false,
      responseStream,
      requestSerialize: (value: Record<string, unknown>) => Buffer.from(toBinary(input, create(input, value))),
      requestDeserialize: (bytes: Buffer) => fromBinary(input, bytes),
      responseSerialize: (value: Record<string, unknown>) => Buffer.from(toBinary(output, create(output, value))),
      responseDeserialize: (bytes: Buffer) => fromBinary(output, bytes),
    });
    this.definition = {
      Check: method("Check", request, response, false),
      Watch: method("Watch", request, response, true),
      List: method("List", listRequest, listResponse, false),
    };
  }

  /** Watchers hear only changes, as the health protocol asks. */
  setStatus(service: string, value: ServingStatus): void {
    if (this.statuses.get(service) === value) return;
    this.statuses.set(service, value);
    for (const watcher of this.watchers.get(service) ?? []) watcher(value);
  }

  addToServer(server: Server): void {
    server.addService(this.definition, {
      Check: (call: { request: CheckRequest }, callback: sendUnaryData<object>) => {
        const value = this.statuses.get(call.request.service);
        if (value === undefined) callback({ code: status.NOT_FOUND, details: `Health status unknown for service ${call.request.service}` });
        else callback(null, { status: WIRE_STATUS[value] });
      },
      Watch: (call: ServerWritableStream<CheckRequest, object>) => {
        const service = call.request.service;
        const watcher = (value: ServingStatus) => call.write({ status: WIRE_STATUS[value] });
        let watchers = this.watchers.get(service);
        if (watchers === undefined) this.watchers.set(service, (watchers = new Set()));
        watchers.add(watcher);
        call.on("cancelled", () => {
          watchers.delete(watcher);
          if (watchers.size === 0 && this.watchers.get(service) === watchers) this.watchers.delete(service);
        });
        const value = this.statuses.get(service);
        call.write({ status: value === undefined ? WIRE_STATUS.SERVICE_UNKNOWN : WIRE_STATUS[value] });
      },
      List: (_call: unknown, callback: sendUnaryData<object>) => {
        if (this.statuses.size > LIST_LIMIT) {
          callback({ code: status.RESOURCE_EXHAUSTED, details: "Too many services to list." });
          return;
        }
        const statuses = Object.fromEntries([...this.statuses].map(([service, value]) => [service, { status: WIRE_STATUS[value] }]));
        callback(null, { statuses });
      },
    });
  }
}
