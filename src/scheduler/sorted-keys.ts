/**
 * An ordered multiset of instance slots keyed by a remaining resource amount, for binpack:
 * "the instance with the least remaining memory that still fits" is the first slot at or after
 * lowerBound(need). Keys pack (amount, slot) into one double, `amount * 2^20 + slot`, so keys
 * are unique and compare with `<`. Amounts are whole numbers (CPU units, MiB) and slots stay
 * below 2^20, which keeps keys under 2^53.
 *
 * Storage is a list of sorted blocks of at most BLOCK keys: an update touches one block
 * (binary search + splice of <= BLOCK elements) instead of shifting a 100,000-element array.
 */
export const SLOT_SPACE = 1 << 20;
const BLOCK = 256;

export function sortKey(amount: number, slot: number): number {
  return Math.floor(amount) * SLOT_SPACE + slot;
}
export function slotOfKey(key: number): number {
  return key - Math.floor(key / SLOT_SPACE) * SLOT_SPACE;
}
export function amountOfKey(key: number): number {
  return Math.floor(key / SLOT_SPACE);
}

function lowerBound(a: number[], key: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class SortedKeys {
  private blocks: number[][] = [];
  size = 0;

  /** Builds from unsorted keys in O(n log n). */
  static from(keys: number[]): SortedKeys {
    const s = new SortedKeys();
    keys.sort((a, b) => a - b);
    for (let i = 0; i < keys.length; i += BLOCK) s.blocks.push(keys.slice(i, i + BLOCK));
    s.size = keys.length;
    return s;
  }

  /** Index of the first block whose last key is >= key (blocks.length if none). */
  private blockFor(key: number): number {
    let lo = 0;
    let hi = this.blocks.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const b = this.blocks[mid]!;
      if (b[b.length - 1]! < key) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  insert(key: number): void {
    this.size++;
    if (this.blocks.length === 0) {
      this.blocks.push([key]);
      return;
    }
    let b = this.blockFor(key);
    if (b === this.blocks.length) b--;
    const block = this.blocks[b]!;
    block.splice(lowerBound(block, key), 0, key);
    if (block.length > BLOCK * 2) this.blocks.splice(b + 1, 0, block.splice(BLOCK));
  }

  remove(key: number): boolean {
    const b = this.blockFor(key);
    const block = this.blocks[b];
    if (!block) return false;
    const i = lowerBound(block, key);
    if (block[i] !== key) return false;
    block.splice(i, 1);
    this.size--;
    if (block.length === 0) this.blocks.splice(b, 1);
    return true;
  }

  /** A cursor at the first key >= key. */
  cursor(key: number): KeyCursor {
    const b = this.blockFor(key);
    const block = this.blocks[b];
    return new KeyCursor(this.blocks, b, block ? lowerBound(block, key) : 0);
  }

  /** Number of keys in [lo, hi). */
  countBetween(lo: number, hi: number): number {
    return this.rank(hi) - this.rank(lo);
  }

  /** Number of keys < key. */
  rank(key: number): number {
    const b = this.blockFor(key);
    let n = 0;
    for (let i = 0; i < b; i++) n += this.blocks[i]!.length;
    const block = this.blocks[b];
    return block ? n + lowerBound(block, key) : n;
  }
}

export class KeyCursor {
  constructor(
    private readonly blocks: number[][],
    private b: number,
    private i: number,
  ) {
    this.normalize();
  }
  private normalize(): void {
    while (this.b < this.blocks.length && this.i >= this.blocks[this.b]!.length) {
      this.i -= this.blocks[this.b]!.length;
      this.b++;
    }
  }
  /** The key under the cursor, or Infinity at the end. */
  peek(): number {
    return this.b < this.blocks.length ? this.blocks[this.b]![this.i]! : Infinity;
  }
  /** Slot under the cursor, then advance; -1 at the end. */
  next(): number {
    if (this.b >= this.blocks.length) return -1;
    const k = this.blocks[this.b]![this.i]!;
    this.i++;
    if (this.i >= this.blocks[this.b]!.length) {
      this.b++;
      this.i = 0;
    }
    return slotOfKey(k);
  }
  peekValue(): number {
    const k = this.peek();
    return k === Infinity ? Infinity : amountOfKey(k);
  }
  skip(n: number): void {
    this.i += n;
    this.normalize();
  }
}
