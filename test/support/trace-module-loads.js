// Preloaded into a spawned service (NODE_OPTIONS=--require): writes a line to standard error for
// each file of JavaScript the process loads (`[trace] load file:///...`), and one each time a
// module asks for @nestjs/swagger, so that a test can tell what a start reads and when the
// OpenAPI library is loaded.
const { registerHooks } = require('node:module');

registerHooks({
  resolve(specifier, context, nextResolve) {
    if (specifier === '@nestjs/swagger') process.stderr.write('[trace] @nestjs/swagger resolved\n');
    return nextResolve(specifier, context);
  },
  load(url, context, nextLoad) {
    if (url.startsWith('file:')) process.stderr.write(`[trace] load ${url}\n`);
    return nextLoad(url, context);
  },
});
