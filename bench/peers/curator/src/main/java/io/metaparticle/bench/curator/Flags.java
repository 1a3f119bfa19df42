package io.metaparticle.bench.curator;

import java.util.HashMap;
import java.util.Map;

/** {@code --name=value} arguments (and {@code --name} alone for true), with Go-style durations. */
final class Flags {
  private final Map<String, String> values = new HashMap<>();
  private final String program;

  Flags(String program, String[] args) {
    this.program = program;
    for (String arg : args) {
      if (!arg.startsWith("--")) fail("unexpected argument " + arg);
      int eq = arg.indexOf('=');
      if (eq < 0) values.put(arg.substring(2), "true");
      else values.put(arg.substring(2, eq), arg.substring(eq + 1));
    }
  }

  String string(String name, String fallback) {
    return values.getOrDefault(name, fallback);
  }

  int integer(String name, int fallback) {
    String v = values.get(name);
    if (v == null) return fallback;
    try {
      return Integer.parseInt(v);
    } catch (NumberFormatException e) {
      throw fail("--" + name + " needs a whole number, got " + v);
    }
  }

  boolean bool(String name) {
    return Boolean.parseBoolean(values.getOrDefault(name, "false"));
  }

  /** A duration in ms: "20s", "500ms", "2m", or a bare number of ms. */
  long durationMs(String name, long fallbackMs) {
    String v = values.get(name);
    if (v == null) return fallbackMs;
    try {
      if (v.endsWith("ms")) return Long.parseLong(v.substring(0, v.length() - 2));
      if (v.endsWith("s")) return Math.round(Double.parseDouble(v.substring(0, v.length() - 1)) * 1000);
      if (v.endsWith("m")) return Math.round(Double.parseDouble(v.substring(0, v.length() - 1)) * 60_000);
      return Long.parseLong(v);
    } catch (NumberFormatException e) {
      throw fail("--" + name + " needs a duration such as 20s or 500ms, got " + v);
    }
  }

  RuntimeException fail(String message) {
    System.err.println(program + ": " + message);
    System.exit(2);
    return new IllegalStateException(message); // not reached
  }
}
