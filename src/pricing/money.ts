/**
 * Exact money: amounts are BigInt pico-USD (1e-12 USD), every published per-token price is a whole
 * number of them. Decimal text is read and written digit by digit, so no float ever holds money.
 */

export const PICO_PER_USD = 1_000_000_000_000n;
const PICO_PLACES = 12;

/** A decimal number held exactly as mantissa × 10^exponent. */
export interface Decimal {
  readonly mantissa: bigint;
  readonly exponent: number;
}

// The exponent form is accepted because String(number) yields it for small values (1e-7).
const DECIMAL = /^([+-]?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d{1,3}))?$/;

/** Reads a decimal numeral exactly; undefined when the text is not one. */
export function parseDecimal(text: string): Decimal | undefined {
  const m = DECIMAL.exec(text);
  if (!m) return undefined;
  const [, sign = "", whole = "", fraction = "", exponent = "0"] = m;
  const digits = BigInt(whole + fraction);
  return { mantissa: sign === "-" ? -digits : digits, exponent: Number(exponent) - fraction.length };
}

/** The decimal × 10^places as an integer, or undefined when that is not whole: scaling never rounds. */
export function scaleExact(d: Decimal, places: number): bigint | undefined {
  const shift = d.exponent + places;
  if (shift >= 0) return d.mantissa * 10n ** BigInt(shift);
  const divisor = 10n ** BigInt(-shift);
  return d.mantissa % divisor === 0n ? d.mantissa / divisor : undefined;
}

/**
 * Parses a decimal USD amount ("0.025", "-3", "1e-7") into pico-USD. Returns an Error value rather
 * than throwing, so request validators can turn it into a field error.
 */
export function decimalUsdToPico(text: string): bigint | Error {
  const d = parseDecimal(text.trim());
  if (!d) return new Error(`"${text}" is not a decimal amount of USD`);
  const pico = scaleExact(d, PICO_PLACES);
  return pico ?? new Error(`"${text}" is finer than a pico-dollar (more than 12 decimal places)`);
}

/** Exact decimal USD text for JSON: 25_000_000_000n → "0.025", 0n → "0", no trailing zeros. */
export function picoToDecimalString(pico: bigint): string {
  const sign = pico < 0n ? "-" : "";
  const abs = pico < 0n ? -pico : pico;
  const fraction = (abs % PICO_PER_USD).toString().padStart(PICO_PLACES, "0").replace(/0+$/, "");
  return `${sign}${abs / PICO_PER_USD}${fraction ? `.${fraction}` : ""}`;
}

/** Display form, "$1,234.57" / "-$0.50": rounded half away from zero to `decimals` places. */
export function formatUsd(pico: bigint, decimals = 2): string {
  if (!Number.isInteger(decimals) || decimals < 0 || decimals > PICO_PLACES)
    throw new RangeError(`decimals must be a whole number from 0 to ${PICO_PLACES}, got ${decimals}`);
  const abs = pico < 0n ? -pico : pico;
  const unit = 10n ** BigInt(PICO_PLACES - decimals);
  // Rounding the magnitude half up and applying the sign afterwards is half away from zero.
  const rounded = (abs + unit / 2n) / unit;
  const places = 10n ** BigInt(decimals);
  const whole = (rounded / places).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  const fraction = decimals > 0 ? `.${(rounded % places).toString().padStart(decimals, "0")}` : "";
  // An amount that rounds to zero reads "$0.00", not "-$0.00".
  const sign = pico < 0n && rounded > 0n ? "-" : "";
  return `${sign}$${whole}${fraction}`;
}

/** "+12.3 %" between two exact amounts, truncated to tenths; "new" when there was nothing before. */
export function changeText(current: bigint, previous: bigint): string {
  if (previous === 0n) return current === 0n ? "no change" : "new";
  const tenths = ((current - previous) * 1000n) / previous;
  const sign = tenths > 0n ? "+" : tenths < 0n ? "−" : "±";
  const abs = tenths < 0n ? -tenths : tenths;
  return `${sign}${abs / 10n}.${abs % 10n} %`;
}
