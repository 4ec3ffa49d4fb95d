import type { Tick } from '../shared/wire';
import type { PriceMessage } from './sink';

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
