import { BadRequestException, Body, Controller, Get, Injectable, NotFoundException, Param, Put } from '@nestjs/common';
import { setTimeout as sleep } from 'node:timers/promises';
import { LockService, WithLock } from '../lib/index.js';
import { Database } from './database.js';

/** A config document: its entries, the version they belong to, and the fencing token of the lock held to read or write it. */
export interface ConfigDocument {
  name: string;
  version: number;
  entries: Record<string, string>;
  fencingToken: number;
}

interface ConfigEntryRow {
  name: string;
  value: string;
  version: number;
}

const NAME = /^[a-z0-9-]{1,64}$/;
const ENTRY = /^[a-z0-9._-]{1,64}$/;
/** How long writing one entry takes (a pretend import from another system). */
const ENTRY_WRITE_MS = 20;

/**
 * Config documents (feature flags, limits...) read on every request and rewritten rarely, kept in
 * SQL as one row per entry. A rewrite replaces the rows one statement at a time, as an import
 * from another system would: a read between two of them would see half of each version. The
 * read-write lock `config:<name>` keeps them apart across every instance: reads hold its read
 * side, any number at once, never waiting for each other; a rewrite holds its write side, alone.
 * Reads wait for a rewrite (up to 5s); a rewrite waits for the reads already in, but new ones do
 * not overtake it (writer preference), so a steady stream of reads cannot keep it out.
 */
@Injectable()
export class ConfigDocuments {
  constructor(
    private readonly db: Database,
    private readonly locks: LockService,
  ) {}

  /** The document, read under the read side of its lock; null when it has no entries. */
  @WithLock<[string]>({ key: (name) => `config:${name}`, mode: 'read', wait: '5s' })
  async read(name: string): Promise<ConfigDocument | null> {
    const rows = await this.db.query<ConfigEntryRow>('select name, value, version from config_entries where document = $1 order by name', [
      name,
    ]);
    if (rows.length === 0) return null;
    return {
      name,
      version: Math.max(...rows.map((row) => row.version)),
      entries: Object.fromEntries(rows.map((row) => [row.name, row.value])),
      fencingToken: this.locks.current()!.fencingToken,
    };
  }

  /**
   * Replaces the document's entries, one row at a time, under the write side of its lock (waiting
   * up to 5s for it). Each row carries the writer's fencing token, and a row is only ever replaced
   * by a writer with a higher one: a writer that stalled past its lease cannot overwrite a later one.
   */
  write(name: string, entries: Record<string, string>): Promise<ConfigDocument> {
    return this.locks.readWrite(`config:${name}`).write.using(
      async (lock) => {
        const [{ version }] = await this.db.query<{ version: number | null }>(
          'select max(version) as version from config_entries where document = $1',
          [name],
        );
        const next = (version ?? 0) + 1;
        for (const [entry, value] of Object.entries(entries)) {
          await this.db.query(
            `insert into config_entries values ($1, $2, $3, $4, $5) on conflict (document, name)
               do update set value = $3, version = $4, fencing_token = $5 where config_entries.fencing_token < $5`,
            [name, entry, value, next, lock.fencingToken],
          );
          await sleep(ENTRY_WRITE_MS, undefined, { signal: lock.signal });
        }
        // The entries the new version no longer has.
        await this.db.query('delete from config_entries where document = $1 and fencing_token < $2', [name, lock.fencingToken]);
        return { name, version: next, entries, fencingToken: lock.fencingToken };
      },
      { wait: '5s' },
    );
  }
}

/**
 * `curl -X PUT -H 'content-type: application/json' -d '{"entries":{"checkout.enabled":"true","search.limit":"20"}}' http://127.0.0.1:3000/config/site`,
 * then `curl http://127.0.0.1:3000/config/site`: reads under the read side of a read-write lock,
 * rewrites under its write side (see ConfigDocuments).
 */
@Controller('config')
export class ConfigController {
  constructor(private readonly documents: ConfigDocuments) {}

  @Get(':name')
  async read(@Param('name') name: string): Promise<ConfigDocument> {
    const document = NAME.test(name) ? await this.documents.read(name) : null;
    if (!document) throw new NotFoundException(`No config document ${name}`);
    return document;
  }

  @Put(':name')
  write(@Param('name') name: string, @Body() body: { entries?: unknown } = {}): Promise<ConfigDocument> {
    if (!NAME.test(name)) throw new BadRequestException('name must be 1 to 64 of a-z, 0-9 and -');
    const { entries } = body;
    const valid =
      typeof entries === 'object' &&
      entries !== null &&
      !Array.isArray(entries) &&
      Object.keys(entries).length > 0 &&
      Object.keys(entries).length <= 50 &&
      Object.entries(entries).every(([entry, value]) => ENTRY.test(entry) && typeof value === 'string' && value.length <= 1_000);
    if (!valid)
      throw new BadRequestException(
        'entries must be an object of 1 to 50 names (a-z, 0-9, ., _ and -) to strings of at most 1,000 characters',
      );
    return this.documents.write(name, entries as Record<string, string>);
  }
}
