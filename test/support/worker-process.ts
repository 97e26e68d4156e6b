import { spawn, type ChildProcess } from 'node:child_process';
import { inject } from 'vitest';

/** A compiled worker script (test/support/workers/*.ts) running in its own Node.js process. */
export class WorkerProcess {
  output = '';
  private requests = 0;
  readonly exited: Promise<number | null>;

  private constructor(private readonly child: ChildProcess) {
    child.stdout?.on('data', (chunk) => (this.output += chunk));
    child.stderr?.on('data', (chunk) => (this.output += chunk));
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  }

  /** Starts `workers/<name>.js` from the build made by the global setup, and waits for it to print WORKER_READY. */
  static async start(name: string, config: unknown): Promise<WorkerProcess> {
    const script = `${inject('workersDir')}/${name}.js`;
    const worker = new WorkerProcess(
      spawn(process.execPath, [script], {
        env: { ...process.env, WORKER_CONFIG: JSON.stringify(config) },
        stdio: ['pipe', 'pipe', 'pipe'],
      }),
    );
    const deadline = Date.now() + 20_000;
    while (!worker.output.includes('WORKER_READY')) {
      if (Date.now() > deadline || worker.child.exitCode !== null) throw new Error(`Worker ${name} did not start:\n${worker.output}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return worker;
  }

  kill(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  /** Sends one JSON command line and resolves with the matching answer (see cache-worker.ts). */
  async request<T>(command: Record<string, unknown>): Promise<T> {
    const id = ++this.requests;
    this.child.stdin?.write(`${JSON.stringify({ ...command, id })}\n`);
    const deadline = Date.now() + 20_000;
    for (;;) {
      const answer = this.output
        .split('\n')
        .filter((line) => line.startsWith('{"id":'))
        .map((line) => JSON.parse(line) as { id: number; result?: T; error?: string })
        .find((candidate) => candidate.id === id);
      if (answer) {
        if (answer.error !== undefined) throw new Error(answer.error);
        return answer.result as T;
      }
      if (Date.now() > deadline) throw new Error(`No answer to ${JSON.stringify(command)}:\n${this.output}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  /** Closes stdin: workers that read commands shut down cleanly. */
  endInput(): void {
    this.child.stdin?.end();
  }
}
