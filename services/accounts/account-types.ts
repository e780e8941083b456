/** What the accounts store and its ORM CRUD (account-crud.ts) share. */

export type KeyState = "active" | "expired" | "revoked" | undefined;

export interface UserPatch {
  email?: string;
  name?: string;
  passwordHash?: string;
  roleId?: string;
  organizationId?: string | null;
  expiresAt?: Date | null;
}
