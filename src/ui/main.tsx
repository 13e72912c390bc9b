/** The console shell: navigation, the logged-in check and the page for the current route. */
import { render } from 'preact';
import 'uplot/dist/uPlot.min.css';
import './styles.css';
import { logout, session } from './api.ts';
import { go, useRoute } from './router.ts';
import { AuditPage } from './pages/audit.tsx';
import { DevicePage } from './pages/device.tsx';
import { ExportPage } from './pages/exports.tsx';
import { DevicesPage } from './pages/devices.tsx';
import { LoginPage } from './pages/login.tsx';
import { OverviewPage } from './pages/overview.tsx';
import { ProfilesPage } from './pages/profiles.tsx';

const NAV: [string, string][] = [
  ['/', 'Overview'],
  ['/profiles', 'Device profiles'],
  ['/devices', 'Devices'],
  ['/export', 'Export'],
  ['/audit', 'Audit log'],
];

function Page() {
  const route = useRoute();
  const [section = '', id] = route.parts;
  if (section === 'login') return <LoginPage next={route.params.get('next') ?? '/'} expired={route.params.has('expired')} />;
  if (!session()) {
    const here = location.hash.replace(/^#/, '') || '/';
    go(`/login?next=${encodeURIComponent(here)}`);
    return null;
  }
  let page;
  if (section === 'profiles') page = <ProfilesPage id={id} />;
  else if (section === 'devices' && id) page = <DevicePage id={id} />;
  else if (section === 'devices') page = <DevicesPage route={route} />;
  else if (section === 'export') page = <ExportPage id={id} />;
  else if (section === 'audit') page = <AuditPage />;
  else page = <OverviewPage />;
  return (
    <>
      <header class="top">
        <a class="brand" href="#/">
          fleetgate
        </a>
        <nav aria-label="Main">
          {NAV.map(([path, text]) => (
            <a key={path} href={`#${path}`} aria-current={`/${section}` === path ? 'page' : undefined}>
              {text}
            </a>
          ))}
        </nav>
        <button type="button" class="small" onClick={() => void logout()}>
          Log out
        </button>
      </header>
      <main>{page}</main>
    </>
  );
}

render(<Page />, document.getElementById('app')!);
