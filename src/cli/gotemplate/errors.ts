/**
 * The one error the template engine throws: a parse error ("template: :1: function \"x\" not
 * defined") or an execution error ("template: :1:2: executing \"\" at <.Foo>: can't evaluate
 * field Foo in type …"), worded as Go's text/template words them. Callers add Docker's prefix
 * ("template parsing error: ", "failed to execute template: ") and choose the exit code.
 */
import { TsrunError } from '../../errors.js';

export class TemplateError extends TsrunError {
  readonly phase: 'parse' | 'exec';
  /** Output written before an execution error (Go's Execute writes as it goes). */
  partial = '';

  constructor(phase: 'parse' | 'exec', message: string) {
    super('ERR_USAGE', message);
    this.name = 'TemplateError';
    this.phase = phase;
  }
}
