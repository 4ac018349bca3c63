/** A fixed-capacity ring: pushing beyond capacity drops the oldest. */
export class Ring<T> {
  private readonly buffer: T[] = [];
  private start = 0;
  private readonly capacity: number;

  constructor(capacity: number) {
    this.capacity = Math.max(1, capacity);
  }

  push(item: T): void {
    if (this.buffer.length < this.capacity) this.buffer.push(item);
    else {
      this.buffer[this.start] = item;
      this.start = (this.start + 1) % this.capacity;
    }
  }

  items(): T[] {
    return [...this.buffer.slice(this.start), ...this.buffer.slice(0, this.start)];
  }
}
