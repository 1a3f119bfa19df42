// The daemon's settings (daemon/config.ts): flags and environment, one
// duration syntax shared with the CLI, and a cluster that cannot be reached
// stopping the daemon at start with the setting named.
import test from "ava";
import { type Environment, loadConfig } from "../../daemon/config.js";

function environment(argv: string[], env: Record<string, string> = {}, files: Record<string, string> = {}): Environment {
  return { argv, env, readFile: (path) => files[path] };
}

const POD_FILES = {
  "/var/run/secrets/kubernetes.io/serviceaccount/token": "a-token",
  "/var/run/secrets/kubernetes.io/serviceaccount/namespace": "apps",
};

test("durations: the daemon takes the CLI's syntax, a bare number being seconds", (t) => {
  const config = loadConfig(
    environment(["--lease-duration=20", "--renew-deadline", "12.5", "--keepalive=1m30s", "--shutdown-timeout=1500ms"]),
  );
  t.is(config.leaseDurationMs, 20_000);
  t.is(config.renewDeadlineMs, 12_500);
  t.is(config.keepaliveMs, 90_000);
  t.is(config.shutdownTimeoutMs, 1500);
  t.throws(() => loadConfig(environment(["--keepalive=soon"])), {
    message: /^--keepalive: "soon" is not a duration; use a duration such as 15s/,
  });
  t.throws(() => loadConfig(environment([], { MSYNC_LEASE_DURATION: "1.5" })), { message: /^MSYNC_LEASE_DURATION: must be whole seconds/ });
});

test("flags win over the environment, and the last of a repeated flag wins", (t) => {
  const config = loadConfig(
    environment(["--listen=127.0.0.1:1", "--listen=127.0.0.1:2"], { MSYNC_LISTEN: "127.0.0.1:3", MSYNC_LOG_LEVEL: "debug" }),
  );
  t.is(config.listen, "127.0.0.1:2");
  t.is(config.logLevel, "debug");
  t.throws(() => loadConfig(environment(["--bogus=1"])), { message: /^--bogus: unknown flag/ });
  t.throws(() => loadConfig(environment(["stray"])), { message: /^stray: unexpected argument/ });
  t.throws(() => loadConfig(environment(["--listen"])), { message: /^--listen: needs a value/ });
  t.throws(() => loadConfig(environment(["--listen", "--backend=memory"])), { message: /^--listen: needs a value/ });
  t.throws(() => loadConfig(environment(["-x"])), { message: /^-x: unknown flag/ });
});

test("--backend=kubernetes with no cluster configured stops at start, naming the setting", (t) => {
  t.throws(() => loadConfig(environment(["--backend=kubernetes"])), {
    message: /^--backend: kubernetes needs a cluster: .*--kubeconfig or KUBECONFIG/,
  });
  t.throws(() => loadConfig(environment([], { MSYNC_BACKEND: "kubernetes" })), { message: /^MSYNC_BACKEND: kubernetes needs a cluster/ });
  // In a pod (service account and KUBERNETES_SERVICE_HOST) it is configured.
  const inPod = loadConfig(environment(["--backend=kubernetes"], { KUBERNETES_SERVICE_HOST: "10.0.0.1" }, POD_FILES));
  t.like(inPod, { backend: "kubernetes", namespace: "apps", kubeconfig: undefined });
  // With no cluster, auto still means the memory store.
  t.like(loadConfig(environment([])), { backend: "memory" });
});

test("a kubeconfig that does not exist stops the daemon at start, naming the setting", (t) => {
  t.throws(() => loadConfig(environment([], { KUBECONFIG: "/nonexistent/kubeconfig" })), {
    message: /^KUBECONFIG: no kubeconfig file at \/nonexistent\/kubeconfig/,
  });
  t.throws(() => loadConfig(environment(["--kubeconfig=/nonexistent/a"])), {
    message: /^--kubeconfig: no kubeconfig file at \/nonexistent\/a/,
  });
  // kubectl merges a list of files in KUBECONFIG; the daemon reads one file, and says so rather than failing to open "a:b".
  t.throws(() => loadConfig(environment([], { KUBECONFIG: "/etc/kube/a:/etc/kube/b" }, { "/etc/kube/a": "", "/etc/kube/b": "" })), {
    message: /^KUBECONFIG: lists several files .*: give one/,
  });
  t.like(loadConfig(environment([], { KUBECONFIG: "/etc/kube/a" }, { "/etc/kube/a": "apiVersion: v1" })), {
    backend: "kubernetes",
    kubeconfig: "/etc/kube/a",
  });
});
