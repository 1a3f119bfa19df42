// A KubeConfig whose requests share connections. @kubernetes/client-node 2.x
// gives every request a new undici Agent, hence a new TCP and TLS connection
// for every Lease write; at a few hundred renewals a second that costs
// latency, sockets and memory. This keeps one dispatcher per cluster and user
// and hands it to every request. Credentials sent as headers (bearer tokens,
// including rotated ServiceAccount tokens) are still applied per request; the
// TLS material (CA, client certificate) is fixed for the life of the process.
import { KubeConfig, type RequestContext } from "@kubernetes/client-node";

type Dispatcher = ReturnType<RequestContext["getDispatcher"]>;

export class PooledKubeConfig extends KubeConfig {
  private readonly dispatchers = new Map<string, Dispatcher>();

  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    await super.applySecurityAuthentication(context);
    const fresh = context.getDispatcher();
    if (fresh === undefined) return;
    const key = JSON.stringify([this.getCurrentCluster()?.name, this.getCurrentCluster()?.server, this.getCurrentUser()?.name]);
    const pooled = this.dispatchers.get(key);
    if (pooled === undefined) this.dispatchers.set(key, fresh);
    else context.setDispatcher(pooled);
  }
}
