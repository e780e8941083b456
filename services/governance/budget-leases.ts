import type pg from "pg";
import { uuidv7 } from "../platform/ids.js";
import type { Owner, OwnerKind } from "./entities.js";
import { TAKE_OFF_LEASES } from "./settlement.js";

/**
 * Budget leases: a process reserves a slice of an owner's budget once (a `budget_reservation` row whose id is the
 * lease's, with a TTL like any reservation) and admits requests against it in memory, instead of one PostgreSQL
 * round trip (and one lock on the owner's budget row) per request.
 *
 * Exactness: each request admitted on a lease holds its worst-case cost in the lease's `inflight` until it finishes,
 * then its real cost moves to `consumed`; the lease admits only while `granted - inflight - consumed` covers the
 * next worst case. The usage record names the lease; when the journal writes it, settlement charges the budget and
 * takes the same cost off the lease row (settlement.ts), so the row always holds at least what the
 * process still needs. An idle lease gives back only its unused part (`granted - consumed`); what its finished
 * requests cost stays reserved until their records settle it, and the row is deleted once it reaches zero.
 *
 * An owner's first request, and any that comes more than `idleMs` after the previous one, reserves exactly; the
 * second within `idleMs` starts a lease, so an occasional caller never pays for taking and giving back a lease.
 *
 * Fairness: a lease takes 1/`share` of what remains, and only when that covers `minRequests` worst cases; below that
 * (a budget nearly spent) requests reserve exactly, one row each, as without leases. So each process's lease holds
 * at most 1/`share` of what remained when it was taken, and a nearly spent budget's last units are held in none. A lease is not used once its last renewal
 * is older than half its TTL (the database unreachable): the sweep may soon release it.
 */

export interface LeaseOptions {
  /** A lease takes 1/share of the owner's remaining budget (default 32). */
  share?: number;
  /** …and only when that covers this many worst-case requests (default 16). */
  minRequests?: number;
  /** Lease lifetime without renewal (default 60 s); renewed every third of it. */
  ttlMs?: number;
  /** An idle lease (nothing in flight) is given back after this long (default 1 s). */
  idleMs?: number;
  now?: () => number;
  onError?: (err: unknown, op: string) => void;
}

interface Lease {
  id: string;
  owner: Owner;
  granted: bigint;
  inflight: bigint;
  consumed: bigint;
  lastUsed: number;
  renewedAt: number;
  /** No longer admits (replaced, exhausted, or its row is gone); given back once nothing is in flight. */
  retired: boolean;
}

/** The leases a request was admitted on; `finish` with its real cost (0 when nothing was done), once. */
export interface LeaseTicket {
  readonly ids: string[];
  finish(costNanos: bigint): void;
}

const key = (o: Owner) => `${o.kind}:${o.id}`;

export type BudgetLeases = ReturnType<typeof createBudgetLeases>;

export function createBudgetLeases(pool: () => Promise<pg.Pool>, opts: LeaseOptions = {}) {
  const share = BigInt(opts.share ?? 32);
  const minRequests = BigInt(opts.minRequests ?? 16);
  const ttlMs = opts.ttlMs ?? 60_000;
  const idleMs = opts.idleMs ?? 1_000;
  const now = opts.now ?? Date.now;
  const onError = opts.onError ?? (() => undefined);
  /** The lease that admits, per owner. */
  const current = new Map<string, Lease>();
  /** Leases that no longer admit but still have requests in flight, or were not yet given back. */
  const retired = new Set<Lease>();
  const acquiring = new Map<string, Promise<void>>();
  /** Owners whose last acquisition granted nothing (budget nearly spent) or failed: not retried before this time. */
  const noLeaseUntil = new Map<string, number>();
  /** When each owner without a lease last asked: a lease is worth taking only for an owner seen twice within idleMs. */
  const seen = new Map<string, number>();
  let renewing: Promise<void> | undefined;
  let closed = false;

  const available = (l: Lease) => l.granted - l.inflight - l.consumed;
  const usable = (l: Lease | undefined, t: number): l is Lease =>
    l !== undefined && !l.retired && t - l.renewedAt < ttlMs / 2;

  function retire(l: Lease): void {
    l.retired = true;
    if (current.get(key(l.owner)) === l) current.delete(key(l.owner));
    retired.add(l);
  }

  async function acquire(owner: Owner, worst: bigint): Promise<void> {
    const id = uuidv7();
    const t = now();
    const { rows } = await (await pool()).query<{ amount: string }>({
      name: "passerelle_budget_lease",
      text: `with b as materialized (
               select amount_nanos - spent_nanos - reserved_nanos as remaining from budget
                where owner_kind = $1 and owner_id = $2 for update),
             g as (select remaining / $3::bigint as amount from b where remaining / $3::bigint >= $4::bigint),
             u as (update budget set reserved_nanos = reserved_nanos + g.amount, updated_at = now() from g
                    where owner_kind = $1 and owner_id = $2 returning g.amount),
             i as (insert into budget_reservation (usage_id, owner_kind, owner_id, amount_nanos, expires_at)
                   select $5::uuid, $1, $2, amount, $6::timestamptz from u)
        select amount::text from u`,
      values: [owner.kind, owner.id, share.toString(), (worst * minRequests).toString(), id, new Date(t + ttlMs)],
    });
    const amount = rows[0]?.amount;
    if (amount === undefined) noLeaseUntil.set(key(owner), now() + idleMs);
    if (amount === undefined || closed) {
      if (amount !== undefined) await giveBack({ id, granted: BigInt(amount), consumed: 0n });
      return;
    }
    const old = current.get(key(owner));
    if (old) retire(old);
    current.set(key(owner), {
      id,
      owner,
      granted: BigInt(amount),
      inflight: 0n,
      consumed: 0n,
      lastUsed: t,
      renewedAt: t,
      retired: false,
    });
  }

  /** Gives back a lease's unused part; its row keeps what its finished requests cost until they settle. */
  async function giveBack(l: Pick<Lease, "id" | "granted" | "consumed">): Promise<void> {
    const unused = l.granted - l.consumed;
    if (unused <= 0n) return;
    await (await pool()).query(
      `with v as (select $1::uuid as lease_id, $2::bigint as charge), ${TAKE_OFF_LEASES}
       update budget b set reserved_nanos = greatest(0, b.reserved_nanos - r.amount), updated_at = now()
         from r where b.owner_kind = r.owner_kind and b.owner_id = r.owner_id`,
      [l.id, unused.toString()],
    );
  }

  /** Renews live leases, gives back idle and retired ones with nothing in flight. */
  async function maintain(): Promise<void> {
    const t = now();
    for (const [k, until] of noLeaseUntil) if (until <= t) noLeaseUntil.delete(k);
    for (const [k, at] of seen) if (t - at >= idleMs) seen.delete(k);
    for (const l of current.values()) if (l.inflight === 0n && t - l.lastUsed >= idleMs) retire(l);
    for (const l of [...retired]) {
      if (l.inflight !== 0n) continue;
      try {
        await giveBack(l);
        // Held (and counted by held()) until given back, not while the statement runs.
        retired.delete(l);
      } catch (err) {
        // Kept for the next pass; the sweep releases it after its TTL if the database stays away.
        onError(err, "give back");
      }
    }
    const live = [...current.values(), ...retired];
    if (live.length === 0 || closed) return;
    if (t - Math.min(...live.map((l) => l.renewedAt)) < ttlMs / 3) return;
    const { rows } = await (await pool()).query<{ usage_id: string }>(
      "update budget_reservation set expires_at = $2 where usage_id = any($1::uuid[]) returning usage_id",
      [live.map((l) => l.id), new Date(t + ttlMs)],
    );
    const found = new Set(rows.map((r) => r.usage_id));
    for (const l of live) {
      l.renewedAt = t;
      // Settled down to zero (its requests cost all of it) or swept: it admits no more.
      if (!found.has(l.id) && !l.retired) retire(l);
    }
  }

  const timer = setInterval(
    () => {
      if (renewing || closed) return;
      renewing = maintain()
        .catch((err: unknown) => onError(err, "renew"))
        .finally(() => {
          renewing = undefined;
        });
    },
    Math.min(idleMs, ttlMs / 3),
  );
  timer.unref();

  return {
    /**
     * Admits `worst` on the current lease of every owner, in memory, or returns undefined (then the caller reserves
     * exactly) and starts acquiring a lease for the owners that lack one, for the requests that follow.
     */
    take(owners: readonly Owner[], worst: bigint): LeaseTicket | undefined {
      if (closed) return undefined;
      const t = now();
      const leases: Lease[] = [];
      for (const o of owners) {
        const l = current.get(key(o));
        if (usable(l, t) && available(l) >= worst) {
          leases.push(l);
          continue;
        }
        // An owner's occasional request reserves exactly: a lease would cost a query to take and one to give back.
        const last = seen.get(key(o));
        seen.set(key(o), t);
        if (last === undefined || t - last >= idleMs) continue;
        if (!acquiring.has(key(o)) && (noLeaseUntil.get(key(o)) ?? 0) <= t) {
          noLeaseUntil.delete(key(o));
          const p = acquire(o, worst)
            .catch((err: unknown) => {
              noLeaseUntil.set(key(o), now() + idleMs);
              onError(err, "acquire");
            })
            .finally(() => acquiring.delete(key(o)));
          acquiring.set(key(o), p);
        }
      }
      if (leases.length !== owners.length) return undefined;
      for (const l of leases) {
        l.inflight += worst;
        l.lastUsed = t;
      }
      let done = false;
      return {
        ids: leases.map((l) => l.id),
        finish(costNanos) {
          if (done) return;
          done = true;
          for (const l of leases) {
            l.inflight -= worst;
            l.consumed += costNanos;
            l.lastUsed = now();
          }
        },
      };
    },

    /** Forgets an owner's lease (its budget was changed or deleted): the next request leases anew. */
    forget(owner: Owner): void {
      const l = current.get(key(owner));
      if (l) retire(l);
    },

    /** Gives every lease back (after the requests finished); the rest is left to the sweep. */
    async close(): Promise<void> {
      closed = true;
      clearInterval(timer);
      await renewing;
      await Promise.all(acquiring.values());
      for (const l of [...current.values()]) retire(l);
      for (const l of [...retired]) {
        await giveBack(l).catch((err: unknown) => onError(err, "give back"));
        retired.delete(l);
      }
    },

    /** For tests and metrics: leases held, as (owner kind, granted, in flight, consumed). */
    held(): { kind: OwnerKind; granted: bigint; inflight: bigint; consumed: bigint }[] {
      return [...current.values(), ...retired].map((l) => ({
        kind: l.owner.kind,
        granted: l.granted,
        inflight: l.inflight,
        consumed: l.consumed,
      }));
    },
  };
}
