/**
 * The V8 flags fleetgate runs with. They must be given when node starts, so they are written out in three places
 * that test/docs/node-flags.test.ts keeps equal to this list: the shebang of bin/fleetgate.js, the `start` script in
 * package.json, and the benchmarks (which import this file).
 *
 * --max-semi-space-size=64: a 64 MiB young generation per semi-space (V8's default is 16). Under load every message
 * lives until its batch commits, so with the default size the scavenger copies thousands of live messages many times
 * a second; the larger space cut garbage collection enough to raise MQTT telemetry by about a third (bench/RESULTS.md).
 *
 * --enable-source-maps: the server and the CLI run the JavaScript compiled to dist/; with this flag the stack traces
 * they print and log name the TypeScript files and lines in src/ (dist/ holds the source maps).
 */
export const NODE_FLAGS = ['--max-semi-space-size=64', '--enable-source-maps'];
