import { serveCommands, startWorkerApp } from './worker-app.js';
import { LockService, RedisConnections } from '../../../lib/index.js';
import { holdRecorded, ReadLoad, type RecordedHold } from './read-write-tasks.js';

/**
 * A user of read-write locks in its own process, for multi-process tests. Reads one JSON command
 * per line on stdin and answers one JSON line on stdout:
 * - {"op":"holds","holds":[{key, side, holdMs, events}, ...],"staggerMs":5} runs the holds of
 *   read-write-tasks.ts, starting one every `staggerMs`; answers their fencing tokens;
 * - {"op":"read-load","key":"k","loops":4,"holdMs":10,"granted":"list"} starts a ReadLoad; answers at once;
 * - {"op":"stop-load"} stops it; answers how many reads it made;
 * - {"op":"hold","key":"k","side":"read","ttl":"3s","wait":"0"} takes a side (renewed) and keeps it
 *   until the process ends (killed, in the tests); answers its fencing token once it is held.
 */
const app = await startWorkerApp();
const locks = app.get(LockService);
const redis = app.get(RedisConnections).get();
let load: ReadLoad | undefined;

type Command =
  | { id: number; op: 'holds'; holds: RecordedHold[]; staggerMs: number }
  | { id: number; op: 'read-load'; key: string; loops: number; holdMs: number; granted: string }
  | { id: number; op: 'stop-load' }
  | { id: number; op: 'hold'; key: string; side: 'read' | 'write'; ttl: string; wait: string };

async function run(command: Command): Promise<unknown> {
  switch (command.op) {
    case 'holds':
      return Promise.all(
        command.holds.map(async (hold, i) => {
          await new Promise((resolve) => setTimeout(resolve, i * command.staggerMs));
          return holdRecorded(locks, redis, hold);
        }),
      );
    case 'read-load':
      load = new ReadLoad(locks, redis, command);
      return 'started';
    case 'stop-load':
      return load?.stop();
    case 'hold': {
      const lock = await locks.readWrite(command.key)[command.side].acquire({
        ttl: command.ttl as '1s',
        wait: command.wait as '1s',
        autoExtend: true,
      });
      return lock.fencingToken;
    }
  }
}

serveCommands(app, run);
