// The kubeconfig check at start (main.ts), in a module of its own so that
// client-node is loaded only when a kubeconfig is given, and only the part of
// it that reads kubeconfigs.
import { KubeConfig } from "@kubernetes/client-node";
import { ConfigError } from "./config.js";

/**
 * Loads the kubeconfig as the Kubernetes store will, and checks that its
 * current context names a cluster with a server, so that a bad file stops
 * the daemon at start with its path named (`setting` is --kubeconfig or
 * KUBECONFIG), rather than later with the parser's or client's bare message.
 */
export function checkKubeconfig(path: string, setting: string): void {
  const kubeConfig = new KubeConfig();
  try {
    kubeConfig.loadFromFile(path);
  } catch (err) {
    // The parser's first line (its snippet of the file follows on the next ones).
    const problem = (err instanceof Error ? err.message : String(err)).split("\n")[0]!.trim();
    throw new ConfigError(setting, `${path} is not a usable kubeconfig: ${problem}`);
  }
  const context = kubeConfig.getCurrentContext();
  if (!context) throw new ConfigError(setting, `${path} has no current-context (kubectl config use-context NAME sets one)`);
  const contextObject = kubeConfig.getContextObject(context);
  if (contextObject === null)
    throw new ConfigError(setting, `${path}: current-context ${JSON.stringify(context)} is not among its contexts`);
  const cluster = kubeConfig.getCurrentCluster();
  if (cluster === null) {
    throw new ConfigError(
      setting,
      `${path}: context ${JSON.stringify(context)} names cluster ${JSON.stringify(contextObject.cluster)}, which is not among its clusters`,
    );
  }
  if (!cluster.server) throw new ConfigError(setting, `${path}: cluster ${JSON.stringify(cluster.name)} has no server`);
}
