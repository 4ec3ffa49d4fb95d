/** The part of proxy-addr (Express' own client-address logic) that LatestEntry uses; it ships no types. */
declare module 'proxy-addr' {
  import type { IncomingMessage } from 'node:http';
  function proxyaddr(req: IncomingMessage, trust: (addr: string, i: number) => boolean): string;
  export = proxyaddr;
}
