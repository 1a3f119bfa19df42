package io.metaparticle.bench.curator;

import java.io.BufferedOutputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The peers' machine-readable output: one JSON object per line on stdout, with {@code event},
 * {@code mono_ns} and {@code wall}, like the Go peers' (bench/peers/internal/events).
 *
 * <p>{@code mono_ns} is {@link System#nanoTime()}: on Linux HotSpot reads it from
 * CLOCK_MONOTONIC, the clock of Node's {@code process.hrtime.bigint()} and of the Go peers, so
 * the harness can subtract times taken in different processes. Java documents nanoTime only as
 * relative to some origin; the origin HotSpot uses on Linux is the kernel's, which is what makes
 * this work, and why the harness only runs these peers on Linux.
 */
final class Events {
  private static final PrintStream OUT =
      new PrintStream(new BufferedOutputStream(new FileOut(), 1 << 16), false, StandardCharsets.UTF_8);

  private Events() {}

  /** Starts a line; add fields, then {@link Line#emit()}. The timestamp is taken now. */
  static Line line(String event) {
    return new Line(event, System.nanoTime());
  }

  static void emit(String event) {
    line(event).emit();
  }

  /** Microseconds of the same clock as mono_ns: small enough for a JavaScript number, fine enough for handoffs. */
  static long monoMicros() {
    return System.nanoTime() / 1_000;
  }

  static final class Line {
    private final Map<String, Object> fields = new LinkedHashMap<>();

    private Line(String event, long monoNs) {
      fields.put("event", event);
      fields.put("mono_ns", monoNs);
      fields.put("wall", Instant.now().toString());
    }

    Line with(String key, Object value) {
      fields.put(key, value);
      return this;
    }

    void emit() {
      StringBuilder b = new StringBuilder(128);
      write(b, fields);
      b.append('\n');
      synchronized (OUT) {
        OUT.print(b);
        OUT.flush();
      }
    }
  }

  private static void write(StringBuilder b, Object v) {
    if (v == null) {
      b.append("null");
    } else if (v instanceof String s) {
      quote(b, s);
    } else if (v instanceof Number || v instanceof Boolean) {
      b.append(v);
    } else if (v instanceof Map<?, ?> m) {
      b.append('{');
      boolean first = true;
      for (Map.Entry<?, ?> e : m.entrySet()) {
        if (!first) b.append(',');
        first = false;
        quote(b, String.valueOf(e.getKey()));
        b.append(':');
        write(b, e.getValue());
      }
      b.append('}');
    } else if (v instanceof long[] a) {
      b.append('[');
      for (int i = 0; i < a.length; i++) b.append(i == 0 ? "" : ",").append(a[i]);
      b.append(']');
    } else if (v instanceof Iterable<?> it) {
      b.append('[');
      boolean first = true;
      for (Object o : it) {
        if (!first) b.append(',');
        first = false;
        write(b, o);
      }
      b.append(']');
    } else {
      quote(b, v.toString());
    }
  }

  private static void quote(StringBuilder b, String s) {
    b.append('"');
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      switch (c) {
        case '"' -> b.append("\\\"");
        case '\\' -> b.append("\\\\");
        case '\n' -> b.append("\\n");
        case '\r' -> b.append("\\r");
        case '\t' -> b.append("\\t");
        default -> {
          if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
          else b.append(c);
        }
      }
    }
    b.append('"');
  }

  /** stdout without System.out, which logging libraries may also write to. */
  private static final class FileOut extends OutputStream {
    private final OutputStream out = new java.io.FileOutputStream(java.io.FileDescriptor.out);

    @Override
    public void write(int b) throws java.io.IOException {
      out.write(b);
    }

    @Override
    public void write(byte[] b, int off, int len) throws java.io.IOException {
      out.write(b, off, len);
    }

    @Override
    public void flush() throws java.io.IOException {
      out.flush();
    }
  }
}
