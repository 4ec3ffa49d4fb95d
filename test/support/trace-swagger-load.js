// Preloaded into a spawned service (NODE_OPTIONS=--require): writes a line to standard error each
// time a module asks for @nestjs/swagger, so that a test can tell when the library is loaded.
const { registerHooks } = require('node:module');

registerHooks({
  resolve(specifier, context, nextResolve) {
    if (specifier === '@nestjs/swagger') process.stderr.write('[trace] @nestjs/swagger resolved\n');
    return nextResolve(specifier, context);
  },
});
