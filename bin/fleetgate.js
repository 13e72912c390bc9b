#!/usr/bin/env -S node --max-semi-space-size=64
// Entry point: registers the TypeScript loader (tsx), then runs the CLI.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
