/** Login with the admin account; afterwards back to where the user was (`next`). */
import { useState } from 'preact/hooks';
import { login } from '../api.ts';
import { go } from '../router.ts';
import { ErrorBox, Field } from '../parts/ui.tsx';

export function LoginPage({ next, expired }: { next: string; expired: boolean }) {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  return (
    <main class="login">
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          setBusy(true);
          try {
            await login(username.trim(), password);
            go(next.startsWith('/') && !next.startsWith('/login') ? next : '/');
          } catch (err) {
            setError(err);
          } finally {
            setBusy(false);
          }
        }}
      >
        <h1>fleetgate</h1>
        {expired && !error && <p class="note">Your session has ended. Log in again to continue.</p>}
        <Field label="Email" type="email" autocomplete="username" required value={username} onInput={(e) => setUsername(e.currentTarget.value)} />
        <Field label="Password" type="password" autocomplete="current-password" required value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
        <ErrorBox error={error} />
        <button type="submit" class="primary" disabled={busy}>
          Log in
        </button>
      </form>
    </main>
  );
}
