/**
 * Source-index maps for rotating a square image the way PIL's `Image.rotate(angle)` does with its
 * defaults (nearest neighbour, centre (side/2, side/2) in pixel-edge coordinates = (13.5, 13.5) in
 * pixel-centre coordinates for 28×28, no expand, fill outside): counter-clockwise, on screen
 * (rows grow downwards). The arithmetic follows Pillow step by step, including its rounding of
 * cos/sin to 15 decimals and libImaging's 16.16 fixed-point sampling at pixel centres, so the map
 * matches Pillow pixel for pixel (checked against Pillow 9.4 for every multiple of 10°).
 */

/** Python's round(x, 15). */
function roundTo15Decimals(value: number): number {
  return Number(value.toFixed(15));
}

/** libImaging's FIX: a double as 16.16 fixed point, rounded half up. */
function toFixedPoint(value: number): number {
  return Math.floor(value * 65536 + 0.5);
}

/** `degrees` reduced to [0, 360), as Python's `angle % 360.0`. */
export function normaliseDegrees(degrees: number): number {
  const reduced = degrees % 360;
  return reduced < 0 ? reduced + 360 : reduced;
}

/**
 * For a side×side image rotated by `degrees` counter-clockwise: map[r·side + c] is the index of the
 * source pixel that lands at row r, column c, or −1 where that point comes from outside the image
 * (to be filled with the background).
 */
export function rotationSourceMap(side: number, degrees: number): Int32Array {
  const theta = -(normaliseDegrees(degrees) * (Math.PI / 180));
  // Pillow's inverse affine matrix [a b c; d e f]: output (x, y) → input, pixel-edge coordinates.
  const a = roundTo15Decimals(Math.cos(theta));
  const b = roundTo15Decimals(Math.sin(theta));
  const d = roundTo15Decimals(-Math.sin(theta));
  const e = roundTo15Decimals(Math.cos(theta));
  const centre = side / 2;
  const c = a * -centre + b * -centre + 0 + centre;
  const f = d * -centre + e * -centre + 0 + centre;
  const stepX = toFixedPoint(a);
  const stepRowX = toFixedPoint(b);
  const stepY = toFixedPoint(d);
  const stepRowY = toFixedPoint(e);
  let rowX = toFixedPoint(c + a * 0.5 + b * 0.5);
  let rowY = toFixedPoint(f + d * 0.5 + e * 0.5);
  const map = new Int32Array(side * side);
  for (let y = 0; y < side; y++) {
    let xx = rowX;
    let yy = rowY;
    for (let x = 0; x < side; x++) {
      const xin = xx >> 16;
      const yin = yy >> 16;
      map[y * side + x] = xin >= 0 && xin < side && yin >= 0 && yin < side ? yin * side + xin : -1;
      xx += stepX;
      yy += stepY;
    }
    rowX += stepRowX;
    rowY += stepRowY;
  }
  return map;
}
