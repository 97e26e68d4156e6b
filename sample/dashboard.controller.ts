import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { Controller, Get, NotFoundException, Param, Sse, StreamableFile, type MessageEvent } from '@nestjs/common';
import { map, type Observable } from 'rxjs';
import { DashboardService } from './dashboard.service.js';

/** The page's own files sit in sample/dashboard/ (`npm start` copies them beside the build). */
const pageFile = (name: string) => new URL(`./dashboard/${name}`, import.meta.url);
/** uPlot, served from node_modules: no CDN, no front-end build. */
const uplotFile = (name: string) => createRequire(import.meta.url).resolve(`uplot/dist/${name}`);

const JS = 'text/javascript; charset=utf-8';
const CSS = 'text/css; charset=utf-8';

/** The files `GET /dashboard/assets/:name` serves, and only those. */
const ASSETS = new Map<string, { file: () => URL | string; type: string }>([
  ['dashboard.js', { file: () => pageFile('dashboard.js'), type: JS }],
  ['dashboard.css', { file: () => pageFile('dashboard.css'), type: CSS }],
  ['uPlot.iife.min.js', { file: () => uplotFile('uPlot.iife.min.js'), type: JS }],
  ['uPlot.min.css', { file: () => uplotFile('uPlot.min.css'), type: CSS }],
]);

/**
 * A live dashboard: `open http://127.0.0.1:3000/dashboard`. One static page whose cards and small
 * charts (the last 60 s) are fed by `GET /dashboard/stream`, an update a second over Server-Sent
 * Events: `curl -N http://127.0.0.1:3000/dashboard/stream`.
 */
@Controller('dashboard')
export class DashboardController {
  constructor(private readonly dashboard: DashboardService) {}

  @Get()
  async page(): Promise<StreamableFile> {
    return new StreamableFile(await readFile(pageFile('index.html')), { type: 'text/html; charset=utf-8' });
  }

  @Get('assets/:name')
  async asset(@Param('name') name: string): Promise<StreamableFile> {
    const asset = ASSETS.get(name);
    if (!asset) throw new NotFoundException(`No dashboard asset ${name}`);
    return new StreamableFile(await readFile(asset.file()), { type: asset.type });
  }

  @Sse('stream')
  stream(): Observable<MessageEvent> {
    return this.dashboard.updates().pipe(map((update) => ({ data: update })));
  }
}
