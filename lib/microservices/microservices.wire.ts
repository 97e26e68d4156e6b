/**
 * What one stream entry holds: a serialized Nest packet (`{ pattern, data, id? }`), and for a
 * request, the requester's reply stream and the time (epoch ms) after which it no longer waits.
 */
export interface WireEntry {
  packet: unknown;
  replyTo?: string;
  deadline?: number;
}

/** The reply stream of a requester instance. */
export function replyStreamOf(instance: string): string {
  return `ms-reply:${instance}`;
}
