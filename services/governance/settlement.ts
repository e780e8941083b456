/**
 * Budget settlement, in the statement that writes a batch of usage records (usage-store writeBatch): each new
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

/**
 * Common table expressions that settle the records of `fresh(id, user_id, organization_id, cost_nanos)` — the
 * rows a batch just inserted, as an `insert … returning` — given two parallel uuid arrays pairing a record's id
 * with each lease it was admitted on: the cost of each record comes off its leases' rows, its own reservation row
 * is deleted, and both are released from its owners' budgets, to which the cost is charged. A charge beyond the
 * granted amount (a cost above its reservation, or no reservation at all) is clamped: a budget never goes negative,
 * and the usage record keeps the true cost. Reservation rows are locked first (lease rows
 * in id order), budget rows last, in (owner_kind, owner_id) order, as every other statement on them does. The
 * reservation rows the lease and own-row expressions touch are disjoint (a lease row's id is never a record's), which
 * is what lets them share one statement. `leaseUsage` and `leases` are the placeholders of the two arrays.
 */
export function settleFresh(leaseUsage: string, leases: string): string {
  return `v as (select x.lease_id, sum(f.cost_nanos)::bigint as charge
                from unnest(${leaseUsage}::uuid[], ${leases}::uuid[]) x(usage_id, lease_id)
                join fresh f on f.id = x.usage_id group by x.lease_id),
  ${TAKE_OFF_LEASES},
  own as (delete from budget_reservation b using fresh f where b.usage_id = f.id
          returning b.owner_kind, b.owner_id, b.amount_nanos),
  t as (select owner_kind, owner_id, sum(charge)::bigint as charge, sum(release)::bigint as release
          from (select 'user'::text as owner_kind, user_id as owner_id, cost_nanos as charge, 0::bigint as release
                  from fresh
                union all
                select 'organization', organization_id, cost_nanos, 0 from fresh where organization_id is not null
                union all
                select owner_kind, owner_id, 0, amount from r
                union all
                select owner_kind, owner_id, 0, amount_nanos from own) x
         group by owner_kind, owner_id),
  l as materialized (select b.owner_kind, b.owner_id from budget b join t using (owner_kind, owner_id)
                      order by b.owner_kind, b.owner_id for update of b),
  u as (update budget b set spent_nanos = least(b.amount_nanos, b.spent_nanos + t.charge),
                            reserved_nanos = greatest(0, b.reserved_nanos - t.release), updated_at = now()
          from t join l using (owner_kind, owner_id)
         where b.owner_kind = t.owner_kind and b.owner_id = t.owner_id)`;
}
