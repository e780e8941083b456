import type pg from "pg";

/**
 * Runs `fn` in a transaction on one pooled connection; a connection whose rollback fails is discarded. `begin` may
 * carry `set local` settings after the `begin`, sent in the same round trip (simple protocol, nothing from the user).
 */
export async function inTransaction<T>(
  pool: pg.Pool,
  fn: (client: pg.PoolClient) => Promise<T>,
  begin = "begin",
): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query(begin);
    const result = await fn(client);
    await client.query("commit");
    return result;
  } catch (err) {
    await client.query("rollback").catch((e: Error) => {
      broken = e;
    });
    throw err;
  } finally {
    client.release(broken);
  }
}
