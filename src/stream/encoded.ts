import { deltaFits, tickDelta } from '../shared/tick-delta';
import type { Tick } from '../shared/wire';
import type { DeltaMessage, PriceMessage } from './sink';

/**
 * A wire shape: one way a tick is encoded for the wire (an SSE frame of a kind and framing, a
 * Socket.IO packet, a WebSocket message, a REST body) or for the hub (its shared message). The
 * transport that frames the shape says how; the stream core keeps the result (`encoded`).
 */
export class WireShape<T> {
  private static shapes = 0;
  /** The shape's place among a tick's encodings. */
  readonly slot = WireShape.shapes++;

  constructor(
    readonly name: string,
    readonly encode: (tick: Tick) => T,
  ) {}
}

/**
 * The one cache of encodings: per tick, by shape. Weak keys, so an encoding lives exactly as long
 * as its tick is referenced (the history window, a pair's channel), never longer.
 */
const encodings = new WeakMap<Tick, unknown[]>();

/**
 * A tick in a wire shape, encoded once for every subscriber and request, as centrifuge's hub
 * encodes a publication once per protocol: fan-out to N subscribers serialises once, not N times.
 */
export function encoded<T>(tick: Tick, shape: WireShape<T>): T {
  let all = encodings.get(tick);
  if (all === undefined) encodings.set(tick, (all = []));
  let value = all[shape.slot] as T | undefined;
  if (value === undefined) all[shape.slot] = value = shape.encode(tick);
  return value;
}

/** A price message in a shape: the tick's shared encoding, or (a conflated tick saying how many it replaces) one of its own. */
export function encodedPrice<T>(message: PriceMessage, shape: WireShape<T>): T {
  return message.skipped === 0 ? encoded(message.tick, shape) : shape.encode({ ...message.tick, skipped: message.skipped });
}

/** The hub's message of a tick: one object per tick, shared by every subscriber (so that the shapes above are found by its tick). */
const PRICE_MESSAGE = new WireShape<PriceMessage>('message', (tick) => ({ type: 'price', tick, skipped: 0 }));

export function priceMessage(tick: Tick): PriceMessage {
  return encoded(tick, PRICE_MESSAGE);
}

/**
 * A tick's delta against the previous tick of its pair (`delta` subscribers in sequence: docs/api.md
 * "Deltas"), in the tick's encodings like its shapes: made once, when the hub sees the tick follow
 * `previous` on the pair's channel, and shared by every subscriber; its wire shapes are then
 * encoded once each (`encoded`). Only the previous tick's id is kept, not the tick (no chain of ticks).
 */
const DELTA_MESSAGE = new WireShape<DeltaMessage | null>('delta', () => null);

export function linkPrevious(tick: Tick, previous: Tick): void {
  if (previous.pair !== tick.pair || !deltaFits(tick)) return;
  let all = encodings.get(tick);
  if (all === undefined) encodings.set(tick, (all = []));
  all[DELTA_MESSAGE.slot] ??= { type: 'delta', tick, baseId: previous.id, delta: tickDelta(previous, tick) };
}

/** The tick's delta message, when the hub linked it to its previous tick. */
export function deltaMessage(tick: Tick): DeltaMessage | undefined {
  return (encodings.get(tick)?.[DELTA_MESSAGE.slot] as DeltaMessage | null | undefined) ?? undefined;
}

/** A wire shape of a tick's delta: encoded once per tick (`encoded(message.tick, shape)`) from its DeltaMessage. */
export function deltaShape<T>(name: string, encode: (message: DeltaMessage) => T): WireShape<T> {
  return new WireShape(name, (tick) => {
    const message = deltaMessage(tick);
    if (message === undefined) throw new Error(`no delta linked to tick ${tick.id}`);
    return encode(message);
  });
}
