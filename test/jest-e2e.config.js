/** End-to-end specs: the real app on port 0, real clients, fake upstreams on 127.0.0.1. */
module.exports = {
  testEnvironment: 'node',
  rootDir: '..',
  roots: ['<rootDir>/test'],
  testRegex: '\\.e2e-spec\\.ts$',
  transform: { '^.+\\.(t|j)s$': '<rootDir>/jest.transform.js' },
  transformIgnorePatterns: ['/node_modules/(?!(@nestjs|jose)/)'],
  testTimeout: 30000,
  maxWorkers: 2,
};
