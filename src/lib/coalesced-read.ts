/**
 * Shares one read among the callers that want a fresh one at the same time, without ever
 * answering a caller with a read that started before it asked. A caller arriving while no read
 * runs starts one; callers arriving while one runs all wait for the next, which starts when the
 * current one ends. N concurrent callers cost at most two reads instead of N.
 *
 * This is what a read barrier needs (each request must see every write acknowledged before it
 * arrived, so it cannot take a read already under way, which may have been served before those
 * writes): etcd's own ReadIndex batches linearizable reads the same way.
 *
 *   t:     |--- read 1 ---|--- read 2 ---|
 *   a asks ^ (starts 1)                       a gets read 1
 *   b, c ask    ^   ^      (wait; 2 starts)   b, c get read 2
 */
export function coalescedRead<T>(read: () => Promise<T>): () => Promise<T> {
  let current: Promise<T> | undefined;
  let next: Promise<T> | undefined;
  const start = (): Promise<T> => {
    const p: Promise<T> = read().finally(() => {
      if (current === p) current = undefined;
    });
    current = p;
    return p;
  };
  return () => {
    if (!current) return start();
    if (!next) {
      next = current
        .catch(() => undefined)
        .then(() => {
          next = undefined;
          return start();
        });
    }
    return next;
  };
}
