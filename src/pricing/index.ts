export {
  type PriceCatalog,
  type CatalogProblem,
  type CatalogSource,
  createCatalog,
  loadCatalog,
  type ResolvedPrice,
  type TierPrices,
} from "./catalog.ts";
export {
  applyRatio,
  costAt,
  type PriceResult,
  type PricingInput,
  priceEvent,
  type Ratio,
  SERVICE_TIER_MULTIPLIERS,
  tokensCost,
} from "./cost.ts";
export { decimalUsdToPico, formatUsd, PICO_PER_USD, picoToDecimalString } from "./money.ts";
export { parseOverrides, type PriceOverride } from "./overrides.ts";
export { type PriceSet, type Rate, type TieredRate } from "./rates.ts";
