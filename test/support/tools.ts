/** What a test does when an external tool (a Debian package) is missing. */
import type { TestContext } from 'node:test';

/** True under FLEETGATE_TEST_REQUIRE_ALL=1 (CI): a missing tool is then a failure, not a skip. */
export const requireAllTools = (): boolean => process.env.FLEETGATE_TEST_REQUIRE_ALL === '1';

/** Skips the test with `message`, or throws it when every tool is required. */
export function skipForMissingTool(t: TestContext, message: string): void {
  if (requireAllTools()) throw new Error(`${message} (FLEETGATE_TEST_REQUIRE_ALL=1)`);
  t.skip(message);
}

/**
 * The `skip` option of a suite whose tool may be missing: false when `missing` is undefined, else the message; throws
 * it instead when every tool is required.
 */
export function skipSuiteForMissingTool(missing: string | undefined): string | false {
  if (missing === undefined) return false;
  if (requireAllTools()) throw new Error(`${missing} (FLEETGATE_TEST_REQUIRE_ALL=1)`);
  return missing;
}
