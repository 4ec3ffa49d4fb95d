// Nest 12 packages ship as ES modules. Node runs them from CommonJS through require(esm),
// but Jest's module runtime on Node 20 cannot, so Jest compiles them to CommonJS here.
// `import.meta` has no CommonJS form in TypeScript's emit, so its uses are rewritten first.
const { createTransformer } = require('ts-jest').default;

const tsJest = createTransformer({
  tsconfig: '<rootDir>/tsconfig.jest.json',
});

const META = /import\.meta\.url/g;
// A module-level `const require = createRequire(import.meta.url)` would clash with CommonJS' own.
const OWN_REQUIRE = /^const require = createRequire\(import\.meta\.url\);$/m;
const rewrite = (src, file) =>
  file.includes('node_modules')
    ? src
        .replace(OWN_REQUIRE, '')
        .replace(META, "require('url').pathToFileURL(__filename).href")
        .replace(/import\.meta\.resolve\(/g, 'require.resolve(')
        .replace(/import\.meta\.dirname/g, '__dirname')
        .replace(/import\.meta\.filename/g, '__filename')
    : src;

module.exports = {
  process: (src, file, options) => tsJest.process(rewrite(src, file), file, options),
  getCacheKey: (src, file, options) => tsJest.getCacheKey(rewrite(src, file), file, options),
};
