// Carbon intensity of electricity per hosting zone, for the carbon estimate (see docs/carbon.md).
//
// Values are the `gwp` column of `ecologits/data/electricity_mixes.json` in mlco2/ecologits (0.9–0.10 releases,
// file commit a3b5e3b18c256a6f40292600576f70527c811c13), which EcoLogits takes from Our World in Data's carbon
// intensity of electricity generation (national yearly averages). Only a subset of the ~200 EcoLogits
// zones is kept: the 27 EU member states, the rest of the EEA, Switzerland, the UK and large hosting countries.

/** World average carbon intensity of electricity, kgCO2eq/kWh (EcoLogits zone `WOR`). */
export const WORLD_KGCO2EQ_PER_KWH = 0.47301;

/**
 * kgCO2eq per kWh (global warming potential) by ISO 3166-1 alpha-3 zone; `WOR` is the world average and `EEE` the European
 * Economic Area average.
 */
export const ELECTRICITY_MIX_KGCO2EQ_PER_KWH: Readonly<Record<string, number>> = Object.freeze({
  // World and Europe-wide averages.
  WOR: WORLD_KGCO2EQ_PER_KWH,
  EEE: 0.28417,
  // The 27 EU member states.
  AUT: 0.10262,
  BEL: 0.11758,
  BGR: 0.26421,
  HRV: 0.17448,
  CYP: 0.51224,
  CZE: 0.41386,
  DNK: 0.1433,
  EST: 0.34102,
  FIN: 0.07225,
  FRA: 0.04418,
  DEU: 0.34414,
  GRC: 0.31976,
  HUN: 0.18282,
  IRL: 0.2797,
  ITA: 0.28753,
  LVA: 0.13622,
  LTU: 0.13934,
  LUX: 0.13462,
  MLT: 0.48416,
  NLD: 0.25331,
  POL: 0.61498,
  PRT: 0.11229,
  ROU: 0.24555,
  SVK: 0.09649,
  SVN: 0.22765,
  ESP: 0.14615,
  SWE: 0.03582,
  // Rest of Europe.
  NOR: 0.03075,
  ISL: 0.02833,
  CHE: 0.0366,
  GBR: 0.21089,
  // Other large hosting countries.
  USA: 0.38355,
  CAN: 0.17481,
  CHN: 0.55955,
  IND: 0.70832,
  JPN: 0.48232,
  KOR: 0.41427,
  AUS: 0.55159,
  BRA: 0.10321,
  SGP: 0.49874,
});

/** The zone used when a provider's zone is not in the table: the world average. */
export const WORLD_ZONE = "WOR";

/** The electricity mix chosen for a zone. */
export interface ElectricityMix {
  /** The zone whose intensity is used (the requested one, or `WOR`). */
  zone: string;
  /** Carbon intensity in kgCO2eq/kWh. */
  kgCO2eqPerKWh: number;
  /** True when the requested zone was unknown and the world average was used instead. */
  fallback: boolean;
}

/** Looks up a zone's carbon intensity (case-insensitive); unknown zones fall back to the world average. */
export function electricityMixFor(zone: string): ElectricityMix {
  const code = zone.trim().toUpperCase();
  const intensity = Object.hasOwn(ELECTRICITY_MIX_KGCO2EQ_PER_KWH, code)
    ? ELECTRICITY_MIX_KGCO2EQ_PER_KWH[code]
    : undefined;
  if (intensity !== undefined) return { zone: code, kgCO2eqPerKWh: intensity, fallback: false };
  return { zone: WORLD_ZONE, kgCO2eqPerKWh: WORLD_KGCO2EQ_PER_KWH, fallback: true };
}
