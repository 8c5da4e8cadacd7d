/**
 * One request at a time per model: a first-in first-out line. A model generates one token
 * after another with all of the machine's cores, so two requests at once would only make both
 * slower (and double the memory of the key/value caches); the second one waits, and is told
 * how many are ahead of it while it does. A request whose client went away leaves the line.
 */

export interface QueueTicket {
  /** resolves when it is this request's turn (rejects with QueueClosedError when the server stops) */
  turn: Promise<void>;
  /** leave the line (a client that disconnected) or, once running, hand the turn on; safe to call twice */
  release(): void;
  /** whether its turn has come (set at once, before `turn`'s callbacks run) */
  readonly started: boolean;
}

/** The server is stopping: requests still waiting are not served. */
export class QueueClosedError extends Error {}

interface Waiter {
  start: () => void;
  fail: (err: Error) => void;
  onAhead?: (ahead: number) => void;
}

export class RequestQueue {
  private running: Waiter | null = null;
  private waiting: Waiter[] = [];
  private closed = false;

  /** How many requests are waiting (not counting the one running). */
  get waitingCount(): number {
    return this.waiting.length;
  }

  /** Whether a request is being served now. */
  get busy(): boolean {
    return this.running !== null;
  }

  /**
   * Join the line. `onAhead` hears how many requests are ahead (the running one included)
   * when the request has to wait, and again each time that number falls.
   */
  enter(onAhead?: (ahead: number) => void): QueueTicket {
    let waiter!: Waiter;
    let done = false;
    let started = false;
    const turn = new Promise<void>((start, fail) => (waiter = { start: () => ((started = true), start()), fail, onAhead }));
    turn.catch(() => undefined); // a ticket released before its turn is never awaited
    const release = () => {
      if (done) return;
      done = true;
      if (this.running === waiter) {
        this.running = null;
        this.next();
      } else {
        this.waiting = this.waiting.filter((w) => w !== waiter);
        waiter.fail(new QueueClosedError("left the queue"));
        this.tellPositions();
      }
    };
    if (this.closed) waiter.fail(new QueueClosedError("the server is stopping"));
    else if (this.running === null) {
      this.running = waiter;
      waiter.start();
    } else {
      this.waiting.push(waiter);
      onAhead?.(this.waiting.length);
    }
    return {
      turn,
      release,
      get started() {
        return started;
      },
    };
  }

  /** Refuse everything still waiting, and every later request. The running one finishes (or is stopped by its owner). */
  close(): void {
    this.closed = true;
    const waiting = this.waiting;
    this.waiting = [];
    for (const w of waiting) w.fail(new QueueClosedError("the server is stopping"));
  }

  private next(): void {
    const w = this.waiting.shift();
    if (w === undefined) return;
    this.running = w;
    w.start();
    this.tellPositions();
  }

  private tellPositions(): void {
    this.waiting.forEach((w, k) => w.onAhead?.(k + 1));
  }
}
