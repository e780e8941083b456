import { testDatabaseUrl } from "./env.js";

/** Fails fast, once, with instructions, when the test servers are missing. */
export default function setup(): void {
  testDatabaseUrl();
}
