/**
 * Number formatting shared by the HTML report and terminal tables: 4 significant digits,
 * no exponent for everyday magnitudes, an em dash for "not measured".
 *
 * @example
 * formatNumber(0.0123456); // '0.01235'
 * formatNumber(null);      // '—'
 */
export function formatNumber(value: number | null | undefined, digits = 4): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '—';
  if (value === 0) return '0';
  const abs = Math.abs(value);
  if (abs >= 1e-4 && abs < 1e9) {
    const fixed = Number(value.toPrecision(digits));
    return abs >= 1000
      ? fixed.toLocaleString('en-US', { maximumFractionDigits: 1 })
      : String(fixed);
  }
  return value.toExponential(digits - 1);
}

/** `[low, high]` or an em dash. */
export function formatInterval(ci: { low: number; high: number } | null | undefined): string {
  return ci ? `[${formatNumber(ci.low)}, ${formatNumber(ci.high)}]` : '—';
}

/** Escape text for HTML element content and double-quoted attributes. */
export function escapeHtml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}
