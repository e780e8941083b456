/**
 * MikroORM keeps its request, transaction and flush contexts in AsyncLocalStorage. Passerelle never reads them:
 * every unit of work is an explicit `orm.em.fork()` (forks ignore the contexts), `allowGlobalContext` is off and no
 * entity has lifecycle hooks that flush. Yet on Node 20 the first `AsyncLocalStorage.run()` — the first flush, at
 * start-up — turns on async hooks for every promise of the process, for good: 4–8 % of the CPU of a chat completion
 * in the bench's profiles, on a path that never touches the database.
 *
 * MikroORM takes `globalThis.AsyncLocalStorage` when it exists (its hook for runtimes without node:async_hooks), so
 * this module gives it a synchronous store with the same interface, before MikroORM is first evaluated:
 * database.ts imports it first, before anything can load MikroORM (and services/cli.ts, before its entities).
 * Correct for synchronous code; async continuations see no context, which forks never ask for. No other installed
 * package reads that global.
 */
class SynchronousContext<T> {
  #store: T | undefined;
  getStore(): T | undefined {
    return this.#store;
  }
  enterWith(value: T): void {
    this.#store = value;
  }
  run<R>(value: T, callback: (...args: unknown[]) => R, ...args: unknown[]): R {
    const previous = this.#store;
    this.#store = value;
    try {
      return callback(...args);
    } finally {
      this.#store = previous;
    }
  }
}

const g = globalThis as { AsyncLocalStorage?: unknown };
g.AsyncLocalStorage ??= SynchronousContext;

export const ormContextIsSynchronous = g.AsyncLocalStorage === SynchronousContext;
