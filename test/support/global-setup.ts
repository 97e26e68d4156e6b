import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';
import { RedisTestCluster, RedisTestServer, type Address } from './redis-server.js';

/** The servers every suite shares; suites that stop or reconfigure a server start their own. */
export interface SharedRedis {
  standalone: Address;
  cluster: Address[];
}

declare module 'vitest' {
  export interface ProvidedContext {
    redis: SharedRedis;
    /** Where the compiled worker scripts for multi-process suites are. */
    workersDir: string;
  }
}

const root = fileURLToPath(new URL('../../', import.meta.url));
const buildDir = '.build/workers';

/** Compiles the worker scripts (and the library they import) once, for suites that run app instances in separate processes. */
function buildWorkers(): string {
  execFileSync('npx', ['tsc', '-p', 'tsconfig.app.json', '--outDir', buildDir], { cwd: root, stdio: 'inherit' });
  execFileSync('npm', ['run', '--silent', 'copy-lua', '--', 'lib', `${buildDir}/lib`], { cwd: root, stdio: 'inherit' });
  return `${root}${buildDir}/test/support/workers`;
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  project.provide('workersDir', buildWorkers());
  const [standalone, cluster] = await Promise.all([RedisTestServer.start(), RedisTestCluster.start({ masters: 3 })]);
  project.provide('redis', { standalone: standalone.address, cluster: cluster.nodes });
  return async () => {
    await Promise.all([standalone.destroy(), cluster.destroy()]);
  };
}
