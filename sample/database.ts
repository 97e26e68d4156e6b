import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';

/** The source of truth of the catalog and of order payments: a real SQL database. */
export interface SqlClient {
  query<T>(sql: string, params?: unknown[]): Promise<T[]>;
  close(): Promise<void>;
}

export const DATABASE_URL = Symbol('DATABASE_URL');

/**
 * PostgreSQL when DATABASE_URL is set, otherwise PGlite (PostgreSQL compiled to WebAssembly,
 * in memory), so the sample starts with no database server installed.
 */
@Injectable()
export class Database implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('Database');
  private client!: SqlClient;

  constructor(@Inject(DATABASE_URL) private readonly url: string | undefined) {}

  query<T>(sql: string, params: unknown[] = []): Promise<T[]> {
    return this.client.query<T>(sql, params);
  }

  async onModuleInit(): Promise<void> {
    this.client = this.url ? await postgres(this.url) : await pglite();
    this.logger.log(this.url ? 'Using PostgreSQL from DATABASE_URL' : 'DATABASE_URL is not set: using an in-memory PGlite database');
    await this.client.query(
      'create table if not exists products (id text primary key, name text not null, category text not null, price_cents integer not null)',
    );
    await this.client.query(
      `insert into products values ('1', 'Book', 'paper', 1999), ('2', 'Notebook', 'paper', 499), ('3', 'Pen', 'office', 199),
        ('4', 'Stapler', 'office', 1299), ('5', 'Lamp', 'home', 3499) on conflict (id) do nothing`,
    );
    // Profiles (ProfilesRepository): written behind the cache.
    await this.client.query('create table if not exists profiles (id text primary key, name text not null, bio text not null)');
    // Payments (PaymentsService): what each order owes, with the fencing token of its last writer.
    await this.client.query(
      `create table if not exists order_balances (order_id text primary key, total_cents integer not null, balance_cents integer not null,
        status text not null default 'open', fencing_token bigint not null default 0)`,
    );
    await this.client.query(
      `create table if not exists order_payments (id bigint generated always as identity primary key, order_id text not null references order_balances,
        amount_cents integer not null, fencing_token bigint not null, paid_at timestamptz not null default now())`,
    );
    // Config documents (ConfigDocuments): one row per entry, with the version and the fencing token of its writer.
    await this.client.query(
      `create table if not exists config_entries (document text not null, name text not null, value text not null,
        version integer not null, fencing_token bigint not null, primary key (document, name))`,
    );
  }

  onApplicationShutdown(): Promise<void> {
    return this.client.close();
  }
}

async function pglite(): Promise<SqlClient> {
  const { PGlite } = await import('@electric-sql/pglite');
  const db = new PGlite();
  return { query: async <T>(sql: string, params?: unknown[]) => (await db.query<T>(sql, params)).rows, close: () => db.close() };
}

async function postgres(url: string): Promise<SqlClient> {
  const { default: pg } = await import('pg');
  const pool = new pg.Pool({ connectionString: url, max: 10 });
  return { query: async <T>(sql: string, params?: unknown[]) => (await pool.query(sql, params)).rows as T[], close: () => pool.end() };
}
