/**
 * Runs `task(0…count-1)` at most `limit` at a time and returns the results in index order. The first failure aborts
 * the others (their upstream requests and renders are cancelled through `signal`) and is thrown once every task has
 * settled, so that no provider lease or render outlives the call. `onSettled` sees every success, also those of a
 * call that fails in the end (their upstream tokens were spent and are billed).
 */
export async function runBounded<T>(
  count: number,
  limit: number,
  parent: AbortSignal,
  task: (i: number, signal: AbortSignal) => Promise<T>,
  onSettled: (value: T) => void = () => {},
): Promise<T[]> {
  if (count === 1) {
    // The common case (one batch, one page) without the extra controller and signal.
    const only = await task(0, parent);
    onSettled(only);
    return [only];
  }
  const stop = new AbortController();
  const signal = AbortSignal.any([parent, stop.signal]);
  const out = new Array<T>(count);
  let next = 0;
  let failure: { err: unknown } | undefined;
  const worker = async () => {
    while (!failure && next < count) {
      const i = next++;
      try {
        out[i] = await task(i, signal);
        onSettled(out[i] as T);
      } catch (err) {
        if (!failure) {
          failure = { err };
          stop.abort();
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, count)) }, worker));
  if (failure) throw failure.err;
  return out;
}
