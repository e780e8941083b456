import type { Principal } from "../platform/context.js";
import { invalidArgument, permissionDenied } from "../platform/errors.js";
import { isUuid } from "../platform/paging.js";
import { MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH } from "./secrets.js";

export { principalOf } from "../platform/context.js";

export function requireAdmin(p: Principal): void {
  if (!p.permissions.has("admin")) throw permissionDenied("This operation needs the 'admin' permission.");
}

// Pragmatic, not RFC 5322: one @, no spaces, a dot in the domain.
const EMAIL = /^[^\s@]{1,64}@[^\s@]+\.[^\s@]{2,}$/;

export function validEmail(raw: string, param = "email"): string {
  const email = raw.trim().toLowerCase();
  if (!EMAIL.test(email) || email.length > 320)
    throw invalidArgument(`'${param}' is not a valid e-mail address.`, param);
  return email;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
const CONTROL = /[\u0000-\u001f\u007f]/;

export function validName(raw: string, param: string, max: number): string {
  const name = raw.trim();
  if (name.length === 0) throw invalidArgument(`'${param}' must not be empty.`, param);
  if (name.length > max) throw invalidArgument(`'${param}' is longer than ${max} characters.`, param);
  if (CONTROL.test(name)) throw invalidArgument(`'${param}' contains control characters.`, param);
  return name;
}

/** A list's substring filter: any text the database can compare (no control character), taken as given. */
export function validFilter(raw: string, param: string, max: number): string {
  if (raw.length > max) throw invalidArgument(`'${param}' is longer than ${max} characters.`, param);
  if (CONTROL.test(raw)) throw invalidArgument(`'${param}' contains control characters.`, param);
  return raw;
}

export function validPassword(password: string, param = "password"): string {
  if (password.length < MIN_PASSWORD_LENGTH) {
    throw invalidArgument(`'${param}' must have at least ${MIN_PASSWORD_LENGTH} characters.`, param);
  }
  if (password.length > MAX_PASSWORD_LENGTH) {
    throw invalidArgument(`'${param}' must have at most ${MAX_PASSWORD_LENGTH} characters.`, param);
  }
  return password;
}

/** A reference to another resource inside a request body: malformed → InvalidArgument. */
export function validRef(id: string, param: string): string {
  if (!isUuid(id)) throw invalidArgument(`'${param}' is not a valid id.`, param);
  return id;
}

/** The id of the resource a call is about: malformed ids cannot exist, so the caller gets NotFound from the lookup. */
export function lookupId(id: string): string | undefined {
  return isUuid(id) ? id : undefined;
}
