/**
 * Typed errors for tsrun.
 *
 * Contract: every failure a user can meet is a TsrunError with a stable `code`, a message that
 * reads "verb-ing object: cause", and, when the user can act, a `hint`. Only the CLI turns
 * errors into exit codes and text (src/cli/main.ts); modules throw, they never print or exit.
 * `retryable` marks failures worth another attempt (network resets, 429, 5xx), as
 * go-containerregistry's transport errors do.
 */

export type ErrorCode =
  | 'ERR_USAGE'
  | 'ERR_REFERENCE'
  | 'ERR_REGISTRY'
  | 'ERR_REGISTRY_AUTH'
  | 'ERR_REGISTRY_NOT_FOUND'
  | 'ERR_REGISTRY_BLOCKED'
  | 'ERR_REGISTRY_UNSUPPORTED'
  | 'ERR_NETWORK'
  | 'ERR_DIGEST_MISMATCH'
  | 'ERR_SIZE'
  | 'ERR_MANIFEST'
  | 'ERR_PLATFORM'
  | 'ERR_LAYER'
  | 'ERR_UNSAFE_LAYER'
  | 'ERR_STORE'
  | 'ERR_IMAGE_NOT_FOUND'
  | 'ERR_IMAGE_IN_USE'
  | 'ERR_CONFIG'
  | 'ERR_CREDENTIALS'
  | 'ERR_NATIVE'
  | 'ERR_CONTAINER_NOT_FOUND'
  | 'ERR_NAME_IN_USE'
  | 'ERR_CONTAINER_STATE'
  | 'ERR_RUNTIME'
  | 'ERR_EXEC'
  | 'ERR_CNI'
  | 'ERR_PORT_IN_USE'
  | 'ERR_NETWORK_NOT_FOUND'
  | 'ERR_NETWORK_IN_USE'
  | 'ERR_DOCKERFILE'
  | 'ERR_ROOTLESS'
  | 'ERR_BUILD_CONTEXT'
  | 'ERR_BUILD_STEP'
  | 'ERR_INTERNAL';

export interface TsrunErrorOptions {
  hint?: string;
  cause?: unknown;
  retryable?: boolean;
  /**
   * Extra machine-readable detail (HTTP status, registry error codes, ...). `exitCode` overrides
   * the CLI's 125 (126: the container's command cannot run, 127: it was not found).
   */
  detail?: Record<string, unknown>;
}

export class TsrunError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly retryable: boolean;
  readonly detail: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, opts: TsrunErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'TsrunError';
    this.code = code;
    this.hint = opts.hint;
    this.retryable = opts.retryable ?? false;
    this.detail = opts.detail;
  }
}

export function isTsrunError(err: unknown, code?: ErrorCode): err is TsrunError {
  return err instanceof TsrunError && (code === undefined || err.code === code);
}

/**
 * Prefix an error with what we were doing ("pulling node:17: <cause>"), keeping its code, hint
 * and retryability. Non-TsrunErrors become ERR_INTERNAL unless `code` says otherwise.
 */
export function wrapError(context: string, err: unknown, code: ErrorCode = 'ERR_INTERNAL'): TsrunError {
  if (err instanceof TsrunError) {
    return new TsrunError(err.code, `${context}: ${err.message}`, {
      hint: err.hint,
      cause: err,
      retryable: err.retryable,
      detail: err.detail,
    });
  }
  const msg = err instanceof Error ? err.message : String(err);
  return new TsrunError(code, `${context}: ${msg}`, { cause: err });
}
