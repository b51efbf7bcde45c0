import { type ReportSettings, ReportSettingsSchema } from '@llem/domain';
import { ReportError } from './errors';

/**
 * Carbon intensity and electricity price, as the report uses them. Each figure is `null` when it
 * was not given: llem has no default intensity or price, so without them the carbon and cost
 * columns are simply absent.
 */
export interface EnergyPrices {
  /** Grid carbon intensity, gCO2e per kWh. */
  carbonGPerKwh: number | null;
  /** Electricity price per kWh, in `currency`. */
  pricePerKwh: number | null;
  /** What the price is in (e.g. `EUR`); set whenever `pricePerKwh` is. */
  currency: string | null;
}

/** Joules in a kilowatt-hour. */
export const J_PER_KWH = 3_600_000;

/** Tokens in the "per 1M tokens" figures. */
const PER_TOKENS = 1_000_000;

/** The flags' names, for messages about them (`llem report`, `llem results show`). */
const FLAG: Record<keyof ReportSettings, string> = {
  carbon_g_per_kwh: '--carbon-g-per-kwh',
  price_per_kwh: '--price-per-kwh',
  currency: '--currency',
};

/**
 * The prices a report uses: the study's `report` section (stored with its plan) with `overrides`
 * (the command line's flags) laid over it field by field. `null` when neither gives a carbon
 * intensity nor a price. A price needs its currency, wherever each came from; a bad value throws
 * `ReportError` (`INVALID_OPTION`) naming the flag or field and what is allowed.
 *
 * @example
 * resolveEnergyPrices({ carbon_g_per_kwh: 400 }, { price_per_kwh: 0.3, currency: 'EUR' });
 * // { carbonGPerKwh: 400, pricePerKwh: 0.3, currency: 'EUR' }
 */
export function resolveEnergyPrices(
  study: ReportSettings | null | undefined,
  overrides: Partial<ReportSettings> = {},
): EnergyPrices | null {
  const given = Object.fromEntries(
    Object.entries(overrides).filter(([, value]) => value !== undefined),
  ) as Partial<ReportSettings>;
  const merged = { ...study, ...given };
  const parsed = ReportSettingsSchema.safeParse(merged);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = String(issue.path[0] ?? 'currency') as keyof ReportSettings;
    const where = field in given ? FLAG[field] : `report.${field} (in the study file)`;
    const message =
      field === 'currency' && merged.currency === undefined
        ? `a price per kWh needs its currency: add ${FLAG.currency} (e.g. ${FLAG.currency} EUR) or report.currency in the study file; llem invents none`
        : `${where}: ${issue.message}`;
    throw new ReportError('INVALID_OPTION', message, { cause: parsed.error });
  }
  const { carbon_g_per_kwh, price_per_kwh, currency } = parsed.data;
  if (carbon_g_per_kwh === undefined && price_per_kwh === undefined) return null;
  return {
    carbonGPerKwh: carbon_g_per_kwh ?? null,
    pricePerKwh: price_per_kwh ?? null,
    currency: price_per_kwh === undefined ? null : (currency ?? null),
  };
}

/**
 * Grams of CO2e per 1M output tokens from joules per token: J/token × 10⁶ ÷ 3.6 × 10⁶ J/kWh × g/kWh.
 * `null` without an intensity or an energy figure.
 *
 * @example
 * carbonGPer1MTokens(0.36, { carbonGPerKwh: 400, pricePerKwh: null, currency: null }); // 40
 */
export function carbonGPer1MTokens(
  energyPerTokenJ: number | null,
  prices: EnergyPrices | null,
): number | null {
  if (energyPerTokenJ === null || prices?.carbonGPerKwh == null) return null;
  return ((energyPerTokenJ * PER_TOKENS) / J_PER_KWH) * prices.carbonGPerKwh;
}

/**
 * Cost of the energy of 1M output tokens, in the prices' currency. `null` without a price or an
 * energy figure.
 *
 * @example
 * costPer1MTokens(0.36, { carbonGPerKwh: null, pricePerKwh: 0.25, currency: 'EUR' }); // 0.025
 */
export function costPer1MTokens(
  energyPerTokenJ: number | null,
  prices: EnergyPrices | null,
): number | null {
  if (energyPerTokenJ === null || prices?.pricePerKwh == null) return null;
  return ((energyPerTokenJ * PER_TOKENS) / J_PER_KWH) * prices.pricePerKwh;
}

/**
 * One line saying where the figures come from, for under a table: the intensity and the price.
 *
 * @example
 * describePrices({ carbonGPerKwh: 400, pricePerKwh: 0.25, currency: 'EUR' });
 * // 'Carbon at 400 gCO2e/kWh; cost at 0.25 EUR/kWh (energy measured in the window; idle, cooling and embodied emissions not included).'
 */
export function describePrices(prices: EnergyPrices): string {
  const parts = [
    prices.carbonGPerKwh !== null ? `carbon at ${prices.carbonGPerKwh} gCO2e/kWh` : null,
    prices.pricePerKwh !== null ? `cost at ${prices.pricePerKwh} ${prices.currency}/kWh` : null,
  ].filter((p): p is string => p !== null);
  const text = parts.join('; ');
  return `${text.charAt(0).toUpperCase()}${text.slice(1)} (the window's measured energy only: no PUE, idle time or embodied emissions).`;
}
