export function DevicePage({ id }: { id: string }) {
  return <h1>Device {id}</h1>;
}
