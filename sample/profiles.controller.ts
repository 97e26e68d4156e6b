import { BadRequestException, Body, Controller, Get, HttpCode, Injectable, NotFoundException, Param, Put } from '@nestjs/common';
import { Cacheable, WriteBehind, WriteBehindService, type WriteBehindLag } from '../lib/index.js';
import { Database } from './database.js';

export interface Profile {
  id: string;
  name: string;
  bio: string;
}

const ID = /^[a-z0-9-]{1,64}$/;

/** Profiles in SQL, written behind the cache: a save is in the cache at once and in SQL a little later. */
@Injectable()
export class ProfilesRepository {
  constructor(private readonly db: Database) {}

  /** Runs later, on whichever instance takes the job, with the newest profile of the id. */
  @WriteBehind({ key: (profile: Profile) => `profile:${profile.id}`, ttl: '10m' })
  async save(profile: Profile): Promise<void> {
    await this.db.query('insert into profiles values ($1, $2, $3) on conflict (id) do update set name = $2, bio = $3', [
      profile.id,
      profile.name,
      profile.bio,
    ]);
  }

  /** The same key as `save`: a profile just saved is read from the cache, before SQL has it. */
  @Cacheable({ key: (id: string) => `profile:${id}`, ttl: '10m' })
  async find(id: string): Promise<Profile | null> {
    return this.fromDatabase(id);
  }

  async fromDatabase(id: string): Promise<Profile | null> {
    const [row] = await this.db.query<Profile>('select id, name, bio from profiles where id = $1', [id]);
    return row ?? null;
  }
}

/**
 * Write-behind: `curl -X PUT -H 'content-type: application/json' -d '{"name":"Ann","bio":"Hi"}' http://127.0.0.1:3000/profiles/ann`
 * answers once the profile is in Redis (the cache, and a job to persist it); `GET /profiles/ann`
 * reads it through the cache at once; `GET /profiles/ann/database` shows when SQL has it;
 * `GET /write-behind/lag` how many profiles wait to be persisted.
 */
@Controller()
export class ProfilesController {
  constructor(
    private readonly profiles: ProfilesRepository,
    private readonly writeBehind: WriteBehindService,
  ) {}

  @Put('profiles/:id')
  @HttpCode(202)
  async save(@Param('id') id: string, @Body() body: { name?: unknown; bio?: unknown } = {}): Promise<{ id: string; persisted: 'later' }> {
    if (!ID.test(id)) throw new BadRequestException('id must be 1 to 64 of a-z, 0-9 and -');
    const { name, bio = '' } = body;
    if (typeof name !== 'string' || name.length === 0 || name.length > 100)
      throw new BadRequestException('name must be 1 to 100 characters');
    if (typeof bio !== 'string' || bio.length > 1_000) throw new BadRequestException('bio must be at most 1,000 characters');
    await this.profiles.save({ id, name, bio });
    return { id, persisted: 'later' };
  }

  @Get('profiles/:id')
  async find(@Param('id') id: string): Promise<Profile> {
    const profile = ID.test(id) ? await this.profiles.find(id) : null;
    if (!profile) throw new NotFoundException(`no profile ${id}`);
    return profile;
  }

  @Get('profiles/:id/database')
  async fromDatabase(@Param('id') id: string): Promise<{ inDatabase: Profile | null }> {
    return { inDatabase: ID.test(id) ? await this.profiles.fromDatabase(id) : null };
  }

  @Get('write-behind/lag')
  lag(): Promise<WriteBehindLag> {
    return this.writeBehind.lag();
  }
}
