/**
 * Methods of an object that is loaded on first use: each forwards to the object once `load` resolved. Stores use it
 * to keep MikroORM (and the code written over it) out of a process until an administrative call needs it. `load` is
 * called on every call and should memoize; a load that failed is tried again by the next call.
 */
export function lazyMethods<T, K extends keyof T>(load: () => Promise<T>, names: readonly K[]): Pick<T, K> {
  const out = {} as Record<K, unknown>;
  for (const name of names) {
    out[name] = async (...args: unknown[]) => ((await load())[name] as (...a: unknown[]) => unknown)(...args);
  }
  return out as Pick<T, K>;
}

/**
 * A memoized async loader whose failure is not remembered (the next call tries again). `current()` is the load
 * started and not failed, if any, without starting one.
 */
export function once<T>(load: () => Promise<T>): (() => Promise<T>) & { current(): Promise<T> | undefined } {
  let pending: Promise<T> | undefined;
  const get = () => {
    if (!pending) {
      const p = load();
      pending = p;
      p.catch(() => {
        if (pending === p) pending = undefined;
      });
    }
    return pending;
  };
  return Object.assign(get, { current: () => pending });
}
