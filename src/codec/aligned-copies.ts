/** Floats per slab: 256 KiB, about 80 LeNet records. */
const SLAB_FLOATS = 65_536;

/**
 * Aligned copies of float32 values carved one after the other out of slabs: one allocation per slab
 * instead of one zeroed ArrayBuffer per record (a quarter of the decoder's time went there). A
 * record's array keeps its slab alive.
 *
 * Without `reset`, a full slab is left to the records cut from it and a new one of 256 KiB is
 * taken. An owner that knows when every array handed out is dead calls `reset`: carving starts
 * again at the beginning of the newest slab, which is first made as large as everything copied
 * since the last reset. So a daemon that resets after each chunk copies into the same memory chunk
 * after chunk, instead of taking a fresh 256 KiB for every 80 records (each fresh ArrayBuffer
 * brings V8's next external-memory garbage collection closer, and its pages must be faulted in).
 */
export class AlignedCopies {
  private floats = new Float32Array(0);
  private bytes = new Uint8Array(0);
  private used = 0;
  /** Floats copied since the last reset. */
  private copied = 0;

  copy(value: Uint8Array, dim: number): Float32Array {
    if (this.used + dim > this.floats.length) this.newSlab(Math.max(SLAB_FLOATS, dim));
    this.bytes.set(value, this.used * 4);
    const x = this.floats.subarray(this.used, this.used + dim);
    this.used += dim;
    this.copied += dim;
    return x;
  }

  /** Carves from the start again; no array handed out before may be in use any more. */
  reset(): void {
    if (this.copied > this.floats.length) this.newSlab(this.copied);
    this.used = 0;
    this.copied = 0;
  }

  private newSlab(floats: number): void {
    this.floats = new Float32Array(floats);
    this.bytes = new Uint8Array(this.floats.buffer);
    this.used = 0;
  }
}
