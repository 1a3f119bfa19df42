package io.metaparticle.sync.client;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * Fencing where the write lands (docs/design.md 3.12): stamp a lock's token on a Kubernetes object
 * before writing it. With the fencing policy installed (deploy/components/fencing), the API server
 * refuses the write if a newer holder of the lock has written the object since.
 *
 * <pre>{@code
 * obj.getMetadata().setAnnotations(
 *     Fencing.stamp(obj.getMetadata().getAnnotations(), lock.name(), lock.token()));
 * }</pre>
 */
public final class Fencing {
  /** The prefix of every fence annotation key; the name part follows it. */
  public static final String ANNOTATION_PREFIX = "fence.sync.metaparticle.io/";

  /** The SQLSTATE that sql/fencing.sql raises for a stale token (SQLException.getSQLState()). */
  public static final String STALE_SQLSTATE = "MSF01";

  private static final int MAX_KEY_NAME = 63;
  private static final int HASH_DIGITS = 16;
  private static final Pattern LEASE_NAME =
      Pattern.compile("^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$");

  private Fencing() {}

  /**
   * The annotation that carries the fence of lock or election {@code name}: {@code
   * fence.sync.metaparticle.io/<name>}. A name longer than 63 characters is shortened to its first
   * 46, a dash and the first 16 hex digits of its SHA-256.
   *
   * @throws IllegalArgumentException naming the field, for a name that is not a lock or election
   *     name
   */
  public static String annotationKey(String name) {
    if (name == null || name.isEmpty() || name.length() > 253 || !LEASE_NAME.matcher(name).matches()) {
      throw new IllegalArgumentException(
          "name: \"" + name + "\" is not a lock or election name (a DNS subdomain name, at most 253 characters)");
    }
    if (name.length() <= MAX_KEY_NAME) {
      return ANNOTATION_PREFIX + name;
    }
    try {
      byte[] sum = MessageDigest.getInstance("SHA-256").digest(name.getBytes(StandardCharsets.UTF_8));
      String hash = HexFormat.of().formatHex(sum).substring(0, HASH_DIGITS);
      return ANNOTATION_PREFIX + name.substring(0, MAX_KEY_NAME - HASH_DIGITS - 1) + "-" + hash;
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is missing from this JVM", e);
    }
  }

  /**
   * Returns {@code annotations} (a new map when null) with the fence of lock or election {@code
   * name} set to {@code token}: the lock's token, the leadership's term, or MSYNC_FENCING_TOKEN /
   * MSYNC_TERM as the CLI passes them.
   *
   * @throws IllegalArgumentException naming the field, for a bad name or a token below 1
   */
  public static Map<String, String> stamp(Map<String, String> annotations, String name, long token) {
    String key = annotationKey(name);
    if (token < 1) {
      throw new IllegalArgumentException("token: " + token + " is not a fencing token (a positive integer)");
    }
    Map<String, String> stamped = annotations == null ? new HashMap<>() : annotations;
    stamped.put(key, Long.toString(token));
    return stamped;
  }
}
