/** Unit specs: next to the code in src/. */
module.exports = {
  testEnvironment: 'node',
  rootDir: '.',
  roots: ['<rootDir>/src', '<rootDir>/client/src'],
  testRegex: '\\.spec\\.ts$',
  transform: { '^.+\\.(t|j)s$': '<rootDir>/jest.transform.js' },
  transformIgnorePatterns: ['/node_modules/(?!@nestjs/)'],
};
