import type { JsonObject } from "@bufbuild/protobuf";
import type { CarbonFootprint } from "../../gen/passerelle/governance/v1/resources_pb.js";

/** The gateway's additions to OpenAI's usage: `cost` and `carbon` ({kWh:{min,max}, kgCO2eq:{min,max}}). */
export function impactJson(u: { cost?: number; carbon?: CarbonFootprint }): JsonObject {
  const out: JsonObject = {};
  if (u.cost !== undefined) out.cost = u.cost;
  if (u.carbon) {
    out.carbon = {
      kWh: { min: u.carbon.kwh?.min ?? 0, max: u.carbon.kwh?.max ?? 0 },
      kgCO2eq: { min: u.carbon.kgco2eq?.min ?? 0, max: u.carbon.kgco2eq?.max ?? 0 },
    };
  }
  return out;
}
