/**
 * Docker's confirmation prompt (cli/command/utils.go PromptForConfirmation): the message, then
 * " [y/N] " on stdout; one word is read from stdin; only "y" or "yes" (any case) agrees. No
 * stdin (closed, /dev/null, a finished pipe) is a no, so a script without -f never deletes.
 */
export async function confirm(
  out: NodeJS.WritableStream,
  message: string,
  input: NodeJS.ReadableStream = process.stdin,
): Promise<boolean> {
  out.write(`${message} [y/N] `);
  const answer = await new Promise<string>((resolve) => {
    let text = '';
    const done = () => {
      input.off('data', onData);
      input.off('end', done);
      input.off('error', done);
      input.pause();
      resolve(text);
    };
    const onData = (chunk: Buffer | string) => {
      text += chunk.toString();
      // A word followed by a line end (or any whitespace after a word) is the whole answer.
      if (/\S\s/.test(text) || text.includes('\n')) done();
    };
    input.on('data', onData);
    input.once('end', done);
    input.once('error', done);
    input.resume();
  });
  const word = answer.trim().split(/\s+/)[0] ?? '';
  return /^y(es)?$/i.test(word);
}
