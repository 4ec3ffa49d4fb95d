// proxy-addr (Express' own X-Forwarded-For resolver) ships no types; only what we call is declared.
declare module 'proxy-addr' {
  import type { IncomingMessage } from 'node:http';
  type Trust = (addr: string, index: number) => boolean;
  type Request = Pick<IncomingMessage, 'headers'> & { socket: { remoteAddress?: string } };
  function proxyaddr(req: Request, trust: Trust): string;
  namespace proxyaddr {
    function compile(val: string | readonly string[]): Trust;
  }
  export = proxyaddr;
}
