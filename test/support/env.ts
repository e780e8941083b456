/** Where the test command's throwaway servers are (set by test/ci.sh). */

export function testDatabaseUrl(): string {
  const url = process.env.PASSERELLE_TEST_DATABASE_URL;
  if (!url) {
    throw new Error(
      "PASSERELLE_TEST_DATABASE_URL is not set: run the tests with `npm run test:all` (test/ci.sh), which starts " +
        "a throwaway PostgreSQL 15 + pgvector and Redis, or point it at a PostgreSQL superuser URL.",
    );
  }
  return url;
}

/** Redis for the tests; undefined outside CI when none is configured (Redis-only suites then skip). */
export function testRedisUrl(): string | undefined {
  const url = process.env.PASSERELLE_TEST_REDIS_URL;
  if (!url && process.env.CI) throw new Error("PASSERELLE_TEST_REDIS_URL is not set but CI is: run test/ci.sh.");
  return url;
}
