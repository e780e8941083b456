import type pg from "pg";
import type { OwnerKind } from "./entities.js";

/**
 * Budget settlement, inside the transaction that writes a batch of usage records (usage-store writeBatch): each new
 * record's cost is charged to its owners' budgets, and what was reserved for it is released — its own reservation
 * row, or its share of the budget leases it was admitted on (budget-leases.ts). Budget rows are locked in
 * (owner_kind, owner_id) order, after the reservation rows, as every other statement on them does.
 */

/**
 * SQL common table expressions that take amounts off lease rows, given `v(lease_id, charge)`: each row loses at most
 * what it holds and is deleted at zero; `r` lists (owner_kind, owner_id, amount) of what was taken, which the
 * statement then releases from the budgets. Used by settlement and by a lease giving back its unused part.
 */
export const TAKE_OFF_LEASES = `r as materialized (select b.usage_id, b.owner_kind, b.owner_id, b.amount_nanos as held,
                                   least(b.amount_nanos, v.charge) as amount
                              from budget_reservation b join v on b.usage_id = v.lease_id
                             order by b.usage_id for update of b),
  d as (update budget_reservation b set amount_nanos = b.amount_nanos - r.amount from r
         where b.usage_id = r.usage_id and r.held > r.amount),
  z as (delete from budget_reservation b using r where b.usage_id = r.usage_id and r.held = r.amount)`;

/** Settles a batch of newly recorded usage inside the caller's transaction: charges budgets, frees reservations. */
export async function settleUsage(
  client: pg.PoolClient,
  records: { id: string; userId: string; organizationId: string | null; costNanos: bigint; leaseIds?: string[] }[],
): Promise<void> {
  if (records.length === 0) return;
  // Records admitted on leases (budget-leases.ts): their cost comes off the lease rows (deleted at zero) in lease id
  // order, and is released from the budgets' reserved amounts as it is charged to their spent amounts below.
  const leaseIds: string[] = [];
  const leaseCharges: string[] = [];
  for (const r of records) {
    for (const id of r.leaseIds ?? []) {
      leaseIds.push(id);
      leaseCharges.push(r.costNanos.toString());
    }
  }
  const fromLeases =
    leaseIds.length === 0
      ? []
      : (
          await client.query<{ owner_kind: OwnerKind; owner_id: string; amount_nanos: string }>(
            `with v as (select lease_id, sum(charge)::bigint as charge
                          from unnest($1::uuid[], $2::bigint[]) v(lease_id, charge) group by lease_id),
                  ${TAKE_OFF_LEASES}
             select owner_kind, owner_id, amount::text as amount_nanos from r`,
            [leaseIds, leaseCharges],
          )
        ).rows;
  const released = await client.query<{ owner_kind: OwnerKind; owner_id: string; amount_nanos: string }>(
    `delete from budget_reservation where usage_id = any($1::uuid[]) returning owner_kind, owner_id, amount_nanos`,
    [records.map((r) => r.id)],
  );
  const owners = new Map<string, { kind: OwnerKind; id: string; charge: bigint; release: bigint }>();
  const add = (kind: OwnerKind, id: string, charge: bigint, release: bigint) => {
    const key = `${kind}:${id}`;
    const o = owners.get(key) ?? { kind, id, charge: 0n, release: 0n };
    o.charge += charge;
    o.release += release;
    owners.set(key, o);
  };
  for (const r of records) {
    add("user", r.userId, r.costNanos, 0n);
    if (r.organizationId) add("organization", r.organizationId, r.costNanos, 0n);
  }
  for (const r of [...released.rows, ...fromLeases]) add(r.owner_kind, r.owner_id, 0n, BigInt(r.amount_nanos));
  const list = [...owners.values()];
  const params = [
    list.map((o) => o.kind),
    list.map((o) => o.id),
    list.map((o) => o.charge.toString()),
    list.map((o) => o.release.toString()),
  ];
  // A charge beyond the granted amount (a cost above its reservation, or no reservation at all) is clamped: a budget
  // never goes negative, and the usage record keeps the true cost.
  await client.query(
    `with v as (select * from unnest($1::text[], $2::uuid[], $3::bigint[], $4::bigint[]) v(owner_kind, owner_id, charge, release)),
          l as materialized (select b.owner_kind, b.owner_id from budget b join v using (owner_kind, owner_id)
                              order by b.owner_kind, b.owner_id for update of b)
     update budget b set spent_nanos = least(b.amount_nanos, b.spent_nanos + v.charge),
                         reserved_nanos = greatest(0, b.reserved_nanos - v.release), updated_at = now()
       from v join l using (owner_kind, owner_id)
      where b.owner_kind = v.owner_kind and b.owner_id = v.owner_id`,
    params,
  );
}
