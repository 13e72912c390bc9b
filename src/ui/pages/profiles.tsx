export function ProfilesPage(_: { id?: string }) {
  return <h1>Device profiles</h1>;
}
