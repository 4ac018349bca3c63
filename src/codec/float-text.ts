/** Text forms of float32 values for JSON records. */

/** The shortest decimal that reads back as the same float32 (what the record decoder does). */
export function float32Text(value: number): string {
  if (Number.isInteger(value)) return String(value);
  for (let digits = 1; digits < 9; digits++) {
    const text = value.toPrecision(digits);
    if (Math.fround(Number(text)) === value) return String(Number(text));
  }
  return String(value);
}
