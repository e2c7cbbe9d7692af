/**
 * What the handlers of one service share: the use-case context and store, the session label,
 * attaches waiting for a start (Docker's clients attach before they start), and exec sessions
 * (Docker's exec ids live as long as the daemon; here, as long as the service).
 */
import { randomBytes } from 'node:crypto';
import type { AppContext } from '../app/context.js';
import type { Env } from '../app/containers.js';
import type { Attachment } from '../runtime/monitor.js';
import type { Container } from '../runtime/records.js';
import { isTsrunError } from '../errors.js';
import { notFoundContainer } from './errors.js';

export { SESSION_LABEL } from '../app/service-sessions.js';

export interface ExecEntry {
  id: string;
  containerId: string;
  cmd: string[];
  tty: boolean;
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  env: string[];
  user: string;
  workdir: string;
  privileged: boolean;
  running: boolean;
  exitCode: number | null;
  pid: number;
  attachment?: Attachment;
}

export class ApiState {
  /** Container id → callbacks to run with the attachment when the container starts. */
  readonly pendingAttach = new Map<string, ((a: Attachment) => void)[]>();
  readonly execs = new Map<string, ExecEntry>();

  constructor(
    readonly ctx: AppContext,
    readonly env: Env,
    readonly version: string,
    readonly session?: string,
  ) {}

  /** A container by id, name or id prefix; Docker's 404 otherwise. */
  async find(query: string): Promise<Container> {
    try {
      return await this.env.containers.find(query);
    } catch (err) {
      if (isTsrunError(err, 'ERR_CONTAINER_NOT_FOUND')) throw notFoundContainer(query);
      throw err;
    }
  }

  newExecId(): string {
    return randomBytes(32).toString('hex');
  }
}
