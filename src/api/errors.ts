/**
 * Errors as the Engine answers them: a status and `{"message": …}`. Clients match some of these
 * strings ("No such container: ", "No such image: ") and the status (404: not found, 409: a
 * conflict, 304: nothing to do, 400: a bad request naming the field), so tsrun's typed errors are
 * mapped here, in one place, by code.
 */
import { TsrunError } from '../errors.js';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const STATUS: Partial<Record<string, number>> = {
  ERR_USAGE: 400,
  ERR_REFERENCE: 400,
  ERR_CONTAINER_NOT_FOUND: 404,
  ERR_IMAGE_NOT_FOUND: 404,
  ERR_REGISTRY_NOT_FOUND: 404,
  ERR_NAME_IN_USE: 409,
  ERR_CONTAINER_STATE: 409,
  ERR_IMAGE_IN_USE: 409,
  ERR_REGISTRY_AUTH: 401,
  ERR_PORT_IN_USE: 500,
};

/** Docker's capitalised wording for a missing object (tsrun says "no such container: x"). */
function dockerWording(message: string): string {
  return message
    .replace(/^no such container: /i, 'No such container: ')
    .replace(/^no such image: /i, 'No such image: ');
}

export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof TsrunError) {
    const msg = err.hint && !STATUS[err.code] ? `${err.message} (${err.hint})` : err.message;
    return new ApiError(STATUS[err.code] ?? 500, dockerWording(msg));
  }
  return new ApiError(500, (err as Error)?.message ?? String(err));
}

export const notFoundContainer = (id: string): ApiError => new ApiError(404, `No such container: ${id}`);
export const notFoundImage = (ref: string): ApiError => new ApiError(404, `No such image: ${ref}`);
