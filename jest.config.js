const fs = require('fs');
const path = require('path');

/** Unit specs: next to the code in src/, client/src and packages/client/src. */
module.exports = {
  testEnvironment: 'node',
  rootDir: '.',
  // client/src only exists once the browser client is in the tree; Jest refuses a missing root.
  roots: ['src', 'client/src', 'packages/client/src'].filter((dir) => fs.existsSync(path.join(__dirname, dir))).map((dir) => `<rootDir>/${dir}`),
  testRegex: '\\.spec\\.ts$',
  transform: { '^.+\\.(t|j)s$': '<rootDir>/jest.transform.js' },
  transformIgnorePatterns: ['/node_modules/(?!(@nestjs|jose)/)'],
  // The web client imports the client library by its package name; its specs run on the source.
  moduleNameMapper: { '^@price-stream/client$': '<rootDir>/packages/client/src/index.ts' },
};
