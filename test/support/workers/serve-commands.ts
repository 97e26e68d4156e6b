import { createInterface } from 'node:readline';
import type { INestApplicationContext } from '@nestjs/common';

/**
 * The protocol of worker processes (see ../worker-process.ts): one JSON command per line on
 * stdin, one JSON answer per line on stdout (`{"id", "result"}` or `{"id", "error"}`),
 * WORKER_READY once listening, and the app closed when stdin ends.
 */
export function serveCommands<C extends { id: number }>(app: INestApplicationContext, run: (command: C) => Promise<unknown>): void {
  createInterface({ input: process.stdin }).on('line', (line) => {
    const command = JSON.parse(line) as C;
    run(command).then(
      (result) => console.log(JSON.stringify({ id: command.id, result })),
      (error: Error) => console.log(JSON.stringify({ id: command.id, error: error.message })),
    );
  });
  console.log('WORKER_READY');
  process.stdin.once('end', () => {
    app.close().then(() => process.exit(0));
  });
}
