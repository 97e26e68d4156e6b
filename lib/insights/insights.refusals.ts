import type { Logger } from '@nestjs/common';

/** The commands insights needs, each of which a server may refuse (an ACL user, a managed service). */
export type InsightsCommand = 'INFO' | 'SLOWLOG' | 'MEMORY' | 'SCAN' | 'COMMAND';

/** What goes missing when a command is refused, and the ACL rule that would allow it. */
const WITHOUT: Readonly<Record<InsightsCommand, { missing: string; grant: string }>> = {
  INFO: { missing: 'snapshot() reports its nodes as unavailable, and the gauges and health summary have no numbers', grant: '+info' },
  SLOWLOG: { missing: 'slowlog() reports its nodes as unavailable', grant: '+slowlog|get' },
  MEMORY: { missing: 'bigKeys() counts keys without their sizes', grant: '+memory|usage' },
  SCAN: { missing: 'bigKeys() skips its nodes', grant: '+scan' },
  COMMAND: { missing: 'slowlog() entries have no key counts', grant: '+command|getkeys' },
};

/**
 * Why a server refused a command it will not run, or undefined for any other error: an ACL user
 * without the permission (NOPERM), or a server where the command is disabled or renamed, as some
 * managed services do (unknown command).
 *
 * @example
 * refusalOf(new Error("NOPERM this user has no permissions to run the 'info' command")); // 'not allowed for this user (NOPERM)'
 */
export function refusalOf(error: unknown): string | undefined {
  if (!(error instanceof Error)) return undefined;
  if (/^NOPERM\b/.test(error.message)) return 'not allowed for this user (NOPERM)';
  if (/^ERR unknown command\b/.test(error.message)) return 'not available on this server (unknown command: disabled or renamed)';
  return undefined;
}

/** The outcome of a command a server may refuse: its value, or why it was refused. */
export type Attempt<T> = { value: T } | { refused: string };

/**
 * Insights' view of refused commands: each command refused on a connection is logged once, with
 * what goes missing and the ACL rule that would allow it, and the caller carries on without it.
 */
export class RefusalLog {
  private readonly logged = new Set<string>();

  constructor(private readonly logger: Logger) {}

  /**
   * Runs `read`: a refusal resolves with its reason (logged once per connection and command), any
   * other failure rejects.
   * @example
   * const info = await refusals.attempt('default', 'INFO', () => node.info());
   * if ('refused' in info) return { node, available: false, reason: info.refused };
   */
  async attempt<T>(connection: string, command: InsightsCommand, read: () => Promise<T>): Promise<Attempt<T>> {
    try {
      return { value: await read() };
    } catch (error) {
      const reason = this.refused(connection, command, error);
      if (reason === undefined) throw error;
      return { refused: reason };
    }
  }

  /** Notes `error` if it is a refusal, and answers `'<command> is <why>'`; undefined for any other error. */
  refused(connection: string, command: InsightsCommand, error: unknown): string | undefined {
    const refusal = refusalOf(error);
    if (refusal === undefined) return undefined;
    const once = `${connection}\n${command}`;
    if (!this.logged.has(once)) {
      this.logged.add(once);
      const { missing, grant } = WITHOUT[command];
      this.logger.warn(`Redis connection "${connection}" refuses ${command}, ${refusal}: ${missing}. Grant the user ${grant} to have it.`);
    }
    return `${command} is ${refusal}`;
  }
}
