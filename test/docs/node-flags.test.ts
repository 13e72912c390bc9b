/**
 * The V8 flags of bin/node-flags.js reach every way the server is started: `npm start`, the executable
 * bin/fleetgate.js (its shebang), and `node bin/fleetgate.js` run by hand (README says how).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { NODE_FLAGS } from '../../bin/node-flags.js';

const root = join(import.meta.dirname, '../..');
const read = (file: string) => readFileSync(join(root, file), 'utf8');

describe('node flags', () => {
  it('are in the start script, the shebang and the README', () => {
    const start: string = JSON.parse(read('package.json')).scripts.start;
    const shebang = read('bin/fleetgate.js').split('\n')[0];
    assert.ok(NODE_FLAGS.length > 0);
    for (const flag of NODE_FLAGS) {
      assert.match(start, new RegExp(`^node .*${flag}.* bin/fleetgate\\.js start$`), 'package.json start');
      assert.ok(shebang.startsWith('#!/usr/bin/env -S node') && shebang.includes(flag), 'bin/fleetgate.js shebang');
      assert.ok(read('README.md').includes(flag), 'README');
    }
  });

  it('are accepted by this node and give it a larger young generation', () => {
    // The young generation grows under allocation up to its maximum: allocate enough to reach it.
    const script = 'let keep=[];for(let i=0;i<3e6;i++){keep.push({i,a:[i]});if(keep.length>3e5)keep=[]}' +
      'console.log(require("v8").getHeapSpaceStatistics().find((s)=>s.space_name==="new_space").space_size)';
    const newSpace = (flags: string[]) => Number(execFileSync(process.execPath, [...flags, '-e', script], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } }));
    assert.ok(newSpace(NODE_FLAGS) > newSpace([]) * 2);
  });
});
