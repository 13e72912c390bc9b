/** Hash routing (`#/devices/<id>?tab=x`): the server serves one page at `/`, so any link works after a reload. */
import { useEffect, useState } from 'preact/hooks';

export interface Route {
  /** Path parts after `#/`, e.g. ['devices', '<id>']. */
  parts: string[];
  params: URLSearchParams;
}

export function currentRoute(): Route {
  const hash = location.hash.replace(/^#/, '') || '/';
  const [path, search = ''] = hash.split('?');
  return { parts: path.split('/').filter(Boolean).map(decodeURIComponent), params: new URLSearchParams(search) };
}

export function useRoute(): Route {
  const [route, setRoute] = useState(currentRoute);
  useEffect(() => {
    const onChange = () => setRoute(currentRoute());
    addEventListener('hashchange', onChange);
    onChange(); // a change made before this effect ran (a redirect during the first render)
    return () => removeEventListener('hashchange', onChange);
  }, []);
  return route;
}

export function go(path: string): void {
  location.hash = `#${path}`;
}
