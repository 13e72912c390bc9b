import type { Route } from '../router.ts';
export function DevicesPage(_: { route: Route }) {
  return <h1>Devices</h1>;
}
