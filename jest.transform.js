// Nest 12 packages ship as ES modules. Node runs them from CommonJS through require(esm),
// but Jest's module runtime on Node 20 cannot, so Jest compiles them to CommonJS here.
// `import.meta.url` has no CommonJS form in TypeScript's emit, so it is rewritten first.
const { createTransformer } = require('ts-jest').default;

const tsJest = createTransformer({
  tsconfig: '<rootDir>/tsconfig.jest.json',
});

const META = /import\.meta\.url/g;
const rewrite = (src, file) =>
  file.includes('node_modules') ? src.replace(META, "require('url').pathToFileURL(__filename).href") : src;

module.exports = {
  process: (src, file, options) => tsJest.process(rewrite(src, file), file, options),
  getCacheKey: (src, file, options) => tsJest.getCacheKey(rewrite(src, file), file, options),
};
