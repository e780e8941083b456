import { hash, randomBytes } from "node:crypto";
import argon2 from "argon2";

const KEY_BYTES = 32;

/** A new API key: `sk-` + 256 random bits, base64url. */
export function generateApiKey(): string {
  return `sk-${randomBytes(KEY_BYTES).toString("base64url")}`;
}

/**
 * The stored form of a key. Keys carry 256 bits of entropy, so a fast unsalted SHA-256 is enough to make a leaked
 * table useless (no dictionary exists to attack) while keeping the per-request lookup an index probe.
 */
export function hashApiKey(secret: string): string {
  // Once per authenticated request: the one-shot hash costs ~40 % of a Hash object's create/update/digest.
  return hash("sha256", secret, "hex");
}

/** Display form: the prefix and the last four characters. */
export function maskApiKey(secret: string): string {
  return `${secret.slice(0, 6)}…${secret.slice(-4)}`;
}

/** Extracts the token of an `Authorization: Bearer <token>` header; undefined when absent or malformed. */
export function parseBearer(header: string | null | undefined): string | undefined {
  if (!header) return undefined;
  const match = /^Bearer[ \t]+([^\s]+)[ \t]*$/i.exec(header);
  return match?.[1];
}

export const MIN_PASSWORD_LENGTH = 12;
export const MAX_PASSWORD_LENGTH = 256;

/** argon2id with the library's defaults (m=64 MiB, t=3, p=4), as a PHC string. */
export function hashPassword(password: string): Promise<string> {
  return argon2.hash(password, { type: argon2.argon2id });
}

// Verifying against a real hash when the user does not exist keeps login timing from revealing which e-mails exist.
let dummyHash: Promise<string> | undefined;

export async function verifyPassword(hash: string | null | undefined, password: string): Promise<boolean> {
  if (!hash) {
    dummyHash ??= hashPassword("passerelle-timing-equaliser");
    await argon2.verify(await dummyHash, password).catch(() => false);
    return false;
  }
  return argon2.verify(hash, password).catch(() => false);
}
