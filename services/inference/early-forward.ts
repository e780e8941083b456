import type { Admission } from "../governance/index.js";

/** A call admitted, and its upstream work (started before or after the admission; see forwardWhileAdmitting). */
export interface Forwarded<T> {
  admission: Admission;
  /** The upstream work's outcome; a failure is the caller's to finish the admission with. */
  result: Promise<T>;
  /**
   * Unlinks the upstream work from the client's signal: call it once that work is over (a stream: when it ends).
   * The client's signal may outlive the call (one per kept-alive connection, bridge/rpc.ts), so a link left there
   * would pile up one listener per request.
   */
  done(): void;
}

const noop = () => {};

/**
 * Runs `forward` (a call's upstream work, up to what may reach its client) after its admission, or, when `early`
 * (Governor.mayForwardEarly said the admission is all but sure), while the admission is decided. Either way the
 * admission comes first for the caller: nothing of `forward`'s result may reach the client before this resolves.
 * When an early call is refused, its upstream request is aborted (its provider slot freed, the model server sees
 * a cancelled request), `discard` releases whatever the upstream work had already produced (an open stream), and
 * the refusal is thrown. `signal` is the client's: its abort reaches the upstream work in both cases.
 */
export async function forwardWhileAdmitting<T>(
  admitting: Promise<Admission>,
  early: boolean,
  signal: AbortSignal,
  forward: (signal: AbortSignal) => Promise<T>,
  discard: (out: T) => void,
): Promise<Forwarded<T>> {
  if (!early) {
    const admission = await admitting;
    return { admission, result: forward(signal), done: noop };
  }
  // The upstream work's own signal: the client's abort, or the refusal's.
  const own = new AbortController();
  const onAbort = () => own.abort(signal.reason);
  const done = () => signal.removeEventListener("abort", onAbort);
  if (signal.aborted) own.abort(signal.reason);
  else signal.addEventListener("abort", onAbort, { once: true });
  const result = forward(own.signal);
  // Its failure is read once the admission is known (below, or by the caller): not an unhandled rejection before.
  result.catch(noop);
  try {
    return { admission: await admitting, result, done };
  } catch (refusal) {
    done();
    own.abort(new Error("refused by admission"));
    result.then(discard, noop);
    throw refusal;
  }
}
