package io.metaparticle.sync.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The stamp's rules; the admission policy itself is exercised end to end by test/fencing. */
class FencingTest {
  @Test
  void annotationKeyIsTheNameOrItsShortenedForm() {
    assertEquals("fence.sync.metaparticle.io/orders", Fencing.annotationKey("orders"));
    // The same long name shortens to the same key in every client.
    assertEquals(
        "fence.sync.metaparticle.io/" + "a".repeat(46) + "-6bd5e5034855a112", Fencing.annotationKey("a".repeat(70)));
    IllegalArgumentException bad = assertThrows(IllegalArgumentException.class, () -> Fencing.annotationKey("Bad Name"));
    assertTrue(bad.getMessage().startsWith("name: "), bad.getMessage());
  }

  @Test
  void stampSetsTheTokenAndKeepsOtherAnnotations() {
    assertEquals(Map.of("fence.sync.metaparticle.io/orders", "7"), Fencing.stamp(null, "orders", 7));
    Map<String, String> kept = new HashMap<>(Map.of("other", "x", "fence.sync.metaparticle.io/orders", "3"));
    assertSame(kept, Fencing.stamp(kept, "orders", 12));
    assertEquals(Map.of("other", "x", "fence.sync.metaparticle.io/orders", "12"), kept);
    IllegalArgumentException bad = assertThrows(IllegalArgumentException.class, () -> Fencing.stamp(null, "orders", 0));
    assertTrue(bad.getMessage().startsWith("token: "), bad.getMessage());
  }
}
