import { api } from '../api.ts';
import { ErrorBox, useLoad } from '../parts/ui.tsx';

export function OverviewPage() {
  const [user, error] = useLoad(() => api<{ email: string }>('/api/auth/user'), []);
  return (
    <>
      <h1>Overview</h1>
      <ErrorBox error={error} />
      {user && <p class="muted">Logged in as {user.email}</p>}
    </>
  );
}
