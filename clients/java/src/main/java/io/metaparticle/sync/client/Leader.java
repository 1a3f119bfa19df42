package io.metaparticle.sync.client;

/**
 * The leader of an election as the sidecar observed it.
 *
 * @param leader the leading candidate's name, or "" when nobody leads
 * @param value the leader's proclaimed value
 * @param term the leader's term, or the last term when nobody leads
 */
public record Leader(String leader, String value, long term) {}
