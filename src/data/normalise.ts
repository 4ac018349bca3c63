/** Per-channel standardisation, (x − mean) / std, as torchvision's Normalize applies it. */
export interface PixelStats {
  readonly mean: number;
  readonly std: number;
}

/** MNIST statistics on [0, 1] pixels (the values every MNIST benchmark uses). */
export const MNIST_STATS: PixelStats = { mean: 0.1307, std: 0.3081 };

/** Fashion-MNIST statistics on [0, 1] pixels. */
export const FASHION_STATS: PixelStats = { mean: 0.286, std: 0.353 };

/** The normalised value of a pixel whose intensity is `unit` in [0, 1]. */
export function normalisePixel(unit: number, stats: PixelStats): number {
  return (unit - stats.mean) / stats.std;
}

/** Normalised float for each of the 256 uint8 intensities (byte / 255 first). */
export function byteLookupTable(stats: PixelStats): Float32Array {
  const table = new Float32Array(256);
  for (let byte = 0; byte < 256; byte++) table[byte] = normalisePixel(byte / 255, stats);
  return table;
}
