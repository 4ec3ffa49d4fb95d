/** End-to-end specs: the real app on port 0, real clients, fake upstreams on 127.0.0.1. */
module.exports = {
  testEnvironment: 'node',
  rootDir: '..',
  roots: ['<rootDir>/test'],
  testRegex: '\\.e2e-spec\\.ts$',
  // The packed client library needs Node 22+ (its engines: fetch streams and WebSocket are
  // global there); .ci/run runs that spec on Node 22 in its own step.
  testPathIgnorePatterns: ['/node_modules/', ...(Number(process.versions.node.split('.')[0]) < 22 ? ['/test/client-package\\.e2e-spec\\.ts$'] : [])],
  transform: { '^.+\\.(t|j)s$': '<rootDir>/jest.transform.js' },
  transformIgnorePatterns: ['/node_modules/(?!@nestjs/)'],
  testTimeout: 30000,
  maxWorkers: 2,
};
