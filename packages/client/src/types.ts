import type { SourceName, Tick as WireTick, TickSource } from '../../../src/shared/wire';

/**
 * `string & {}` keeps the known names in editors' completion while any other string is allowed:
 * a service that adds an upstream must not make deployed clients drop its ticks.
 */
type Open<T extends string> = T | (string & {});

/**
 * A tick as the library delivers it: the wire's tick with an open `source` (and `sources`). A
 * tick from a source this version of the library does not know is delivered all the same.
 */
export type Tick = Omit<WireTick, 'source' | 'sources'> & {
  /** One upstream (`kraken`, `coinbase`, ...), `composite` (with `sources`), or one added later. */
  source: Open<TickSource>;
  sources?: Open<SourceName>[];
};
