// A KubeConfig whose requests share a pool of HTTP/1.1 keep-alive
// connections.
//
// @kubernetes/client-node 2.x gives every request a new undici Agent, hence a
// new TCP and TLS connection for every Lease write; at a few hundred renewals
// a second that costs latency, sockets and memory. One shared Agent fixes
// that, but undici would then multiplex every request over one HTTP/2
// session, and a connection that dies silently (a NAT or load balancer
// dropping it) would hold every write and the watch until TCP gives up. Over
// HTTP/1.1 each request in flight has its own connection: a request that
// times out is aborted and its socket destroyed, the others carry on, and the
// next request opens a fresh connection.
//
// The pool holds at most MAX_CONNECTIONS connections (the watch takes one);
// further requests wait for one. Without a cap, a burst of requests opened a
// connection each, and as idle ones close after 4 s while renewals come every
// few seconds, a daemon holding 1,000 locks kept opening and closing hundreds
// of TLS connections, each with its own TLS context: memory, CPU, and
// renewals that missed their deadline. All connections share one TLS context.
//
// Credentials sent as headers (bearer tokens, including rotated ServiceAccount
// tokens) are still applied per request; the TLS material (CA, client
// certificate) is read once per cluster and user for the life of the process.
import type { RequestOptions } from "node:https";
import { createSecureContext } from "node:tls";
import type { RequestContext } from "@kubernetes/client-node";
import { KubeConfig } from "@kubernetes/client-node/dist/config.js";
import { Agent } from "undici";

type Dispatcher = NonNullable<ReturnType<RequestContext["getDispatcher"]>>;

/** Connections to the API server per cluster and user, the watch's included. */
export const MAX_CONNECTIONS = 8;

export class PooledKubeConfig extends KubeConfig {
  private readonly dispatchers = new Map<string, Promise<Dispatcher>>();

  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    await super.applySecurityAuthentication(context);
    const own = context.getDispatcher();
    if (own === undefined) return; // plain HTTP without TLS settings: the default dispatcher already pools
    const key = JSON.stringify([this.getCurrentCluster()?.server, this.getCurrentUser()?.name]);
    let pooled = this.dispatchers.get(key);
    if (pooled === undefined) {
      pooled = this.createPooledDispatcher(own);
      this.dispatchers.set(key, pooled);
    }
    context.setDispatcher(await pooled);
  }

  /** An HTTP/1.1 keep-alive Agent with the TLS settings client-node would use; proxies keep client-node's own dispatcher. */
  private async createPooledDispatcher(own: Dispatcher): Promise<Dispatcher> {
    const tls: RequestOptions = {};
    await this.applyToHTTPSOptions(tls);
    const options = this.createDispatcherOptions(this.getCurrentCluster(), {
      ca: tls.ca,
      cert: tls.cert,
      key: tls.key,
      pfx: tls.pfx,
      passphrase: tls.passphrase,
      rejectUnauthorized: tls.rejectUnauthorized,
      servername: tls.servername,
    });
    if (options.type !== "agent") return own;
    const connect = { ...options.connect, secureContext: createSecureContext(options.connect) };
    return new Agent({ connect, allowH2: false, connections: MAX_CONNECTIONS }) as unknown as Dispatcher;
  }
}
